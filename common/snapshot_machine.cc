#include "common/snapshot_machine.h"

#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include <cstdio>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/frag_index.h"
#include "common/proc_buddyinfo.h"
#include "common/proc_file.h"
#include "common/proc_pagetypeinfo.h"
#include "common/proc_zoneinfo.h"
#include "common/status.h"
#include "common/version.h"

namespace fraglab::snapshot {

uint64_t ZoneSnapshot::BuddyFreePages() const {
  uint64_t sum = 0;
  for (size_t k = 0; k < nr_free.size(); ++k) sum += nr_free[k] << k;
  return sum;
}

namespace {

uint64_t MonotonicNs() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000ULL + static_cast<uint64_t>(ts.tv_nsec);
}

// Names when pagetypeinfo cannot be read: the modern enum order (reference
// section 1), with CMA only if the kernel reports CMA counters.
std::vector<std::string> InferredMigratetypes(bool has_cma) {
  std::vector<std::string> names = {"Unmovable", "Movable", "Reclaimable", "HighAtomic"};
  if (has_cma) names.push_back("CMA");
  names.push_back("Isolate");
  return names;
}

}  // namespace

absl::StatusOr<MachineSnapshot> ReadMachineSnapshot(const std::string& root, const SnapshotOptions& options) {
  MachineSnapshot s;
  s.root = root;
  s.monotonic_ns = MonotonicNs();
  if (root == "/" || root.empty()) {
    long ps = sysconf(_SC_PAGESIZE);
    if (ps > 0) s.page_size = static_cast<uint32_t>(ps);
  }
  // Read the two per-order sources back to back so they describe nearly the
  // same moment; the slower text files follow.
  ASSIGN_OR_RETURN(procfs::BuddyInfo buddy, procfs::ReadBuddyInfo(root));
  absl::StatusOr<procfs::PagetypeInfo> pti =
      options.pagetypeinfo ? procfs::ReadPagetypeInfo(root)
                           : absl::StatusOr<procfs::PagetypeInfo>(absl::NotFoundError(
                                 "pagetypeinfo not requested (SnapshotOptions.pagetypeinfo = false)"));
  if (!pti.ok()) {
    if (pti.status().code() != absl::StatusCode::kPermissionDenied &&
        pti.status().code() != absl::StatusCode::kNotFound) {
      return pti.status();
    }
    s.pagetypeinfo_error = std::string(pti.status().message());
  }
  ASSIGN_OR_RETURN(procfs::ZoneInfo zi, procfs::ReadZoneInfo(root));
  ASSIGN_OR_RETURN(s.vmstat, procfs::ReadVmStat(root));
  ASSIGN_OR_RETURN(s.meminfo, procfs::ReadMemInfo(root));
  auto release = procfs::ReadWholeFile(procfs::PathUnderRoot(root, "/proc/sys/kernel/osrelease"));
  if (release.ok()) s.kernel_release = std::string(absl::StripAsciiWhitespace(*release));

  s.num_orders = buddy.num_orders();
  if (pti.ok()) {
    s.pageblock_order = pti->pageblock_order;
    s.migratetype_names = pti->migratetypes;
    if (pti->num_orders != s.num_orders) {
      return absl::InvalidArgumentError(absl::StrCat(
          procfs::PathUnderRoot(root, "/proc/pagetypeinfo"), " has ", pti->num_orders,
          " orders but buddyinfo has ", s.num_orders));
    }
  } else {
    // meminfo prints CmaTotal only with CONFIG_CMA; vmstat's nr_free_cma is
    // printed either way, so it cannot tell.
    const bool has_cma = s.meminfo.Get("CmaTotal").has_value();
    s.migratetype_names = InferredMigratetypes(has_cma);
    s.migratetypes_inferred = true;
  }

  for (const procfs::BuddyZone& bz : buddy.zones) {
    ZoneSnapshot z;
    z.nid = bz.nid;
    z.name = bz.zone;
    z.nr_free = bz.nr_free;
    const procfs::ZoneInfoZone* zz = zi.Find(bz.nid, bz.zone);
    if (zz == nullptr) {
      return absl::InvalidArgumentError(absl::StrCat("node ", bz.nid, " zone ", bz.zone,
                                                     " is in buddyinfo but not in ",
                                                     procfs::PathUnderRoot(root, "/proc/zoneinfo")));
    }
    z.zone_idx = zz->zone_idx;
    z.start_pfn = zz->start_pfn.value_or(0);
    z.spanned = zz->spanned;
    z.present = zz->present;
    z.managed = zz->managed;
    z.free_pages = zz->free;
    z.nr_free_pages = zz->Stat("nr_free_pages").value_or(zz->free);
    z.nr_free_pages_blocks = zz->Stat("nr_free_pages_blocks");
    z.nr_free_cma = zz->Stat("nr_free_cma");
    z.wmark_min = zz->min;
    z.wmark_low = zz->low;
    z.wmark_high = zz->high;
    z.wmark_promo = zz->promo;
    z.boost = zz->boost.value_or(0);
    z.protection = zz->protection;
    z.pcp_pages = zz->PcpPages();
    if (s.nr_cpus == 0) s.nr_cpus = static_cast<uint32_t>(zz->pagesets.size());
    if (pti.ok()) {
      const procfs::PagetypeZone* pz = pti->Find(bz.nid, bz.zone);
      if (pz != nullptr) {
        z.free_by_type = pz->free;
        z.saturated = pz->saturated;
        z.pageblocks = pz->blocks;
        z.mixed_blocks = pz->mixed_blocks;
      }
    }
    for (unsigned order = 0; order < z.nr_free.size(); ++order) {
      z.unusable_index.push_back(procfs::UnusableIndex(z.nr_free, order));
      z.fragmentation_index.push_back(procfs::FragmentationIndex(z.nr_free, order));
    }
    z.compaction_score = procfs::ExtfragForOrder(z.nr_free, static_cast<unsigned>(s.pageblock_order));
    s.zones.push_back(std::move(z));
  }
  return s;
}

