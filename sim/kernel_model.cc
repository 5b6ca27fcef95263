#include "sim/kernel_model.h"

#include <algorithm>
#include <optional>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/time/time.h"
#include "common/check.h"
#include "common/status.h"
#include "common/units.h"

namespace fraglab::sim {
namespace {

namespace sc = scenario;

constexpr uint64_t kPageBytes = 4096;
constexpr uint64_t kPmdPages = 512;  // pages mapped by one page-table page (2 MiB)

// gfp bits types.h does not name.
constexpr uint64_t kGfpZero = 0x100;
constexpr uint64_t kGfpNowarn = 0x2000;
constexpr uint64_t kGfpAccount = 0x400000;

// GFP_HIGHUSER: GFP_USER | __GFP_HIGHMEM (pipe buffers).
constexpr uint64_t kGfpHighuser = gfp::kUser | gfp::kHighmem;
// GFP_PGTABLE_USER: GFP_KERNEL_ACCOUNT | __GFP_ZERO (unmovable order 0).
constexpr uint64_t kGfpPgtable = gfp::kKernel | kGfpAccount | kGfpZero;
// GFP_TRANSHUGE_LIGHT: movable, compound, no reserves, no warning, and no
// reclaim bits at all; the defrag setting adds reclaim bits (§7).
constexpr uint64_t kGfpTranshugeLight =
    ((gfp::kHighuserMovable | gfp::kComp | gfp::kNomemalloc | kGfpNowarn) & ~gfp::kReclaim);
constexpr uint64_t kGfpTranshuge = kGfpTranshugeLight | gfp::kDirectReclaim;

uint64_t DivCeil(uint64_t a, uint64_t b) { return (a + b - 1) / b; }

std::string Mib(uint64_t bytes) {
  if (bytes % (uint64_t{1} << 20) == 0) return absl::StrCat(bytes >> 20, " MiB");
  return absl::StrCat(bytes >> 10, " KiB");
}

}  // namespace

KernelModel::KernelModel(PageAllocator* allocator, EventSink* sink, const sc::Scenario& s, uint64_t seed,
                         Hooks hooks)
    : a_(allocator), sink_(sink), scenario_(s), hooks_(std::move(hooks)), rng_(seed), spec_(s.machine) {
  uint64_t present = 0;
  uint64_t end_pfn = 0;
  for (int z = 0; z < a_->num_zones(); ++z) {
    const ZoneStats st = a_->zone_stats(z);
    present += st.present;
    end_pfn = std::max(end_pfn, st.start_pfn + st.spanned);
  }
  // A percentage budget is of MemAvailable on a real machine; the simulated
  // machine starts empty, so its present memory stands for it.
  absl::StatusOr<uint64_t> b = ResolveSizeBytes(s.budget.memory, present * kPageBytes);
  budget_bytes_ = b.ok() ? *b : present * kPageBytes;
  end_pfn_ = end_pfn;
  caches_[0].geo = kDentrySlab;
  caches_[1].geo = kShmemInodeSlab;
}

// ---------------------------------------------------------------------------
// Small helpers.

uint64_t KernelModel::Alloc(int order, uint64_t g, OwnerKind owner) {
  hooks_.tick();
  AllocRequest req;
  req.order = order;
  req.gfp = g;
  req.cpu = cpu_;
  req.node = 0;
  req.owner = owner;
  return a_->Allocate(req);
}

void KernelModel::FreeBlock(uint64_t pfn, int order, bool tick) {
  if (tick) hooks_.tick();
  absl::Status st = a_->Free(pfn, order, cpu_);
  // The model frees only blocks it allocated and tracks; a failure is a bug
  // in the model's records.
  FRAGLAB_CHECK_MSG(st.ok(), "kernel model freed pfn %llu order %d: %s", static_cast<unsigned long long>(pfn),
                    order, std::string(st.message()).c_str());
  if (pfn < rmap_.size()) rmap_[pfn] = 0;
}

void KernelModel::Background() {
  if (hooks_.background) hooks_.background();
}

absl::StatusOr<uint64_t> KernelModel::Bytes(const Size& size, const std::string& where, const char* field) const {
  absl::StatusOr<uint64_t> b = ResolveSizeBytes(size, budget_bytes_);
  if (!b.ok()) return absl::InvalidArgumentError(absl::StrCat(where, ": ", field, ": ", b.status().message()));
  return *b;
}

void KernelModel::Step(const std::string& what) {
  if (hooks_.step) hooks_.step(what);
}
void KernelModel::StepDone(const std::string& result) {
  if (hooks_.step_done) hooks_.step_done(result);
}

void KernelModel::SetRmap(uint64_t pfn, uint64_t entry) {
  // Sized on first use: runs of raw alloc/free phases never pay for it.
  if (rmap_.empty() && entry != 0) rmap_.assign(end_pfn_, 0);
  if (pfn < rmap_.size()) rmap_[pfn] = entry;
}

absl::Status KernelModel::Apply(const sc::Operation& op, const std::string& where) {
  switch (sc::KindOf(op)) {
    case sc::OpKind::kAnon: return DoAnon(std::get<sc::AnonOp>(op), where);
    case sc::OpKind::kRelease: return DoRelease(std::get<sc::ReleaseOp>(op), where);
    case sc::OpKind::kPin: return DoPin(std::get<sc::PinOp>(op), where);
    case sc::OpKind::kSlab: return DoSlab(std::get<sc::SlabOp>(op), where);
    case sc::OpKind::kPagecache: return DoPagecache(std::get<sc::PagecacheOp>(op), where);
    case sc::OpKind::kThp: return DoThp(std::get<sc::ThpOp>(op), where);
    case sc::OpKind::kProbe: return DoProbe(std::get<sc::ProbeOp>(op), where);
    case sc::OpKind::kCompact: {
      const auto& c = std::get<sc::CompactOp>(op);
      if (c.node) {
        Step(absl::StrCat("compact node ", *c.node, " (sync full compaction of its zones)"));
        hooks_.tick();
        absl::Status st = a_->CompactNode(*c.node);
        if (!st.ok()) return absl::InvalidArgumentError(absl::StrCat(where, ": ", st.message()));
      } else {
        Step("compact all nodes (vm.compact_memory: sync full compaction of every zone)");
        hooks_.tick();
        a_->CompactMemory();
      }
      StepDone(absl::StrCat("pgmigrate_success ", a_->vm_events().pgmigrate_success, " so far"));
      return absl::OkStatus();
    }
    case sc::OpKind::kDropCaches: return DoDropCaches(std::get<sc::DropCachesOp>(op));
    case sc::OpKind::kSysctl: return DoSysctl(std::get<sc::SysctlOp>(op), where);
    case sc::OpKind::kSnapshot:
    case sc::OpKind::kHold:
      return absl::OkStatus();  // the runner handles the clock and snapshots
    case sc::OpKind::kAlloc:
    case sc::OpKind::kFree:
    case sc::OpKind::kExpect:
      break;
  }
  return absl::InvalidArgumentError(
      absl::StrCat(where, ": '", sc::OpName(op), "' is a raw allocator operation, not a kernel-model one"));
}

// ---------------------------------------------------------------------------
// Anonymous memory.

uint64_t KernelModel::ThpGfp(bool madvised) const {
  switch (spec_.thp.defrag) {
    case sc::ThpDefrag::kAlways:
      return kGfpTranshugeLight | gfp::kDirectReclaim | (madvised ? 0 : gfp::kNoretry);
    case sc::ThpDefrag::kDefer: return kGfpTranshugeLight | gfp::kKswapdReclaim;
    case sc::ThpDefrag::kDeferMadvise:
      return kGfpTranshugeLight | (madvised ? gfp::kDirectReclaim : gfp::kKswapdReclaim);
    case sc::ThpDefrag::kMadvise: return kGfpTranshugeLight | (madvised ? gfp::kDirectReclaim : 0);
    case sc::ThpDefrag::kNever: return kGfpTranshugeLight;
  }
  return kGfpTranshugeLight;
}

bool KernelModel::ThpEligible(const AnonRegion& reg) const {
  switch (spec_.thp.enabled) {
    case sc::ThpEnabled::kAlways: return true;
    case sc::ThpEnabled::kMadvise: return reg.madvised;
    case sc::ThpEnabled::kNever: return false;
  }
  return false;
}

std::vector<int> KernelModel::FaultOrders(const AnonRegion& reg) const {
  // thp_vma_allowable_orders(): a size is allowed when its own setting says
  // always, or madvise on a MADV_HUGEPAGE region, or inherit and the global
  // setting allows it. The PMD size (2048kB) defaults to inherit.
  auto allowed = [&](int order) {
    sc::MthpEnabled e = sc::MthpEnabled::kNever;
    if (order == kPageblockOrder) {
      e = sc::MthpEnabled::kInherit;
    } else if (auto it = spec_.thp.mthp.find(order); it != spec_.thp.mthp.end()) {
      e = it->second;
    }
    switch (e) {
      case sc::MthpEnabled::kAlways: return true;
      case sc::MthpEnabled::kMadvise: return reg.madvised;
      case sc::MthpEnabled::kInherit: return ThpEligible(reg);
      case sc::MthpEnabled::kNever: return false;
    }
    return false;
  };
  std::vector<int> out;
  // The generator maps base regions with MADV_NOHUGEPAGE: no large folios
  // until a `thp madvise` phase sets MADV_HUGEPAGE.
  if (reg.page_size.kind == sc::PageSize::Kind::kBase && !reg.madvised) return out;
  // The generator enables the region's own mTHP size while it faults the
  // region (docs/generator.md): that order is always tried first.
  if (reg.page_size.kind == sc::PageSize::Kind::kMthp) out.push_back(reg.page_size.order);
  for (int o = kPageblockOrder; o >= 1; --o) {
    if (reg.page_size.kind == sc::PageSize::Kind::kMthp && o >= reg.page_size.order) continue;
    if (o == kPageblockOrder && reg.page_size.kind == sc::PageSize::Kind::kMthp) continue;
    if (allowed(o)) out.push_back(o);
  }
  return out;
}

size_t KernelModel::NewRegion(const std::string& tag, sc::PageSize ps, uint64_t pages, bool madvised) {
  AnonRegion reg;
  reg.tag = tag;
  reg.page_size = ps;
  reg.madvised = madvised;
  reg.pfn.assign(pages, kNoPfn);
  reg.order.assign(pages, kTail);
  reg.unmapped.assign(pages, 0);
  reg.pt.assign(DivCeil(pages, kPmdPages), kNoPfn);
  reg.unmapped_in_pt.assign(reg.pt.size(), 0);
  regions_.push_back(std::move(reg));
  return regions_.size() - 1;
}

absl::Status KernelModel::EnsurePageTable(size_t r, uint64_t idx, const std::string& where) {
  const uint64_t slot = idx / kPmdPages;
  if (regions_[r].pt[slot] != kNoPfn) return absl::OkStatus();
  // __pte_alloc(): one order-0 unmovable page per 2 MiB of address space.
  const uint64_t pfn = Alloc(0, kGfpPgtable, OwnerKind::kPageTable);
  if (pfn == kNoPfn) {
    return absl::ResourceExhaustedError(absl::StrCat(where, ": out of memory: a page-table page for region '",
                                                     regions_[r].tag, "' could not be allocated"));
  }
  regions_[r].pt[slot] = pfn;
  ++pages_.page_table;
  return absl::OkStatus();
}

void KernelModel::MapFolio(size_t r, uint64_t idx, uint64_t pfn, int order) {
  AnonRegion& reg = regions_[r];
  const uint64_t n = uint64_t{1} << order;
  for (uint64_t j = 0; j < n; ++j) {
    reg.pfn[idx + j] = pfn + j;
    reg.order[idx + j] = kTail;
  }
  reg.order[idx] = static_cast<uint8_t>(order);
  SetRmap(pfn, RmapEntry(kRmapAnon, r, idx));
  pages_.anon += n;
  if (order == kPageblockOrder) ++pages_.anon_thp;
}

absl::Status KernelModel::Fault(size_t r, uint64_t idx, const std::string& where, int* got_order) {
  *got_order = -1;
  {
    const AnonRegion& reg = regions_[r];
    if (reg.pfn[idx] != kNoPfn || reg.unmapped[idx]) return absl::OkStatus();
  }
  const uint64_t slot = idx / kPmdPages;
  // do_huge_pmd_anonymous_page(): the whole 2 MiB must lie inside the
  // region and its page-table slot must be empty (no PTE table yet).
  for (int o : FaultOrders(regions_[r])) {
    const AnonRegion& reg = regions_[r];
    const uint64_t n = uint64_t{1} << o;
    const uint64_t start = idx & ~(n - 1);
    if (start + n > reg.pfn.size()) continue;
    if (o == kPageblockOrder && reg.pt[slot] != kNoPfn) continue;
    bool empty = true;
    for (uint64_t j = start; j < start + n && empty; ++j) empty = reg.pfn[j] == kNoPfn && !reg.unmapped[j];
    if (!empty) continue;
    const bool pmd = o == kPageblockOrder;
    if (!pmd) RETURN_IF_ERROR(EnsurePageTable(r, idx, where));
    const uint64_t g = ThpGfp(reg.madvised);
    // alloc_pages_mpol(): a PMD-sized request first tries the local node
    // only and without retries; with direct reclaim allowed it then tries
    // again normally.
    uint64_t pfn = kNoPfn;
    if (pmd) {
      pfn = Alloc(o, g | gfp::kThisnode | gfp::kNoretry, OwnerKind::kAnon);
      if (pfn == kNoPfn && (g & gfp::kDirectReclaim) != 0) pfn = Alloc(o, g, OwnerKind::kAnon);
    } else {
      pfn = Alloc(o, g, OwnerKind::kAnon);
    }
    if (pfn == kNoPfn) {
      ++counters_.anon_fault_fallback[o];
      if (pmd) ++counters_.thp_fault_fallback;
      continue;
    }
    ++counters_.anon_fault_alloc[o];
    if (pmd) {
      ++counters_.thp_fault_alloc;
      MapFolio(r, start, pfn, o);
      // The PMD mapping deposits a page table for a later split.
      RETURN_IF_ERROR(EnsurePageTable(r, idx, where));
    } else {
      MapFolio(r, start, pfn, o);
    }
    *got_order = o;
    return absl::OkStatus();
  }
  RETURN_IF_ERROR(EnsurePageTable(r, idx, where));
  const uint64_t pfn = Alloc(0, gfp::kHighuserMovable, OwnerKind::kAnon);
  if (pfn == kNoPfn) {
    return absl::ResourceExhaustedError(absl::StrCat(where, ": out of memory: page ", idx, " of region '",
                                                     regions_[r].tag,
                                                     "' could not be faulted (the kernel would OOM-kill)"));
  }
  MapFolio(r, idx, pfn, 0);
  *got_order = 0;
  return absl::OkStatus();
}

absl::Status KernelModel::DoAnon(const sc::AnonOp& op, const std::string& where) {
  ASSIGN_OR_RETURN(uint64_t bytes, Bytes(op.size, where, "size"));
  const uint64_t pages = DivCeil(bytes, kPageBytes);
  if (pages == 0) return absl::InvalidArgumentError(absl::StrCat(where, ": size resolves to 0 pages"));
  const bool madvised = op.page_size.kind == sc::PageSize::Kind::kThp;
  const size_t r = NewRegion(op.tag, op.page_size, pages, madvised);
  anon_tags_[op.tag].push_back(r);
  const AnonRegion& reg0 = regions_[r];
  const std::vector<int> orders = FaultOrders(reg0);
  const std::string sizes =
      orders.empty() ? absl::StrFormat("order 0 (gfp %#x)", gfp::kHighuserMovable)
                     : absl::StrFormat("orders %s (gfp %#x), then 0 (gfp %#x)", absl::StrJoin(orders, "/"),
                                       ThpGfp(madvised), gfp::kHighuserMovable);
  Step(absl::StrFormat("anon '%s' %s %s, touch %s: faults try %s on CPU %d", op.tag, Mib(bytes),
                       sc::FormatPageSize(op.page_size), sc::TouchOrderName(op.touch), sizes, cpu_));
  if (op.touch == sc::TouchOrder::kNone) {
    StepDone("mapped only: nothing faulted");
    return absl::OkStatus();
  }
  std::vector<uint64_t> order_of_touch(pages);
  for (uint64_t i = 0; i < pages; ++i) {
    order_of_touch[i] = op.touch == sc::TouchOrder::kReverse ? pages - 1 - i : i;
  }
  if (op.touch == sc::TouchOrder::kRandom) {
    for (uint64_t i = pages; i > 1; --i) std::swap(order_of_touch[i - 1], order_of_touch[rng_.Uniform(i)]);
  }
  uint64_t by_order[kNumOrders] = {};
  const uint64_t pt0 = pages_.page_table;
  const KernelModelCounters c0 = counters_;
  for (uint64_t idx : order_of_touch) {
    int got = -1;
    RETURN_IF_ERROR(Fault(r, idx, where, &got));
    if (got >= 0) ++by_order[got];
    Background();
  }
  std::vector<std::string> parts;
  for (int o = kMaxOrder; o >= 0; --o) {
    if (by_order[o]) parts.push_back(absl::StrCat(by_order[o], " of order ", o));
  }
  // The per-size counters (hugepages-<N>kB/stats) have no slot in the
  // trace's counter record: they are reported here.
  std::vector<std::string> stats;
  for (int o = 1; o < kNumOrders; ++o) {
    const uint64_t al = counters_.anon_fault_alloc[o] - c0.anon_fault_alloc[o];
    const uint64_t fb = counters_.anon_fault_fallback[o] - c0.anon_fault_fallback[o];
    if (al || fb) {
      stats.push_back(absl::StrCat(sc::MthpSizeName(o), " anon_fault_alloc +", al, " anon_fault_fallback +", fb));
    }
  }
  StepDone(absl::StrCat(absl::StrJoin(parts, ", "), " faulted", stats.empty() ? "" : " (", absl::StrJoin(stats, ", "),
                        stats.empty() ? "" : ")", "; ", pages_.page_table - pt0, " page-table pages"));
  return absl::OkStatus();
}

uint64_t KernelModel::ReleaseRange(size_t r, uint64_t first, uint64_t end, bool unmap) {
  uint64_t freed = 0;
  end = std::min<uint64_t>(end, regions_[r].pfn.size());
  uint64_t i = first;
  // A folio that starts before `first` and reaches into the range.
  while (i < end) {
    AnonRegion& reg = regions_[r];
    if (reg.pfn[i] == kNoPfn) {
      ++i;
      continue;
    }
    // Find the head of the folio covering i.
    uint64_t head = i;
    while (reg.order[head] == kTail) --head;
    const int order = reg.order[head];
    const uint64_t n = uint64_t{1} << order;
    if (head >= first && head + n <= end) {
      FreeBlock(reg.pfn[head], order);
      for (uint64_t j = head; j < head + n; ++j) {
        reg.pfn[j] = kNoPfn;
        reg.order[j] = kTail;
      }
      pages_.anon -= n;
      if (order == kPageblockOrder) --pages_.anon_thp;
      freed += n;
      i = head + n;
      continue;
    }
    // Part of a large folio: split it into base pages (split_folio; the
    // kernel defers this split to the deferred-split shrinker, the model
    // does it at once) and free only the pages in the range.
    const uint64_t base = reg.pfn[head];
    absl::Status st = a_->SplitAllocated(base);
    FRAGLAB_CHECK_MSG(st.ok(), "splitting anon folio at pfn %llu: %s", static_cast<unsigned long long>(base),
                      std::string(st.message()).c_str());
    if (order == kPageblockOrder) {
      ++counters_.thp_split_page;
      --pages_.anon_thp;
    }
    SetRmap(base, 0);
    for (uint64_t j = head; j < head + n; ++j) {
      reg.order[j] = 0;
      SetRmap(reg.pfn[j], RmapEntry(kRmapAnon, r, j));
    }
    // Loop again over the same index: now it is an order-0 head.
  }
  if (unmap) {
    AnonRegion& reg = regions_[r];
    for (uint64_t j = first; j < end; ++j) {
      if (reg.unmapped[j]) continue;
      reg.unmapped[j] = 1;
      const uint64_t slot = j / kPmdPages;
      const uint64_t in_slot = std::min<uint64_t>(kPmdPages, reg.pfn.size() - slot * kPmdPages);
      if (++reg.unmapped_in_pt[slot] == in_slot && reg.pt[slot] != kNoPfn) {
        // free_pgtables(): the whole 2 MiB is gone, so is its table.
        const uint64_t pt = reg.pt[slot];
        reg.pt[slot] = kNoPfn;
        FreeBlock(pt, 0);
        --pages_.page_table;
      }
    }
  }
  return freed;
}

void KernelModel::FreeRegionAll(size_t r) { ReleaseRange(r, 0, regions_[r].pfn.size(), /*unmap=*/true); }

absl::StatusOr<std::vector<std::pair<uint64_t, uint64_t>>> KernelModel::PickUnits(const sc::ReleaseOp& op,
                                                                                  uint64_t units,
                                                                                  uint64_t unit_bytes,
                                                                                  const std::string& where) {
  std::vector<std::pair<uint64_t, uint64_t>> out;
  auto add = [&](uint64_t f, uint64_t e) {
    e = std::min(e, units);
    if (f >= e) return;
    if (!out.empty() && out.back().second == f) {
      out.back().second = e;
    } else {
      out.emplace_back(f, e);
    }
  };
  switch (op.pattern) {
    case sc::ReleasePattern::kWhole: add(0, units); break;
    case sc::ReleasePattern::kEveryNth:
      if (op.n == 0 || op.offset >= op.n) {
        return absl::InvalidArgumentError(absl::StrCat(where, ": every-nth needs n >= 1 and offset < n"));
      }
      for (uint64_t u = op.offset; u < units; u += op.n) add(u, u + 1);
      break;
    case sc::ReleasePattern::kRandom: {
      // Exactly round(fraction * units) units, by a partial Fisher-Yates
      // shuffle; then released in address order.
      const uint64_t want = std::min<uint64_t>(units, static_cast<uint64_t>(op.fraction * static_cast<double>(units) + 0.5));
      std::vector<uint64_t> idx(units);
      for (uint64_t i = 0; i < units; ++i) idx[i] = i;
      for (uint64_t i = 0; i < want; ++i) std::swap(idx[i], idx[i + rng_.Uniform(units - i)]);
      idx.resize(want);
      std::sort(idx.begin(), idx.end());
      for (uint64_t u : idx) add(u, u + 1);
      break;
    }
    case sc::ReleasePattern::kStride: {
      ASSIGN_OR_RETURN(uint64_t stride, Bytes(op.stride, where, "stride"));
      ASSIGN_OR_RETURN(uint64_t length, Bytes(op.length, where, "length"));
      const uint64_t s = std::max<uint64_t>(1, stride / unit_bytes);
      const uint64_t l = std::max<uint64_t>(1, length / unit_bytes);
      for (uint64_t u = 0; u < units; u += s) add(u, u + std::min(l, s));
      break;
    }
  }
  return out;
}

absl::Status KernelModel::DoRelease(const sc::ReleaseOp& op, const std::string& where) {
  if (op.method == sc::ReleaseMethod::kPageout) {
    return absl::InvalidArgumentError(absl::StrCat(
        where, ": method 'pageout' is not modelled: the simulated machine has no swap to page out to"));
  }
  const bool unmap = op.method != sc::ReleaseMethod::kDontneed;
  std::optional<uint64_t> unit_bytes_opt;
  if (op.unit) {
    ASSIGN_OR_RETURN(uint64_t ub, Bytes(*op.unit, where, "unit"));
    if (ub < kPageBytes || ub % kPageBytes != 0) {
      return absl::InvalidArgumentError(absl::StrCat(where, ": unit must be a whole number of 4 KiB pages"));
    }
    unit_bytes_opt = ub;
  }
  if (auto it = anon_tags_.find(op.region); it != anon_tags_.end()) {
    uint64_t freed = 0, splits0 = counters_.thp_split_page, pt0 = pages_.page_table;
    Step(absl::StrCat("release ", sc::ReleasePatternName(op.pattern), " of anon '", op.region, "' (",
                      it->second.size(), " region(s), ", sc::ReleaseMethodName(op.method), ")"));
    for (size_t r : it->second) {
      const uint64_t page_units = regions_[r].page_size.kind == sc::PageSize::Kind::kBase
                                      ? 1
                                      : (uint64_t{1} << regions_[r].page_size.order);
      const uint64_t unit_pages = unit_bytes_opt ? *unit_bytes_opt / kPageBytes : page_units;
      const uint64_t units = DivCeil(regions_[r].pfn.size(), unit_pages);
      ASSIGN_OR_RETURN(auto picks, PickUnits(op, units, unit_pages * kPageBytes, where));
      for (const auto& [f, e] : picks) freed += ReleaseRange(r, f * unit_pages, e * unit_pages, unmap);
    }
    StepDone(absl::StrCat(freed, " pages freed, ", counters_.thp_split_page - splits0, " THPs split, ",
                          pt0 - pages_.page_table, " page-table pages freed"));
    return absl::OkStatus();
  }
  if (auto it = slab_tags_.find(op.region); it != slab_tags_.end()) {
    std::vector<std::pair<uint32_t, uint32_t>>& objs = it->second;
    Step(absl::StrCat("release ", sc::ReleasePatternName(op.pattern), " of slab '", op.region, "' (",
                      objs.size(), " units; a unit is a negative dentry, or a tmpfs file: inode and dentry)"));
    const uint64_t slab0 = pages_.slab_reclaimable + pages_.slab_unreclaimable;
    ASSIGN_OR_RETURN(auto picks, PickUnits(op, objs.size(), kPageBytes, where));
    std::vector<uint8_t> pick(objs.size(), 0);
    for (const auto& [f, e] : picks) std::fill(pick.begin() + static_cast<ptrdiff_t>(f), pick.begin() + static_cast<ptrdiff_t>(e), 1);
    std::vector<std::pair<uint32_t, uint32_t>> kept;
    uint64_t n = 0;
    for (size_t i = 0; i < objs.size(); ++i) {
      if (!pick[i]) {
        kept.push_back(objs[i]);
        continue;
      }
      // Unlinking a tmpfs file frees its inode and kills its dentry.
      for (uint32_t id : {objs[i].first, objs[i].second}) {
        if (id != kNone32 && objects_[id].alive) {
          SlabFree(id);
          ++n;
        }
      }
    }
    objs = std::move(kept);
    StepDone(absl::StrCat(n, " objects freed, ", slab0 - pages_.slab_reclaimable - pages_.slab_unreclaimable,
                          " slab pages freed"));
    return absl::OkStatus();
  }
  if (auto it = pin_tags_.find(op.region); it != pin_tags_.end()) {
    Step(absl::StrCat("release ", sc::ReleasePatternName(op.pattern), " of pin '", op.region, "'"));
    uint64_t freed = 0;
    for (size_t p : it->second) {
      PinSet& ps = pins_[p];
      ASSIGN_OR_RETURN(auto picks, PickUnits(op, ps.blocks.size(), kPageBytes, where));
      for (const auto& [f, e] : picks) {
        for (uint64_t i = f; i < e; ++i) {
          Block& b = ps.blocks[i];
          if (b.pfn == kNoPfn) continue;
          FreeBlock(b.pfn, b.order);
          const uint64_t n = uint64_t{1} << b.order;
          freed += n;
          switch (ps.kind) {
            case sc::PinKind::kPipe: pages_.pipe -= n; break;
            case sc::PinKind::kPagetable: pages_.page_table -= n; break;
            case sc::PinKind::kSocket: pages_.socket -= n; break;
            case sc::PinKind::kLongterm: pages_.pinned -= n; break;
          }
          b.pfn = kNoPfn;
        }
      }
      if (op.pattern == sc::ReleasePattern::kWhole) {
        for (size_t r : ps.regions) FreeRegionAll(r);
      }
    }
    StepDone(absl::StrCat(freed, " pages freed"));
    return absl::OkStatus();
  }
  if (auto it = file_tags_.find(op.region); it != file_tags_.end()) {
    // Deleting the files: truncation frees every cached folio.
    Step(absl::StrCat("release ", sc::ReleasePatternName(op.pattern), " of page cache '", op.region,
                      "' (unit = one folio; the files' cached folios are truncated)"));
    uint64_t freed = 0;
    std::vector<uint32_t> ids;
    for (uint32_t set : it->second) {
      for (const auto& file : file_sets_[set].files) {
        for (uint32_t id : file) ids.push_back(id);
      }
    }
    ASSIGN_OR_RETURN(auto picks, PickUnits(op, ids.size(), kPageBytes, where));
    for (const auto& [f, e] : picks) {
      for (uint64_t i = f; i < e; ++i) {
        if (folios_[ids[i]].pfn == kNoPfn) continue;
        freed += uint64_t{1} << folios_[ids[i]].order;
        FreeFolio(ids[i]);
      }
    }
    StepDone(absl::StrCat(freed, " pages freed"));
    return absl::OkStatus();
  }
  return absl::InvalidArgumentError(absl::StrCat(where, ": region '", op.region,
                                                 "' names no anon, pin, slab or page cache tag made earlier"));
}

// ---------------------------------------------------------------------------
// Pins.

absl::Status KernelModel::DoPin(const sc::PinOp& op, const std::string& where) {
  ASSIGN_OR_RETURN(uint64_t bytes, Bytes(op.size, where, "size"));
  const uint64_t pages = DivCeil(bytes, kPageBytes);
  PinSet ps;
  ps.tag = op.tag;
  ps.kind = op.kind;
  auto oom = [&](const char* what) {
    return absl::ResourceExhaustedError(absl::StrCat(where, ": out of memory: ", what, " could not be allocated"));
  };
  switch (op.kind) {
    case sc::PinKind::kPipe: {
      // The generator grows each pipe to fs.pipe-max-size (1 MiB = 256
      // buffers) and fills it with 4 KiB writes. pipe_resize_ring()
      // allocates the 256 x 40-byte pipe_buffer array with kcalloc: 10 KiB,
      // above the largest kmalloc cache, so an order-2 unmovable page
      // allocation; each write allocates one page (GFP_HIGHUSER|__GFP_ACCOUNT).
      constexpr uint64_t kBufsPerPipe = 256;
      const uint64_t pipes = DivCeil(pages, kBufsPerPipe);
      Step(absl::StrFormat("pin pipe '%s' %s: %d pipes, each a 16 KiB ring (order 2, gfp %#x) and up to 256 "
                           "buffer pages (order 0, gfp %#x)",
                           op.tag, Mib(bytes), pipes, gfp::kKernel | kGfpAccount | gfp::kComp,
                           kGfpHighuser | kGfpAccount));
      uint64_t left = pages;
      for (uint64_t p = 0; p < pipes; ++p) {
        const uint64_t ring = Alloc(2, gfp::kKernel | kGfpAccount | gfp::kComp, OwnerKind::kPipe);
        if (ring == kNoPfn) return oom("a pipe ring");
        ps.blocks.push_back({ring, 2});
        pages_.pipe += 4;
        const uint64_t bufs = std::min(left, kBufsPerPipe);
        for (uint64_t b = 0; b < bufs; ++b) {
          const uint64_t pfn = Alloc(0, kGfpHighuser | kGfpAccount, OwnerKind::kPipe);
          if (pfn == kNoPfn) return oom("a pipe buffer page");
          ps.blocks.push_back({pfn, 0});
          ++pages_.pipe;
        }
        left -= bufs;
        Background();
      }
      StepDone(absl::StrCat(pages, " buffer pages in ", pipes, " pipes"));
      break;
    }
    case sc::PinKind::kPagetable: {
      // Read faults one per 2 MiB of a sparse mapping map the zero page:
      // only a PTE table is allocated per touch.
      Step(absl::StrFormat("pin pagetable '%s' %s: %d page-table pages (order 0, gfp %#x)", op.tag, Mib(bytes),
                           pages, kGfpPgtable));
      for (uint64_t i = 0; i < pages; ++i) {
        const uint64_t pfn = Alloc(0, kGfpPgtable, OwnerKind::kPageTable);
        if (pfn == kNoPfn) return oom("a page-table page");
        ps.blocks.push_back({pfn, 0});
        ++pages_.page_table;
        Background();
      }
      StepDone(absl::StrCat(pages, " page-table pages"));
      break;
    }
    case sc::PinKind::kSocket: {
      // TCP sendmsg copies into the socket's page fragment:
      // skb_page_frag_refill() tries an order-3 compound page without
      // direct reclaim (__GFP_NORETRY|__GFP_NOWARN), then order 0 with the
      // socket's GFP_KERNEL. Loopback hands the sender's skbs to the
      // receiver, which never reads: the pages stay.
      const uint64_t g3 = ((gfp::kKernel | kGfpAccount) & ~gfp::kDirectReclaim) | gfp::kComp | kGfpNowarn | gfp::kNoretry;
      const uint64_t g0 = gfp::kKernel | kGfpAccount;
      Step(absl::StrFormat("pin socket '%s' %s: skb fragments of 32 KiB (order 3, gfp %#x), order 0 (gfp %#x) "
                           "when that fails",
                           op.tag, Mib(bytes), g3, g0));
      uint64_t left = pages, big = 0, small = 0;
      while (left > 0) {
        uint64_t pfn = left >= 8 ? Alloc(3, g3, OwnerKind::kSocket) : kNoPfn;
        if (pfn != kNoPfn) {
          ps.blocks.push_back({pfn, 3});
          pages_.socket += 8;
          left -= 8;
          ++big;
          Background();
          continue;
        }
        pfn = Alloc(0, g0, OwnerKind::kSocket);
        if (pfn == kNoPfn) return oom("a socket buffer page");
        ps.blocks.push_back({pfn, 0});
        ++pages_.socket;
        --left;
        ++small;
        Background();
      }
      StepDone(absl::StrCat(big, " order-3 fragments, ", small, " order-0 pages"));
      break;
    }
    case sc::PinKind::kLongterm: {
      // io_uring fixed buffers: the pages are faulted as ordinary anon
      // memory, then pinned with FOLL_LONGTERM. A page in ZONE_MOVABLE or a
      // CMA pageblock is first migrated to a GFP_USER (unmovable) page
      // (check_and_migrate_movable_pages); then the page stays where it is
      // and compaction cannot move it (owner kPinned).
      Step(absl::StrFormat("pin longterm '%s' %s: anon pages (gfp %#x) pinned with FOLL_LONGTERM", op.tag,
                           Mib(bytes), gfp::kHighuserMovable));
      const size_t r = NewRegion(absl::StrCat(op.tag, "#longterm"), sc::PageSize::Base(), pages, false);
      ps.regions.push_back(r);
      uint64_t moved = 0;
      for (uint64_t i = 0; i < pages; ++i) {
        RETURN_IF_ERROR(EnsurePageTable(r, i, where));
        // Owner kPinned from the start: the pin follows the fault with
        // nothing in between, and compaction must not move the page while
        // a migration target is allocated.
        uint64_t pfn = Alloc(0, gfp::kHighuserMovable, OwnerKind::kPinned);
        if (pfn == kNoPfn) return oom("a page to pin");
        const int z = a_->ZoneOfPfn(pfn);
        const bool movable_zone = z >= 0 && a_->zone_stats(z).type == kZoneMovable;
        if (movable_zone || a_->PageblockType(pfn) == kCma) {
          const uint64_t dst = Alloc(0, gfp::kUser | kGfpNowarn, OwnerKind::kPinned);
          if (dst == kNoPfn) return oom("a migration target for a long-term pin");
          FreeBlock(pfn, 0);
          pfn = dst;
          ++moved;
        }
        // The pin set owns the page; the region only accounts for the
        // address space (its page tables).
        ps.blocks.push_back({pfn, 0});
        ++pages_.pinned;
        Background();
      }
      StepDone(absl::StrCat(pages, " pages pinned, ", moved, " migrated out of movable memory first, ",
                            regions_[r].pt.size(), " page-table pages"));
      break;
    }
  }
  pins_.push_back(std::move(ps));
  pin_tags_[op.tag].push_back(pins_.size() - 1);
  return absl::OkStatus();
}

// ---------------------------------------------------------------------------
// Slab.

absl::StatusOr<uint32_t> KernelModel::SlabAlloc(uint8_t cache, bool pinned, const std::string& where) {
  SlabCache& c = caches_[cache];
  if (c.current == kNone32 || c.slabs[c.current].inuse == c.geo.objects_per_slab) {
    c.current = kNone32;
    // get_partial(): the oldest slab with free objects, else a new slab.
    while (c.partial_head < c.partial.size()) {
      const uint32_t s = c.partial[c.partial_head++];
      c.slabs[s].partial_queued = false;
      if (c.slabs[s].pfn != kNoPfn && c.slabs[s].inuse < c.geo.objects_per_slab) {
        c.current = s;
        break;
      }
    }
    if (c.partial_head == c.partial.size()) {
      c.partial.clear();
      c.partial_head = 0;
    }
    if (c.current == kNone32) {
      // allocate_slab(): GFP_KERNEL (|__GFP_RECLAIMABLE for SLAB_RECLAIM_ACCOUNT
      // caches), __GFP_COMP for order > 0, first try without reclaim.
      const uint64_t g = (c.geo.reclaimable ? gfp::kKernelReclaimable : gfp::kKernel) |
                         (c.geo.order > 0 ? gfp::kComp : 0);
      const OwnerKind owner = c.geo.reclaimable ? OwnerKind::kSlabReclaimable : OwnerKind::kSlabUnmovable;
      const uint64_t pfn = Alloc(c.geo.order, g, owner);
      if (pfn == kNoPfn) {
        return absl::ResourceExhaustedError(
            absl::StrCat(where, ": out of memory: a slab of ", c.geo.name, " could not be allocated"));
      }
      c.slabs.push_back({pfn, 0, false});
      c.current = static_cast<uint32_t>(c.slabs.size() - 1);
      (c.geo.reclaimable ? pages_.slab_reclaimable : pages_.slab_unreclaimable) += uint64_t{1} << c.geo.order;
    }
  }
  ++c.slabs[c.current].inuse;
  objects_.push_back({cache, c.current, true, pinned});
  return static_cast<uint32_t>(objects_.size() - 1);
}

void KernelModel::SlabFree(uint32_t object, bool tick) {
  SlabObject& o = objects_[object];
  if (!o.alive) return;
  o.alive = false;
  SlabCache& c = caches_[o.cache];
  Slab& s = c.slabs[o.slab];
  --s.inuse;
  if (s.inuse == 0 && o.slab != c.current) {
    // discard_slab(): an empty slab goes back to the page allocator (the
    // model keeps no min_partial reserve of empty slabs).
    FreeBlock(s.pfn, c.geo.order, tick);
    (c.geo.reclaimable ? pages_.slab_reclaimable : pages_.slab_unreclaimable) -= uint64_t{1} << c.geo.order;
    s.pfn = kNoPfn;
    return;
  }
  if (!s.partial_queued && o.slab != c.current) {
    s.partial_queued = true;
    c.partial.push_back(o.slab);
  }
}

absl::Status KernelModel::DoSlab(const sc::SlabOp& op, const std::string& where) {
  std::vector<std::pair<uint32_t, uint32_t>>& tag = slab_tags_[op.tag];
  if (op.kind == sc::SlabKind::kDentry) {
    // Negative dentries from stat(2) of missing names: one dentry object
    // each, on the dentry LRU, freeable by the shrinker.
    Step(absl::StrFormat("slab dentry '%s': %d negative dentries (%s: %d B, %d per order-%d slab, gfp %#x)", op.tag,
                         op.count, kDentrySlab.name, kDentrySlab.object_size, kDentrySlab.objects_per_slab,
                         kDentrySlab.order, gfp::kKernelReclaimable));
    const uint64_t p0 = pages_.slab_reclaimable;
    for (uint64_t i = 0; i < op.count; ++i) {
      ASSIGN_OR_RETURN(uint32_t id, SlabAlloc(0, false, where));
      tag.emplace_back(id, kNone32);
      dentry_lru_.push_back(id);
      Background();
    }
    StepDone(absl::StrCat(pages_.slab_reclaimable - p0, " new slab pages"));
    return absl::OkStatus();
  }
  // Empty files on tmpfs: a shmem inode (unreclaimable slab: the cache has
  // no SLAB_RECLAIM_ACCOUNT) and a dentry that stays pinned while the file
  // exists.
  Step(absl::StrFormat("slab inode '%s': %d tmpfs files = %d %s objects (%d B, %d per order-%d slab, gfp %#x) "
                       "+ %d pinned dentries",
                       op.tag, op.count, op.count, kShmemInodeSlab.name, kShmemInodeSlab.object_size,
                       kShmemInodeSlab.objects_per_slab, kShmemInodeSlab.order, gfp::kKernel | gfp::kComp,
                       op.count));
  const uint64_t r0 = pages_.slab_reclaimable, u0 = pages_.slab_unreclaimable;
  for (uint64_t i = 0; i < op.count; ++i) {
    ASSIGN_OR_RETURN(uint32_t inode, SlabAlloc(1, true, where));
    ASSIGN_OR_RETURN(uint32_t dentry, SlabAlloc(0, true, where));
    tag.emplace_back(inode, dentry);
    Background();
  }
  StepDone(absl::StrCat(pages_.slab_unreclaimable - u0, " unreclaimable and ", pages_.slab_reclaimable - r0,
                        " reclaimable new slab pages"));
  return absl::OkStatus();
}

uint64_t KernelModel::DropDentries(uint64_t max_pages, bool tick) {
  const uint64_t p0 = pages_.slab_reclaimable;
  std::vector<uint32_t> keep;
  size_t i = dentry_lru_head_;
  for (; i < dentry_lru_.size(); ++i) {
    if (p0 - pages_.slab_reclaimable >= max_pages) break;
    const uint32_t id = dentry_lru_[i];
    if (objects_[id].alive && !objects_[id].pinned) SlabFree(id, tick);
  }
  dentry_lru_head_ = i;
  if (dentry_lru_head_ == dentry_lru_.size()) {
    dentry_lru_.clear();
    dentry_lru_head_ = 0;
  }
  return p0 - pages_.slab_reclaimable;
}

// ---------------------------------------------------------------------------
// Page cache.

uint32_t KernelModel::NewFolio(uint64_t pfn, int order, uint32_t set) {
  FileFolio f;
  f.pfn = pfn;
  f.order = order;
  f.set = set;
  folios_.push_back(f);
  const uint32_t id = static_cast<uint32_t>(folios_.size() - 1);
  LruAppend(id);
  SetRmap(pfn, RmapEntry(kRmapFile, 0, id));
  pages_.file += uint64_t{1} << order;
  return id;
}

void KernelModel::LruAppend(uint32_t id) {
  FileFolio& f = folios_[id];
  f.prev = lru_tail_;
  f.next = kNone32;
  if (lru_tail_ != kNone32) {
    folios_[lru_tail_].next = id;
  } else {
    lru_head_ = id;
  }
  lru_tail_ = id;
}

void KernelModel::LruUnlink(uint32_t id) {
  FileFolio& f = folios_[id];
  if (f.prev != kNone32) {
    folios_[f.prev].next = f.next;
  } else {
    lru_head_ = f.next;
  }
  if (f.next != kNone32) {
    folios_[f.next].prev = f.prev;
  } else {
    lru_tail_ = f.prev;
  }
  f.prev = f.next = kNone32;
}

void KernelModel::FreeFolio(uint32_t id, bool tick) {
  FileFolio& f = folios_[id];
  if (f.pfn == kNoPfn) return;
  LruUnlink(id);
  const uint64_t pfn = f.pfn;
  f.pfn = kNoPfn;
  pages_.file -= uint64_t{1} << f.order;
  FreeBlock(pfn, f.order, tick);
}

absl::Status KernelModel::DoPagecache(const sc::PagecacheOp& op, const std::string& where) {
  ASSIGN_OR_RETURN(uint64_t bytes, Bytes(op.size, where, "size"));
  // Minimum folio order from the block size (large block sizes need folios
  // of at least a block); large folios from the write/read size (64 KiB
  // I/O: order 4) on filesystems with large-folio page cache: XFS, and
  // ext4 in the CLAIM era (ext4 got large folios in 6.16). tmpfs (huge=never)
  // and btrfs use order-0 folios. `path` is taken as an ext4 directory.
  const sc::FsType fs = op.fs ? op.fs->type : sc::FsType::kExt4;
  int min_order = 0;
  if (op.fs && op.fs->block_size && *op.fs->block_size > kPageBytes) {
    uint64_t bs = *op.fs->block_size;
    while ((kPageBytes << min_order) < bs) ++min_order;
  }
  const bool large = fs == sc::FsType::kXfs || (fs == sc::FsType::kExt4 && a_->config().era == Era::kClaim);
  const int io_order = large ? std::max(min_order, 4) : min_order;
  const uint64_t per_file_pages = DivCeil(DivCeil(bytes, op.files), kPageBytes);
  const uint64_t folio_pages = uint64_t{1} << io_order;
  const uint64_t folios_per_file = DivCeil(per_file_pages, folio_pages);
  // Buffered writes and readahead: mapping gfp GFP_HIGHUSER_MOVABLE; above
  // the minimum order __GFP_NORETRY|__GFP_NOWARN, falling back one order at
  // a time down to the minimum (__filemap_get_folio, page_cache_ra_order).
  const uint64_t base_gfp = gfp::kHighuserMovable;
  Step(absl::StrFormat("pagecache '%s' on %s%s: %d files x %d folios of order %d (min order %d, gfp %#x), %s, "
                       "%d cycle(s), fadvise %s",
                       op.tag, op.fs ? sc::FsTypeName(fs) : "path (as ext4)",
                       op.fs && op.fs->block_size ? absl::StrCat(" bs ", *op.fs->block_size) : std::string(),
                       op.files, folios_per_file, io_order, min_order, base_gfp, sc::IoModeName(op.mode), op.cycles,
                       sc::FadviseName(op.fadvise)));
  FileSet set;
  set.tag = op.tag;
  set.files.resize(op.files);
  file_sets_.push_back(std::move(set));
  const uint32_t set_id = static_cast<uint32_t>(file_sets_.size() - 1);
  file_tags_[op.tag].push_back(set_id);
  uint64_t allocated = 0, freed = 0, smaller = 0;

  auto fill_file = [&](uint64_t f) -> absl::Status {
    for (uint64_t k = 0; k < folios_per_file; ++k) {
      uint64_t pfn = kNoPfn;
      int o = io_order;
      for (; o >= min_order; --o) {
        const uint64_t g = o > min_order ? (base_gfp | gfp::kNoretry | kGfpNowarn) : base_gfp;
        pfn = Alloc(o, g, OwnerKind::kFile);
        if (pfn != kNoPfn) break;
      }
      if (pfn == kNoPfn) {
        return absl::ResourceExhaustedError(absl::StrCat(where, ": out of memory: a page-cache folio of order ",
                                                         min_order, " could not be allocated"));
      }
      if (o < io_order) smaller += 1;
      // Each pass covers the same file offsets: one folio per `folio_pages`.
      // The folio may be smaller than planned; the rest of its slot stays a
      // hole (the next pass allocates the slot again as a whole).
      file_sets_[set_id].files[f].push_back(NewFolio(pfn, o, set_id));
      allocated += uint64_t{1} << o;
    }
    return absl::OkStatus();
  };
  auto drop_file = [&](uint64_t f) {
    for (uint32_t id : file_sets_[set_id].files[f]) {
      if (folios_[id].pfn != kNoPfn) {
        freed += uint64_t{1} << folios_[id].order;
        FreeFolio(id);
      }
    }
    file_sets_[set_id].files[f].clear();
  };
  auto cached = [&](uint64_t f) {
    uint64_t n = 0;
    for (uint32_t id : file_sets_[set_id].files[f]) n += folios_[id].pfn != kNoPfn ? 1 : 0;
    return n;
  };
  auto read_file = [&](uint64_t f) -> absl::Status {
    if (cached(f) == folios_per_file) {
      // Cache hits: mark_page_accessed moves the folios up the LRU.
      for (uint32_t id : file_sets_[set_id].files[f]) {
        LruUnlink(id);
        LruAppend(id);
      }
      return absl::OkStatus();
    }
    // Some folios were reclaimed: read the file again from disk.
    drop_file(f);
    return fill_file(f);
  };
  const bool write = op.mode == sc::IoMode::kWrite;
  if (!write) {
    // The generator makes the files, then drops them (fdatasync + DONTNEED)
    // so each read starts from an empty cache.
    for (uint64_t f = 0; f < op.files; ++f) {
      RETURN_IF_ERROR(fill_file(f));
      drop_file(f);
      Background();
    }
  }
  for (uint64_t c = 0; c < op.cycles; ++c) {
    for (uint64_t f = 0; f < op.files; ++f) {
      if (write) {
        drop_file(f);  // O_TRUNC truncates the cached folios
        RETURN_IF_ERROR(fill_file(f));
      } else {
        RETURN_IF_ERROR(read_file(f));
      }
      Background();
    }
    if (op.fadvise == sc::Fadvise::kDontneed && c + 1 < op.cycles) {
      for (uint64_t f = 0; f < op.files; ++f) drop_file(f);
    }
  }
  StepDone(absl::StrCat(allocated, " pages allocated (", smaller, " folios below the planned order), ", freed,
                        " freed; ", pages_.file, " page-cache pages held"));
  return absl::OkStatus();
}

absl::Status KernelModel::DoDropCaches(const sc::DropCachesOp& op) {
  const bool pc = op.what != sc::DropWhat::kSlab;
  const bool slab = op.what != sc::DropWhat::kPagecache;
  Step(absl::StrCat("drop_caches ", sc::DropWhatName(op.what), ": ", pc ? "every clean page-cache folio" : "",
                    pc && slab ? " and " : "", slab ? "every unused dentry" : ""));
  uint64_t file = 0, slab_pages = 0;
  if (pc) {
    // drop_pagecache_sb(): invalidate every unlocked clean folio (the run
    // syncs first, so all are clean).
    ++counters_.drop_pagecache;
    const uint64_t f0 = pages_.file;
    while (lru_head_ != kNone32) FreeFolio(lru_head_);
    file = f0 - pages_.file;
  }
  if (slab) {
    // drop_slab(): the shrinkers free unused dentries; pinned dentries of
    // live tmpfs files and the inodes stay.
    ++counters_.drop_slab;
    slab_pages = DropDentries(UINT64_MAX, /*tick=*/true);
  }
  StepDone(absl::StrCat(file, " page-cache pages and ", slab_pages, " slab pages freed"));
  return absl::OkStatus();
}

// ---------------------------------------------------------------------------
// THP madvise / collapse, probes.

absl::Status KernelModel::DoThp(const sc::ThpOp& op, const std::string& where) {
  auto it = anon_tags_.find(op.region);
  if (it == anon_tags_.end()) {
    return absl::InvalidArgumentError(
        absl::StrCat(where, ": region '", op.region, "' names no anon region made earlier"));
  }
  if (op.action == sc::ThpAction::kMadvise) {
    Step(absl::StrCat("thp madvise '", op.region, "': MADV_HUGEPAGE (later faults may use THPs)"));
    for (size_t r : it->second) regions_[r].madvised = true;
    StepDone("done");
    return absl::OkStatus();
  }
  // MADV_COLLAPSE (madvise_collapse): for each 2 MiB range fully inside
  // the region with at least one present page and not already a THP,
  // allocate an order-9 folio with GFP_TRANSHUGE (direct reclaim, sync
  // compaction), copy, free the pages it replaces. The PTE table becomes
  // the deposited table of the PMD mapping.
  Step(absl::StrFormat("thp collapse '%s': MADV_COLLAPSE, order-9 allocations (gfp %#x)", op.region, kGfpTranshuge));
  uint64_t ok = 0, failed = 0, freed = 0;
  for (size_t r : it->second) {
    const uint64_t chunks = regions_[r].pfn.size() / kPmdPages;
    for (uint64_t ch = 0; ch < chunks; ++ch) {
      const uint64_t s = ch * kPmdPages;
      bool any = false, unmapped = false;
      {
        const AnonRegion& reg = regions_[r];
        if (reg.pfn[s] != kNoPfn && reg.order[s] == kPageblockOrder) continue;
        for (uint64_t j = s; j < s + kPmdPages; ++j) {
          any |= reg.pfn[j] != kNoPfn;
          unmapped |= reg.unmapped[j] != 0;
        }
      }
      if (!any || unmapped) continue;
      const uint64_t pfn = Alloc(kPageblockOrder, kGfpTranshuge, OwnerKind::kAnon);
      if (pfn == kNoPfn) {
        ++counters_.thp_collapse_alloc_failed;
        ++failed;
        continue;
      }
      ++counters_.thp_collapse_alloc;
      ++ok;
      // Free what the new folio replaces; records are read after the
      // allocation because its compaction may have moved them.
      freed += ReleaseRange(r, s, s + kPmdPages, /*unmap=*/false);
      MapFolio(r, s, pfn, kPageblockOrder);
      if (regions_[r].pt[ch] == kNoPfn) RETURN_IF_ERROR(EnsurePageTable(r, s, where));
    }
  }
  StepDone(absl::StrCat(ok, " collapsed, ", failed, " failed; ", freed, " small pages freed"));
  return absl::OkStatus();
}

absl::Status KernelModel::DoProbe(const sc::ProbeOp& op, const std::string& where) {
  const uint64_t t0 = a_->time();
  uint32_t order = kPageblockOrder;
  uint64_t obtained = 0;
  uint32_t kind = FL_PROBE_THP;
  if (op.kind == sc::ProbeKind::kHugetlb) {
    kind = FL_PROBE_HUGETLB;
    // Growing nr_hugepages: alloc_buddy_hugetlb_folio() per page with
    // htlb_alloc_mask (GFP_HIGHUSER_MOVABLE for 2 MiB pages, which can
    // migrate) | __GFP_COMP | __GFP_RETRY_MAYFAIL | __GFP_NOWARN |
    // __GFP_THISNODE; after a failure on a node, __GFP_NORETRY for the rest
    // of the pass. Then shrunk back: every page is freed.
    const uint64_t g = gfp::kHighuserMovable | gfp::kComp | gfp::kRetryMayfail | kGfpNowarn | gfp::kThisnode;
    Step(absl::StrFormat("probe hugetlb: %d order-9 allocations (gfp %#x), then given back", op.count, g));
    std::vector<uint64_t> got;
    bool noretry = false;
    for (uint64_t i = 0; i < op.count; ++i) {
      const uint64_t pfn = Alloc(kPageblockOrder, noretry ? (g | gfp::kNoretry) : g, OwnerKind::kHugetlb);
      if (pfn == kNoPfn) {
        ++counters_.htlb_buddy_alloc_fail;
        noretry = true;
        continue;
      }
      ++counters_.htlb_buddy_alloc_success;
      got.push_back(pfn);
      Background();  // hugetlb pages are neither reclaimable nor movable here
    }
    obtained = got.size();
    for (uint64_t pfn : got) FreeBlock(pfn, kPageblockOrder);
  } else {
    // N 2 MiB ranges (or N mTHP-sized ranges) madvised, write-faulted,
    // then unmapped: a temporary region.
    const bool mthp = op.page_size.kind == sc::PageSize::Kind::kMthp;
    order = static_cast<uint32_t>(op.page_size.order);
    const uint64_t n = uint64_t{1} << order;
    Step(absl::StrFormat("probe %s: %d faults of order %d (gfp %#x), then unmapped", mthp ? "mTHP" : "thp",
                         op.count, order, ThpGfp(!mthp)));
    const size_t r = NewRegion("#probe", op.page_size, op.count * n, /*madvised=*/!mthp);
    for (uint64_t i = 0; i < op.count; ++i) {
      int got = -1;
      RETURN_IF_ERROR(Fault(r, i * n, where, &got));
      if (got == static_cast<int>(order)) ++obtained;
      // The generator's THP probe writes one byte per 2 MiB: a fallback
      // faults one base page. Its mTHP probe touches every 4 KiB page, so
      // a fallback there faults the rest of the range too.
      if (mthp) {
        for (uint64_t j = i * n; j < (i + 1) * n; ++j) RETURN_IF_ERROR(Fault(r, j, where, &got));
      }
      Background();
    }
    FreeRegionAll(r);
  }
  StepDone(absl::StrCat(obtained, "/", op.count, " obtained"));
  fl_probe rec;
  InitRecord(rec, FL_EV_PROBE, a_->time(), 0);
  rec.probe_kind = kind;
  rec.order = order;
  rec.requested = op.count;
  rec.obtained = obtained;
  rec.duration_ns = a_->time() - t0;  // logical time: allocator calls made
  if (sink_ != nullptr) RETURN_IF_ERROR(sink_->Emit(rec.hdr));
  return absl::OkStatus();
}

// ---------------------------------------------------------------------------
// Settings.

absl::Status KernelModel::DoSysctl(const sc::SysctlOp& op, const std::string& where) {
  Step(absl::StrCat("sysctl ", op.setting, " = ", op.value));
  if (op.setting.rfind("thp.", 0) == 0) {
    absl::Status st = sc::ApplySysctl(spec_, op.setting, op.value);
    if (!st.ok()) return absl::InvalidArgumentError(absl::StrCat(where, ": ", st.message()));
    StepDone("THP setting changed for later faults");
    return absl::OkStatus();
  }
  if (op.setting == "vm.extfrag_threshold" || op.setting == "vm.compaction_proactiveness") {
    // Validate the value the way the scenario format does, then hand it to
    // compaction, which reads these sysctls at each run.
    absl::Status st = sc::ApplySysctl(spec_, op.setting, op.value);
    if (!st.ok()) return absl::InvalidArgumentError(absl::StrCat(where, ": ", st.message()));
    const int64_t v = op.setting == "vm.extfrag_threshold" ? spec_.vm.extfrag_threshold
                                                           : spec_.vm.compaction_proactiveness;
    st = a_->SetCompactionSysctl(op.setting.substr(3), v);
    if (!st.ok()) return absl::InvalidArgumentError(absl::StrCat(where, ": ", st.message()));
    StepDone("compaction setting changed");
    return absl::OkStatus();
  }
  // The allocator's own sysctls (watermarks, boost, pcp high, defrag_mode):
  // validated as the scenario format does, then applied by the allocator,
  // which recomputes watermarks or pcp sizes where the kernel does.
  struct VmField {
    const char* setting;
    int64_t sc::VmSysctls::*field;
  };
  static constexpr VmField kAllocatorSysctls[] = {
      {"vm.min_free_kbytes", &sc::VmSysctls::min_free_kbytes},
      {"vm.watermark_scale_factor", &sc::VmSysctls::watermark_scale_factor},
      {"vm.watermark_boost_factor", &sc::VmSysctls::watermark_boost_factor},
      {"vm.defrag_mode", &sc::VmSysctls::defrag_mode},
      {"vm.percpu_pagelist_high_fraction", &sc::VmSysctls::percpu_pagelist_high_fraction},
  };
  for (const VmField& f : kAllocatorSysctls) {
    if (op.setting != f.setting) continue;
    absl::Status st = sc::ApplySysctl(spec_, op.setting, op.value);
    if (!st.ok()) return absl::InvalidArgumentError(absl::StrCat(where, ": ", st.message()));
    st = a_->SetVmSysctl(op.setting.substr(3), spec_.vm.*f.field);
    if (!st.ok()) return absl::InvalidArgumentError(absl::StrCat(where, ": ", st.message()));
    StepDone("allocator setting changed");
    return absl::OkStatus();
  }
  return absl::InvalidArgumentError(absl::StrCat(where, ": setting '", op.setting,
                                                 "' cannot be changed during a simulated run: the allocator "
                                                 "model has no run-time setter for it (set it in [machine.vm])"));
}

// ---------------------------------------------------------------------------
// PageUser.

void KernelModel::OnMigrated(uint64_t old_pfn, uint64_t new_pfn, int order) { Migrated(old_pfn, new_pfn, order); }

bool KernelModel::Migrated(uint64_t old_pfn, uint64_t new_pfn, int order) {
  if (old_pfn >= rmap_.size() || rmap_[old_pfn] == 0) return false;
  const uint64_t e = rmap_[old_pfn];
  rmap_[old_pfn] = 0;
  SetRmap(new_pfn, e);
  const uint64_t kind = e >> 60;
  const uint64_t holder = (e >> 32) & 0x0fffffffu;
  const uint64_t index = e & 0xffffffffu;
  if (kind == kRmapAnon) {
    AnonRegion& reg = regions_[holder];
    const uint64_t n = uint64_t{1} << order;
    for (uint64_t j = 0; j < n && index + j < reg.pfn.size(); ++j) reg.pfn[index + j] = new_pfn + j;
  } else if (kind == kRmapFile) {
    folios_[index].pfn = new_pfn;
  }
  return true;
}

uint64_t KernelModel::Reclaim(const ReclaimRequest& req) {
  // shrink_node(): no swap, so only the file LRU (oldest first) and the
  // slab shrinkers (unused dentries, oldest first). Only folios in zones
  // of the node at or below the highest allowed zone count.
  uint64_t freed = 0;
  uint32_t id = lru_head_;
  while (id != kNone32 && freed < req.nr_to_reclaim) {
    const uint32_t next = folios_[id].next;
    const int z = a_->ZoneOfPfn(folios_[id].pfn);
    if (z >= 0) {
      const ZoneStats st = a_->zone_stats(z);
      if (st.node == req.node && static_cast<int>(st.type) <= req.highest_zone_type) {
        freed += uint64_t{1} << folios_[id].order;
        FreeFolio(id, /*tick=*/false);
      }
    }
    id = next;
  }
  if (freed < req.nr_to_reclaim) freed += DropDentries(req.nr_to_reclaim - freed, /*tick=*/false);
  return freed;
}

fl_counters KernelModel::CountersRecord(uint64_t time) const {
  fl_counters c;
  InitRecord(c, FL_EV_COUNTERS, time, 0);
  c.present_mask = 0;
  auto set = [&](int i, uint64_t v) {
    c.value[i] = v;
    c.present_mask |= uint64_t{1} << i;
  };
  const VmEventCounters& v = a_->vm_events();
  uint64_t free_pages = 0;
  for (int z = 0; z < a_->num_zones(); ++z) free_pages += a_->zone_stats(z).free_pages;
  set(FL_CTR_NR_FREE_PAGES, free_pages);
  set(FL_CTR_COMPACT_STALL, v.compact_stall);
  set(FL_CTR_COMPACT_FAIL, v.compact_fail);
  set(FL_CTR_COMPACT_SUCCESS, v.compact_success);
  set(FL_CTR_COMPACT_MIGRATE_SCANNED, v.compact_migrate_scanned);
  set(FL_CTR_COMPACT_FREE_SCANNED, v.compact_free_scanned);
  set(FL_CTR_COMPACT_ISOLATED, v.compact_isolated);
  set(FL_CTR_COMPACT_DAEMON_WAKE, v.compact_daemon_wake);
  set(FL_CTR_COMPACT_DAEMON_MIGRATE_SCANNED, v.compact_daemon_migrate_scanned);
  set(FL_CTR_COMPACT_DAEMON_FREE_SCANNED, v.compact_daemon_free_scanned);
  set(FL_CTR_PGMIGRATE_SUCCESS, v.pgmigrate_success);
  set(FL_CTR_PGMIGRATE_FAIL, v.pgmigrate_fail);
  set(FL_CTR_PGSTEAL_KSWAPD, v.pgsteal_kswapd);
  set(FL_CTR_PGSTEAL_DIRECT, v.pgsteal_direct);
  set(FL_CTR_PGSCAN_KSWAPD, v.pgscan_kswapd);
  set(FL_CTR_PGSCAN_DIRECT, v.pgscan_direct);
  set(FL_CTR_THP_FAULT_ALLOC, counters_.thp_fault_alloc);
  set(FL_CTR_THP_FAULT_FALLBACK, counters_.thp_fault_fallback);
  set(FL_CTR_THP_COLLAPSE_ALLOC, counters_.thp_collapse_alloc);
  set(FL_CTR_THP_COLLAPSE_ALLOC_FAILED, counters_.thp_collapse_alloc_failed);
  set(FL_CTR_THP_SPLIT_PAGE, counters_.thp_split_page);
  set(FL_CTR_DROP_PAGECACHE, counters_.drop_pagecache);
  set(FL_CTR_DROP_SLAB, counters_.drop_slab);
  set(FL_CTR_HTLB_BUDDY_ALLOC_SUCCESS, counters_.htlb_buddy_alloc_success);
  set(FL_CTR_HTLB_BUDDY_ALLOC_FAIL, counters_.htlb_buddy_alloc_fail);
  set(FL_CTR_NR_SLAB_RECLAIMABLE, pages_.slab_reclaimable);
  set(FL_CTR_NR_SLAB_UNRECLAIMABLE, pages_.slab_unreclaimable);
  set(FL_CTR_NR_FILE_PAGES, pages_.file);
  set(FL_CTR_NR_ANON_PAGES, pages_.anon + pages_.pinned);
  set(FL_CTR_NR_PAGE_TABLE_PAGES, pages_.page_table);
  set(FL_CTR_NR_ANON_TRANSPARENT_HUGEPAGES, pages_.anon_thp);
  return c;
}

// ---------------------------------------------------------------------------
// Introspection.

std::vector<std::pair<uint64_t, int>> KernelModel::AnonPages(const std::string& tag) const {
  std::vector<std::pair<uint64_t, int>> out;
  auto it = anon_tags_.find(tag);
  if (it == anon_tags_.end()) return out;
  for (size_t r : it->second) {
    const AnonRegion& reg = regions_[r];
    int cur = 0;
    for (size_t i = 0; i < reg.pfn.size(); ++i) {
      if (reg.pfn[i] == kNoPfn) continue;
      if (reg.order[i] != kTail) cur = reg.order[i];
      out.emplace_back(reg.pfn[i], cur);
    }
  }
  return out;
}

std::vector<uint64_t> KernelModel::PageTables(const std::string& tag) const {
  std::vector<uint64_t> out;
  auto it = anon_tags_.find(tag);
  if (it == anon_tags_.end()) return out;
  for (size_t r : it->second) {
    for (uint64_t p : regions_[r].pt) {
      if (p != kNoPfn) out.push_back(p);
    }
  }
  return out;
}

std::vector<std::pair<uint64_t, int>> KernelModel::FileLru() const {
  std::vector<std::pair<uint64_t, int>> out;
  for (uint32_t id = lru_head_; id != kNone32; id = folios_[id].next) out.emplace_back(folios_[id].pfn, folios_[id].order);
  return out;
}

uint64_t KernelModel::SlabObjects(const std::string& tag) const {
  auto it = slab_tags_.find(tag);
  if (it == slab_tags_.end()) return 0;
  uint64_t n = 0;
  for (const auto& [x, y] : it->second) {
    n += objects_[x].alive ? 1 : 0;
    n += (y != kNone32 && objects_[y].alive) ? 1 : 0;
  }
  return n;
}

}  // namespace fraglab::sim
