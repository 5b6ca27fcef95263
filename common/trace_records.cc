#include "common/trace_records.h"

#include <array>
#include <cstddef>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace fraglab {
namespace {

struct KindInfo {
  uint16_t kind;
  const char* name;
  size_t fixed_size;  // 0: variable
};

constexpr KindInfo kKinds[] = {
    {FL_EV_PAGE_ALLOC, "page_alloc", sizeof(fl_page_alloc)},
    {FL_EV_PAGE_FREE, "page_free", sizeof(fl_page_free)},
    {FL_EV_EXTFRAG, "extfrag", sizeof(fl_extfrag)},
    {FL_EV_ZONE_LOCKED, "zone_locked", sizeof(fl_zone_locked)},
    {FL_EV_PCP_DRAIN, "pcp_drain", sizeof(fl_pcp_drain)},
    {FL_EV_COMPACT_BEGIN, "compact_begin", sizeof(fl_compact_begin_end)},
    {FL_EV_COMPACT_END, "compact_end", sizeof(fl_compact_begin_end)},
    {FL_EV_COMPACT_SUITABLE, "compact_suitable", sizeof(fl_compact_result)},
    {FL_EV_COMPACT_FINISHED, "compact_finished", sizeof(fl_compact_result)},
    {FL_EV_COMPACT_DEFERRED, "compact_deferred", sizeof(fl_compact_defer)},
    {FL_EV_COMPACT_DEFER, "compact_defer", sizeof(fl_compact_defer)},
    {FL_EV_COMPACT_DEFER_RESET, "compact_defer_reset", sizeof(fl_compact_defer)},
    {FL_EV_COMPACT_TRY, "compact_try", sizeof(fl_compact_try)},
    {FL_EV_KCOMPACTD_WAKEUP, "kcompactd_wakeup", sizeof(fl_kcompactd)},
    {FL_EV_KCOMPACTD_WAKE, "kcompactd_wake", sizeof(fl_kcompactd)},
    {FL_EV_KCOMPACTD_SLEEP, "kcompactd_sleep", sizeof(fl_kcompactd)},
    {FL_EV_COMPACT_ISOLATE, "compact_isolate", sizeof(fl_compact_isolate)},
    {FL_EV_COMPACT_MIGRATEPAGES, "compact_migratepages", sizeof(fl_compact_migratepages)},
    {FL_EV_COMPACT_OUTCOME, "compact_outcome", sizeof(fl_compact_outcome)},
    {FL_EV_MIGRATE_PAGES, "migrate_pages", sizeof(fl_migrate_pages)},
    {FL_EV_DIRECT_RECLAIM_BEGIN, "direct_reclaim_begin", sizeof(fl_direct_reclaim)},
    {FL_EV_DIRECT_RECLAIM_END, "direct_reclaim_end", sizeof(fl_direct_reclaim)},
    {FL_EV_KSWAPD_WAKE, "kswapd_wake", sizeof(fl_kswapd)},
    {FL_EV_KSWAPD_SLEEP, "kswapd_sleep", sizeof(fl_kswapd)},
    {FL_EV_KSWAPD_WAKEUP, "kswapd_wakeup", sizeof(fl_kswapd)},
    {FL_EV_THP_COLLAPSE, "thp_collapse", sizeof(fl_thp_collapse)},
    {FL_EV_OOM_VICTIM, "oom_victim", sizeof(fl_oom_victim)},
    {FL_EV_AGGREGATE, "aggregate", sizeof(fl_aggregate)},
    {FL_EV_SNAPSHOT_ZONE, "snapshot_zone", sizeof(fl_snapshot_zone)},
    {FL_EV_COUNTERS, "counters", sizeof(fl_counters)},
    {FL_EV_PHASE, "phase", sizeof(fl_phase)},
    {FL_EV_DROPS, "drops", sizeof(fl_drops)},
    {FL_EV_PAGEBLOCK_MAP, "pageblock_map", 0},
    {FL_EV_PROBE, "probe", sizeof(fl_probe)},
};

// Direct index by kind number; built once at compile time from kKinds.
constexpr std::array<const KindInfo*, FL_EV_KIND_MAX> MakeIndex() {
  std::array<const KindInfo*, FL_EV_KIND_MAX> idx{};
  for (const KindInfo& k : kKinds) idx[k.kind] = &k;
  return idx;
}
constexpr std::array<const KindInfo*, FL_EV_KIND_MAX> kKindIndex = MakeIndex();

const KindInfo* FindKind(uint16_t kind) {
  return kind < FL_EV_KIND_MAX ? kKindIndex[kind] : nullptr;
}

constexpr const char* kCounterNames[] = {
    "nr_free_pages",
    "nr_free_pages_blocks",
    "pgalloc_dma",
    "pgalloc_dma32",
    "pgalloc_normal",
    "pgalloc_movable",
    "pgfree",
    "compact_stall",
    "compact_fail",
    "compact_success",
    "compact_migrate_scanned",
    "compact_free_scanned",
    "compact_isolated",
    "compact_daemon_wake",
    "compact_daemon_migrate_scanned",
    "compact_daemon_free_scanned",
    "pgmigrate_success",
    "pgmigrate_fail",
    "thp_fault_alloc",
    "thp_fault_fallback",
    "thp_fault_fallback_charge",
    "thp_collapse_alloc",
    "thp_collapse_alloc_failed",
    "thp_split_page",
    "allocstall_dma32",
    "allocstall_normal",
    "allocstall_movable",
    "pgsteal_kswapd",
    "pgsteal_direct",
    "pgscan_kswapd",
    "pgscan_direct",
    "kswapd_low_wmark_hit_quickly",
    "kswapd_high_wmark_hit_quickly",
    "drop_pagecache",
    "drop_slab",
    "oom_kill",
    "htlb_buddy_alloc_success",
    "htlb_buddy_alloc_fail",
    "nr_slab_reclaimable",
    "nr_slab_unreclaimable",
    "nr_file_pages",
    "nr_anon_pages",
    "nr_page_table_pages",
    "nr_anon_transparent_hugepages",
};
static_assert(sizeof(kCounterNames) / sizeof(kCounterNames[0]) ==
                  FL_CTR_NR_ANON_TRANSPARENT_HUGEPAGES + 1,
              "one name per FL_CTR_* id");

template <typename T>
T As(const fl_record_header& rec) {
  T out;
  std::memcpy(&out, &rec, sizeof(T));
  return out;
}

// Number of migratetype columns a reader shows: the header's names, capped
// at the schema's array width (FL_MAX_MIGRATETYPES when the header names none).
size_t MigratetypeColumns(const TraceHeader& header) {
  size_t n = header.migratetype_names.size();
  if (n == 0 || n > FL_MAX_MIGRATETYPES) n = FL_MAX_MIGRATETYPES;
  return n;
}

std::string BoundedString(const char* s, size_t max) { return std::string(s, strnlen(s, max)); }

}  // namespace

