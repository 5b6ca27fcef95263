#include "sim/scenario_sim.h"

#include <algorithm>
#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/time/time.h"
#include "common/status.h"
#include "sim/config_from_scenario.h"

namespace fraglab::sim {
namespace {

namespace sc = scenario;

MigrateType ToSim(sc::Migratetype mt) {
  // Both enums list the types in the kernel's order with CMA before ISOLATE.
  return static_cast<MigrateType>(static_cast<int>(mt));
}

ZoneType ToSim(sc::ZoneType z) { return static_cast<ZoneType>(static_cast<int>(z)); }

// What the scenario's `migratetype` key means as a page owner: movable
// requests stand for user memory on the LRU (the fallback block count sees
// them as movable, §2.4), the others for kernel memory that does not move.
OwnerKind OwnerFor(MigrateType t) {
  switch (t) {
    case kMovable: return OwnerKind::kAnon;
    case kReclaimable: return OwnerKind::kSlabReclaimable;
    default: return OwnerKind::kKernel;
  }
}

std::string BoundText(const sc::CountBound& b) {
  if (b.count) return absl::StrCat(*b.count);
  if (b.min && b.max) return absl::StrCat("between ", *b.min, " and ", *b.max);
  if (b.min) return absl::StrCat("at least ", *b.min);
  if (b.max) return absl::StrCat("at most ", *b.max);
  return "at least 1";
}

bool BoundHolds(const sc::CountBound& b, uint64_t v) {
  if (b.count) return v == *b.count;
  if (!b.min && !b.max) return v >= 1;
  if (b.min && v < *b.min) return false;
  if (b.max && v > *b.max) return false;
  return true;
}

// The gfp value of an alloc phase with its preferred zone folded in. The
// allocator derives the highest zone from the gfp (gfp_zone), as the kernel
// does, so a preferred zone is expressed through the zone bits.
absl::StatusOr<uint64_t> RequestGfp(const sc::AllocOp& op) {
  uint64_t g = gfp::kKernel;
  if (op.gfp) {
    g = op.gfp->value;
  } else if (op.migratetype) {
    g = GfpForMigratetype(ToSim(*op.migratetype));
  }
  if (!op.zone) return g;
  const uint64_t zone_bits = gfp::kDma | gfp::kDma32 | gfp::kHighmem;
  const ZoneType natural = GfpZone(g);
  const ZoneType want = ToSim(*op.zone);
  if (want == natural) return g;
  if (op.gfp && (op.gfp->value & (gfp::kDma | gfp::kDma32)) != 0) {
    return absl::InvalidArgumentError(absl::StrCat("preferred zone ", sc::ZoneName(*op.zone),
                                                   " contradicts the zone bits of gfp '", op.gfp->text,
                                                   "' (they select ", ZoneTypeName(natural), ")"));
  }
  g &= ~zone_bits;
  switch (want) {
    case kZoneDma: return g | gfp::kDma;
    case kZoneDma32: return g | gfp::kDma32;
    case kZoneNormal: return g;  // without __GFP_HIGHMEM even a movable request stops at Normal
    case kZoneMovable:
      if ((g & gfp::kMovable) == 0) {
        return absl::InvalidArgumentError(
            "preferred zone Movable needs a movable request (__GFP_MOVABLE): only movable allocations "
            "may use ZONE_MOVABLE");
      }
      return g | gfp::kHighmem;
  }
  return g;
}

}  // namespace

absl::Status ScenarioSimulator::ExtfragWindow::Emit(const fl_record_header& rec) {
  if (rec.kind == FL_EV_EXTFRAG && rec.size >= sizeof(fl_extfrag)) {
    fl_extfrag e;
    std::memcpy(&e, &rec, sizeof(e));
    events.push_back(e);
  }
  return absl::OkStatus();
}

ScenarioSimulator::ScenarioSimulator(const sc::Scenario& s, const Options& options)
    : scenario_(s),
      options_(options),
      seed_(options.seed.value_or(s.seed)),
      rng_(seed_),
      phases_(sc::Expand(s)) {
  // Keep fallback events only when some expectation will look at them.
  for (const sc::ExpandedPhase& e : phases_) {
    const auto* x = std::get_if<sc::ExpectOp>(&e.phase->op);
    if (x != nullptr && std::holds_alternative<sc::ExpectFallback>(x->check)) extfrag_.keep = true;
    const sc::OpKind k = sc::KindOf(e.phase->op);
    if (!sc::IsSimulatorOnly(k) && k != sc::OpKind::kSnapshot) kernel_ops_ = true;
  }
  // The window first: it never fails, so it sees every record the user's
  // sink is offered. Left out when unused (every record passes through here).
  if (extfrag_.keep) tee_.Add(&extfrag_);
  if (options.sink != nullptr) tee_.Add(options.sink);
}

absl::StatusOr<std::unique_ptr<ScenarioSimulator>> ScenarioSimulator::Create(const sc::Scenario& s,
                                                                             const Options& options) {
  MachineConfig config;
  if (options.machine) {
    config = *options.machine;
  } else {
    ASSIGN_OR_RETURN(config, MachineConfigFromScenario(s));
  }
  std::unique_ptr<ScenarioSimulator> sim(new ScenarioSimulator(s, options));
  ASSIGN_OR_RETURN(sim->allocator_, PageAllocator::Create(config, &sim->tee_, options.narrator));
  if (options.prepare) RETURN_IF_ERROR(options.prepare(*sim->allocator_));
  ScenarioSimulator* self = sim.get();
  KernelModel::Hooks hooks;
  hooks.tick = [self] { self->allocator_->set_time(self->Tick()); };
  hooks.background = [self] { self->allocator_->AdvanceTime(self->now_); };
  hooks.step = [self](const std::string& what) {
    if (self->options_.observer) self->options_.observer->OnCall(what);
  };
  hooks.step_done = [self](const std::string& result) {
    if (self->options_.observer) self->options_.observer->OnCallDone(result);
  };
  // The model's random choices get their own stream, so adding a kernel
  // operation does not change the choices of raw free phases.
  sim->model_ = std::make_unique<KernelModel>(sim->allocator_.get(), &sim->tee_, s,
                                              sim->seed_ ^ 0x6b65726e656c6dULL, std::move(hooks));
  sim->allocator_->set_page_user(&sim->owners_);
  // The boot state is time 0; it emits nothing, so a trace starts with the
  // first phase marker.
  sim->allocator_->set_time(0);
  return sim;
}

std::vector<TaggedBlock> ScenarioSimulator::Tagged(const std::string& tag) const {
  auto it = tags_.find(tag);
  return it == tags_.end() ? std::vector<TaggedBlock>{} : it->second;
}

absl::Status ScenarioSimulator::Run() {
  while (!done()) RETURN_IF_ERROR(Step());
  return absl::OkStatus();
}

absl::Status ScenarioSimulator::Step() {
  if (done()) return absl::OutOfRangeError("every phase has run");
  const sc::ExpandedPhase& e = phases_[next_++];
  RETURN_IF_ERROR(EmitPhase(e, /*begin=*/true));
  if (kernel_ops_) RETURN_IF_ERROR(EmitCounters());
  if (options_.observer) options_.observer->OnPhaseBegin(e);
  absl::Status outcome = RunPhase(e);
  allocator_->set_time(Tick());
  allocator_->EmitSnapshots();
  if (kernel_ops_ && outcome.ok()) outcome = EmitCounters();
  if (options_.observer) options_.observer->OnPhaseEnd(e, *allocator_, outcome);
  absl::Status end = EmitPhase(e, /*begin=*/false);
  RETURN_IF_ERROR(outcome);
  RETURN_IF_ERROR(end);
  if (!allocator_->sink_status().ok()) {
    return absl::Status(allocator_->sink_status().code(),
                        absl::StrCat(Where(e), ": writing events failed: ",
                                     allocator_->sink_status().message()));
  }
  return absl::OkStatus();
}

std::string ScenarioSimulator::Where(const sc::ExpandedPhase& e) const {
  std::string file = scenario_.source_file.empty() ? "<scenario>" : scenario_.source_file;
  return absl::StrCat("phase ", e.label, " (", file, ":", e.phase->pos.line, ")");
}

absl::Status ScenarioSimulator::EmitPhase(const sc::ExpandedPhase& e, bool begin) {
  fl_phase rec;
  InitRecord(rec, FL_EV_PHASE, begin ? Tick() : now_, 0);
  rec.index = static_cast<uint32_t>(e.index);
  rec.begin = begin ? 1 : 0;
  const size_t n = std::min(e.label.size(), sizeof(rec.label) - 1);
  std::memcpy(rec.label, e.label.data(), n);
  return tee_.Emit(rec.hdr);
}

absl::Status ScenarioSimulator::EmitCounters() {
  const fl_counters c = model_->CountersRecord(now_);
  return tee_.Emit(c.hdr);
}

void ScenarioSimulator::Owners::OnMigrated(uint64_t old_pfn, uint64_t new_pfn, int order) {
  if (sim_->model_ && sim_->model_->Migrated(old_pfn, new_pfn, order)) return;
  // A movable block of a raw `alloc` phase: its tag follows it. Tags are
  // few and small (teaching scenarios), a scan is fine.
  for (auto& [tag, blocks] : sim_->tags_) {
    for (TaggedBlock& b : blocks) {
      if (b.pfn == old_pfn && b.order == order) {
        b.pfn = new_pfn;
        return;
      }
    }
  }
}

uint64_t ScenarioSimulator::Owners::Reclaim(const ReclaimRequest& req) {
  return sim_->model_ ? sim_->model_->Reclaim(req) : 0;
}

absl::Status ScenarioSimulator::RunPhase(const sc::ExpandedPhase& e) {
  const sc::Operation& op = e.phase->op;
  const bool is_expect = std::holds_alternative<sc::ExpectOp>(op);
  // Consecutive expect phases check one moment: they share the window of
  // fallback events that ends with them.
  // Events before the window are never looked at again: drop them.
  if (!is_expect && previous_was_expect_) extfrag_.events.clear();
  previous_was_expect_ = is_expect;
  switch (sc::KindOf(op)) {
    case sc::OpKind::kAlloc: return DoAlloc(e, std::get<sc::AllocOp>(op));
    case sc::OpKind::kFree: return DoFree(e, std::get<sc::FreeOp>(op));
    case sc::OpKind::kExpect: return DoExpect(e, std::get<sc::ExpectOp>(op));
    case sc::OpKind::kSnapshot:
      // The phase markers and the end-of-phase snapshot are all there is.
      return absl::OkStatus();
    case sc::OpKind::kHold: {
      // The clock jumps by the duration; kswapd, kcompactd and the pcp
      // decay due meanwhile run inside AdvanceTime.
      const int64_t ns = absl::ToInt64Nanoseconds(std::get<sc::HoldOp>(op).duration);
      if (options_.observer) options_.observer->OnCall(absl::StrCat("hold ", ns, " ns of logical time"));
      now_ += static_cast<uint64_t>(std::max<int64_t>(ns, 0));
      allocator_->AdvanceTime(now_);
      if (options_.observer) options_.observer->OnCallDone(absl::StrCat("clock at ", now_));
      return absl::OkStatus();
    }
    default: {
      RETURN_IF_ERROR(model_->Apply(op, Where(e)));
      // Background work woken during the operation runs before the
      // phase's end snapshot.
      allocator_->AdvanceTime(now_);
      return absl::OkStatus();
    }
  }
}

absl::Status ScenarioSimulator::DoAlloc(const sc::ExpandedPhase& e, const sc::AllocOp& op) {
  absl::StatusOr<uint64_t> g = RequestGfp(op);
  if (!g.ok()) return absl::InvalidArgumentError(absl::StrCat(Where(e), ": ", g.status().message()));
  AllocRequest req;
  req.order = op.order;
  req.gfp = *g;
  req.node = op.node;
  req.cpu = op.cpu;
  req.owner = OwnerFor(GfpMigratetype(*g));
  have_last_alloc_ = true;
  last_alloc_phase_ = e.label;
  last_alloc_failures_ = 0;
  last_alloc_requests_ = op.count;
  std::vector<TaggedBlock>* list = op.tag.empty() ? nullptr : &tags_[op.tag];
  const MigratetypeNumbering& num = allocator_->numbering();
  for (uint64_t i = 0; i < op.count; ++i) {
    if (options_.observer) {
      options_.observer->OnCall(absl::StrFormat(
          "alloc %d/%d: order %d %s (gfp %#x) on CPU %d, node %d", i + 1, op.count, op.order,
          num.Name(num.Number(GfpMigratetype(*g))), *g, op.cpu, op.node));
    }
    allocator_->set_time(Tick());
    const uint64_t pfn = allocator_->Allocate(req);
    if (!allocator_->last_error().ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat(Where(e), ": request rejected: ", allocator_->last_error().message()));
    }
    last_alloc_pfn_ = pfn;
    if (pfn == kNoPfn) {
      ++last_alloc_failures_;
    } else if (list != nullptr) {
      list->push_back({pfn, op.order});
    }
    if (options_.observer) {
      options_.observer->OnCallDone(pfn == kNoPfn ? std::string("failed")
                                                  : absl::StrCat("pfn ", pfn));
    }
  }
  return absl::OkStatus();
}

