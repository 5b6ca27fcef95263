#include "sim/replay.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "common/status.h"
#include "common/trace_records.h"

namespace fraglab::sim {
namespace {

// Unexplained-event kinds (keys of ReplayResult::unexplained): counted by
// index while replaying, named at the end.
enum Kind : int {
  kKindFreeUntraced,
  kKindFreeStartState,
  kKindBatchedFreed,
  kKindFreePart,
  kKindFreeLarger,
  kKindRealloc,
  kKindKernelFailed,
  kKindOutsideZones,
  kKindRejected,
  kKindPcpRefill,
  kKindZoneLocked,
  kKindPcpDrain,
  kKindCompactMigrated,
  kKindBackground,
  kKindDrops,
  kKindHotplug,
  kKindBeforeStart,
  kKindExtfragOrphan,
  kNumKinds
};
constexpr const char* kKindNames[kNumKinds] = {
    "free of a page not allocated in the trace (allocated before it started, by alloc_pages_bulk, or as a "
    "compaction target)",
    "free of a page allocated before the trace: the model's start-state page at that pfn freed",
    "batched free of a page already freed",
    "free of part of a traced block (split_page): model block split",
    "free larger than the traced allocation(s) it covers",
    "allocation of pages the replay still held (their free was not traced): freed in the model first",
    "failed kernel allocation (not replayed)",
    "alloc/free outside every modelled zone",
    "request the model rejects (gfp, order or CPU invalid for it)",
    "pcp refill from the buddy (zone_locked percpu_refill; the model refills its own)",
    "buddy removal (zone_locked; the model decides its own)",
    "pcp drain to the buddy (the model drains its own)",
    "pages migrated by kernel compaction (targets allocated untraced)",
    "kernel compaction/reclaim/THP/OOM event (background work, not replayed)",
    "events lost by the recorder",
    "zone size change between snapshots (memory hotplug, virtio-mem)",
    "record before the start snapshot (not replayed)",
    "kernel fallback with no later allocation on its CPU",
};

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
    const uint32_t v = r_->sim_heads_.Get(old_pfn);
    if (v == 0) return;  // a start-state block: no kernel pfn of ours
    r_->sim_heads_.Fill(old_pfn, 1, 0);
    LiveBlock& b = r_->blocks_[v - 1];
    if (b.sim_pfn == old_pfn && b.order == order) {
      b.sim_pfn = new_pfn;
      r_->sim_heads_.Fill(new_pfn, 1, v);
    }
  }
  uint64_t Reclaim(const ReclaimRequest& req) override {
    (void)req;
    return 0;
  }

 private:
  TraceReplayer* r_;
};

void TraceReplayer::PfnTable::FreeDeleter::operator()(uint32_t* p) const { std::free(p); }

bool TraceReplayer::PfnTable::Reset(uint64_t base, uint64_t size) {
  data_.reset(static_cast<uint32_t*>(std::calloc(size > 0 ? size : 1, sizeof(uint32_t))));
  base_ = base;
  size_ = data_ ? size : 0;
  return data_ != nullptr;
}

void TraceReplayer::PfnTable::Fill(uint64_t pfn, uint64_t n, uint32_t v) {
  const uint64_t lo = std::max(pfn, base_);
  const uint64_t hi = std::min(pfn + n, base_ + size_);
  if (lo < hi) std::fill(data_.get() + (lo - base_), data_.get() + (hi - base_), v);
}

void TraceReplayer::Track(uint64_t kernel_pfn, uint64_t sim_pfn, int order) {
  uint32_t slot;
  if (!free_slots_.empty()) {
    slot = free_slots_.back();
    free_slots_.pop_back();
  } else {
    slot = static_cast<uint32_t>(blocks_.size());
    blocks_.emplace_back();
  }
  blocks_[slot] = LiveBlock{kernel_pfn, sim_pfn, order};
  live_.Fill(kernel_pfn, uint64_t{1} << order, slot + 1);
  sim_heads_.Fill(sim_pfn, 1, slot + 1);
}

