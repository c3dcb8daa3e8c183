// "Did you mean": the nearest of a set of names to a misspelt one, for messages about unknown keys.
#pragma once

#include <string>
#include <vector>

namespace astroclear {

/// "; did you mean 'X'?" for the nearest of `names` to `word` (Levenshtein distance below a third
/// of the word's length plus 2), else "".
std::string nearest_name(const std::string& word, const std::vector<std::string>& names);

}  // namespace astroclear
