#include "bpf/tracker.h"

#include <fcntl.h>
#include <linux/capability.h>
#include <linux/perf_event.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdarg>
#include <cstring>
#include <ctime>
#include <fstream>
#include <atomic>
#include <chrono>
#include <mutex>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "bpf/tracker_maps.h"
#include "common/snapshot_machine.h"
#include "common/status.h"

#ifdef FRAGLAB_HAVE_BPF
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "bpf/fraglab_bpf.skel.h"
#endif

namespace fraglab::tracker {
namespace {

[[maybe_unused]] uint64_t MonotonicNs() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1'000'000'000ull + static_cast<uint64_t>(ts.tv_nsec);
}

bool IsDir(const std::string& path) {
  struct stat st{};
  return stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

bool Exists(const std::string& path) { return access(path.c_str(), F_OK) == 0; }

// Effective capability bits 0..63, or an error.
absl::StatusOr<uint64_t> EffectiveCaps() {
  __user_cap_header_struct hdr{};
  __user_cap_data_struct data[2]{};
  hdr.version = _LINUX_CAPABILITY_VERSION_3;
  hdr.pid = 0;
  if (syscall(SYS_capget, &hdr, data) != 0) return ErrnoStatus(errno, "capget");
  return static_cast<uint64_t>(data[0].effective) | (static_cast<uint64_t>(data[1].effective) << 32);
}

constexpr int kCapSysAdmin = 21;
constexpr int kCapPerfmon = 38;
constexpr int kCapBpf = 39;

}  // namespace

bool BuiltWithBpf() {
#ifdef FRAGLAB_HAVE_BPF
  return true;
#else
  return false;
#endif
}

absl::StatusOr<std::string> FindTracefs() {
  for (const char* dir : {"/sys/kernel/tracing", "/sys/kernel/debug/tracing"}) {
    if (IsDir(absl::StrCat(dir, "/events"))) return std::string(dir);
  }
  return absl::FailedPreconditionError(
      "tracefs is not mounted (neither /sys/kernel/tracing/events nor "
      "/sys/kernel/debug/tracing/events exists): mount it with "
      "'mount -t tracefs nodev /sys/kernel/tracing'");
}

absl::Status CheckPrerequisites(const std::string& tracefs) {
  if (!BuiltWithBpf()) {
    return absl::FailedPreconditionError(
        "fraglab was built without BPF support (configured with -DFRAGLAB_BPF=OFF); rebuild "
        "with -DFRAGLAB_BPF=ON (needs clang, bpftool and libbpf-dev)");
  }
  if (geteuid() != 0) {
    ASSIGN_OR_RETURN(uint64_t caps, EffectiveCaps());
    bool admin = caps & (1ull << kCapSysAdmin);
    bool bpf_perfmon = (caps & (1ull << kCapBpf)) && (caps & (1ull << kCapPerfmon));
    if (!admin && !bpf_perfmon) {
      return absl::FailedPreconditionError(
          "tracing needs root (or the capabilities CAP_BPF and CAP_PERFMON, or CAP_SYS_ADMIN) "
          "to load BPF programs and open tracepoints: run fraglab with sudo");
    }
  }
  if (!Exists("/sys/kernel/btf/vmlinux")) {
    return absl::FailedPreconditionError(
        "kernel BTF is missing (/sys/kernel/btf/vmlinux does not exist): the tracker's CO-RE "
        "programs need a kernel built with CONFIG_DEBUG_INFO_BTF=y");
  }
  if (tracefs.empty()) {
    RETURN_IF_ERROR(FindTracefs().status());
  } else if (!IsDir(tracefs + "/events")) {
    return absl::FailedPreconditionError(absl::StrCat(
        "tracefs not found at ", tracefs, " (no events/ directory): mount it with 'mount -t "
        "tracefs nodev ", tracefs, "'"));
  }
  return absl::OkStatus();
}

#ifndef FRAGLAB_HAVE_BPF

struct Tracker::Impl {
  TrackerOptions options;
  TrackerStats stats;
  std::vector<TracepointState> tracepoints;
  std::vector<std::string> notes;
};

absl::StatusOr<std::unique_ptr<Tracker>> Tracker::Start(const TrackerOptions&, EventSink*) {
  RETURN_IF_ERROR(CheckPrerequisites());
  return absl::InternalError("unreachable: BPF support missing but prerequisites passed");
}
absl::Status Tracker::Poll(int) { return absl::FailedPreconditionError("built without BPF support"); }
absl::Status Tracker::Stop() { return absl::OkStatus(); }

#else  // FRAGLAB_HAVE_BPF

namespace {

// What fraglab attaches. Program names are those of fraglab.bpf.c.
struct TracepointSpec {
  const char* program;
  std::vector<const char*> categories;  // tried in order
  const char* name;
  bool required;
  bool out_of_tree;
};

const std::vector<TracepointSpec>& Specs() {
  static const std::vector<TracepointSpec> specs = {
      {"fl_page_alloc", {"kmem"}, "mm_page_alloc", true, false},
      {"fl_page_free", {"kmem"}, "mm_page_free", true, false},
      {"fl_extfrag", {"kmem"}, "mm_page_alloc_extfrag", true, false},
      {"fl_zone_locked", {"kmem"}, "mm_page_alloc_zone_locked", true, false},
      {"fl_pcp_drain", {"kmem"}, "mm_page_pcpu_drain", true, false},
      {"fl_compact_begin", {"compaction"}, "mm_compaction_begin", false, false},
      {"fl_compact_end", {"compaction"}, "mm_compaction_end", false, false},
      {"fl_compact_suitable", {"compaction"}, "mm_compaction_suitable", false, false},
      {"fl_compact_finished", {"compaction"}, "mm_compaction_finished", false, false},
      {"fl_compact_deferred", {"compaction"}, "mm_compaction_deferred", false, false},
      {"fl_compact_defer_compaction", {"compaction"}, "mm_compaction_defer_compaction", false, false},
      {"fl_compact_defer_reset", {"compaction"}, "mm_compaction_defer_reset", false, false},
      {"fl_compact_try", {"compaction"}, "mm_compaction_try_to_compact_pages", false, false},
      {"fl_kcompactd_wakeup", {"compaction"}, "mm_compaction_wakeup_kcompactd", false, false},
      {"fl_kcompactd_wake", {"compaction"}, "mm_compaction_kcompactd_wake", false, false},
      {"fl_kcompactd_sleep", {"compaction"}, "mm_compaction_kcompactd_sleep", false, false},
      {"fl_isolate_migratepages", {"compaction"}, "mm_compaction_isolate_migratepages", false, false},
      {"fl_isolate_freepages", {"compaction"}, "mm_compaction_isolate_freepages", false, false},
      {"fl_fast_isolate_freepages", {"compaction"}, "mm_compaction_fast_isolate_freepages", false,
       false},
      {"fl_compact_migratepages", {"compaction"}, "mm_compaction_migratepages", false, false},
      {"fl_compact_success", {"page_alloc", "compaction"}, "mm_compaction_success", false, true},
      {"fl_compact_failure", {"page_alloc", "compaction"}, "mm_compaction_failure", false, true},
      {"fl_migrate_pages", {"migrate"}, "mm_migrate_pages", false, false},
      {"fl_direct_reclaim_begin", {"vmscan"}, "mm_vmscan_direct_reclaim_begin", false, false},
      {"fl_direct_reclaim_end", {"vmscan"}, "mm_vmscan_direct_reclaim_end", false, false},
      {"fl_kswapd_wake", {"vmscan"}, "mm_vmscan_kswapd_wake", false, false},
      {"fl_kswapd_sleep", {"vmscan"}, "mm_vmscan_kswapd_sleep", false, false},
      {"fl_kswapd_wakeup", {"vmscan"}, "mm_vmscan_wakeup_kswapd", false, false},
      {"fl_oom_victim", {"oom"}, "mark_victim", false, false},
      {"fl_thp_collapse", {"huge_memory"}, "mm_collapse_huge_page", false, false},
  };
  return specs;
}

// libbpf messages are collected while loading so a failed load can say why
// (the verifier log's tail).
std::mutex g_log_mu;
std::string* g_log = nullptr;

int CollectLibbpfLog(enum libbpf_print_level level, const char* fmt, va_list args) {
  if (level == LIBBPF_DEBUG) return 0;
  std::lock_guard<std::mutex> lock(g_log_mu);
  if (g_log == nullptr) return 0;
  char buf[1024];
  int n = vsnprintf(buf, sizeof(buf), fmt, args);
  if (n > 0) g_log->append(buf, std::min<size_t>(static_cast<size_t>(n), sizeof(buf) - 1));
  return n;
}

std::string TailLines(const std::string& text, size_t lines) {
  size_t pos = text.size();
  for (size_t i = 0; i <= lines && pos > 0; ++i) {
    pos = text.rfind('\n', pos - 1);
    if (pos == std::string::npos) return text;
  }
  return text.substr(pos + 1);
}

struct SkelDeleter {
  void operator()(fraglab_bpf* s) const { fraglab_bpf__destroy(s); }
};
struct RingDeleter {
  void operator()(ring_buffer* r) const { ring_buffer__free(r); }
};
struct LinkDeleter {
  void operator()(bpf_link* l) const { bpf_link__destroy(l); }
};

// Owns a file descriptor.
class Fd {
 public:
  explicit Fd(int fd = -1) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) close(fd_);
  }
  Fd(Fd&& o) noexcept : fd_(o.fd_) { o.fd_ = -1; }
  int release() {
    int f = fd_;
    fd_ = -1;
    return f;
  }
  int get() const { return fd_; }