const char* RecordKindName(uint16_t kind) {
  const KindInfo* k = FindKind(kind);
  return k ? k->name : nullptr;
}

uint16_t RecordKindFromName(const std::string& name) {
  for (const KindInfo& k : kKinds) {
    if (name == k.name) return k.kind;
  }
  return FL_EV_INVALID;
}

size_t RecordFixedSize(uint16_t kind) {
  const KindInfo* k = FindKind(kind);
  return k ? k->fixed_size : 0;
}

size_t PageblockMapSize(uint32_t count) {
  return (sizeof(fl_pageblock_map) + size_t{count} * sizeof(fl_pageblock_entry) + 7) / 8 * 8;
}

absl::Status ValidateRecord(const fl_record_header& rec, size_t available_bytes,
                            bool allow_unknown_kind) {
  const KindInfo* k = FindKind(rec.kind);
  if (k == nullptr && !(allow_unknown_kind && rec.kind != FL_EV_INVALID)) {
    return absl::InvalidArgumentError(absl::StrCat("unknown record kind ", rec.kind));
  }
  const char* name = k ? k->name : "unknown";
  if (rec.size < sizeof(fl_record_header) || rec.size % 8 != 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        name, " record: size ", rec.size, " is not a multiple of 8 of at least 16 bytes"));
  }
  if (rec.size > available_bytes) {
    return absl::InvalidArgumentError(absl::StrCat(name, " record: size ", rec.size,
                                                   " runs past the ", available_bytes,
                                                   " bytes available"));
  }
  if (k == nullptr) return absl::OkStatus();
  if (k->fixed_size != 0 && rec.size != k->fixed_size) {
    return absl::InvalidArgumentError(absl::StrCat(name, " record: size ", rec.size,
                                                   ", expected ", k->fixed_size));
  }
  switch (rec.kind) {
    case FL_EV_PAGEBLOCK_MAP: {
      if (rec.size < sizeof(fl_pageblock_map)) {
        return absl::InvalidArgumentError(absl::StrCat("pageblock_map record: size ", rec.size,
                                                       " is smaller than its fixed part (",
                                                       sizeof(fl_pageblock_map), ")"));
      }
      const auto m = As<fl_pageblock_map>(rec);
      if (m.count > FL_PB_MAP_MAX_ENTRIES) {
        return absl::InvalidArgumentError(absl::StrCat("pageblock_map record: count ", m.count,
                                                       " exceeds ", FL_PB_MAP_MAX_ENTRIES));
      }
      if (rec.size != PageblockMapSize(m.count)) {
        return absl::InvalidArgumentError(absl::StrCat("pageblock_map record: size ", rec.size,
                                                       " does not match count ", m.count,
                                                       " (expected ", PageblockMapSize(m.count),
                                                       ")"));
      }
      break;
    }
    case FL_EV_AGGREGATE: {
      uint32_t nr_zones;
      std::memcpy(&nr_zones, reinterpret_cast<const uint8_t*>(&rec) + offsetof(fl_aggregate, nr_zones),
                  sizeof(nr_zones));
      if (nr_zones > FL_MAX_ZONES) {
        return absl::InvalidArgumentError(absl::StrCat("aggregate record: nr_zones ", nr_zones,
                                                       " exceeds ", FL_MAX_ZONES));
      }
      break;
    }
    case FL_EV_SNAPSHOT_ZONE: {
      uint32_t nr_mt;
      std::memcpy(&nr_mt,
                  reinterpret_cast<const uint8_t*>(&rec) + offsetof(fl_snapshot_zone, nr_migratetypes),
                  sizeof(nr_mt));
      if (nr_mt > FL_MAX_MIGRATETYPES) {
        return absl::InvalidArgumentError(absl::StrCat("snapshot_zone record: nr_migratetypes ",
                                                       nr_mt, " exceeds ", FL_MAX_MIGRATETYPES));
      }
      break;
    }
    default:
      break;
  }
  return absl::OkStatus();
}

