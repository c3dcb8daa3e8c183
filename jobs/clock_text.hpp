// Times as people read them in logs and headers.
#pragma once

#include <cstdio>
#include <ctime>
#include <string>

namespace astroclear::jobs {

/// Now, UTC, ISO 8601 to the second ("2026-11-23T14:05:09").
inline std::string utc_now() {
  const std::time_t now = std::time(nullptr);
  char text[32];
  std::strftime(text, sizeof(text), "%Y-%m-%dT%H:%M:%S", std::gmtime(&now));
  return text;
}

/// "12.3 s", "4.5 min" or "2.1 h".
inline std::string format_duration(double seconds) {
  char text[32];
  if (seconds < 120) std::snprintf(text, sizeof(text), "%.1f s", seconds);
  else if (seconds < 7200) std::snprintf(text, sizeof(text), "%.1f min", seconds / 60);
  else std::snprintf(text, sizeof(text), "%.1f h", seconds / 3600);
  return text;
}

}  // namespace astroclear::jobs
