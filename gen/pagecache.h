// Page cache made for real: files written and read on a directory, or on a
// filesystem the run creates (ext4 or xfs on a loop device, with a chosen
// block size; xfs block sizes above the page size need kernel large block
// size support, 6.12+), or on a tmpfs; churn cycles with posix_fadvise.
#pragma once

#include <fcntl.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "gen/context.h"

namespace fraglab::gen {

struct FsParams {
  std::string type = "ext4";  // ext4 | xfs | btrfs | tmpfs
  uint64_t block_size = 0;    // bytes; 0 = mkfs default
  uint64_t size_bytes = 0;    // filesystem size; 0 = sized by the caller's data
};

// A filesystem mounted for the run. Creation journals every step (image
// file, loop device, mount point, mount) before taking it; the destructor
// undoes them in reverse (unmount, detach, remove).
class Filesystem {
 public:
  // mkfs on a loop device over a sparse image in ctx.work_dir (or a tmpfs),
  // mounted at <work_dir>/fs-<n>. Needs root. FailedPrecondition when mkfs is
  // missing or the kernel refuses the block size (with the reason).
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<Filesystem>> Create(const FsParams& params,
                                                                          OpContext& ctx);
  ~Filesystem();
  Filesystem(const Filesystem&) = delete;
  Filesystem& operator=(const Filesystem&) = delete;

  const std::string& mount_point() const { return mount_point_; }
  const std::string& device() const { return device_; }  // "" for tmpfs
  std::string Describe() const;

 private:
  Filesystem() = default;
  FsParams params_;
  std::string image_;
  std::string device_;
  std::string mount_point_;
  bool mounted_ = false;
};

struct PagecacheParams {
  uint64_t bytes = 0;       // total file data
  uint64_t files = 1;       // spread over this many files
  bool write = true;        // false: files are made first, then read each cycle
  uint64_t cycles = 1;      // I/O passes; between passes the cache is dropped per fadvise
  int fadvise = -1;         // POSIX_FADV_*; -1 = none
};

struct PagecacheResult {
  uint64_t bytes_written = 0;
  uint64_t bytes_read = 0;
  uint64_t cycles = 0;
  int64_t file_pages_delta = 0;  // nr_file_pages delta (pages), start to end
  uint64_t duration_ns = 0;
  std::vector<std::string> notes;
};

// The files a pagecache op made, plus the filesystem when it made one; the
// destructor removes the files and then the filesystem.
class PagecacheSet {
 public:
  PagecacheSet(MemoryLedger* ledger, uint64_t reserved) : ledger_(ledger), reserved_(reserved) {}
  ~PagecacheSet();
  PagecacheSet(const PagecacheSet&) = delete;
  PagecacheSet& operator=(const PagecacheSet&) = delete;

  // After drop_caches the files' pages are gone from memory (the files stay):
  // gives the ledger reservation back. Idempotent.
  void DropReservation();

  std::vector<std::string> files;
  std::unique_ptr<Filesystem> fs;
  PagecacheResult result;

 private:
  MemoryLedger* ledger_;
  uint64_t reserved_;
};

// Writes/reads `params.bytes` over `params.files` files in `dir` (a fresh
// subdirectory is not made: names are fraglab-pc-<n>-<i>). With fadvise
// DONTNEED each cycle but the last ends by dropping the files' cache, so the
// cycles churn; the last cycle leaves its pages cached.
[[nodiscard]] absl::StatusOr<std::unique_ptr<PagecacheSet>> FillPagecache(
    const std::string& dir, const PagecacheParams& params, OpContext& ctx);

// True when the running kernel supports filesystem blocks larger than the
// page size (large block sizes, 6.12+); `why` explains a false answer.
bool KernelSupportsLargeBlocks(std::string* why);

}  // namespace fraglab::gen
