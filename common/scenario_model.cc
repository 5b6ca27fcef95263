// The scenario model's vocabulary (names, numbering), the default zone
// layout, settings, gfp flags, and repeat expansion.
#include <algorithm>
#include <limits>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/scenario.h"

namespace fraglab::scenario {

const char* EraName(Era era) {
  switch (era) {
    case Era::kLegacy: return "LEGACY";
    case Era::kHygiene: return "HYGIENE";
    case Era::kClaim: return "CLAIM";
  }
  return "?";
}

const char* ZoneName(ZoneType zone) {
  switch (zone) {
    case ZoneType::kDma: return "DMA";
    case ZoneType::kDma32: return "DMA32";
    case ZoneType::kNormal: return "Normal";
    case ZoneType::kMovable: return "Movable";
  }
  return "?";
}

const char* MigratetypeName(Migratetype mt) {
  switch (mt) {
    case Migratetype::kUnmovable: return "unmovable";
    case Migratetype::kMovable: return "movable";
    case Migratetype::kReclaimable: return "reclaimable";
    case Migratetype::kHighatomic: return "highatomic";
    case Migratetype::kCma: return "cma";
    case Migratetype::kIsolate: return "isolate";
  }
  return "?";
}

const char* PcpTuningName(PcpTuning t) { return t == PcpTuning::kStatic ? "static" : "auto"; }

const char* ThpEnabledName(ThpEnabled v) {
  switch (v) {
    case ThpEnabled::kAlways: return "always";
    case ThpEnabled::kMadvise: return "madvise";
    case ThpEnabled::kNever: return "never";
  }
  return "?";
}

const char* ThpDefragName(ThpDefrag v) {
  switch (v) {
    case ThpDefrag::kAlways: return "always";
    case ThpDefrag::kDefer: return "defer";
    case ThpDefrag::kDeferMadvise: return "defer+madvise";
    case ThpDefrag::kMadvise: return "madvise";
    case ThpDefrag::kNever: return "never";
  }
  return "?";
}

const char* MthpEnabledName(MthpEnabled v) {
  switch (v) {
    case MthpEnabled::kAlways: return "always";
    case MthpEnabled::kInherit: return "inherit";
    case MthpEnabled::kMadvise: return "madvise";
    case MthpEnabled::kNever: return "never";
  }
  return "?";
}

const char* FallbackClassName(FallbackClass c) {
  switch (c) {
    case FallbackClass::kClaim: return "claim";
    case FallbackClass::kSteal: return "steal";
    case FallbackClass::kPollute: return "pollute";
  }
  return "?";
}

int MigratetypeNumber(Migratetype mt, bool cma) {
  switch (mt) {
    case Migratetype::kUnmovable: return 0;
    case Migratetype::kMovable: return 1;
    case Migratetype::kReclaimable: return 2;
    case Migratetype::kHighatomic: return 3;
    case Migratetype::kCma: return cma ? 4 : -1;
    case Migratetype::kIsolate: return cma ? 5 : 4;
  }
  return -1;
}

int NumMigratetypes(bool cma) { return cma ? 6 : 5; }

const char* TouchOrderName(TouchOrder t) {
  switch (t) {
    case TouchOrder::kSequential: return "sequential";
    case TouchOrder::kReverse: return "reverse";
    case TouchOrder::kRandom: return "random";
    case TouchOrder::kNone: return "none";
  }
  return "?";
}

const char* ReleasePatternName(ReleasePattern p) {
  switch (p) {
    case ReleasePattern::kEveryNth: return "every-nth";
    case ReleasePattern::kRandom: return "random";
    case ReleasePattern::kStride: return "stride";
    case ReleasePattern::kWhole: return "whole";
  }
  return "?";
}

const char* ReleaseMethodName(ReleaseMethod m) {
  switch (m) {
    case ReleaseMethod::kDontneed: return "dontneed";
    case ReleaseMethod::kMunmap: return "munmap";
    case ReleaseMethod::kFree: return "free";
    case ReleaseMethod::kPageout: return "pageout";
  }
  return "?";
}

const char* PinKindName(PinKind k) {
  switch (k) {
    case PinKind::kPipe: return "pipe";
    case PinKind::kPagetable: return "pagetable";
    case PinKind::kSocket: return "socket";
    case PinKind::kLongterm: return "longterm";
  }
  return "?";
}

const char* SlabKindName(SlabKind k) { return k == SlabKind::kDentry ? "dentry" : "inode"; }

const char* FsTypeName(FsType t) {
  switch (t) {
    case FsType::kExt4: return "ext4";
    case FsType::kXfs: return "xfs";
    case FsType::kBtrfs: return "btrfs";
    case FsType::kTmpfs: return "tmpfs";
  }
  return "?";
}

const char* IoModeName(IoMode m) { return m == IoMode::kRead ? "read" : "write"; }

const char* FadviseName(Fadvise f) {
  switch (f) {
    case Fadvise::kNone: return "none";
    case Fadvise::kNormal: return "normal";
    case Fadvise::kSequential: return "sequential";
    case Fadvise::kRandom: return "random";
    case Fadvise::kWillneed: return "willneed";
    case Fadvise::kDontneed: return "dontneed";
    case Fadvise::kNoreuse: return "noreuse";
  }
  return "?";
}

const char* ThpActionName(ThpAction a) { return a == ThpAction::kMadvise ? "madvise" : "collapse"; }

const char* ProbeKindName(ProbeKind k) { return k == ProbeKind::kHugetlb ? "hugetlb" : "thp"; }

const char* DropWhatName(DropWhat w) {
  switch (w) {
    case DropWhat::kPagecache: return "pagecache";
    case DropWhat::kSlab: return "slab";
    case DropWhat::kAll: return "all";
  }
  return "?";
}

const char* FreePatternName(FreePattern p) {
  switch (p) {
    case FreePattern::kAll: return "all";
    case FreePattern::kEveryNth: return "every-nth";
    case FreePattern::kRandom: return "random";
    case FreePattern::kFirst: return "first";
    case FreePattern::kLast: return "last";
  }
  return "?";
}

const char* ExpectCheckName(const ExpectOp& e) {
  static constexpr const char* kNames[] = {"free_blocks", "pageblocks", "last_alloc", "fallback"};
  return kNames[e.check.index()];
}

// ---------------------------------------------------------------------------
// Zones.

std::vector<ZoneSpec> DefaultZoneLayout(uint64_t memory_bytes, int nodes) {
  std::vector<ZoneSpec> zones;
  if (nodes < 1) nodes = 1;
  const uint64_t pages = memory_bytes / kBasePageBytes;
  const uint64_t per_node = pages / static_cast<uint64_t>(nodes);
  uint64_t next = 0;
  for (int node = 0; node < nodes; ++node) {
    uint64_t node_pages = per_node;
    if (node == nodes - 1) node_pages = pages - per_node * static_cast<uint64_t>(nodes - 1);
    if (node_pages == 0) continue;
    const uint64_t end = next + node_pages;
    if (node == 0) {
      // Kernel boundaries: DMA below 16 MiB, DMA32 below 4 GiB.
      zones.push_back({ZoneType::kDma, 0, 0, std::min(end, kDmaEndPfn)});
      if (end > kDmaEndPfn) {
        zones.push_back({ZoneType::kDma32, 0, kDmaEndPfn, std::min(end, kDma32EndPfn)});
      }
      if (end > kDma32EndPfn) zones.push_back({ZoneType::kNormal, 0, kDma32EndPfn, end});
    } else {
      zones.push_back({ZoneType::kNormal, node, next, end});
    }
    next = end;
  }
  return zones;
}

std::vector<ZoneSpec> ResolvedZones(const SimMachineSpec& machine) {
  if (!machine.zones.empty()) return machine.zones;
  return DefaultZoneLayout(machine.memory_bytes, machine.nodes);
}

// ---------------------------------------------------------------------------
// Page sizes.

std::string MthpSizeName(int order) { return FormatBytes(kBasePageBytes << order); }

absl::StatusOr<int> ParseMthpOrder(absl::string_view size_text) {
  absl::StatusOr<Size> size = ParseSize(size_text);
  if (!size.ok()) return size.status();
  const std::string allowed = "a power of two from 8KiB to 1MiB: 8KiB, 16KiB, 32KiB, 64KiB, "
                              "128KiB, 256KiB, 512KiB, 1MiB";
  if (size->unit != SizeUnit::kBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("mTHP size '", size_text, "' must be in bytes (", allowed, ")"));
  }
  for (int order = kMinMthpOrder; order <= kMaxMthpOrder; ++order) {
    if (size->amount == (kBasePageBytes << order)) return order;
  }
  return absl::InvalidArgumentError(
      absl::StrCat("mTHP size '", size_text, "' is not ", allowed));
}

