// Helpers shared by the simulator's tests and benchmarks: a narrator that
// records decisions, and compact views of emitted events. Header-only so no
// production target depends on it.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/str_format.h"
#include "common/event_sink.h"
#include "sim/narrator.h"

namespace fraglab::sim::testing {

// Keeps every decision.
class RecordingNarrator final : public Narrator {
 public:
  void Narrate(const Decision& d) override { decisions.push_back(d); }
  std::vector<Decision> decisions;
};

// One event as a short line, e.g. "extfrag pfn=0x1 ao=0 fo=1 at=1 ft=0 co=0 cls=2".
inline std::string DescribeEvent(const VectorSink& sink, size_t i) {
  const fl_record_header& h = sink.at(i);
  switch (h.kind) {
    case FL_EV_PAGE_ALLOC: {
      auto e = sink.as<fl_page_alloc>(i);
      return absl::StrFormat("alloc pfn=0x%x order=%d mt=%d", e.pfn, e.order, e.migratetype);
    }
    case FL_EV_PAGE_FREE: {
      auto e = sink.as<fl_page_free>(i);
      return absl::StrFormat("free pfn=0x%x order=%d", e.pfn, e.order);
    }
    case FL_EV_EXTFRAG: {
      auto e = sink.as<fl_extfrag>(i);
      return absl::StrFormat("extfrag pfn=0x%x ao=%d fo=%d at=%d ft=%d co=%d cls=%d", e.pfn, e.alloc_order,
                             e.fallback_order, e.alloc_migratetype, e.fallback_migratetype,
                             e.change_ownership, e.extfrag_class);
    }
    case FL_EV_ZONE_LOCKED: {
      auto e = sink.as<fl_zone_locked>(i);
      return absl::StrFormat("zone_locked pfn=0x%x order=%d mt=%d refill=%d", e.pfn, e.order, e.migratetype,
                             e.percpu_refill);
    }
    case FL_EV_PCP_DRAIN: {
      auto e = sink.as<fl_pcp_drain>(i);
      return absl::StrFormat("drain pfn=0x%x order=%d mt=%d", e.pfn, e.order, e.migratetype);
    }
    default:
      return absl::StrFormat("kind=%d", h.kind);
  }
}

inline std::vector<std::string> DescribeEvents(const VectorSink& sink) {
  std::vector<std::string> out;
  for (size_t i = 0; i < sink.size(); ++i) out.push_back(DescribeEvent(sink, i));
  return out;
}

}  // namespace fraglab::sim::testing
