#include "gen/runner.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <map>
#include <memory>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/time/time.h"
#include "common/snapshot_machine.h"
#include "common/snapshot_map.h"
#include "common/status.h"
#include "common/units.h"
#include "gen/anon.h"
#include "gen/pagecache.h"
#include "gen/pin.h"
#include "gen/probe.h"
#include "gen/release.h"
#include "gen/slab.h"
#include "gen/sysfs.h"
#include "gen/system_ops.h"
#include "gen/thp.h"

namespace fraglab::gen {
namespace sc = ::fraglab::scenario;
namespace {

uint64_t NowNs() {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000ULL + static_cast<uint64_t>(ts.tv_nsec);
}

std::string Secs(uint64_t ns) {
  const double s = static_cast<double>(ns) / 1e9;
  return s < 1 ? absl::StrFormat("%.1f ms", s * 1e3) : absl::StrFormat("%.2f s", s);
}

// Slab bytes per object, as gen/slab.cc reserves them: a dentry with its
// name, a shmem inode with its dentry.
constexpr uint64_t kDentryBytes = 256;
constexpr uint64_t kInodeBytes = 1024;

BuddySummary Summarize(const snapshot::MachineSnapshot& s) {
  BuddySummary b;
  b.free_blocks.assign(s.num_orders, 0);
  b.migratetype_names = s.migratetype_names;
  for (const auto& z : s.zones) {
    for (size_t o = 0; o < z.nr_free.size() && o < b.free_blocks.size(); ++o) {
      b.free_blocks[o] += z.nr_free[o];
    }
    if (!z.pageblocks.empty()) {
      if (b.pageblocks.size() < z.pageblocks.size()) b.pageblocks.resize(z.pageblocks.size(), 0);
      for (size_t t = 0; t < z.pageblocks.size(); ++t) b.pageblocks[t] += z.pageblocks[t];
    }
    b.managed_pages += z.managed;
    b.free_pages += z.BuddyFreePages();
  }
  return b;
}

std::string MtName(const std::vector<std::string>& names, size_t i) {
  return i < names.size() ? names[i] : absl::StrCat("type", i);
}

// Everything a run holds, released in reverse order of creation by the
// destructors (regions before the filesystems their files live on).
struct Holdings {
  // A tag may name several regions (a tagged anon phase inside a repeat).
  struct TaggedRegion {
    std::unique_ptr<AnonRegion> region;
    uint64_t unit_pages = 1;  // default release unit: the region's page size
  };
  std::map<std::string, std::vector<TaggedRegion>> anon;
  std::vector<std::unique_ptr<AnonRegion>> anon_untagged;
  std::map<std::string, std::vector<std::unique_ptr<Pin>>> pins;
  std::map<std::string, std::vector<std::unique_ptr<SlabSet>>> slabs;
  std::map<std::string, std::vector<std::unique_ptr<PagecacheSet>>> pagecache;
  void Clear() {
    anon.clear();
    anon_untagged.clear();
    pins.clear();
    slabs.clear();
    pagecache.clear();
  }
  ~Holdings() { Clear(); }
};

absl::Status EmitPhase(RunSink& sink, size_t index, bool begin, const std::string& label) {
  fl_phase rec;
  InitRecord(rec, FL_EV_PHASE, NowNs(), 0);
  rec.index = static_cast<uint32_t>(index);
  rec.begin = begin ? 1 : 0;
  std::snprintf(rec.label, sizeof(rec.label), "%s", label.c_str());
  return sink.Emit(rec.hdr);
}

absl::Status EmitProbe(RunSink& sink, uint32_t kind, uint32_t order, uint64_t requested,
                       uint64_t obtained, uint64_t duration_ns) {
  fl_probe rec;
  InitRecord(rec, FL_EV_PROBE, NowNs(), 0);
  rec.probe_kind = kind;
  rec.order = order;
  rec.requested = requested;
  rec.obtained = obtained;
  rec.duration_ns = duration_ns;
  return sink.Emit(rec.hdr);
}

std::string PinDetail(const PinResult& r) {
  std::string d = absl::StrCat("pin ", PinKindName(r.kind), ": ", r.objects, " objects, ",
                               r.pages_measured, " kernel pages measured (", r.measured_by,
                               "), MemFree -", HumanBytes(r.memfree_drop));
  for (const auto& n : r.notes) absl::StrAppend(&d, "; ", n);
  return d;
}

class PhaseRunner {
 public:
  PhaseRunner(const sc::Scenario& s, OpContext& ctx, Holdings& h, RunSink& sink, uint64_t budget)
      : s_(s), ctx_(ctx), h_(h), sink_(sink), budget_(budget) {}

  // Runs one phase; fills `out.detail` and notes. Errors propagate.
  absl::Status Run(const sc::Phase& phase, PhaseSummary& out) {
    return std::visit([&](const auto& op) { return Do(phase, op, out); }, phase.op);
  }

 private:
  absl::StatusOr<uint64_t> Bytes(const sc::Phase& phase, const Size& size, absl::string_view field) {
    auto b = ResolveSizeBytes(size, budget_);
    if (!b.ok()) return sc::FieldError(s_, phase, field, b.status().message());
    return *b;
  }

  absl::Status Do(const sc::Phase& phase, const sc::AnonOp& op, PhaseSummary& out) {
    ASSIGN_OR_RETURN(uint64_t bytes, Bytes(phase, op.size, "size"));
    AnonParams p;
    p.bytes = bytes;
    p.seed = s_.seed + phase.pos.line;
    uint64_t unit_pages = 1;
    switch (op.page_size.kind) {
      case sc::PageSize::Kind::kBase: p.page_size = AnonPageSize::kBase; break;
      case sc::PageSize::Kind::kThp:
        p.page_size = AnonPageSize::kThp;
        unit_pages = kPmdBytes / kPageBytes;
        break;
      case sc::PageSize::Kind::kMthp:
        p.page_size = AnonPageSize::kMthp;
        p.mthp_kb = 4ULL << op.page_size.order;
        unit_pages = 1ULL << op.page_size.order;
        break;
    }
    if (op.touch == sc::TouchOrder::kRandom) p.order = TouchOrder::kRandom;
    if (op.touch == sc::TouchOrder::kReverse || op.touch == sc::TouchOrder::kNone) {
      out.notes.push_back(absl::StrCat("touch order '", sc::TouchOrderName(op.touch),
                                       "' performed as sequential"));
    }
    std::unique_ptr<AnonRegion> region;
    auto r = MapAndTouch(p, ctx_, &region);
    if (region != nullptr) {
      if (op.tag.empty()) {
        h_.anon_untagged.push_back(std::move(region));
      } else {
        h_.anon[op.tag].push_back({std::move(region), unit_pages});
      }
    }
    RETURN_IF_ERROR(r.status());
    out.detail = absl::StrCat("anon ", sc::FormatPageSize(op.page_size), ": touched ",
                              r->pages_touched, " pages (", HumanBytes(r->bytes), ") in ",
                              Secs(r->duration_ns), ", THP ", HumanBytes(r->thp_bytes),
                              " (thp_fault_alloc +", r->thp_fault_alloc, ", fallback +",
                              r->thp_fault_fallback, ")");
    if (p.page_size == AnonPageSize::kMthp) {
      absl::StrAppend(&out.detail, ", mTHP faults ", r->mthp_faults, " fallbacks ", r->mthp_fallbacks);
    }
    for (const auto& n : r->notes) out.notes.push_back(n);
    return absl::OkStatus();
  }

