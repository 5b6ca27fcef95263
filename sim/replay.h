// Trace replay: drives the page-allocator model with the allocations and
// frees a real kernel recorded, starting from the trace's own first snapshot
// (sim/start_state.h), and compares the fallbacks (extfrag events) the model
// makes with the ones the kernel made.
//
//   FL_EV_PAGE_ALLOC (pfn != FL_NO_PFN)  the same request (order, gfp, CPU,
//       preferred node = the node of the kernel's page) on the model; the
//       kernel pfn is mapped to the model pfn it got.
//   FL_EV_PAGE_FREE   the model frees the block its mapped allocation got;
//       a free of part of a traced block (split_page) splits it first.
//   FL_EV_EXTFRAG     the kernel's fallbacks, attributed to the next
//       allocation record on the same CPU (the tracepoint fires inside it).
//   later FL_EV_SNAPSHOT_ZONE   free blocks per order, kernel vs model, at
//       the same moment.
// Everything the replay cannot explain is counted by kind and reported, never
// dropped silently: frees of pages not allocated in the trace (allocated
// before it started, by alloc_pages_bulk, or as compaction targets), failed
// kernel allocations, pcp refills and drains (the model runs its own pcp
// lists), compaction migrations, lost events, hotplug (zone sizes changing)
// and the free-page drift that page reporting and other untraced buddy
// changes leave between snapshots.
//
// Pure: records are fed in (an EventSink); the caller reads the file. Time
// for the model is the trace's own timestamps minus the start snapshot's.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

#include "absl/container/btree_map.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "bpf/fraglab_events.h"
#include "common/event_sink.h"
#include "common/trace_file.h"
#include "sim/page_allocator.h"
#include "sim/start_state.h"

namespace fraglab::sim {

// (class, alloc migratetype, fallback migratetype) -> count; migratetype
// numbers of the recorded kernel (the model uses the same numbering).
using ReplayFallbackKey = std::tuple<int, int, int>;
using ReplayFallbacks = std::map<ReplayFallbackKey, uint64_t>;

// The first allocation whose fallbacks differ between kernel and model.
struct ReplayDivergence {
  uint64_t record_index = 0;     // 0-based position of the FL_EV_PAGE_ALLOC record in the trace
  uint64_t ts_ns = 0;            // its timestamp (kernel clock)
  int cpu = 0;
  int order = 0;
  uint64_t gfp = 0;
  std::string kernel_did;        // "pfn 0x1234; fallbacks: steal Unmovable<-Movable x1"
  std::string sim_did;
};

// Kernel vs model free blocks per order for one zone at one later snapshot.
struct ReplaySnapshotCheck {
  uint64_t record_index = 0;
  uint64_t ts_ns = 0;
  int nid = 0;
  int zone_idx = 0;
  std::array<uint64_t, FL_MAX_ORDERS> kernel_nr_free{};
  std::array<uint64_t, FL_MAX_ORDERS> sim_nr_free{};
  // Recorded change of the zone's free pages since the start snapshot minus
  // the change the traced allocs/frees of the zone account for: what
  // untraced buddy changes (pcp residency, page reporting, bulk allocations,
  // compaction) did.
  int64_t untraced_free_pages = 0;
};

struct ReplayOptions {
  // Records the model emits (its own page alloc/free, extfrag, zone_locked,
  // pcp drain events) also go here; may be null. Must outlive the replayer.
  EventSink* sim_sink = nullptr;
  // Run the model's invariant checker after every replayed operation (slow).
  bool check_invariants = false;
};

struct ReplayResult {
  TraceHeader header;
  StartStateReport start;                 // how well the start state matched
  std::vector<std::string> machine_notes;  // MachineConfigFromStart's notes
  uint64_t records = 0;                   // records fed
  uint64_t start_ts_ns = 0;               // the start snapshot's timestamp
  uint64_t last_ts_ns = 0;                // latest timestamp seen
  uint64_t span_ns = 0;                   // last - first timestamp of the trace
  uint64_t allocs_replayed = 0;           // kernel allocations given to the model
  uint64_t allocs_sim_failed = 0;         // ... that the model could not serve
  uint64_t frees_replayed = 0;            // frees the model performed for traced allocations
  uint64_t allocs_with_fallback = 0;      // allocations where kernel or model fell back
  uint64_t allocs_fallback_agree = 0;     // ... and both made the same fallbacks
  ReplayFallbacks kernel_fallbacks;
  ReplayFallbacks sim_fallbacks;
  std::optional<ReplayDivergence> first_divergence;
  // Kind -> count of recorded events the replay could not reproduce or that
  // the model handles by its own rules (see the header comment); sorted.
  std::map<std::string, uint64_t> unexplained;
  std::vector<ReplaySnapshotCheck> snapshots;
  uint64_t sim_extfrag_events = 0;
  uint64_t kernel_extfrag_events = 0;
};

// Feeds a whole trace, record by record, to the model. The first snapshot set
// is collected first; the model is built at the first record after it.
class TraceReplayer final : public EventSink {
 public:
  TraceReplayer(TraceHeader header, ReplayOptions options);
  ~TraceReplayer() override;
  TraceReplayer(const TraceReplayer&) = delete;
  TraceReplayer& operator=(const TraceReplayer&) = delete;

