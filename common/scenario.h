// The scenario model: what a scenario file (scenarios/*.toml) says, as plain
// data. The parser (common/scenario_parser.h) fills it and validates it; the
// printer (common/scenario_printer.h) writes it back as canonical TOML; the
// generator (gen/) performs the phases with real syscalls and the simulator
// (sim/) turns them into page allocations on the machine described by
// `SimMachineSpec`. docs/scenario-format.md describes the file format.
//
// Defaults: every field below documents the value it has when the file does
// not set it; a default-constructed struct holds exactly those defaults.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "common/units.h"

namespace fraglab::scenario {

// ---------------------------------------------------------------------------
// Vocabulary shared by the machine section and the operations.

inline constexpr int kMaxOrder = 10;        // MAX_PAGE_ORDER on x86-64
inline constexpr int kPageblockOrder = 9;   // 2 MiB pageblocks
inline constexpr uint64_t kDmaEndPfn = 4096;        // DMA: pfn < 4096 (16 MiB)
inline constexpr uint64_t kDma32EndPfn = 0x100000;  // DMA32: pfn < 4 GiB
inline constexpr int kMinMthpOrder = 1;     // 8 KiB
inline constexpr int kMaxMthpOrder = 8;     // 1 MiB

// Kernel fallback policy (reference/kernel-page-allocator.md section 0).
enum class Era { kLegacy, kHygiene, kClaim };
enum class ZoneType { kDma, kDma32, kNormal, kMovable };  // values = kernel zone index
// Migratetypes by name; their numbers depend on CMA (MigratetypeNumber()).
enum class Migratetype { kUnmovable, kMovable, kReclaimable, kHighatomic, kCma, kIsolate };
enum class PcpTuning {
  kStatic,  // <= 6.6: high fixed from the low watermark
  kAuto,    // 6.7+: high floats between high_min and high_max
};
enum class ThpEnabled { kAlways, kMadvise, kNever };
enum class ThpDefrag { kAlways, kDefer, kDeferMadvise, kMadvise, kNever };
enum class MthpEnabled { kAlways, kInherit, kMadvise, kNever };
// Weiner's fallback taxonomy, as bpf/fraglab_events.h fl_extfrag_class.
enum class FallbackClass { kClaim, kSteal, kPollute };

// Spellings used in files and messages ("CLAIM", "Normal", "movable", ...).
const char* EraName(Era era);
const char* ZoneName(ZoneType zone);
const char* MigratetypeName(Migratetype mt);
const char* PcpTuningName(PcpTuning t);
const char* ThpEnabledName(ThpEnabled v);
const char* ThpDefragName(ThpDefrag v);
const char* MthpEnabledName(MthpEnabled v);
const char* FallbackClassName(FallbackClass c);

// The kernel's number for `mt` (UNMOVABLE=0 .. ISOLATE=4 without CMA, 5 with
// CMA); -1 for kCma when `cma` is false (that type does not exist then).
int MigratetypeNumber(Migratetype mt, bool cma);
// Number of migratetypes the kernel has (5 without CMA, 6 with).
int NumMigratetypes(bool cma);

// ---------------------------------------------------------------------------
// The simulated machine ([machine]). Used by the simulator only; the generator
// runs on whatever machine it is on.

// One zone: pfns [start_pfn, end_pfn) on `node`.
struct ZoneSpec {
  ZoneType type = ZoneType::kNormal;
  int node = 0;
  uint64_t start_pfn = 0;
  uint64_t end_pfn = 0;  // exclusive

  friend bool operator==(const ZoneSpec&, const ZoneSpec&) = default;
};

// [machine.vm]: the vm.* sysctls the simulator models.
struct VmSysctls {
  int64_t min_free_kbytes = 67584;           // this machine (THP raised it); 0..4194304
  int64_t watermark_scale_factor = 10;       // 1..3000
  int64_t watermark_boost_factor = 15000;    // 0..2147483647
  int64_t defrag_mode = 0;                   // 0|1 (6.15+)
  int64_t extfrag_threshold = 500;           // -1000..1000
  int64_t compaction_proactiveness = 20;     // 0..100
  int64_t percpu_pagelist_high_fraction = 0; // 0 or 8..2147483647