absl::StatusOr<fl_snapshot_zone> ZoneRecord(const MachineSnapshot& s, size_t zone_index) {
  if (zone_index >= s.zones.size()) {
    return absl::InvalidArgumentError(absl::StrCat("zone index ", zone_index, " out of range (",
                                                   s.zones.size(), " zones)"));
  }
  const ZoneSnapshot& z = s.zones[zone_index];
  if (z.nr_free.size() > FL_MAX_ORDERS) {
    return absl::InvalidArgumentError(absl::StrCat("zone ", z.name, " has ", z.nr_free.size(),
                                                   " orders; the trace schema holds ", FL_MAX_ORDERS));
  }
  if (s.migratetype_names.size() > FL_MAX_MIGRATETYPES) {
    return absl::InvalidArgumentError(absl::StrCat(s.migratetype_names.size(),
                                                   " migratetypes; the trace schema holds ",
                                                   FL_MAX_MIGRATETYPES));
  }
  fl_snapshot_zone rec;
  InitRecord(rec, FL_EV_SNAPSHOT_ZONE, s.monotonic_ns, 0);
  rec.nid = z.nid;
  rec.zone_idx = z.zone_idx;
  rec.nr_migratetypes = static_cast<uint32_t>(s.migratetype_names.size());
  rec.start_pfn = z.start_pfn;
  rec.spanned = z.spanned;
  rec.present = z.present;
  rec.managed = z.managed;
  rec.nr_free_pages = z.nr_free_pages;
  rec.wmark_min = z.wmark_min;
  rec.wmark_low = z.wmark_low;
  rec.wmark_high = z.wmark_high;
  rec.wmark_promo = z.wmark_promo.value_or(0);
  rec.boost = z.boost;
  for (size_t k = 0; k < z.nr_free.size(); ++k) rec.nr_free[k] = z.nr_free[k];
  if (!z.HasTypes()) {
    rec.flags |= FL_SNAP_NO_TYPES;
  } else {
    for (size_t t = 0; t < z.free_by_type.size() && t < FL_MAX_MIGRATETYPES; ++t) {
      for (size_t k = 0; k < z.free_by_type[t].size(); ++k) {
        const uint64_t v = z.free_by_type[t][k];
        rec.free_by_type[k][t] = v > UINT32_MAX ? UINT32_MAX : static_cast<uint32_t>(v);
        if (z.saturated[t][k]) rec.flags |= FL_SNAP_SATURATED;
      }
    }
    for (size_t t = 0; t < z.pageblocks.size() && t < FL_MAX_MIGRATETYPES; ++t) {
      rec.pageblocks[t] = static_cast<uint32_t>(z.pageblocks[t]);
    }
  }
  return rec;
}

