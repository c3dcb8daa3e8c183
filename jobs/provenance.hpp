// What every astroclear image output says about itself: WCS, product, version, inputs.
#pragma once

#include <string>
#include <vector>

#include "io/image.hpp"
#include "io/fits_output.hpp"
#include "jobs/stack_loader.hpp"
#include "src/validation.hpp"

namespace astroclear::jobs {

/// ACPROD values of the image products. `evaluate` reads them to know whether an image is a
/// latent (deconvolved) image, to be reconvolved to the target PSF, or one seen at the stack's PSFs.
inline constexpr const char* kProductLatent = "AstroClearNet latent image";
inline constexpr const char* kProductRichardsonLucy = "multi-frame Richardson-Lucy latent image";
inline constexpr const char* kProductImageMm = "ImageMM latent image";
inline constexpr const char* kProductCoadd = "inverse-variance weighted coadd";
/// Whether an ACPROD value names a latent (deconvolved) image.
inline bool is_latent_product(const std::string& product) {
  return product == kProductLatent || product == kProductRichardsonLucy || product == kProductImageMm;
}

/// A FITS string value: quoted, inner quotes doubled.
std::string quoted(const std::string& s);

/// Cards every astroclear output carries: WCS of the first exposure, origin, version, product,
/// date, number of exposures, units.
std::vector<io::HeaderCard> provenance_cards(const LoadedStack& loaded, const std::string& product);

/// HISTORY lines naming the manifest and every input exposure with its PSF (and which are held out).
std::vector<std::string> input_history(const LoadedStack& loaded);

/// The header of a result validated on held-out exposures: ACVALN (how many), ACVALIT and
/// ACVALLOS (the iteration kept or last, and its held-out loss), ACSTOP (why the run ended there),
/// and HISTORY lines with every held-out loss recorded.
void add_validation_provenance(io::OutputHdu& hdu, const LoadedStack& loaded, const ValidationTrack& track,
                               StopRule stop, int iteration, int limit);

}  // namespace astroclear::jobs
