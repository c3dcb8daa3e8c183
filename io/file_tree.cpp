// remove_tree with nftw (depth first, physical walk: links are removed, not followed).
#include "io/file_tree.hpp"

#include <ftw.h>

#include <cstdio>

namespace astroclear::io {
namespace {

int remove_entry(const char* path, const struct stat*, int, struct FTW*) { return std::remove(path); }

}  // namespace

bool remove_tree(const std::string& path) noexcept {
  return ::nftw(path.c_str(), remove_entry, 16, FTW_DEPTH | FTW_PHYS) == 0;
}

}  // namespace astroclear::io