std::string FormatPageSize(const PageSize& p) {
  switch (p.kind) {
    case PageSize::Kind::kBase: return "base";
    case PageSize::Kind::kThp: return "thp";
    case PageSize::Kind::kMthp: return absl::StrCat("mthp:", MthpSizeName(p.order));
  }
  return "?";
}

absl::StatusOr<PageSize> ParsePageSize(absl::string_view text) {
  if (text == "base") return PageSize::Base();
  if (text == "thp") return PageSize::Thp();
  if (absl::ConsumePrefix(&text, "mthp:")) {
    absl::StatusOr<int> order = ParseMthpOrder(text);
    if (!order.ok()) return order.status();
    return PageSize::Mthp(*order);
  }
  return absl::InvalidArgumentError(absl::StrCat(
      "unknown value '", text, "' (allowed: base, thp, mthp:<size> with <size> 8KiB..1MiB)"));
}

// ---------------------------------------------------------------------------
// Settings.

namespace {

struct IntSetting {
  const char* name;
  int64_t VmSysctls::*field;
  int64_t min;
  int64_t max;
};

constexpr int64_t kIntMax = std::numeric_limits<int32_t>::max();

const IntSetting kIntSettings[] = {
    {"vm.min_free_kbytes", &VmSysctls::min_free_kbytes, 0, 4194304},
    {"vm.watermark_scale_factor", &VmSysctls::watermark_scale_factor, 1, 3000},
    {"vm.watermark_boost_factor", &VmSysctls::watermark_boost_factor, 0, kIntMax},
    {"vm.defrag_mode", &VmSysctls::defrag_mode, 0, 1},
    {"vm.extfrag_threshold", &VmSysctls::extfrag_threshold, -1000, 1000},
    {"vm.compaction_proactiveness", &VmSysctls::compaction_proactiveness, 0, 100},
    {"vm.percpu_pagelist_high_fraction", &VmSysctls::percpu_pagelist_high_fraction, 0, kIntMax},
};

template <typename E>
absl::StatusOr<E> EnumByName(absl::string_view setting, absl::string_view value, int n,
                             const char* (*name)(E)) {
  std::vector<std::string> names;
  for (int i = 0; i < n; ++i) {
    E e = static_cast<E>(i);
    if (value == name(e)) return e;
    names.push_back(name(e));
  }
  return absl::InvalidArgumentError(absl::StrCat("setting '", setting, "': unknown value '", value,
                                                 "' (allowed: ", absl::StrJoin(names, ", "), ")"));
}

}  // namespace

