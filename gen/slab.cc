#include "gen/slab.h"

#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdlib>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/status.h"
#include "gen/sysfs.h"

namespace fraglab::gen {
namespace {

uint64_t NowNs() {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000ULL + static_cast<uint64_t>(ts.tv_nsec);
}

std::atomic<int> g_slab_seq{0};

// Field `index` of a whitespace-separated /proc/sys/fs file.
uint64_t FsField(const char* path, size_t index) {
  auto text = ReadSetting(path);
  if (!text.ok()) return 0;
  std::vector<absl::string_view> f = absl::StrSplit(*text, absl::ByAnyChar(" \t"), absl::SkipEmpty());
  uint64_t v = 0;
  if (index < f.size() && absl::SimpleAtoi(f[index], &v)) return v;
  return 0;
}

struct SlabMeter {
  uint64_t srec = 0, sunr = 0;
  void Read() {
    auto kv = ReadKeyValueFile("/proc/meminfo");
    if (kv.ok()) {
      srec = ValueOr0(*kv, "SReclaimable");
      sunr = ValueOr0(*kv, "SUnreclaim");
    }
  }
};

// Completes `r` after the objects were made: the kernel counter that counts
// them went from `before` to `after`, and the slab totals moved from `m0` to
// now.
void FinishMeasurement(const SlabMeter& m0, uint64_t before, uint64_t after, SlabResult& r) {
  SlabMeter m1;
  m1.Read();
  r.objects_measured = after > before ? after - before : 0;
  r.sreclaimable_delta = static_cast<int64_t>(m1.srec) - static_cast<int64_t>(m0.srec);
  r.sunreclaim_delta = static_cast<int64_t>(m1.sunr) - static_cast<int64_t>(m0.sunr);
}

// Approximate slab bytes per object, for the budget (dentry 192 B, shmem
// inode ~ 700 B plus its dentry).
constexpr uint64_t kDentryBytes = 256;
constexpr uint64_t kInodeBytes = 1024;

class DirSlab final : public SlabSet {
 public:
  DirSlab(MemoryLedger* ledger, uint64_t reserved, std::string dir)
      : ledger_(ledger), reserved_(reserved), dir_(std::move(dir)) {}
  absl::StatusOr<uint64_t> ReleasePart(const ReleaseParams&) override {
    return absl::FailedPreconditionError(
        "negative dentries cannot be freed one by one from userspace; release them whole "
        "or use drop_caches");
  }
  ~DirSlab() override {
    ::rmdir(dir_.c_str());  // prunes the negative dentries below it
    ledger_->Release(reserved_);
  }
  SlabResult& mutable_result() { return result_; }

 private:
  MemoryLedger* ledger_;
  uint64_t reserved_;
  std::string dir_;
};

class TmpfsSlab final : public SlabSet {
 public:
  TmpfsSlab(MemoryLedger* ledger, uint64_t reserved, std::string mount_point)
      : ledger_(ledger), reserved_(reserved), mp_(std::move(mount_point)) {}
  ~TmpfsSlab() override {
    if (mounted_ && ::umount2(mp_.c_str(), 0) != 0) ::umount2(mp_.c_str(), MNT_DETACH);
    ::rmdir(mp_.c_str());
    ledger_->Release(reserved_);
  }
  void set_mounted() { mounted_ = true; }
  void set_count(uint64_t n) { removed_.assign(n, false); }
  absl::StatusOr<uint64_t> ReleasePart(const ReleaseParams& p) override {
    ASSIGN_OR_RETURN(std::vector<UnitRange> ranges, ReleaseRanges(removed_.size(), p));
    uint64_t freed = 0;
    for (const UnitRange& u : ranges) {
      for (uint64_t i = u.first; i < u.first + u.count; ++i) {
        if (removed_[i]) continue;
        const std::string name = absl::StrCat(mp_, "/f", i);
        if (::unlink(name.c_str()) != 0 && errno != ENOENT) {
          return ErrnoStatus(errno, absl::StrCat("slab inode release: unlink ", name));
        }
        removed_[i] = true;
        ++freed;
      }
    }
    return freed;
  }
  SlabResult& mutable_result() { return result_; }

