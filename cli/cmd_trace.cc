// fraglab trace: the eBPF tracker alone, system-wide, for a duration, until
// SIGINT/SIGTERM, or while a command runs; writes a trace file and prints a
// closing summary. The work lives in bpf/tracker.h and bpf/trace_summary.h.
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "bpf/trace_summary.h"
#include "bpf/tracker.h"
#include "cli/command.h"
#include "common/event_sink.h"
#include "common/snapshot_machine.h"
#include "common/status.h"
#include "common/trace_file.h"
#include "common/units.h"

namespace fraglab::cli {
namespace {

struct TraceOptions {
  std::string output = "fraglab.trace";
  std::string duration;
  std::string interval = "1s";
  std::string ring_size;
  bool all_events = false;
  bool no_snapshots = false;
  std::vector<std::string> command;
};

volatile sig_atomic_t g_stop_signal = 0;

void OnStopSignal(int sig) { g_stop_signal = sig; }

uint64_t NowNs() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1'000'000'000ull + static_cast<uint64_t>(ts.tv_nsec);
}

// Starts `argv` in a child; an exec failure is reported through a
// close-on-exec pipe so the caller gets the errno instead of a silent 127.
absl::StatusOr<pid_t> SpawnCommand(const std::vector<std::string>& argv) {
  int pipefd[2];
  if (pipe2(pipefd, O_CLOEXEC) != 0) return ErrnoStatus(errno, "pipe2");
  pid_t pid = fork();
  if (pid < 0) {
    int err = errno;
    close(pipefd[0]);
    close(pipefd[1]);
    return ErrnoStatus(err, "fork");
  }
  if (pid == 0) {
    close(pipefd[0]);
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    execvp(args[0], args.data());
    int err = errno;
    (void)!write(pipefd[1], &err, sizeof(err));
    _exit(127);
  }
  close(pipefd[1]);
  int child_errno = 0;
  ssize_t n;
  do {
    n = read(pipefd[0], &child_errno, sizeof(child_errno));
  } while (n < 0 && errno == EINTR);
  close(pipefd[0]);
  if (n == sizeof(child_errno)) {
    waitpid(pid, nullptr, 0);
    return ErrnoStatus(child_errno, absl::StrCat("cannot run '", argv[0], "'"));
  }
  return pid;
}

void PrintStatusLine(const tracker::TrackerStats& s, double elapsed_s, double rate) {
  std::fprintf(stderr,
               "\r\033[K[fraglab trace] %.0f s  %.0f events/s  drops %llu  fallbacks: claim %llu "
               "steal %llu pollute %llu",
               elapsed_s, rate, static_cast<unsigned long long>(s.lost),
               static_cast<unsigned long long>(s.extfrag_by_class[FL_EXTFRAG_CLAIM]),
               static_cast<unsigned long long>(s.extfrag_by_class[FL_EXTFRAG_STEAL]),
               static_cast<unsigned long long>(s.extfrag_by_class[FL_EXTFRAG_POLLUTE]));
  std::fflush(stderr);
}

int RunTrace(const TraceOptions& opt) {
  const char* kCmd = "trace";
  tracker::TrackerOptions topt;
  topt.all_events = opt.all_events;
  topt.snapshots = !opt.no_snapshots;
  uint64_t duration_ns = 0;
  if (!opt.duration.empty()) {
    absl::StatusOr<absl::Duration> d = ParseDuration(opt.duration);
    if (!d.ok() || *d <= absl::ZeroDuration()) {
      std::fprintf(stderr, "fraglab trace: --duration '%s': %s\n", opt.duration.c_str(),
                   d.ok() ? "must be positive" : std::string(d.status().message()).c_str());
      return kExitUsage;
    }
    duration_ns = static_cast<uint64_t>(absl::ToInt64Nanoseconds(*d));
  }
  {
    absl::StatusOr<absl::Duration> d = ParseDuration(opt.interval);
    if (!d.ok() || *d < absl::Milliseconds(10)) {
      std::fprintf(stderr, "fraglab trace: --interval '%s': %s\n", opt.interval.c_str(),
                   d.ok() ? "must be at least 10ms" : std::string(d.status().message()).c_str());
      return kExitUsage;
    }
    topt.interval_ns = static_cast<uint64_t>(absl::ToInt64Nanoseconds(*d));
  }
  if (!opt.ring_size.empty()) {
    absl::StatusOr<Size> sz = ParseSize(opt.ring_size);
    absl::StatusOr<uint64_t> bytes =
        sz.ok() ? ResolveSizeBytes(*sz, 0) : absl::StatusOr<uint64_t>(sz.status());
    if (!bytes.ok() || sz->unit == SizeUnit::kPercent) {
      std::fprintf(stderr, "fraglab trace: --ring-size '%s': %s\n", opt.ring_size.c_str(),
                   bytes.ok() ? "must be a size such as 16MiB" : std::string(bytes.status().message()).c_str());
      return kExitUsage;
    }
    topt.ring_bytes = *bytes;
  }

  // Fail early, before creating the output file, when tracing cannot work.
  if (absl::Status st = tracker::CheckPrerequisites(); !st.ok()) return ReportStatus(kCmd, st);

  absl::StatusOr<TraceHeader> header = snapshot::TraceHeaderForThisMachine();
  if (!header.ok()) return ReportStatus(kCmd, header.status());
  header->extra["recorder"] = "fraglab trace";
  header->extra["recording_level"] = opt.all_events ? "all-events" : "default";
  header->extra["interval_ns"] = std::to_string(topt.interval_ns);
  if (!opt.command.empty()) {
    std::string joined;
    for (const auto& a : opt.command) joined += (joined.empty() ? "" : " ") + a;
    header->extra["command"] = joined;
  }

  TraceWriterOptions wopt;
  // Every page alloc/free is tens of MB/s of records: the fastest zstd
  // level keeps the consumer from competing with the traced workload.
  if (opt.all_events) wopt.zstd_level = 1;
  absl::StatusOr<std::unique_ptr<TraceWriter>> writer = TraceWriter::Open(opt.output, *header, wopt);
  if (!writer.ok()) return ReportStatus(kCmd, writer.status());
  tracker::TraceSummaryBuilder summary;
  TeeSink sink({writer->get(), &summary});

  struct sigaction sa{};
  sa.sa_handler = OnStopSignal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = 0;  // no SA_RESTART: the ring buffer poll returns on a signal
  struct sigaction old_int{}, old_term{};
  sigaction(SIGINT, &sa, &old_int);
  sigaction(SIGTERM, &sa, &old_term);

  absl::StatusOr<std::unique_ptr<tracker::Tracker>> tr = tracker::StartForMachine(topt, *header, &sink);
  if (!tr.ok()) {
    (void)(*writer)->Close();
    unlink(opt.output.c_str());
    return ReportStatus(kCmd, tr.status());
  }
  for (const std::string& note : (*tr)->Notes()) std::fprintf(stderr, "fraglab trace: note: %s\n", note.c_str());

  pid_t child = -1;
  int child_status = 0;
  absl::Status failure;
  if (!opt.command.empty()) {
    absl::StatusOr<pid_t> pid = SpawnCommand(opt.command);
    if (!pid.ok()) {
      failure = pid.status();
    } else {
      child = *pid;
    }
  }

  const bool live = isatty(STDERR_FILENO);
  const uint64_t start = NowNs();
  uint64_t last_status = start;
  uint64_t last_records = 0;
  while (failure.ok() && g_stop_signal == 0) {
    if (absl::Status st = (*tr)->Poll(100); !st.ok()) {
      failure = st;
      break;
    }
    uint64_t now = NowNs();
    if (child > 0) {
      pid_t r = waitpid(child, &child_status, WNOHANG);
      if (r == child) {
        child = -1;
        break;
      }
    }
    if (duration_ns > 0 && now - start >= duration_ns) break;
    if (live && now - last_status >= 1'000'000'000ull) {
      const auto& s = (*tr)->stats();
      double rate = static_cast<double>(s.attempted - last_records) /
                    (static_cast<double>(now - last_status) / 1e9);
      PrintStatusLine(s, static_cast<double>(now - start) / 1e9, rate);
      last_status = now;
      last_records = s.attempted;
    }
  }
  if (live) std::fprintf(stderr, "\r\033[K");
  if (g_stop_signal != 0) {
    std::fprintf(stderr, "fraglab trace: %s received, stopping\n", strsignal(g_stop_signal));
  }
  if (child > 0) {
    // Interrupted or the duration ended first: the command does not outlive
    // its trace.
    kill(child, SIGTERM);
    while (waitpid(child, &child_status, 0) < 0 && errno == EINTR) {
    }
  }
  absl::Status stop = (*tr)->Stop();
  if (failure.ok()) failure = stop;
  absl::Status close = (*writer)->Close();
  if (failure.ok()) failure = close;
  sigaction(SIGINT, &old_int, nullptr);
  sigaction(SIGTERM, &old_term, nullptr);

  const tracker::TrackerStats& s = (*tr)->stats();
  if (s.snapshot_errors > 0) {
    std::fprintf(stderr, "fraglab trace: %llu periodic snapshots could not be read (last: %s)\n",
                 static_cast<unsigned long long>(s.snapshot_errors), s.last_snapshot_error.c_str());
  }
  std::string text = tracker::FormatTraceSummary(summary.summary(), *header);
  std::fwrite(text.data(), 1, text.size(), stdout);
  std::fprintf(stderr, "fraglab trace: wrote %llu records to %s\n",
               static_cast<unsigned long long>((*writer)->records_written()), opt.output.c_str());
  if (!failure.ok()) return ReportStatus(kCmd, failure);
  if (!opt.command.empty()) {
    if (WIFEXITED(child_status) && WEXITSTATUS(child_status) != 0) {
      std::fprintf(stderr, "fraglab trace: command exited with status %d\n", WEXITSTATUS(child_status));
      return kExitFailure;
    }
    if (WIFSIGNALED(child_status) && g_stop_signal == 0) {
      std::fprintf(stderr, "fraglab trace: command killed by %s\n", strsignal(WTERMSIG(child_status)));
      return kExitFailure;
    }
  }
  return kExitOk;
}

}  // namespace