 private:
  int fd_;
};

absl::StatusOr<uint64_t> ReadTracepointId(const std::string& path) {
  std::ifstream in(path);
  uint64_t id = 0;
  if (!(in >> id)) return absl::NotFoundError(absl::StrCat("cannot read ", path));
  return id;
}

}  // namespace

struct Tracker::Impl {
  TrackerOptions options;
  EventSink* sink = nullptr;
  std::string tracefs;
  std::unique_ptr<fraglab_bpf, SkelDeleter> skel;
  std::unique_ptr<ring_buffer, RingDeleter> ring;
  std::vector<std::unique_ptr<bpf_link, LinkDeleter>> links;
  std::vector<TracepointState> tracepoints;
  std::vector<std::string> notes;  // besides skipped tracepoints
  TrackerStats stats;
  absl::Status sink_error;
  int nr_cpus = 0;
  bool stopped = false;
  uint64_t last_interval_ns = 0;
  uint64_t next_due_ns = 0;
  std::vector<uint64_t> prev_alloc, prev_free, prev_failed;
  uint64_t prev_unknown_zone = 0;

  static int HandleSample(void* ctx, void* data, size_t size);
  absl::Status Load();
  absl::Status Attach();
  absl::Status EmitPeriodic(uint64_t now_ns, bool with_snapshot);
  absl::Status EmitAggregate(uint64_t now_ns);
  absl::Status EmitDrops(uint64_t now_ns);
  absl::Status EmitSnapshot();
  absl::Status Drain();
};

