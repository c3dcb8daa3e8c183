// Files and folder trees: files written whole or not at all, and removing a folder tree without
// std::filesystem::remove_all (see Note [libtorch filesystem]).
#pragma once

#include <functional>
#include <string>
#include <vector>

namespace astroclear::io {

// Note [libtorch filesystem]: the pip LibTorch 2.x exports its own copy of
// std::filesystem::remove_all, which the dynamic linker binds our calls to, and it jumps to a null
// pointer (seen on LibTorch 2.11). Recursive removal therefore goes through POSIX nftw here.

/// Removes `path` and everything below it; returns false (never throws) if anything stayed.
bool remove_tree(const std::string& path) noexcept;

/// Runs `write` on a temporary path beside `path` ("<path>.tmp.<pid>"), then renames that file
/// over `path`, so that `path` is always either what it was or the whole new file. If `write`
/// throws or the rename fails, the temporary file is removed and the exception propagates.
/// FITS outputs, checkpoints, previews and JSON results are all written through this.
void write_atomically(const std::string& path, const std::function<void(const std::string& temp)>& write);

/// `text` written to `path` through write_atomically; a failed write throws Error "<path>: <what>".
void write_text_file(const std::string& path, const std::string& text, const std::string& what = "cannot be written");

/// Writes `bytes` to the new file `path` (which must not exist) and syncs it to disk. On any error
/// (a full disk: "No space left on device") the partial file is removed and Error names the path
/// and the reason. `midway` (tests only) runs when half of the bytes are written.
void write_file_durably(const std::string& path, const std::vector<char>& bytes,
                        const std::function<void()>& midway = {});

}  // namespace astroclear::io