  friend bool operator==(const VmSysctls&, const VmSysctls&) = default;
};

// [machine.thp]: /sys/kernel/mm/transparent_hugepage settings.
struct ThpSettings {
  ThpEnabled enabled = ThpEnabled::kMadvise;
  ThpDefrag defrag = ThpDefrag::kMadvise;
  // Per-size mTHP "enabled" by order (1..8 = 8 KiB..1 MiB); an order not in
  // the map is "never" (the kernel's default for sizes other than 2 MiB).
  std::map<int, MthpEnabled> mthp;

  friend bool operator==(const ThpSettings&, const ThpSettings&) = default;
};

struct SimMachineSpec {
  // Total memory. Default 24 GiB. With explicit `zones` the parser sets it to
  // the sum of the zone sizes.
  uint64_t memory_bytes = uint64_t{24} << 30;
  int nodes = 1;                 // 1..64
  int cpus = 2;                  // 1..1024
  Era era = Era::kClaim;
  std::string kernel_release;    // free text, e.g. "6.18.0"; empty = unspecified
  bool pcp = true;               // model per-CPU page lists
  PcpTuning pcp_tuning = PcpTuning::kAuto;
  bool cma = false;              // migratetype numbering with MIGRATE_CMA
  // Explicit zone layout, in declaration order. Empty = the default layout,
  // DefaultZoneLayout(memory_bytes, nodes); use ResolvedZones() to read it.
  std::vector<ZoneSpec> zones;
  VmSysctls vm;
  ThpSettings thp;

  friend bool operator==(const SimMachineSpec&, const SimMachineSpec&) = default;
};

// The kernel-like default layout: memory split evenly over `nodes` (whole
// pages, remainder on the last node); node 0 gets DMA [0, 4096), DMA32 up to
// pfn 0x100000 and Normal above, as far as its memory reaches; other nodes
// get one Normal zone each, placed after the previous node. (No PCI hole.)
std::vector<ZoneSpec> DefaultZoneLayout(uint64_t memory_bytes, int nodes);

// `machine.zones` if given, else the default layout.
std::vector<ZoneSpec> ResolvedZones(const SimMachineSpec& machine);

// Settable names, shared by the [machine] section and the `sysctl` operation:
//   vm.min_free_kbytes, vm.watermark_scale_factor, vm.watermark_boost_factor,
//   vm.defrag_mode, vm.extfrag_threshold, vm.compaction_proactiveness,
//   vm.percpu_pagelist_high_fraction            (integers, ranges above)
//   thp.enabled   always|madvise|never
//   thp.defrag    always|defer|defer+madvise|madvise|never
//   thp.mthp.<size>  always|inherit|madvise|never   (<size> 8KiB..1MiB)
// Returns the names in a stable order (mTHP sizes as the pattern).
const std::vector<std::string>& SysctlNames();

// Sets `setting` to `value` (the canonical text: decimal for integers) in
// `machine`. InvalidArgument naming the setting and what is allowed if the
// name is unknown or the value out of range. The simulator uses this to
// apply `sysctl` phases; the parser uses it to validate them.
[[nodiscard]] absl::Status ApplySysctl(SimMachineSpec& machine, absl::string_view setting,
                                       absl::string_view value);

// ---------------------------------------------------------------------------
// Budget ([budget]): limits for the generator on a real machine.
struct Budget {
  // Most memory the generator may use; a percentage is of MemAvailable at
  // start. Default 50%.
  Size memory = Size::Percent(50000);
  absl::Duration max_duration = absl::Minutes(10);  // default 10m
  // Free memory left to the buddy allocator for the run (the generator's
  // "arena"); a percentage is of the budget memory. The generator takes the
  // rest of free memory out first (a base-page ballast over the small free
  // blocks, then hugetlb pages from the free order-9 blocks, all given back at
  // the end) so that a small workload changes the machine-wide picture.
  // Default: unset (no arena). The simulator ignores it.
  std::optional<Size> arena;

  friend bool operator==(const Budget&, const Budget&) = default;
};

// ---------------------------------------------------------------------------
// Operations. One struct per kind; `Operation` holds one of them. Sizes with
// a percentage are "% of the budget memory" unless noted.

// "base" | "thp" | "mthp:<size>".
struct PageSize {
  enum class Kind { kBase, kThp, kMthp };
  Kind kind = Kind::kBase;
  int order = 0;  // 0 for base, 9 for thp, 1..8 for mthp

