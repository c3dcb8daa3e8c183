// CheckpointStore: temp file + verify + fsync + rename, then the latest.h5 link, then pruning.
#include "io/checkpoint_store.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <regex>

#include "io/file_tree.hpp"
#include "common/error.hpp"

namespace astroclear::io {
namespace fs = std::filesystem;
namespace {

const std::regex kCheckpointName(R"(checkpoint_(\d+)\.h5)");
const std::regex kTemporaryName(R"((checkpoint_\d+\.h5|latest\.h5)\.tmp\.\d+)");
constexpr const char* kLatest = "latest.h5";

/// Forces a file's (or a folder's) data to stable storage, so a rename after it is durable.
void sync_path(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY);
  if (fd < 0) throw Error(path + ": cannot open for fsync: " + std::strerror(errno));
  const int status = ::fsync(fd);
  ::close(fd);
  if (status != 0 && errno != EINVAL) throw Error(path + ": fsync failed: " + std::strerror(errno));
}

std::int64_t iteration_of(const std::string& name) {
  std::smatch m;
  return std::regex_match(name, m, kCheckpointName) ? std::stoll(m[1]) : -1;
}

}  // namespace

CheckpointStore::CheckpointStore(std::string directory, int keep) : directory_(std::move(directory)), keep_(keep) {
  if (keep_ < 1) throw Error("--keep-checkpoints: must be >= 1, got " + std::to_string(keep_));
}

std::string CheckpointStore::path_for(std::int64_t iteration) const {
  char name[40];
  std::snprintf(name, sizeof(name), "checkpoint_%08lld.h5", static_cast<long long>(iteration));
  return (fs::path(directory_) / name).string();
}

void CheckpointStore::create_directory() const {
  if (fs::is_directory(directory_)) return;
  if (::mkdir(directory_.c_str(), 0777) != 0 && errno != EEXIST) {
    throw Error(directory_ + ": cannot create the checkpoint folder: " + std::strerror(errno));
  }
}

std::vector<std::string> CheckpointStore::candidates() const {
  std::vector<std::pair<std::int64_t, std::string>> found;
  std::error_code error;
  if (!fs::is_directory(directory_, error)) return {};
  for (const auto& entry : fs::directory_iterator(directory_, error)) {
    const std::int64_t iteration = iteration_of(entry.path().filename().string());
    if (iteration >= 0) found.emplace_back(iteration, entry.path().string());
  }
  std::sort(found.begin(), found.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
  std::vector<std::string> paths;
  const fs::path latest = fs::path(directory_) / kLatest;
  if (fs::is_symlink(latest, error)) {
    paths.push_back((fs::path(directory_) / fs::read_symlink(latest, error).filename()).string());
  }
  for (const auto& [iteration, path] : found) {
    if (std::find(paths.begin(), paths.end(), path) == paths.end()) paths.push_back(path);
  }
  return paths;
}

std::string CheckpointStore::save(const Checkpoint& checkpoint, const std::function<void()>& midway) const {
  create_directory();
  const std::string path = path_for(checkpoint.iteration);
  write_atomically(path, [&](const std::string& temp) {
    write_checkpoint_file(temp, checkpoint, midway);
    read_checkpoint_file(temp, true);  // read-back: the file is whole and its checksums hold
    sync_path(temp);
  });
  // The link is replaced atomically too: a new link under a temporary name, renamed over.
  const fs::path link = fs::path(directory_) / kLatest;
  const std::string link_temp = link.string() + ".tmp." + std::to_string(::getpid());
  std::error_code ignored;
  fs::remove(link_temp, ignored);
  fs::create_symlink(fs::path(path).filename(), link_temp);
  fs::rename(link_temp, link);
  sync_path(directory_);

  const std::vector<std::string> all = candidates();
  std::vector<std::pair<std::int64_t, std::string>> by_iteration;
  for (const auto& p : all) by_iteration.emplace_back(iteration_of(fs::path(p).filename().string()), p);
  std::sort(by_iteration.begin(), by_iteration.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
  for (std::size_t i = static_cast<std::size_t>(keep_); i < by_iteration.size(); ++i) {
    if (by_iteration[i].second != path) fs::remove(by_iteration[i].second, ignored);
  }
  return path;
}

std::optional<CheckpointStore::Loaded> CheckpointStore::load_latest(std::vector<std::string>& skipped,
                                                                    bool with_latent) const {
  for (const std::string& path : candidates()) {
    if (!fs::exists(path)) {
      skipped.push_back(path + ": latest.h5 points to it but it does not exist");
      continue;
    }
    try {
      return Loaded{path, read_checkpoint_file(path, with_latent)};
    } catch (const Error& e) {
      skipped.push_back(e.what());
    }
  }
  return std::nullopt;
}

int CheckpointStore::clear() const {
  int removed = 0;
  std::error_code ignored;
  for (const std::string& path : candidates()) removed += fs::remove(path, ignored) ? 1 : 0;
  removed += fs::remove(fs::path(directory_) / kLatest, ignored) ? 1 : 0;
  return removed;
}

std::vector<std::string> CheckpointStore::remove_stale_temporaries() const {
  std::vector<std::string> removed;
  std::error_code error;
  if (!fs::is_directory(directory_, error)) return removed;
  for (const auto& entry : fs::directory_iterator(directory_, error)) {
    if (std::regex_match(entry.path().filename().string(), kTemporaryName)) {
      std::error_code ignored;
      if (fs::remove(entry.path(), ignored)) removed.push_back(entry.path().string());
    }
  }
  return removed;
}

}  // namespace astroclear::io
