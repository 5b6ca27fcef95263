#include "sim/replay.h"

#include <algorithm>
#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "common/status.h"
#include "common/trace_records.h"

namespace fraglab::sim {
namespace {

// Unexplained-event kinds (keys of ReplayResult::unexplained).
constexpr char kKindFreeUntraced[] =
    "free of a page not allocated in the trace (allocated before it started, by alloc_pages_bulk, or as a "
    "compaction target)";
constexpr char kKindFreeStartState[] =
    "free of a page allocated before the trace: the model's start-state page at that pfn freed";
constexpr char kKindBatchedFreed[] = "batched free of a page already freed";
constexpr char kKindFreePart[] = "free of part of a traced block (split_page): model block split";
constexpr char kKindFreeLarger[] = "free larger than the traced allocation(s) it covers";
constexpr char kKindRealloc[] =
    "allocation of pages the replay still held (their free was not traced): freed in the model first";
constexpr char kKindKernelFailed[] = "failed kernel allocation (not replayed)";
constexpr char kKindOutsideZones[] = "alloc/free outside every modelled zone";
constexpr char kKindRejected[] = "request the model rejects (gfp, order or CPU invalid for it)";
constexpr char kKindPcpRefill[] = "pcp refill from the buddy (zone_locked percpu_refill; the model refills its own)";
constexpr char kKindZoneLocked[] = "buddy removal (zone_locked; the model decides its own)";
constexpr char kKindPcpDrain[] = "pcp drain to the buddy (the model drains its own)";
constexpr char kKindCompactMigrated[] = "pages migrated by kernel compaction (targets allocated untraced)";
constexpr char kKindBackground[] = "kernel compaction/reclaim/THP/OOM event (background work, not replayed)";
constexpr char kKindDrops[] = "events lost by the recorder";
constexpr char kKindHotplug[] = "zone size change between snapshots (memory hotplug, virtio-mem)";
constexpr char kKindBeforeStart[] = "record before the start snapshot (not replayed)";
constexpr char kKindExtfragOrphan[] = "kernel fallback with no later allocation on its CPU";

template <typename T>
absl::StatusOr<T> Typed(const fl_record_header& rec, uint64_t index) {
  if (rec.size < sizeof(T)) {
    return absl::InvalidArgumentError(absl::StrFormat("record %d (%s): %d bytes, expected at least %d", index,
                                                      RecordKindName(rec.kind), rec.size, sizeof(T)));
  }
  T out;
  std::memcpy(&out, &rec, sizeof(T));
  return out;
}

OwnerKind OwnerForRequest(uint64_t gfp_flags) {
  switch (GfpMigratetype(gfp_flags)) {
    case kMovable:
      return OwnerKind::kAnon;
    case kReclaimable:
      return OwnerKind::kSlabReclaimable;
    default:
      return OwnerKind::kKernel;
  }
}

}  // namespace

// Collects the model's extfrag events of the call in progress and forwards
// everything to the user's sink.
class TraceReplayer::SimSink final : public EventSink {
 public:
  explicit SimSink(EventSink* next) : next_(next) {}
  [[nodiscard]] absl::Status Emit(const fl_record_header& rec) override {
    if (rec.kind == FL_EV_EXTFRAG && rec.size >= sizeof(fl_extfrag)) {
      fl_extfrag e;
      std::memcpy(&e, &rec, sizeof(e));
      current.emplace_back(e.extfrag_class, e.alloc_migratetype, e.fallback_migratetype);
    }
    return next_ ? next_->Emit(rec) : absl::OkStatus();
  }
  std::vector<ReplayFallbackKey> current;

 private:
  EventSink* next_;
};

// The replay's side of the PageUser contract: the model's compaction moves
// blocks the replay maps kernel pfns to (their kernel pfns stay); nothing is
// reclaimable (the kernel's own reclaim shows up as traced frees).
class TraceReplayer::Owners final : public PageUser {
 public:
  explicit Owners(TraceReplayer* r) : r_(r) {}
  void OnMigrated(uint64_t old_pfn, uint64_t new_pfn, int order) override {
    auto it = r_->sim_to_kernel_.find(old_pfn);
    if (it == r_->sim_to_kernel_.end()) return;  // a start-state block: no kernel pfn of ours
    const uint64_t kpfn = it->second;
    r_->sim_to_kernel_.erase(it);
    auto live = r_->live_.find(kpfn);
    if (live != r_->live_.end() && live->second.sim_pfn == old_pfn && live->second.order == order) {
      live->second.sim_pfn = new_pfn;
      r_->sim_to_kernel_[new_pfn] = kpfn;
    }
  }
  uint64_t Reclaim(const ReclaimRequest& req) override {
    (void)req;
    return 0;
  }

