// Helpers shared by the trace file and export tests: a representative header
// and a set of records of many kinds, built deterministically.
#pragma once

#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "bpf/fraglab_events.h"
#include "common/event_sink.h"
#include "common/trace_file.h"
#include "common/trace_records.h"

namespace fraglab::testing {

inline TraceHeader SampleHeader() {
  TraceHeader h;
  h.tool_version = "test";
  h.simulated = true;
  h.kernel_release = "6.18.0-sim";
  h.kernel_era = "CLAIM";
  h.machine = "simulated";
  h.nr_cpus = 2;
  h.zones = {{0, 1, "DMA32", 4096, 1044480, 1044480, 1000000},
             {0, 2, "Normal", 1048576, 524288, 524288, 500000}};
  h.migratetype_names = {"Unmovable", "Movable", "Reclaimable", "HighAtomic", "Isolate"};
  h.scenario_name = "unit";
  h.scenario_text = "[scenario]\nname = \"unit\"\n";
  h.seed = 42;
  h.extra = {{"b", "2"}, {"a", "1"}};
  return h;
}

// A deterministic mix of kinds, `n` records, timestamps 1000*i.
inline void SampleRecords(EventSink& sink, int n) {
  for (int i = 0; i < n; ++i) {
    const uint64_t ts = 1000 * static_cast<uint64_t>(i);
    const uint16_t cpu = static_cast<uint16_t>(i % 2);
    absl::Status s;
    switch (i % 8) {
      case 0: {
        fl_page_alloc r;
        InitRecord(r, FL_EV_PAGE_ALLOC, ts, cpu);
        r.pfn = 0x100000 + i;
        r.order = i % 11;
        r.migratetype = i % 3;
        r.gfp_flags = 0xcc0;
        s = sink.Emit(r.hdr);
        break;
      }
      case 1: {
        fl_page_free r;
        InitRecord(r, FL_EV_PAGE_FREE, ts, cpu);
        r.pfn = 0x100000 + i;
        r.order = i % 11;
        s = sink.Emit(r.hdr);
        break;
      }
      case 2: {
        fl_extfrag r;
        InitRecord(r, FL_EV_EXTFRAG, ts, cpu);
        r.pfn = 0x120000 + i;
        r.alloc_order = 0;
        r.fallback_order = 3;
        r.alloc_migratetype = 0;
        r.fallback_migratetype = 1;
        r.fragmenting = 1;
        r.extfrag_class = FL_EXTFRAG_STEAL;
        s = sink.Emit(r.hdr);
        break;
      }
      case 3: {
        fl_phase r;
        InitRecord(r, FL_EV_PHASE, ts, 0);
        r.index = static_cast<uint32_t>(i / 8);
        r.begin = (i / 8) % 2 == 0;
        std::snprintf(r.label, sizeof(r.label), "phase-%d", i / 16);
        s = sink.Emit(r.hdr);
        break;
      }
      case 4: {
        fl_snapshot_zone r;
        InitRecord(r, FL_EV_SNAPSHOT_ZONE, ts, 0);
        r.nid = 0;
        r.zone_idx = 2;
        r.nr_migratetypes = 5;
        r.nr_free_pages = 1000 + i;
        for (int o = 0; o < FL_MAX_ORDERS; ++o) {
          r.nr_free[o] = static_cast<uint64_t>(o + i);
          r.free_by_type[o][1] = static_cast<uint32_t>(o + i);
        }
        r.pageblocks[1] = 1000;
        r.pageblocks[0] = 24;
        s = sink.Emit(r.hdr);
        break;
      }
      case 5: {
        // Variable size: count varies so the padding path is exercised.
        const uint32_t count = static_cast<uint32_t>(1 + i % 5);
        std::vector<uint64_t> buf((PageblockMapSize(count)) / 8, 0);
        auto* m = reinterpret_cast<fl_pageblock_map*>(buf.data());
        m->hdr.kind = FL_EV_PAGEBLOCK_MAP;
        m->hdr.size = static_cast<uint32_t>(PageblockMapSize(count));
        m->hdr.ts_ns = ts;
        m->nid = 0;
        m->zone_idx = 2;
        m->first_pfn = 0x100000;
        m->count = count;
        auto* e = reinterpret_cast<fl_pageblock_entry*>(m + 1);
        for (uint32_t k = 0; k < count; ++k) {
          e[k].migratetype = static_cast<uint8_t>(k % 3);
          e[k].free_pages = static_cast<uint16_t>(k * 10);
        }
        s = sink.Emit(m->hdr);
        break;
      }
      case 6: {
        fl_counters r;
        InitRecord(r, FL_EV_COUNTERS, ts, 0);
        r.present_mask = (1ull << FL_CTR_NR_FREE_PAGES) | (1ull << FL_CTR_COMPACT_STALL);
        r.value[FL_CTR_NR_FREE_PAGES] = 5000 + i;
        r.value[FL_CTR_COMPACT_STALL] = i;
        s = sink.Emit(r.hdr);
        break;
      }
      default: {
        fl_compact_begin_end r;
        InitRecord(r, (i / 8) % 2 ? FL_EV_COMPACT_END : FL_EV_COMPACT_BEGIN, ts, cpu);
        r.zone_start = 0x100000;
        r.zone_end = 0x180000;
        r.status = 8;
        s = sink.Emit(r.hdr);
        break;
      }
    }
    if (!s.ok()) std::abort();
  }
}

inline std::string ReadFileBytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Replaces the file by a new one: unlinking first avoids ext4's flush on
// close of a file truncated to zero (auto_da_alloc), which made loops slow.
inline void WriteFileBytes(const std::string& path, const std::string& bytes) {
  ::unlink(path.c_str());
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

// A fresh directory under TMPDIR (or /tmp), removed by the caller's TearDown.
inline std::string MakeTempDir() {
  const char* base = std::getenv("TMPDIR");
  std::string templ = std::string(base ? base : "/tmp") + "/fraglab_trace_test.XXXXXX";
  std::vector<char> buf(templ.begin(), templ.end());
  buf.push_back('\0');
  if (mkdtemp(buf.data()) == nullptr) std::abort();
  return std::string(buf.data());
}

}  // namespace fraglab::testing
