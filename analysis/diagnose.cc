#include "analysis/diagnose.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <map>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/frag_index.h"
#include "common/trace_records.h"
#include "nlohmann/json.hpp"

namespace fraglab::diagnose {
namespace {

using snapshot::MachineSnapshot;
using snapshot::ZoneSnapshot;

std::optional<std::string> ReadSmallFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return std::nullopt;
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::optional<uint64_t> ReadUint(const std::string& path) {
  auto text = ReadSmallFile(path);
  if (!text) return std::nullopt;
  uint64_t v = 0;
  if (!absl::SimpleAtoi(absl::StripAsciiWhitespace(*text), &v)) return std::nullopt;
  return v;
}

std::string JoinPath(const std::string& root, const std::string& rel) {
  if (root.empty() || root == "/") return "/" + rel;
  return root.back() == '/' ? root + rel : root + "/" + rel;
}

double MiBOf(uint64_t pages, uint32_t page_size) {
  return static_cast<double>(pages) * page_size / (1024.0 * 1024.0);
}

// Free pages in blocks of order >= `order` (what an order-`order` request can use).
uint64_t FreeAtOrAbove(const std::vector<uint64_t>& nr_free, size_t order) {
  uint64_t pages = 0;
  for (size_t k = order; k < nr_free.size(); ++k) pages += nr_free[k] << k;
  return pages;
}

int TypeIndex(const MachineSnapshot& s, const std::string& name) {
  for (size_t i = 0; i < s.migratetype_names.size(); ++i)
    if (s.migratetype_names[i] == name) return static_cast<int>(i);
  return -1;
}

std::string ZoneScope(const ZoneSnapshot& z) { return absl::StrFormat("node %d zone %s", z.nid, z.name); }

// vmstat counter now, or its increase since `before` when given.
struct Counter {
  uint64_t value = 0;
  bool present = false;
};
Counter VmCounter(const DiagnoseInput& in, const std::string& name) {
  Counter c;
  auto now = in.now->vmstat.Get(name);
  if (!now) return c;
  c.present = true;
  c.value = *now;
  if (in.before != nullptr) {
    auto then = in.before->vmstat.Get(name);
    c.value = then && *then <= *now ? *now - *then : *now;
  }
  return c;
}

std::string CounterWhere(const DiagnoseInput& in) {
  return in.before != nullptr ? "vmstat, increase over the interval" : "vmstat, since boot";
}

bool KernelAtLeast(const std::string& release, int major, int minor) {
  int a = 0, b = 0;
  if (std::sscanf(release.c_str(), "%d.%d", &a, &b) != 2) return false;
  return a > major || (a == major && b >= minor);
}

bool HasDefragMode(const DiagnoseInput& in) {
  return in.tunables.defrag_mode.has_value() || KernelAtLeast(in.now->kernel_release, 6, 15);
}

std::string TunableText(const std::optional<uint64_t>& v) { return v ? std::to_string(*v) : "unknown"; }

// Actions shared by the findings about missing high-order memory; `nid` < 0
// for machine-wide findings.
std::vector<std::string> HighOrderActions(const DiagnoseInput& in, int nid) {
  std::vector<std::string> a;
  if (nid >= 0) {
    a.push_back(absl::StrFormat(
        "Compact now to see how much is recoverable: echo 1 > /sys/devices/system/node/node%d/compact "
        "(or echo 1 > /proc/sys/vm/compact_memory for all nodes); cost: seconds of CPU and page migration.",
        nid));
  } else {
    a.push_back("Compact now to see how much is recoverable: echo 1 > /proc/sys/vm/compact_memory (all nodes); "
                "cost: seconds of CPU and page migration.");
  }
  a.push_back(absl::StrFormat(
      "Keep more memory free so kswapd/kcompactd act before requests fail: raise vm.min_free_kbytes "
      "(now %s kB) moderately, e.g. by 50%%, and vm.watermark_scale_factor (now %s).",
      TunableText(in.tunables.min_free_kbytes), TunableText(in.tunables.watermark_scale_factor)));
  a.push_back(absl::StrFormat(
      "Let fragmenting fallbacks wake reclaim+compaction early: vm.watermark_boost_factor (now %s; "
      "default 15000, 0 disables boosting).",
      TunableText(in.tunables.watermark_boost_factor)));
  if (HasDefragMode(in)) {
    a.push_back(absl::StrFormat(
        "This kernel has vm.defrag_mode (now %s): 1 makes the allocator reclaim/compact before it "
        "falls back into other types' pageblocks, keeping order-9 blocks whole at some allocation latency.",
        TunableText(in.tunables.defrag_mode)));
  } else {
    a.push_back("vm.defrag_mode needs kernel 6.15+ (this kernel: " + in.now->kernel_release +
                "); not available here.");
  }
  a.push_back(
      "If the workload needs guaranteed 2 MiB pages, reserve them at boot (kernel command line "
      "hugepages=N, or hugepagesz=2M hugepages=N) before memory fragments; vm.nr_hugepages now " +
      TunableText(in.tunables.nr_hugepages) + ".");
  a.push_back("Raise vm.compaction_proactiveness (now " + TunableText(in.tunables.compaction_proactiveness) +
              ", default 20) so kcompactd keeps the order-9 score low in the background.");
  return a;
}

void AddHighOrderFindings(const DiagnoseInput& in, std::vector<Finding>& out) {
  const MachineSnapshot& s = *in.now;
  const size_t pb = static_cast<size_t>(s.pageblock_order);
  // Per node: a THP or order-9 request of user memory walks the node's zones
  // (Normal, then DMA32, DMA), so the node's sum is what decides success; a
  // fragmented zone backed by a healthy sibling zone is only noted.
  std::map<int, std::vector<const ZoneSnapshot*>> nodes;
  for (const auto& z : s.zones) nodes[z.nid].push_back(&z);
  for (const auto& [nid, zones] : nodes) {
    std::vector<uint64_t> sum(s.num_orders, 0);
    uint64_t managed = 0;
    for (const ZoneSnapshot* z : zones) {
      managed += z->managed;
      for (size_t k = 0; k < z->nr_free.size() && k < sum.size(); ++k) sum[k] += z->nr_free[k];
    }
    const uint64_t free = FreeAtOrAbove(sum, 0);
    if (managed < kMinZoneManagedPages || free == 0 || pb >= sum.size()) continue;
    const double free_share = static_cast<double>(free) / static_cast<double>(managed);
    const int u9 = procfs::UnusableIndex(sum, static_cast<unsigned>(pb));
    const int u4 = procfs::UnusableIndex(sum, 4);
    const uint64_t blocks9 = FreeAtOrAbove(sum, pb) >> pb;
    if (free_share >= kFreeShareForShortage && u9 >= kUnusable9Warn) {
      Finding f;
      f.id = "high_order_shortage";
      f.severity = (u9 >= kUnusable9Critical || u4 >= kUnusable4Warn) ? Severity::kCritical : Severity::kWarning;
      f.scope = absl::StrFormat("node %d", nid);
      f.title = absl::StrFormat("Node %d has %.0f MiB free but only %u free %u KiB blocks: %.1f%% of free memory "
                                "is unusable for order-%u (THP) requests",
                                nid, MiBOf(free, s.page_size), blocks9, (s.page_size << pb) / 1024, u9 / 10.0, pb);
      const std::string where = absl::StrFormat("node %d, buddyinfo", nid);
      f.evidence = {{"free_memory", MiBOf(free, s.page_size), "MiB", where},
                    {"free_share_of_managed", free_share, "ratio", where},
                    {"free_order9_blocks", static_cast<double>(blocks9), "blocks", where},
                    {"unusable_index_order4", u4 / 1000.0, "index", where},
                    {"unusable_index_order9", u9 / 1000.0, "index", where}};
      for (const ZoneSnapshot* z : zones) {
        if (z->unusable_index.size() > pb && z->managed >= kMinZoneManagedPages) {
          f.evidence.push_back({"zone_unusable_index_order9", z->unusable_index[pb] / 1000.0, "index", ZoneScope(*z)});
        }
      }
      f.explanation =
          "Free memory is plentiful but split into small buddy blocks, so order-9 requests (THP faults, "
          "hugetlb growth, large kernel buffers) fall back, stall in direct compaction or fail. The unusable "
          "free space index is the share of free memory in blocks smaller than the request (kernel "
          "mm/vmstat.c); above 0.9 at order 9 fewer than one free page in ten can serve a 2 MiB request.";
      if (u4 >= kUnusable4Warn) {
        f.explanation += absl::StrFormat(
            " Even order-4 (64 KiB) requests find %.0f%% of free memory unusable: the fragmentation reaches "
            "down to small orders, typical of unmovable/reclaimable allocations scattered through the zone.",
            u4 / 10.0);
      }
      f.actions = HighOrderActions(in, nid);
      f.measure_after = {
          absl::StrFormat("fraglab snapshot: free order-9 blocks on node %d (now %u) and unusable index at "
                          "order 9 (now %.3f)",
                          nid, blocks9, u9 / 1000.0),
          "vmstat thp_fault_fallback and compact_stall/compact_fail increase over the same workload period",
          "fraglab diagnose again: this finding should drop to info or disappear"};
      out.push_back(std::move(f));
    } else {
      // Node fine: note zones that are fragmented on their own.
      for (const ZoneSnapshot* z : zones) {
        if (z->managed < kMinZoneManagedPages || z->unusable_index.size() <= pb) continue;
        const uint64_t zfree = z->BuddyFreePages();
        if (zfree < kFreeShareForShortage * static_cast<double>(z->managed)) continue;
        if (z->unusable_index[pb] < kUnusable9Warn) continue;
        Finding f;
        f.id = "zone_high_order_shortage";
        f.severity = Severity::kInfo;
        f.scope = ZoneScope(*z);
        f.title = absl::StrFormat("Zone %s on node %d is fragmented at order %u (unusable index %.3f) but the "
                                  "node still has %u free order-%u blocks",
                                  z->name, nid, pb, z->unusable_index[pb] / 1000.0, blocks9, pb);
        f.evidence = {{"zone_free_memory", MiBOf(zfree, s.page_size), "MiB", ZoneScope(*z)},
                      {"zone_free_order9_blocks", static_cast<double>(FreeAtOrAbove(z->nr_free, pb) >> pb),
                       "blocks", ZoneScope(*z)},
                      {"zone_unusable_index_order9", z->unusable_index[pb] / 1000.0, "index", ZoneScope(*z)},
                      {"node_free_order9_blocks", static_cast<double>(blocks9), "blocks",
                       absl::StrFormat("node %d", nid)},
                      {"node_unusable_index_order9", u9 / 1000.0, "index", absl::StrFormat("node %d", nid)}};
        f.explanation =
            "Movable high-order requests fall back from this zone to lower zones of the node (and "
            "ALLOC_NOFRAGMENT prefers that to splitting other types' pageblocks), so this is not yet a "
            "problem; it becomes one when the lower zones fill or for requests that must come from this zone.";
        f.actions = {"None needed now; watch the node's free order-9 blocks."};
        f.measure_after = {"fraglab snapshot: this zone's free order-9 blocks over time"};
        out.push_back(std::move(f));
      }
    }
  }
}

void AddMigratetypeFindings(const DiagnoseInput& in, std::vector<Finding>& out) {
  const MachineSnapshot& s = *in.now;
  if (!s.HasTypes()) {
    Finding f;
    f.id = "no_migratetype_data";
    f.severity = Severity::kInfo;
    f.scope = "machine";
    f.title = "Per-migratetype data unavailable: " + s.pagetypeinfo_error;
    f.explanation = "/proc/pagetypeinfo is readable by root only; pageblock pollution cannot be judged without it.";
    f.actions = {"Run fraglab diagnose as root."};
    out.push_back(std::move(f));
    return;
  }
  const int unmov = TypeIndex(s, "Unmovable");
  const int recl = TypeIndex(s, "Reclaimable");
  const int mov = TypeIndex(s, "Movable");
  if (unmov < 0 || recl < 0 || mov < 0) return;
  uint64_t unmov_blocks = 0, recl_blocks = 0, mov_blocks = 0, mixed_movable = 0;
  bool have_mixed = false;
  for (const auto& z : s.zones) {
    if (z.pageblocks.size() <= static_cast<size_t>(std::max({unmov, recl, mov}))) continue;
    unmov_blocks += z.pageblocks[static_cast<size_t>(unmov)];
    recl_blocks += z.pageblocks[static_cast<size_t>(recl)];
    mov_blocks += z.pageblocks[static_cast<size_t>(mov)];
    if (z.mixed_blocks.size() > static_cast<size_t>(mov)) {
      have_mixed = true;
      mixed_movable += z.mixed_blocks[static_cast<size_t>(mov)];
    }
  }
  // What non-movable memory needs: slab (both kinds), kernel stacks, page
  // tables, per-cpu areas. Other unmovable users (driver buffers, vmalloc
  // areas, network pages) are not in meminfo as such, hence the ratio and
  // slack below rather than an exact comparison.
  const auto& mi = s.meminfo;
  uint64_t kb = 0;
  for (const char* name : {"SUnreclaim", "SReclaimable", "KernelStack", "PageTables", "SecPageTables", "Percpu"}) {
    kb += mi.Get(name).value_or(0);
  }
  const uint64_t block_kb = (uint64_t{s.page_size} << s.pageblock_order) / 1024;
  const uint64_t needed_blocks = (kb + block_kb - 1) / block_kb;
  const uint64_t have_blocks = unmov_blocks + recl_blocks;
  if (have_blocks > static_cast<uint64_t>(kUnmovableSpreadRatio * static_cast<double>(needed_blocks)) + kPageblockSlack) {
    Finding f;
    f.id = "unmovable_spread";
    f.severity = Severity::kWarning;
    f.scope = "machine";
    f.title = absl::StrFormat("%u Unmovable+Reclaimable pageblocks hold what %u pageblocks could: non-movable "
                              "allocations are spread over %.1fx the blocks they need",
                              have_blocks, needed_blocks,
                              static_cast<double>(have_blocks) / static_cast<double>(std::max<uint64_t>(1, needed_blocks)));
    f.evidence = {{"unmovable_pageblocks", static_cast<double>(unmov_blocks), "blocks", "pagetypeinfo"},
                  {"reclaimable_pageblocks", static_cast<double>(recl_blocks), "blocks", "pagetypeinfo"},
                  {"movable_pageblocks", static_cast<double>(mov_blocks), "blocks", "pagetypeinfo"},
                  {"nonmovable_memory", kb / 1024.0, "MiB", "meminfo slab+stacks+page tables+percpu"},
                  {"pageblocks_needed", static_cast<double>(needed_blocks), "blocks", "meminfo"}};
    f.explanation =
        "Each fallback that claims or steals a pageblock for an unmovable or reclaimable request turns a "
        "block compaction could have emptied into one it cannot: a single pinned page keeps all 512 pages of "
        "the block from ever forming a 2 MiB page. Many more such blocks than the memory needs means earlier "
        "fallbacks left partly used non-movable blocks behind.";
    f.actions = HighOrderActions(in, -1);
    f.actions.insert(f.actions.begin(),
                     "Find who falls back: fraglab diagnose --trace 30 (or fraglab trace --duration 30s) lists "
                     "fallbacks by requested and stolen migratetype; slabtop shows the growing caches.");
    f.measure_after = {"pagetypeinfo 'Number of blocks type' Unmovable/Reclaimable per zone",
                       "fallback events by class (claim/steal/pollute) in fraglab trace"};
    out.push_back(std::move(f));
  }
  if (have_mixed && mixed_movable > 0) {
    Finding f;
    f.id = "movable_blocks_polluted";
    f.severity = mixed_movable * 20 >= mov_blocks ? Severity::kWarning : Severity::kInfo;
    f.scope = "machine";
    f.title = absl::StrFormat("%u Movable pageblocks (%.1f%%) hold non-movable pages (page_owner mixed blocks)",
                              mixed_movable, 100.0 * static_cast<double>(mixed_movable) /
                                                 static_cast<double>(std::max<uint64_t>(1, mov_blocks)));
    f.evidence = {{"mixed_movable_pageblocks", static_cast<double>(mixed_movable), "blocks", "pagetypeinfo mixed"},
                  {"movable_pageblocks", static_cast<double>(mov_blocks), "blocks", "pagetypeinfo"}};
    f.explanation =
        "Polluting fallbacks put unmovable or reclaimable pages into Movable pageblocks without changing the "
        "block's type; compaction cannot empty such blocks, so they never become free 2 MiB blocks.";
    f.actions = {"fraglab diagnose --trace 30 to see which migratetype pairs pollute",
                 "vm.defrag_mode=1 where available, and a higher vm.min_free_kbytes, reduce fallbacks"};
    f.measure_after = {"'Number of mixed blocks' for Movable in /proc/pagetypeinfo"};
    out.push_back(std::move(f));
  }
}

void AddTraceFindings(const DiagnoseInput& in, std::vector<Finding>& out) {
  if (in.trace == nullptr) {
    if (!in.trace_note.empty()) {
      Finding f;
      f.id = "no_trace";
      f.severity = Severity::kInfo;
      f.scope = "machine";
      f.title = "No fallback trace: " + in.trace_note;
      f.explanation = "Findings come from /proc alone; which allocations fall back is unknown.";
      f.actions = {"Run as root on a kernel with BTF to use --trace."};
      out.push_back(std::move(f));
    }
    return;
  }
  const tracker::TraceSummary& t = *in.trace;
  TraceHeader names;
  if (in.trace_header != nullptr) names = *in.trace_header;
  if (names.migratetype_names.empty()) names.migratetype_names = in.now->migratetype_names;
  const double seconds = t.last_ts_ns > t.first_ts_ns ? (t.last_ts_ns - t.first_ts_ns) / 1e9 : 0.0;
  uint64_t total = 0, pollute_movable = 0;
  const int mov = TypeIndex(*in.now, "Movable");
  for (const auto& [k, n] : t.fallbacks) {
    total += n;
    if (k.extfrag_class != FL_EXTFRAG_CLAIM && k.fallback_migratetype == mov && k.alloc_migratetype != mov) {
      pollute_movable += n;
    }
  }
  Finding f;
  f.id = "fallbacks";
  f.scope = "machine";
  f.severity = pollute_movable >= kMinPolluteEvents ? Severity::kWarning : Severity::kInfo;
  f.title = absl::StrFormat("%u fallbacks in %.1f s (claim %u, steal %u, pollute %u); %u put non-movable pages "
                            "into Movable pageblocks",
                            total, seconds, t.fallbacks_by_class[FL_EXTFRAG_CLAIM],
                            t.fallbacks_by_class[FL_EXTFRAG_STEAL], t.fallbacks_by_class[FL_EXTFRAG_POLLUTE],
                            pollute_movable);
  f.evidence = {{"fallbacks_claim", static_cast<double>(t.fallbacks_by_class[FL_EXTFRAG_CLAIM]), "events", "trace"},
                {"fallbacks_steal", static_cast<double>(t.fallbacks_by_class[FL_EXTFRAG_STEAL]), "events", "trace"},
                {"fallbacks_pollute", static_cast<double>(t.fallbacks_by_class[FL_EXTFRAG_POLLUTE]), "events", "trace"},
                {"nonmovable_into_movable", static_cast<double>(pollute_movable), "events", "trace"},
                {"events_lost", static_cast<double>(t.lost()), "events", "trace"}};
  // The pairs, most frequent first (ties in key order: deterministic).
  std::vector<std::pair<tracker::FallbackKey, uint64_t>> pairs(t.fallbacks.begin(), t.fallbacks.end());
  std::stable_sort(pairs.begin(), pairs.end(), [](const auto& a, const auto& b) { return a.second > b.second; });
  for (size_t i = 0; i < pairs.size() && i < 6; ++i) {
    const auto& [k, n] = pairs[i];
    f.evidence.push_back({absl::StrCat(ExtfragClassName(k.extfrag_class), " ", MigratetypeName(names, k.alloc_migratetype),
                                       " from ", MigratetypeName(names, k.fallback_migratetype)),
                          static_cast<double>(n), "events", "trace"});
  }
  f.explanation =
      "A fallback serves a request from another migratetype's free list. Claim takes whole pageblocks "
      "(harmless for the other type's future), steal re-types a partly used block, pollute leaves the block's "
      "type unchanged with foreign pages inside: the pollute and steal events of Unmovable/Reclaimable requests "
      "from Movable blocks are what permanently removes 2 MiB blocks from compaction's reach.";
  if (pollute_movable > 0) {
    f.actions = HighOrderActions(in, -1);
  } else {
    f.actions = {"None: fallbacks did not put non-movable pages into Movable blocks during the trace."};
  }
  f.measure_after = {"the same trace after a change: nonmovable_into_movable per second",
                     "pagetypeinfo Unmovable/Reclaimable pageblock counts"};
  out.push_back(std::move(f));
}

void AddCompactionFinding(const DiagnoseInput& in, std::vector<Finding>& out) {
  const Counter stall = VmCounter(in, "compact_stall");
  const Counter fail = VmCounter(in, "compact_fail");
  const Counter success = VmCounter(in, "compact_success");
  if (!stall.present || !fail.present || stall.value < kMinCompactStalls) return;
  const double fail_ratio = static_cast<double>(fail.value) / static_cast<double>(stall.value);
  const double success_ratio = static_cast<double>(success.value) / static_cast<double>(stall.value);
  if (fail_ratio < kCompactFailWarn) return;
  Finding f;
  f.id = "compaction_failing";
  f.severity = Severity::kWarning;
  f.scope = "machine";
  f.title = absl::StrFormat("Direct compaction fails %.0f%% of the time (%u of %u stalls)", 100 * fail_ratio,
                            fail.value, stall.value);
  const std::string where = CounterWhere(in);
  f.evidence = {{"compact_stall", static_cast<double>(stall.value), "events", where},
                {"compact_success", static_cast<double>(success.value), "events", where},
                {"compact_fail", static_cast<double>(fail.value), "events", where},
                {"fail_ratio", fail_ratio, "ratio", where},
                {"success_ratio", success_ratio, "ratio", where}};
  for (const char* name : {"compact_migrate_scanned", "compact_free_scanned", "compact_daemon_wake",
                           "pgmigrate_fail"}) {
    const Counter c = VmCounter(in, name);
    if (c.present) f.evidence.push_back({name, static_cast<double>(c.value), "pages", where});
  }
  f.explanation =
      "Each stall is an allocating task compacting synchronously; a failed one paid that latency and still did "
      "not get its block (it then reclaims or falls back). A high failure share means the pageblocks are "
      "pinned or non-movable (compaction can only migrate movable pages), or the free scanner finds too few "
      "free target pages.";
  f.actions = HighOrderActions(in, -1);
  f.actions.push_back("THP: make faults not stall: echo defer+madvise > /sys/kernel/mm/transparent_hugepage/defrag "
                      "(now '" + in.tunables.thp_defrag + "').");
  f.measure_after = {"compact_stall, compact_fail, compact_success increases over the same workload",
                     "fraglab trace: direct compaction latency histogram"};
  out.push_back(std::move(f));
}

void AddThpFinding(const DiagnoseInput& in, std::vector<Finding>& out) {
  const Counter alloc = VmCounter(in, "thp_fault_alloc");
  const Counter fallback = VmCounter(in, "thp_fault_fallback");
  const Counter charge = VmCounter(in, "thp_fault_fallback_charge");
  if (!alloc.present || !fallback.present) return;
  // thp_fault_fallback_charge counts fallbacks due to the memory cgroup
  // limit; the kernel counts them in thp_fault_fallback as well, and they say
  // nothing about fragmentation.
  const uint64_t frag_fallback = fallback.value - std::min(fallback.value, charge.value);
  const uint64_t attempts = alloc.value + frag_fallback;
  if (attempts < kMinThpFaults) return;
  const double rate = static_cast<double>(frag_fallback) / static_cast<double>(attempts);
  if (rate < kThpFallbackWarn) return;
  Finding f;
  f.id = "thp_fallback";
  f.severity = rate >= kThpFallbackCritical ? Severity::kCritical : Severity::kWarning;
  f.scope = "machine";
  f.title = absl::StrFormat("%.0f%% of THP faults fell back to 4 KiB pages (%u of %u)", 100 * rate, frag_fallback,
                            attempts);
  const std::string where = CounterWhere(in);
  f.evidence = {{"thp_fault_alloc", static_cast<double>(alloc.value), "events", where},
                {"thp_fault_fallback", static_cast<double>(fallback.value), "events", where},
                {"thp_fault_fallback_charge", static_cast<double>(charge.value), "events", where},
                {"fallback_rate", rate, "ratio", where}};
  f.explanation = "A THP fault falls back when no free order-9 block is found within the effort the defrag "
                  "setting allows (enabled='" + in.tunables.thp_enabled + "', defrag='" + in.tunables.thp_defrag +
                  "'); memcg-charge fallbacks are excluded. The application then runs on 4 KiB pages with more "
                  "TLB misses, and khugepaged may collapse later.";
  f.actions = HighOrderActions(in, -1);
  f.actions.push_back("For latency-tolerant workloads that need THP: defrag=madvise with MADV_HUGEPAGE on the "
                      "hot ranges lets those faults compact directly.");
  f.measure_after = {"thp_fault_alloc and thp_fault_fallback increases over the same workload",
                     "AnonHugePages in /proc/meminfo"};
  out.push_back(std::move(f));
}

void AddBoostFindings(const DiagnoseInput& in, std::vector<Finding>& out) {
  for (const auto& z : in.now->zones) {
    if (z.boost == 0) continue;
    Finding f;
    f.id = "watermark_boost";
    f.severity = Severity::kWarning;
    f.scope = ZoneScope(z);
    f.title = absl::StrFormat("Watermark boost active on %s: %u pages (%.1f MiB) above the high watermark", f.scope,
                              z.boost, MiBOf(z.boost, in.now->page_size));
    f.evidence = {{"boost", static_cast<double>(z.boost), "pages", ZoneScope(z)},
                  {"wmark_high", static_cast<double>(z.wmark_high), "pages", ZoneScope(z)},
                  {"free_pages", static_cast<double>(z.free_pages), "pages", ZoneScope(z)},
                  {"watermark_boost_factor", static_cast<double>(in.tunables.watermark_boost_factor.value_or(0)),
                   "", in.tunables.watermark_boost_factor ? "sysctl" : "sysctl unreadable"}};
    f.explanation = "A boost is added when an allocation had to fall back into another migratetype's pageblock "
                    "below pageblock order (kernel boost_watermark). It wakes kswapd to reclaim that much extra and "
                    "then kcompactd at order 9: fragmentation is happening now and the kernel is paying reclaim "
                    "(page cache loss) to undo it.";
    f.actions = {
        "If reclaim from boosts evicts useful page cache, lower vm.watermark_boost_factor (0 disables boosting).",
        "If boosts recur, the fallbacks behind them are the problem: see the fallback and pageblock findings; "
        "fraglab diagnose --trace 30 names the migratetypes."};
    f.measure_after = {"zoneinfo 'boost' of this zone sampled over time",
                       "vmstat pgsteal_kswapd and compact_daemon_wake increases"};
    out.push_back(std::move(f));
  }
}

void AddWatermarkFindings(const DiagnoseInput& in, std::vector<Finding>& out) {
  for (const auto& z : in.now->zones) {
    if (z.managed < kMinZoneManagedPages || z.free_pages >= z.wmark_low) continue;
    Finding f;
    f.id = "below_low_watermark";
    f.severity = z.free_pages < z.wmark_min ? Severity::kCritical : Severity::kWarning;
    f.scope = ZoneScope(z);
    f.title = absl::StrFormat("%s is below its low watermark: %u free pages < low %u (min %u)", f.scope,
                              z.free_pages, z.wmark_low, z.wmark_min);
    f.evidence = {{"free_pages", static_cast<double>(z.free_pages), "pages", ZoneScope(z)},
                  {"wmark_min", static_cast<double>(z.wmark_min), "pages", ZoneScope(z)},
                  {"wmark_low", static_cast<double>(z.wmark_low), "pages", ZoneScope(z)},
                  {"wmark_high", static_cast<double>(z.wmark_high), "pages", ZoneScope(z)}};
    f.explanation = "kswapd is reclaiming and allocations below min enter direct reclaim; high-order requests "
                    "cannot be served while order-0 memory is this short.";
    f.actions = {"Find the memory user (meminfo, slabtop, per-cgroup memory.stat); raise vm.min_free_kbytes only "
                 "if bursts of atomic allocations fail."};
    f.measure_after = {"zoneinfo free vs watermarks; vmstat allocstall_* increases"};
    out.push_back(std::move(f));
  }
}

void AddSlabFindings(const DiagnoseInput& in, std::vector<Finding>& out) {
  const auto& mi = in.now->meminfo;
  auto total = mi.Get("MemTotal");
  auto unrec = mi.Get("SUnreclaim");
  auto rec = mi.Get("SReclaimable");
  if (!total || !unrec || !rec || *total == 0) return;
  const double share = static_cast<double>(*unrec) / static_cast<double>(*total);
  if (share >= kSlabUnreclaimableWarn) {
    Finding f;
    f.id = "slab_unreclaimable_large";
    f.severity = Severity::kWarning;
    f.scope = "machine";
    f.title = absl::StrFormat("Unreclaimable slab is %.1f%% of memory (%.0f MiB)", 100 * share, *unrec / 1024.0);
    f.evidence = {{"SUnreclaim", *unrec / 1024.0, "MiB", "meminfo"},
                  {"SReclaimable", *rec / 1024.0, "MiB", "meminfo"},
                  {"MemTotal", *total / 1024.0, "MiB", "meminfo"},
                  {"unreclaimable_share", share, "ratio", "meminfo"}};
    f.explanation = "Unreclaimable slab lives in Unmovable pageblocks and can neither be migrated nor freed on "
                    "demand; it grows the set of pageblocks compaction cannot empty, and a steady growth is "
                    "often a leak.";
    f.actions = {"slabtop -s c (or /proc/slabinfo) to find the cache; kmemleak or the owning subsystem's "
                 "counters to find the cause."};
    f.measure_after = {"meminfo SUnreclaim over time", "pagetypeinfo Unmovable pageblocks"};
    out.push_back(std::move(f));
  }
  if (in.before == nullptr) return;
  const auto& bi = in.before->meminfo;
  auto unrec0 = bi.Get("SUnreclaim");
  auto rec0 = bi.Get("SReclaimable");
  if (!unrec0 || !rec0) return;
  const double d_unrec = static_cast<double>(*unrec) - static_cast<double>(*unrec0);
  const double d_rec = static_cast<double>(*rec) - static_cast<double>(*rec0);
  const double limit = kSlabGrowthWarn * static_cast<double>(*total);
  if (d_unrec < limit && d_rec < limit) return;
  Finding f;
  f.id = "slab_growth";
  f.severity = d_unrec >= limit ? Severity::kWarning : Severity::kInfo;
  f.scope = "machine";
  const double secs = in.now->monotonic_ns > in.before->monotonic_ns
                          ? (in.now->monotonic_ns - in.before->monotonic_ns) / 1e9 : 0.0;
  f.title = absl::StrFormat("Slab grew during the %.1f s interval: unreclaimable %+.1f MiB, reclaimable %+.1f MiB",
                            secs, d_unrec / 1024.0, d_rec / 1024.0);
  f.evidence = {{"SUnreclaim_delta", d_unrec / 1024.0, "MiB", "meminfo"},
                {"SReclaimable_delta", d_rec / 1024.0, "MiB", "meminfo"},
                {"interval", secs, "s", ""}};
  f.explanation = "Reclaimable slab (dentries, inodes) takes Reclaimable pageblocks that only shrinking the caches "
                  "frees; unreclaimable growth takes Unmovable blocks for good. Growth while memory is fragmented "
                  "is what converts Movable blocks through fallbacks.";
  f.actions = {"slabtop -s c to find the growing cache; for reclaimable caches echo 2 > /proc/sys/vm/drop_caches "
               "shows what is recoverable (a test, not a fix)."};
  f.measure_after = {"meminfo SReclaimable/SUnreclaim across the workload"};
  out.push_back(std::move(f));
}

void AddNumaFinding(const DiagnoseInput& in, std::vector<Finding>& out) {
  std::map<int, std::pair<uint64_t, uint64_t>> nodes;  // nid -> (free, managed)
  for (const auto& z : in.now->zones) {
    nodes[z.nid].first += z.free_pages;
    nodes[z.nid].second += z.managed;
  }
  if (nodes.size() < 2) return;
  int lo = -1, hi = -1;
  double lo_share = 2, hi_share = -1;
  for (const auto& [nid, fm] : nodes) {
    if (fm.second == 0) continue;
    const double share = static_cast<double>(fm.first) / static_cast<double>(fm.second);
    if (share < lo_share) { lo_share = share; lo = nid; }
    if (share > hi_share) { hi_share = share; hi = nid; }
  }
  if (lo < 0 || hi_share < kNumaImbalanceRatio * std::max(lo_share, 1e-9)) return;
  Finding f;
  f.id = "numa_imbalance";
  f.severity = Severity::kWarning;
  f.scope = "machine";
  f.title = absl::StrFormat("NUMA imbalance: node %d has %.1f%% of its memory free, node %d only %.1f%%", hi,
                            100 * hi_share, lo, 100 * lo_share);
  for (const auto& [nid, fm] : nodes) {
    f.evidence.push_back({"free_memory", MiBOf(fm.first, in.now->page_size), "MiB", absl::StrFormat("node %d", nid)});
    f.evidence.push_back({"free_share", fm.second ? static_cast<double>(fm.first) / static_cast<double>(fm.second) : 0,
                          "ratio", absl::StrFormat("node %d", nid)});
  }
  f.explanation = "Allocations prefer the local node; a full node reclaims or falls back to remote memory while "
                  "the other has plenty. THP faults first try the local node only (__GFP_THISNODE) and fall back "
                  "to small pages rather than go remote.";
  f.actions = {"numastat -m and numactl --hardware to find which processes fill the node; check memory policies "
               "(numactl --interleave / --membind) and vm.zone_reclaim_mode; kernel.numa_balancing migrates pages "
               "toward their users."};
  f.measure_after = {"per-node MemFree in /sys/devices/system/node/node*/meminfo"};
  out.push_back(std::move(f));
}

nlohmann::json EvidenceJson(const Evidence& e) {
  return {{"name", e.name}, {"value", e.value}, {"unit", e.unit}, {"where", e.where}};
}

std::string FormatValue(double v) {
  if (v == static_cast<double>(static_cast<int64_t>(v)) && std::abs(v) < 1e15) {
    return absl::StrFormat("%d", static_cast<int64_t>(v));
  }
  return absl::StrFormat("%.3f", v);
}

}  // namespace

const char* SeverityName(Severity s) {
  switch (s) {
    case Severity::kInfo: return "info";
    case Severity::kWarning: return "warning";
    case Severity::kCritical: return "critical";
  }
  return "unknown";
}

std::string SelectedChoice(const std::string& text) {
  const size_t open = text.find('[');
  const size_t close = text.find(']', open == std::string::npos ? 0 : open);
  if (open != std::string::npos && close != std::string::npos) return text.substr(open + 1, close - open - 1);
  return std::string(absl::StripAsciiWhitespace(text));
}

Tunables ReadTunables(const std::string& root) {
  Tunables t;
  const std::string vm = JoinPath(root, "proc/sys/vm/");
  t.min_free_kbytes = ReadUint(vm + "min_free_kbytes");
  t.watermark_boost_factor = ReadUint(vm + "watermark_boost_factor");
  t.watermark_scale_factor = ReadUint(vm + "watermark_scale_factor");
  t.defrag_mode = ReadUint(vm + "defrag_mode");
  t.compaction_proactiveness = ReadUint(vm + "compaction_proactiveness");
  t.extfrag_threshold = ReadUint(vm + "extfrag_threshold");
  t.nr_hugepages = ReadUint(vm + "nr_hugepages");
  const std::string thp = JoinPath(root, "sys/kernel/mm/transparent_hugepage/");
  if (auto e = ReadSmallFile(thp + "enabled")) t.thp_enabled = SelectedChoice(*e);
  if (auto d = ReadSmallFile(thp + "defrag")) t.thp_defrag = SelectedChoice(*d);
  return t;
}

Severity WorstSeverity(const std::vector<Finding>& findings) {
  Severity worst = Severity::kInfo;
  for (const auto& f : findings) worst = std::max(worst, f.severity);
  return worst;
}

std::vector<Finding> Diagnose(const DiagnoseInput& in) {
  std::vector<Finding> out;
  if (in.now == nullptr) return out;
  AddHighOrderFindings(in, out);
  AddMigratetypeFindings(in, out);
  AddTraceFindings(in, out);
  AddCompactionFinding(in, out);
  AddThpFinding(in, out);
  AddBoostFindings(in, out);
  AddWatermarkFindings(in, out);
  AddSlabFindings(in, out);
  AddNumaFinding(in, out);
  std::stable_sort(out.begin(), out.end(), [](const Finding& a, const Finding& b) { return a.severity > b.severity; });
  return out;
}

std::string FindingsText(const DiagnoseInput& in, const std::vector<Finding>& findings) {
  const MachineSnapshot& s = *in.now;
  uint64_t free = 0, managed = 0;
  for (const auto& z : s.zones) {
    free += z.free_pages;
    managed += z.managed;
  }
  std::string out = absl::StrFormat("fraglab diagnose: kernel %s, %u zones, %.0f MiB managed, %.0f MiB free%s\n",
                                    s.kernel_release.empty() ? "unknown" : s.kernel_release, s.zones.size(),
                                    MiBOf(managed, s.page_size), MiBOf(free, s.page_size),
                                    in.before != nullptr ? " (counters: increase over the interval)" : "");
  size_t problems = 0;
  for (const auto& f : findings) problems += f.severity != Severity::kInfo;
  if (problems == 0) out += "No problems found.\n";
  for (const auto& f : findings) {
    std::string sev = SeverityName(f.severity);
    for (auto& ch : sev) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
    absl::StrAppendFormat(&out, "\n[%s] %s\n  scope: %s\n", sev, f.title, f.scope);
    if (!f.evidence.empty()) out += "  evidence:\n";
    for (const auto& e : f.evidence) {
      absl::StrAppendFormat(&out, "    %-34s %14s %-7s %s\n", e.name, FormatValue(e.value), e.unit, e.where);
    }
    absl::StrAppendFormat(&out, "  why: %s\n", f.explanation);
    if (!f.actions.empty()) out += "  actions:\n";
    for (const auto& a : f.actions) absl::StrAppendFormat(&out, "    - %s\n", a);
    if (!f.measure_after.empty()) out += "  measure after:\n";
    for (const auto& m : f.measure_after) absl::StrAppendFormat(&out, "    - %s\n", m);
  }
  return out;
}

std::string FindingsJson(const DiagnoseInput& in, const std::vector<Finding>& findings, int indent) {
  nlohmann::json j;
  j["kernel"] = in.now->kernel_release;
  j["interval"] = in.before != nullptr;
  j["trace"] = in.trace != nullptr;
  if (!in.trace_note.empty()) j["trace_note"] = in.trace_note;
  j["worst_severity"] = SeverityName(WorstSeverity(findings));
  j["findings"] = nlohmann::json::array();
  for (const auto& f : findings) {
    nlohmann::json jf = {{"id", f.id}, {"severity", SeverityName(f.severity)}, {"title", f.title},
                         {"scope", f.scope}, {"explanation", f.explanation}, {"actions", f.actions},
                         {"measure_after", f.measure_after}};
    jf["evidence"] = nlohmann::json::array();
    for (const auto& e : f.evidence) jf["evidence"].push_back(EvidenceJson(e));
    j["findings"].push_back(std::move(jf));
  }
  return j.dump(indent);
}

}  // namespace fraglab::diagnose