 private:
  TraceReplayer* r_;
};

void TraceReplayer::Track(uint64_t kernel_pfn, Live l) {
  live_[kernel_pfn] = l;
  sim_to_kernel_[l.sim_pfn] = kernel_pfn;
}

void TraceReplayer::AdvanceTo(uint64_t ts_ns) {
  // Records of different CPUs may be a little out of order: the model's
  // clock only moves forward. Background work (kswapd, kcompactd, pcp decay)
  // falls due on the way, as in the kernel.
  const uint64_t t = ts_ns > result_.start_ts_ns ? ts_ns - result_.start_ts_ns : 0;
  if (t > now_) {
    now_ = t;
    allocator_->AdvanceTime(now_);
  }
  allocator_->set_time(now_);
}

TraceReplayer::TraceReplayer(TraceHeader header, ReplayOptions options)
    : header_(std::move(header)), options_(options), collector_(header_) {
  sim_sink_ = std::make_unique<SimSink>(options_.sim_sink);
  result_.header = header_;
}

TraceReplayer::~TraceReplayer() = default;

int TraceReplayer::ZoneIndexOfKernelPfn(uint64_t pfn) const {
  for (size_t i = 0; i < header_.zones.size(); ++i) {
    const ZoneLayout& z = header_.zones[i];
    if (pfn >= z.start_pfn && pfn < z.start_pfn + z.spanned) return static_cast<int>(i);
  }
  return -1;
}

absl::Status TraceReplayer::BuildModel() {
  ASSIGN_OR_RETURN(RecordedStart start, collector_.Finish());
  ASSIGN_OR_RETURN(MachineConfig config, MachineConfigFromStart(start, &result_.machine_notes));
  config.check_invariants_every_op = options_.check_invariants;
  ASSIGN_OR_RETURN(allocator_, PageAllocator::Create(config));
  ASSIGN_OR_RETURN(result_.start, ApplyStartState(start, *allocator_));
  allocator_->set_sink(sim_sink_.get());
  owners_ = std::make_unique<Owners>(this);
  allocator_->set_page_user(owners_.get());
  result_.start_ts_ns = start.ts_ns;
  for (const RecordedZone& rz : start.zones) {
    const auto key = std::make_pair(static_cast<int>(rz.snapshot.nid), static_cast<int>(rz.snapshot.zone_idx));
    start_free_pages_[key] = rz.snapshot.nr_free_pages;
    last_layout_[key] = rz.snapshot;
  }
  uint64_t before = 0;
  for (uint64_t n : collector_.skipped_before_start()) before += n;
  if (before > 0) Count(kKindBeforeStart, before);
  return absl::OkStatus();
}

absl::Status TraceReplayer::Emit(const fl_record_header& rec) {
  if (!have_first_ts_) {
    first_ts_ = rec.ts_ns;
    have_first_ts_ = true;
  }
  result_.last_ts_ns = std::max<uint64_t>(result_.last_ts_ns, rec.ts_ns);
  result_.records++;
  if (!allocator_) {
    if (!collector_.done()) {
      absl::Status st = collector_.Emit(rec);
      if (st.ok()) {
        index_++;
        return st;
      }
      if (!collector_.done()) return st;  // a malformed snapshot record
    }
    RETURN_IF_ERROR(BuildModel());
  }
  absl::Status st = Replay(rec);
  index_++;
  return st;
}

absl::Status TraceReplayer::Replay(const fl_record_header& rec) {
  switch (rec.kind) {
    case FL_EV_PAGE_ALLOC: {
      ASSIGN_OR_RETURN(fl_page_alloc r, Typed<fl_page_alloc>(rec, index_));
      page_events_++;
      return OnAlloc(r);
    }
    case FL_EV_PAGE_FREE: {
      ASSIGN_OR_RETURN(fl_page_free r, Typed<fl_page_free>(rec, index_));
      page_events_++;
      return OnFree(r);
    }
    case FL_EV_EXTFRAG: {
      ASSIGN_OR_RETURN(fl_extfrag e, Typed<fl_extfrag>(rec, index_));
      const ReplayFallbackKey key{e.extfrag_class, e.alloc_migratetype, e.fallback_migratetype};
      result_.kernel_fallbacks[key]++;
      result_.kernel_extfrag_events++;
      pending_kernel_[rec.cpu].push_back(key);
      return absl::OkStatus();
    }
    case FL_EV_ZONE_LOCKED: {
      ASSIGN_OR_RETURN(fl_zone_locked z, Typed<fl_zone_locked>(rec, index_));
      Count(z.percpu_refill ? kKindPcpRefill : kKindZoneLocked);
      return absl::OkStatus();
    }
    case FL_EV_PCP_DRAIN:
      Count(kKindPcpDrain);
      return absl::OkStatus();
    case FL_EV_COMPACT_MIGRATEPAGES: {
      ASSIGN_OR_RETURN(fl_compact_migratepages m, Typed<fl_compact_migratepages>(rec, index_));
      if (m.nr_migrated > 0) Count(kKindCompactMigrated, m.nr_migrated);
      Count(kKindBackground);
      return absl::OkStatus();
    }
    case FL_EV_SNAPSHOT_ZONE: {
      ASSIGN_OR_RETURN(fl_snapshot_zone z, Typed<fl_snapshot_zone>(rec, index_));
      OnSnapshot(z);
      return absl::OkStatus();
    }
    case FL_EV_DROPS: {
      ASSIGN_OR_RETURN(fl_drops d, Typed<fl_drops>(rec, index_));
      drops_by_cpu_[rec.cpu] = d.lost;
      return absl::OkStatus();
    }
    case FL_EV_AGGREGATE:
      aggregate_records_++;
      return absl::OkStatus();
    case FL_EV_COUNTERS:
    case FL_EV_PHASE:
    case FL_EV_PAGEBLOCK_MAP:
    case FL_EV_PROBE:
      return absl::OkStatus();
    default:
      Count(kKindBackground);
      return absl::OkStatus();
  }
}

absl::Status TraceReplayer::FreeLive(LiveMap::iterator it, int cpu) {
  const Live l = it->second;
  live_.erase(it);
  sim_to_kernel_.erase(l.sim_pfn);
  absl::Status st = allocator_->Free(l.sim_pfn, l.order, cpu);
  if (!st.ok()) {
    return absl::InternalError(absl::StrFormat("replay record %d: the model refused to free its block at pfn %#x: %s",
                                               index_, l.sim_pfn, st.message()));
  }
  result_.frees_replayed++;
  return absl::OkStatus();
}

absl::Status TraceReplayer::ReleaseOverlapping(uint64_t pfn, int order, int cpu) {
  const uint64_t end = pfn + (uint64_t{1} << order);
  auto it = live_.upper_bound(pfn);
  if (it != live_.begin()) {
    auto prev = std::prev(it);
    if (prev->first + (uint64_t{1} << prev->second.order) > pfn) it = prev;
  }
  // Erasing from a B-tree invalidates iterators: collect the keys first.
  std::vector<uint64_t> keys;
  for (; it != live_.end() && it->first < end; ++it) keys.push_back(it->first);
  for (uint64_t k : keys) RETURN_IF_ERROR(FreeLive(live_.find(k), cpu));
  return absl::OkStatus();
}

absl::Status TraceReplayer::OnAlloc(const fl_page_alloc& r) {
  const int cpu_raw = r.hdr.cpu;
  std::vector<ReplayFallbackKey> kernel = std::move(pending_kernel_[cpu_raw]);
  pending_kernel_[cpu_raw].clear();
  if (r.pfn == FL_NO_PFN) {
    Count(kKindKernelFailed);
    return absl::OkStatus();
  }
  const int zpos = ZoneIndexOfKernelPfn(r.pfn);
  const int zi = zpos < 0 ? -1
                          : allocator_->FindZone(header_.zones[zpos].nid,
                                                 static_cast<ZoneType>(std::clamp(header_.zones[zpos].zone_idx, 0, 3)));
  if (zi < 0 || header_.zones[zpos].zone_idx >= kNumZoneTypes || r.order > kMaxOrder) {
    Count(kKindOutsideZones);
    return absl::OkStatus();
  }
  const auto zkey = std::make_pair(header_.zones[zpos].nid, header_.zones[zpos].zone_idx);
  traced_net_[zkey] -= int64_t{1} << r.order;
  const int cpu = cpu_raw % allocator_->config().cpus;
  {
    // Pages the kernel hands out again were freed without a traced free.
    const uint64_t before = result_.frees_replayed;
    RETURN_IF_ERROR(ReleaseOverlapping(r.pfn, static_cast<int>(r.order), cpu));
    if (result_.frees_replayed > before) Count(kKindRealloc, result_.frees_replayed - before);
    result_.frees_replayed = before;
  }
  AdvanceTo(r.hdr.ts_ns);
  AllocRequest req;
  req.order = static_cast<int>(r.order);
  req.gfp = r.gfp_flags;
  req.node = header_.zones[zpos].nid;
  req.cpu = cpu;
  req.owner = OwnerForRequest(r.gfp_flags);
  sim_sink_->current.clear();
  const uint64_t sim_pfn = allocator_->Allocate(req);
  RETURN_IF_ERROR(allocator_->sink_status());
  std::vector<ReplayFallbackKey> sim = std::move(sim_sink_->current);
  sim_sink_->current.clear();
  for (const ReplayFallbackKey& k : sim) result_.sim_fallbacks[k]++;
  result_.sim_extfrag_events += sim.size();
  if (sim_pfn == kNoPfn && !allocator_->last_error().ok()) {
    Count(kKindRejected);
    return absl::OkStatus();
  }
  result_.allocs_replayed++;
  if (sim_pfn == kNoPfn) {
    result_.allocs_sim_failed++;
  } else {
    Track(r.pfn, Live{sim_pfn, static_cast<int>(r.order)});
  }
  std::sort(kernel.begin(), kernel.end());
  std::sort(sim.begin(), sim.end());
  const bool fell_back = !kernel.empty() || !sim.empty();
  if (fell_back) result_.allocs_with_fallback++;
  const bool same = kernel == sim && sim_pfn != kNoPfn;
  if (fell_back && same) result_.allocs_fallback_agree++;
  if (!same && !result_.first_divergence) {
    ReplayDivergence d;
    d.record_index = index_;
    d.ts_ns = r.hdr.ts_ns;
    d.cpu = cpu_raw;
    d.order = static_cast<int>(r.order);
    d.gfp = r.gfp_flags;
    d.kernel_did = absl::StrFormat("pfn %#x; fallbacks: %s", r.pfn, FallbackText(kernel));
    d.sim_did = sim_pfn == kNoPfn ? absl::StrCat("allocation failed; fallbacks: ", FallbackText(sim))
                                  : absl::StrFormat("pfn %#x; fallbacks: %s", sim_pfn, FallbackText(sim));
    result_.first_divergence = d;
  }
  return absl::OkStatus();
}

absl::Status TraceReplayer::OnFree(const fl_page_free& r) {
  const int zpos = ZoneIndexOfKernelPfn(r.pfn);
  if (zpos < 0 || r.order > kMaxOrder) {
    Count(kKindOutsideZones);
    return absl::OkStatus();
  }
  if (!r.batched) {
    traced_net_[std::make_pair(header_.zones[zpos].nid, header_.zones[zpos].zone_idx)] += int64_t{1} << r.order;
  }
  const int cpu = r.hdr.cpu % allocator_->config().cpus;
  AdvanceTo(r.hdr.ts_ns);
  const int order = static_cast<int>(r.order);
  const uint64_t end = r.pfn + (uint64_t{1} << order);
  auto it = live_.upper_bound(r.pfn);
  if (it != live_.begin()) {
    auto prev = std::prev(it);
    if (prev->first + (uint64_t{1} << prev->second.order) > r.pfn) it = prev;
  }
  if (it == live_.end() || it->first >= end) {
    if (!r.batched && FreeStartStatePages(r.pfn, order, cpu)) {
      Count(kKindFreeStartState);
    } else {
      Count(r.batched ? kKindBatchedFreed : kKindFreeUntraced);
    }
    return absl::OkStatus();
  }
  const uint64_t head = it->first;
  const Live l = it->second;
  if (head == r.pfn && l.order == order) return FreeLive(it, cpu);
  if (head <= r.pfn && r.pfn + (uint64_t{1} << order) <= head + (uint64_t{1} << l.order)) {
    // Part of a traced block: split_page() made it order-0 pages.
    Count(kKindFreePart);
    absl::Status st = allocator_->SplitAllocated(l.sim_pfn);
    if (!st.ok()) return absl::InternalError(absl::StrCat("replay record ", index_, ": ", st.message()));
    live_.erase(it);
    sim_to_kernel_.erase(l.sim_pfn);
    for (uint64_t k = 0; k < (uint64_t{1} << l.order); ++k) Track(head + k, Live{l.sim_pfn + k, 0});
    return ReleaseOverlapping(r.pfn, order, cpu);
  }
  Count(kKindFreeLarger);
  return ReleaseOverlapping(r.pfn, order, cpu);
}

bool TraceReplayer::FreeStartStatePages(uint64_t pfn, int order, int cpu) {
  const uint64_t n = uint64_t{1} << order;
  // The model's allocated block containing pfn: its head is pfn aligned down
  // to the block's order.
  uint64_t head = kNoPfn;
  PageInfo info;
  for (int o = 0; o <= kMaxOrder; ++o) {
    const uint64_t h = pfn & ~((uint64_t{1} << o) - 1);
    info = allocator_->Page(h);
    if (info.kind == PageInfo::Kind::kAllocated && info.order >= o && h + (uint64_t{1} << info.order) > pfn) {
      head = h;
      break;
    }
    if (info.kind != PageInfo::Kind::kNone) return false;  // free, pcp, or a block that ends before pfn
  }
  if (head == kNoPfn || info.owner == OwnerKind::kReserved || sim_to_kernel_.contains(head)) return false;
  if (head + (uint64_t{1} << info.order) < pfn + n) return false;  // the free reaches past the block
  if (head == pfn && info.order == order) return allocator_->Free(pfn, order, cpu).ok();
  // Part of a larger start-state block: split it, free the pages asked for.
  if (!allocator_->SplitAllocated(head).ok()) return false;
  for (uint64_t p = pfn; p < pfn + n; ++p) {
    if (!allocator_->Free(p, 0, cpu).ok()) return false;
  }
  return true;
}

void TraceReplayer::OnSnapshot(const fl_snapshot_zone& z) {
  const auto key = std::make_pair(static_cast<int>(z.nid), static_cast<int>(z.zone_idx));
  auto last = last_layout_.find(key);
  if (last != last_layout_.end() && (last->second.spanned != z.spanned || last->second.present != z.present ||
                                     last->second.managed != z.managed)) {
    Count(kKindHotplug);
  }
  last_layout_[key] = z;
  if (z.zone_idx < 0 || z.zone_idx >= kNumZoneTypes) return;
  const int zi = allocator_->FindZone(z.nid, static_cast<ZoneType>(z.zone_idx));
  if (zi < 0) return;
  ReplaySnapshotCheck c;
  c.record_index = index_;
  c.ts_ns = z.hdr.ts_ns;
  c.nid = z.nid;
  c.zone_idx = z.zone_idx;
  const ZoneStats st = allocator_->zone_stats(zi);
  for (int o = 0; o < FL_MAX_ORDERS; ++o) {
    c.kernel_nr_free[o] = z.nr_free[o];
    c.sim_nr_free[o] = st.nr_free[o];
  }
  c.untraced_free_pages = static_cast<int64_t>(z.nr_free_pages) - static_cast<int64_t>(start_free_pages_[key]) -
                          traced_net_[key];
  result_.snapshots.push_back(c);
}

std::string TraceReplayer::FallbackText(const std::vector<ReplayFallbackKey>& v) const {
  if (v.empty()) return "none";
  std::map<ReplayFallbackKey, int> counts;
  for (const auto& k : v) counts[k]++;
  std::vector<std::string> parts;
  for (const auto& [k, n] : counts) {
    const auto& [cls, a, f] = k;
    parts.push_back(absl::StrCat(ExtfragClassName(static_cast<uint32_t>(cls)), " ", MigratetypeName(header_, a),
                                 "<-", MigratetypeName(header_, f), " x", n));
  }
  return absl::StrJoin(parts, ", ");
}

absl::StatusOr<ReplayResult> TraceReplayer::Finish() {
  if (!allocator_) RETURN_IF_ERROR(BuildModel());
  if (page_events_ == 0) {
    return absl::FailedPreconditionError(absl::StrCat(
        "the trace has no page allocation or free events to replay",
        aggregate_records_ > 0 ? " (it holds only per-interval aggregates)" : "",
        "; record one with 'fraglab trace --all-events'"));
  }
  uint64_t orphans = 0;
  for (const auto& [cpu, v] : pending_kernel_) orphans += v.size();
  if (orphans > 0) Count(kKindExtfragOrphan, orphans);
  uint64_t lost = 0;
  for (const auto& [cpu, n] : drops_by_cpu_) lost += n;
  if (lost > 0) Count(kKindDrops, lost);
  result_.span_ns = result_.last_ts_ns > first_ts_ ? result_.last_ts_ns - first_ts_ : 0;
  return std::move(result_);
}

std::string FormatReplayResult(const ReplayResult& r) {
  std::string out;
  const TraceHeader& h = r.header;
  absl::StrAppendFormat(&out, "replay of %s (%s, era %s): %d records over %.3f s\n",
                        h.machine.empty() ? "a trace" : h.machine, h.kernel_release, h.kernel_era, r.records,
                        static_cast<double>(r.span_ns) / 1e9);
  out += FormatStartStateReport(r.start, h.migratetype_names);
  for (const std::string& n : r.machine_notes) absl::StrAppend(&out, "  machine note: ", n, "\n");
  absl::StrAppendFormat(&out, "allocations replayed %d (model failed %d), frees replayed %d\n", r.allocs_replayed,
                        r.allocs_sim_failed, r.frees_replayed);
  absl::StrAppendFormat(&out, "fallback events: kernel %d, model %d\n", r.kernel_extfrag_events,
                        r.sim_extfrag_events);
  std::map<ReplayFallbackKey, std::pair<uint64_t, uint64_t>> both;
  for (const auto& [k, n] : r.kernel_fallbacks) both[k].first = n;
  for (const auto& [k, n] : r.sim_fallbacks) both[k].second = n;
  if (!both.empty()) {
    absl::StrAppendFormat(&out, "  %-34s %10s %10s\n", "class alloc<-fallback", "kernel", "model");
    for (const auto& [k, v] : both) {
      const auto& [cls, a, f] = k;
      const std::string label = absl::StrCat(ExtfragClassName(static_cast<uint32_t>(cls)), " ",
                                             MigratetypeName(h, a), "<-", MigratetypeName(h, f));
      absl::StrAppendFormat(&out, "  %-34s %10d %10d\n", label, v.first, v.second);
    }
  }
  absl::StrAppendFormat(&out, "allocations with a fallback on either side: %d, same fallbacks on both: %d\n",
                        r.allocs_with_fallback, r.allocs_fallback_agree);
  if (r.first_divergence) {
    const ReplayDivergence& d = *r.first_divergence;
    absl::StrAppendFormat(&out,
                          "first divergence: record %d at %.6f s (CPU %d, order %d, gfp %#x)\n  kernel: %s\n  "
                          "model:  %s\n",
                          d.record_index,
                          static_cast<double>(d.ts_ns > r.start_ts_ns ? d.ts_ns - r.start_ts_ns : 0) / 1e9, d.cpu,
                          d.order, d.gfp, d.kernel_did, d.sim_did);
  } else {
    out += "no divergence: every replayed allocation made the same fallbacks on both sides\n";
  }
  for (const ReplaySnapshotCheck& c : r.snapshots) {
    std::vector<std::string> k, s;
    for (int o = 0; o < FL_MAX_ORDERS; ++o) {
      k.push_back(absl::StrCat(c.kernel_nr_free[o]));
      s.push_back(absl::StrCat(c.sim_nr_free[o]));
    }
    absl::StrAppendFormat(&out,
                          "snapshot at %.3f s %s: free blocks kernel %s | model %s; untraced free-page change %+d\n",
                          static_cast<double>(c.ts_ns > r.start_ts_ns ? c.ts_ns - r.start_ts_ns : 0) / 1e9,
                          ZoneLabelByIndex(h, c.nid, c.zone_idx), absl::StrJoin(k, " "), absl::StrJoin(s, " "),
                          c.untraced_free_pages);
  }
  if (!r.unexplained.empty()) {
    out += "recorded events not replayed one to one:\n";
    for (const auto& [kind, n] : r.unexplained) absl::StrAppendFormat(&out, "  %10d  %s\n", n, kind);
  }
  return out;
}

}  // namespace fraglab::sim
