// Writing result FITS files atomically: WCS from the input, provenance, optional extra HDUs.
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "io/image.hpp"

namespace astroclear::io {

/// One image HDU to write: pixels (or an integer mask), EXTNAME (empty for the primary) and header cards.
struct OutputHdu {
  OutputHdu() = default;
  OutputHdu(std::string name, Image pixels, std::vector<HeaderCard> header = {}, std::vector<std::string> lines = {})
      : extname(std::move(name)), image(std::move(pixels)), cards(std::move(header)), history(std::move(lines)) {}

  std::string extname;
  Image image;
  std::vector<HeaderCard> cards;
  std::vector<std::string> history;
  std::optional<MaskImage> mask;  ///< written instead of `image` (32-bit integers) when set
};

/// The WCS cards of a header (CTYPE, CRVAL, CRPIX, CD, PC, CDELT, CUNIT, RADESYS, EQUINOX,
/// LONPOLE, LATPOLE, WCSAXES; the SIP, TPV/PV and TNX/ZPX distortion terms), to copy onto outputs.
std::vector<HeaderCard> wcs_cards(const std::vector<HeaderCard>& header);

/// Note [output safety]: fails with a clear message unless `path` can be written: it must not be a
/// folder, must not exist unless `overwrite`, its folder must exist and be writable, and it must
/// never be one of `inputs` (the files the run reads), whatever `overwrite` says. Called before any
/// work so that a long run cannot end in refusal, and so that no run replaces what it reads.
void check_output_path(const std::string& path, bool overwrite, const std::vector<std::string>& inputs = {});

/// Writes the HDUs (first = primary) to a temporary file beside `path`, verifies it, and renames
/// it over `path`; on any error the temporary file is removed and nothing is left at `path`.
void write_fits_atomically(const std::string& path, const std::vector<OutputHdu>& hdus, bool overwrite);

}  // namespace astroclear::io
