#include "analysis/validate.h"

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <set>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "analysis/report.h"
#include "bpf/tracker.h"
#include "common/proc_file.h"
#include "common/scenario_parser.h"
#include "common/snapshot_machine.h"
#include "common/status.h"
#include "common/trace_file.h"
#include "gen/runner.h"
#include "sim/scenario_sim.h"
#include "sim/start_state.h"
#include "toml++/toml.h"

namespace fraglab::analysis {
namespace {

namespace fs = std::filesystem;

const char* const kClasses[] = {"free_blocks", "free_blocks_high", "free_pages", "pageblocks",
                                "fallbacks",   "compaction",       "probe"};

bool IsEventClass(const std::string& cls) { return cls == "fallbacks" || cls == "compaction"; }

// Splits "<phase>/<metric>" at the first '/'.
std::pair<std::string, std::string> SplitName(const std::string& name) {
  const size_t slash = name.find('/');
  if (slash == std::string::npos) return {"", name};
  return {name.substr(0, slash), name.substr(slash + 1)};
}

std::string Num(double v) {
  if (std::fabs(v - std::round(v)) < 1e-9 && std::fabs(v) < 1e15) return absl::StrCat(static_cast<int64_t>(std::round(v)));
  return absl::StrFormat("%.3g", v);
}

// Holds records until a sink is attached, then forwards them.
class LateSink final : public EventSink {
 public:
  [[nodiscard]] absl::Status Emit(const fl_record_header& rec) override {
    return inner_ != nullptr ? inner_->Emit(rec) : early_.Emit(rec);
  }
  [[nodiscard]] absl::Status Attach(EventSink* inner) {
    inner_ = inner;
    for (size_t i = 0; i < early_.size(); ++i) RETURN_IF_ERROR(inner_->Emit(early_.at(i)));
    early_.clear();
    return absl::OkStatus();
  }