absl::Status ScenarioSimulator::DoFree(const sc::ExpandedPhase& e, const sc::FreeOp& op) {
  auto it = tags_.find(op.tag);
  if (it == tags_.end()) {
    return absl::InvalidArgumentError(absl::StrCat(
        Where(e), ": tag '", op.tag, "' names no allocated blocks (no earlier alloc phase with this tag succeeded)"));
  }
  std::vector<TaggedBlock>& blocks = it->second;
  const size_t n = blocks.size();
  std::vector<bool> pick(n, false);
  switch (op.pattern) {
    case sc::FreePattern::kAll:
      std::fill(pick.begin(), pick.end(), true);
      break;
    case sc::FreePattern::kEveryNth:
      for (size_t i = 0; i < n; ++i) pick[i] = (i % op.n) == op.offset;
      break;
    case sc::FreePattern::kFirst:
      for (size_t i = 0; i < n && i < op.k; ++i) pick[i] = true;
      break;
    case sc::FreePattern::kLast:
      for (size_t i = 0; i < n && i < op.k; ++i) pick[n - 1 - i] = true;
      break;
    case sc::FreePattern::kRandom: {
      // Exactly round(fraction * n) blocks, chosen by a partial
      // Fisher-Yates shuffle of the indices; freed in allocation order.
      const size_t want = std::min(n, static_cast<size_t>(op.fraction * static_cast<double>(n) + 0.5));
      std::vector<size_t> idx(n);
      for (size_t i = 0; i < n; ++i) idx[i] = i;
      for (size_t i = 0; i < want; ++i) {
        const size_t j = i + static_cast<size_t>(rng_.Uniform(n - i));
        std::swap(idx[i], idx[j]);
        pick[idx[i]] = true;
      }
      break;
    }
  }
  std::vector<TaggedBlock> kept;
  size_t total = 0;
  for (size_t i = 0; i < n; ++i) total += pick[i] ? 1 : 0;
  size_t done_count = 0;
  for (size_t i = 0; i < n; ++i) {
    if (!pick[i]) {
      kept.push_back(blocks[i]);
      continue;
    }
    ++done_count;
    if (options_.observer) {
      options_.observer->OnCall(absl::StrFormat("free %d/%d: pfn %d order %d on CPU %d", done_count, total,
                                                blocks[i].pfn, blocks[i].order, op.cpu));
    }
    allocator_->set_time(Tick());
    absl::Status st = allocator_->Free(blocks[i].pfn, blocks[i].order, op.cpu);
    if (!st.ok()) {
      return absl::InternalError(absl::StrCat(Where(e), ": freeing pfn ", blocks[i].pfn, " order ",
                                              blocks[i].order, " of tag '", op.tag, "': ", st.message()));
    }
    if (options_.observer) options_.observer->OnCallDone("freed");
  }
  blocks = std::move(kept);
  return absl::OkStatus();
}

