// Slab, page cache (including loop-device filesystems with large blocks) and
// THP collapse on the real kernel, small and restored: every mount, loop
// device and file is gone afterwards.
#include <sys/mman.h>
#include <unistd.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "gen/anon.h"
#include "gen/pagecache.h"
#include "gen/restore_journal.h"
#include "gen/safety.h"
#include "gen/slab.h"
#include "gen/sysfs.h"
#include "gen/thp.h"
#include "tests/live/live_test_util.h"

namespace fraglab::gen {
namespace {

constexpr uint64_t kMiB = 1ULL << 20;

bool Mounted(const std::string& mp) {
  auto text = ReadSetting("/proc/self/mounts");
  return text.ok() && text->find(" " + mp + " ") != std::string::npos;
}

// The journal lives in dir_/state, apart from the mounts and files.
class GenFsTest : public testing::GenContextTest {
 protected:
  GenFsTest() : GenContextTest("fraglab-fs-live", "state", "mount, loop devices") {}
};

TEST_F(GenFsTest, NegativeDentriesAreMeasured) {
  auto set = MakeNegativeDentries(20000, ctx_);
  ASSERT_TRUE(set.ok()) << set.status();
  const SlabResult& r = (*set)->result();
  // Other processes make and drop dentries too; most of ours must show.
  EXPECT_GE(r.objects_measured, 20000u * 8 / 10);
  set->reset();
  EXPECT_EQ(ledger_->held(), 0u);
}

TEST_F(GenFsTest, InodesOnATmpfsThatIsUnmountedOnRelease) {
  NeedRoot();
  auto set = MakeInodes(5000, ctx_);
  ASSERT_TRUE(set.ok()) << set.status();
  EXPECT_GE((*set)->result().objects_measured, 5000u * 9 / 10);
  EXPECT_GT((*set)->result().sunreclaim_delta + (*set)->result().sreclaimable_delta, 0);
  EXPECT_TRUE(Mounted(dir_ + "/inodes-0") || Mounted(dir_ + "/inodes-1") ||
              Mounted(dir_ + "/inodes-2"));
  set->reset();
  EXPECT_FALSE(Mounted(dir_ + "/inodes-0"));
}

TEST_F(GenFsTest, InodesReleasedInAPatternDentriesRefused) {
  NeedRoot();
  auto set = MakeInodes(2000, ctx_);
  ASSERT_TRUE(set.ok()) << set.status();
  ReleaseParams p;
  p.pattern = ReleasePattern::kEveryNth;
  p.n = 2;
  auto freed = (*set)->ReleasePart(p);
  ASSERT_TRUE(freed.ok()) << freed.status();
  EXPECT_EQ(*freed, 1000u);
  auto again = (*set)->ReleasePart(p);  // already gone: nothing more
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*again, 0u);
  auto neg = MakeNegativeDentries(100, ctx_);
  ASSERT_TRUE(neg.ok());
  EXPECT_EQ((*neg)->ReleasePart(p).status().code(), absl::StatusCode::kFailedPrecondition);
}

TEST_F(GenFsTest, PagecacheChurnOnADirectory) {
  PagecacheParams p;
  p.bytes = 64 * kMiB;
  p.files = 4;
  p.write = false;
  p.cycles = 3;
  p.fadvise = POSIX_FADV_DONTNEED;
  auto set = FillPagecache(dir_, p, ctx_);
  ASSERT_TRUE(set.ok()) << set.status();
  const PagecacheResult& r = (*set)->result;
  EXPECT_EQ(r.cycles, 3u);
  EXPECT_EQ(r.bytes_read, 3 * 64 * kMiB);
  EXPECT_EQ(r.bytes_written, 64 * kMiB);
  // The last cycle leaves the files cached.
  EXPECT_GT(r.file_pages_delta, static_cast<int64_t>(64 * kMiB / kPageBytes / 2));
  set->reset();
  EXPECT_NE(::access((dir_ + "/fraglab-pc-0-0").c_str(), F_OK), 0);
}

void FsRoundTrip(GenFsTest* t, OpContext& ctx, const std::string& type, uint64_t block_size) {
  FsParams fp;
  fp.type = type;
  fp.block_size = block_size;
  fp.size_bytes = 128 * kMiB;
  auto fs = Filesystem::Create(fp, ctx);
  if (!fs.ok() && fs.status().code() == absl::StatusCode::kFailedPrecondition) {
    GTEST_SKIP() << fs.status().message();
  }
  ASSERT_TRUE(fs.ok()) << fs.status();
  const std::string mp = (*fs)->mount_point();
  const std::string dev = (*fs)->device();
  EXPECT_TRUE(Mounted(mp)) << (*fs)->Describe();
  PagecacheParams p;
  p.bytes = 32 * kMiB;
  p.files = 2;
  auto set = FillPagecache(mp, p, ctx);
  ASSERT_TRUE(set.ok()) << set.status();
  EXPECT_EQ((*set)->result.bytes_written, 32 * kMiB);
  set->reset();
  fs->reset();
  EXPECT_FALSE(Mounted(mp));
  if (!dev.empty()) {
    auto backing = ReadSetting("/sys/block/" + dev.substr(5) + "/loop/backing_file");
    EXPECT_FALSE(backing.ok()) << dev << " still attached to " << *backing;
  }
}

TEST_F(GenFsTest, Ext4OnLoop) {
  NeedRoot();
  FsRoundTrip(this, ctx_, "ext4", 0);
}

TEST_F(GenFsTest, XfsWith16KiBBlocks) {
  NeedRoot();
  FsRoundTrip(this, ctx_, "xfs", 16384);
}

TEST_F(GenFsTest, XfsWith64KiBBlocks) {
  NeedRoot();
  FsRoundTrip(this, ctx_, "xfs", 65536);
}

TEST_F(GenFsTest, TmpfsPagecache) {
  NeedRoot();
  FsRoundTrip(this, ctx_, "tmpfs", 0);
}

TEST_F(GenFsTest, CrashedFilesystemIsUndoneByTheJournal) {
  NeedRoot();
  FsParams fp;
  fp.type = "ext4";
  auto fs = Filesystem::Create(fp, ctx_);
  ASSERT_TRUE(fs.ok()) << fs.status();
  const std::string mp = (*fs)->mount_point();
  // Forget the object without running its destructor: what a crash leaves.
  (void)fs->release();
  ASSERT_TRUE(Mounted(mp));
  auto r = journal_->Replay();
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_FALSE(Mounted(mp));
  EXPECT_NE(::access(mp.c_str(), F_OK), 0);
}

TEST_F(GenFsTest, CollapseGivesHugePages) {
  auto enabled = ReadSetting("/sys/kernel/mm/transparent_hugepage/enabled");
  if (!enabled.ok() || ActiveChoice(*enabled) == "never") GTEST_SKIP() << "THP disabled";
  AnonParams p;
  p.bytes = 32 * kMiB;
  p.page_size = AnonPageSize::kDefault;  // no madvise: base pages under enabled=madvise
  std::unique_ptr<AnonRegion> region;
  ASSERT_TRUE(MapAndTouch(p, ctx_, &region).ok());
  auto r = Collapse(*region, stop_);
  if (!r.ok() && r.status().code() == absl::StatusCode::kFailedPrecondition) {
    GTEST_SKIP() << r.status().message();
  }
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_GE(r->huge_after, r->huge_before);
  EXPECT_GE(r->huge_after, 8u) << "MADV_COLLAPSE of 16 aligned 2 MiB ranges with 20+ GiB free";
}

}  // namespace
}  // namespace fraglab::gen
