// provenance_cards and input_history: the header every output image carries.
#include "jobs/provenance.hpp"

#include <cstdio>

#include "io/fits_output.hpp"
#include "jobs/clock_text.hpp"

#ifndef ASTROCLEAR_VERSION
#define ASTROCLEAR_VERSION "unknown"
#endif

namespace astroclear::jobs {

std::string quoted(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += (c == '\'') ? std::string("''") : std::string(1, c);
  return out + "'";
}

std::vector<io::HeaderCard> provenance_cards(const LoadedStack& loaded, const std::string& product) {
  std::vector<io::HeaderCard> cards = io::wcs_cards(loaded.first_header);
  cards.push_back({"ORIGIN", quoted("astroclear"), "software that made this file"});
  cards.push_back({"ACVERS", quoted(ASTROCLEAR_VERSION), "astroclear version"});
  cards.push_back({"ACPROD", quoted(product), "what this image is"});
  cards.push_back({"DATE", quoted(utc_now()), "UTC time the file was written"});
  cards.push_back({"ACNEXP", std::to_string(loaded.plan.spec.exposures.size()), "exposures in the stack"});
  cards.push_back({"BUNIT", quoted("calibrated flux / pixel"), "input units divided by each FSCALE"});
  return cards;
}

std::vector<std::string> input_history(const LoadedStack& loaded) {
  std::vector<std::string> lines{"astroclear manifest: " + loaded.plan.spec.source};
  const auto& exposures = loaded.plan.spec.exposures;
  for (std::size_t t = 0; t < exposures.size(); ++t) {
    char prefix[32];
    std::snprintf(prefix, sizeof(prefix), "input %03zu: ", t);
    lines.push_back(prefix + exposures[t].label() + " psf " + exposures[t].psf);
  }
  return lines;
}

}  // namespace astroclear::jobs
