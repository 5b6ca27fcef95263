// Live checks of fraglab snapshot on this kernel: our indices computed from
// /proc/buddyinfo equal debugfs extfrag/{unusable_index,extfrag_index}
// string-for-string for every zone and order; the CLI's JSON and trace
// output; what an unprivileged user gets.
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <string>

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/frag_index.h"
#include "common/proc_buddyinfo.h"
#include "common/proc_file.h"
#include "common/snapshot_machine.h"
#include "common/snapshot_map.h"
#include "common/trace_file.h"
#include "gtest/gtest.h"

namespace fraglab::snapshot {
namespace {

constexpr char kExtfragDir[] = "/sys/kernel/debug/extfrag";

bool IsDir(const char* path) {
  struct stat st {};
  return ::stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

// Mounts debugfs if the extfrag directory is absent, and unmounts it again
// on destruction if we mounted it (leave the machine as found).
class DebugfsGuard {
 public:
  DebugfsGuard() {
    if (IsDir(kExtfragDir)) {
      ok_ = true;
      return;
    }
    if (::mount("nodev", "/sys/kernel/debug", "debugfs", 0, nullptr) != 0) {
      error_ = absl::StrCat("mount -t debugfs failed: ", std::strerror(errno));
      return;
    }
    mounted_ = true;
    ok_ = IsDir(kExtfragDir);
    if (!ok_) error_ = "debugfs mounted but has no extfrag/ (kernel built without CONFIG_COMPACTION?)";
  }
  ~DebugfsGuard() {
    if (mounted_) ::umount("/sys/kernel/debug");
  }
  bool ok() const { return ok_; }
  const std::string& error() const { return error_; }

 private:
  bool ok_ = false;
  bool mounted_ = false;
  std::string error_;
};

// The kernel's file text for our indices: "Node %d, zone %8s " then each value
// and a space, then a newline (unusable_show_print / extfrag_show_print).
std::string ExpectedFile(const procfs::BuddyInfo& b, bool unusable) {
  std::string out;
  for (const procfs::BuddyZone& z : b.zones) {
    absl::StrAppendFormat(&out, "Node %d, zone %8s ", z.nid, z.zone);
    for (unsigned order = 0; order < z.nr_free.size(); ++order) {
      if (unusable) {
        absl::StrAppend(&out, procfs::FormatUnusableIndex(procfs::UnusableIndex(z.nr_free, order)), " ");
      } else {
        absl::StrAppend(&out, procfs::FormatFragmentationIndex(procfs::FragmentationIndex(z.nr_free, order)), " ");
      }
    }
    out += "\n";
  }
  return out;
}

TEST(SnapshotLiveTest, IndicesEqualDebugfsForEveryZoneAndOrder) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root: debugfs and its extfrag files are root-only";
  DebugfsGuard debugfs;
  if (!debugfs.ok()) GTEST_SKIP() << "no debugfs extfrag files: " << debugfs.error();
  // The buddy state moves all the time (page reporting, other processes):
  // accept a round only when buddyinfo read before and after the two debugfs
  // files is identical, so all three describe the same state.
  constexpr int kAttempts = 2000;
  for (int attempt = 0; attempt < kAttempts; ++attempt) {
    auto before = procfs::ReadWholeFile("/proc/buddyinfo");
    auto unusable = procfs::ReadWholeFile(std::string(kExtfragDir) + "/unusable_index");
    auto extfrag = procfs::ReadWholeFile(std::string(kExtfragDir) + "/extfrag_index");
    auto after = procfs::ReadWholeFile("/proc/buddyinfo");
    ASSERT_TRUE(before.ok() && unusable.ok() && extfrag.ok() && after.ok());
    if (*before != *after) {
      ::usleep(500);
      continue;
    }
    auto buddy = procfs::ParseBuddyInfo(*before);
    ASSERT_TRUE(buddy.ok()) << buddy.status();
    EXPECT_EQ(ExpectedFile(*buddy, true), *unusable) << "buddyinfo:\n" << *before;
    EXPECT_EQ(ExpectedFile(*buddy, false), *extfrag) << "buddyinfo:\n" << *before;
    std::printf("compared %zu zones x %zu orders after %d attempt(s)\n", buddy->zones.size(),
                buddy->num_orders(), attempt + 1);
    return;
  }
  GTEST_SKIP() << "buddyinfo changed between the reads in all " << kAttempts
               << " attempts; the machine is too busy to compare";
}

TEST(SnapshotLiveTest, ReadsThisMachineQuicklyAndCompletely) {
  auto s = ReadMachineSnapshot("/");
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_FALSE(s->zones.empty());
  EXPECT_EQ(s->num_orders, 11u);
  EXPECT_FALSE(s->kernel_release.empty());
  if (geteuid() == 0) {
    EXPECT_TRUE(s->HasTypes()) << s->pagetypeinfo_error;
    EXPECT_FALSE(s->migratetypes_inferred);
  }
  for (const ZoneSnapshot& z : s->zones) {
    EXPECT_GT(z.managed, 0u) << z.name;
    EXPECT_GE(z.wmark_high, z.wmark_low) << z.name;
    EXPECT_GE(z.wmark_low, z.wmark_min) << z.name;
  }
  auto h = TraceHeaderForThisMachine();
  ASSERT_TRUE(h.ok()) << h.status();
  EXPECT_EQ(h->nr_cpus, static_cast<uint32_t>(sysconf(_SC_NPROCESSORS_ONLN)));
  EXPECT_EQ(h->zones.size(), s->zones.size());
  EXPECT_FALSE(h->kernel_era.empty());
}

// What a user without privileges gets: no pagetypeinfo, numbering inferred
// the same as root reads it, everything else present.
TEST(SnapshotLiveTest, UnprivilegedUserGetsWhatIsReadable) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to drop to an unprivileged uid for the comparison";
  auto root_view = ReadMachineSnapshot("/");
  ASSERT_TRUE(root_view.ok());
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    if (::setgid(65534) != 0 || ::setuid(65534) != 0) ::_exit(10);
    auto s = ReadMachineSnapshot("/");
    if (!s.ok()) ::_exit(11);
    if (s->HasTypes()) ::_exit(12);               // pagetypeinfo must have been refused
    if (!s->migratetypes_inferred) ::_exit(13);
    if (s->migratetype_names != root_view->migratetype_names) ::_exit(14);
    if (s->zones.size() != root_view->zones.size()) ::_exit(15);
    ::_exit(0);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0) << "child check " << WEXITSTATUS(status) << " failed";
}