int Tracker::Impl::HandleSample(void* ctx, void* data, size_t size) {
  auto* self = static_cast<Impl*>(ctx);
  if (size < sizeof(fl_record_header)) {
    self->sink_error = absl::InternalError(absl::StrCat("ring sample of ", size, " bytes"));
    return -1;
  }
  const auto* hdr = static_cast<const fl_record_header*>(data);
  if (hdr->size != size || hdr->kind == FL_EV_INVALID || hdr->kind >= FL_EV_KIND_MAX) {
    self->sink_error = absl::InternalError(absl::StrCat("malformed ring record: kind ", hdr->kind,
                                                        " size ", hdr->size, " sample ", size));
    return -1;
  }
  self->stats.ring_records[hdr->kind]++;
  self->stats.ring_records_total++;
  if (hdr->kind == FL_EV_EXTFRAG && size >= sizeof(fl_extfrag)) {
    uint8_t cls = static_cast<const fl_extfrag*>(data)->extfrag_class;
    if (cls < self->stats.extfrag_by_class.size()) self->stats.extfrag_by_class[cls]++;
  }
  absl::Status st = self->sink->Emit(*hdr);
  if (!st.ok()) {
    self->sink_error = st;
    return -1;
  }
  return 0;
}

absl::Status Tracker::Impl::Load() {
  fraglab_bpf* raw = fraglab_bpf__open();
  if (raw == nullptr) return ErrnoStatus(errno, "opening the embedded BPF object (fraglab_bpf__open)");
  skel.reset(raw);

  auto* ro = skel->rodata;
  ro->cfg_all_events = options.all_events ? 1 : 0;
  ro->cfg_pageblock_order = options.pageblock_order;
  ro->cfg_nr_zones = static_cast<uint32_t>(options.zones.size());
  for (size_t i = 0; i < options.zones.size(); ++i) {
    ro->cfg_zone_start[i] = options.zones[i].start_pfn;
    ro->cfg_zone_end[i] = options.zones[i].start_pfn + options.zones[i].spanned;
  }
  ro->cfg_wakeup_bytes = options.ring_bytes / 4;
  if (int err = bpf_map__set_max_entries(skel->maps.events, static_cast<uint32_t>(options.ring_bytes));
      err != 0) {
    return ErrnoStatus(-err, absl::StrCat("setting the ring buffer size to ", options.ring_bytes));
  }

  // Decide what to load: a program whose tracepoint is absent is not loaded
  // (its CO-RE relocations could not resolve), required ones stop here.
  bpf_program* prog = nullptr;
  bpf_object__for_each_program(prog, skel->obj) {
    const char* pname = bpf_program__name(prog);
    const TracepointSpec* spec = nullptr;
    for (const auto& s : Specs()) {
      if (std::strcmp(s.program, pname) == 0) spec = &s;
    }
    if (spec == nullptr) return absl::InternalError(absl::StrCat("BPF program ", pname, " has no spec"));
    TracepointState tp;
    tp.name = spec->name;
    tp.required = spec->required;
    tp.out_of_tree = spec->out_of_tree;
    std::vector<std::string> tried;
    for (const char* cat : spec->categories) {
      std::string dir = absl::StrCat(tracefs, "/events/", cat, "/", spec->name);
      tried.push_back(dir);
      if (IsDir(dir)) {
        tp.category = cat;
        break;
      }
    }
    if (tp.category.empty()) {
      tp.category = spec->categories.front();
      if (spec->required) {
        return absl::FailedPreconditionError(absl::StrCat(
            "required tracepoint ", tp.category, ":", spec->name, " is missing (", tried.front(),
            " does not exist): the kernel must be built with CONFIG_TRACEPOINTS and the page "
            "allocator's kmem events"));
      }
      tp.note = spec->out_of_tree
                    ? absl::StrCat("not in this kernel (out-of-tree tracepoint; looked for ",
                                   absl::StrJoin(tried, " and "), ")")
                    : absl::StrCat("not in this kernel (", tried.front(),
                                   " missing; e.g. CONFIG_COMPACTION / CONFIG_MIGRATION / "
                                   "CONFIG_TRANSPARENT_HUGEPAGE off)");
      bpf_program__set_autoload(prog, false);
    }
    tracepoints.push_back(std::move(tp));
  }

  std::string log;
  {
    std::lock_guard<std::mutex> lock(g_log_mu);
    g_log = &log;
  }
  libbpf_print_fn_t old = libbpf_set_print(CollectLibbpfLog);
  int err = fraglab_bpf__load(skel.get());
  libbpf_set_print(old);
  {
    std::lock_guard<std::mutex> lock(g_log_mu);
    g_log = nullptr;
  }
  if (err != 0) {
    int e = -err;
    std::string hint;
    if (e == EPERM || e == EACCES) {
      std::string lockdown;
      std::ifstream in("/sys/kernel/security/lockdown");
      std::getline(in, lockdown);
      hint = absl::StrCat(
          ": the kernel refused BPF (need root or CAP_BPF+CAP_PERFMON; kernel lockdown is '",
          lockdown.empty() ? "unknown" : lockdown,
          "' and must not be [confidentiality]; a seccomp filter or LSM may also block bpf())");
    }
    return absl::FailedPreconditionError(absl::StrCat("loading the BPF programs failed: ",
                                                      std::strerror(e), hint, "\nlibbpf: ",
                                                      TailLines(log, 12)));
  }
  return absl::OkStatus();
}