 private:
  MemoryLedger* ledger_;
  uint64_t reserved_;
  std::string mp_;
  bool mounted_ = false;
  std::vector<bool> removed_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<SlabSet>> MakeNegativeDentries(uint64_t count, OpContext& ctx) {
  if (count == 0) return absl::InvalidArgumentError("slab dentry: count is 0");
  if (ctx.work_dir.empty()) return absl::InternalError("slab dentry: no work directory");
  const std::string dir = absl::StrCat(ctx.work_dir, "/negdentries-", g_slab_seq++);
  RETURN_IF_ERROR(ctx.ledger->Reserve(count * kDentryBytes, "slab dentry"));
  if (::mkdir(dir.c_str(), 0700) != 0) {
    int err = errno;
    ctx.ledger->Release(count * kDentryBytes);
    return ErrnoStatus(err, absl::StrCat("slab dentry: mkdir ", dir));
  }
  if (ctx.journal != nullptr) RETURN_IF_ERROR(ctx.journal->Record({JournalEntryKind::kDir, dir, ""}));
  auto set = std::make_unique<DirSlab>(ctx.ledger, count * kDentryBytes, dir);
  SlabResult& r = set->mutable_result();
  r.kind = SlabObject::kNegativeDentry;
  r.requested = count;
  SlabMeter m0;
  m0.Read();
  const uint64_t neg0 = FsField("/proc/sys/fs/dentry-state", 4);
  const uint64_t t0 = NowNs();
  struct stat st;
  std::string name;
  for (uint64_t i = 0; i < count; ++i) {
    if (i % 4096 == 0 && ctx.stop->requested()) return ctx.stop->StoppedStatus("slab dentry");
    name = absl::StrCat(dir, "/missing-", i);
    if (::stat(name.c_str(), &st) == 0) {
      return absl::InternalError(absl::StrCat("slab dentry: ", name, " exists"));
    }
  }
  r.duration_ns = NowNs() - t0;
  FinishMeasurement(m0, neg0, FsField("/proc/sys/fs/dentry-state", 4), r);
  return std::unique_ptr<SlabSet>(std::move(set));
}

absl::StatusOr<std::unique_ptr<SlabSet>> MakeInodes(uint64_t count, OpContext& ctx) {
  if (count == 0) return absl::InvalidArgumentError("slab inode: count is 0");
  RETURN_IF_ERROR(RequireJournal(ctx, "slab inode (mounts a tmpfs)"));
  const std::string mp = absl::StrCat(ctx.work_dir, "/inodes-", g_slab_seq++);
  RETURN_IF_ERROR(ctx.ledger->Reserve(count * kInodeBytes, "slab inode"));
  auto set = std::make_unique<TmpfsSlab>(ctx.ledger, count * kInodeBytes, mp);
  RETURN_IF_ERROR(ctx.journal->Record({JournalEntryKind::kDir, mp, ""}));
  if (::mkdir(mp.c_str(), 0700) != 0) return ErrnoStatus(errno, absl::StrCat("slab inode: mkdir ", mp));
  RETURN_IF_ERROR(ctx.journal->Record({JournalEntryKind::kMount, mp, ""}));
  const std::string opts = absl::StrCat("size=64m,nr_inodes=", count + 1024, ",mode=0700");
  if (::mount("fraglab-inodes", mp.c_str(), "tmpfs", MS_NOSUID | MS_NODEV, opts.c_str()) != 0) {
    int err = errno;
    if (err == EPERM) {
      return absl::FailedPreconditionError(absl::StrCat("slab inode needs root to mount a tmpfs at ", mp));
    }
    return ErrnoStatus(err, absl::StrCat("slab inode: mount tmpfs at ", mp));
  }
  set->set_mounted();
  set->set_count(count);
  SlabResult& r = set->mutable_result();
  r.kind = SlabObject::kInode;
  r.requested = count;
  r.notes.push_back("tmpfs inodes (shmem_inode_cache) are unreclaimable slab; their dentries are reclaimable");
  SlabMeter m0;
  m0.Read();
  const uint64_t in0 = FsField("/proc/sys/fs/inode-nr", 0);
  const uint64_t t0 = NowNs();
  std::string name;
  for (uint64_t i = 0; i < count; ++i) {
    if (i % 4096 == 0 && ctx.stop->requested()) return ctx.stop->StoppedStatus("slab inode");
    name = absl::StrCat(mp, "/f", i);
    int fd = ::open(name.c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
    if (fd < 0) return ErrnoStatus(errno, absl::StrCat("slab inode: create ", name));
    ::close(fd);
  }
  r.duration_ns = NowNs() - t0;
  FinishMeasurement(m0, in0, FsField("/proc/sys/fs/inode-nr", 0), r);
  return std::unique_ptr<SlabSet>(std::move(set));
}

}  // namespace fraglab::gen
