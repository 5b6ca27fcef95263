#include "analysis/metrics.h"

#include <cstring>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"

namespace fraglab::analysis {
namespace {

template <typename T>
T Load(const fl_record_header& rec) {
  T out;
  std::memcpy(&out, &rec, sizeof(T));
  return out;
}

std::string ZoneName(const TraceHeader& header, int nid, int zone_idx) {
  return ZoneLabelByIndex(header, nid, zone_idx);
}

}  // namespace

MetricsBuilder::MetricsBuilder(TraceHeader header) {
  metrics_.header = std::move(header);
  metrics_.phases.emplace_back();  // "start"
}

void MetricsBuilder::StartPhase(int index, const std::string& label, uint64_t ts) {
  PhaseMetrics& prev = current();
  if (!prev.ended) prev.end_ts = ts;
  prev.zones = zones_;
  PhaseMetrics next;
  next.index = index;
  next.label = label;
  next.begin_ts = ts;
  next.end_ts = ts;
  metrics_.phases.push_back(std::move(next));
  phase_start_counters_ = last_counters_;
}

void MetricsBuilder::ApplyCounters(const fl_counters& c) {
  if (!have_counters_) {
    phase_start_counters_ = c;
    have_counters_ = true;
  }
  last_counters_ = c;
  PhaseMetrics& p = current();
  p.counter_delta.clear();
  for (int i = 0; i < FL_CTR_MAX; ++i) {
    const uint64_t bit = 1ull << i;
    if (!(c.present_mask & bit) || !(phase_start_counters_.present_mask & bit)) continue;
    p.counter_delta[i] = c.value[i] - phase_start_counters_.value[i];
  }
}

absl::Status MetricsBuilder::Emit(const fl_record_header& rec) {
  ++metrics_.records;
  PhaseMetrics& p = current();
  ++p.records;
  if (rec.ts_ns > p.end_ts && !p.ended) p.end_ts = rec.ts_ns;
  switch (rec.kind) {
    case FL_EV_PHASE: {
      auto ph = Load<fl_phase>(rec);
      std::string label(ph.label, strnlen(ph.label, sizeof(ph.label)));
      if (ph.begin) {
        StartPhase(static_cast<int>(ph.index), label, rec.ts_ns);
      } else {
        p.end_ts = rec.ts_ns;
        p.ended = true;
        p.zones = zones_;
      }
      break;
    }
    case FL_EV_SNAPSHOT_ZONE: {
      auto s = Load<fl_snapshot_zone>(rec);
      ZoneState z;
      z.nid = s.nid;
      z.zone_idx = s.zone_idx;
      z.managed = s.managed;
      z.nr_free_pages = s.nr_free_pages;
      z.boost = s.boost;
      z.wmark_min = s.wmark_min;
      z.wmark_low = s.wmark_low;
      z.wmark_high = s.wmark_high;
      z.has_types = !(s.flags & FL_SNAP_NO_TYPES);
      for (int o = 0; o < FL_MAX_ORDERS; ++o) {
        z.nr_free[o] = s.nr_free[o];
        for (int t = 0; t < FL_MAX_MIGRATETYPES; ++t) z.free_by_type[o][t] = s.free_by_type[o][t];
      }
      for (int t = 0; t < FL_MAX_MIGRATETYPES; ++t) z.pageblocks[t] = s.pageblocks[t];
      zones_[{z.nid, z.zone_idx}] = z;
      if (!p.ended) p.zones = zones_;
      break;
    }
    case FL_EV_COUNTERS:
      if (!p.ended) ApplyCounters(Load<fl_counters>(rec));
      break;
    case FL_EV_EXTFRAG: {
      auto e = Load<fl_extfrag>(rec);
      p.fallbacks[{e.extfrag_class, e.alloc_migratetype, e.fallback_migratetype}]++;
      break;
    }
    case FL_EV_PAGE_ALLOC: {
      auto a = Load<fl_page_alloc>(rec);
      if (a.order < FL_MAX_ORDERS) {
        if (a.pfn == FL_NO_PFN) {
          p.alloc_failures_by_order[a.order]++;
        } else {
          p.allocs_by_order[a.order]++;
        }
      }
      break;
    }
    case FL_EV_PAGE_FREE: {
      auto f = Load<fl_page_free>(rec);
      if (f.order < FL_MAX_ORDERS) p.frees_by_order[f.order]++;
      break;
    }
    case FL_EV_AGGREGATE: {
      // Large record: read the counts in place through memcpy of each row.
      const auto* base = reinterpret_cast<const uint8_t*>(&rec);
      fl_aggregate agg;
      std::memcpy(&agg, base, sizeof(agg));
      const uint32_t zones = agg.nr_zones < FL_MAX_ZONES ? agg.nr_zones : FL_MAX_ZONES;
      for (uint32_t z = 0; z < zones; ++z) {
        for (int o = 0; o < FL_MAX_ORDERS; ++o) {
          for (int t = 0; t < FL_MAX_MIGRATETYPES; ++t) {
            p.allocs_by_order[o] += agg.alloc[z][o][t];
            p.frees_by_order[o] += agg.free[z][o][t];
          }
        }
      }
      for (int o = 0; o < FL_MAX_ORDERS; ++o) {
        for (int t = 0; t < FL_MAX_MIGRATETYPES; ++t) {
          p.alloc_failures_by_order[o] += agg.alloc_failed[o][t];
        }
      }
      break;
    }
    case FL_EV_COMPACT_TRY: {
      auto t = Load<fl_compact_try>(rec);
      p.compaction_by_order[t.order].direct_attempts++;
      break;
    }
    case FL_EV_COMPACT_DEFERRED: {
      auto d = Load<fl_compact_defer>(rec);
      p.compaction_by_order[d.order].deferred++;
      break;
    }
    case FL_EV_COMPACT_SUITABLE: {
      auto r = Load<fl_compact_result>(rec);
      p.compaction_by_order[r.order].suitable_by_result[r.ret]++;
      break;
    }
    case FL_EV_COMPACT_FINISHED: {
      auto r = Load<fl_compact_result>(rec);
      p.compaction_by_order[r.order].finished_by_result[r.ret]++;
      break;
    }
    case FL_EV_KCOMPACTD_WAKEUP: {
      auto k = Load<fl_kcompactd>(rec);
      p.compaction_by_order[k.order].kcompactd_wakeups++;
      break;
    }
    case FL_EV_COMPACT_END: {
      auto e = Load<fl_compact_begin_end>(rec);
      p.compaction_end_status[e.status]++;
      break;
    }
    case FL_EV_MIGRATE_PAGES: {
      auto m = Load<fl_migrate_pages>(rec);
      p.migrate_succeeded += m.succeeded;
      p.migrate_failed += m.failed;
      break;
    }
    case FL_EV_DIRECT_RECLAIM_BEGIN:
      p.direct_reclaims++;
      break;
    case FL_EV_KSWAPD_WAKE:
      p.kswapd_wakes++;
      break;
    case FL_EV_OOM_VICTIM:
      p.oom_victims++;
      break;
    case FL_EV_THP_COLLAPSE:
      p.thp_collapses++;
      break;
    case FL_EV_PROBE: {
      auto pr = Load<fl_probe>(rec);
      p.probes.push_back({pr.probe_kind, pr.order, pr.requested, pr.obtained, pr.duration_ns});
      break;
    }
    case FL_EV_DROPS: {
      auto d = Load<fl_drops>(rec);
      drops_by_cpu_[rec.cpu] = d.lost;
      break;
    }
    default:
      break;
  }
  return absl::OkStatus();
}

TraceMetrics MetricsBuilder::Finish() {
  PhaseMetrics& p = current();
  if (!p.ended) p.zones = zones_;
  metrics_.drops = 0;
  for (const auto& [cpu, lost] : drops_by_cpu_) metrics_.drops += lost;
  TraceMetrics out = std::move(metrics_);
  metrics_ = TraceMetrics();
  metrics_.phases.emplace_back();
  zones_.clear();
  drops_by_cpu_.clear();
  have_counters_ = false;
  return out;
}

std::string PhaseKey(const PhaseMetrics& p) {
  if (p.index < 0) return "start";
  // Scenario labels already start with the phase index ("3:release");
  // other producers' labels get it prefixed so names stay unique.
  const std::string prefix = absl::StrCat(p.index, ":");
  const std::string key = absl::StartsWith(p.label, prefix) ? p.label : prefix + p.label;
  return absl::StrReplaceAll(key, {{"/", " of "}});
}

std::map<std::string, double> FlattenMetrics(const TraceMetrics& m) {
  std::map<std::string, double> out;
  const TraceHeader& h = m.header;
  for (const PhaseMetrics& p : m.phases) {
    const std::string ph = PhaseKey(p);
    for (const auto& [key, z] : p.zones) {
      const std::string zn = ZoneName(h, z.nid, z.zone_idx);
      uint64_t high_order = 0;
      for (int o = 0; o < FL_MAX_ORDERS; ++o) {
        out[absl::StrCat(ph, "/free_blocks/", zn, "/order", o)] = static_cast<double>(z.nr_free[o]);
        if (o >= 9) high_order += z.nr_free[o] << (o - 9);
      }
      out[absl::StrCat(ph, "/free_pageblocks_order9plus/", zn)] = static_cast<double>(high_order);
      out[absl::StrCat(ph, "/free_pages/", zn)] = static_cast<double>(z.nr_free_pages);
      if (z.has_types) {
        for (size_t t = 0; t < h.migratetype_names.size() && t < FL_MAX_MIGRATETYPES; ++t) {
          out[absl::StrCat(ph, "/pageblocks/", zn, "/", h.migratetype_names[t])] = z.pageblocks[t];
        }
      }
    }
    uint64_t total = 0;
    std::map<int, uint64_t> by_class;
    for (const auto& [key, n] : p.fallbacks) {
      const auto& [cls, from, to] = key;
      out[absl::StrCat(ph, "/fallbacks/", ExtfragClassLabel(cls), "/", MigratetypeName(h, from),
                       "->", MigratetypeName(h, to))] = static_cast<double>(n);
      by_class[cls] += n;
      total += n;
    }
    for (int cls : {FL_EXTFRAG_CLAIM, FL_EXTFRAG_STEAL, FL_EXTFRAG_POLLUTE}) {
      out[absl::StrCat(ph, "/fallbacks/", ExtfragClassLabel(cls))] =
          static_cast<double>(by_class[cls]);
    }
    out[absl::StrCat(ph, "/fallbacks/total")] = static_cast<double>(total);
    for (const auto& [order, c] : p.compaction_by_order) {
      const std::string base = absl::StrCat(ph, "/compaction/order", order);
      out[base + "/direct_attempts"] = static_cast<double>(c.direct_attempts);
      out[base + "/deferred"] = static_cast<double>(c.deferred);
    }
    for (const auto& [status, n] : p.compaction_end_status) {
      out[absl::StrCat(ph, "/compaction/end/", CompactResultName(status))] = static_cast<double>(n);
    }
    for (size_t i = 0; i < p.probes.size(); ++i) {
      const ProbeResult& pr = p.probes[i];
      static const char* kKinds[] = {"hugetlb", "thp", "order"};
      const char* kind = pr.kind < 3 ? kKinds[pr.kind] : "probe";
      const std::string base = absl::StrCat(ph, "/probe/", kind, "/order", pr.order,
                                            p.probes.size() > 1 ? absl::StrCat("#", i) : "");
      out[base + "/obtained"] = static_cast<double>(pr.obtained);
      out[base + "/obtained_fraction"] =
          pr.requested ? static_cast<double>(pr.obtained) / static_cast<double>(pr.requested) : 0;
    }
  }
  out["trace/drops"] = static_cast<double>(m.drops);
  return out;
}

nlohmann::json MetricsToJson(const TraceMetrics& m) {
  nlohmann::json j;
  j["scenario"] = m.header.scenario_name;
  j["simulated"] = m.header.simulated;
  j["kernel_release"] = m.header.kernel_release;
  j["kernel_era"] = m.header.kernel_era;
  j["seed"] = m.header.seed;
  j["records"] = m.records;
  j["drops"] = m.drops;
  nlohmann::json phases = nlohmann::json::array();
  for (const PhaseMetrics& p : m.phases) {
    nlohmann::json jp;
    jp["index"] = p.index;
    jp["label"] = p.label;
    jp["begin_ts"] = p.begin_ts;
    jp["end_ts"] = p.end_ts;
    nlohmann::json zones = nlohmann::json::array();
    for (const auto& [key, z] : p.zones) {
      nlohmann::json jz;
      jz["zone"] = ZoneName(m.header, z.nid, z.zone_idx);
      jz["nr_free"] = z.nr_free;
      jz["free_pages"] = z.nr_free_pages;
      jz["boost"] = z.boost;
      if (z.has_types) {
        nlohmann::json pb;
        for (size_t t = 0; t < m.header.migratetype_names.size() && t < FL_MAX_MIGRATETYPES; ++t) {
          pb[m.header.migratetype_names[t]] = z.pageblocks[t];
        }
        jz["pageblocks"] = pb;
      }
      zones.push_back(jz);
    }
    jp["zones"] = zones;
    nlohmann::json fb = nlohmann::json::array();
    for (const auto& [key, n] : p.fallbacks) {
      const auto& [cls, from, to] = key;
      fb.push_back({{"class", ExtfragClassLabel(cls)},
                    {"from", MigratetypeName(m.header, from)},
                    {"to", MigratetypeName(m.header, to)},
                    {"count", n}});
    }
    jp["fallbacks"] = fb;
    nlohmann::json probes = nlohmann::json::array();
    for (const ProbeResult& pr : p.probes) {
      probes.push_back({{"kind", pr.kind},
                        {"order", pr.order},
                        {"requested", pr.requested},
                        {"obtained", pr.obtained},
                        {"duration_ns", pr.duration_ns}});
    }
    jp["probes"] = probes;
    nlohmann::json counters;
    for (const auto& [id, delta] : p.counter_delta) counters[std::to_string(id)] = delta;
    jp["counter_delta"] = counters;
    phases.push_back(jp);
  }
  j["phases"] = phases;
  nlohmann::json flat;
  for (const auto& [name, v] : FlattenMetrics(m)) flat[name] = v;
  j["metrics"] = flat;
  return j;
}

}  // namespace fraglab::analysis
