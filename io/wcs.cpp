// Wcs over WCSLIB (wcspih, wcsp2s, wcss2p).
#include "io/wcs.hpp"

#include <wcslib/wcs.h>
#include <wcslib/wcserr.h>
#include <wcslib/wcshdr.h>

#include <algorithm>
#include <cmath>
#include <utility>
#include <vector>

#include "common/error.hpp"

namespace astroclear::io {
namespace {

wcsprm* as_wcs(void* p) { return static_cast<wcsprm*>(p); }

}  // namespace

std::optional<Wcs> Wcs::from_header(const std::string& header, const std::string& where) {
  std::string text = header;  // wcspih takes a mutable buffer
  int rejected = 0, count = 0;
  wcsprm* wcs = nullptr;
  const int status = wcspih(text.data(), static_cast<int>(text.size() / 80), WCSHDR_all, 0, &rejected, &count, &wcs);
  if (status != 0) throw Error(where + ": WCSLIB cannot read the WCS (wcspih status " + std::to_string(status) + ")");
  if (count < 1 || wcs[0].naxis < 2) {
    wcsvfree(&count, &wcs);
    return std::nullopt;
  }
  if (wcsset(wcs) != 0) {
    const std::string why = wcs[0].err != nullptr ? wcs[0].err->msg : "";
    wcsvfree(&count, &wcs);
    throw Error(where + ": WCSLIB cannot use the WCS (" + why + ")");
  }
  if (wcs[0].lng < 0 || wcs[0].lat < 0) {  // no celestial axes (wcspih reads a header without a WCS as linear)
    wcsvfree(&count, &wcs);
    return std::nullopt;
  }
  return Wcs(wcs, count, where);
}

Wcs::Wcs(Wcs&& other) noexcept
    : wcs_(std::exchange(other.wcs_, nullptr)), count_(std::exchange(other.count_, 0)), where_(std::move(other.where_)) {}

Wcs& Wcs::operator=(Wcs&& other) noexcept {
  if (this != &other) {
    release();
    wcs_ = std::exchange(other.wcs_, nullptr);
    count_ = std::exchange(other.count_, 0);
    where_ = std::move(other.where_);
  }
  return *this;
}

Wcs::~Wcs() { release(); }

void Wcs::release() noexcept {
  if (wcs_ == nullptr) return;
  wcsprm* w = as_wcs(wcs_);
  wcsvfree(&count_, &w);
  wcs_ = nullptr;
}

std::array<double, 2> Wcs::pixel_to_sky(double x, double y) const {
  wcsprm* w = as_wcs(wcs_);
  std::vector<double> pixel(static_cast<std::size_t>(w->naxis), 1.0), image(pixel.size()), world(pixel.size());
  pixel[0] = x;
  pixel[1] = y;
  double phi = 0, theta = 0;
  int status = 0;
  if (wcsp2s(w, 1, w->naxis, pixel.data(), image.data(), &phi, &theta, world.data(), &status) != 0) {
    throw Error(where_ + ": WCSLIB cannot map pixel (" + std::to_string(x) + ", " + std::to_string(y) + ") to the sky");
  }
  return {world[static_cast<std::size_t>(w->lng)], world[static_cast<std::size_t>(w->lat)]};
}

std::array<double, 2> Wcs::sky_to_pixel(double ra, double dec) const {
  wcsprm* w = as_wcs(wcs_);
  std::vector<double> world(static_cast<std::size_t>(w->naxis), 0.0), image(world.size()), pixel(world.size());
  world[static_cast<std::size_t>(w->lng)] = ra;
  world[static_cast<std::size_t>(w->lat)] = dec;
  double phi = 0, theta = 0;
  int status = 0;
  if (wcss2p(w, 1, w->naxis, world.data(), &phi, &theta, image.data(), pixel.data(), &status) != 0) {
    throw Error(where_ + ": WCSLIB cannot map (RA, Dec) = (" + std::to_string(ra) + ", " + std::to_string(dec) +
                ") to a pixel");
  }
  return {pixel[0], pixel[1]};
}

RegistrationOffset registration_offset(const Wcs& reference, const Wcs& other, std::int64_t height, std::int64_t width) {
  const double w = static_cast<double>(width), h = static_cast<double>(height);
  RegistrationOffset worst;
  for (const auto& [x, y] : {std::pair{1.0, 1.0}, std::pair{w, 1.0}, std::pair{1.0, h}, std::pair{w, h},
                             std::pair{(w + 1) / 2, (h + 1) / 2}}) {
    const auto sky = other.pixel_to_sky(x, y);
    const auto back = reference.sky_to_pixel(sky[0], sky[1]);
    const double d = std::hypot(back[0] - x, back[1] - y);
    if (d > worst.pixels) worst = {d, x, y};
  }
  return worst;
}

}  // namespace astroclear::io