absl::Status Tracker::Impl::Attach() {
  size_t i = 0;
  bpf_program* prog = nullptr;
  bpf_object__for_each_program(prog, skel->obj) {
    TracepointState& tp = tracepoints[i++];
    if (!bpf_program__autoload(prog)) continue;
    std::string id_path = absl::StrCat(tracefs, "/events/", tp.category, "/", tp.name, "/id");
    absl::StatusOr<uint64_t> id = ReadTracepointId(id_path);
    absl::Status failure;
    if (!id.ok()) {
      failure = id.status();
    } else {
      perf_event_attr attr{};
      attr.type = PERF_TYPE_TRACEPOINT;
      attr.size = sizeof(attr);
      attr.config = *id;
      attr.sample_period = 1;
      attr.wakeup_events = 1;
      // pid -1, cpu 0: a BPF program attached to a tracepoint event runs on
      // every CPU; the event only anchors the attachment.
      Fd pfd(static_cast<int>(syscall(SYS_perf_event_open, &attr, -1, 0, -1, PERF_FLAG_FD_CLOEXEC)));
      if (pfd.get() < 0) {
        failure = ErrnoStatus(errno, absl::StrCat("perf_event_open(tracepoint ", tp.category, ":",
                                                  tp.name, " id ", *id, ")"));
      } else {
        bpf_link* link = bpf_program__attach_perf_event(prog, pfd.get());
        if (link == nullptr) {
          failure = ErrnoStatus(errno, absl::StrCat("attaching BPF program ",
                                                    bpf_program__name(prog), " to ", tp.category,
                                                    ":", tp.name));
        } else {
          pfd.release();  // the link owns it now
          links.emplace_back(link);
          tp.attached = true;
        }
      }
    }
    if (!failure.ok()) {
      if (tp.required) return absl::FailedPreconditionError(failure.message());
      tp.note = std::string(failure.message());
    }
  }
  return absl::OkStatus();
}

