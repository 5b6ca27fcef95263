// Narrator: receives every decision the allocator model takes, as it takes
// it, in structured form plus a plain-words sentence. `fraglab explain`
// renders these; tests may record them. When PageAllocator has no narrator
// the decision objects are never built (zero cost when off).
#pragma once

#include <cstdint>
#include <string>

#include "sim/types.h"

namespace fraglab::sim {

enum class DecisionKind : uint8_t {
  kAllocBegin,       // a request enters the allocator
  kZoneSkip,         // a zone fails its watermark check and is skipped
  kZoneTry,          // a zone passes the watermark check
  kPcpHit,           // page taken from a per-CPU list
  kPcpRefill,        // per-CPU list refilled from the buddy lists
  kListSearch,       // buddy lists searched for a type (found or not)
  kSplit,            // a block split down to the requested order
  kFallbackCandidate,// a foreign list's head considered for fallback
  kClaimPredicate,   // can_claim / should_try_claim_block evaluated
  kBlockCount,       // free + alike pages of a candidate's pageblock counted
  kConvert,          // a pageblock changes type
  kSteal,            // pages taken from a foreign block without conversion
  kBoost,            // watermark boost raised
  kNoFragment,       // ALLOC_NOFRAGMENT set or dropped
  kHighAtomic,       // HIGHATOMIC reserve or release
  kMerge,            // freed block merged with its buddy
  kPlace,            // freed block placed at list head or tail
  kPcpFree,          // page freed onto a per-CPU list
  kPcpDrain,         // pages returned from per-CPU lists to the buddy
  kAllocEnd,         // result of a request
  kFree,             // a free enters the allocator
  // Compaction (sim/compaction.cc, reference §6).
  kCompactBegin,     // a compaction run starts in a zone (scanner positions)
  kCompactSuitable,  // compaction_suitable verdict for a zone
  kCompactIsolate,   // a scanner isolated pages from a range
  kCompactMigrate,   // an allocated block moved (pfn -> pfn2 in value), or failed to
  kCompactCapture,   // a freed block captured for the compacting allocation
  kCompactEnd,       // a compaction run ends (value = compact_result)
  kCompactDefer,     // deferral state changed or a deferred zone skipped
  kKcompactd,        // kcompactd woken, running, or proactive compaction

  // Reclaim and the slow path (sim/page_allocator.cc, reference §5).
  kSlowPath,         // the fast path failed: the slow path starts (flags, kswapd woken)
  kDirectReclaim,    // direct reclaim ran (value = pages freed)
  kKswapd,           // kswapd woken for a node, or ran (value = pages it reclaimed)
  kRetry,            // the slow path retries or gives up (text says which rule decided)
};

// One decision. Fields not relevant to the kind are -1 / kNoPfn.
struct Decision {
  DecisionKind kind;
  uint64_t time = 0;       // logical time of the operation
  int cpu = -1;
  int zone = -1;           // index in PageAllocator's zone table
  uint64_t pfn = kNoPfn;
  int order = -1;
  int order2 = -1;         // second order (fallback order, merged order...)
  int type = -1;           // kernel migratetype number (request / list)
  int type2 = -1;          // second type (fallback type, new block type)
  int64_t value = -1;      // a count (free pages, boost, pages moved...)
  int64_t value2 = -1;     // a second count (alike pages, threshold...)
  bool yes = false;        // outcome of a predicate
  std::string text;        // the same in plain words
};

class Narrator {
 public:
  virtual ~Narrator() = default;
  // Called synchronously, in decision order.
  virtual void Narrate(const Decision& d) = 0;
};

}  // namespace fraglab::sim
