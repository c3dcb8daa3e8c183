// astroclear compare: relative L2 difference of two images (runs on different ranks, devices, versions).
#include "jobs/compare_command.hpp"

#include <cmath>
#include <cstdio>
#include <limits>
#include <memory>

#include "common/error.hpp"
#include "io/fits_file.hpp"
#include "jobs/cli.hpp"

namespace astroclear::jobs {

Command add_compare_command(CLI::App& app) {
  auto options = std::make_shared<CompareOptions>();
  CLI::App* command = app.add_subcommand("compare", "relative L2 difference of two FITS images");
  command->add_option("first", options->first, "reference image")->required();
  command->add_option("second", options->second, "image to compare")->required();
  command->add_option("--hdu", options->hdu, "EXTNAME of the HDU to compare (default: first image)");
  add_number(command, "--tolerance", options->tolerance, "exit with code 3 when the difference is larger",
             Range{0, 1e30});
  return {command, [options](const mpi::MpiEnvironment& env) { return env.rank() == 0 ? run_compare(*options) : 0; }};
}

int run_compare(const CompareOptions& options) {
  auto read = [&](const std::string& path) { return io::FitsFile::open_image(path, options.hdu).read_image(); };
  const io::Image a = read(options.first), b = read(options.second);
  if (a.height != b.height || a.width != b.width) {
    throw Error(options.second + ": " + io::shape_text(b.height, b.width) + " pixels, but " + options.first + " is " +
                io::shape_text(a.height, a.width));
  }
  // Pixels that are not finite are counted, never dropped silently: where one image has a value and
  // the other has none, the images differ, whatever the tolerance.
  double diff = 0, norm = 0, worst = 0;
  std::int64_t not_in_first = 0, not_in_second = 0, in_neither = 0;  // pixels without a finite value
  for (std::int64_t i = 0; i < a.size(); ++i) {
    const bool fa = std::isfinite(a.pixels[i]), fb = std::isfinite(b.pixels[i]);
    if (!fa || !fb) {
      not_in_first += !fa && fb;
      not_in_second += fa && !fb;
      in_neither += !fa && !fb;
      continue;
    }
    const double d = static_cast<double>(a.pixels[i]) - b.pixels[i];
    diff += d * d;
    norm += static_cast<double>(a.pixels[i]) * a.pixels[i];
    worst = std::max(worst, std::abs(d));
  }
  const bool finite_alike = not_in_first == 0 && not_in_second == 0;
  const double relative = !finite_alike ? std::numeric_limits<double>::infinity()
                          : norm > 0    ? std::sqrt(diff / norm)
                                        : std::sqrt(diff);
  std::printf("relative_l2 %.6g max_abs %.6g pixels %lld\n", relative, worst, static_cast<long long>(a.size()));
  if (!finite_alike || in_neither > 0) {
    std::printf("not finite: %lld pixels in %s only, %lld in %s only, %lld in both\n",
                static_cast<long long>(not_in_first), options.first.c_str(), static_cast<long long>(not_in_second),
                options.second.c_str(), static_cast<long long>(in_neither));
  }
  if (options.tolerance >= 0 && relative > options.tolerance) {
    std::printf("differ: relative L2 %.6g > tolerance %.6g\n", relative, options.tolerance);
    return kExitAboveTolerance;
  }
  return kExitDone;
}

}  // namespace astroclear::jobs