const char* ExtfragClassName(uint32_t extfrag_class) {
  switch (extfrag_class) {
    case FL_EXTFRAG_CLAIM:
      return "claim";
    case FL_EXTFRAG_STEAL:
      return "steal";
    case FL_EXTFRAG_POLLUTE:
      return "pollute";
    default:
      return "unknown";
  }
}

const char* CounterName(uint32_t id) {
  constexpr size_t n = sizeof(kCounterNames) / sizeof(kCounterNames[0]);
  return id < n ? kCounterNames[id] : nullptr;
}

const char* CompactResultName(int32_t result) {
  // Kernel enum compact_result (reference section 3), identical 6.1..6.18.
  static constexpr const char* kNames[] = {"not_suitable_zone", "skipped",  "deferred",
                                           "no_suitable_page",  "continue", "complete",
                                           "partial_skipped",   "contended", "success"};
  if (result < 0 || result >= static_cast<int32_t>(sizeof(kNames) / sizeof(kNames[0]))) {
    return "unknown";
  }
  return kNames[result];
}

std::string MigratetypeName(const TraceHeader& header, int64_t mt) {
  if (mt >= 0 && static_cast<uint64_t>(mt) < header.migratetype_names.size()) {
    return header.migratetype_names[static_cast<size_t>(mt)];
  }
  if (mt == FL_MT_UNKNOWN || mt == 0xff || mt == -1) return "unknown";
  return absl::StrCat("mt", mt);
}

std::string ZoneLabel(const TraceHeader& header, uint32_t zone_pos) {
  if (zone_pos < header.zones.size()) {
    const ZoneLayout& z = header.zones[zone_pos];
    return absl::StrCat("node", z.nid, "_", z.name);
  }
  return absl::StrCat("zone", zone_pos);
}

