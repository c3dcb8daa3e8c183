// write_preview_png with libpng.
#include "io/png_preview.hpp"

#include <png.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <memory>

#include "io/file_tree.hpp"
#include "io/fits_output.hpp"
#include "common/error.hpp"

namespace astroclear::io {
namespace {

float median_of(std::vector<float> v) {
  if (v.empty()) return 0.0f;
  auto mid = v.begin() + static_cast<std::ptrdiff_t>(v.size() / 2);
  std::nth_element(v.begin(), mid, v.end());
  return *mid;
}

}  // namespace

void write_preview_png(const std::string& path, const std::vector<Image>& panels, bool overwrite) {
  if (panels.empty()) throw Error(path + ": nothing to preview");
  check_output_path(path, overwrite);
  const std::int64_t h = panels[0].height, w = panels[0].width;
  for (const Image& p : panels) {
    if (p.height != h || p.width != w) throw Error(path + ": preview panels differ in size");
  }
  // Stretch: zero at the median, noise from the MAD, asinh up to the 99.9th percentile.
  std::vector<float> finite;
  for (float v : panels[0].pixels) if (std::isfinite(v)) finite.push_back(v);
  const float sky = median_of(finite);
  std::vector<float> deviation;
  for (float v : finite) deviation.push_back(std::abs(v - sky));
  const float noise = std::max(1.4826f * median_of(deviation), 1e-12f);
  std::sort(finite.begin(), finite.end());
  const float top = finite.empty() ? 1.0f : finite[static_cast<std::size_t>(0.999 * (finite.size() - 1))];
  const double soft = 2.0 * noise;
  const double high = std::asinh(std::max(static_cast<double>(top - sky), 10.0 * noise) / soft);

  const int gap = 4;
  const std::int64_t out_w = static_cast<std::int64_t>(panels.size()) * (w + gap) - gap;
  std::vector<png_byte> pixels(static_cast<std::size_t>(h * out_w), 255);
  for (std::size_t k = 0; k < panels.size(); ++k) {
    for (std::int64_t y = 0; y < h; ++y) {
      for (std::int64_t x = 0; x < w; ++x) {
        const float v = panels[k].at(h - 1 - y, x);  // FITS row 0 is the bottom
        double s = std::isfinite(v) ? std::asinh((v - sky) / soft) / high : 0.0;
        s = std::clamp(s, 0.0, 1.0);
        pixels[y * out_w + static_cast<std::int64_t>(k) * (w + gap) + x] = static_cast<png_byte>(std::lround(255 * s));
      }
    }
  }

  write_atomically(path, [&](const std::string& temp) {
    std::unique_ptr<FILE, int (*)(FILE*)> file(std::fopen(temp.c_str(), "wb"), &std::fclose);
    if (!file) throw Error(temp + ": cannot create");
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, nullptr, nullptr, nullptr);
    png_infop info = png ? png_create_info_struct(png) : nullptr;
    if (png == nullptr || info == nullptr || setjmp(png_jmpbuf(png))) {
      png_destroy_write_struct(&png, &info);
      throw Error(path + ": writing PNG failed");
    }
    png_init_io(png, file.get());
    png_set_IHDR(png, info, static_cast<png_uint_32>(out_w), static_cast<png_uint_32>(h), 8, PNG_COLOR_TYPE_GRAY,
                 PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    for (std::int64_t y = 0; y < h; ++y) png_write_row(png, &pixels[y * out_w]);
    png_write_end(png, nullptr);
    png_destroy_write_struct(&png, &info);
    if (std::fclose(file.release()) != 0) throw Error(temp + ": closing failed");
  });
}

}  // namespace astroclear::io