std::string RunCommand(const std::string& cmd, int* rc) {
  std::string out;
  FILE* p = ::popen(cmd.c_str(), "r");
  if (p == nullptr) {
    *rc = -1;
    return out;
  }
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  *rc = ::pclose(p);
  return out;
}

TEST(SnapshotLiveTest, CliJsonAndTraceAppend) {
  int rc = 0;
  const std::string json_text = RunCommand(std::string(FRAGLAB_BINARY) + " snapshot --json", &rc);
  ASSERT_EQ(rc, 0);
  auto j = nlohmann::json::parse(json_text);
  auto buddy = procfs::ReadBuddyInfo("/");
  ASSERT_TRUE(buddy.ok());
  EXPECT_EQ(j["zones"].size(), buddy->zones.size());

  char tmpl[] = "/tmp/fraglab_snapshot_live_XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl), nullptr);
  const std::string trace = std::string(tmpl) + "/t.flt";
  RunCommand(std::string(FRAGLAB_BINARY) + " snapshot -o " + trace + " > /dev/null", &rc);
  ASSERT_EQ(rc, 0);
  RunCommand(std::string(FRAGLAB_BINARY) + " snapshot -o " + trace + " > /dev/null", &rc);
  ASSERT_EQ(rc, 0);
  auto reader = TraceReader::Open(trace);
  ASSERT_TRUE(reader.ok()) << reader.status();
  EXPECT_EQ((*reader)->header().zones.size(), buddy->zones.size());
  int zones = 0, counters = 0;
  for (;;) {
    auto rec = (*reader)->Next();
    ASSERT_TRUE(rec.ok()) << rec.status();
    if (*rec == nullptr) break;
    if ((*rec)->kind == FL_EV_SNAPSHOT_ZONE) ++zones;
    if ((*rec)->kind == FL_EV_COUNTERS) ++counters;
  }
  EXPECT_EQ(zones, static_cast<int>(2 * buddy->zones.size()));  // two appends
  EXPECT_EQ(counters, 2);
  ::unlink(trace.c_str());
  ::rmdir(tmpl);
}


