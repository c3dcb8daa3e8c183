// remove_tree with nftw (depth first, physical walk: links are removed, not followed); files
// written through a temporary file and a rename.
#include "io/file_tree.hpp"

#include <fcntl.h>
#include <ftw.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
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

void write_file_durably(const std::string& path, const std::vector<char>& bytes, const std::function<void()>& midway) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) throw Error(path + ": cannot be created (" + std::strerror(errno) + ")");
  std::size_t done = 0;
  int error = 0;
  const std::size_t half = bytes.size() / 2;
  while (done < bytes.size() && error == 0) {
    if (midway && done == half) {
      ::fsync(fd);  // the first half is on disk when the test hook stops the process
      midway();
    }
    const std::size_t until = midway && done < half ? half : bytes.size();
    const ssize_t n = ::write(fd, bytes.data() + done, until - done);
    if (n > 0) {
      done += static_cast<std::size_t>(n);
    } else if (n < 0 && errno != EINTR) {
      error = errno;
    }
  }
  if (error == 0 && ::fsync(fd) != 0) error = errno;
  if (::close(fd) != 0 && error == 0) error = errno;
  if (error != 0) {
    ::unlink(path.c_str());
    throw Error(path + ": writing " + std::to_string(bytes.size()) + " bytes failed (" + std::strerror(error) +
                "); nothing was left at this path");
  }
}

}  // namespace astroclear::io