absl::Status ScenarioSimulator::DoExpect(const sc::ExpandedPhase& e, const sc::ExpectOp& op) {
  const MigratetypeNumbering& num = allocator_->numbering();
  auto fail = [&](const std::string& expected, const std::string& has) {
    return absl::FailedPreconditionError(
        absl::StrCat(Where(e), ": expected ", expected, "; the simulator has ", has));
  };
  auto find_zone = [&](int node, sc::ZoneType type) -> absl::StatusOr<int> {
    const int z = allocator_->FindZone(node, ToSim(type));
    if (z < 0) {
      return absl::InvalidArgumentError(absl::StrCat(Where(e), ": the machine has no zone ",
                                                     sc::ZoneName(type), " on node ", node));
    }
    return z;
  };

  if (const auto* c = std::get_if<sc::ExpectFreeBlocks>(&op.check)) {
    ASSIGN_OR_RETURN(int z, find_zone(c->node, c->zone));
    const MigrateType t = ToSim(c->migratetype);
    if (t == kCma && !num.with_cma()) {
      return absl::InvalidArgumentError(absl::StrCat(Where(e), ": migratetype cma needs machine.cma = true"));
    }
    const uint64_t have = allocator_->FreeCount(z, c->order, t);
    if (BoundHolds(c->bound, have)) {
      ++expectations_passed_;
      return absl::OkStatus();
    }
    std::vector<std::string> per_order;
    for (int o = 0; o <= kMaxOrder; ++o) {
      per_order.push_back(absl::StrCat(allocator_->FreeCount(z, o, t)));
    }
    std::vector<std::string> heads;
    for (uint64_t pfn : allocator_->FreeList(z, c->order, t)) {
      if (heads.size() == 8) {
        heads.push_back("...");
        break;
      }
      heads.push_back(absl::StrCat(pfn));
    }
    return fail(absl::StrCat(BoundText(c->bound), " free order-", c->order, " ", sc::MigratetypeName(c->migratetype),
                             " blocks in node ", c->node, " zone ", sc::ZoneName(c->zone)),
                absl::StrCat(have, heads.empty() ? "" : absl::StrCat(" (pfns ", absl::StrJoin(heads, ", "), ")"),
                             "; free ", sc::MigratetypeName(c->migratetype), " blocks per order 0..10: ",
                             absl::StrJoin(per_order, " ")));
  }

  if (const auto* c = std::get_if<sc::ExpectPageblocks>(&op.check)) {
    ASSIGN_OR_RETURN(int z, find_zone(c->node, c->zone));
    const MigrateType t = ToSim(c->migratetype);
    if (t == kCma && !num.with_cma()) {
      return absl::InvalidArgumentError(absl::StrCat(Where(e), ": migratetype cma needs machine.cma = true"));
    }
    const std::vector<uint64_t> counts = allocator_->PageblockCounts(z);
    const uint64_t have = counts[num.Number(t)];
    if (BoundHolds(c->bound, have)) {
      ++expectations_passed_;
      return absl::OkStatus();
    }
    std::vector<std::string> parts;
    for (size_t k = 0; k < counts.size(); ++k) {
      parts.push_back(absl::StrCat(num.Name(static_cast<int>(k)), " ", counts[k]));
    }
    return fail(absl::StrCat(BoundText(c->bound), " ", sc::MigratetypeName(c->migratetype), " pageblocks in node ",
                             c->node, " zone ", sc::ZoneName(c->zone)),
                absl::StrCat(have, " (pageblocks by type: ", absl::StrJoin(parts, ", "), ")"));
  }

  if (const auto* c = std::get_if<sc::ExpectLastAlloc>(&op.check)) {
    if (!have_last_alloc_) {
      return absl::InvalidArgumentError(absl::StrCat(Where(e), ": last_alloc needs an earlier alloc phase"));
    }
    const bool failed = last_alloc_pfn_ == kNoPfn;
    std::string has = failed ? std::string("a failed last request")
                             : absl::StrCat("the last block at pfn ", last_alloc_pfn_);
    absl::StrAppend(&has, " (phase ", last_alloc_phase_, ": ", last_alloc_failures_, " of ",
                    last_alloc_requests_, " requests failed)");
    const bool ok = c->failed ? failed : (!failed && c->pfn && *c->pfn == last_alloc_pfn_);
    if (ok) {
      ++expectations_passed_;
      return absl::OkStatus();
    }
    return fail(c->failed ? std::string("the last request to fail")
                          : absl::StrCat("the last block at pfn ", c->pfn.value_or(0)),
                has);
  }

  const auto& c = std::get<sc::ExpectFallback>(op.check);
  auto num_of = [&](sc::Migratetype mt) { return num.Number(ToSim(mt)); };
  auto matches = [&](const fl_extfrag& x) {
    if (c.alloc_order && x.alloc_order != *c.alloc_order) return false;
    if (c.fallback_order && x.fallback_order != *c.fallback_order) return false;
    if (c.alloc_migratetype && x.alloc_migratetype != num_of(*c.alloc_migratetype)) return false;
    if (c.fallback_migratetype && x.fallback_migratetype != num_of(*c.fallback_migratetype)) return false;
    if (c.change_ownership && (x.change_ownership != 0) != *c.change_ownership) return false;
    if (c.fallback_class && x.extfrag_class != static_cast<int>(*c.fallback_class)) return false;
    return true;
  };
  uint64_t matched = 0;
  const size_t window = extfrag_.events.size();
  for (const fl_extfrag& x : extfrag_.events) matched += matches(x) ? 1 : 0;
  if (BoundHolds(c.bound, matched)) {
    ++expectations_passed_;
    return absl::OkStatus();
  }
  std::vector<std::string> want;
  if (c.alloc_order) want.push_back(absl::StrCat("alloc_order ", *c.alloc_order));
  if (c.fallback_order) want.push_back(absl::StrCat("fallback_order ", *c.fallback_order));
  if (c.alloc_migratetype) want.push_back(absl::StrCat("alloc ", sc::MigratetypeName(*c.alloc_migratetype)));
  if (c.fallback_migratetype) {
    want.push_back(absl::StrCat("from ", sc::MigratetypeName(*c.fallback_migratetype)));
  }
  if (c.change_ownership) want.push_back(absl::StrCat("change_ownership ", *c.change_ownership ? 1 : 0));
  if (c.fallback_class) want.push_back(absl::StrCat("class ", sc::FallbackClassName(*c.fallback_class)));
  std::vector<std::string> seen;
  for (const fl_extfrag& x : extfrag_.events) {
    if (seen.size() == 12) {
      seen.push_back(absl::StrCat("... (", window - 12, " more)"));
      break;
    }
    const char* cls = x.extfrag_class == 0 ? "claim" : x.extfrag_class == 1 ? "steal" : "pollute";
    seen.push_back(absl::StrFormat("{pfn %d order %d<-%d %s<-%s change_ownership %d %s}", x.pfn, x.alloc_order,
                                   x.fallback_order, num.Name(x.alloc_migratetype),
                                   num.Name(x.fallback_migratetype), x.change_ownership, cls));
  }
  return fail(absl::StrCat(BoundText(c.bound), " fallback event(s)",
                           want.empty() ? "" : absl::StrCat(" with ", absl::StrJoin(want, ", ")),
                           " since the previous expect"),
              absl::StrCat(matched, " matching of ", window, " fallback event(s)",
                           seen.empty() ? "" : absl::StrCat(": ", absl::StrJoin(seen, " "))));
}