TEST(SnapshotLiveTest, PageblockMapAccountsForEveryPage) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root: /proc/kpageflags is root-only";
  auto s = ReadMachineSnapshot("/");
  ASSERT_TRUE(s.ok()) << s.status();
  auto m = ReadMachineMap(*s);
  ASSERT_TRUE(m.ok()) << m.status();
  ASSERT_EQ(m->zones.size(), s->zones.size());
  for (size_t i = 0; i < m->zones.size(); ++i) {
    const ZoneMap& z = m->zones[i];
    const ZoneSnapshot& zs = s->zones[i];
    uint64_t pages = 0;
    for (uint64_t n : z.pages_by_class) pages += n;
    EXPECT_EQ(pages, zs.spanned) << z.name;
    const uint64_t block = uint64_t{1} << s->pageblock_order;
    const uint64_t first = zs.start_pfn & ~(block - 1);
    EXPECT_EQ(z.blocks.size(), (zs.start_pfn + zs.spanned - first + block - 1) / block) << z.name;
    uint64_t reconstructed = 0;
    for (size_t k = 0; k < z.free_blocks.size(); ++k) reconstructed += z.free_blocks[k] << k;
    EXPECT_EQ(reconstructed, z.pages_by_class[static_cast<size_t>(PageClass::kFree)]) << z.name;
    // Estimated blocks plus unknown ones cover the zone.
    uint64_t est = z.unknown_blocks;
    for (uint64_t n : z.estimated_blocks) est += n;
    EXPECT_EQ(est, z.blocks.size()) << z.name;
    std::printf("%s: free residual %lld pages of %llu, type agreement %.1f%%\n", z.name.c_str(),
                static_cast<long long>(z.free_residual_pages),
                static_cast<unsigned long long>(zs.BuddyFreePages()), 100.0 * z.type_agreement);
  }
}

TEST(SnapshotLiveTest, CliMapWritesRecordsAndRefusesNonRoot) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root: /proc/kpageflags is root-only";
  char tmpl[] = "/tmp/fraglab_snapshot_map_live_XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl), nullptr);
  const std::string trace = std::string(tmpl) + "/m.flt";
  int rc = 0;
  const std::string text =
      RunCommand(std::string(FRAGLAB_BINARY) + " snapshot --map --color never -o " + trace, &rc);
  ASSERT_EQ(rc, 0);
  EXPECT_NE(text.find("pageblock map"), std::string::npos);
  auto reader = TraceReader::Open(trace);
  ASSERT_TRUE(reader.ok()) << reader.status();
  int maps = 0;
  uint64_t entries = 0;
  for (;;) {
    auto rec = (*reader)->Next();
    ASSERT_TRUE(rec.ok()) << rec.status();
    if (*rec == nullptr) break;
    if ((*rec)->kind != FL_EV_PAGEBLOCK_MAP) continue;
    ++maps;
    fl_pageblock_map pm;
    std::memcpy(&pm, *rec, sizeof pm);
    EXPECT_EQ((*rec)->size, (sizeof pm + pm.count * sizeof(fl_pageblock_entry) + 7) / 8 * 8);
    entries += pm.count;
  }
  EXPECT_GT(maps, 0);
  EXPECT_GT(entries, 0u);
  ::unlink(trace.c_str());
  ::rmdir(tmpl);
  // An unprivileged user gets a clear error and exit code 1.
  if (::access("/usr/bin/setpriv", X_OK) != 0) {
    GTEST_SKIP() << "records checked; the unprivileged half needs /usr/bin/setpriv (util-linux)";
  }
  RunCommand("setpriv --reuid=65534 --regid=65534 --clear-groups " + std::string(FRAGLAB_BINARY) +
                 " snapshot --map > /dev/null 2>&1",
             &rc);
  ASSERT_TRUE(WIFEXITED(rc));
  EXPECT_EQ(WEXITSTATUS(rc), 1);
}

}  // namespace
}  // namespace fraglab::snapshot
