// Start states: a simulated machine that begins where a recorded one was.
//
// Input is the first snapshot of a trace written by `fraglab snapshot [--map]`,
// `fraglab run` or `fraglab trace`: one FL_EV_SNAPSHOT_ZONE record per zone
// (buddyinfo, pagetypeinfo, zoneinfo numbers) and, when present, the
// FL_EV_PAGEBLOCK_MAP records that follow it (type and free pages of every
// pageblock). From it:
//
//   MachineConfigFromStart   the machine: zones with their pfn spans,
//       present/managed pages and holes, nodes, CPUs, the era of the recorded
//       release, min_free_kbytes and watermark_scale_factor recovered from the
//       recorded watermarks.
//   ApplyStartState          loads the state into a freshly built allocator:
//       pageblock types (exact from a map; otherwise per-type counts placed
//       deterministically, see docs/replay.md), free blocks matching the
//       recorded per-order totals exactly and the per-(order, type) counts as
//       far as the block types allow, every other page allocated with
//       AllocateAt (movable anon for Movable blocks, so compaction can move
//       them; unmovable kernel or reclaimable slab otherwise). It returns how
//       well the result agrees with the record.
//
// Pure: the caller reads the trace (TraceReader) and feeds the records in;
// nothing here touches a file or a clock.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "bpf/fraglab_events.h"
#include "common/event_sink.h"
#include "common/trace_file.h"
#include "sim/config.h"
#include "sim/page_allocator.h"

namespace fraglab::sim {

// One zone as the trace recorded it.
struct RecordedZone {
  fl_snapshot_zone snapshot{};                 // its record in the first snapshot
  uint64_t map_first_pfn = 0;                  // first pfn of `blocks` (pageblock aligned)
  std::vector<fl_pageblock_entry> blocks;      // pageblock map; empty when none was recorded
};

// The first snapshot of a trace.
struct RecordedStart {
  TraceHeader header;
  uint64_t ts_ns = 0;                // timestamp of the first zone record
  std::vector<RecordedZone> zones;   // in record order
  bool has_map = false;              // every zone has a pageblock map covering its span
  uint64_t records = 0;              // records consumed by the collector (the start set included)
};

// Collects the first snapshot from a record stream. The snapshot is the first
// run of FL_EV_SNAPSHOT_ZONE records (one per zone) together with the
// FL_EV_COUNTERS, FL_EV_PAGEBLOCK_MAP, FL_EV_PHASE and FL_EV_DROPS records
// around it; the set closes at the first record of any other kind, at a
// second zone record for a zone already held, or at a second map of a zone.
// Records before the first zone record are skipped (counted by kind).
class StartSnapshotCollector final : public EventSink {
 public:
  explicit StartSnapshotCollector(TraceHeader header);

  // Offers one record. Once done() is true the record that closed the set
  // (and every later one) is refused with FailedPrecondition: it belongs to
  // whatever runs from the start state. InvalidArgument for a malformed
  // snapshot or map record (size, zone, non-contiguous map pieces).
  [[nodiscard]] absl::Status Emit(const fl_record_header& rec) override;

  // True once a record closed the start set (that record was not consumed).
  bool done() const { return done_; }

  // The start state. FailedPrecondition when no FL_EV_SNAPSHOT_ZONE record
  // was seen (the message says how to record one).
  [[nodiscard]] absl::StatusOr<RecordedStart> Finish() const;

  // Records of each kind offered before the first zone record.
  const std::array<uint64_t, FL_EV_KIND_MAX>& skipped_before_start() const { return skipped_; }

 private:
  RecordedStart start_;
  bool started_ = false;
  bool done_ = false;
  std::vector<bool> zone_has_map_records_;
  std::array<uint64_t, FL_EV_KIND_MAX> skipped_{};
};

// The machine of a recorded start. `notes` (may be null) receives one line per
// approximation ("zone Device skipped", "boost 120 not reproduced", ...).
// InvalidArgument when the record describes no usable zone.
[[nodiscard]] absl::StatusOr<MachineConfig> MachineConfigFromStart(const RecordedStart& start,
                                                                   std::vector<std::string>* notes = nullptr);

// Agreement of one zone after ApplyStartState. Per-type arrays are indexed by
// the recorded kernel's migratetype number (FL_MAX_MIGRATETYPES slots).
struct ZoneAgreement {
  int nid = 0;
  int zone_idx = 0;
  std::string name;
  std::array<uint64_t, FL_MAX_ORDERS> recorded_nr_free{};
  std::array<uint64_t, FL_MAX_ORDERS> sim_nr_free{};
  bool has_types = false;  // the record had pagetypeinfo data
  std::array<std::array<uint64_t, FL_MAX_MIGRATETYPES>, FL_MAX_ORDERS> recorded_free_by_type{};
  std::array<std::array<uint64_t, FL_MAX_MIGRATETYPES>, FL_MAX_ORDERS> sim_free_by_type{};
  std::array<uint64_t, FL_MAX_MIGRATETYPES> recorded_pageblocks{};
  std::array<uint64_t, FL_MAX_MIGRATETYPES> sim_pageblocks{};
  uint64_t recorded_free_pages = 0;        // sum nr_free[k] << k
  uint64_t sim_free_pages = 0;
  // Free blocks that could not go on their recorded type's list for want of
  // room in blocks of that type, and were placed in another type's block.
  uint64_t free_blocks_off_type = 0;
  uint64_t free_blocks_unplaced = 0;       // no room anywhere (per-order totals then differ)
  uint64_t pageblocks_unassigned = 0;      // recorded types that found no block to take them
  // With a pageblock map: blocks compared (those the map typed), blocks of
  // equal type, and sum |free pages sim - recorded| over them.
  uint64_t map_blocks = 0;
  uint64_t map_type_equal = 0;
  uint64_t map_free_abs_diff = 0;
  uint64_t recorded_wmark[3] = {0, 0, 0};  // min, low, high
  uint64_t sim_wmark[3] = {0, 0, 0};
};

struct StartStateReport {
  bool from_map = false;                 // block types and free pages per block came from a map
  std::vector<ZoneAgreement> zones;
  std::vector<std::string> notes;        // approximations made (machine and state)

  // Sum over zones and orders of |sim - recorded| free blocks.
  uint64_t FreeBlockOrderDiff() const;
  // Sum over zones and types of min(sim, recorded) pageblocks / recorded (1 when nothing recorded).
  double PageblockTypeAgreement() const;
};

// Loads `start` into `allocator`, which must be freshly created (boot state)
// from MachineConfigFromStart(start). Deterministic. InvalidArgument when the
// allocator's zones do not match the record; errors of the allocator are
// passed on (Internal: a bug here).
[[nodiscard]] absl::StatusOr<StartStateReport> ApplyStartState(const RecordedStart& start,
                                                               PageAllocator& allocator);

// Human-readable agreement table (per zone: free blocks per order recorded vs
// simulated, pageblocks per type, watermarks, placement residuals, notes).
std::string FormatStartStateReport(const StartStateReport& report,
                                   const std::vector<std::string>& migratetype_names);

}  // namespace fraglab::sim
