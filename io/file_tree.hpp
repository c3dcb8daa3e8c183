// Files and folder trees: a text file written whole or not at all, and removing a folder tree
// without std::filesystem::remove_all (see Note [libtorch filesystem]).
#pragma once

#include <string>

namespace astroclear::io {

// Note [libtorch filesystem]: the pip LibTorch 2.x exports its own copy of
// std::filesystem::remove_all, which the dynamic linker binds our calls to, and it jumps to a null
// pointer (seen on LibTorch 2.11). Recursive removal therefore goes through POSIX nftw here.

/// Removes `path` and everything below it; returns false (never throws) if anything stayed.
bool remove_tree(const std::string& path) noexcept;

/// Writes `text` to a temporary file beside `path` and renames it over `path`, so that no
/// half-written file is ever left; on failure removes the temporary file and throws Error
/// "<path>: <what>".
void write_text_file(const std::string& path, const std::string& text, const std::string& what = "cannot be written");

}  // namespace astroclear::io