absl::Status Tracker::Impl::EmitAggregate(uint64_t now_ns) {
  const size_t stride = (sizeof(fl_bpf_agg) + 7) / 8 * 8;
  std::vector<uint8_t> values(stride * static_cast<size_t>(nr_cpus));
  uint32_t zero = 0;
  if (bpf_map__lookup_elem(skel->maps.aggregates, &zero, sizeof(zero), values.data(), values.size(),
                           0) != 0) {
    return ErrnoStatus(errno, "reading the BPF aggregates map");
  }
  constexpr size_t kCells = FL_MAX_ZONES * FL_MAX_ORDERS * FL_MAX_MIGRATETYPES;
  constexpr size_t kFailCells = FL_MAX_ORDERS * FL_MAX_MIGRATETYPES;
  std::vector<uint64_t> alloc(kCells), free_(kCells), failed(kFailCells);
  uint64_t unknown = 0;
  for (int c = 0; c < nr_cpus; ++c) {
    fl_bpf_agg agg;
    std::memcpy(&agg, values.data() + stride * static_cast<size_t>(c), sizeof(agg));
    const __u64* a = &agg.alloc[0][0][0];
    const __u64* f = &agg.free[0][0][0];
    const __u64* x = &agg.alloc_failed[0][0];
    for (size_t k = 0; k < kCells; ++k) {
      alloc[k] += a[k];
      free_[k] += f[k];
    }
    for (size_t k = 0; k < kFailCells; ++k) failed[k] += x[k];
    unknown += agg.unknown_zone;
  }
  if (prev_alloc.empty()) {
    prev_alloc.assign(kCells, 0);
    prev_free.assign(kCells, 0);
    prev_failed.assign(kFailCells, 0);
  }
  auto rec = std::make_unique<fl_aggregate>();
  InitRecord(*rec, FL_EV_AGGREGATE, now_ns, 0);
  rec->interval_ns = now_ns - last_interval_ns;
  rec->nr_zones = static_cast<uint32_t>(options.zones.size());
  auto delta32 = [](uint64_t now, uint64_t prev) {
    uint64_t d = now - prev;
    return static_cast<uint32_t>(d > UINT32_MAX ? UINT32_MAX : d);
  };
  uint32_t* ra = &rec->alloc[0][0][0];
  uint32_t* rf = &rec->free[0][0][0];
  uint32_t* rx = &rec->alloc_failed[0][0];
  for (size_t k = 0; k < kCells; ++k) {
    ra[k] = delta32(alloc[k], prev_alloc[k]);
    rf[k] = delta32(free_[k], prev_free[k]);
    stats.page_allocs += alloc[k] - prev_alloc[k];
    stats.page_frees += free_[k] - prev_free[k];
  }
  for (size_t k = 0; k < kFailCells; ++k) {
    rx[k] = delta32(failed[k], prev_failed[k]);
    stats.alloc_failures += failed[k] - prev_failed[k];
  }
  rec->unknown_zone = delta32(unknown, prev_unknown_zone);
  stats.unknown_zone = unknown;
  prev_alloc = std::move(alloc);
  prev_free = std::move(free_);
  prev_failed = std::move(failed);
  prev_unknown_zone = unknown;
  last_interval_ns = now_ns;
  return sink->Emit(rec->hdr);
}

