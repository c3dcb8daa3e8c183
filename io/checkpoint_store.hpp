// CheckpointStore: a folder of checkpoints with a 'latest.h5' pointer; atomic saves, keep-K pruning.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "io/checkpoint_file.hpp"

namespace astroclear::io {

/// The checkpoints of one run: DIR/checkpoint_<iteration, 8 digits>.h5 and the symbolic link
/// DIR/latest.h5 to the newest one (h5dump DIR/latest.h5 works). Single writer (rank 0).
class CheckpointStore {
 public:
  /// `keep`: how many checkpoints stay after a save (>= 1).
  CheckpointStore(std::string directory, int keep);

  const std::string& directory() const { return directory_; }

  /// Creates the folder if it is missing (its parent must exist).
  void create_directory() const;

  /// Checkpoint files in the folder: the one latest.h5 names first, then the others by
  /// iteration, newest first. Empty when the folder does not exist.
  std::vector<std::string> candidates() const;

  /// Writes checkpoint_<iteration>.h5 through a temporary file in the same folder: write, read
  /// back and verify, fsync, rename over; then points latest.h5 at it and prunes to the newest
  /// `keep`. A failure at any step leaves the previous checkpoints and latest.h5 as they were.
  /// `midway` as in write_checkpoint_file. Returns the path written.
  std::string save(const Checkpoint& checkpoint, const std::function<void()>& midway = {}) const;

  struct Loaded {
    std::string path;
    Checkpoint checkpoint;
  };
  /// The newest checkpoint that reads back whole (read_checkpoint_file). Every one passed over is
  /// added to `skipped` as "PATH: why". nullopt when none is usable.
  std::optional<Loaded> load_latest(std::vector<std::string>& skipped, bool with_latent = false) const;

  /// Deletes every checkpoint and latest.h5 (starting over with --overwrite); returns how many files.
  int clear() const;
  /// Deletes temporary files that killed writers left behind; returns their paths.
  std::vector<std::string> remove_stale_temporaries() const;

 private:
  std::string path_for(std::int64_t iteration) const;
  std::string directory_;
  int keep_;
};

}  // namespace astroclear::io