  // The release pattern of `op` with `unit_pages` as the unit when the op
  // gives none; `salt` varies the random choice between regions of a tag.
  absl::StatusOr<ReleaseParams> MakeReleaseParams(const sc::Phase& phase, const sc::ReleaseOp& op,
                                                  uint64_t unit_pages, uint64_t salt) {
    ReleaseParams p;
    if (op.unit.has_value()) {
      ASSIGN_OR_RETURN(uint64_t ub, Bytes(phase, *op.unit, "unit"));
      if (ub < kPageBytes || ub % kPageBytes != 0) {
        return sc::FieldError(s_, phase, "unit", "must be a whole number of 4 KiB pages");
      }
      unit_pages = ub / kPageBytes;
    }
    p.unit_pages = unit_pages;
    switch (op.pattern) {
      case sc::ReleasePattern::kWhole: p.pattern = ReleasePattern::kWhole; break;
      case sc::ReleasePattern::kEveryNth:
        p.pattern = ReleasePattern::kEveryNth;
        p.n = op.n;
        p.offset = op.offset;
        break;
      case sc::ReleasePattern::kRandom:
        p.pattern = ReleasePattern::kRandomFraction;
        p.fraction = op.fraction;
        p.seed = s_.seed * 1000003 + static_cast<uint64_t>(phase.pos.line) * 7919 + salt;
        break;
      case sc::ReleasePattern::kStride: {
        p.pattern = ReleasePattern::kStride;
        ASSIGN_OR_RETURN(uint64_t stride, Bytes(phase, op.stride, "stride"));
        ASSIGN_OR_RETURN(uint64_t length, Bytes(phase, op.length, "length"));
        const uint64_t ub = unit_pages * kPageBytes;
        p.stride = std::max<uint64_t>(1, stride / ub);
        p.run = std::max<uint64_t>(1, length / ub);
        break;
      }
    }
    switch (op.method) {
      case sc::ReleaseMethod::kDontneed: p.unmap = false; break;
      case sc::ReleaseMethod::kMunmap:
      case sc::ReleaseMethod::kFree: p.unmap = true; break;
      case sc::ReleaseMethod::kPageout:
        return absl::FailedPreconditionError(
            sc::DescribeField(s_, phase, "method") +
            ": pageout is not performed by the generator (this machine has no swap to page out to)");
    }
    return p;
  }

  absl::Status Do(const sc::Phase& phase, const sc::ReleaseOp& op, PhaseSummary& out) {
    if (auto anon = h_.anon.find(op.region); anon != h_.anon.end()) {
      ReleaseResult total;
      uint64_t unit_pages = 0;
      for (size_t i = 0; i < anon->second.size(); ++i) {
        auto& tr = anon->second[i];
        ASSIGN_OR_RETURN(ReleaseParams p, MakeReleaseParams(phase, op, tr.unit_pages, i));
        unit_pages = p.unit_pages;
        ASSIGN_OR_RETURN(ReleaseResult r, Release(*tr.region, p, *ctx_.stop));
        total.pages_released += r.pages_released;
        total.pages_selected += r.pages_selected;
        total.ranges += r.ranges;
      }
      out.detail = absl::StrCat("release ", sc::ReleasePatternName(op.pattern), " of '", op.region,
                                "' (", anon->second.size(), " region(s), unit ", unit_pages, " pages, ",
                                sc::ReleaseMethodName(op.method), "): ", total.pages_released,
                                " populated pages freed of ", total.pages_selected, " selected, in ",
                                total.ranges, " ranges");
      auto& v = anon->second;
      v.erase(std::remove_if(v.begin(), v.end(),
                             [](const Holdings::TaggedRegion& t) { return t.region->mapped_pages() == 0; }),
              v.end());
      if (v.empty()) h_.anon.erase(anon);
      return absl::OkStatus();
    }
    if (auto it = h_.slabs.find(op.region); it != h_.slabs.end()) {
      if (op.pattern == sc::ReleasePattern::kWhole) {
        h_.slabs.erase(it);
        out.detail = absl::StrCat("released slab region '", op.region, "' whole");
        return absl::OkStatus();
      }
      uint64_t freed = 0;
      for (size_t i = 0; i < it->second.size(); ++i) {
        ASSIGN_OR_RETURN(ReleaseParams p, MakeReleaseParams(phase, op, 1, i));
        auto n = it->second[i]->ReleasePart(p);
        if (!n.ok()) {
          if (n.status().code() == absl::StatusCode::kFailedPrecondition) {
            return absl::FailedPreconditionError(
                absl::StrCat(sc::DescribeField(s_, phase, "pattern"), ": ", n.status().message()));
          }
          return n.status();
        }
        freed += *n;
      }
      out.detail = absl::StrCat("release ", sc::ReleasePatternName(op.pattern), " of slab '", op.region,
                                "': ", freed, " objects freed");
      return absl::OkStatus();
    }
    bool found = false;
    if (auto it = h_.pins.find(op.region); it != h_.pins.end()) {
      found = true;
      if (op.pattern != sc::ReleasePattern::kWhole) {
        return absl::FailedPreconditionError(absl::StrCat(
            sc::DescribeField(s_, phase, "pattern"),
            ": the generator releases pin regions whole only (pattern = \"whole\")"));
      }
      h_.pins.erase(it);
    } else if (auto it3 = h_.pagecache.find(op.region); it3 != h_.pagecache.end()) {
      found = true;
      if (op.pattern != sc::ReleasePattern::kWhole) {
        return absl::FailedPreconditionError(absl::StrCat(
            sc::DescribeField(s_, phase, "pattern"),
            ": the generator releases page cache regions whole only (pattern = \"whole\")"));
      }
      h_.pagecache.erase(it3);
    }
    if (!found) {
      return sc::FieldError(s_, phase, "region",
                            absl::StrCat("no region tagged '", op.region, "' is held now"));
    }
    out.detail = absl::StrCat("released region '", op.region, "' whole");
    return absl::OkStatus();
  }

