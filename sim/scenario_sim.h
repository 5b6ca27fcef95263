// ScenarioSimulator: runs a scenario (common/scenario.h) on the page
// allocator model (sim/page_allocator.h). It builds the machine from the
// scenario's [machine] section (or Options::machine), walks the expanded
// phases in run order and performs each one:
//
//   alloc / free / expect   raw allocator operations (simulator only)
//   snapshot                no allocator work; the phase is still marked
//   hold                    logical time moves on by the duration; the
//                           background work due meanwhile runs
//   anon, release, pin, slab, pagecache, thp, probe, compact, drop_caches,
//   sysctl                  the kernel model (sim/kernel_model.h)
//
// Outputs go to an EventSink: FL_EV_PHASE begin/end markers around every
// phase, the allocator's own events in between, and one FL_EV_SNAPSHOT_ZONE
// per zone just before each phase's end marker (so analysis/metrics.h sees
// the state at the end of every phase). Scenarios with kernel-model phases
// also get an FL_EV_COUNTERS record after each begin marker and before
// each end marker (cumulative counters, so per-phase deltas can be taken),
// and FL_EV_PROBE records from probe phases.
//
// Time is logical, 1 unit = 1 ns: the clock starts at 0 and advances by one
// unit for every allocator call (each single allocation or free) and for
// every phase marker, and by the duration of a hold phase, so records are
// totally ordered and runs are reproducible. Background work the allocator
// schedules (kswapd, kcompactd) runs when the clock is advanced through
// PageAllocator::AdvanceTime: after each kernel-model operation, at the
// model's safe points inside one (between faults, files) and across holds;
// raw alloc/free phases only set the time. Random choices (free pattern
// "random", touch order, release patterns) use common/rng.h seeded from the
// scenario seed or an override; the same scenario, seed and build give the
// same records, byte for byte.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/event_sink.h"
#include "common/rng.h"
#include "common/scenario.h"
#include "common/trace_file.h"
#include "sim/kernel_model.h"
#include "sim/narrator.h"
#include "sim/page_allocator.h"

namespace fraglab::sim {

// One block an `alloc` phase obtained.
struct TaggedBlock {
  uint64_t pfn = 0;
  int order = 0;
};

// Callbacks around phases and single allocator calls, for front ends that
// show a run step by step (`fraglab explain`). All default to nothing.
class RunObserver {
 public:
  virtual ~RunObserver() = default;
  // Before the phase's first allocator call (after its begin marker).
  virtual void OnPhaseBegin(const scenario::ExpandedPhase& phase) { (void)phase; }
  // Before each single allocation or free; `what` describes the call
  // ("alloc 2/8: order 9 movable (gfp 0x100cca) on CPU 0").
  virtual void OnCall(const std::string& what) { (void)what; }
  // After a single call; `result` describes its outcome ("pfn 512", "failed").
  virtual void OnCallDone(const std::string& result) { (void)result; }
  // After the phase finished, before its end marker; `outcome` is OK, or the
  // error that stops the run (a failed expectation, say).
  virtual void OnPhaseEnd(const scenario::ExpandedPhase& phase, const PageAllocator& allocator,
                          const absl::Status& outcome) {
    (void)phase;
    (void)allocator;
    (void)outcome;
  }
};

class ScenarioSimulator {
 public:
  struct Options {
    std::optional<uint64_t> seed;   // overrides the scenario's seed
    EventSink* sink = nullptr;      // records (may be null); must outlive the simulator
    Narrator* narrator = nullptr;   // allocator decisions (may be null)
    RunObserver* observer = nullptr;
    // Replaces the machine of the scenario's [machine] section (used to
    // continue a run from a captured machine, `fraglab sim --start-from`).
    std::optional<MachineConfig> machine;
    // Called once right after the allocator is created, before the first
    // phase (to load a starting state into it). An error stops Create and is
    // returned from it unchanged.
    std::function<absl::Status(PageAllocator&)> prepare;
  };

  // Builds the machine of `s` (MachineConfigFromScenario, or options.machine
  // when set) and the boot state, then calls options.prepare if set.
  // `s` must outlive the simulator (expanded phases point into it).
  // InvalidArgument naming the field when the machine is not valid.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<ScenarioSimulator>> Create(
      const scenario::Scenario& s, const Options& options);

  ScenarioSimulator(const ScenarioSimulator&) = delete;
  ScenarioSimulator& operator=(const ScenarioSimulator&) = delete;