void SetAllocatorLayout(const PageAllocator& allocator, TraceHeader& h) {
  h.zones.clear();
  for (int z = 0; z < allocator.num_zones(); ++z) {
    const ZoneStats st = allocator.zone_stats(z);
    ZoneLayout l;
    l.nid = st.node;
    l.zone_idx = static_cast<int>(st.type);
    l.name = ZoneTypeName(st.type);
    l.start_pfn = st.start_pfn;
    l.spanned = st.spanned;
    l.present = st.present;
    l.managed = st.managed;
    h.zones.push_back(l);
  }
  h.migratetype_names.clear();
  const MigratetypeNumbering& num = allocator.numbering();
  for (int n = 0; n < num.count(); ++n) h.migratetype_names.push_back(num.Name(n));
}

TraceHeader SimTraceHeader(const sc::Scenario& s, const PageAllocator& allocator,
                           const std::string& scenario_text, uint64_t seed) {
  TraceHeader h;
  h.simulated = true;
  h.created_unix_s = 0;
  const MachineConfig& c = allocator.config();
  h.kernel_release = s.machine.kernel_release;
  h.kernel_era = c.era == Era::kLegacy ? "LEGACY" : c.era == Era::kHygiene ? "HYGIENE" : "CLAIM";
  h.machine = "simulated";
  h.nr_cpus = static_cast<uint32_t>(c.cpus);
  h.pageblock_order = kPageblockOrder;
  h.max_order = kMaxOrder;
  SetAllocatorLayout(allocator, h);
  h.scenario_name = s.name;
  h.scenario_text = scenario_text;
  h.seed = seed;
  h.extra["pcp"] = c.pcp ? "on" : "off";
  h.extra["defrag_mode"] = c.defrag_mode ? "1" : "0";
  return h;
}

}  // namespace fraglab::sim
