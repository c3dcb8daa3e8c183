// An advisory lock that keeps two runs from writing the same output or checkpoint folder.
#pragma once

#include <string>

namespace astroclear::io {

// Note [run lock]: `train` holds an flock(2) on "<output>.lock" and "<checkpoint folder>.lock"
// from its start to its end. A second run on the same output or folder is refused at its start,
// naming the holder (host and process id written in the file), instead of running to the end and
// overwriting the first run's checkpoints. The kernel releases an flock on every exit path, a
// crash or SIGKILL included, so a stale file never blocks a later run; the file is removed on a
// normal exit. Where the file system does not support flock (some network mounts), the run goes
// on with a warning.
class RunLock {
 public:
  /// Takes the lock on `path` (created if absent), or throws Error naming `what` and the holder.
  /// `warning` is set when the lock could not be taken for a reason other than another holder.
  RunLock(const std::string& path, const std::string& what, std::string& warning);
  ~RunLock();
  RunLock(const RunLock&) = delete;
  RunLock& operator=(const RunLock&) = delete;

 private:
  std::string path_;
  int fd_ = -1;
};

}  // namespace astroclear::io