std::string ZoneLabelByIndex(const TraceHeader& header, int32_t nid, int32_t zone_idx) {
  for (const ZoneLayout& z : header.zones) {
    if (z.nid == nid && z.zone_idx == zone_idx) return absl::StrCat("node", nid, "_", z.name);
  }
  return absl::StrCat("node", nid, "_zone", zone_idx);
}

nlohmann::json RecordToJson(const fl_record_header& rec, const TraceHeader& header) {
  using nlohmann::json;
  json j = json::object();
  const char* kind_name = RecordKindName(rec.kind);
  j["kind"] = kind_name ? std::string(kind_name) : absl::StrCat("kind", rec.kind);
  j["ts_ns"] = rec.ts_ns;
  j["cpu"] = rec.cpu;
  auto mt = [&](int64_t v) { return MigratetypeName(header, v); };
  const size_t nr_mt_cols = MigratetypeColumns(header);

  switch (rec.kind) {
    case FL_EV_PAGE_ALLOC: {
      const auto r = As<fl_page_alloc>(rec);
      j["pfn"] = r.pfn;
      j["failed"] = r.pfn == FL_NO_PFN;
      j["gfp_flags"] = r.gfp_flags;
      j["order"] = r.order;
      j["migratetype"] = mt(r.migratetype);
      break;
    }
    case FL_EV_PAGE_FREE: {
      const auto r = As<fl_page_free>(rec);
      j["pfn"] = r.pfn;
      j["order"] = r.order;
      j["batched"] = r.batched;
      break;
    }
    case FL_EV_EXTFRAG: {
      const auto r = As<fl_extfrag>(rec);
      j["pfn"] = r.pfn;
      j["alloc_order"] = r.alloc_order;
      j["fallback_order"] = r.fallback_order;
      j["alloc_migratetype"] = mt(r.alloc_migratetype);
      j["fallback_migratetype"] = mt(r.fallback_migratetype);
      j["change_ownership"] = r.change_ownership;
      j["fragmenting"] = r.fragmenting;
      j["class"] = ExtfragClassName(r.extfrag_class);
      break;
    }
    case FL_EV_ZONE_LOCKED: {
      const auto r = As<fl_zone_locked>(rec);
      j["pfn"] = r.pfn;
      j["order"] = r.order;
      j["migratetype"] = mt(r.migratetype);
      j["percpu_refill"] = r.percpu_refill;
      break;
    }
    case FL_EV_PCP_DRAIN: {
      const auto r = As<fl_pcp_drain>(rec);
      j["pfn"] = r.pfn;
      j["order"] = r.order;
      j["migratetype"] = mt(r.migratetype);
      break;
    }
    case FL_EV_COMPACT_BEGIN:
    case FL_EV_COMPACT_END: {
      const auto r = As<fl_compact_begin_end>(rec);
      j["zone_start"] = r.zone_start;
      j["migrate_pfn"] = r.migrate_pfn;
      j["free_pfn"] = r.free_pfn;
      j["zone_end"] = r.zone_end;
      j["sync"] = r.sync;
      j["pid"] = r.pid;
      if (rec.kind == FL_EV_COMPACT_END) {
        j["status"] = r.status;
        j["status_name"] = CompactResultName(r.status);
      }
      break;
    }
    case FL_EV_COMPACT_SUITABLE:
    case FL_EV_COMPACT_FINISHED: {
      const auto r = As<fl_compact_result>(rec);
      j["nid"] = r.nid;
      j["zone"] = ZoneLabelByIndex(header, r.nid, r.zone_idx);
      j["order"] = r.order;
      j["ret"] = r.ret;
      j["ret_name"] = CompactResultName(r.ret);
      break;
    }
    case FL_EV_COMPACT_DEFERRED:
    case FL_EV_COMPACT_DEFER:
    case FL_EV_COMPACT_DEFER_RESET: {
      const auto r = As<fl_compact_defer>(rec);
      j["nid"] = r.nid;
      j["zone"] = ZoneLabelByIndex(header, r.nid, r.zone_idx);
      j["order"] = r.order;
      j["considered"] = r.considered;
      j["defer_shift"] = r.defer_shift;
      j["order_failed"] = r.order_failed;
      break;
    }
    case FL_EV_COMPACT_TRY: {
      const auto r = As<fl_compact_try>(rec);
      j["gfp_mask"] = r.gfp_mask;
      j["order"] = r.order;
      j["prio"] = r.prio;
      j["pid"] = r.pid;
      break;
    }
    case FL_EV_KCOMPACTD_WAKEUP:
    case FL_EV_KCOMPACTD_WAKE:
    case FL_EV_KCOMPACTD_SLEEP: {
      const auto r = As<fl_kcompactd>(rec);
      j["nid"] = r.nid;
      j["order"] = r.order;
      j["highest_zoneidx"] = r.highest_zoneidx;
      break;
    }
    case FL_EV_COMPACT_ISOLATE: {
      const auto r = As<fl_compact_isolate>(rec);
      static constexpr const char* kWhich[] = {"migratepages", "freepages", "fast_freepages"};
      j["start_pfn"] = r.start_pfn;
      j["end_pfn"] = r.end_pfn;
      j["nr_scanned"] = r.nr_scanned;
      j["nr_taken"] = r.nr_taken;
      j["which"] = r.which < 3 ? std::string(kWhich[r.which]) : absl::StrCat("which", r.which);
      break;
    }
    case FL_EV_COMPACT_MIGRATEPAGES: {
      const auto r = As<fl_compact_migratepages>(rec);
      j["nr_migrated"] = r.nr_migrated;
      j["nr_failed"] = r.nr_failed;
      break;
    }
    case FL_EV_COMPACT_OUTCOME: {
      const auto r = As<fl_compact_outcome>(rec);
      j["nid"] = r.nid;
      j["zone"] = ZoneLabelByIndex(header, r.nid, r.zone_idx);
      j["order"] = r.order;
      j["success"] = r.success;
      j["fragindex"] = r.fragindex == FL_FRAGINDEX_UNKNOWN ? nlohmann::json(nullptr)
                                                           : nlohmann::json(r.fragindex);
      j["ret"] = r.ret;
      break;
    }
    case FL_EV_MIGRATE_PAGES: {
      const auto r = As<fl_migrate_pages>(rec);
      j["succeeded"] = r.succeeded;
      j["failed"] = r.failed;
      j["thp_succeeded"] = r.thp_succeeded;
      j["thp_failed"] = r.thp_failed;
      j["thp_split"] = r.thp_split;
      j["large_folio_split"] = r.large_folio_split;
      j["mode"] = r.mode;
      j["reason"] = r.reason;
      break;
    }
    case FL_EV_DIRECT_RECLAIM_BEGIN:
    case FL_EV_DIRECT_RECLAIM_END: {
      const auto r = As<fl_direct_reclaim>(rec);
      if (rec.kind == FL_EV_DIRECT_RECLAIM_BEGIN) {
        j["gfp_flags"] = r.gfp_flags;
        j["order"] = r.order;
      } else {
        j["nr_reclaimed"] = r.nr_reclaimed;
      }
      j["pid"] = r.pid;
      break;
    }
    case FL_EV_KSWAPD_WAKE:
    case FL_EV_KSWAPD_SLEEP:
    case FL_EV_KSWAPD_WAKEUP: {
      const auto r = As<fl_kswapd>(rec);
      j["nid"] = r.nid;
      if (rec.kind != FL_EV_KSWAPD_SLEEP) {
        j["zid"] = r.zid;
        j["order"] = r.order;
      }
      if (rec.kind == FL_EV_KSWAPD_WAKEUP) j["gfp_flags"] = r.gfp_flags;
      break;
    }
    case FL_EV_THP_COLLAPSE: {
      const auto r = As<fl_thp_collapse>(rec);
      j["mm"] = r.mm;
      j["isolated"] = r.isolated;
      j["status"] = r.status;
      break;
    }
    case FL_EV_OOM_VICTIM: {
      const auto r = As<fl_oom_victim>(rec);
      j["total_vm"] = r.total_vm;
      j["anon_rss"] = r.anon_rss;
      j["file_rss"] = r.file_rss;
      j["pid"] = r.pid;
      j["oom_score_adj"] = r.oom_score_adj;
      // comm may hold any bytes: keep printable ASCII so the JSON stays valid UTF-8.
      std::string comm = BoundedString(r.comm, FL_COMM_LEN);
      for (char& c : comm) {
        if (c < 0x20 || c > 0x7e) c = '?';
      }
      j["comm"] = comm;
      break;
    }
    case FL_EV_AGGREGATE: {
      fl_aggregate r;
      std::memcpy(&r, &rec, sizeof(r));
      j["interval_ns"] = r.interval_ns;
      j["nr_zones"] = r.nr_zones;
      j["unknown_zone"] = r.unknown_zone;
      json alloc = json::object(), freed = json::object(), failed = json::object();
      auto row_nonzero = [](const uint32_t* row) {
        for (int o = 0; o < FL_MAX_ORDERS; ++o) {
          if (row[o] != 0) return true;
        }
        return false;
      };
      auto row_json = [](const uint32_t* row) {
        json arr = json::array();
        for (int o = 0; o < FL_MAX_ORDERS; ++o) arr.push_back(row[o]);
        return arr;
      };
      for (uint32_t z = 0; z < r.nr_zones && z < FL_MAX_ZONES; ++z) {
        json za = json::object(), zf = json::object();
        for (int m = 0; m < FL_MAX_MIGRATETYPES; ++m) {
          uint32_t arow[FL_MAX_ORDERS], frow[FL_MAX_ORDERS];
          for (int o = 0; o < FL_MAX_ORDERS; ++o) {
            arow[o] = r.alloc[z][o][m];
            frow[o] = r.free[z][o][m];
          }
          if (row_nonzero(arow)) za[mt(m)] = row_json(arow);
          if (row_nonzero(frow)) zf[mt(m)] = row_json(frow);
        }
        if (!za.empty()) alloc[ZoneLabel(header, z)] = za;
        if (!zf.empty()) freed[ZoneLabel(header, z)] = zf;
      }
      for (int m = 0; m < FL_MAX_MIGRATETYPES; ++m) {
        uint32_t row[FL_MAX_ORDERS];
        for (int o = 0; o < FL_MAX_ORDERS; ++o) row[o] = r.alloc_failed[o][m];
        if (row_nonzero(row)) failed[mt(m)] = row_json(row);
      }
      j["alloc"] = alloc;
      j["free"] = freed;
      j["alloc_failed"] = failed;
      break;
    }
    case FL_EV_SNAPSHOT_ZONE: {
      fl_snapshot_zone r;
      std::memcpy(&r, &rec, sizeof(r));
      j["nid"] = r.nid;
      j["zone_idx"] = r.zone_idx;
      j["zone"] = ZoneLabelByIndex(header, r.nid, r.zone_idx);
      j["flags"] = r.flags;
      j["nr_migratetypes"] = r.nr_migratetypes;
      j["start_pfn"] = r.start_pfn;
      j["spanned"] = r.spanned;
      j["present"] = r.present;
      j["managed"] = r.managed;
      j["nr_free_pages"] = r.nr_free_pages;
      j["wmark_min"] = r.wmark_min;
      j["wmark_low"] = r.wmark_low;
      j["wmark_high"] = r.wmark_high;
      j["wmark_promo"] = r.wmark_promo;
      j["boost"] = r.boost;
      json nr_free = json::array();
      for (int o = 0; o < FL_MAX_ORDERS; ++o) nr_free.push_back(r.nr_free[o]);
      j["nr_free"] = nr_free;
      json by_type = json::object(), blocks = json::object();
      for (size_t m = 0; m < nr_mt_cols; ++m) {
        json row = json::array();
        for (int o = 0; o < FL_MAX_ORDERS; ++o) row.push_back(r.free_by_type[o][m]);
        by_type[mt(static_cast<int64_t>(m))] = row;
        blocks[mt(static_cast<int64_t>(m))] = r.pageblocks[m];
      }
      j["free_by_type"] = by_type;
      j["pageblocks"] = blocks;
      break;
    }
    case FL_EV_COUNTERS: {
      fl_counters r;
      std::memcpy(&r, &rec, sizeof(r));
      json values = json::object();
      for (uint32_t id = 0; id < FL_CTR_MAX; ++id) {
        const char* name = CounterName(id);
        const bool present = (r.present_mask >> id) & 1;
        if (name == nullptr) continue;  // spare slots carry nothing yet
        values[name] = present ? json(r.value[id]) : json(nullptr);
      }
      j["values"] = values;
      break;
    }
    case FL_EV_PHASE: {
      const auto r = As<fl_phase>(rec);
      j["index"] = r.index;
      j["begin"] = r.begin;
      std::string label = BoundedString(r.label, FL_PHASE_LABEL_LEN);
      // Labels come from scenario files (UTF-8) but a corrupt record must not
      // make invalid JSON: replace control bytes, and let dump() replace bad UTF-8.
      for (char& c : label) {
        if (static_cast<unsigned char>(c) < 0x20) c = '?';
      }
      j["label"] = label;
      break;
    }
    case FL_EV_DROPS: {
      const auto r = As<fl_drops>(rec);
      j["lost"] = r.lost;
      break;
    }
    case FL_EV_PAGEBLOCK_MAP: {
      const auto r = As<fl_pageblock_map>(rec);
      j["nid"] = r.nid;
      j["zone_idx"] = r.zone_idx;
      j["zone"] = ZoneLabelByIndex(header, r.nid, r.zone_idx);
      j["first_pfn"] = r.first_pfn;
      j["count"] = r.count;
      const uint64_t pages_per_block = uint64_t{1} << (header.pageblock_order & 63);
      j["pfn_stride"] = pages_per_block;
      json types = json::array(), flags = json::array(), free_pages = json::array();
      const auto* entries = reinterpret_cast<const uint8_t*>(&rec) + sizeof(fl_pageblock_map);
      for (uint32_t i = 0; i < r.count; ++i) {
        fl_pageblock_entry e;
        std::memcpy(&e, entries + i * sizeof(e), sizeof(e));
        types.push_back(mt(e.migratetype));
        flags.push_back(e.flags);
        free_pages.push_back(e.free_pages);
      }
      j["migratetype"] = types;
      j["flags"] = flags;
      j["free_pages"] = free_pages;
      break;
    }
    case FL_EV_PROBE: {
      const auto r = As<fl_probe>(rec);
      static constexpr const char* kProbe[] = {"hugetlb", "thp", "order"};
      j["probe_kind"] =
          r.probe_kind < 3 ? std::string(kProbe[r.probe_kind]) : absl::StrCat("probe", r.probe_kind);
      j["order"] = r.order;
      j["requested"] = r.requested;
      j["obtained"] = r.obtained;
      j["duration_ns"] = r.duration_ns;
      break;
    }
    default:
      j["size"] = rec.size;
      break;
  }
  return j;
}

