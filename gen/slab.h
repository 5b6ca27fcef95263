// Reclaimable slab made for real: negative dentries (lookups of names that do
// not exist, in a directory of the run on a disk filesystem) and inodes
// (empty files on a tmpfs mounted for the run). Held until released.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "gen/context.h"
#include "gen/release.h"

namespace fraglab::gen {

enum class SlabObject { kNegativeDentry, kInode };

struct SlabResult {
  SlabObject kind = SlabObject::kNegativeDentry;
  uint64_t requested = 0;
  uint64_t objects_measured = 0;  // nr_negative (dentry-state) or nr_inodes (inode-nr) delta
  int64_t sreclaimable_delta = 0; // bytes, /proc/meminfo
  int64_t sunreclaim_delta = 0;   // bytes
  uint64_t duration_ns = 0;
  std::vector<std::string> notes;
};

// Owns what a slab op created; the destructor removes it (the directory, or
// unmounts the tmpfs), which frees the objects.
class SlabSet {
 public:
  virtual ~SlabSet() = default;
  const SlabResult& result() const { return result_; }
  // Frees the objects the pattern picks (units = objects, in creation order;
  // p.unit_pages is ignored) and returns how many were freed. Inodes: the
  // picked files are unlinked. Negative dentries cannot be freed one by one
  // from userspace: FailedPrecondition (use drop_caches, or release whole).
  [[nodiscard]] virtual absl::StatusOr<uint64_t> ReleasePart(const ReleaseParams& p) = 0;

 protected:
  SlabResult result_;
};

// Negative dentries: `count` stat(2) calls on distinct missing names in
// <work_dir>/negdentries-<n>. Removing the directory prunes them.
[[nodiscard]] absl::StatusOr<std::unique_ptr<SlabSet>> MakeNegativeDentries(uint64_t count,
                                                                            OpContext& ctx);

// Inodes: a tmpfs mounted at <work_dir>/inodes-<n> (journalled) with `count`
// empty files. Needs root (mount); FailedPrecondition otherwise.
[[nodiscard]] absl::StatusOr<std::unique_ptr<SlabSet>> MakeInodes(uint64_t count, OpContext& ctx);

}  // namespace fraglab::gen
