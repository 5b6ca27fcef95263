// MachineSnapshot: this machine's buddy allocator state at one moment, per
// node and zone, assembled from /proc/buddyinfo, /proc/pagetypeinfo (root
// only), /proc/zoneinfo, /proc/vmstat and /proc/meminfo, with the kernel's
// fragmentation indices computed from buddyinfo (common/frag_index.h).
//
// Entry points for other components:
//   ReadMachineSnapshot(root, options)   read the files and assemble. Cost on
//       this VM: buddyinfo+zoneinfo+vmstat+meminfo well under 1 ms together;
//       pagetypeinfo alone 1-200 ms, because the kernel walks every free list
//       under the zone lock (the longer the lists, i.e. the more fragmented,
//       the slower). A tracker sampling often should pass
//       {.pagetypeinfo = false} and read the per-type data less often.
//   EmitSnapshotRecords(s, sink)   FL_EV_SNAPSHOT_ZONE per zone + one FL_EV_COUNTERS
//   ZoneRecord(s, i), CountersRecord(s)   the same records one at a time
//   ZoneLayouts(s), MigratetypeNames(s), TraceHeaderFromSnapshot(s)
//   TraceHeaderForThisMachine()    header for a trace of the running kernel
// Rendering (JSON, text) lives in common/snapshot_render.h.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "bpf/fraglab_events.h"
#include "common/event_sink.h"
#include "common/proc_meminfo.h"
#include "common/proc_vmstat.h"
#include "common/trace_file.h"

namespace fraglab::snapshot {

// One populated zone (a zone listed in /proc/buddyinfo).
struct ZoneSnapshot {
  int nid = 0;
  int zone_idx = 0;                    // kernel zone index (position in zoneinfo)
  std::string name;                    // "DMA", "DMA32", "Normal", ...

  // buddyinfo: free blocks per order over all free lists.
  std::vector<uint64_t> nr_free;

  // pagetypeinfo; empty vectors when it could not be read.
  std::vector<std::vector<uint64_t>> free_by_type;  // [type][order]
  std::vector<std::vector<uint8_t>> saturated;      // [type][order]: ">100000"
  std::vector<uint64_t> pageblocks;                 // [type]
  std::vector<uint64_t> mixed_blocks;               // [type]; empty unless page_owner

  // zoneinfo.
  uint64_t start_pfn = 0;
  uint64_t spanned = 0, present = 0, managed = 0;
  uint64_t free_pages = 0;             // "pages free"
  uint64_t nr_free_pages = 0;          // zone counter (excludes pcp and isolated pages)
  std::optional<uint64_t> nr_free_pages_blocks;  // 6.15+: free pages in blocks >= pageblock order
  uint64_t wmark_min = 0, wmark_low = 0, wmark_high = 0;
  std::optional<uint64_t> wmark_promo;
  uint64_t boost = 0;
  std::vector<uint64_t> protection;
  uint64_t pcp_pages = 0;              // free pages on per-CPU lists (sum of pageset counts)
  std::optional<uint64_t> nr_free_cma;

  // Computed from nr_free with the kernel's integer formulas, per order.
  std::vector<int> unusable_index;       // thousandths
  std::vector<int> fragmentation_index;  // thousandths
  int compaction_score = 0;              // extfrag_for_order(pageblock_order), percent

  bool HasTypes() const { return !free_by_type.empty(); }
  // Free pages in the buddy lists (sum nr_free[k] * 2^k).
  uint64_t BuddyFreePages() const;
};

struct MachineSnapshot {
  uint64_t monotonic_ns = 0;           // CLOCK_MONOTONIC when reading started
  std::string root = "/";
  std::string kernel_release;          // <root>/proc/sys/kernel/osrelease, "" if absent
  uint32_t page_size = 4096;
  int pageblock_order = 9;             // from pagetypeinfo; 9 (x86-64) when unreadable
  size_t num_orders = 0;               // buddyinfo columns
  std::vector<std::string> migratetype_names;  // index = kernel number
  bool migratetypes_inferred = false;  // true: names guessed (pagetypeinfo unreadable)
  std::string pagetypeinfo_error;      // why pagetypeinfo is missing; "" when read
  uint32_t nr_cpus = 0;                // pagesets per populated zone
  std::vector<ZoneSnapshot> zones;     // buddyinfo order
  procfs::VmStat vmstat;
  procfs::MemInfo meminfo;

  bool HasTypes() const { return pagetypeinfo_error.empty(); }
};

struct SnapshotOptions {
  // Read /proc/pagetypeinfo (per-migratetype free lists and pageblock
  // counts). When false, pagetypeinfo_error says "not requested" and the
  // numbering is inferred as for an unprivileged reader.
  bool pagetypeinfo = true;
};

// Reads the five files under `root` ("/" for this machine; a fixture directory
// mirroring /proc otherwise) and assembles the snapshot. pagetypeinfo being
// unreadable (not root, absent) is not an error: pagetypeinfo_error says why
// and the per-type fields stay empty. Other files are required; parse errors
// name the file and line.
[[nodiscard]] absl::StatusOr<MachineSnapshot> ReadMachineSnapshot(const std::string& root = "/",
                                                                   const SnapshotOptions& options = {});

// The FL_EV_SNAPSHOT_ZONE record of zone `zone_index` (position in s.zones),
// stamped with s.monotonic_ns. InvalidArgument when the zone has more orders
// or migratetypes than the schema holds (FL_MAX_ORDERS, FL_MAX_MIGRATETYPES).
[[nodiscard]] absl::StatusOr<fl_snapshot_zone> ZoneRecord(const MachineSnapshot& s, size_t zone_index);

// The FL_EV_COUNTERS record: vmstat values by the fl_counter_id mapping, with
// meminfo fallbacks for kernels whose vmstat lacks a counter; present_mask
// tells which were read.
fl_counters CountersRecord(const MachineSnapshot& s);

// The vmstat name of counter `id` ("nr_free_pages", ...), or nullptr.
const char* CounterName(int id);

// Emits every zone record then the counters record.
[[nodiscard]] absl::Status EmitSnapshotRecords(const MachineSnapshot& s, EventSink& sink);

// Zones of the snapshot as trace-header layouts (populated zones only).
std::vector<ZoneLayout> ZoneLayouts(const MachineSnapshot& s);

// The kernel's migratetype names, index = number.
const std::vector<std::string>& MigratetypeNames(const MachineSnapshot& s);

// The fallback-policy era of a kernel release (reference section 0):
// "LEGACY" for <= 6.9, "HYGIENE" for 6.10-6.14 except 6.12.29+, "CLAIM" for
// >= 6.15 and 6.12.29+; "" when the release does not start with N.M.
std::string KernelEraForRelease(const std::string& release);

// A trace header describing the snapshot's machine (kernel release, era,
// zones, migratetype names, cpus, pageblock order; machine = hostname and
// architecture from uname when root is "/").
TraceHeader TraceHeaderFromSnapshot(const MachineSnapshot& s);

// ReadMachineSnapshot("/") + TraceHeaderFromSnapshot, with nr_cpus from the
// online CPU count and created_unix_s set to now.
[[nodiscard]] absl::StatusOr<TraceHeader> TraceHeaderForThisMachine();

}  // namespace fraglab::snapshot
