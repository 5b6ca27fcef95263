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
  // A dense pfn -> u32 table over [base, base + size), zero = none. Zeroed
  // lazily by the kernel (calloc of fresh pages): only the pfns a trace
  // touches cost memory, and lookups are one load (a replay does several per
  // record, where an ordered map cost most of the replay's time).
  class PfnTable {
   public:
    // False when the memory cannot be had.
    [[nodiscard]] bool Reset(uint64_t base, uint64_t size);
    uint32_t Get(uint64_t pfn) const {
      const uint64_t i = pfn - base_;
      return pfn >= base_ && i < size_ ? data_[i] : 0;
    }
    // pfns outside the table are ignored (no block the replay tracks lies there).
    void Fill(uint64_t pfn, uint64_t n, uint32_t v);
    uint64_t end() const { return base_ + size_; }

   private:
    struct FreeDeleter {
      void operator()(uint32_t* p) const;
    };
    std::unique_ptr<uint32_t[], FreeDeleter> data_;
    uint64_t base_ = 0;
    uint64_t size_ = 0;
  };
  // A traced kernel block still allocated and the model block it maps to.
  struct LiveBlock {
    uint64_t kernel_pfn = 0;
    uint64_t sim_pfn = 0;
    int order = 0;
  };

  absl::Status BuildModel();
  absl::Status Replay(const fl_record_header& rec);
  absl::Status OnAlloc(const fl_page_alloc& r);
  absl::Status OnFree(const fl_page_free& r);
  void OnSnapshot(const fl_snapshot_zone& z);
  // Frees in the model every live traced block overlapping [pfn, pfn+2^order)
  // (the kernel must have freed them without a traced free), lowest pfn first.
  absl::Status ReleaseOverlapping(uint64_t pfn, int order, int cpu);
  // Slot (index into blocks_) of the live block covering kernel pfn, or -1.
  int64_t LiveAt(uint64_t kernel_pfn) const { return static_cast<int64_t>(live_.Get(kernel_pfn)) - 1; }
  absl::Status FreeLive(uint32_t slot, int cpu);
  void Untrack(uint32_t slot);
  // A kernel free of a page allocated before the trace: frees the model's
  // start-state pages at the same pfns (splitting their block), so the model
  // does not run out of memory the kernel got back. False when the model has
  // no start-state allocation there.
  bool FreeStartStatePages(uint64_t pfn, int order, int cpu);
  int ZoneIndexOfKernelPfn(uint64_t pfn) const;
  // kind: an index into the .cc's table of unexplained-event kinds.
  void Count(int kind, uint64_t n = 1) { kind_counts_[kind] += n; }
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
  std::vector<uint64_t> kind_counts_;  // unexplained events by kind index
  std::vector<LiveBlock> blocks_;      // slots; free ones listed in free_slots_
  std::vector<uint32_t> free_slots_;
  PfnTable live_;       // kernel pfn (every page of a live block) -> slot + 1
  PfnTable sim_heads_;  // model block head -> slot + 1
  uint64_t now_ = 0;    // model time: never goes backwards
  void Track(uint64_t kernel_pfn, uint64_t sim_pfn, int order);
  void AdvanceTo(uint64_t ts_ns);
  std::vector<std::vector<ReplayFallbackKey>> pending_kernel_;  // [CPU]: extfrag since its last alloc
  std::vector<ReplayFallbackKey> kernel_scratch_;  // reused per allocation: no allocation per record
  std::vector<ReplayFallbackKey> sim_scratch_;
  std::map<uint16_t, uint64_t> drops_by_cpu_;
  // Per zone of the header (index into header_.zones): the model's zone
  // index (-1: not modelled) and the net change (frees - allocs, pages) the
  // traced events of the zone made since the start snapshot.
  std::vector<int> model_zone_;
  std::vector<int64_t> traced_net_;
  // Per (nid, zone_idx): free pages at the start snapshot, last layout seen.
  std::map<std::pair<int, int>, uint64_t> start_free_pages_;
  std::map<std::pair<int, int>, fl_snapshot_zone> last_layout_;
};

// Text report: the start-state agreement, fallbacks by class and pair kernel
// vs model, agreement per allocation, the first divergence, snapshots, and the
// unexplained events by kind.
std::string FormatReplayResult(const ReplayResult& r);

}  // namespace fraglab::sim