absl::Status Tracker::Impl::EmitDrops(uint64_t now_ns) {
  const size_t stride = (sizeof(fl_bpf_cpu_stats) + 7) / 8 * 8;
  std::vector<uint8_t> values(stride * static_cast<size_t>(nr_cpus));
  uint32_t zero = 0;
  if (bpf_map__lookup_elem(skel->maps.cpu_stats, &zero, sizeof(zero), values.data(), values.size(),
                           0) != 0) {
    return ErrnoStatus(errno, "reading the BPF cpu_stats map");
  }
  stats.attempted = 0;
  stats.lost = 0;
  stats.lost_per_cpu.assign(static_cast<size_t>(nr_cpus), 0);
  for (int c = 0; c < nr_cpus; ++c) {
    fl_bpf_cpu_stats cs;
    std::memcpy(&cs, values.data() + stride * static_cast<size_t>(c), sizeof(cs));
    stats.attempted += cs.attempted;
    stats.lost += cs.dropped;
    stats.lost_per_cpu[static_cast<size_t>(c)] = cs.dropped;
    fl_drops rec;
    InitRecord(rec, FL_EV_DROPS, now_ns, static_cast<uint16_t>(c));
    rec.lost = cs.dropped;
    RETURN_IF_ERROR(sink->Emit(rec.hdr));
  }
  return absl::OkStatus();
}

