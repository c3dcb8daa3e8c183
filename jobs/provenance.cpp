// provenance_cards and input_history: the header every output image carries.
#include "jobs/provenance.hpp"

#include <algorithm>
#include <cstdio>
#include <cstring>

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
  cards.push_back({"BUNIT", quoted("calibrated flux / pixel"), "inputs on the manifest's flux scale"});
  return cards;
}

std::vector<std::string> input_history(const LoadedStack& loaded) {
  std::vector<std::string> lines{"astroclear manifest: " + loaded.plan.spec.source};
  const auto& exposures = loaded.plan.spec.exposures;
  for (std::size_t t = 0; t < exposures.size(); ++t) {
    char prefix[32];
    std::snprintf(prefix, sizeof(prefix), "input %03zu: ", t);
    const auto& held_out = loaded.plan.held_out;
    const bool held = std::binary_search(held_out.begin(), held_out.end(), static_cast<int>(t));
    lines.push_back(prefix + exposures[t].label() + " psf " + exposures[t].psf + (held ? " (held out)" : ""));
  }
  return lines;
}

void add_validation_provenance(io::OutputHdu& hdu, const LoadedStack& loaded, const ValidationTrack& track,
                               StopRule stop, int iteration, int limit) {
  const bool best = stop == StopRule::kBest && track.best_iteration() >= 0;
  const int kept = best ? track.best_iteration() : iteration;
  double loss = track.last_loss();
  for (std::size_t k = 0; k < track.iterations().size(); ++k) {
    if (track.iterations()[k] == kept) loss = track.losses()[k];
  }
  hdu.cards.push_back({"ACVALN", std::to_string(loaded.plan.held_out.size()), "exposures held out of the fit"});
  hdu.cards.push_back({"ACVALIT", std::to_string(kept), best ? "iteration kept: lowest held-out loss" : "iteration"});
  char value[32];
  std::snprintf(value, sizeof(value), "%.9g", loss);
  hdu.cards.push_back({"ACVALLOS", value, "held-out loss per good pixel of this image"});
  hdu.cards.push_back({"ACSTOP", quoted(name_of(stop)), "--stop: best (lowest held-out loss) or last"});
  hdu.history.push_back("astroclear stop: " + track.stop_reason(iteration, limit));
  std::string line;
  for (std::size_t k = 0; k < track.iterations().size(); ++k) {
    std::snprintf(value, sizeof(value), "%lld:%.6g", static_cast<long long>(track.iterations()[k]), track.losses()[k]);
    if (line.size() + std::strlen(value) > 45) {  // HISTORY text is at most 72 characters
      hdu.history.push_back("astroclear held-out loss " + line);
      line.clear();
    }
    line += (line.empty() ? "" : " ") + std::string(value);
  }
  if (!line.empty()) hdu.history.push_back("astroclear held-out loss " + line);
}

}  // namespace astroclear::jobs
