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

std::vector<float> finite_values(const Image& image) {
  std::vector<float> finite;
  for (float v : image.pixels) if (std::isfinite(v)) finite.push_back(v);
  return finite;
}

/// The 99.9th percentile of `values` (reordered); 0 for none.
float top_of(std::vector<float>& values) {
  if (values.empty()) return 0.0f;
  auto at = values.begin() + static_cast<std::ptrdiff_t>(0.999 * static_cast<double>(values.size() - 1));
  std::nth_element(values.begin(), at, values.end());
  return *at;
}

PreviewStretch stretch_with(double zero, double noise, double top) {
  noise = std::max(noise, 1e-12);
  return {zero, 2.0 * noise, zero + std::max(top - zero, 10.0 * noise)};
}

}  // namespace

PreviewStretch stretch_of(const Image& image) {
  std::vector<float> finite = finite_values(image);
  const float sky = median_of(finite);
  std::vector<float> deviation;
  for (float v : finite) deviation.push_back(std::abs(v - sky));
  return stretch_with(sky, 1.4826 * median_of(deviation), top_of(finite));
}

PreviewStretch stretch_for_noise(double noise, const Image& bright) {
  std::vector<float> finite = finite_values(bright);
  return stretch_with(0.0, noise, top_of(finite));
}

void write_preview_png(const std::string& path, const std::vector<Image>& panels, bool overwrite) {
  if (panels.empty()) throw Error(path + ": nothing to preview");
  write_preview_png(path, panels, stretch_of(panels[0]), overwrite);
}

void write_preview_png(const std::string& path, const std::vector<Image>& panels, const PreviewStretch& stretch,
                       bool overwrite) {
  if (panels.empty()) throw Error(path + ": nothing to preview");
  check_output_path(path, overwrite);
  const std::int64_t h = panels[0].height, w = panels[0].width;
  for (const Image& p : panels) {
    if (p.height != h || p.width != w) throw Error(path + ": preview panels differ in size");
  }
  const double high = std::asinh((stretch.top - stretch.zero) / stretch.softening);

  // A small field is enlarged by whole pixels to at least kMinPanelWidth per panel; pixels with no
  // data (NaN: no exposure measured them) are drawn in kNoData, not as black, which reads as zero.
  constexpr std::int64_t kMinPanelWidth = 256;
  constexpr png_byte kNoData[3] = {200, 40, 40};
  const std::int64_t zoom = std::clamp<std::int64_t>((kMinPanelWidth + w - 1) / w, 1, 16);
  const std::int64_t gap = 4, pw = w * zoom, ph = h * zoom;
  const std::int64_t out_w = static_cast<std::int64_t>(panels.size()) * (pw + gap) - gap;
  std::vector<png_byte> pixels(static_cast<std::size_t>(3 * ph * out_w), 255);
  for (std::size_t k = 0; k < panels.size(); ++k) {
    for (std::int64_t y = 0; y < ph; ++y) {
      for (std::int64_t x = 0; x < pw; ++x) {
        const float v = panels[k].at(h - 1 - y / zoom, x / zoom);  // FITS row 0 is the bottom
        png_byte* rgb = &pixels[3 * (y * out_w + static_cast<std::int64_t>(k) * (pw + gap) + x)];
        if (!std::isfinite(v)) {
          std::copy(kNoData, kNoData + 3, rgb);
          continue;
        }
        const double s = std::clamp(std::asinh((v - stretch.zero) / stretch.softening) / high, 0.0, 1.0);
        rgb[0] = rgb[1] = rgb[2] = static_cast<png_byte>(std::lround(255 * s));
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
    png_set_IHDR(png, info, static_cast<png_uint_32>(out_w), static_cast<png_uint_32>(ph), 8, PNG_COLOR_TYPE_RGB,
                 PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    for (std::int64_t y = 0; y < ph; ++y) png_write_row(png, &pixels[3 * y * out_w]);
    png_write_end(png, nullptr);
    png_destroy_write_struct(&png, &info);
    if (std::fclose(file.release()) != 0) throw Error(temp + ": closing failed");
  });
}

}  // namespace astroclear::io