const std::vector<std::string>& SysctlNames() {
  static const std::vector<std::string>* names = [] {
    auto* v = new std::vector<std::string>;
    for (const IntSetting& s : kIntSettings) v->push_back(s.name);
    v->push_back("thp.enabled");
    v->push_back("thp.defrag");
    v->push_back("thp.mthp.<size>");
    return v;
  }();
  return *names;
}

absl::Status ApplySysctl(SimMachineSpec& machine, absl::string_view setting,
                         absl::string_view value) {
  for (const IntSetting& s : kIntSettings) {
    if (setting != s.name) continue;
    int64_t v = 0;
    if (!absl::SimpleAtoi(value, &v) || absl::StrCat(v) != value) {
      return absl::InvalidArgumentError(absl::StrCat("setting '", setting, "': value '", value,
                                                     "' is not an integer (allowed: ", s.min,
                                                     "..", s.max, ")"));
    }
    bool ok = v >= s.min && v <= s.max;
    // The kernel accepts 0 (default sizing) or a fraction of at least 8.
    if (s.field == &VmSysctls::percpu_pagelist_high_fraction && v > 0 && v < 8) ok = false;
    if (!ok) {
      std::string allowed = absl::StrCat(s.min, "..", s.max);
      if (s.field == &VmSysctls::percpu_pagelist_high_fraction) {
        allowed = absl::StrCat("0 or 8..", s.max);
      }
      return absl::InvalidArgumentError(absl::StrCat("setting '", setting, "': value ", v,
                                                     " out of range (allowed: ", allowed, ")"));
    }
    machine.vm.*(s.field) = v;
    return absl::OkStatus();
  }
  if (setting == "thp.enabled") {
    absl::StatusOr<ThpEnabled> e = EnumByName<ThpEnabled>(setting, value, 3, ThpEnabledName);
    if (!e.ok()) return e.status();
    machine.thp.enabled = *e;
    return absl::OkStatus();
  }
  if (setting == "thp.defrag") {
    absl::StatusOr<ThpDefrag> e = EnumByName<ThpDefrag>(setting, value, 5, ThpDefragName);
    if (!e.ok()) return e.status();
    machine.thp.defrag = *e;
    return absl::OkStatus();
  }
  absl::string_view rest = setting;
  if (absl::ConsumePrefix(&rest, "thp.mthp.")) {
    absl::StatusOr<int> order = ParseMthpOrder(rest);
    if (!order.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("setting '", setting, "': ", order.status().message()));
    }
    absl::StatusOr<MthpEnabled> e = EnumByName<MthpEnabled>(setting, value, 4, MthpEnabledName);
    if (!e.ok()) return e.status();
    if (*e == MthpEnabled::kNever) {
      machine.thp.mthp.erase(*order);  // "never" is the absent state
    } else {
      machine.thp.mthp[*order] = *e;
    }
    return absl::OkStatus();
  }
  return absl::InvalidArgumentError(absl::StrCat("unknown setting '", setting, "' (allowed: ",
                                                 absl::StrJoin(SysctlNames(), ", "), ")"));
}

