// PSFEx model evaluation: polynomial in the image position, Lanczos-3 resampling from PSF_SAMP.
#include "io/psfex.hpp"

#include <cmath>
#include <cstdio>
#include <optional>

#include "common/error.hpp"
#include "common/number_text.hpp"
#include "io/fits_file.hpp"

namespace astroclear::io {

// Note [PSFEx models]: PSFEx writes its model as a binary table whose PSF_MASK cell holds
// PSFAXIS3 basis images of PSFAXIS2 x PSFAXIS1 pixels; the PSF at image position (x, y) (1-based,
// SExtractor's X_IMAGE, Y_IMAGE) is sum_k P_k(u, v) basis_k with u = (x - POLZERO1) / POLSCAL1,
// v = (y - POLZERO2) / POLSCAL2 and the monomials of degree up to POLDEG1 in the order 1, u, u^2,
// ..., v, uv, ..., v^2, ... (x powers fastest). PSFEx itself keeps the polynomial's description in
// the table's header (POLNAXIS, POLZERO1, ...); pipelines that merge the models of many CCDs into
// one file (legacypipe) keep it in columns of the same names, one row per CCD, chosen by CCDNAME.
// Both layouts are read. The basis images are sampled every PSF_SAMP image pixels about pixel
// PSFAXIS1 / 2 (0-based); they are brought to the image's pixel grid by Lanczos-3 interpolation
// (GalSim's choice for these models), over an odd stamp that covers the model. With PSF_SAMP = 1,
// as the community pipeline writes, the interpolation is the identity.

namespace {

constexpr double kPi = 3.14159265358979323846;

double lanczos3(double x) {
  if (x == 0) return 1;
  if (std::abs(x) >= 3) return 0;
  const double px = kPi * x;
  return 3 * std::sin(px) * std::sin(px / 3) / (px * px);
}

/// One field of the model: the table header's keyword, else the column of that name in `row`.
class ModelFields {
 public:
  ModelFields(FitsFile& file, std::int64_t row) : file_(file), row_(row) {}

  double number(const std::string& key) {
    if (auto v = optional_number(key)) return *v;
    throw Error(file_.where() + ": a PSFEx model needs " + key + " (a header keyword or a column); it has neither");
  }
  std::optional<double> optional_number(const std::string& key) {
    if (auto v = file_.read_double(key)) return v;
    if (file_.has_column(key)) {
      const std::vector<double> cell = file_.read_cell(key, row_);
      if (cell.size() == 1) return cell[0];
    }
    return std::nullopt;
  }
  std::string text(const std::string& key) {
    if (auto v = file_.read_string(key)) return *v;
    if (file_.has_column(key)) return file_.read_string_cell(key, row_);
    return "";
  }