FRAGLAB_COMMAND("trace", 30, [](CLI::App& app) -> CommandRunner {
  auto opt = std::make_shared<TraceOptions>();
  CLI::App* cmd = app.add_subcommand(
      "trace",
      "Trace the page allocator system-wide with eBPF (fallbacks, compaction, migration, "
      "reclaim, OOM, THP, per-interval alloc/free aggregates and /proc snapshots) for a "
      "duration, until Ctrl-C, or while COMMAND runs; write a trace file and print a summary. "
      "Needs root.");
  cmd->add_option("-o,--output", opt->output, "Trace file to write (replaced)")->capture_default_str();
  cmd->add_option("--duration", opt->duration, "Stop after this long (e.g. 30s, 5m)");
  cmd->add_option("--interval", opt->interval,
                  "Period of aggregate, drop and snapshot records")
      ->capture_default_str();
  cmd->add_flag("--all-events", opt->all_events,
                "Also record every page alloc/free, pcp refill and drain (needed by 'fraglab replay')");
  cmd->add_option("--ring-size", opt->ring_size,
                  "BPF ring buffer size, a power of two (default 8MiB, 64MiB with --all-events)");
  cmd->add_flag("--no-snapshots", opt->no_snapshots, "Do not record periodic /proc snapshots");
  cmd->add_option("command", opt->command, "Command to trace (after --); tracing ends when it exits");
  return [opt]() { return RunTrace(*opt); };
});

}  // namespace fraglab::cli