// ---------------------------------------------------------------------------
// gfp flags.

namespace {
constexpr uint64_t kDma = 0x01, kHighmem = 0x02, kDma32 = 0x04, kMovable = 0x08,
                   kReclaimable = 0x10, kHigh = 0x20, kIo = 0x40, kFs = 0x80, kZero = 0x100,
                   kDirectReclaim = 0x400, kKswapdReclaim = 0x800, kWrite = 0x1000,
                   kNowarn = 0x2000, kRetryMayfail = 0x4000, kNofail = 0x8000,
                   kNoretry = 0x10000, kMemalloc = 0x20000, kComp = 0x40000,
                   kNomemalloc = 0x80000, kHardwall = 0x100000, kThisnode = 0x200000,
                   kAccount = 0x400000;
constexpr uint64_t kReclaim = kDirectReclaim | kKswapdReclaim;
constexpr uint64_t kKernel = kReclaim | kIo | kFs;
constexpr uint64_t kUser = kKernel | kHardwall;
constexpr uint64_t kHighuserMovable = kUser | kHighmem | kMovable;
constexpr uint64_t kTranshugeLight = (kHighuserMovable | kComp | kNomemalloc | kNowarn) & ~kReclaim;
static_assert(kKernel == kGfpKernel);
}  // namespace

