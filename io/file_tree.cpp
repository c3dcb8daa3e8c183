// remove_tree with nftw (depth first, physical walk: links are removed, not followed).
#include "io/file_tree.hpp"

#include <ftw.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>

#include "mpi/error.hpp"

namespace astroclear::io {
namespace {

int remove_entry(const char* path, const struct stat*, int, struct FTW*) { return std::remove(path); }

}  // namespace

bool remove_tree(const std::string& path) noexcept {
  return ::nftw(path.c_str(), remove_entry, 16, FTW_DEPTH | FTW_PHYS) == 0;
}

void write_text_file(const std::string& path, const std::string& text, const std::string& what) {
  const std::string temp = path + ".tmp." + std::to_string(::getpid());
  std::ofstream out(temp);
  out << text;
  out.close();
  if (!out || std::rename(temp.c_str(), path.c_str()) != 0) {
    std::remove(temp.c_str());
    throw Error(path + ": " + what);
  }
}

}  // namespace astroclear::io