  // Runs every remaining phase in order. Stops at the first error:
  // InvalidArgument for an operation the simulator cannot perform (a free
  // of an unknown tag, a preferred zone the gfp cannot reach, a setting the
  // model cannot change), FailedPrecondition for a failed expectation
  // ("phase 4:expect (claim.toml:51): expected ..., the simulator has ..."),
  // ResourceExhausted when the kernel model runs out of memory where the
  // kernel would OOM-kill, or the first error of the event sink. The
  // failing phase still gets its snapshot and end marker.
  [[nodiscard]] absl::Status Run();

  // Runs the next phase only; OutOfRange when all phases have run.
  [[nodiscard]] absl::Status Step();

  bool done() const { return next_ >= phases_.size(); }
  const std::vector<scenario::ExpandedPhase>& phases() const { return phases_; }
  size_t next_phase() const { return next_; }
  const PageAllocator& allocator() const { return *allocator_; }
  uint64_t seed() const { return seed_; }
  // Blocks still allocated under `tag`, in allocation order (empty if none).
  std::vector<TaggedBlock> Tagged(const std::string& tag) const;
  // Expectations checked so far (all passed; a failure stops the run).
  uint64_t expectations_passed() const { return expectations_passed_; }
  // The kernel model (THP settings, counters, regions).
  const KernelModel& model() const { return *model_; }

 private:
  // Keeps the extfrag events of the current expect window (in tee_ only when
  // the scenario has fallback checks); it never fails.
  class ExtfragWindow final : public EventSink {
   public:
    bool keep = false;  // some expect phase checks fallbacks
    std::vector<fl_extfrag> events;
    [[nodiscard]] absl::Status Emit(const fl_record_header& rec) override;
  };

  // The allocator's page user: the kernel model, and the raw alloc tags
  // for migrated blocks the model does not know.
  class Owners final : public PageUser {
   public:
    explicit Owners(ScenarioSimulator* sim) : sim_(sim) {}
    void OnMigrated(uint64_t old_pfn, uint64_t new_pfn, int order) override;
    uint64_t Reclaim(const ReclaimRequest& req) override;

   private:
    ScenarioSimulator* sim_;
  };

  ScenarioSimulator(const scenario::Scenario& s, const Options& options);

  absl::Status RunPhase(const scenario::ExpandedPhase& e);
  absl::Status DoAlloc(const scenario::ExpandedPhase& e, const scenario::AllocOp& op);
  absl::Status DoFree(const scenario::ExpandedPhase& e, const scenario::FreeOp& op);
  absl::Status DoExpect(const scenario::ExpandedPhase& e, const scenario::ExpectOp& op);
  absl::Status EmitPhase(const scenario::ExpandedPhase& e, bool begin);
  absl::Status EmitCounters();
  // "phase 4:expect (file.toml:51)" for messages.
  std::string Where(const scenario::ExpandedPhase& e) const;
  uint64_t Tick() { return ++now_; }

  const scenario::Scenario& scenario_;
  Options options_;
  uint64_t seed_ = 0;
  Rng rng_;
  ExtfragWindow extfrag_;
  TeeSink tee_;  // extfrag_, then Options::sink when there is one
  std::unique_ptr<PageAllocator> allocator_;
  std::unique_ptr<KernelModel> model_;
  Owners owners_{this};
  bool kernel_ops_ = false;  // the scenario has kernel-model phases
  std::vector<scenario::ExpandedPhase> phases_;
  size_t next_ = 0;
  uint64_t now_ = 0;
  std::map<std::string, std::vector<TaggedBlock>> tags_;
  // The most recent alloc phase: its last request's pfn (kNoPfn = failed).
  bool have_last_alloc_ = false;
  uint64_t last_alloc_pfn_ = kNoPfn;
  uint64_t last_alloc_failures_ = 0;
  uint64_t last_alloc_requests_ = 0;
  std::string last_alloc_phase_;
  bool previous_was_expect_ = false;
  uint64_t expectations_passed_ = 0;
};

// The trace header of a simulated run: simulated, created_unix_s 0, the
// modelled era and release, the allocator's zones and migratetype names (its
// numbering), CPUs, the scenario's name, `scenario_text` and `seed`. Nothing
// in it depends on the host or the clock, so traces are byte-identical.
TraceHeader SimTraceHeader(const scenario::Scenario& s, const PageAllocator& allocator,
                           const std::string& scenario_text, uint64_t seed);

// Sets h's zones (layout of every allocator zone) and migratetype names (the
// allocator's numbering): the part of a header that describes the machine,
// for SimTraceHeader and for tests and benchmarks that write traces by hand.
void SetAllocatorLayout(const PageAllocator& allocator, TraceHeader& h);

}  // namespace fraglab::sim
