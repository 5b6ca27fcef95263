// Pure parts of the generator's safety guard and kernel-file helpers: budget
// arithmetic, watchdog verdicts, PSI/meminfo/smaps parsing, the ledger.
#include "gen/safety.h"

#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <thread>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "gen/anon.h"
#include "gen/sysfs.h"

namespace fraglab::gen {
namespace {

using ::testing::HasSubstr;
constexpr uint64_t kMiB = 1ULL << 20;
constexpr uint64_t kGiB = 1ULL << 30;

TEST(SafetyTest, HumanBytes) {
  EXPECT_EQ(HumanBytes(12), "12 B");
  EXPECT_EQ(HumanBytes(4096), "4 KiB");
  EXPECT_EQ(HumanBytes(512 * kMiB), "512 MiB");
  EXPECT_EQ(HumanBytes(3 * kGiB / 2), "1.5 GiB");
}

TEST(SafetyTest, CheckDeclaredSaysByHowMuch) {
  EXPECT_TRUE(CheckDeclared(kGiB, kGiB, "s").ok());
  auto s = CheckDeclared(3 * kGiB, 2 * kGiB, "scenario quick.toml");
  EXPECT_EQ(s.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(std::string(s.message()),
              HasSubstr("scenario quick.toml declares 3 GiB but the memory budget is 2 GiB: over by 1 GiB"));
}

TEST(SafetyTest, FloorAndBudget) {
  EXPECT_EQ(DefaultAvailableFloor(4 * kGiB), 512 * kMiB);
  EXPECT_EQ(DefaultAvailableFloor(24 * kGiB), 24 * kGiB / 20);
  MemorySample m;
  m.mem_total = 24 * kGiB;
  m.mem_available = 20 * kGiB;
  const uint64_t floor = DefaultAvailableFloor(m.mem_total);
  auto half = ComputeBudget(m, {}, floor);
  ASSERT_TRUE(half.ok());
  EXPECT_EQ(*half, 10 * kGiB);
  BudgetOptions explicit_opts;
  explicit_opts.bytes = 2 * kGiB;
  EXPECT_EQ(*ComputeBudget(m, explicit_opts, floor), 2 * kGiB);
  explicit_opts.bytes = 20 * kGiB;  // more than MemAvailable minus the floor
  auto too_much = ComputeBudget(m, explicit_opts, floor);
  EXPECT_EQ(too_much.status().code(), absl::StatusCode::kResourceExhausted);
  BudgetOptions bad;
  bad.fraction = 1.5;
  EXPECT_EQ(ComputeBudget(m, bad, floor).status().code(), absl::StatusCode::kInvalidArgument);
  // Little memory left: the fraction is capped by what stays above the floor.
  m.mem_available = floor + 100 * kMiB;
  EXPECT_EQ(*ComputeBudget(m, {}, floor), 100 * kMiB);
}

TEST(SafetyTest, WatchdogVerdict) {
  MemorySample m;
  m.mem_total = 24 * kGiB;
  m.mem_available = 10 * kGiB;
  m.psi_available = true;
  m.psi_full_avg10 = 1.0;
  EXPECT_FALSE(WatchdogVerdict(m, kGiB, 25).has_value());
  m.mem_available = kGiB - 1;
  auto low = WatchdogVerdict(m, kGiB, 25);
  ASSERT_TRUE(low.has_value());
  EXPECT_THAT(*low, HasSubstr("MemAvailable"));
  m.mem_available = 10 * kGiB;
  m.psi_full_avg10 = 30.0;
  auto psi = WatchdogVerdict(m, kGiB, 25);
  ASSERT_TRUE(psi.has_value());
  EXPECT_THAT(*psi, HasSubstr("full avg10=30.00%"));
  EXPECT_FALSE(WatchdogVerdict(m, kGiB, 0).has_value());  // PSI check disabled
}

TEST(SafetyTest, ParsePsi) {
  double some = -1, full = -1;
  ASSERT_TRUE(ParsePsi("some avg10=1.50 avg60=0.00 avg300=0.00 total=10\n"
                       "full avg10=0.25 avg60=0.00 avg300=0.00 total=5\n",
                       &some, &full)
                  .ok());
  EXPECT_DOUBLE_EQ(some, 1.5);
  EXPECT_DOUBLE_EQ(full, 0.25);
  EXPECT_FALSE(ParsePsi("nothing here", &some, &full).ok());
}

TEST(SafetyTest, LedgerRefusesOverBudgetAndTracksPeak) {
  MemoryLedger l(100);
  EXPECT_TRUE(l.Reserve(60, "a").ok());
  auto s = l.Reserve(50, "anon phase 2");
  EXPECT_EQ(s.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(std::string(s.message()), HasSubstr("anon phase 2"));
  EXPECT_EQ(l.held(), 60u);
  l.Release(30);
  EXPECT_TRUE(l.Reserve(50, "b").ok());
  EXPECT_EQ(l.held(), 80u);
  EXPECT_EQ(l.peak(), 80u);
  l.Release(1000);  // never goes negative
  EXPECT_EQ(l.held(), 0u);
}

TEST(SafetyTest, StopFlagKeepsFirstReason) {
  StopFlag f;
  EXPECT_FALSE(f.requested());
  f.Request("first");
  f.Request("second");
  EXPECT_TRUE(f.requested());
  EXPECT_EQ(f.reason(), "first");
  EXPECT_EQ(f.StoppedStatus("anon").code(), absl::StatusCode::kCancelled);
  EXPECT_THAT(std::string(f.StoppedStatus("anon").message()), HasSubstr("anon: stopped (first)"));
}

TEST(SafetyTest, WatchdogStopsOnAFakeMeminfo) {
  char tmpl[] = "/tmp/fraglab-wd-XXXXXX";
  std::string dir = ::mkdtemp(tmpl);
  const std::string meminfo = dir + "/meminfo";
  std::ofstream(meminfo) << "MemTotal: 4194304 kB\nMemFree: 2097152 kB\nMemAvailable: 2097152 kB\n";
  StopFlag stop;
  WatchdogOptions o;
  o.meminfo_path = meminfo;
  o.psi_path = dir + "/no-psi";
  o.interval_ms = 5;
  Watchdog wd(o, &stop);
  ASSERT_TRUE(wd.Start().ok());
  EXPECT_EQ(wd.available_floor(), 512 * kMiB);
  EXPECT_FALSE(wd.psi_available());
  std::this_thread::sleep_for(std::chrono::milliseconds(30));
  EXPECT_FALSE(stop.requested());
  std::ofstream(meminfo) << "MemTotal: 4194304 kB\nMemFree: 1024 kB\nMemAvailable: 1024 kB\n";
  for (int i = 0; i < 200 && !stop.requested(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  wd.Stop();
  EXPECT_TRUE(stop.requested());
  EXPECT_THAT(stop.reason(), HasSubstr("fell under the floor 512 MiB"));
  EXPECT_EQ(wd.min_available_seen(), 1024u * 1024u);
  std::system(("rm -rf " + dir).c_str());
}

TEST(SysfsTest, ParseKeyValuesAndChoice) {
  auto kv = ParseKeyValues("MemTotal:       24684084 kB\nnr_free_pages 123\nbad line\nVmPin:\t  8 kB\n");
  EXPECT_EQ(kv["MemTotal"], 24684084ULL * 1024);
  EXPECT_EQ(kv["nr_free_pages"], 123u);
  EXPECT_EQ(kv["VmPin"], 8192u);
  EXPECT_EQ(kv.count("bad"), 0u);
  EXPECT_EQ(ActiveChoice("always [madvise] never"), "madvise");
  EXPECT_EQ(ActiveChoice("  15000 \n"), "15000");
  EXPECT_EQ(SysctlPath("vm.defrag_mode"), "/proc/sys/vm/defrag_mode");
  EXPECT_EQ(SysctlPath("/sys/kernel/mm/x"), "/sys/kernel/mm/x");
  auto missing = ReadSetting("/nonexistent/fraglab");
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(missing.status().message()), HasSubstr("/nonexistent/fraglab"));
}

TEST(SysfsTest, SumSmapsFieldOverlappingVmasOnly) {
  const std::string smaps =
      "7f0000000000-7f0000400000 rw-p 00000000 00:00 0\n"
      "Rss:                4096 kB\n"
      "AnonHugePages:      2048 kB\n"
      "7f0000400000-7f0000600000 rw-p 00000000 00:00 0\n"
      "Rss:                   8 kB\n"
      "AnonHugePages:         0 kB\n"
      "7f1000000000-7f1000200000 rw-p 00000000 00:00 0 [heap]\n"
      "AnonHugePages:      2048 kB\n";
  EXPECT_EQ(SumSmapsField(smaps, 0x7f0000000000, 0x7f0000600000, "AnonHugePages"), 2048u * 1024);
  EXPECT_EQ(SumSmapsField(smaps, 0x7f0000000000, 0x7f0000600000, "Rss"), 4104u * 1024);
  EXPECT_EQ(SumSmapsField(smaps, 0x7f0000400000, 0x7f0000500000, "Rss"), 8u * 1024);
}

}  // namespace
}  // namespace fraglab::gen

namespace fraglab::gen {
namespace {

TEST(SafetyTest, WatchdogVerdictCountsMemoryTheArenaCanGiveBack) {
  constexpr uint64_t kG = 1ULL << 30;
  MemorySample m;
  m.mem_total = 24 * kG;
  m.mem_available = kG;  // under a 1.2 GiB floor on its own
  const uint64_t floor = kG + kG / 5;
  EXPECT_TRUE(WatchdogVerdict(m, floor, 25, 0).has_value());
  // With 10 GiB the arena can give back at once, the floor is met.
  EXPECT_FALSE(WatchdogVerdict(m, floor, 25, 10 * kG).has_value());
  // But raw MemAvailable must stay above kReleasableRawFloor.
  m.mem_available = kReleasableRawFloor - 1;
  auto raw = WatchdogVerdict(m, floor, 25, 10 * kG);
  ASSERT_TRUE(raw.has_value());
  EXPECT_THAT(*raw, HasSubstr("give back at once"));
  // Pressure still counts.
  m.mem_available = kG;
  m.psi_available = true;
  m.psi_full_avg10 = 30;
  EXPECT_TRUE(WatchdogVerdict(m, floor, 25, 10 * kG).has_value());
}

}  // namespace
}  // namespace fraglab::gen
