// remove_tree with nftw (depth first, physical walk: links are removed, not followed); files
// written through a temporary file and a rename.
#include "io/file_tree.hpp"

#include <ftw.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>

#include "common/error.hpp"

namespace astroclear::io {
namespace {

int remove_entry(const char* path, const struct stat*, int, struct FTW*) { return std::remove(path); }

}  // namespace

bool remove_tree(const std::string& path) noexcept {
  return ::nftw(path.c_str(), remove_entry, 16, FTW_DEPTH | FTW_PHYS) == 0;
}

void write_atomically(const std::string& path, const std::function<void(const std::string& temp)>& write) {
  const std::string temp = path + ".tmp." + std::to_string(::getpid());
  try {
    write(temp);
    std::filesystem::rename(temp, path);
  } catch (...) {
    std::error_code ignored;
    std::filesystem::remove(temp, ignored);
    throw;
  }
}

void write_text_file(const std::string& path, const std::string& text, const std::string& what) {
  write_atomically(path, [&](const std::string& temp) {
    std::ofstream out(temp);
    out << text;
    out.close();
    if (!out) throw Error(path + ": " + what);
  });
}

}  // namespace astroclear::io