void TraceReplayer::Untrack(uint32_t slot) {
  const LiveBlock& b = blocks_[slot];
  live_.Fill(b.kernel_pfn, uint64_t{1} << b.order, 0);
  if (sim_heads_.Get(b.sim_pfn) == slot + 1) sim_heads_.Fill(b.sim_pfn, 1, 0);
  free_slots_.push_back(slot);
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
    : header_(std::move(header)), options_(options), collector_(header_), kind_counts_(kNumKinds, 0) {
  sim_sink_ = std::make_unique<SimSink>(options_.sim_sink);
  result_.header = header_;
  traced_net_.assign(header_.zones.size(), 0);
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
  // A real machine's start state scatters its free blocks over all of
  // memory: chunked list links fault in a few MB where per-page links
  // would take 8 bytes a page.
  ASSIGN_OR_RETURN(allocator_, PageAllocator::Create(config, nullptr, nullptr, ListLinks::kChunked));
  ASSIGN_OR_RETURN(result_.start, ApplyStartState(start, *allocator_));
  allocator_->set_sink(sim_sink_.get());
  owners_ = std::make_unique<Owners>(this);
  allocator_->set_page_user(owners_.get());
  result_.start_ts_ns = start.ts_ns;
  // The pfn tables span the recorded zones (kernel pfns) and the modelled
  // zones (model pfns), plus a largest block past the end for unaligned input.
  constexpr uint64_t kSlack = uint64_t{1} << kMaxOrder;
  uint64_t klo = UINT64_MAX, khi = 0;
  model_zone_.assign(header_.zones.size(), -1);
  for (size_t i = 0; i < header_.zones.size(); ++i) {
    const ZoneLayout& z = header_.zones[i];
    klo = std::min(klo, z.start_pfn);
    khi = std::max(khi, z.start_pfn + z.spanned);
    if (z.zone_idx < kNumZoneTypes) {
      model_zone_[i] = allocator_->FindZone(z.nid, static_cast<ZoneType>(std::clamp(z.zone_idx, 0, 3)));
    }
  }
  uint64_t slo = UINT64_MAX, shi = 0;
  for (const ZoneConfig& z : allocator_->config().zones) {
    slo = std::min(slo, z.start_pfn);
    shi = std::max(shi, z.start_pfn + z.spanned);
  }
  if (klo > khi) klo = khi = 0;
  if (slo > shi) slo = shi = 0;
  if (!live_.Reset(klo, khi - klo + kSlack) || !sim_heads_.Reset(slo, shi - slo + kSlack)) {
    return absl::ResourceExhaustedError(absl::StrFormat(
        "replay: cannot allocate the pfn tables (%d kernel pfns, %d model pfns)", khi - klo, shi - slo));
  }
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
      if (rec.cpu >= pending_kernel_.size()) pending_kernel_.resize(size_t{rec.cpu} + 1);
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

absl::Status TraceReplayer::FreeLive(uint32_t slot, int cpu) {
  const LiveBlock l = blocks_[slot];
  Untrack(slot);
  absl::Status st = allocator_->Free(l.sim_pfn, l.order, cpu);
  if (!st.ok()) {
    return absl::InternalError(absl::StrFormat("replay record %d: the model refused to free its block at pfn %#x: %s",
                                               index_, l.sim_pfn, st.message()));
  }
  result_.frees_replayed++;
  return absl::OkStatus();
}

absl::Status TraceReplayer::ReleaseOverlapping(uint64_t pfn, int order, int cpu) {
  // Live blocks never overlap and every page of one maps to it: walking the
  // range meets them in ascending order; the first may start before pfn.
  const uint64_t end = std::min(pfn + (uint64_t{1} << order), live_.end());
  for (uint64_t p = pfn; p < end;) {
    const int64_t slot = LiveAt(p);
    if (slot < 0) {
      ++p;
      continue;
    }
    p = blocks_[slot].kernel_pfn + (uint64_t{1} << blocks_[slot].order);
    RETURN_IF_ERROR(FreeLive(static_cast<uint32_t>(slot), cpu));
  }
  return absl::OkStatus();
}

absl::Status TraceReplayer::OnAlloc(const fl_page_alloc& r) {
  const int cpu_raw = r.hdr.cpu;
  // The CPU's pending fallbacks move to a reused buffer (no allocation).
  std::vector<ReplayFallbackKey>& kernel = kernel_scratch_;
  kernel.clear();
  if (static_cast<size_t>(cpu_raw) < pending_kernel_.size()) kernel.swap(pending_kernel_[cpu_raw]);
  if (r.pfn == FL_NO_PFN) {
    Count(kKindKernelFailed);
    return absl::OkStatus();
  }
  const int zpos = ZoneIndexOfKernelPfn(r.pfn);
  if (zpos < 0 || model_zone_[zpos] < 0 || r.order > kMaxOrder) {
    Count(kKindOutsideZones);
    return absl::OkStatus();
  }
  traced_net_[zpos] -= int64_t{1} << r.order;
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
  std::vector<ReplayFallbackKey>& sim = sim_scratch_;
  sim.clear();
  sim.swap(sim_sink_->current);
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
    Track(r.pfn, sim_pfn, static_cast<int>(r.order));
  }
  if (kernel.size() > 1) std::sort(kernel.begin(), kernel.end());
  if (sim.size() > 1) std::sort(sim.begin(), sim.end());
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
    traced_net_[zpos] += int64_t{1} << r.order;
  }
  const int cpu = r.hdr.cpu % allocator_->config().cpus;
  AdvanceTo(r.hdr.ts_ns);
  const int order = static_cast<int>(r.order);
  const uint64_t end = r.pfn + (uint64_t{1} << order);
  // The live block covering r.pfn, else the first one inside the range.
  int64_t slot = LiveAt(r.pfn);
  for (uint64_t p = r.pfn + 1; slot < 0 && p < std::min(end, live_.end()); ++p) slot = LiveAt(p);
  if (slot < 0) {
    if (!r.batched && FreeStartStatePages(r.pfn, order, cpu)) {
      Count(kKindFreeStartState);
    } else {
      Count(r.batched ? kKindBatchedFreed : kKindFreeUntraced);
    }
    return absl::OkStatus();
  }
  const LiveBlock l = blocks_[slot];
  const uint64_t head = l.kernel_pfn;
  if (head == r.pfn && l.order == order) return FreeLive(static_cast<uint32_t>(slot), cpu);
  if (head <= r.pfn && r.pfn + (uint64_t{1} << order) <= head + (uint64_t{1} << l.order)) {
    // Part of a traced block: split_page() made it order-0 pages.
    Count(kKindFreePart);
    absl::Status st = allocator_->SplitAllocated(l.sim_pfn);
    if (!st.ok()) return absl::InternalError(absl::StrCat("replay record ", index_, ": ", st.message()));
    Untrack(static_cast<uint32_t>(slot));
    for (uint64_t k = 0; k < (uint64_t{1} << l.order); ++k) Track(head + k, l.sim_pfn + k, 0);
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
  if (head == kNoPfn || info.owner == OwnerKind::kReserved || sim_heads_.Get(head) != 0) return false;
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
  int64_t net = 0;
  for (size_t i = 0; i < header_.zones.size(); ++i) {
    if (header_.zones[i].nid == z.nid && header_.zones[i].zone_idx == z.zone_idx) net += traced_net_[i];
  }
  c.untraced_free_pages =
      static_cast<int64_t>(z.nr_free_pages) - static_cast<int64_t>(start_free_pages_[key]) - net;
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
  for (const auto& v : pending_kernel_) orphans += v.size();
  if (orphans > 0) Count(kKindExtfragOrphan, orphans);
  uint64_t lost = 0;
  for (const auto& [cpu, n] : drops_by_cpu_) lost += n;
  if (lost > 0) Count(kKindDrops, lost);
  result_.span_ns = result_.last_ts_ns > first_ts_ ? result_.last_ts_ns - first_ts_ : 0;
  for (int k = 0; k < kNumKinds; ++k) {
    if (kind_counts_[k] > 0) result_.unexplained[kKindNames[k]] += kind_counts_[k];
  }
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
