// astroclear compare: relative L2 difference of two images (runs on different ranks, devices, versions).
#include <cmath>
#include <cstdio>

#include "io/fits_file.hpp"
#include "jobs/commands.hpp"
#include "mpi/error.hpp"

namespace astroclear::jobs {

int run_compare(const CompareOptions& options) {
  auto read = [&](const std::string& path) { return io::FitsFile::open_image(path, options.hdu).read_image(); };
  const io::Image a = read(options.first), b = read(options.second);
  if (a.height != b.height || a.width != b.width) {
    throw Error(options.second + ": " + io::shape_text(b.height, b.width) + " pixels, but " + options.first + " is " +
                io::shape_text(a.height, a.width));
  }
  double diff = 0, norm = 0, worst = 0;
  for (std::int64_t i = 0; i < a.size(); ++i) {
    if (!std::isfinite(a.pixels[i]) || !std::isfinite(b.pixels[i])) continue;
    const double d = static_cast<double>(a.pixels[i]) - b.pixels[i];
    diff += d * d;
    norm += static_cast<double>(a.pixels[i]) * a.pixels[i];
    worst = std::max(worst, std::abs(d));
  }
  const double relative = norm > 0 ? std::sqrt(diff / norm) : std::sqrt(diff);
  std::printf("relative_l2 %.6g max_abs %.6g pixels %lld\n", relative, worst, static_cast<long long>(a.size()));
  if (options.tolerance >= 0 && relative > options.tolerance) {
    std::printf("differ: relative L2 %.6g > tolerance %.6g\n", relative, options.tolerance);
    return kExitAboveTolerance;
  }
  return 0;
}

}  // namespace astroclear::jobs
