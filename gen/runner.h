// The executor: runs a scenario's phases on this kernel with the operations
// of gen/, inside the memory budget, under the watchdog, journalling every
// setting it changes, writing phase markers and machine snapshots into the
// trace, and summarising each phase. The tracker (bpf/) is wired in by the
// caller (cli/cmd_run.cc) through RunSink, which keeps gen/ free of bpf/.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/event_sink.h"
#include "common/scenario.h"
#include "gen/arena.h"
#include "gen/restore_journal.h"
#include "gen/safety.h"

namespace fraglab::gen {

// A thread-safe sink in front of the trace: the tracker's poll thread and
// the runner both emit into it. It counts fallback (extfrag) records by
// class so the runner can attribute them to phases. `inner` may be null
// (records are only counted).
class RunSink final : public EventSink {
 public:
  explicit RunSink(EventSink* inner) : inner_(inner) {}
  [[nodiscard]] absl::Status Emit(const fl_record_header& rec) override;
  // Fallbacks by fl_extfrag_class seen so far.
  std::array<uint64_t, 3> fallbacks() const;
  // Fallback counts by (alloc migratetype, fallback migratetype), as
  // alloc * 8 + fallback -> count.
  std::vector<uint64_t> fallback_pairs() const;
  uint64_t records() const;

 private:
  mutable std::mutex mu_;
  EventSink* inner_;
  std::array<uint64_t, 3> fallbacks_{};
  std::vector<uint64_t> pairs_ = std::vector<uint64_t>(64, 0);
  uint64_t records_ = 0;
};

struct RunOptions {
  uint64_t budget_bytes = 0;   // 0: the scenario's [budget] memory
  std::string state_dir;       // journal and scratch files; "" = RestoreJournal::DefaultDir()
  bool prepare = true;         // drop caches, compact and settle before the start snapshot
  bool progress = true;        // one line per phase on stderr
  // Free memory left to the buddy allocator for the run (gen/arena.h);
  // 0 = the scenario's [budget] arena (unset there: no arena).
  uint64_t arena_bytes = 0;
  WatchdogOptions watchdog;
};

struct RunHooks {
  RunSink* sink = nullptr;           // required
  std::function<void()> drain;       // optional: flush tracker data before a marker
};

// Machine-wide buddy state at one moment, summed over zones.
struct BuddySummary {
  std::vector<uint64_t> free_blocks;  // per order
  std::vector<uint64_t> pageblocks;   // per migratetype (empty without pagetypeinfo)
  std::vector<std::string> migratetype_names;
  uint64_t managed_pages = 0;
  uint64_t free_pages = 0;
  // Free memory in order-9 units: nr_free[9] + 2 * nr_free[10].
  uint64_t Order9Blocks() const;
};

struct PhaseSummary {
  size_t index = 0;
  std::string label;
  std::string op;                 // "anon", "release", ...
  std::string outcome = "ok";     // "ok", "skipped: <why>", "failed: <why>", "stopped"
  std::string detail;             // what the operation actually did
  uint64_t duration_ns = 0;
  BuddySummary end;               // at phase end
  std::array<uint64_t, 3> fallbacks{};  // during the phase, by class
  std::vector<std::pair<std::string, uint64_t>> fallback_pairs;  // "movable->unmovable" -> n
  uint64_t compact_stall = 0, compact_success = 0, compact_fail = 0;
  uint64_t held_bytes = 0;        // memory the run held at phase end
  std::vector<std::string> notes;
};

struct RunReport {
  std::string scenario;
  uint64_t budget_bytes = 0;
  uint64_t peak_held_bytes = 0;
  uint64_t declared_peak_bytes = 0;
  BuddySummary start;
  std::vector<PhaseSummary> phases;
  std::string stop_reason;        // "" when the run completed
  ReplayReport recovered;         // what a previous crashed run left and was restored
  ReplayReport restored;          // this run's own restore at the end
  bool arena_used = false;        // an arena was set up (arena below is valid)
  ArenaResult arena;
  std::vector<std::string> notes; // noise, missing privileges, missing data
  uint64_t total_ns = 0;
};

// Peak memory the scenario declares, in bytes, with percentages of `budget`:
// anon, pin and pagecache sizes add up (page cache until a drop_caches),
// slab counts 256 B per dentry and 1 KiB per inode,
// probes count while they run, a whole release of a tag gives its size
// back, and the first partial release of each anon region with method
// munmap/free gives back the units its pattern unmaps (rounded down); other
// partial releases are not credited (MADV_DONTNEED keeps the reservation).
[[nodiscard]] absl::StatusOr<uint64_t> DeclaredPeakBytes(const scenario::Scenario& s,
                                                         uint64_t budget);

struct BudgetDecision {
  uint64_t budget_bytes = 0;
  uint64_t declared_peak_bytes = 0;
  uint64_t available_floor = 0;  // the watchdog's MemAvailable floor
  uint64_t arena_bytes = 0;      // 0 = no arena
};

// What an arena must leave on top of the declared peak: the watchdog's raw
// floor while the arena is held (kReleasableRawFloor) plus room for the
// run's own page tables, slab and the settling of counters.
inline constexpr uint64_t kArenaMargin = kReleasableRawFloor + (128ULL << 20);

// The run's budget (options.budget_bytes, else the scenario's [budget]), the
// scenario's declared peak and the arena (options.arena_bytes, else the
// scenario's [budget] arena, a percentage of the budget); ResourceExhausted
// when the peak exceeds the budget, the budget exceeds what the machine can
// give, or the arena is smaller than the peak + kArenaMargin. Touches nothing.
[[nodiscard]] absl::StatusOr<BudgetDecision> DecideBudget(const scenario::Scenario& s,
                                                          const RunOptions& options);

// Refuses simulator-only phases, naming the first one.
[[nodiscard]] absl::Status CheckGeneratorCanRun(const scenario::Scenario& s);

// Maps a scenario sysctl name (scenario::SysctlNames()) to its file.
[[nodiscard]] absl::StatusOr<std::string> SettingPath(const std::string& setting);

// Runs the scenario. Errors before the first phase (budget exceeded,
// simulator-only phases, journal held by another run) touch nothing. A stop
// (signal, watchdog) ends the run early with a report whose stop_reason says
// why; every region, pin, mount and setting is released/restored on every
// path.
[[nodiscard]] absl::StatusOr<RunReport> RunScenario(const scenario::Scenario& s,
                                                    const RunOptions& options, RunHooks& hooks);

// The per-phase summary as text for people.
std::string FormatRunReport(const RunReport& report);

}  // namespace fraglab::gen
