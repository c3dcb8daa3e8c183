// Atomic FITS output: temp file in the same folder, checksums, read-back, rename.
#include "io/fits_output.hpp"

#include <filesystem>
#include <regex>

#include <unistd.h>

#include "io/file_tree.hpp"
#include "io/fits_file.hpp"
#include "common/error.hpp"

namespace astroclear::io {
namespace fs = std::filesystem;

std::vector<HeaderCard> wcs_cards(const std::vector<HeaderCard>& header) {
  // The celestial WCS of the primary description and every distortion convention in use: SIP
  // (A_, B_, AP_, BP_ and their orders and DMAX), TPV and other PVi_m/PSi_m parameters, and IRAF's
  // TNX/ZPX (WATi_nnn).
  static const std::regex kWcsKey(
      "^(WCSAXES|WCSNAME|CTYPE[12]|CRVAL[12]|CRPIX[12]|CD[12]_[12]|PC[12]_[12]|CDELT[12]|CUNIT[12]|CROTA[12]|"
      "RADESYS|RADECSYS|EQUINOX|EPOCH|LONPOLE|LATPOLE|MJDREF|DATEREF|"
      "[AB]P?_ORDER|[AB]P?_[0-9]+_[0-9]+|[AB]_DMAX|PV[12]_[0-9]+|PS[12]_[0-9]+|WAT[0-9]_[0-9]+)$");
  std::vector<HeaderCard> out;
  for (const HeaderCard& card : header) {
    if (std::regex_match(card.key, kWcsKey)) out.push_back(card);
  }
  return out;
}

void check_output_path(const std::string& path, bool overwrite, const std::vector<std::string>& inputs) {
  if (path.empty()) throw Error("no output path given");
  std::error_code ec;
  if (fs::is_directory(path, ec)) throw Error(path + ": output is a folder; give a file name (nothing was changed)");
  if (fs::exists(path, ec)) {
    for (const std::string& input : inputs) {
      if (!input.empty() && fs::exists(input, ec) && fs::equivalent(path, input, ec)) {
        throw Error(path + ": output is " + (input == path ? "" : input + ", ") +
                    "one of this run's inputs; choose another output path (nothing was changed)");
      }
    }
    if (!overwrite) throw Error(path + ": output exists; pass --overwrite to replace it (nothing was changed)");
  }
  const fs::path folder = fs::path(path).parent_path();
  if (!folder.empty() && !fs::is_directory(folder, ec)) {
    throw Error(path + ": output folder " + folder.string() + " does not exist");
  }
  if (::access(folder.empty() ? "." : folder.c_str(), W_OK) != 0) {
    throw Error(path + ": output folder " + (folder.empty() ? std::string(".") : folder.string()) +
                " is not writable (nothing was changed)");
  }
}

void write_fits_atomically(const std::string& path, const std::vector<OutputHdu>& hdus, bool overwrite) {
  check_output_path(path, overwrite);
  write_atomically(path, [&](const std::string& temp) {
    {
      FitsFile f = FitsFile::create(temp);
      for (const OutputHdu& hdu : hdus) {
        if (hdu.mask) {
          f.write_mask(*hdu.mask, hdu.extname);
        } else {
          f.write_image(hdu.image, hdu.extname);
        }
        for (const HeaderCard& card : hdu.cards) f.write_card(card);
        for (const std::string& line : hdu.history) f.write_history(line);
        f.write_checksum();
      }
      f.close();
    }
    FitsFile check = FitsFile::open(temp);  // read-back: the file is whole
    if (check.hdu_count() != static_cast<int>(hdus.size())) throw Error(temp + ": read-back found a wrong HDU count");
    check.close();
  });
}

}  // namespace astroclear::io
