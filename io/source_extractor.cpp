// extract_sources: writes a SExtractor configuration, runs it (run_process), reads its catalogue.
#include "io/source_extractor.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "common/error.hpp"
#include "io/process.hpp"

namespace astroclear::io {
namespace {

bool executable_file(const std::string& path) {
  struct stat info {};
  return ::stat(path.c_str(), &info) == 0 && S_ISREG(info.st_mode) && ::access(path.c_str(), X_OK) == 0;
}

/// A normalised Gaussian kernel of odd size ~3 FWHM, in SExtractor's .conv format.
void write_filter(const std::string& path, double fwhm) {
  const double sigma = fwhm / (2 * std::sqrt(2 * std::log(2.0)));
  const int half = std::max(1, static_cast<int>(std::ceil(1.5 * fwhm)));
  std::ofstream out(path);
  out << "CONV NORM\n# Gaussian, FWHM " << fwhm << " pixels (astroclear evaluate)\n";
  for (int y = -half; y <= half; ++y) {
    for (int x = -half; x <= half; ++x) out << std::exp(-(x * x + y * y) / (2 * sigma * sigma)) << (x < half ? " " : "\n");
  }
  if (!out) throw Error(path + ": cannot write the detection filter");
}

}  // namespace

std::string find_source_extractor(const std::string& requested) {
  if (!requested.empty()) {
    if (!executable_file(requested)) throw Error("--sextractor: " + requested + " is not an executable file");
    return requested;
  }
  const char* path = std::getenv("PATH");
  std::stringstream dirs(path ? path : "/usr/bin:/bin");
  std::vector<std::string> folders;
  for (std::string dir; std::getline(dirs, dir, ':');) folders.push_back(dir.empty() ? "." : dir);
  for (const char* name : {"source-extractor", "sex"}) {
    for (const auto& dir : folders) {
      if (executable_file(dir + "/" + name)) return dir + "/" + name;
    }
  }
  throw Error("SExtractor is not installed: neither source-extractor nor sex is on PATH. Install it with "
              "'apt-get install source-extractor' (Debian/Ubuntu), or pass --sextractor PATH");
}

std::vector<Detection> extract_sources(const std::string& detect, const std::string& measure,
                                       const SourceExtractorSettings& settings, const std::string& work_dir,
                                       const std::string& name) {
  if (!(settings.threshold > 0)) throw Error("detection threshold must be > 0, got " + std::to_string(settings.threshold));
  const std::string executable = find_source_extractor(settings.executable);
  const std::string config = work_dir + "/evaluate.sex", params = work_dir + "/evaluate.param",
                    filter = work_dir + "/evaluate.conv", catalog = work_dir + "/" + name + ".cat",
                    log = work_dir + "/" + name + ".log";
  write_filter(filter, settings.filter_fwhm);
  {
    std::ofstream out(params);
    out << "NUMBER\nX_IMAGE\nY_IMAGE\nFLUX_APER(1)\nFLUX_AUTO\nFWHM_IMAGE\nFLAGS\n";
  }
  {
    std::ofstream out(config);
    out.precision(10);
    out << "CATALOG_NAME " << catalog << "\nCATALOG_TYPE ASCII_HEAD\nPARAMETERS_NAME " << params
        << "\nDETECT_TYPE CCD\nDETECT_MINAREA " << settings.min_area << "\nTHRESH_TYPE ABSOLUTE\nDETECT_THRESH "
        << settings.threshold << "\nANALYSIS_THRESH " << settings.threshold << "\nFILTER Y\nFILTER_NAME " << filter
        << "\nDEBLEND_NTHRESH 32\nDEBLEND_MINCONT 0.005\nCLEAN Y\nCLEAN_PARAM 1.0\nMASK_TYPE CORRECT"
        << "\nPHOT_APERTURES " << settings.aperture_diameter
        << "\nPHOT_AUTOPARAMS 2.5,3.5\nPHOT_PETROPARAMS 2.0,3.5\nSATUR_LEVEL 1e20\nMAG_ZEROPOINT 27.0\nGAIN 0.0"
        << "\nPIXEL_SCALE 1.0\nSEEING_FWHM 1.0\nBACK_TYPE MANUAL\nBACK_VALUE 0.0\nBACKPHOTO_TYPE GLOBAL"
        << "\nCHECKIMAGE_TYPE NONE\nMEMORY_OBJSTACK 30000\nMEMORY_PIXSTACK 3000000\nMEMORY_BUFSIZE 1024"
        << "\nVERBOSE_TYPE NORMAL\nWRITE_XML N\nNTHREADS 1\n";
    if (!out) throw Error(config + ": cannot write the SExtractor configuration");
  }
  const std::string images = measure.empty() ? detect : detect + "," + measure;
  const int code = run_process({executable, images, "-c", config}, log);
  if (code != 0) {
    throw Error(executable + " " + images + " failed (exit " + std::to_string(code) + "); its last output:" + file_tail(log, 8));
  }
  return read_sextractor_catalog(catalog);
}

}  // namespace astroclear::io