  absl::Status Do(const sc::Phase& phase, const sc::PinOp& op, PhaseSummary& out) {
    ASSIGN_OR_RETURN(uint64_t bytes, Bytes(phase, op.size, "size"));
    PinKind kind = PinKind::kPipe;
    uint64_t amount = bytes;
    switch (op.kind) {
      case sc::PinKind::kPipe: kind = PinKind::kPipe; break;
      case sc::PinKind::kSocket: kind = PinKind::kSocket; break;
      case sc::PinKind::kLongterm: kind = PinKind::kLongterm; break;
      case sc::PinKind::kPagetable:
        // The size is the page-table memory to create: one PTE page per 2 MiB touched.
        kind = PinKind::kPageTable2M;
        amount = std::max<uint64_t>(1, bytes / kPageBytes);
        break;
    }
    ASSIGN_OR_RETURN(std::unique_ptr<Pin> pin, MakePin(kind, amount, ctx_));
    out.detail = PinDetail(pin->result());
    h_.pins[op.tag].push_back(std::move(pin));
    return absl::OkStatus();
  }

  absl::Status Do(const sc::Phase& phase, const sc::SlabOp& op, PhaseSummary& out) {
    absl::StatusOr<std::unique_ptr<SlabSet>> set =
        op.kind == sc::SlabKind::kDentry ? MakeNegativeDentries(op.count, ctx_)
                                         : MakeInodes(op.count, ctx_);
    RETURN_IF_ERROR(set.status());
    const SlabResult& r = (*set)->result();
    out.detail = absl::StrCat("slab ", sc::SlabKindName(op.kind), ": ", r.requested, " made, ",
                              r.objects_measured, " measured, SReclaimable ",
                              r.sreclaimable_delta >= 0 ? "+" : "-",
                              HumanBytes(static_cast<uint64_t>(std::abs(r.sreclaimable_delta))),
                              ", SUnreclaim ", r.sunreclaim_delta >= 0 ? "+" : "-",
                              HumanBytes(static_cast<uint64_t>(std::abs(r.sunreclaim_delta))),
                              " in ", Secs(r.duration_ns));
    for (const auto& n : r.notes) out.notes.push_back(n);
    h_.slabs[op.tag].push_back(std::move(*set));
    return absl::OkStatus();
  }

  absl::Status Do(const sc::Phase& phase, const sc::PagecacheOp& op, PhaseSummary& out) {
    ASSIGN_OR_RETURN(uint64_t bytes, Bytes(phase, op.size, "size"));
    std::unique_ptr<Filesystem> fs;
    std::string dir;
    if (op.fs.has_value()) {
      FsParams fp;
      fp.type = sc::FsTypeName(op.fs->type);
      fp.block_size = op.fs->block_size.value_or(0);
      fp.size_bytes = bytes + bytes / 4 + (64ULL << 20);
      if (op.fs->size.has_value()) {
        ASSIGN_OR_RETURN(fp.size_bytes, Bytes(phase, *op.fs->size, "fs.size"));
      }
      ASSIGN_OR_RETURN(fs, Filesystem::Create(fp, ctx_));
      dir = fs->mount_point();
    } else {
      dir = op.path.value_or(ctx_.work_dir);
    }
    PagecacheParams p;
    p.bytes = bytes;
    p.files = op.files;
    p.write = op.mode == sc::IoMode::kWrite;
    p.cycles = op.cycles;
    switch (op.fadvise) {
      case sc::Fadvise::kNone: p.fadvise = -1; break;
      case sc::Fadvise::kNormal: p.fadvise = POSIX_FADV_NORMAL; break;
      case sc::Fadvise::kSequential: p.fadvise = POSIX_FADV_SEQUENTIAL; break;
      case sc::Fadvise::kRandom: p.fadvise = POSIX_FADV_RANDOM; break;
      case sc::Fadvise::kWillneed: p.fadvise = POSIX_FADV_WILLNEED; break;
      case sc::Fadvise::kDontneed: p.fadvise = POSIX_FADV_DONTNEED; break;
      case sc::Fadvise::kNoreuse: p.fadvise = POSIX_FADV_NOREUSE; break;
    }
    auto set = FillPagecache(dir, p, ctx_);
    if (!set.ok()) return set.status();  // fs (if any) is unmounted on return
    (*set)->fs = std::move(fs);
    const PagecacheResult& r = (*set)->result;
    out.detail = absl::StrCat("pagecache on ", (*set)->fs ? (*set)->fs->Describe() : dir, ": wrote ",
                              HumanBytes(r.bytes_written), ", read ", HumanBytes(r.bytes_read),
                              " in ", r.cycles, " cycles, nr_file_pages ",
                              r.file_pages_delta >= 0 ? "+" : "", r.file_pages_delta, " in ",
                              Secs(r.duration_ns));
    h_.pagecache[op.tag].push_back(std::move(*set));
    return absl::OkStatus();
  }

  absl::Status Do(const sc::Phase& phase, const sc::ThpOp& op, PhaseSummary& out) {
    auto it = h_.anon.find(op.region);
    if (it == h_.anon.end()) {
      return sc::FieldError(s_, phase, "region",
                            absl::StrCat("no anonymous region tagged '", op.region, "' is held now"));
    }
    ThpResult r;
    for (auto& tr : it->second) {
      ASSIGN_OR_RETURN(ThpResult one, op.action == sc::ThpAction::kCollapse
                                          ? Collapse(*tr.region, *ctx_.stop)
                                          : MadviseHugepage(*tr.region));
      r.huge_before += one.huge_before;
      r.huge_after += one.huge_after;
      r.collapse_alloc += one.collapse_alloc;
      r.collapse_alloc_failed += one.collapse_alloc_failed;
      r.duration_ns += one.duration_ns;
      for (auto& n : one.notes) r.notes.push_back(std::move(n));
    }
    out.detail = absl::StrCat("thp ", sc::ThpActionName(op.action), " on '", op.region, "': huge pages ",
                              r.huge_before, " -> ", r.huge_after, " (collapse_alloc +",
                              r.collapse_alloc, ", failed +", r.collapse_alloc_failed, ") in ",
                              Secs(r.duration_ns));
    for (const auto& n : r.notes) out.notes.push_back(n);
    return absl::OkStatus();
  }

