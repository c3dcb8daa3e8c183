// Removing a folder tree without std::filesystem::remove_all (see Note [libtorch filesystem]).
#pragma once

#include <string>

namespace astroclear::io {

// Note [libtorch filesystem]: the pip LibTorch 2.x exports its own copy of
// std::filesystem::remove_all, which the dynamic linker binds our calls to, and it jumps to a null
// pointer (seen on LibTorch 2.11). Recursive removal therefore goes through POSIX nftw here.

/// Removes `path` and everything below it; returns false (never throws) if anything stayed.
bool remove_tree(const std::string& path) noexcept;

}  // namespace astroclear::io