  friend bool operator==(const PageSize&, const PageSize&) = default;
  static PageSize Base() { return {Kind::kBase, 0}; }
  static PageSize Thp() { return {Kind::kThp, kPageblockOrder}; }
  static PageSize Mthp(int order) { return {Kind::kMthp, order}; }
};
std::string FormatPageSize(const PageSize& p);
// Parses an mTHP size ("64KiB", "16K") into its order 1..8; InvalidArgument
// unless it is a power of two between 8KiB and 1MiB.
[[nodiscard]] absl::StatusOr<int> ParseMthpOrder(absl::string_view size_text);
// "64KiB" for order 4.
std::string MthpSizeName(int order);
// Parses "base", "thp", "mthp:64KiB" (mTHP size a power of two, 8KiB..1MiB).
[[nodiscard]] absl::StatusOr<PageSize> ParsePageSize(absl::string_view text);

enum class TouchOrder { kSequential, kReverse, kRandom, kNone };
const char* TouchOrderName(TouchOrder t);

// anon: map anonymous memory and touch it.
struct AnonOp {
  std::string tag;                       // optional; names the region for release/thp
  Size size;                             // required, > 0; % of budget memory
  PageSize page_size;                    // default base
  TouchOrder touch = TouchOrder::kSequential;  // default sequential; none = map only
  friend bool operator==(const AnonOp&, const AnonOp&) = default;
};

enum class ReleasePattern { kEveryNth, kRandom, kStride, kWhole };
enum class ReleaseMethod { kDontneed, kMunmap, kFree, kPageout };
const char* ReleasePatternName(ReleasePattern p);
const char* ReleaseMethodName(ReleaseMethod m);

// release: give back part of a tagged region (anon, pin, slab or pagecache).
// The region is cut into units of `unit` bytes; the pattern picks units.
struct ReleaseOp {
  std::string region;                    // required: a tag declared earlier
  ReleasePattern pattern = ReleasePattern::kWhole;  // required
  uint64_t n = 0;                        // every-nth: required, >= 1
  uint64_t offset = 0;                   // every-nth: first unit released, 0..n-1; default 0
  double fraction = 0;                   // random: required, 0 < fraction <= 1
  Size stride;                           // stride: required; bytes/pages, > 0
  Size length;                           // stride: required; 0 < length <= stride
  std::optional<Size> unit;              // default: the region's page size (4 KiB, 2 MiB, mTHP size)
  ReleaseMethod method = ReleaseMethod::kDontneed;  // default dontneed (MADV_DONTNEED)
  friend bool operator==(const ReleaseOp&, const ReleaseOp&) = default;
};

enum class PinKind { kPipe, kPagetable, kSocket, kLongterm };
const char* PinKindName(PinKind k);
// pin: create unmovable kernel memory of a kind.
struct PinOp {
  PinKind kind = PinKind::kPipe;         // required
  Size size;                             // required, > 0; % of budget memory
  std::string tag;                       // optional
  friend bool operator==(const PinOp&, const PinOp&) = default;
};

enum class SlabKind { kDentry, kInode };
const char* SlabKindName(SlabKind k);
// slab: create reclaimable slab objects.
struct SlabOp {
  SlabKind kind = SlabKind::kDentry;     // required
  uint64_t count = 0;                    // required, >= 1
  std::string tag;                       // optional
  friend bool operator==(const SlabOp&, const SlabOp&) = default;
};

enum class FsType { kExt4, kXfs, kBtrfs, kTmpfs };
const char* FsTypeName(FsType t);
// A filesystem the generator creates (loop device image or tmpfs mount).
struct FsSpec {
  FsType type = FsType::kExt4;           // required
  std::optional<uint64_t> block_size;    // bytes, power of two 512..64KiB; not for tmpfs;
                                         // default: mkfs default (4 KiB)
  std::optional<Size> size;              // image/mount size; bytes/pages; default: generator sizes it
  friend bool operator==(const FsSpec&, const FsSpec&) = default;
};
enum class IoMode { kRead, kWrite };
enum class Fadvise { kNone, kNormal, kSequential, kRandom, kWillneed, kDontneed, kNoreuse };
const char* IoModeName(IoMode m);
const char* FadviseName(Fadvise f);
// pagecache: fill (and churn) the page cache of files on a path or on a
// filesystem the generator creates. Exactly one of `path` and `fs`.
struct PagecacheOp {
  std::optional<std::string> path;       // an existing directory
  std::optional<FsSpec> fs;
  Size size;                             // required, > 0; total file data; % of budget memory
  uint64_t files = 1;                    // files the data is spread over, >= 1
  IoMode mode = IoMode::kWrite;          // default write
  uint64_t cycles = 1;                   // churn cycles (read/write then drop), >= 1
  Fadvise fadvise = Fadvise::kNone;      // default none (no posix_fadvise call)
  std::string tag;                       // optional
  friend bool operator==(const PagecacheOp&, const PagecacheOp&) = default;
};

enum class ThpAction { kMadvise, kCollapse };
const char* ThpActionName(ThpAction a);
// thp: MADV_HUGEPAGE or MADV_COLLAPSE on an anon region.
struct ThpOp {
  ThpAction action = ThpAction::kMadvise;  // required
  std::string region;                      // required: an anon tag declared earlier
  friend bool operator==(const ThpOp&, const ThpOp&) = default;
};

enum class ProbeKind { kHugetlb, kThp };
const char* ProbeKindName(ProbeKind k);
// probe: measure high-order availability: reserve `count` hugetlb pages, or
// fault `count` THPs (or mTHPs of `page_size`) and count successes.
struct ProbeOp {
  ProbeKind kind = ProbeKind::kHugetlb;  // required
  uint64_t count = 0;                    // required, >= 1
  PageSize page_size = PageSize::Thp();  // thp only: thp (default) or mthp:<size>
  friend bool operator==(const ProbeOp&, const ProbeOp&) = default;
};

// compact: trigger compaction of one node or of all nodes.
struct CompactOp {
  std::optional<int> node;               // default: all nodes
  friend bool operator==(const CompactOp&, const CompactOp&) = default;
};

enum class DropWhat { kPagecache, kSlab, kAll };
const char* DropWhatName(DropWhat w);
// drop_caches: echo 1|2|3 > /proc/sys/vm/drop_caches.
struct DropCachesOp {
  DropWhat what = DropWhat::kAll;        // default all
  friend bool operator==(const DropCachesOp&, const DropCachesOp&) = default;
};

// snapshot: record the machine's memory state into the trace.
struct SnapshotOp {
  std::string label;                     // optional
  friend bool operator==(const SnapshotOp&, const SnapshotOp&) = default;
};

// hold: keep everything as it is for a while (kcompactd, kswapd act).
struct HoldOp {
  absl::Duration duration;               // required, > 0
  friend bool operator==(const HoldOp&, const HoldOp&) = default;
};

// sysctl: change one setting (names in SysctlNames()); the generator
// restores it at the end.
struct SysctlOp {
  std::string setting;                   // required
  std::string value;                     // required; canonical text (decimal for integers)
  friend bool operator==(const SysctlOp&, const SysctlOp&) = default;
};

// ---- Raw allocator operations: simulator only (IsSimulatorOnly()).

// gfp flags as written ("GFP_KERNEL | __GFP_COMP", "0xcc0") and their value.
struct Gfp {
  uint64_t value = 0;
  std::string text;                      // canonical: names joined by " | ", numbers in hex
  friend bool operator==(const Gfp&, const Gfp&) = default;
};
// Parses gfp flags: names from GfpFlagNames() and/or numbers (decimal or
// 0x hex) joined by '|'. InvalidArgument for unknown names or for
// __GFP_MOVABLE together with __GFP_RECLAIMABLE (no such migratetype).
[[nodiscard]] absl::StatusOr<Gfp> ParseGfp(absl::string_view text);
// Known flag names (GFP_* composites and __GFP_* bits) with their values,
// as in Linux 6.4+ (bit values unchanged 6.1-6.18; GFP_NOWAIT includes
// __GFP_NOWARN as in 6.17+, which does not change placement).
const std::vector<std::pair<std::string, uint64_t>>& GfpFlagNames();
// The migratetype a gfp value requests: (gfp & (MOVABLE|RECLAIMABLE)) >> 3.
Migratetype GfpMigratetype(uint64_t gfp);
inline constexpr uint64_t kGfpKernel = 0xcc0;

// alloc: `count` allocations of 2^order pages. The request is either a
// migratetype (the simulator uses the matching plain gfp) or gfp flags; with
// neither it is GFP_KERNEL.
struct AllocOp {
  uint64_t count = 1;                    // >= 1
  int order = 0;                         // 0..10
  std::optional<Migratetype> migratetype;  // unmovable|movable|reclaimable
  std::optional<Gfp> gfp;
  std::optional<ZoneType> zone;          // preferred zone; default: highest the gfp allows
  int node = 0;                          // preferred node, < machine.nodes
  int cpu = 0;                           // allocating CPU, < machine.cpus
  std::string tag;                       // optional; names the blocks for free
  friend bool operator==(const AllocOp&, const AllocOp&) = default;
};

enum class FreePattern { kAll, kEveryNth, kRandom, kFirst, kLast };
const char* FreePatternName(FreePattern p);
// free: free blocks of an alloc tag, in allocation order.
struct FreeOp {
  std::string tag;                       // required: an alloc tag declared earlier
  FreePattern pattern = FreePattern::kAll;  // default all
  uint64_t n = 0;                        // every-nth: required, >= 1
  uint64_t offset = 0;                   // every-nth: 0..n-1, default 0
  double fraction = 0;                   // random: required, 0 < fraction <= 1
  uint64_t k = 0;                        // first/last: required, >= 1
  int cpu = 0;                           // freeing CPU, < machine.cpus
  friend bool operator==(const FreeOp&, const FreeOp&) = default;
};

// A count condition: exact `count`, or `min`/`max` bounds (inclusive).
struct CountBound {
  std::optional<uint64_t> count;
  std::optional<uint64_t> min;
  std::optional<uint64_t> max;
  friend bool operator==(const CountBound&, const CountBound&) = default;
};

// expect check = "free_blocks": free blocks of `order` on the `migratetype`
// free list of a zone.
struct ExpectFreeBlocks {
  ZoneType zone = ZoneType::kNormal;     // required
  int node = 0;
  int order = 0;                         // required, 0..10
  Migratetype migratetype = Migratetype::kMovable;  // required
  CountBound bound;                      // required (count, or min and/or max)
  friend bool operator==(const ExpectFreeBlocks&, const ExpectFreeBlocks&) = default;
};
// expect check = "pageblocks": pageblocks of a migratetype in a zone.
struct ExpectPageblocks {
  ZoneType zone = ZoneType::kNormal;     // required
  int node = 0;
  Migratetype migratetype = Migratetype::kMovable;  // required
  CountBound bound;                      // required
  friend bool operator==(const ExpectPageblocks&, const ExpectPageblocks&) = default;
};
// expect check = "last_alloc": the last block of the most recent alloc phase
// started at `pfn`, or that phase failed (exactly one of the two).
struct ExpectLastAlloc {
  std::optional<uint64_t> pfn;
  bool failed = false;
  friend bool operator==(const ExpectLastAlloc&, const ExpectLastAlloc&) = default;
};
// expect check = "fallback": fallback (extfrag) events matching every given
// field, counted since the end of the previous run of consecutive expect
// phases (or the start): consecutive expects check one moment and share one
// window. Without a bound: at least one.
struct ExpectFallback {
  std::optional<int> alloc_order;
  std::optional<int> fallback_order;
  std::optional<Migratetype> alloc_migratetype;
  std::optional<Migratetype> fallback_migratetype;
  std::optional<bool> change_ownership;
  std::optional<FallbackClass> fallback_class;  // key "class"
  CountBound bound;                      // optional
  friend bool operator==(const ExpectFallback&, const ExpectFallback&) = default;
};
// expect: one assertion checked at this point of a simulated run.
struct ExpectOp {
  std::variant<ExpectFreeBlocks, ExpectPageblocks, ExpectLastAlloc, ExpectFallback> check;
  friend bool operator==(const ExpectOp&, const ExpectOp&) = default;
};
// The check names in variant order.
const char* ExpectCheckName(const ExpectOp& e);

// The order of alternatives equals the order of OpKind.
using Operation = std::variant<AnonOp, ReleaseOp, PinOp, SlabOp, PagecacheOp, ThpOp, ProbeOp,
                               CompactOp, DropCachesOp, SnapshotOp, HoldOp, SysctlOp, AllocOp,
                               FreeOp, ExpectOp>;
enum class OpKind {
  kAnon, kRelease, kPin, kSlab, kPagecache, kThp, kProbe, kCompact, kDropCaches, kSnapshot,
  kHold, kSysctl, kAlloc, kFree, kExpect,
};
inline constexpr int kNumOpKinds = 15;

OpKind KindOf(const Operation& op);
// The `op = "..."` spelling: anon, release, ..., drop_caches, ..., expect.
const char* OpName(OpKind kind);
inline const char* OpName(const Operation& op) { return OpName(KindOf(op)); }
// True for the raw allocator operations (alloc, free, expect) that only the
// simulator can perform; the generator refuses scenarios containing them.
bool IsSimulatorOnly(OpKind kind);
inline bool IsSimulatorOnly(const Operation& op) { return IsSimulatorOnly(KindOf(op)); }

// ---------------------------------------------------------------------------
// Phases as declared (a tree with repeat groups) and as run (a flat list).

// Where a phase or field was written; line/column 1-based, 0 = not from a file.
struct SourcePos {
  int line = 0;
  int column = 0;
};

struct Phase {
  Operation op;
  // Declared path for messages: "phases[3]" or "phases[1].phases[0]"
  // (0-based indices into the arrays as written).
  std::string path;
  SourcePos pos;                              // the phase's table
  std::map<std::string, SourcePos> field_pos; // each key written -> its value
};

struct Step;
// A repeat group: `body` run `count` times.
struct RepeatGroup {
  uint64_t count = 1;                    // >= 1
  std::vector<Step> body;                // non-empty
  std::string path;
  SourcePos pos;
};

struct Step {
  std::variant<Phase, RepeatGroup> node;
};

// Content equality; paths and source positions are ignored so that a parsed
// and a re-parsed printed scenario compare equal.
bool operator==(const Phase& a, const Phase& b);
bool operator==(const RepeatGroup& a, const RepeatGroup& b);
bool operator==(const Step& a, const Step& b);

inline constexpr int kMaxRepeatDepth = 8;
inline constexpr uint64_t kMaxExpandedPhases = 1000000;

struct Scenario {
  std::string name;                      // required, non-empty
  std::string description;               // default ""
  uint64_t seed = 0;                     // default 0; drives every random choice
  SimMachineSpec machine;
  Budget budget;
  std::vector<Step> phases;              // declared tree, non-empty
  std::string source_file;               // as given to the parser; "" if built in code
};
// Content equality (source_file, paths and positions ignored).
bool operator==(const Scenario& a, const Scenario& b);

// One repetition level of an expanded phase: rep is 1-based.
struct RepeatIteration {
  uint64_t rep = 1;
  uint64_t count = 1;
};

// A phase in run order.
struct ExpandedPhase {
  size_t index = 0;                      // 0-based position in the run
  std::string label;                     // "3:release", "3:release[rep 2/5]",
                                         // nested: "7:free[rep 1/2, rep 3/4]" (outer first)
  const Phase* phase = nullptr;          // points into the Scenario it was expanded from
  std::vector<RepeatIteration> reps;     // outer first; empty outside repeat groups
};

// The flat run order of `s.phases`, repeat groups unrolled. The pointers
// stay valid while `s` is alive and not modified. The parser guarantees the
// size is at most kMaxExpandedPhases.
std::vector<ExpandedPhase> Expand(const Scenario& s);

// Number of phases Expand() would return (saturates at UINT64_MAX).
uint64_t ExpandedCount(const std::vector<Step>& steps);

// "file:line:col: field 'phases[3].size'" for a phase's field (the phase's
// own position if the field was not written), for run-time errors.
std::string DescribeField(const Scenario& s, const Phase& phase, absl::string_view field);
// InvalidArgument "<DescribeField>: <message>".
absl::Status FieldError(const Scenario& s, const Phase& phase, absl::string_view field,
                        absl::string_view message);

}  // namespace fraglab::scenario
