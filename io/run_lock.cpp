// RunLock: flock(2) on a small file holding "host pid".
#include "io/run_lock.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>

#include "common/error.hpp"

namespace astroclear::io {

namespace {

std::string read_holder(int fd) {
  std::array<char, 256> text{};
  const ssize_t n = ::pread(fd, text.data(), text.size() - 1, 0);
  std::string holder = n > 0 ? std::string(text.data(), static_cast<std::size_t>(n)) : "an unknown process";
  while (!holder.empty() && (holder.back() == '\n' || holder.back() == ' ')) holder.pop_back();
  return holder;
}

}  // namespace

RunLock::RunLock(const std::string& path, const std::string& what, std::string& warning) : path_(path) {
  fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd_ < 0) {
    warning = path + ": cannot create the lock file (" + std::strerror(errno) + "); running without a lock on " + what;
    return;
  }
  if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
    const int error = errno;
    if (error == EWOULDBLOCK) {
      const std::string holder = read_holder(fd_);
      ::close(fd_);
      fd_ = -1;
      throw Error(what + " is in use by another run (" + holder + ", lock " + path +
                  "); wait for it to end or choose another output (nothing was changed)");
    }
    warning =
        path + ": the file system does not lock (" + std::strerror(error) + "); running without a lock on " + what;
    ::close(fd_);
    fd_ = -1;
    return;
  }
  std::array<char, 256> host{};
  ::gethostname(host.data(), host.size() - 1);
  const std::string holder = "host " + std::string(host.data()) + ", pid " + std::to_string(::getpid()) + "\n";
  if (::ftruncate(fd_, 0) == 0) {
    [[maybe_unused]] const ssize_t written = ::pwrite(fd_, holder.data(), holder.size(), 0);
  }
}

RunLock::~RunLock() {
  if (fd_ < 0) return;
  ::unlink(path_.c_str());  // while still holding it: a run waiting on it then locks a fresh file
  ::close(fd_);
}

}  // namespace astroclear::io