const std::vector<std::pair<std::string, uint64_t>>& GfpFlagNames() {
  static const auto* names = new std::vector<std::pair<std::string, uint64_t>>{
      {"GFP_KERNEL", kKernel},
      {"GFP_KERNEL_ACCOUNT", kKernel | kAccount},
      {"GFP_ATOMIC", kHigh | kKswapdReclaim},
      {"GFP_NOWAIT", kKswapdReclaim | kNowarn},
      {"GFP_NOIO", kReclaim},
      {"GFP_NOFS", kReclaim | kIo},
      {"GFP_USER", kUser},
      {"GFP_DMA", kDma},
      {"GFP_DMA32", kDma32},
      {"GFP_HIGHUSER", kUser | kHighmem},
      {"GFP_HIGHUSER_MOVABLE", kHighuserMovable},
      {"GFP_TRANSHUGE_LIGHT", kTranshugeLight},
      {"GFP_TRANSHUGE", kTranshugeLight | kDirectReclaim},
      {"__GFP_DMA", kDma},
      {"__GFP_HIGHMEM", kHighmem},
      {"__GFP_DMA32", kDma32},
      {"__GFP_MOVABLE", kMovable},
      {"__GFP_RECLAIMABLE", kReclaimable},
      {"__GFP_HIGH", kHigh},
      {"__GFP_IO", kIo},
      {"__GFP_FS", kFs},
      {"__GFP_ZERO", kZero},
      {"__GFP_DIRECT_RECLAIM", kDirectReclaim},
      {"__GFP_KSWAPD_RECLAIM", kKswapdReclaim},
      {"__GFP_RECLAIM", kReclaim},
      {"__GFP_WRITE", kWrite},
      {"__GFP_NOWARN", kNowarn},
      {"__GFP_RETRY_MAYFAIL", kRetryMayfail},
      {"__GFP_NOFAIL", kNofail},
      {"__GFP_NORETRY", kNoretry},
      {"__GFP_MEMALLOC", kMemalloc},
      {"__GFP_COMP", kComp},
      {"__GFP_NOMEMALLOC", kNomemalloc},
      {"__GFP_HARDWALL", kHardwall},
      {"__GFP_THISNODE", kThisnode},
      {"__GFP_ACCOUNT", kAccount},
  };
  return *names;
}

Migratetype GfpMigratetype(uint64_t gfp) {
  switch ((gfp & (kMovable | kReclaimable)) >> 3) {
    case 1: return Migratetype::kMovable;
    case 2: return Migratetype::kReclaimable;
    default: return Migratetype::kUnmovable;
  }
}

absl::StatusOr<Gfp> ParseGfp(absl::string_view text) {
  Gfp gfp;
  std::vector<std::string> parts;
  for (absl::string_view raw : absl::StrSplit(text, '|')) {
    absl::string_view token = absl::StripAsciiWhitespace(raw);
    if (token.empty()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "gfp '", text, "': empty flag (write names or numbers joined by '|', e.g. "
                         "GFP_KERNEL | __GFP_COMP)"));
    }
    uint64_t v = 0;
    bool found = false;
    if (token[0] >= '0' && token[0] <= '9') {
      absl::string_view digits = token;
      bool hex = absl::ConsumePrefix(&digits, "0x") || absl::ConsumePrefix(&digits, "0X");
      found = hex ? absl::SimpleHexAtoi(digits, &v) : absl::SimpleAtoi(digits, &v);
      if (!found || digits.empty() || digits[0] == '+' || digits[0] == '-') {
        return absl::InvalidArgumentError(
            absl::StrCat("gfp '", text, "': '", token, "' is not a number"));
      }
      parts.push_back(absl::StrFormat("0x%x", v));
    } else {
      for (const auto& [name, value] : GfpFlagNames()) {
        if (token == name) {
          v = value;
          found = true;
          break;
        }
      }
      if (!found) {
        std::vector<std::string> names;
        for (const auto& entry : GfpFlagNames()) names.push_back(entry.first);
        return absl::InvalidArgumentError(
            absl::StrCat("gfp '", text, "': unknown flag '", token,
                         "' (allowed: numbers and ", absl::StrJoin(names, ", "), ")"));
      }
      parts.emplace_back(token);
    }
    gfp.value |= v;
  }
  if ((gfp.value & kMovable) && (gfp.value & kReclaimable)) {
    return absl::InvalidArgumentError(
        absl::StrCat("gfp '", text,
                     "': __GFP_MOVABLE and __GFP_RECLAIMABLE together name no migratetype"));
  }
  if ((gfp.value & kDma) && (gfp.value & kDma32)) {
    return absl::InvalidArgumentError(
        absl::StrCat("gfp '", text, "': __GFP_DMA and __GFP_DMA32 exclude each other"));
  }
  gfp.text = absl::StrJoin(parts, " | ");
  return gfp;
}