absl::Status Tracker::Impl::EmitSnapshot() {
  absl::StatusOr<snapshot::MachineSnapshot> snap = snapshot::ReadMachineSnapshot(options.snapshot_root);
  if (!snap.ok()) {
    // A /proc file that fails to parse once must not end the trace; it is
    // counted and reported by the caller.
    stats.snapshot_errors++;
    stats.last_snapshot_error = std::string(snap.status().message());
    return absl::OkStatus();
  }
  return snapshot::EmitSnapshotRecords(*snap, *sink);
}

absl::Status Tracker::Impl::EmitPeriodic(uint64_t now_ns, bool with_snapshot) {
  RETURN_IF_ERROR(EmitAggregate(now_ns));
  RETURN_IF_ERROR(EmitDrops(now_ns));
  if (with_snapshot) RETURN_IF_ERROR(EmitSnapshot());
  stats.intervals++;
  return absl::OkStatus();
}

absl::Status Tracker::Impl::Drain() {
  int n = ring_buffer__consume(ring.get());
  if (!sink_error.ok()) {
    absl::Status st = sink_error;
    sink_error = absl::OkStatus();
    return st;
  }
  if (n < 0) return ErrnoStatus(-n, "consuming the BPF ring buffer");
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<Tracker>> Tracker::Start(const TrackerOptions& options,
                                                        EventSink* sink) {
  if (sink == nullptr) return absl::InvalidArgumentError("Tracker::Start: sink is null");
  auto impl = std::make_unique<Impl>();
  impl->options = options;
  impl->sink = sink;
  TrackerOptions& o = impl->options;
  if (o.ring_bytes == 0) o.ring_bytes = o.all_events ? kDefaultRingBytesAllEvents : kDefaultRingBytes;
  const uint64_t page = static_cast<uint64_t>(sysconf(_SC_PAGESIZE));
  if (o.ring_bytes < page || (o.ring_bytes & (o.ring_bytes - 1)) != 0 || o.ring_bytes > (1ull << 31)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "ring size ", o.ring_bytes, " bytes: must be a power of two between ", page, " and 2 GiB"));
  }
  if (o.zones.size() > FL_MAX_ZONES) {
    // The aggregate record has room for FL_MAX_ZONES zones: the others are
    // still traced in full, their allocs/frees counted as unknown_zone.
    impl->notes.push_back(absl::StrCat("the machine has ", o.zones.size(),
                                       " zones; per-interval aggregates cover the first ",
                                       FL_MAX_ZONES, ", the rest count as unknown_zone"));
    o.zones.resize(FL_MAX_ZONES);
  }
  if (o.interval_ns == 0) return absl::InvalidArgumentError("interval must be positive");
  RETURN_IF_ERROR(CheckPrerequisites(o.tracefs));
  if (o.tracefs.empty()) {
    ASSIGN_OR_RETURN(impl->tracefs, FindTracefs());
  } else {
    impl->tracefs = o.tracefs;
  }
  impl->nr_cpus = libbpf_num_possible_cpus();
  if (impl->nr_cpus <= 0) return ErrnoStatus(-impl->nr_cpus, "counting possible CPUs");

  RETURN_IF_ERROR(impl->Load());
  ring_buffer* rb = ring_buffer__new(bpf_map__fd(impl->skel->maps.events), &Impl::HandleSample,
                                     impl.get(), nullptr);
  if (rb == nullptr) return ErrnoStatus(errno, "creating the ring buffer consumer");
  impl->ring.reset(rb);

  uint64_t now = MonotonicNs();
  impl->last_interval_ns = now;
  impl->next_due_ns = now + o.interval_ns;
  // The starting state, before any event of the trace.
  if (o.snapshots) RETURN_IF_ERROR(impl->EmitSnapshot());
  RETURN_IF_ERROR(impl->Attach());
  return std::unique_ptr<Tracker>(new Tracker(std::move(impl)));
}

