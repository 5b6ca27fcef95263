// The eBPF tracker: attaches fraglab's BPF programs to the kernel's page
// allocator, compaction, migration, reclaim, OOM and THP tracepoints and
// turns what they report into records of the shared schema
// (bpf/fraglab_events.h) in an EventSink (usually a TraceWriter).
//
// Lifecycle (libbpf-bootstrap style): Start() checks prerequisites, opens the
// embedded skeleton, writes the read-only config (recording level, zone pfn
// ranges for in-kernel aggregation, pageblock order), loads, and attaches each
// program on its own so a missing optional tracepoint is skipped with a note;
// Poll() consumes the ring buffer and emits the periodic records (aggregates,
// drops, machine snapshot); Stop() detaches, drains and writes the final
// periodic records. Used by `fraglab trace` and `fraglab run`.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <functional>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "bpf/fraglab_events.h"
#include "common/event_sink.h"
#include "common/trace_file.h"

namespace fraglab::tracker {

// Default ring sizes: the default level only carries low-rate events; with
// every page alloc/free a fault-heavy workload produces ~100 MB/s of records.
inline constexpr uint64_t kDefaultRingBytes = 8ull << 20;
inline constexpr uint64_t kDefaultRingBytesAllEvents = 64ull << 20;

struct TrackerOptions {
  // Also emit every page alloc and free (FL_EV_PAGE_ALLOC/FREE) in full;
  // aggregates are written either way.
  bool all_events = false;
  // Period of the aggregate, drop and snapshot records.
  uint64_t interval_ns = 1'000'000'000;
  // Ring buffer size in bytes; 0 picks kDefaultRingBytes(AllEvents). Must be a
  // power of two and at least the page size.
  uint64_t ring_bytes = 0;
  // Zone table for in-kernel aggregation, in the trace header's order (the
  // aggregate's zone index is the position here). Zones beyond FL_MAX_ZONES
  // are left out of the aggregates (counted as unknown_zone, with a note).
  std::vector<ZoneLayout> zones;
  uint32_t pageblock_order = 9;
  // Periodic FL_EV_SNAPSHOT_ZONE / FL_EV_COUNTERS records read from
  // `snapshot_root` (see common/snapshot_machine.h).
  bool snapshots = true;
  std::string snapshot_root = "/";
  // tracefs mount point; "" finds /sys/kernel/tracing or /sys/kernel/debug/tracing.
  std::string tracefs;
};

// One tracepoint the tracker knows, and what happened to it.
struct TracepointState {
  std::string category;   // as found ("kmem", "compaction", ...)
  std::string name;       // "mm_page_alloc", ...
  bool required = false;  // Start fails when a required one is missing
  bool out_of_tree = false;
  bool attached = false;
  std::string note;       // why it was skipped ("" when attached)
};

// Counters of a running tracker (cumulative since Start).
struct TrackerStats {
  std::array<uint64_t, FL_EV_KIND_MAX> ring_records{};  // received from the ring, by kind
  uint64_t ring_records_total = 0;
  uint64_t attempted = 0;             // records the BPF programs tried to emit
  uint64_t lost = 0;                  // of which lost (ring full)
  std::vector<uint64_t> lost_per_cpu;
  uint64_t page_allocs = 0;           // from the in-kernel aggregates
  uint64_t page_frees = 0;
  uint64_t alloc_failures = 0;
  uint64_t unknown_zone = 0;          // alloc/free pfns outside every known zone
  std::array<uint64_t, 3> extfrag_by_class{};  // enum fl_extfrag_class
  uint64_t intervals = 0;             // periodic record sets written
  uint64_t snapshot_errors = 0;       // periodic snapshots that could not be read
  std::string last_snapshot_error;
};

// Finds the tracefs mount: /sys/kernel/tracing, else /sys/kernel/debug/tracing
// (whichever has an events/ directory). FailedPrecondition saying how to
// mount it otherwise.
[[nodiscard]] absl::StatusOr<std::string> FindTracefs();

// Checks what the tracker needs before touching BPF: built with BPF support,
// root or CAP_BPF+CAP_PERFMON (or CAP_SYS_ADMIN), kernel BTF at
// /sys/kernel/btf/vmlinux, tracefs mounted. FailedPrecondition naming the
// first missing piece and how to fix it.
[[nodiscard]] absl::Status CheckPrerequisites(const std::string& tracefs = "");

// True when this binary embeds the BPF programs (configured FRAGLAB_BPF=ON).
bool BuiltWithBpf();

class Tracker {
 public:
  // Checks prerequisites, loads and attaches; records go to `sink`, which
  // must outlive the tracker. The returned tracker is running.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<Tracker>> Start(const TrackerOptions& options,
                                                                      EventSink* sink);
  ~Tracker();  // Stops if still running (errors are lost: call Stop()).
  Tracker(const Tracker&) = delete;
  Tracker& operator=(const Tracker&) = delete;

  // Waits up to `timeout_ms` for ring data, consumes all of it into the sink,
  // and writes the periodic records when an interval has elapsed. Errors of
  // the sink are returned (the tracker keeps running; Stop() still works).
  [[nodiscard]] absl::Status Poll(int timeout_ms);

  // Detaches every program, drains the ring, and writes the final aggregate,
  // drop and snapshot records. Idempotent; after it only stats() and
  // tracepoints() are meaningful.
  [[nodiscard]] absl::Status Stop();

  const TrackerStats& stats() const;
  const std::vector<TracepointState>& tracepoints() const;
  // One line per tracepoint that was skipped ("compaction:mm_compaction_begin
  // not attached: ...") and per other limitation (zones left out of the
  // aggregates), for the user.
  std::vector<std::string> Notes() const;
  const TrackerOptions& options() const;

  struct Impl;

 private:
  explicit Tracker(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Starts a tracker for the machine `machine` describes (the header of the
// trace its records go with): `base`'s zones and pageblock_order are
// replaced by the header's, so the aggregates' zone indexes follow the
// header's zone order; the rest of `base` is kept. Checks CheckPrerequisites
// first and returns its FailedPrecondition (message unchanged) without
// touching BPF when this machine cannot trace; otherwise what Start returns.
[[nodiscard]] absl::StatusOr<std::unique_ptr<Tracker>> StartForMachine(TrackerOptions base,
                                                                       const TraceHeader& machine,
                                                                       EventSink* sink);

// StartForMachine with this machine's header as it is now
// (snapshot::TraceHeaderForThisMachine(), read after the prerequisites
// passed), for callers that write no trace header of their own.
[[nodiscard]] absl::StatusOr<std::unique_ptr<Tracker>> StartForThisMachine(TrackerOptions base,
                                                                           EventSink* sink);

// What a caller that carries on without a tracker says about `why` (a
// StartForMachine error): "tracker unavailable: ..." when the machine cannot
// trace (FailedPrecondition: no privilege, BTF, tracefs, BPF support, or a
// required tracepoint), "tracker failed to start: ..." otherwise.
std::string NoTrackerNote(const absl::Status& why);

// Runs `body` while `tracker` (may be null) is polled every 50 ms on a
// background thread, so its ring buffers never fill during a long run.
// `body` gets a drain function that polls at once under the same lock (the
// generator calls it before each phase marker so events land in the right
// phase); it is empty when `tracker` is null. Returns the first poll error.
[[nodiscard]] absl::Status RunWhilePolling(Tracker* tracker,
                                           const std::function<void(std::function<void()> drain)>& body);

}  // namespace fraglab::tracker