std::string JsonDump(const nlohmann::json& j, int indent) {
  return j.dump(indent, ' ', false, nlohmann::json::error_handler_t::replace);
}

nlohmann::json TraceHeaderToJson(const TraceHeader& h) {
  using nlohmann::json;
  json j = json::object();
  j["schema_major"] = h.schema_major;
  j["schema_minor"] = h.schema_minor;
  j["tool_version"] = h.tool_version;
  j["simulated"] = h.simulated;
  j["kernel_release"] = h.kernel_release;
  j["kernel_era"] = h.kernel_era;
  j["machine"] = h.machine;
  j["nr_cpus"] = h.nr_cpus;
  j["page_size"] = h.page_size;
  j["pageblock_order"] = h.pageblock_order;
  j["max_order"] = h.max_order;
  json zones = json::array();
  for (const ZoneLayout& z : h.zones) {
    zones.push_back({{"nid", z.nid},
                     {"zone_idx", z.zone_idx},
                     {"name", z.name},
                     {"start_pfn", z.start_pfn},
                     {"spanned", z.spanned},
                     {"present", z.present},
                     {"managed", z.managed}});
  }
  j["zones"] = zones;
  j["migratetype_names"] = h.migratetype_names;
  j["scenario_name"] = h.scenario_name;
  j["scenario_text"] = h.scenario_text;
  j["seed"] = h.seed;
  j["created_unix_s"] = h.created_unix_s;
  j["extra"] = h.extra;
  return j;
}

}  // namespace fraglab