  absl::Status Do(const sc::Phase& phase, const sc::ProbeOp& op, PhaseSummary& out) {
    if (op.kind == sc::ProbeKind::kHugetlb) {
      ASSIGN_OR_RETURN(HugetlbProbeResult r, ProbeHugetlb(op.count, ctx_));
      RETURN_IF_ERROR(EmitProbe(sink_, FL_PROBE_HUGETLB, 9, r.requested, r.obtained, r.duration_ns));
      out.detail = absl::StrCat("probe hugetlb: ", r.obtained, "/", r.requested, " order-9 pages in ",
                                Secs(r.duration_ns), " (htlb_buddy_alloc success +",
                                r.buddy_alloc_success, " fail +", r.buddy_alloc_fail,
                                ", compact_stall +", r.compact_stall, "), ", r.given_back,
                                " given back");
      for (const auto& n : r.notes) out.notes.push_back(n);
      return absl::OkStatus();
    }
    if (op.page_size.kind == sc::PageSize::Kind::kMthp) {
      AnonParams p;
      p.page_size = AnonPageSize::kMthp;
      p.mthp_kb = 4ULL << op.page_size.order;
      p.bytes = op.count * p.mthp_kb * 1024;
      std::unique_ptr<AnonRegion> region;
      ASSIGN_OR_RETURN(AnonResult r, MapAndTouch(p, ctx_, &region));
      region.reset();
      RETURN_IF_ERROR(EmitProbe(sink_, FL_PROBE_THP, static_cast<uint32_t>(op.page_size.order),
                                op.count, r.mthp_faults, r.duration_ns));
      out.detail = absl::StrCat("probe mTHP ", p.mthp_kb, " kB: ", r.mthp_faults, "/", op.count,
                                " faults got the size (fallbacks ", r.mthp_fallbacks, ") in ",
                                Secs(r.duration_ns));
      return absl::OkStatus();
    }
    ASSIGN_OR_RETURN(ThpProbeResult r, ProbeThp(op.count, ctx_));
    RETURN_IF_ERROR(EmitProbe(sink_, FL_PROBE_THP, 9, r.requested, r.obtained, r.duration_ns));
    out.detail = absl::StrCat("probe thp: ", r.obtained, "/", r.requested, " THPs in ",
                              Secs(r.duration_ns), " (thp_fault_alloc +", r.fault_alloc,
                              ", fallback +", r.fault_fallback, ")");
    for (const auto& n : r.notes) out.notes.push_back(n);
    return absl::OkStatus();
  }

  absl::Status Do(const sc::Phase&, const sc::CompactOp& op, PhaseSummary& out) {
    ASSIGN_OR_RETURN(CompactResult r, Compact(op.node.value_or(-1)));
    out.detail = absl::StrCat("compact ", op.node ? absl::StrCat("node ", *op.node) : "all nodes",
                              " in ", Secs(r.duration_ns), ": migrate_scanned +", r.migrate_scanned,
                              ", free_scanned +", r.free_scanned, ", pgmigrate success +",
                              r.pgmigrate_success, " fail +", r.pgmigrate_fail);
    return absl::OkStatus();
  }

  absl::Status Do(const sc::Phase&, const sc::DropCachesOp& op, PhaseSummary& out) {
    const int mode = op.what == sc::DropWhat::kPagecache ? 1 : op.what == sc::DropWhat::kSlab ? 2 : 3;
    ASSIGN_OR_RETURN(uint64_t ns, DropCaches(mode));
    if (mode != 2) {
      // The page cache the run made is gone from memory (its files stay).
      for (auto& [tag, sets] : h_.pagecache) {
        for (auto& set : sets) set->DropReservation();
      }
    }
    out.detail = absl::StrCat("drop_caches ", mode, " in ", Secs(ns));
    return absl::OkStatus();
  }

  absl::Status Do(const sc::Phase&, const sc::SnapshotOp& op, PhaseSummary& out) {
    // The phase-end snapshot every phase writes is this operation's record.
    out.detail = absl::StrCat("snapshot", op.label.empty() ? "" : absl::StrCat(" '", op.label, "'"));
    return absl::OkStatus();
  }

  absl::Status Do(const sc::Phase&, const sc::HoldOp& op, PhaseSummary& out) {
    RETURN_IF_ERROR(Hold(static_cast<uint64_t>(absl::ToInt64Nanoseconds(op.duration)), *ctx_.stop));
    out.detail = absl::StrCat("hold ", absl::FormatDuration(op.duration));
    return absl::OkStatus();
  }

  absl::Status Do(const sc::Phase& phase, const sc::SysctlOp& op, PhaseSummary& out) {
    auto path = SettingPath(op.setting);
    if (!path.ok()) return sc::FieldError(s_, phase, "setting", path.status().message());
    RETURN_IF_ERROR(SetSysctl(*path, op.value, ctx_));
    out.detail = absl::StrCat("sysctl ", op.setting, " = ", op.value, " (", *path, ", restored at the end)");
    return absl::OkStatus();
  }

  template <typename Op>
  absl::Status Do(const sc::Phase& phase, const Op&, PhaseSummary&) {
    return sc::FieldError(s_, phase, "op",
                          absl::StrCat("'", sc::OpName(phase.op), "' is a simulator-only operation"));
  }