absl::Status Tracker::Poll(int timeout_ms) {
  Impl& m = *impl_;
  if (m.stopped) return absl::FailedPreconditionError("Tracker::Poll after Stop");
  uint64_t now = MonotonicNs();
  if (now >= m.next_due_ns) {
    timeout_ms = 0;
  } else {
    uint64_t until_due_ms = (m.next_due_ns - now) / 1'000'000;
    if (static_cast<uint64_t>(timeout_ms) > until_due_ms) timeout_ms = static_cast<int>(until_due_ms);
  }
  int n = ring_buffer__poll(m.ring.get(), timeout_ms);
  if (n < 0 && n != -EINTR) return ErrnoStatus(-n, "polling the BPF ring buffer");
  // Records submitted without a wakeup are only visible to an explicit consume.
  RETURN_IF_ERROR(m.Drain());
  now = MonotonicNs();
  if (now >= m.next_due_ns) {
    RETURN_IF_ERROR(m.EmitPeriodic(now, m.options.snapshots));
    m.next_due_ns += m.options.interval_ns;
    if (m.next_due_ns <= now) m.next_due_ns = now + m.options.interval_ns;
  }
  return absl::OkStatus();
}

absl::Status Tracker::Stop() {
  Impl& m = *impl_;
  if (m.stopped) return absl::OkStatus();
  m.stopped = true;
  // Detach first: tracepoint unregistration waits for running programs, so
  // after this nothing writes to the ring or the maps any more.
  m.links.clear();
  absl::Status st = m.Drain();
  absl::Status periodic = m.EmitPeriodic(MonotonicNs(), m.options.snapshots);
  if (st.ok()) st = periodic;
  return st;
}

#endif  // FRAGLAB_HAVE_BPF

Tracker::Tracker(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Tracker::~Tracker() {
  if (impl_) (void)Stop();
}

const TrackerStats& Tracker::stats() const { return impl_->stats; }
const std::vector<TracepointState>& Tracker::tracepoints() const { return impl_->tracepoints; }
const TrackerOptions& Tracker::options() const { return impl_->options; }

std::vector<std::string> Tracker::Notes() const {
  std::vector<std::string> out = impl_->notes;
  for (const auto& tp : impl_->tracepoints) {
    if (!tp.attached) out.push_back(absl::StrCat(tp.category, ":", tp.name, " not attached: ", tp.note));
  }
  return out;
}

absl::StatusOr<std::unique_ptr<Tracker>> StartForMachine(TrackerOptions base, const TraceHeader& machine,
                                                         EventSink* sink) {
  RETURN_IF_ERROR(CheckPrerequisites(base.tracefs));
  base.zones = machine.zones;
  base.pageblock_order = machine.pageblock_order;
  return Tracker::Start(base, sink);
}

absl::StatusOr<std::unique_ptr<Tracker>> StartForThisMachine(TrackerOptions base, EventSink* sink) {
  RETURN_IF_ERROR(CheckPrerequisites(base.tracefs));
  ASSIGN_OR_RETURN(TraceHeader header, snapshot::TraceHeaderForThisMachine());
  return StartForMachine(std::move(base), header, sink);
}

std::string NoTrackerNote(const absl::Status& why) {
  return absl::StrCat(absl::IsFailedPrecondition(why) ? "tracker unavailable: " : "tracker failed to start: ",
                      why.message());
}

absl::Status RunWhilePolling(Tracker* tracker,
                             const std::function<void(std::function<void()> drain)>& body) {
  if (tracker == nullptr) {
    body({});
    return absl::OkStatus();
  }
  std::mutex mu;
  std::atomic<bool> done{false};
  absl::Status poll_status;
  std::thread poller([&] {
    while (!done.load()) {
      {
        std::lock_guard<std::mutex> lock(mu);
        absl::Status st = tracker->Poll(0);
        if (!st.ok() && poll_status.ok()) poll_status = st;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  });
  body([&] {
    std::lock_guard<std::mutex> lock(mu);
    (void)tracker->Poll(0);
  });
  done.store(true);
  poller.join();
  return poll_status;
}

}  // namespace fraglab::tracker