namespace {

struct CounterSource {
  int id;
  const char* vmstat;
  const char* meminfo;     // fallback in /proc/meminfo, or nullptr
  uint64_t meminfo_div;    // kB per counter unit (pages: 4; THPs: 2048)
};

// vmstat names equal the enum names in lower case; meminfo fallbacks cover
// counters whose vmstat name changed across releases.
constexpr CounterSource kCounterSources[] = {
    {FL_CTR_NR_FREE_PAGES, "nr_free_pages", "MemFree", 4},
    {FL_CTR_NR_FREE_PAGES_BLOCKS, "nr_free_pages_blocks", nullptr, 0},
    {FL_CTR_PGALLOC_DMA, "pgalloc_dma", nullptr, 0},
    {FL_CTR_PGALLOC_DMA32, "pgalloc_dma32", nullptr, 0},
    {FL_CTR_PGALLOC_NORMAL, "pgalloc_normal", nullptr, 0},
    {FL_CTR_PGALLOC_MOVABLE, "pgalloc_movable", nullptr, 0},
    {FL_CTR_PGFREE, "pgfree", nullptr, 0},
    {FL_CTR_COMPACT_STALL, "compact_stall", nullptr, 0},
    {FL_CTR_COMPACT_FAIL, "compact_fail", nullptr, 0},
    {FL_CTR_COMPACT_SUCCESS, "compact_success", nullptr, 0},
    {FL_CTR_COMPACT_MIGRATE_SCANNED, "compact_migrate_scanned", nullptr, 0},
    {FL_CTR_COMPACT_FREE_SCANNED, "compact_free_scanned", nullptr, 0},
    {FL_CTR_COMPACT_ISOLATED, "compact_isolated", nullptr, 0},
    {FL_CTR_COMPACT_DAEMON_WAKE, "compact_daemon_wake", nullptr, 0},
    {FL_CTR_COMPACT_DAEMON_MIGRATE_SCANNED, "compact_daemon_migrate_scanned", nullptr, 0},
    {FL_CTR_COMPACT_DAEMON_FREE_SCANNED, "compact_daemon_free_scanned", nullptr, 0},
    {FL_CTR_PGMIGRATE_SUCCESS, "pgmigrate_success", nullptr, 0},
    {FL_CTR_PGMIGRATE_FAIL, "pgmigrate_fail", nullptr, 0},
    {FL_CTR_THP_FAULT_ALLOC, "thp_fault_alloc", nullptr, 0},
    {FL_CTR_THP_FAULT_FALLBACK, "thp_fault_fallback", nullptr, 0},
    {FL_CTR_THP_FAULT_FALLBACK_CHARGE, "thp_fault_fallback_charge", nullptr, 0},
    {FL_CTR_THP_COLLAPSE_ALLOC, "thp_collapse_alloc", nullptr, 0},
    {FL_CTR_THP_COLLAPSE_ALLOC_FAILED, "thp_collapse_alloc_failed", nullptr, 0},
    {FL_CTR_THP_SPLIT_PAGE, "thp_split_page", nullptr, 0},
    {FL_CTR_ALLOCSTALL_DMA32, "allocstall_dma32", nullptr, 0},
    {FL_CTR_ALLOCSTALL_NORMAL, "allocstall_normal", nullptr, 0},
    {FL_CTR_ALLOCSTALL_MOVABLE, "allocstall_movable", nullptr, 0},
    {FL_CTR_PGSTEAL_KSWAPD, "pgsteal_kswapd", nullptr, 0},
    {FL_CTR_PGSTEAL_DIRECT, "pgsteal_direct", nullptr, 0},
    {FL_CTR_PGSCAN_KSWAPD, "pgscan_kswapd", nullptr, 0},
    {FL_CTR_PGSCAN_DIRECT, "pgscan_direct", nullptr, 0},
    {FL_CTR_KSWAPD_LOW_WMARK_HIT_QUICKLY, "kswapd_low_wmark_hit_quickly", nullptr, 0},
    {FL_CTR_KSWAPD_HIGH_WMARK_HIT_QUICKLY, "kswapd_high_wmark_hit_quickly", nullptr, 0},
    {FL_CTR_DROP_PAGECACHE, "drop_pagecache", nullptr, 0},
    {FL_CTR_DROP_SLAB, "drop_slab", nullptr, 0},
    {FL_CTR_OOM_KILL, "oom_kill", nullptr, 0},
    {FL_CTR_HTLB_BUDDY_ALLOC_SUCCESS, "htlb_buddy_alloc_success", nullptr, 0},
    {FL_CTR_HTLB_BUDDY_ALLOC_FAIL, "htlb_buddy_alloc_fail", nullptr, 0},
    {FL_CTR_NR_SLAB_RECLAIMABLE, "nr_slab_reclaimable", "SReclaimable", 4},
    {FL_CTR_NR_SLAB_UNRECLAIMABLE, "nr_slab_unreclaimable", "SUnreclaim", 4},
    {FL_CTR_NR_FILE_PAGES, "nr_file_pages", nullptr, 0},
    {FL_CTR_NR_ANON_PAGES, "nr_anon_pages", "AnonPages", 4},
    {FL_CTR_NR_PAGE_TABLE_PAGES, "nr_page_table_pages", "PageTables", 4},
    {FL_CTR_NR_ANON_TRANSPARENT_HUGEPAGES, "nr_anon_transparent_hugepages", "AnonHugePages", 2048},
};

}  // namespace