 private:
  EventSink* inner_ = nullptr;
  VectorSink early_;
};

}  // namespace

ToleranceSet::ToleranceSet() {
  // Defaults (docs/validate.md explains each): state counts get a small
  // absolute slack plus a relative one, event counts a wide relative one
  // because they depend on timing the simulator does not model.
  by_class_["free_blocks"] = {16, 0.25};
  by_class_["free_blocks_high"] = {2, 0.10};
  by_class_["free_pages"] = {1024, 0.05};
  by_class_["pageblocks"] = {2, 0.05};
  by_class_["fallbacks"] = {5, 0.50};
  by_class_["compaction"] = {2, 0.50};
  by_class_["probe"] = {0.05, 0};
}

absl::Status ToleranceSet::Set(const std::string& cls, Tolerance t) {
  if (!by_class_.count(cls)) {
    return absl::InvalidArgumentError(absl::StrCat("unknown tolerance class '", cls, "' (known: ",
                                                   absl::StrJoin(kClasses, ", "), ")"));
  }
  if (!(t.abs >= 0) || !(t.rel >= 0)) {
    return absl::InvalidArgumentError(absl::StrCat("tolerance of '", cls, "' must not be negative"));
  }
  by_class_[cls] = t;
  return absl::OkStatus();
}

const Tolerance& ToleranceSet::Get(const std::string& cls) const {
  static const Tolerance kNone;
  auto it = by_class_.find(cls);
  return it == by_class_.end() ? kNone : it->second;
}

std::string ClassOfMetric(const std::string& metric, uint32_t pageblock_order) {
  const std::string m = SplitName(metric).second;
  if (absl::StartsWith(m, "free_blocks/")) {
    const size_t pos = m.rfind("/order");
    int order = 0;
    if (pos == std::string::npos || !absl::SimpleAtoi(m.substr(pos + 6), &order)) return "";
    return static_cast<uint32_t>(order) >= pageblock_order ? "free_blocks_high" : "free_blocks";
  }
  if (absl::StartsWith(m, "free_pageblocks_order9plus/")) return "free_blocks_high";
  if (absl::StartsWith(m, "free_pages/")) return "free_pages";
  if (absl::StartsWith(m, "pageblocks/")) return "pageblocks";
  if (absl::StartsWith(m, "fallbacks/")) return "fallbacks";
  if (absl::StartsWith(m, "compaction/")) return "compaction";
  if (absl::StartsWith(m, "probe/") && absl::EndsWith(m, "/obtained_fraction")) return "probe";
  return "";
}

absl::Status ParseToleranceSpec(const std::string& spec, ToleranceSet& set) {
  auto bad = [&](const std::string& why) {
    return absl::InvalidArgumentError(absl::StrCat("--tolerance '", spec, "': ", why,
                                                   " (expected CLASS=ABS[,REL%], e.g. fallbacks=10,50%)"));
  };
  const size_t eq = spec.find('=');
  if (eq == std::string::npos || eq == 0) return bad("no CLASS=");
  const std::string cls = spec.substr(0, eq);
  std::vector<std::string> parts = absl::StrSplit(spec.substr(eq + 1), ',');
  if (parts.empty() || parts.size() > 2) return bad("one or two values");
  Tolerance t = set.Get(cls);  // a value left out keeps its current setting
  if (!absl::SimpleAtod(parts[0], &t.abs)) return bad(absl::StrCat("'", parts[0], "' is not a number"));
  if (parts.size() == 2) {
    absl::string_view rel = parts[1];
    const bool pct = absl::ConsumeSuffix(&rel, "%");
    if (!absl::SimpleAtod(rel, &t.rel)) return bad(absl::StrCat("'", parts[1], "' is not a number"));
    if (pct) t.rel /= 100.0;
  }
  absl::Status st = set.Set(cls, t);
  if (!st.ok()) return bad(std::string(st.message()));
  return absl::OkStatus();
}

absl::Status LoadToleranceFile(const std::string& path, ToleranceSet& set) {
  ASSIGN_OR_RETURN(std::string text, procfs::ReadWholeFile(path));
  toml::table root;
  try {
    root = toml::parse(text, path);
  } catch (const toml::parse_error& e) {
    return absl::InvalidArgumentError(absl::StrCat(path, ":", static_cast<int>(e.source().begin.line), ": ", std::string(e.description())));
  }
  for (const auto& [key, node] : root) {
    const std::string cls(key.str());
    const int line = static_cast<int>(node.source().begin.line);
    const toml::table* tbl = node.as_table();
    if (tbl == nullptr) {
      return absl::InvalidArgumentError(absl::StrCat(path, ":", line, ": '", cls, "' must be a table ([", cls, "])"));
    }
    Tolerance t = set.Get(cls);
    for (const auto& [k, v] : *tbl) {
      const std::string name(k.str());
      const int vline = static_cast<int>(v.source().begin.line);
      std::optional<double> d = v.value<double>();
      if (!d) {
        return absl::InvalidArgumentError(absl::StrCat(path, ":", vline, ": ", cls, ".", name, " must be a number"));
      }
      if (name == "abs") {
        t.abs = *d;
      } else if (name == "rel") {
        t.rel = *d;
      } else {
        return absl::InvalidArgumentError(
            absl::StrCat(path, ":", vline, ": unknown key ", cls, ".", name, " (abs or rel)"));
      }
    }
    if (absl::Status st = set.Set(cls, t); !st.ok()) {
      return absl::InvalidArgumentError(absl::StrCat(path, ":", line, ": ", st.message()));
    }
  }
  return absl::OkStatus();
}

ValidateComparison CompareKernelAndSim(const std::vector<TraceMetrics>& kernel, const TraceMetrics& sim,
                                       const ToleranceSet& tolerances, bool kernel_has_events,
                                       bool sim_has_events) {
  ValidateComparison out;
  const uint32_t pbo = sim.header.pageblock_order ? sim.header.pageblock_order : 9;
  // Phase order: as the kernel ran them, then any the simulator has in addition.
  std::vector<std::string> phase_order;
  std::set<std::string> kernel_phases, sim_phases;
  for (const TraceMetrics& k : kernel) {
    for (const PhaseMetrics& p : k.phases) {
      const std::string key = PhaseKey(p);
      if (kernel_phases.insert(key).second) phase_order.push_back(key);
    }
  }
  for (const PhaseMetrics& p : sim.phases) {
    const std::string key = PhaseKey(p);
    sim_phases.insert(key);
    if (!kernel_phases.count(key) && std::find(phase_order.begin(), phase_order.end(), key) == phase_order.end()) {
      phase_order.push_back(key);
    }
  }
  std::vector<std::map<std::string, double>> kflat;
  for (const TraceMetrics& k : kernel) kflat.push_back(FlattenMetrics(k));
  const std::map<std::string, double> sflat = FlattenMetrics(sim);
  std::set<std::string> names;
  for (const auto& m : kflat) {
    for (const auto& [n, v] : m) names.insert(n);
  }
  for (const auto& [n, v] : sflat) names.insert(n);

  std::map<std::string, std::vector<ValidateRow>> by_phase;
  for (const std::string& name : names) {
    const std::string cls = ClassOfMetric(name, pbo);
    if (cls.empty()) continue;
    const auto [phase, metric] = SplitName(name);
    // Events before the first phase are the kernel run's preparation (drop
    // caches, compaction, settling), which the simulator does not perform:
    // only the start state is compared there.
    if (phase == "start" && IsEventClass(cls)) continue;
    ValidateRow row;
    row.phase = phase;
    row.metric = metric;
    row.cls = cls;
    row.high_order = cls == "free_blocks_high";
    const bool event = IsEventClass(cls);
    double sum = 0;
    for (size_t i = 0; i < kflat.size(); ++i) {
      auto it = kflat[i].find(name);
      double v;
      if (it != kflat[i].end()) {
        v = it->second;
      } else if (event && kernel_has_events && kernel_phases.count(phase)) {
        // This run had the phase but no such event: zero of them.
        bool has_phase = false;
        for (const PhaseMetrics& p : kernel[i].phases) has_phase |= PhaseKey(p) == phase;
        if (!has_phase) continue;
        v = 0;
      } else {
        continue;
      }
      row.kernel_min = row.kernel_runs ? std::min(row.kernel_min, v) : v;
      row.kernel_max = row.kernel_runs ? std::max(row.kernel_max, v) : v;
      sum += v;
      row.kernel_runs++;
    }
    if (row.kernel_runs) row.kernel_mean = sum / static_cast<double>(row.kernel_runs);
    auto sit = sflat.find(name);
    if (sit != sflat.end()) {
      row.sim = sit->second;
    } else if (event && sim_has_events && sim_phases.count(phase)) {
      row.sim = 0;
    }
    const Tolerance& tol = tolerances.Get(cls);
    if (row.kernel_mean && row.sim) {
      row.compared = true;
      row.diff = *row.sim - *row.kernel_mean;
      row.allowed = std::max(tol.abs, tol.rel * std::fabs(*row.kernel_mean));
      row.agree = std::fabs(row.diff) <= row.allowed + 1e-9 ||
                  (*row.sim >= row.kernel_min - row.allowed - 1e-9 && *row.sim <= row.kernel_max + row.allowed + 1e-9);
      // Both zero is agreement whatever the tolerance; listed only in --all.
      out.compared++;
      (row.agree ? out.agreeing : out.disagreeing)++;
    } else {
      out.one_sided++;
    }
    by_phase[phase].push_back(std::move(row));
  }
  for (const std::string& phase : phase_order) {
    auto it = by_phase.find(phase);
    if (it == by_phase.end()) continue;
    for (ValidateRow& r : it->second) out.rows.push_back(std::move(r));
    by_phase.erase(it);
  }
  for (auto& [phase, rows] : by_phase) {
    for (ValidateRow& r : rows) out.rows.push_back(std::move(r));
  }
  return out;
}

std::string NoiseReport::Summary() const {
  return absl::StrFormat(
      "%.1f s idle: free pages %+d, free-block counts moved by %u, order>=pageblock free %+d pageblocks, "
      "%u pageblocks re-typed, managed %+d pages, %u pages allocated and %u freed by others%s%s",
      window_s, free_pages_delta, free_blocks_abs_change, high_order_delta, pageblocks_retyped, managed_pages_delta,
      pgalloc_delta, pgfree_delta, sources.empty() ? "" : "; sources: ", absl::StrJoin(sources, ", "));
}

absl::StatusOr<NoiseReport> MeasureNoise(double window_s) {
  NoiseReport n;
  n.window_s = window_s;
  // Noise sources this VM may have (reference section 8): a bound
  // virtio-balloon device with free page reporting (feature bit 5), and
  // virtio-mem (hot(un)plug through isolation).
  std::error_code ec;
  for (const auto& e : fs::directory_iterator("/sys/bus/virtio/drivers/virtio_balloon", ec)) {
    if (!absl::StartsWith(e.path().filename().string(), "virtio")) continue;
    absl::StatusOr<std::string> features = procfs::ReadWholeFile((e.path() / "features").string());
    if (features.ok() && features->size() > 5 && (*features)[5] == '1') {
      n.sources.push_back("virtio-balloon free page reporting");
    } else {
      n.sources.push_back("virtio-balloon");
    }
  }
  for (const auto& e : fs::directory_iterator("/sys/bus/virtio/drivers/virtio_mem", ec)) {
    if (absl::StartsWith(e.path().filename().string(), "virtio")) {
      n.sources.push_back("virtio-mem");
      break;
    }
  }
  absl::StatusOr<snapshot::MachineSnapshot> a = snapshot::ReadMachineSnapshot("/");
  if (!a.ok()) return absl::FailedPreconditionError(absl::StrCat("noise: ", a.status().message()));
  std::this_thread::sleep_for(std::chrono::duration<double>(window_s));
  absl::StatusOr<snapshot::MachineSnapshot> b = snapshot::ReadMachineSnapshot("/");
  if (!b.ok()) return absl::FailedPreconditionError(absl::StrCat("noise: ", b.status().message()));
  for (size_t z = 0; z < a->zones.size() && z < b->zones.size(); ++z) {
    absl::StatusOr<fl_snapshot_zone> ra = snapshot::ZoneRecord(*a, z);
    absl::StatusOr<fl_snapshot_zone> rb = snapshot::ZoneRecord(*b, z);
    if (!ra.ok() || !rb.ok()) continue;
    n.free_pages_delta += static_cast<int64_t>(rb->nr_free_pages) - static_cast<int64_t>(ra->nr_free_pages);
    n.managed_pages_delta += static_cast<int64_t>(rb->managed) - static_cast<int64_t>(ra->managed);
    const uint32_t pbo = static_cast<uint32_t>(a->pageblock_order);
    for (int o = 0; o < FL_MAX_ORDERS; ++o) {
      const int64_t d = static_cast<int64_t>(rb->nr_free[o]) - static_cast<int64_t>(ra->nr_free[o]);
      n.free_blocks_abs_change += static_cast<uint64_t>(d < 0 ? -d : d);
      if (static_cast<uint32_t>(o) >= pbo) n.high_order_delta += d * (int64_t{1} << (o - pbo));
    }
    uint64_t moved = 0;
    for (int m = 0; m < FL_MAX_MIGRATETYPES; ++m) {
      const int64_t d = static_cast<int64_t>(rb->pageblocks[m]) - static_cast<int64_t>(ra->pageblocks[m]);
      moved += static_cast<uint64_t>(d < 0 ? -d : d);
    }
    n.pageblocks_retyped += moved / 2;
  }
  const fl_counters ca = snapshot::CountersRecord(*a);
  const fl_counters cb = snapshot::CountersRecord(*b);
  for (int id : {FL_CTR_PGALLOC_DMA, FL_CTR_PGALLOC_DMA32, FL_CTR_PGALLOC_NORMAL, FL_CTR_PGALLOC_MOVABLE}) {
    if (cb.value[id] >= ca.value[id]) n.pgalloc_delta += cb.value[id] - ca.value[id];
  }
  if (cb.value[FL_CTR_PGFREE] >= ca.value[FL_CTR_PGFREE]) n.pgfree_delta = cb.value[FL_CTR_PGFREE] - ca.value[FL_CTR_PGFREE];
  return n;
}

absl::StatusOr<KernelSideResult> RunKernelSide(const scenario::Scenario& s, const std::string& scenario_text,
                                               const std::string& trace_path, bool progress) {
  KernelSideResult result;
  result.trace = trace_path;
  gen::RunOptions ro;
  ro.progress = progress;
  RETURN_IF_ERROR(gen::CheckGeneratorCanRun(s));
  ASSIGN_OR_RETURN(gen::BudgetDecision budget, gen::DecideBudget(s, ro));
  (void)budget;
  ASSIGN_OR_RETURN(TraceHeader header, snapshot::TraceHeaderForThisMachine());
  header.scenario_name = s.name;
  header.seed = s.seed;
  header.scenario_text = scenario_text;
  header.extra["recorder"] = "fraglab validate";
  ASSIGN_OR_RETURN(std::unique_ptr<TraceWriter> writer, TraceWriter::Open(trace_path, header));
  gen::RunSink sink(writer.get());

  // The tracker, attached and polled as `fraglab run` does (cli/cmd_run.cc):
  // a poll thread, and a drain before each phase marker so events land in
  // their phase.
  std::unique_ptr<tracker::Tracker> tr;
  absl::StatusOr<std::unique_ptr<tracker::Tracker>> started =
      tracker::StartForMachine(tracker::TrackerOptions{}, header, &sink);
  if (started.ok()) {
    tr = std::move(*started);
    result.tracker = true;
    result.note = absl::StrJoin(tr->Notes(), "; ");
  } else {
    result.note = tracker::NoTrackerNote(started.status());
  }
  gen::RunHooks hooks;
  hooks.sink = &sink;
  absl::StatusOr<gen::RunReport> report = absl::InternalError("the generator did not run");
  absl::Status poll_status = tracker::RunWhilePolling(tr.get(), [&](std::function<void()> drain) {
    hooks.drain = std::move(drain);
    report = gen::RunScenario(s, ro, hooks);
  });
  absl::Status close_status;
  if (tr) {
    close_status.Update(tr->Stop());
    result.lost_events = tr->stats().lost;
  }
  close_status.Update(writer->Close());
  if (!report.ok()) {
    return absl::Status(report.status().code(),
                        absl::StrCat("kernel run (trace, partial, in ", trace_path, "): ", report.status().message()));
  }
  result.run_text = gen::FormatRunReport(*report);
  result.stop_reason = report->stop_reason;
  RETURN_IF_ERROR(poll_status);
  RETURN_IF_ERROR(close_status);
  return result;
}

absl::StatusOr<SimSideResult> RunSimulatorSide(const scenario::Scenario& s, const std::string& scenario_text,
                                               const std::string& trace_path, const std::string& kernel_trace) {
  SimSideResult result;
  result.trace = trace_path;
  sim::ScenarioSimulator::Options so;
  std::optional<sim::RecordedStart> start;
  std::optional<sim::StartStateReport> start_report;
  if (kernel_trace.empty()) {
    result.start = "the scenario's [machine] section, boot state (no kernel run to start from)";
  } else {
    // The kernel run's first snapshot (taken after its preparation, before
    // the first phase) gives the machine, the era of its release and the
    // free lists and pageblock types the simulator starts from.
    //
    // The tracker's own periodic snapshots begin before the generator's
    // preparation (drop caches, compaction), so the start is the last run of
    // zone records before the first phase marker, not the first in the file.
    uint64_t start_at = 0;
    {
      ASSIGN_OR_RETURN(std::unique_ptr<TraceReader> scan, TraceReader::Open(kernel_trace));
      uint64_t i = 0;
      bool prev_zone = false;
      while (true) {
        absl::StatusOr<const fl_record_header*> rec = scan->Next();
        if (!rec.ok()) return rec.status();
        if (*rec == nullptr) break;
        const uint16_t kind = (*rec)->kind;
        if (kind == FL_EV_PHASE) break;
        const bool zone = kind == FL_EV_SNAPSHOT_ZONE;
        if (zone && !prev_zone) start_at = i;
        prev_zone = zone;
        ++i;
      }
    }
    ASSIGN_OR_RETURN(std::unique_ptr<TraceReader> reader, TraceReader::Open(kernel_trace));
    sim::StartSnapshotCollector collector(reader->header());
    uint64_t n = 0;
    while (!collector.done()) {
      absl::StatusOr<const fl_record_header*> rec = reader->Next();
      if (!rec.ok()) return rec.status();
      if (*rec == nullptr) break;
      if (n++ < start_at) continue;
      absl::Status st = collector.Emit(**rec);
      if (!st.ok() && !collector.done()) {
        return absl::Status(st.code(), absl::StrCat("kernel trace ", kernel_trace, ": record ", n, ": ", st.message()));
      }
    }
    absl::StatusOr<sim::RecordedStart> recorded = collector.Finish();
    if (!recorded.ok()) {
      return absl::Status(recorded.status().code(),
                          absl::StrCat("kernel trace ", kernel_trace, ": ", recorded.status().message()));
    }
    start = *std::move(recorded);
    std::vector<std::string> notes;
    absl::StatusOr<sim::MachineConfig> machine = sim::MachineConfigFromStart(*start, &notes);
    if (!machine.ok()) {
      return absl::Status(machine.status().code(),
                          absl::StrCat("kernel trace ", kernel_trace, ": ", machine.status().message()));
    }
    so.machine = *machine;
    so.prepare = [&start, &start_report](sim::PageAllocator& a) -> absl::Status {
      absl::StatusOr<sim::StartStateReport> r = sim::ApplyStartState(*start, a);
      if (!r.ok()) return r.status();
      start_report = *std::move(r);
      return absl::OkStatus();
    };
    result.start_notes = std::move(notes);
  }
  // The header names the allocator's zones, known only once the simulator
  // exists; records are streamed into the writer from then on.
  LateSink sink;
  so.sink = &sink;
  ASSIGN_OR_RETURN(std::unique_ptr<sim::ScenarioSimulator> simulator, sim::ScenarioSimulator::Create(s, so));
  const TraceHeader header = sim::SimTraceHeader(s, simulator->allocator(), scenario_text, simulator->seed());
  result.era = header.kernel_era;
  ASSIGN_OR_RETURN(std::unique_ptr<TraceWriter> writer, TraceWriter::Open(trace_path, header));
  RETURN_IF_ERROR(sink.Attach(writer.get()));
  if (start_report) {
    result.start = absl::StrFormat(
        "the kernel run's start state (%s; free blocks off by %u over all orders, pageblock types %.1f%% equal)",
        start_report->from_map ? "pageblock map" : "per-zone counts", start_report->FreeBlockOrderDiff(),
        100.0 * start_report->PageblockTypeAgreement());
    for (const std::string& note : start_report->notes) result.start_notes.push_back(note);
  }
  const absl::Status run = simulator->Run();
  if (!run.ok()) result.stopped = std::string(run.message());
  RETURN_IF_ERROR(writer->Close());
  return result;
}

absl::StatusOr<ValidateResult> Validate(const ValidateOptions& options) {
  if (options.repeat < 1) return absl::InvalidArgumentError("--repeat must be at least 1");
  ASSIGN_OR_RETURN(std::string text, procfs::ReadWholeFile(options.scenario));
  ASSIGN_OR_RETURN(scenario::Scenario s, scenario::ParseScenarioString(text, options.scenario));
  std::error_code ec;
  fs::create_directories(options.out_dir, ec);
  if (ec) {
    return absl::InvalidArgumentError(absl::StrCat("cannot create output directory ", options.out_dir, ": ",
                                                   ec.message()));
  }
  ValidateResult r;
  // Which kernel side can run here.
  if (options.sim_only) {
    r.kernel_skipped = "--sim-only given";
  } else if (geteuid() != 0) {
    r.kernel_skipped = "not root (the generator changes sysctls and the tracker loads BPF)";
  } else if (absl::Status st = gen::CheckGeneratorCanRun(s); !st.ok()) {
    r.kernel_skipped = absl::StrCat("the scenario cannot run on a kernel: ", st.message());
  } else if (absl::Status pre = tracker::CheckPrerequisites(); !pre.ok()) {
    r.kernel_skipped = absl::StrCat("no BPF tracker: ", pre.message());
  }
  bool kernel_failed = false;
  if (r.kernel_skipped.empty()) {
    for (int i = 1; i <= options.repeat; ++i) {
      absl::StatusOr<NoiseReport> noise = MeasureNoise(options.noise_window_s);
      if (noise.ok()) {
        r.noise.push_back(*noise);
      } else {
        r.notes.push_back(absl::StrCat("run ", i, ": noise not measured: ", noise.status().message()));
      }
      const std::string trace = (fs::path(options.out_dir) / absl::StrCat("kernel-", i, ".fltrace")).string();
      absl::StatusOr<KernelSideResult> k = RunKernelSide(s, text, trace, options.progress);
      if (!k.ok()) {
        r.notes.push_back(absl::StrCat("kernel run ", i, " failed: ", k.status().message()));
        kernel_failed = true;
        break;
      }
      if (!k->stop_reason.empty()) {
        r.notes.push_back(absl::StrCat("kernel run ", i, " stopped early: ", k->stop_reason));
        kernel_failed = true;
      }
      if (!k->tracker) r.notes.push_back(absl::StrCat("kernel run ", i, ": ", k->note));
      if (k->lost_events) {
        r.notes.push_back(absl::StrCat("kernel run ", i, ": the tracker lost ", k->lost_events, " events"));
      }
      r.kernel.push_back(*std::move(k));
      if (kernel_failed) break;
    }
    r.kernel_ran = !r.kernel.empty();
    if (!r.kernel_ran) r.kernel_skipped = "the kernel run failed (see the note below)";
  }
  const std::string sim_trace = (fs::path(options.out_dir) / "sim.fltrace").string();
  ASSIGN_OR_RETURN(r.sim, RunSimulatorSide(s, text, sim_trace, r.kernel_ran ? r.kernel.front().trace : ""));
  if (!r.sim.stopped.empty()) r.notes.push_back(absl::StrCat("the simulator stopped: ", r.sim.stopped));

  ASSIGN_OR_RETURN(TraceMetrics sim_metrics, ComputeTraceMetrics(sim_trace));
  if (r.kernel_ran) {
    std::vector<TraceMetrics> km;
    bool events = true;
    for (const KernelSideResult& k : r.kernel) {
      ASSIGN_OR_RETURN(TraceMetrics m, ComputeTraceMetrics(k.trace));
      km.push_back(std::move(m));
      events &= k.tracker;
    }
    r.comparison = CompareKernelAndSim(km, sim_metrics, options.tolerances, events, true);
  }
  // A kernel run that failed is a failure even when the simulation alone ran.
  r.ok = !kernel_failed && r.sim.stopped.empty() && (!r.kernel_ran || r.comparison.disagreeing == 0);
  if (!options.report_dir.empty()) {
    std::vector<std::string> a, b;
    for (const KernelSideResult& k : r.kernel) a.push_back(k.trace);
    if (a.size() <= 1) {
      a.push_back(sim_trace);
    } else {
      b.push_back(sim_trace);
    }
    absl::Status st = WriteReport(a, b, options.report_dir);
    if (!st.ok()) {
      r.notes.push_back(absl::StrCat("report not written: ", st.message()));
      r.ok = false;
    }
  }
  return r;
}

std::string FormatValidateText(const ValidateResult& r, const ToleranceSet& tolerances, bool all_rows) {
  std::string out;
  if (!r.kernel_ran) {
    absl::StrAppend(&out, "NOTE: simulator only, no kernel comparison: ", r.kernel_skipped, "\n");
  }
  absl::StrAppend(&out, "simulator: era ", r.sim.era, ", started from ", r.sim.start, "\n");
  for (const std::string& n : r.sim.start_notes) absl::StrAppend(&out, "  start state: ", n, "\n");
  for (size_t i = 0; i < r.kernel.size(); ++i) {
    absl::StrAppend(&out, "kernel run ", i + 1, ": ", r.kernel[i].trace,
                    r.kernel[i].tracker ? " (tracker attached)" : " (no tracker)", "\n");
  }
  absl::StrAppend(&out, "simulator trace: ", r.sim.trace, "\n");
  for (size_t i = 0; i < r.noise.size(); ++i) {
    absl::StrAppend(&out, "kernel noise before run ", i + 1, ": ", r.noise[i].Summary(), "\n");
  }
  if (r.kernel_ran) {
    std::string phase;
    for (const ValidateRow& row : r.comparison.rows) {
      const bool interesting = !row.compared ? all_rows
                               : all_rows || !row.agree ||
                                     (row.kernel_mean && *row.kernel_mean != 0) || (row.sim && *row.sim != 0);
      if (!interesting) continue;
      if (row.phase != phase) {
        phase = row.phase;
        absl::StrAppend(&out, "\nphase ", phase, "\n",
                        absl::StrFormat("  %-52s %18s %10s %10s %8s  %s\n", "metric", "kernel", "sim", "diff",
                                        "tol", "verdict"));
      }
      std::string kv = "-";
      if (row.kernel_mean) {
        kv = Num(*row.kernel_mean);
        if (row.kernel_runs > 1) absl::StrAppend(&kv, " (", Num(row.kernel_min), "..", Num(row.kernel_max), ")");
      }
      const std::string verdict = !row.compared ? "one side only" : row.agree ? "ok" : "DISAGREE";
      absl::StrAppend(&out, absl::StrFormat("  %-52s %18s %10s %10s %8s  %s\n",
                                            row.metric + (row.high_order ? " *" : ""), kv,
                                            row.sim ? Num(*row.sim) : "-", row.compared ? Num(row.diff) : "-",
                                            row.compared ? Num(row.allowed) : "-", verdict));
    }
    absl::StrAppend(&out, "\n(* order >= pageblock order: what THP and hugetlb need)\n");
    absl::StrAppend(&out, "tolerances:");
    for (const auto& [cls, t] : tolerances.all()) {
      absl::StrAppend(&out, " ", cls, "=", Num(t.abs), ",", Num(t.rel * 100), "%");
    }
    absl::StrAppend(&out, "\n");
  }
  for (const std::string& n : r.notes) absl::StrAppend(&out, "note: ", n, "\n");
  if (r.kernel_ran) {
    absl::StrAppend(&out, "verdict: ", r.comparison.agreeing, " of ", r.comparison.compared, " metrics agree, ",
                    r.comparison.disagreeing, " disagree, ", r.comparison.one_sided, " on one side only: ",
                    r.ok ? "AGREE" : "DISAGREE", "\n");
  } else {
    absl::StrAppend(&out, "verdict: none (simulator only): ", r.ok ? "the simulation ran" : "the simulation failed",
                    "\n");
  }
  return out;
}

nlohmann::json ValidateToJson(const ValidateResult& r, const ToleranceSet& tolerances) {
  nlohmann::json j;
  j["ok"] = r.ok;
  j["kernel_ran"] = r.kernel_ran;
  j["kernel_skipped"] = r.kernel_skipped;
  nlohmann::json kernel = nlohmann::json::array();
  for (const KernelSideResult& k : r.kernel) {
    kernel.push_back({{"trace", k.trace}, {"tracker", k.tracker}, {"note", k.note}, {"lost_events", k.lost_events}});
  }
  j["kernel"] = kernel;
  nlohmann::json noise = nlohmann::json::array();
  for (const NoiseReport& n : r.noise) {
    noise.push_back({{"window_s", n.window_s},
                     {"sources", n.sources},
                     {"free_pages_delta", n.free_pages_delta},
                     {"free_blocks_abs_change", n.free_blocks_abs_change},
                     {"high_order_delta", n.high_order_delta},
                     {"pageblocks_retyped", n.pageblocks_retyped},
                     {"managed_pages_delta", n.managed_pages_delta},
                     {"pgalloc_delta", n.pgalloc_delta},
                     {"pgfree_delta", n.pgfree_delta}});
  }
  j["noise"] = noise;
  j["sim"] = {{"trace", r.sim.trace}, {"era", r.sim.era}, {"start", r.sim.start}, {"start_notes", r.sim.start_notes}, {"stopped", r.sim.stopped}};
  nlohmann::json tol;
  for (const auto& [cls, t] : tolerances.all()) tol[cls] = {{"abs", t.abs}, {"rel", t.rel}};
  j["tolerances"] = tol;
  nlohmann::json rows = nlohmann::json::array();
  for (const ValidateRow& row : r.comparison.rows) {
    nlohmann::json jr = {{"phase", row.phase},   {"metric", row.metric},     {"class", row.cls},
                         {"compared", row.compared}, {"agree", row.agree}, {"kernel_runs", row.kernel_runs}};
    if (row.kernel_mean) {
      jr["kernel_mean"] = *row.kernel_mean;
      jr["kernel_min"] = row.kernel_min;
      jr["kernel_max"] = row.kernel_max;
    }
    if (row.sim) jr["sim"] = *row.sim;
    if (row.compared) {
      jr["diff"] = row.diff;
      jr["allowed"] = row.allowed;
    }
    rows.push_back(jr);
  }
  j["rows"] = rows;
  j["compared"] = r.comparison.compared;
  j["agreeing"] = r.comparison.agreeing;
  j["disagreeing"] = r.comparison.disagreeing;
  j["notes"] = r.notes;
  return j;
}

}  // namespace fraglab::analysis