 private:
  FitsFile& file_;
  std::int64_t row_;
};


/// The row of the model for `ccd`: the only row, or the one whose CCDNAME is `ccd`.
std::int64_t model_row(FitsFile& file, const std::string& ccd) {
  const std::int64_t rows = file.table_rows();
  if (rows < 1) throw Error(file.where() + ": the PSFEx table has no row");
  if (ccd.empty()) {
    if (rows == 1) return 0;
    std::string names;
    for (std::int64_t r = 0; file.has_column("CCDNAME") && r < rows; ++r) {
      names += (r ? ", " : "") + file.read_string_cell("CCDNAME", r);
    }
    throw Error(file.where() + ": holds the models of " + std::to_string(rows) + " CCDs (" + names +
                "); say which with psf_ccd in the exposure's [[exposure]]");
  }
  if (!file.has_column("CCDNAME")) {
    throw Error(file.where() + ": psf_ccd = \"" + ccd + "\" given, but the table has no CCDNAME column");
  }
  std::string names;
  for (std::int64_t r = 0; r < rows; ++r) {
    const std::string name = file.read_string_cell("CCDNAME", r);
    if (name == ccd) return r;
    names += (r ? ", " : "") + name;
  }
  throw Error(file.where() + ": no model for psf_ccd = \"" + ccd + "\"; its CCDNAMEs: " + names);
}

}  // namespace

float sample_lanczos3(const Image& image, double x, double y) {
  double sum = 0;
  const auto fy = static_cast<std::int64_t>(std::floor(y)), fx = static_cast<std::int64_t>(std::floor(x));
  for (std::int64_t j = fy - 2; j <= fy + 3; ++j) {
    if (j < 0 || j >= image.height) continue;
    const double wy = lanczos3(y - static_cast<double>(j));
    if (wy == 0) continue;
    for (std::int64_t i = fx - 2; i <= fx + 3; ++i) {
      if (i < 0 || i >= image.width) continue;
      sum += wy * lanczos3(x - static_cast<double>(i)) * image.pixels[j * image.width + i];
    }
  }
  return static_cast<float>(sum);
}

bool is_psfex_model(const std::string& path) {
  FitsFile file = FitsFile::open(path);
  return file.move_to_table_with("PSF_MASK");
}

Image evaluate_psfex(const std::string& path, const PsfexRequest& request, std::vector<std::string>& warnings) {
  FitsFile file = FitsFile::open(path);
  if (!file.move_to_table_with("PSF_MASK")) throw Error(path + ": no binary table with a PSF_MASK column");
  const std::int64_t row = model_row(file, request.ccd);
  ModelFields model(file, row);
  const std::string where = file.where() + (request.ccd.empty() ? "" : " (CCD " + request.ccd + ")");

  // Some writers leave out POLNAXIS (then POLNAME1/2 name the two variables) and PSFAXIS1-3 (then
  // the PSF_MASK column's TDIM gives them).
  const double axes = model.optional_number("POLNAXIS").value_or(2), groups = model.number("POLNGRP");
  if (axes != 2 || groups != 1) {
    throw Error(where + ": POLNAXIS = " + number_text(axes) + ", POLNGRP = " + number_text(groups) +
                "; astroclear reads PSFEx models of the image position alone (POLNAXIS = 2, one group)");
  }
  for (const char* key : {"POLNAME1", "POLNAME2"}) {
    const std::string name = model.text(key);
    const char axis = key[7] == '1' ? 'X' : 'Y';
    if (!name.empty() && (name.front() != axis || name.find("IMAGE") == std::string::npos)) {
      throw Error(where + ": " + key + " = '" + name + "'; expected " + axis + "_IMAGE (the model's variable)");
    }
  }
  const int degree = static_cast<int>(model.number("POLDEG1"));
  const double zero[2] = {model.number("POLZERO1"), model.number("POLZERO2")};
  const double scale[2] = {model.number("POLSCAL1"), model.number("POLSCAL2")};
  const double samp = model.number("PSF_SAMP");
  const std::vector<std::int64_t> cell = file.cell_dimensions("PSF_MASK");
  const auto axis = [&](const char* key, std::size_t k) {
    const std::optional<double> v = model.optional_number(key);
    if (v) return static_cast<std::int64_t>(*v);
    if (cell.size() == 3) return cell[k];
    throw Error(where + ": no " + key + ", and PSF_MASK has no TDIM of three axes to take it from");
  };
  const std::int64_t nx = axis("PSFAXIS1", 0), ny = axis("PSFAXIS2", 1), terms = axis("PSFAXIS3", 2);
  if (degree < 0 || terms != static_cast<std::int64_t>(degree + 1) * (degree + 2) / 2) {
    throw Error(where + ": POLDEG1 = " + std::to_string(degree) + " needs " +
                std::to_string((degree + 1) * (degree + 2) / 2) + " basis images, PSFAXIS3 = " + std::to_string(terms));
  }
  if (!(samp > 0) || !std::isfinite(samp) || scale[0] == 0 || scale[1] == 0) {
    throw Error(where + ": PSF_SAMP = " + number_text(samp) + ", POLSCAL = " + number_text(scale[0]) + ", " +
                number_text(scale[1]) + "; expected positive numbers");
  }
  const std::vector<double> basis = file.read_cell("PSF_MASK", row);
  if (static_cast<std::int64_t>(basis.size()) != terms * ny * nx) {
    throw Error(where + ": PSF_MASK holds " + std::to_string(basis.size()) + " values, but PSFAXIS1-3 say " +
                std::to_string(nx) + " x " + std::to_string(ny) + " x " + std::to_string(terms));
  }

  // The model at the position, on its own grid.
  const double x = request.position ? (*request.position)[0] : (request.width + 1) / 2.0;
  const double y = request.position ? (*request.position)[1] : (request.height + 1) / 2.0;
  const double u = (x - zero[0]) / scale[0], v = (y - zero[1]) / scale[1];
  std::vector<double> sampled(static_cast<std::size_t>(nx * ny), 0.0);
  std::int64_t k = 0;
  for (int py = 0; py <= degree; ++py) {
    for (int px = 0; px <= degree - py; ++px, ++k) {
      const double weight = std::pow(u, px) * std::pow(v, py);
      for (std::int64_t i = 0; i < nx * ny; ++i) sampled[i] += weight * basis[k * nx * ny + i];
    }
  }
  Image samples(ny, nx, 0.0f);
  for (std::int64_t i = 0; i < nx * ny; ++i) {
    if (!std::isfinite(sampled[i])) {
      throw Error(where + ": the model is not finite at (" + number_text(x) + ", " + number_text(y) + ")");
    }
    samples.pixels[i] = static_cast<float>(sampled[i]);
  }

  // On the image's grid: an odd stamp covering the model, Lanczos-3 from the model's samples.
  const double cx = static_cast<double>(nx / 2), cy = static_cast<double>(ny / 2);
  const auto half = static_cast<std::int64_t>(std::floor(std::min(cx, cy) * samp));
  const std::int64_t size = 2 * half + 1;
  Image psf(size, size, 0.0f);
  for (std::int64_t r = 0; r < size; ++r) {
    for (std::int64_t c = 0; c < size; ++c) {
      psf.pixels[r * size + c] = sample_lanczos3(samples, cx + static_cast<double>(c - half) / samp,
                                                 cy + static_cast<double>(r - half) / samp);
    }
  }
  if (samp != 1.0) {
    warnings.push_back(where + ": PSF_SAMP = " + number_text(samp) + ": the model was resampled to the image's pixels");
  }
  return psf;
}

}  // namespace astroclear::io