const char* CounterName(int id) {
  for (const CounterSource& c : kCounterSources) {
    if (c.id == id) return c.vmstat;
  }
  return nullptr;
}

fl_counters CountersRecord(const MachineSnapshot& s) {
  fl_counters rec;
  InitRecord(rec, FL_EV_COUNTERS, s.monotonic_ns, 0);
  for (const CounterSource& c : kCounterSources) {
    std::optional<uint64_t> v = s.vmstat.Get(c.vmstat);
    if (!v && c.meminfo != nullptr) {
      std::optional<uint64_t> kb = s.meminfo.Get(c.meminfo);
      // The kB->pages divisor assumes 4 KiB pages, as the fallbacks' units do.
      if (kb) v = *kb / c.meminfo_div;
    }
    if (v) {
      rec.value[c.id] = *v;
      rec.present_mask |= uint64_t{1} << c.id;
    }
  }
  return rec;
}

absl::Status EmitSnapshotRecords(const MachineSnapshot& s, EventSink& sink) {
  for (size_t i = 0; i < s.zones.size(); ++i) {
    ASSIGN_OR_RETURN(fl_snapshot_zone rec, ZoneRecord(s, i));
    RETURN_IF_ERROR(sink.Emit(rec.hdr));
  }
  fl_counters counters = CountersRecord(s);
  return sink.Emit(counters.hdr);
}

std::vector<ZoneLayout> ZoneLayouts(const MachineSnapshot& s) {
  std::vector<ZoneLayout> out;
  for (const ZoneSnapshot& z : s.zones) {
    ZoneLayout l;
    l.nid = z.nid;
    l.zone_idx = z.zone_idx;
    l.name = z.name;
    l.start_pfn = z.start_pfn;
    l.spanned = z.spanned;
    l.present = z.present;
    l.managed = z.managed;
    out.push_back(std::move(l));
  }
  return out;
}

const std::vector<std::string>& MigratetypeNames(const MachineSnapshot& s) { return s.migratetype_names; }

std::string KernelEraForRelease(const std::string& release) {
  std::vector<absl::string_view> parts = absl::StrSplit(release, absl::ByAnyChar(".-+_"));
  int major = 0, minor = 0, patch = 0;
  if (parts.size() < 2 || !absl::SimpleAtoi(parts[0], &major) || !absl::SimpleAtoi(parts[1], &minor)) {
    return "";
  }
  if (parts.size() >= 3) (void)absl::SimpleAtoi(parts[2], &patch);
  const int v = major * 100 + minor;
  if (v <= 609) return "LEGACY";
  if (v >= 615) return "CLAIM";
  if (v == 612 && patch >= 29) return "CLAIM";
  return "HYGIENE";
}

TraceHeader TraceHeaderFromSnapshot(const MachineSnapshot& s) {
  TraceHeader h;
  h.schema_major = FL_SCHEMA_VERSION_MAJOR;
  h.schema_minor = FL_SCHEMA_VERSION_MINOR;
  h.tool_version = FRAGLAB_VERSION;
  h.simulated = false;
  h.kernel_release = s.kernel_release;
  h.kernel_era = KernelEraForRelease(s.kernel_release);
  if (s.root == "/" || s.root.empty()) {
    utsname u{};
    if (uname(&u) == 0) h.machine = absl::StrCat(u.nodename, " ", u.machine);
  } else {
    h.machine = absl::StrCat("snapshot of ", s.root);
  }
  h.nr_cpus = s.nr_cpus;
  h.page_size = s.page_size;
  h.pageblock_order = static_cast<uint32_t>(s.pageblock_order);
  h.max_order = s.num_orders == 0 ? 0 : static_cast<uint32_t>(s.num_orders - 1);
  h.zones = ZoneLayouts(s);
  h.migratetype_names = s.migratetype_names;
  if (s.migratetypes_inferred) h.extra["migratetypes"] = "inferred (pagetypeinfo unreadable)";
  return h;
}

absl::StatusOr<TraceHeader> TraceHeaderForThisMachine() {
  ASSIGN_OR_RETURN(MachineSnapshot s, ReadMachineSnapshot("/"));
  TraceHeader h = TraceHeaderFromSnapshot(s);
  long cpus = sysconf(_SC_NPROCESSORS_ONLN);
  if (cpus > 0) h.nr_cpus = static_cast<uint32_t>(cpus);
  h.created_unix_s = static_cast<uint64_t>(::time(nullptr));
  return h;
}

}  // namespace fraglab::snapshot