// ---------------------------------------------------------------------------
// Operations and phases.

OpKind KindOf(const Operation& op) { return static_cast<OpKind>(op.index()); }

const char* OpName(OpKind kind) {
  static constexpr const char* kNames[kNumOpKinds] = {
      "anon", "release", "pin",  "slab",   "pagecache", "thp",  "probe",  "compact",
      "drop_caches", "snapshot", "hold", "sysctl", "alloc", "free", "expect"};
  int i = static_cast<int>(kind);
  return i >= 0 && i < kNumOpKinds ? kNames[i] : "?";
}

static_assert(std::variant_size_v<Operation> == kNumOpKinds);

bool IsSimulatorOnly(OpKind kind) {
  return kind == OpKind::kAlloc || kind == OpKind::kFree || kind == OpKind::kExpect;
}

bool operator==(const Phase& a, const Phase& b) { return a.op == b.op; }
bool operator==(const RepeatGroup& a, const RepeatGroup& b) {
  return a.count == b.count && a.body == b.body;
}
bool operator==(const Step& a, const Step& b) { return a.node == b.node; }
bool operator==(const Scenario& a, const Scenario& b) {
  return a.name == b.name && a.description == b.description && a.seed == b.seed &&
         a.machine == b.machine && a.budget == b.budget && a.phases == b.phases;
}

uint64_t ExpandedCount(const std::vector<Step>& steps) {
  constexpr uint64_t kSat = std::numeric_limits<uint64_t>::max();
  uint64_t total = 0;
  for (const Step& step : steps) {
    uint64_t n = 1;
    if (const auto* group = std::get_if<RepeatGroup>(&step.node)) {
      uint64_t body = ExpandedCount(group->body);
      n = (group->count != 0 && body > kSat / group->count) ? kSat : body * group->count;
    }
    total = (n > kSat - total) ? kSat : total + n;
  }
  return total;
}

namespace {

void ExpandInto(const std::vector<Step>& steps, std::vector<RepeatIteration>& reps,
                std::vector<ExpandedPhase>& out) {
  for (const Step& step : steps) {
    if (const auto* phase = std::get_if<Phase>(&step.node)) {
      ExpandedPhase e;
      e.index = out.size();
      e.phase = phase;
      e.reps = reps;
      e.label = absl::StrCat(e.index, ":", OpName(phase->op));
      if (!reps.empty()) {
        std::vector<std::string> parts;
        for (const RepeatIteration& r : reps) parts.push_back(absl::StrCat("rep ", r.rep, "/", r.count));
        absl::StrAppend(&e.label, "[", absl::StrJoin(parts, ", "), "]");
      }
      out.push_back(std::move(e));
    } else {
      const auto& group = std::get<RepeatGroup>(step.node);
      for (uint64_t rep = 1; rep <= group.count; ++rep) {
        reps.push_back({rep, group.count});
        ExpandInto(group.body, reps, out);
        reps.pop_back();
      }
    }
  }
}

}  // namespace

std::vector<ExpandedPhase> Expand(const Scenario& s) {
  std::vector<ExpandedPhase> out;
  std::vector<RepeatIteration> reps;
  ExpandInto(s.phases, reps, out);
  return out;
}

std::string DescribeField(const Scenario& s, const Phase& phase, absl::string_view field) {
  SourcePos pos = phase.pos;
  auto it = phase.field_pos.find(std::string(field));
  if (it != phase.field_pos.end()) pos = it->second;
  const std::string file = s.source_file.empty() ? "<scenario>" : s.source_file;
  std::string path = phase.path.empty() ? std::string("phase") : phase.path;
  if (!field.empty()) absl::StrAppend(&path, ".", field);
  return absl::StrCat(file, ":", pos.line, ":", pos.column, ": field '", path, "'");
}

absl::Status FieldError(const Scenario& s, const Phase& phase, absl::string_view field,
                        absl::string_view message) {
  return absl::InvalidArgumentError(absl::StrCat(DescribeField(s, phase, field), ": ", message));
}

}  // namespace fraglab::scenario
