// astroclear compare: relative L2 difference of two images (runs on different ranks, devices, versions).
#include "jobs/compare_command.hpp"

#include <cmath>
#include <cstdio>
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
  command->add_option("--tolerance", options->tolerance, "exit with code 3 when the difference is larger");
  return {command, [options](const mpi::MpiEnvironment& env) { return env.rank() == 0 ? run_compare(*options) : 0; }};
}

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
  return kExitDone;
}

}  // namespace astroclear::jobs