  // Offers the next record of the trace. Errors: a malformed record
  // (InvalidArgument naming the record index), a start state that cannot be
  // built, an error of options.sim_sink.
  [[nodiscard]] absl::Status Emit(const fl_record_header& rec) override;

  // Ends the replay and returns the comparison. FailedPrecondition when the
  // trace has no snapshot to start from, or no page allocation or free event
  // at all (recorded without --all-events).
  [[nodiscard]] absl::StatusOr<ReplayResult> Finish();

  // The model, once built (null before the start set is complete).
  const PageAllocator* allocator() const { return allocator_.get(); }

 private:
  class SimSink;
  class Owners;
  struct Live {
    uint64_t sim_pfn = 0;
    int order = 0;
  };

  absl::Status BuildModel();
  absl::Status Replay(const fl_record_header& rec);
  absl::Status OnAlloc(const fl_page_alloc& r);
  absl::Status OnFree(const fl_page_free& r);
  void OnSnapshot(const fl_snapshot_zone& z);
  // Frees in the model every live traced block overlapping [pfn, pfn+2^order)
  // (the kernel must have freed them without a traced free).
  absl::Status ReleaseOverlapping(uint64_t pfn, int order, int cpu);
  using LiveMap = absl::btree_map<uint64_t, Live>;  // ordered: overlap searches
  absl::Status FreeLive(LiveMap::iterator it, int cpu);
  // A kernel free of a page allocated before the trace: frees the model's
  // start-state pages at the same pfns (splitting their block), so the model
  // does not run out of memory the kernel got back. False when the model has
  // no start-state allocation there.
  bool FreeStartStatePages(uint64_t pfn, int order, int cpu);
  int ZoneIndexOfKernelPfn(uint64_t pfn) const;
  void Count(const std::string& kind, uint64_t n = 1) { result_.unexplained[kind] += n; }
  std::string FallbackText(const std::vector<ReplayFallbackKey>& v) const;

  TraceHeader header_;
  ReplayOptions options_;
  StartSnapshotCollector collector_;
  std::unique_ptr<SimSink> sim_sink_;
  std::unique_ptr<Owners> owners_;  // told by the model's compaction where blocks moved
  std::unique_ptr<PageAllocator> allocator_;
  ReplayResult result_;
  bool have_first_ts_ = false;
  uint64_t first_ts_ = 0;
  uint64_t index_ = 0;  // of the record being processed
  uint64_t page_events_ = 0;
  uint64_t aggregate_records_ = 0;
  LiveMap live_;  // kernel pfn -> model block
  absl::flat_hash_map<uint64_t, uint64_t> sim_to_kernel_;  // model block head -> kernel pfn (lookups only)
  uint64_t now_ = 0;  // model time: never goes backwards
  void Track(uint64_t kernel_pfn, Live l);
  void AdvanceTo(uint64_t ts_ns);
  std::map<int, std::vector<ReplayFallbackKey>> pending_kernel_;  // CPU -> extfrag since its last alloc
  std::map<uint16_t, uint64_t> drops_by_cpu_;
  // Per zone of the header: free pages at the start snapshot and the net
  // change (frees - allocs, pages) the traced events of the zone made since.
  std::map<std::pair<int, int>, uint64_t> start_free_pages_;
  std::map<std::pair<int, int>, int64_t> traced_net_;
  std::map<std::pair<int, int>, fl_snapshot_zone> last_layout_;
};

// Text report: the start-state agreement, fallbacks by class and pair kernel
// vs model, agreement per allocation, the first divergence, snapshots, and the
// unexplained events by kind.
std::string FormatReplayResult(const ReplayResult& r);

}  // namespace fraglab::sim