  const sc::Scenario& s_;
  OpContext& ctx_;
  Holdings& h_;
  RunSink& sink_;
  uint64_t budget_;
};

const char* kPageReportingOrder = "/sys/module/page_reporting/parameters/page_reporting_order";

// Writes the pageblock map estimated from /proc/kpageflags (root only) as
// FL_EV_PAGEBLOCK_MAP records, and says in `notes` how well its per-type
// block counts agree with pagetypeinfo, or why there is no map.
void RecordPageblockMap(const snapshot::MachineSnapshot& snap, EventSink& sink,
                        std::vector<std::string>& notes, const std::string& when) {
  if (!IsRoot()) {
    notes.push_back(absl::StrCat("no pageblock map at ", when,
                                 ": /proc/kpageflags needs root"));
    return;
  }
  auto map = snapshot::ReadMachineMap(snap);
  if (!map.ok()) {
    notes.push_back(absl::StrCat("no pageblock map at ", when, ": ", map.status().message()));
    return;
  }
  absl::Status st = snapshot::EmitPageblockMapRecords(*map, sink);
  if (!st.ok()) {
    notes.push_back(absl::StrCat("pageblock map at ", when, " not recorded: ", st.message()));
    return;
  }
  std::vector<std::string> agreement;
  for (const auto& z : map->zones) {
    if (z.type_agreement >= 0) {
      agreement.push_back(absl::StrFormat("%s %.1f%%", z.name, 100.0 * z.type_agreement));
    }
  }
  notes.push_back(absl::StrCat("pageblock map at ", when,
                               " recorded (types estimated from /proc/kpageflags",
                               agreement.empty() ? "" : "; agreement with pagetypeinfo: ",
                               absl::StrJoin(agreement, ", "), ")"));
}

}  // namespace

absl::Status RunSink::Emit(const fl_record_header& rec) {
  std::lock_guard<std::mutex> lock(mu_);
  ++records_;
  if (rec.kind == FL_EV_EXTFRAG && rec.size >= sizeof(fl_extfrag)) {
    fl_extfrag e;
    std::memcpy(&e, &rec, sizeof(e));
    if (e.extfrag_class < 3) ++fallbacks_[e.extfrag_class];
    if (e.alloc_migratetype >= 0 && e.alloc_migratetype < 8 && e.fallback_migratetype >= 0 &&
        e.fallback_migratetype < 8) {
      ++pairs_[static_cast<size_t>(e.alloc_migratetype * 8 + e.fallback_migratetype)];
    }
  }
  if (inner_ == nullptr) return absl::OkStatus();
  return inner_->Emit(rec);
}

std::array<uint64_t, 3> RunSink::fallbacks() const {
  std::lock_guard<std::mutex> lock(mu_);
  return fallbacks_;
}

std::vector<uint64_t> RunSink::fallback_pairs() const {
  std::lock_guard<std::mutex> lock(mu_);
  return pairs_;
}

uint64_t RunSink::records() const {
  std::lock_guard<std::mutex> lock(mu_);
  return records_;
}

uint64_t BuddySummary::Order9Blocks() const {
  uint64_t n = 0;
  for (size_t o = 9; o < free_blocks.size(); ++o) n += free_blocks[o] << (o - 9);
  return n;
}

absl::Status CheckGeneratorCanRun(const sc::Scenario& s) {
  for (const sc::ExpandedPhase& e : sc::Expand(s)) {
    if (sc::IsSimulatorOnly(e.phase->op)) {
      return sc::FieldError(s, *e.phase, "op",
                            absl::StrCat("phase ", e.label, ": '", sc::OpName(e.phase->op),
                                         "' is a raw allocator operation only the simulator can "
                                         "perform (fraglab sim); the generator refuses it"));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> SettingPath(const std::string& setting) {
  const std::string thp = "/sys/kernel/mm/transparent_hugepage";
  if (setting == "thp.enabled") return thp + "/enabled";
  if (setting == "thp.defrag") return thp + "/defrag";
  if (absl::StartsWith(setting, "thp.mthp.")) {
    ASSIGN_OR_RETURN(int order, sc::ParseMthpOrder(setting.substr(9)));
    return absl::StrCat(MthpDir(4ULL << order), "/enabled");
  }
  if (absl::StartsWith(setting, "vm.")) return SysctlPath(setting);
  return absl::InvalidArgumentError(absl::StrCat("unknown setting '", setting,
                                                 "' (vm.<name>, thp.enabled, thp.defrag, thp.mthp.<size>)"));
}

namespace {

// Bytes a partial munmap release gives back from an anon region of `bytes`
// cut into `unit` byte units, computed the way gen/release.cc picks units
// (rounded down: a conservative credit).
absl::StatusOr<uint64_t> PartialReleaseCredit(const sc::ReleaseOp& r, uint64_t bytes, uint64_t unit,
                                              uint64_t budget) {
  if (r.unit.has_value()) {
    ASSIGN_OR_RETURN(unit, ResolveSizeBytes(*r.unit, budget));
  }
  if (unit == 0) return 0;
  const uint64_t units = bytes / unit;
  uint64_t released = 0;
  switch (r.pattern) {
    case sc::ReleasePattern::kEveryNth:
      if (r.n > 0 && units > r.offset) released = (units - r.offset + r.n - 1) / r.n;
      break;
    case sc::ReleasePattern::kRandom:
      released = static_cast<uint64_t>(std::floor(r.fraction * static_cast<double>(units)));
      break;
    case sc::ReleasePattern::kStride: {
      ASSIGN_OR_RETURN(uint64_t stride, ResolveSizeBytes(r.stride, budget));
      ASSIGN_OR_RETURN(uint64_t length, ResolveSizeBytes(r.length, budget));
      const uint64_t st = std::max<uint64_t>(1, stride / unit);
      const uint64_t run = std::max<uint64_t>(1, length / unit);
      for (uint64_t i = 0; i < units; i += st) released += std::min(run, units - i);
      break;
    }
    case sc::ReleasePattern::kWhole: released = units; break;
  }
  return std::min(bytes, released * unit);
}

}  // namespace

absl::StatusOr<uint64_t> DeclaredPeakBytes(const sc::Scenario& s, uint64_t budget) {
  uint64_t held = 0, peak = 0;
  uint64_t cache = 0;  // page cache held, dropped by drop_caches
  std::vector<std::string> cache_tags;
  std::map<std::string, uint64_t> tagged;
  // Anon regions per tag for partial munmap credits; each region is credited
  // for its first partial release only, so overlapping patterns are never
  // counted twice (a tag in a repeat names several regions).
  struct AnonDecl {
    uint64_t bytes = 0;
    uint64_t unit = 0;  // default release unit: the region's page size
    bool credited = false;
  };
  std::map<std::string, std::vector<AnonDecl>> anon_regions;
  auto add = [&](const std::string& tag, uint64_t bytes) {
    held += bytes;
    if (!tag.empty()) tagged[tag] += bytes;
    peak = std::max(peak, held);
  };
  for (const sc::ExpandedPhase& e : sc::Expand(s)) {
    const sc::Operation& op = e.phase->op;
    if (const auto* r = std::get_if<sc::ReleaseOp>(&op); r != nullptr && tagged.count(r->region) == 0) {
      continue;  // a region already credited (or unknown: the runner reports it)
    }
    if (const auto* a = std::get_if<sc::AnonOp>(&op)) {
      ASSIGN_OR_RETURN(uint64_t b, ResolveSizeBytes(a->size, budget));
      add(a->tag, b);
      if (!a->tag.empty()) {
        const uint64_t unit = a->page_size.kind == sc::PageSize::Kind::kBase ? kPageBytes
                              : a->page_size.kind == sc::PageSize::Kind::kThp
                                  ? kPmdBytes
                                  : (kPageBytes << a->page_size.order);
        anon_regions[a->tag].push_back({b, unit, false});
      }
    } else if (const auto* p = std::get_if<sc::PinOp>(&op)) {
      ASSIGN_OR_RETURN(uint64_t b, ResolveSizeBytes(p->size, budget));
      add(p->tag, b);
    } else if (const auto* pc = std::get_if<sc::PagecacheOp>(&op)) {
      ASSIGN_OR_RETURN(uint64_t b, ResolveSizeBytes(pc->size, budget));
      add(pc->tag, b);
      cache += b;
      if (!pc->tag.empty()) cache_tags.push_back(pc->tag);
    } else if (const auto* dc = std::get_if<sc::DropCachesOp>(&op)) {
      if (dc->what != sc::DropWhat::kSlab) {
        held -= std::min(held, cache);
        cache = 0;
        for (const std::string& tag : cache_tags) tagged.erase(tag);
        cache_tags.clear();
      }
    } else if (const auto* sl = std::get_if<sc::SlabOp>(&op)) {
      add(sl->tag, sl->count * (sl->kind == sc::SlabKind::kDentry ? kDentryBytes : kInodeBytes));
    } else if (const auto* pr = std::get_if<sc::ProbeOp>(&op)) {
      uint64_t unit = kPmdBytes;
      if (pr->kind == sc::ProbeKind::kThp && pr->page_size.kind == sc::PageSize::Kind::kMthp) {
        unit = 4096ULL << pr->page_size.order;
      }
      peak = std::max(peak, held + pr->count * unit);
    } else if (const auto* r = std::get_if<sc::ReleaseOp>(&op)) {
      if (r->pattern == sc::ReleasePattern::kWhole) {
        auto it = tagged.find(r->region);
        if (it != tagged.end()) {
          held -= std::min(held, it->second);
          tagged.erase(it);
        }
        anon_regions.erase(r->region);
      } else if ((r->method == sc::ReleaseMethod::kMunmap || r->method == sc::ReleaseMethod::kFree) &&
                 anon_regions.count(r->region) > 0) {
        // Unmapped pages give their reservation back (MADV_DONTNEED ones do not:
        // the ledger keeps them, see gen/anon.h).
        uint64_t credit = 0;
        for (AnonDecl& d : anon_regions[r->region]) {
          if (d.credited) continue;
          d.credited = true;
          ASSIGN_OR_RETURN(uint64_t c, PartialReleaseCredit(*r, d.bytes, d.unit, budget));
          credit += c;
        }
        auto it = tagged.find(r->region);
        credit = std::min(credit, it->second);
        it->second -= credit;
        held -= std::min(held, credit);
      }
    }
  }
  return peak;
}

absl::StatusOr<BudgetDecision> DecideBudget(const sc::Scenario& s, const RunOptions& options) {
  ASSIGN_OR_RETURN(MemorySample sample, ReadMemorySample(options.watchdog.meminfo_path,
                                                         options.watchdog.psi_path));
  BudgetDecision d;
  d.available_floor = options.watchdog.available_floor != 0 ? options.watchdog.available_floor
                                                            : DefaultAvailableFloor(sample.mem_total);
  BudgetOptions bo;
  if (options.budget_bytes != 0) {
    bo.bytes = options.budget_bytes;
  } else if (s.budget.memory.unit == SizeUnit::kPercent) {
    bo.fraction = static_cast<double>(s.budget.memory.amount) / 100000.0;
  } else {
    ASSIGN_OR_RETURN(bo.bytes, ResolveSizeBytes(s.budget.memory, sample.mem_available));
  }
  ASSIGN_OR_RETURN(d.budget_bytes, ComputeBudget(sample, bo, d.available_floor));
  ASSIGN_OR_RETURN(d.declared_peak_bytes, DeclaredPeakBytes(s, d.budget_bytes));
  RETURN_IF_ERROR(CheckDeclared(d.declared_peak_bytes, d.budget_bytes,
                                absl::StrCat("scenario '", s.name, "'")));
  if (options.arena_bytes != 0) {
    d.arena_bytes = options.arena_bytes;
  } else if (s.budget.arena.has_value()) {
    ASSIGN_OR_RETURN(d.arena_bytes, ResolveSizeBytes(*s.budget.arena, d.budget_bytes));
  }
  if (d.arena_bytes != 0 && d.arena_bytes < d.declared_peak_bytes + kArenaMargin) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "scenario '", s.name, "': the arena of ", HumanBytes(d.arena_bytes),
        " is too small for the declared peak ", HumanBytes(d.declared_peak_bytes), " + ",
        HumanBytes(kArenaMargin), " margin: it must be at least ",
        HumanBytes(d.declared_peak_bytes + kArenaMargin)));
  }
  return d;
}

absl::StatusOr<RunReport> RunScenario(const sc::Scenario& s, const RunOptions& options,
                                      RunHooks& hooks) {
  if (hooks.sink == nullptr) return absl::InternalError("RunScenario without a sink");
  RunReport report;
  report.scenario = s.name;
  const uint64_t t_start = NowNs();
  RETURN_IF_ERROR(CheckGeneratorCanRun(s));

  // Budget: decided and checked before anything is touched.
  ASSIGN_OR_RETURN(BudgetDecision budget, DecideBudget(s, options));
  report.budget_bytes = budget.budget_bytes;
  report.declared_peak_bytes = budget.declared_peak_bytes;
  const uint64_t floor = budget.available_floor;

  // Journal (restores what a crashed run left), scratch dir, signals, watchdog.
  const std::string state = options.state_dir.empty() ? RestoreJournal::DefaultDir() : options.state_dir;
  ASSIGN_OR_RETURN(std::unique_ptr<RestoreJournal> journal, RestoreJournal::Open(state, &report.recovered));
  // Early returns below still undo what was journalled (holdings, declared
  // later, are released before this runs).
  struct ReplayOnEarlyExit {
    RestoreJournal* journal;
    bool armed = true;
    ~ReplayOnEarlyExit() {
      if (armed) (void)journal->Replay();
    }
  } early_exit{journal.get()};
  if (report.recovered.entries > 0) {
    report.notes.push_back(absl::StrCat("restored ", report.recovered.undone, " change(s) a previous "
                                        "run left behind: ", absl::StrJoin(report.recovered.actions, "; ")));
  }
  const std::string work = absl::StrCat(state, "/run-", ::getpid());
  RETURN_IF_ERROR(journal->Record({JournalEntryKind::kDir, work, ""}));
  if (::mkdir(work.c_str(), 0700) != 0 && errno != EEXIST) {
    return ErrnoStatus(errno, absl::StrCat("create work directory ", work));
  }
  InstallStopSignalHandlers();
  StopFlag stop;
  MemoryLedger ledger(report.budget_bytes);
  // Declared before the watchdog so that the watchdog (which may call into
  // it) is stopped first on every path.
  std::unique_ptr<Arena> arena;
  std::atomic<Arena*> arena_ptr{nullptr};
  WatchdogOptions wo = options.watchdog;
  wo.available_floor = floor;
  wo.max_run_ns = static_cast<uint64_t>(absl::ToInt64Nanoseconds(s.budget.max_duration));
  wo.releasable = [&arena_ptr]() -> uint64_t {
    Arena* a = arena_ptr.load();
    return a != nullptr ? a->held_bytes() : 0;
  };
  wo.on_stop = [&arena_ptr] {
    if (Arena* a = arena_ptr.load()) a->GiveBack();
  };
  Watchdog watchdog(wo, &stop);
  RETURN_IF_ERROR(watchdog.Start());
  OpContext ctx{&stop, &ledger, journal.get(), work};
  Holdings holdings;
  RunSink& sink = *hooks.sink;
  auto drain = [&] {
    if (hooks.drain) hooks.drain();
  };
  auto progress = [&](const std::string& line) {
    if (options.progress) std::fprintf(stderr, "fraglab run: %s\n", line.c_str());
  };

  if (!IsRoot()) {
    report.notes.push_back("not root: drop_caches, compact, sysctl, hugetlb probes, mTHP sizes, "
                           "filesystems and tmpfs inodes are skipped; the rest runs");
  }
  if (ReadSetting(kPageReportingOrder).ok()) {
    report.notes.push_back(absl::StrCat(
        "background noise: free page reporting is active (order ", *ReadSetting(kPageReportingOrder),
        "): the balloon driver isolates and re-types free blocks of that order behind our back"));
  }

  absl::Status run_status = absl::OkStatus();
  // Known start.
  if (options.prepare) {
    progress("preparing: drop caches, compact, settle");
    auto d = DropCaches(3);
    if (!d.ok()) report.notes.push_back(absl::StrCat("prepare: ", d.status().message()));
    auto c = Compact();
    if (!c.ok()) report.notes.push_back(absl::StrCat("prepare: ", c.status().message()));
    auto settled = Settle(stop);
    if (!settled.ok()) run_status = settled.status();
  }
  if (budget.arena_bytes != 0 && run_status.ok()) {
    progress(absl::StrCat("arena: leaving ", HumanBytes(budget.arena_bytes), " free"));
    auto a = Arena::Shrink(budget.arena_bytes, ctx, &arena_ptr);
    if (a.ok()) {
      arena = std::move(*a);
      report.arena_used = true;
      report.arena = arena->result();
      // A stop raised while the arena was being built had no arena to give back.
      if (stop.requested()) arena->GiveBack();
    } else if (a.status().code() == absl::StatusCode::kFailedPrecondition) {
      report.notes.push_back(absl::StrCat("arena skipped: ", a.status().message()));
    } else {
      run_status.Update(a.status());
    }
  }
  auto snap0 = snapshot::ReadMachineSnapshot("/");
  if (!snap0.ok()) {
    run_status.Update(snap0.status());
  } else {
    report.start = Summarize(*snap0);
    run_status.Update(snapshot::EmitSnapshotRecords(*snap0, sink));
    if (!snap0->HasTypes()) {
      report.notes.push_back(absl::StrCat("no pageblock counts: ", snap0->pagetypeinfo_error));
    }
    RecordPageblockMap(*snap0, sink, report.notes, "start");
  }
  std::vector<uint64_t> start_managed;
  if (snap0.ok()) for (const auto& z : snap0->zones) start_managed.push_back(z.managed);

  PhaseRunner runner(s, ctx, holdings, sink, report.budget_bytes);
  const std::vector<sc::ExpandedPhase> phases = sc::Expand(s);
  for (const sc::ExpandedPhase& e : phases) {
    if (!run_status.ok()) break;
    if (stop.requested()) break;
    PhaseSummary ps;
    ps.index = e.index;
    ps.label = e.label;
    ps.op = sc::OpName(e.phase->op);
    drain();
    const auto fb0 = sink.fallbacks();
    const auto pairs0 = sink.fallback_pairs();
    auto vm0 = ReadKeyValueFile("/proc/vmstat");
    run_status.Update(EmitPhase(sink, e.index, true, e.label));
    const uint64_t t0 = NowNs();
    absl::Status st = runner.Run(*e.phase, ps);
    ps.duration_ns = NowNs() - t0;
    if (st.ok()) {
      ps.outcome = "ok";
    } else if (st.code() == absl::StatusCode::kFailedPrecondition) {
      // Missing privilege or kernel feature: say so, run the rest.
      ps.outcome = absl::StrCat("skipped: ", st.message());
    } else if (st.code() == absl::StatusCode::kCancelled) {
      ps.outcome = absl::StrCat("stopped: ", st.message());
    } else {
      ps.outcome = absl::StrCat("failed: ", st.message());
      run_status = st;
    }
    drain();
    run_status.Update(EmitPhase(sink, e.index, false, e.label));
    auto snap = snapshot::ReadMachineSnapshot("/");
    if (snap.ok()) {
      ps.end = Summarize(*snap);
      run_status.Update(snapshot::EmitSnapshotRecords(*snap, sink));
      // A snapshot phase also records the per-pageblock picture (about a
      // second for 24 GiB, so not after every phase).
      if (std::holds_alternative<sc::SnapshotOp>(e.phase->op)) {
        RecordPageblockMap(*snap, sink, ps.notes, e.label);
      }
      for (size_t z = 0; z < snap->zones.size() && z < start_managed.size(); ++z) {
        if (snap->zones[z].managed != start_managed[z]) {
          ps.notes.push_back(absl::StrCat("background noise: zone ", snap->zones[z].name, " managed pages ",
                                          start_managed[z], " -> ", snap->zones[z].managed,
                                          " (memory hotplug or balloon)"));
          start_managed[z] = snap->zones[z].managed;
        }
      }
    }
    const auto fb1 = sink.fallbacks();
    const auto pairs1 = sink.fallback_pairs();
    for (int c = 0; c < 3; ++c) ps.fallbacks[c] = fb1[c] - fb0[c];
    const auto& names = report.start.migratetype_names;
    for (size_t i = 0; i < pairs1.size(); ++i) {
      if (pairs1[i] > pairs0[i]) {
        ps.fallback_pairs.push_back({absl::StrCat(MtName(names, i / 8), "->", MtName(names, i % 8)),
                                     pairs1[i] - pairs0[i]});
      }
    }
    auto vm1 = ReadKeyValueFile("/proc/vmstat");
    if (vm0.ok() && vm1.ok()) {
      auto d = [&](const char* k) { return ValueOr0(*vm1, k) - ValueOr0(*vm0, k); };
      ps.compact_stall = d("compact_stall");
      ps.compact_success = d("compact_success");
      ps.compact_fail = d("compact_fail");
    }
    ps.held_bytes = ledger.held();
    progress(absl::StrCat("[", e.index + 1, "/", phases.size(), "] ", e.label, ": ", ps.outcome,
                          ps.detail.empty() ? "" : absl::StrCat(" - ", ps.detail), " (", Secs(ps.duration_ns),
                          ", order>=9 free ", ps.end.Order9Blocks(), " blocks)"));
    report.phases.push_back(std::move(ps));
  }
  if (stop.requested()) report.stop_reason = stop.reason();
  watchdog.Stop();
  report.peak_held_bytes = ledger.peak();

  // Release everything, then restore every setting, on every path.
  holdings.Clear();
  if (arena) {
    arena_ptr.store(nullptr);
    arena->GiveBack();
    if (!arena->error().empty()) {
      report.notes.push_back(absl::StrCat("arena: giving back: ", arena->error(),
                                          " (the journal replay below retries the pool)"));
    }
    arena.reset();
  }
  early_exit.armed = false;
  auto restored = journal->Replay();
  if (restored.ok()) {
    report.restored = *restored;
  } else {
    run_status.Update(restored.status());
  }
  report.notes.push_back(absl::StrCat("watchdog: floor ", HumanBytes(floor), ", lowest MemAvailable seen ",
                                      HumanBytes(watchdog.min_available_seen()),
                                      watchdog.psi_available()
                                          ? absl::StrFormat(", highest PSI full avg10 %.2f%%",
                                                            watchdog.max_psi_full_seen())
                                          : ", PSI unavailable"));
  report.total_ns = NowNs() - t_start;
  if (!run_status.ok()) return run_status;
  return report;
}

std::string FormatRunReport(const RunReport& r) {
  std::string out;
  absl::StrAppend(&out, "scenario ", r.scenario, ": ", r.phases.size(), " phases in ", Secs(r.total_ns),
                  ", budget ", HumanBytes(r.budget_bytes), " (declared peak ",
                  HumanBytes(r.declared_peak_bytes), ", held at most ", HumanBytes(r.peak_held_bytes),
                  ")\n");
  if (!r.stop_reason.empty()) absl::StrAppend(&out, "STOPPED EARLY: ", r.stop_reason, "\n");
  auto buddy = [&](const BuddySummary& b) {
    std::string line = absl::StrCat("free blocks by order [", absl::StrJoin(b.free_blocks, " "),
                                    "], order>=9: ", b.Order9Blocks());
    if (!b.pageblocks.empty()) {
      std::vector<std::string> parts;
      for (size_t t = 0; t < b.pageblocks.size(); ++t) {
        parts.push_back(absl::StrCat(MtName(b.migratetype_names, t), " ", b.pageblocks[t]));
      }
      absl::StrAppend(&line, "; pageblocks ", absl::StrJoin(parts, ", "));
    }
    return line;
  };
  if (r.arena_used) {
    const ArenaResult& a = r.arena;
    absl::StrAppend(&out, "arena: ", HumanBytes(a.requested_bytes), " asked; ballast ",
                    HumanBytes(a.ballast_bytes), " (over ", absl::StrJoin(a.zones, "+"),
                    "), hugetlb pool +", a.pool_pages, " pages, pipe buffers ", HumanBytes(a.pipe_bytes),
                    " (over the UNMOVABLE lists), ballast ", HumanBytes(a.topup_bytes),
                    " (all zones); free ", HumanBytes(a.free_before), " -> ",
                    HumanBytes(a.free_after), " (kept: the arena + the kernel's reserve of ",
                    HumanBytes(a.reserve_bytes), "), order>=9 free blocks ", a.order9_before, " -> ",
                    a.order9_after, " (", Secs(a.duration_ns), "); all given back at the end\n");
    for (const auto& n : a.notes) absl::StrAppend(&out, "note: ", n, "\n");
  }
  absl::StrAppend(&out, "start: ", buddy(r.start), "\n");
  for (const PhaseSummary& p : r.phases) {
    absl::StrAppend(&out, "phase ", p.label, " [", p.outcome, "] ", Secs(p.duration_ns), "\n");
    if (!p.detail.empty()) absl::StrAppend(&out, "  did: ", p.detail, "\n");
    absl::StrAppend(&out, "  end: ", buddy(p.end), "\n");
    absl::StrAppend(&out, "  fallbacks claim/steal/pollute: ", p.fallbacks[0], "/", p.fallbacks[1], "/",
                    p.fallbacks[2]);
    if (!p.fallback_pairs.empty()) {
      std::vector<std::string> parts;
      for (const auto& [k, v] : p.fallback_pairs) parts.push_back(absl::StrCat(k, " ", v));
      absl::StrAppend(&out, " (", absl::StrJoin(parts, ", "), ")");
    }
    absl::StrAppend(&out, "; compaction stall/success/fail +", p.compact_stall, "/+", p.compact_success,
                    "/+", p.compact_fail, "; run holds ", HumanBytes(p.held_bytes), "\n");
    for (const auto& n : p.notes) absl::StrAppend(&out, "  note: ", n, "\n");
  }
  absl::StrAppend(&out, "restored at the end: ", r.restored.undone, " of ", r.restored.entries,
                  " journal entries\n");
  for (const auto& n : r.notes) absl::StrAppend(&out, "note: ", n, "\n");
  return out;
}

}  // namespace fraglab::gen
