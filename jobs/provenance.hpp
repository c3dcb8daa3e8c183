// What every astroclear image output says about itself: WCS, product, version, inputs.
#pragma once

#include <string>
#include <vector>

#include "io/image.hpp"
#include "jobs/stack_loader.hpp"

namespace astroclear::jobs {

/// ACPROD values of the image products. `evaluate` reads them to know whether an image is a
/// latent (deconvolved) image, to be reconvolved to the target PSF, or one seen at the stack's PSFs.
inline constexpr const char* kProductLatent = "AstroClearNet latent image";
inline constexpr const char* kProductRichardsonLucy = "multi-frame Richardson-Lucy latent image";
inline constexpr const char* kProductCoadd = "inverse-variance weighted coadd";

/// A FITS string value: quoted, inner quotes doubled.
std::string quoted(const std::string& s);

/// Cards every astroclear output carries: WCS of the first exposure, origin, version, product,
/// date, number of exposures, units.
std::vector<io::HeaderCard> provenance_cards(const LoadedStack& loaded, const std::string& product);

/// HISTORY lines naming the manifest and every input exposure with its PSF.
std::vector<std::string> input_history(const LoadedStack& loaded);

}  // namespace astroclear::jobs
