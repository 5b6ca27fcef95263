#include "common/snapshot_render.h"

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/frag_index.h"

namespace fraglab::snapshot {

namespace {

// Pages -> MiB for the snapshot's page size.
double PagesToMiB(const MachineSnapshot& s, uint64_t pages) {
  return static_cast<double>(pages) * s.page_size / (1024.0 * 1024.0);
}

}  // namespace

std::string ShortTypeName(const std::string& name) {
  if (name == "Unmovable") return "Unmov";
  if (name == "Movable") return "Movab";
  if (name == "Reclaimable") return "Recl";
  if (name == "HighAtomic") return "HiAtom";
  if (name == "Isolate") return "Isol";
  if (name == "Reserve") return "Resv";
  return name.substr(0, 7);
}

std::string SnapshotJson(const MachineSnapshot& s, int indent) {
  // ordered_json keeps keys in the order written, which reads better than sorted.
  using json = nlohmann::ordered_json;
  json j;
  j["kernel_release"] = s.kernel_release;
  j["kernel_era"] = KernelEraForRelease(s.kernel_release);
  j["monotonic_ns"] = s.monotonic_ns;
  j["root"] = s.root;
  j["page_size"] = s.page_size;
  j["pageblock_order"] = s.pageblock_order;
  j["num_orders"] = s.num_orders;
  j["nr_cpus"] = s.nr_cpus;
  j["migratetypes"] = s.migratetype_names;
  j["migratetypes_inferred"] = s.migratetypes_inferred;
  j["pagetypeinfo_error"] = s.pagetypeinfo_error.empty() ? json(nullptr) : json(s.pagetypeinfo_error);
  json zones = json::array();
  for (const ZoneSnapshot& z : s.zones) {
    json jz;
    jz["nid"] = z.nid;
    jz["zone"] = z.name;
    jz["zone_idx"] = z.zone_idx;
    jz["start_pfn"] = z.start_pfn;
    jz["spanned"] = z.spanned;
    jz["present"] = z.present;
    jz["managed"] = z.managed;
    jz["free_pages"] = z.free_pages;
    jz["nr_free_pages"] = z.nr_free_pages;
    jz["nr_free_pages_blocks"] = z.nr_free_pages_blocks ? json(*z.nr_free_pages_blocks) : json(nullptr);
    jz["buddy_free_pages"] = z.BuddyFreePages();
    jz["pcp_pages"] = z.pcp_pages;
    jz["watermarks"] = {{"min", z.wmark_min},
                        {"low", z.wmark_low},
                        {"high", z.wmark_high},
                        {"promo", z.wmark_promo ? json(*z.wmark_promo) : json(nullptr)},
                        {"boost", z.boost}};
    jz["protection"] = z.protection;
    jz["nr_free"] = z.nr_free;
    if (z.HasTypes()) {
      json by_type = json::object(), sat = json::object(), blocks = json::object();
      for (size_t t = 0; t < z.free_by_type.size() && t < s.migratetype_names.size(); ++t) {
        by_type[s.migratetype_names[t]] = z.free_by_type[t];
        std::vector<size_t> saturated_orders;
        for (size_t k = 0; k < z.saturated[t].size(); ++k) {
          if (z.saturated[t][k]) saturated_orders.push_back(k);
        }
        if (!saturated_orders.empty()) sat[s.migratetype_names[t]] = saturated_orders;
        if (t < z.pageblocks.size()) blocks[s.migratetype_names[t]] = z.pageblocks[t];
      }
      jz["free_by_type"] = by_type;
      jz["saturated_orders"] = sat;
      jz["pageblocks"] = blocks;
      if (!z.mixed_blocks.empty()) {
        json mixed = json::object();
        for (size_t t = 0; t < z.mixed_blocks.size() && t < s.migratetype_names.size(); ++t) {
          mixed[s.migratetype_names[t]] = z.mixed_blocks[t];
        }
        jz["mixed_blocks"] = mixed;
      }
    }
    std::vector<std::string> ut, ft;
    for (int v : z.unusable_index) ut.push_back(procfs::FormatUnusableIndex(v));
    for (int v : z.fragmentation_index) ft.push_back(procfs::FormatFragmentationIndex(v));
    jz["unusable_index_milli"] = z.unusable_index;
    jz["unusable_index_text"] = ut;
    jz["fragmentation_index_milli"] = z.fragmentation_index;
    jz["fragmentation_index_text"] = ft;
    jz["compaction_score"] = z.compaction_score;
    zones.push_back(std::move(jz));
  }
  j["zones"] = std::move(zones);
  json counters = json::object();
  const fl_counters rec = CountersRecord(s);
  for (int id = 0; id < FL_CTR_MAX; ++id) {
    if (rec.present_mask & (uint64_t{1} << id)) counters[CounterName(id)] = rec.value[id];
  }
  j["counters"] = counters;
  json mem = json::object();
  for (const char* key : {"MemTotal", "MemFree", "MemAvailable", "Cached", "AnonPages", "Slab",
                          "SReclaimable", "SUnreclaim", "PageTables", "AnonHugePages", "CmaTotal",
                          "CmaFree", "HugePages_Total", "HugePages_Free", "Hugepagesize"}) {
    if (auto v = s.meminfo.Get(key)) mem[key] = *v;
  }
  j["meminfo"] = mem;
  return j.dump(indent < 0 ? -1 : indent);
}

std::string SnapshotText(const MachineSnapshot& s) {
  std::string out;
  absl::StrAppend(&out, "kernel ", s.kernel_release.empty() ? "(unknown)" : s.kernel_release,
                  "  pageblock order ", s.pageblock_order, "  page size ", s.page_size, "\n");
  absl::StrAppend(&out, "migratetypes:");
  for (size_t t = 0; t < s.migratetype_names.size(); ++t) {
    absl::StrAppend(&out, " ", t, "=", s.migratetype_names[t]);
  }
  if (s.migratetypes_inferred) absl::StrAppend(&out, " (inferred)");
  absl::StrAppend(&out, "\n");
  if (!s.pagetypeinfo_error.empty()) {
    absl::StrAppend(&out, "(no per-migratetype data: ", s.pagetypeinfo_error, ")\n");
  }
  const std::vector<std::string>& names = s.migratetype_names;
  for (const ZoneSnapshot& z : s.zones) {
    absl::StrAppend(&out, "\n");
    absl::StrAppendFormat(&out, "Node %d, zone %s (idx %d)  pfns [0x%x, 0x%x)  present %u  managed %u (%.0f MiB)\n",
                          z.nid, z.name, z.zone_idx, z.start_pfn, z.start_pfn + z.spanned, z.present,
                          z.managed, PagesToMiB(s, z.managed));
    absl::StrAppendFormat(&out, "  free %u pages (%.1f MiB) in buddy lists, %u on pcp lists", z.BuddyFreePages(),
                          PagesToMiB(s, z.BuddyFreePages()), z.pcp_pages);
    if (z.nr_free_pages_blocks) {
      absl::StrAppendFormat(&out, ", %u in blocks >= order %d", *z.nr_free_pages_blocks, s.pageblock_order);
    }
    absl::StrAppend(&out, "\n");
    absl::StrAppendFormat(&out, "  watermarks min %u  low %u  high %u", z.wmark_min, z.wmark_low, z.wmark_high);
    if (z.wmark_promo) absl::StrAppendFormat(&out, "  promo %u", *z.wmark_promo);
    absl::StrAppendFormat(&out, "  boost %u  (pages)  compaction score %d\n", z.boost, z.compaction_score);

    // Order table.
    absl::StrAppendFormat(&out, "  %5s %8s %9s", "order", "blocks", "free MiB");
    const bool types = z.HasTypes();
    if (types) {
      for (const std::string& n : names) absl::StrAppendFormat(&out, " %7s", ShortTypeName(n));
    }
    absl::StrAppendFormat(&out, " %8s %8s\n", "unusable", "fragidx");
    for (size_t k = 0; k < z.nr_free.size(); ++k) {
      absl::StrAppendFormat(&out, "  %5d %8u %9.1f", k, z.nr_free[k], PagesToMiB(s, z.nr_free[k] << k));
      if (types) {
        for (size_t t = 0; t < z.free_by_type.size(); ++t) {
          if (z.saturated[t][k]) {
            absl::StrAppendFormat(&out, " >%6u", z.free_by_type[t][k]);
          } else {
            absl::StrAppendFormat(&out, " %7u", z.free_by_type[t][k]);
          }
        }
      }
      absl::StrAppendFormat(&out, " %8s %8s\n", procfs::FormatUnusableIndex(z.unusable_index[k]),
                            procfs::FormatFragmentationIndex(z.fragmentation_index[k]));
    }
    if (types && !z.pageblocks.empty()) {
      uint64_t total = 0;
      absl::StrAppend(&out, "  pageblocks");
      for (size_t t = 0; t < z.pageblocks.size() && t < names.size(); ++t) {
        absl::StrAppend(&out, "  ", ShortTypeName(names[t]), " ", z.pageblocks[t]);
        total += z.pageblocks[t];
      }
      absl::StrAppend(&out, "  (", total, " total)\n");
    }
    if (types && !z.mixed_blocks.empty()) {
      absl::StrAppend(&out, "  mixed blocks");
      for (size_t t = 0; t < z.mixed_blocks.size() && t < names.size(); ++t) {
        absl::StrAppend(&out, "  ", ShortTypeName(names[t]), " ", z.mixed_blocks[t]);
      }
      absl::StrAppend(&out, "\n");
    }
  }
  return out;
}

}  // namespace fraglab::snapshot
