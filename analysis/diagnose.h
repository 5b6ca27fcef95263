// fraglab diagnose: findings about this machine's memory the way a kernel
// engineer would state them, each with the numbers that support it, the
// actions that apply and what to measure afterwards.
//
// Input: a MachineSnapshot (common/snapshot_machine.h), the tunables read
// from <root>/proc/sys/vm and <root>/sys/kernel/mm/transparent_hugepage, and
// optionally an earlier snapshot (counters then become deltas over the
// interval) and a trace summary (fallback events by class and migratetype
// pair, bpf/trace_summary.h). The analysis is a pure function; thresholds are
// named constants below with the reason for each.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "bpf/trace_summary.h"
#include "common/snapshot_machine.h"

namespace fraglab::diagnose {

enum class Severity { kInfo = 0, kWarning = 1, kCritical = 2 };

// "info", "warning", "critical".
const char* SeverityName(Severity s);

// One number behind a finding.
struct Evidence {
  std::string name;   // "free_order9_blocks", "unusable_index_order9", ...
  double value = 0;
  std::string unit;   // "blocks", "MiB", "ratio", "pages", "events", ""
  std::string where;  // "node 0 Normal", "vmstat", "meminfo", "trace"
};

struct Finding {
  std::string id;        // stable key: "high_order_shortage", "compaction_failing", ...
  Severity severity = Severity::kInfo;
  std::string title;     // one line
  std::string scope;     // "node 0 zone Normal", "machine"
  std::vector<Evidence> evidence;
  std::string explanation;             // why this matters, in kernel terms
  std::vector<std::string> actions;    // what to do, applicable to this kernel
  std::vector<std::string> measure_after;
};

// Tunables that shape the advice; absent where unreadable.
struct Tunables {
  std::optional<uint64_t> min_free_kbytes;
  std::optional<uint64_t> watermark_boost_factor;
  std::optional<uint64_t> watermark_scale_factor;
  std::optional<uint64_t> defrag_mode;           // 6.15+ only
  std::optional<uint64_t> compaction_proactiveness;
  std::optional<uint64_t> extfrag_threshold;
  std::optional<uint64_t> nr_hugepages;
  std::string thp_enabled;   // selected value ("always", "madvise", "never"), "" if unknown
  std::string thp_defrag;    // selected value
};

// Reads the tunables under `root` ("/" for this machine); missing files leave
// fields empty (never an error: they are advice inputs only).
Tunables ReadTunables(const std::string& root = "/");

// The selected word of a sysfs choice line ("always [madvise] never" ->
// "madvise"); the whole trimmed text when there are no brackets.
std::string SelectedChoice(const std::string& text);

struct DiagnoseInput {
  const snapshot::MachineSnapshot* now = nullptr;      // required
  const snapshot::MachineSnapshot* before = nullptr;   // optional: start of an interval
  const tracker::TraceSummary* trace = nullptr;        // optional: events over the interval
  const TraceHeader* trace_header = nullptr;           // names the trace's migratetypes
  Tunables tunables;
  std::string trace_note;  // why there is no trace, when one was asked for
};

// Thresholds (see diagnose.cc for the reasoning next to each use).
// A zone is judged for high-order memory only when it holds a real share of
// memory and of free memory: tiny DMA zones say nothing about THP.
inline constexpr uint64_t kMinZoneManagedPages = 65536;   // 256 MiB
// "Free memory exists but not in 2 MiB blocks": free above this share of the
// zone while the order-9 unusable index is above kUnusable9Warn.
inline constexpr double kFreeShareForShortage = 0.05;
inline constexpr int kUnusable9Warn = 900;       // thousandths: <10% of free memory in order>=9 blocks
inline constexpr int kUnusable9Critical = 990;   // <1%
inline constexpr int kUnusable4Warn = 500;       // half of free memory in blocks below 64 KiB
// Unmovable+Reclaimable pageblocks more than this multiple of what the
// unmovable/reclaimable memory needs (plus kPageblockSlack blocks) means
// those allocations are spread over many blocks.
inline constexpr double kUnmovableSpreadRatio = 3.0;
inline constexpr uint64_t kPageblockSlack = 32;
// Compaction: judge only with enough stalls to be meaningful.
inline constexpr uint64_t kMinCompactStalls = 50;
inline constexpr double kCompactFailWarn = 0.5;
// THP faults: fallback share over at least this many attempts.
inline constexpr uint64_t kMinThpFaults = 100;
inline constexpr double kThpFallbackWarn = 0.10;
inline constexpr double kThpFallbackCritical = 0.50;
// Slab: unreclaimable slab as share of MemTotal.
inline constexpr double kSlabUnreclaimableWarn = 0.10;
// Slab growth over an interval, share of MemTotal.
inline constexpr double kSlabGrowthWarn = 0.02;
// NUMA: free share of the freest node over the least free one.
inline constexpr double kNumaImbalanceRatio = 3.0;
// Fallbacks in a trace: polluting (non-movable into movable blocks) events.
inline constexpr uint64_t kMinPolluteEvents = 100;

// All findings, most severe first, then in a fixed order (deterministic).
std::vector<Finding> Diagnose(const DiagnoseInput& input);

// Text report: a header line about the machine, then per finding the title,
// evidence table, explanation, actions and what to measure; "No problems
// found" when nothing is above info.
std::string FindingsText(const DiagnoseInput& input, const std::vector<Finding>& findings);

// JSON document {"kernel":..., "findings":[{id, severity, title, scope,
// evidence:[{name,value,unit,where}], explanation, actions, measure_after}]}.
std::string FindingsJson(const DiagnoseInput& input, const std::vector<Finding>& findings, int indent = 2);

// The most severe severity among `findings` (kInfo when empty).
Severity WorstSeverity(const std::vector<Finding>& findings);

}  // namespace fraglab::diagnose
