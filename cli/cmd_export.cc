// fraglab export FILE --format jsonl|csv|chrome [-o OUT] [--kinds LIST]:
// converts a trace for other tools. Output goes to a temporary file that is
// renamed into place only when the export succeeded, so an error never
// leaves a half-written OUT behind (stdout is streamed as it goes).
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "analysis/export.h"
#include "cli/command.h"
#include "common/status.h"
#include "common/trace_file.h"
#include "common/trace_records.h"

namespace fraglab::cli {
namespace {

struct ExportCmdOptions {
  std::string file;
  std::string format;
  std::string output;
  std::string kinds;
};

// A file written under a temporary name and renamed over `path` by Commit();
// removed on destruction if never committed.
class PendingFile {
 public:
  explicit PendingFile(std::string path)
      : path_(std::move(path)), tmp_(absl::StrCat(path_, ".tmp.", ::getpid())) {}
  ~PendingFile() {
    if (!committed_) {
      stream_.close();
      ::unlink(tmp_.c_str());
    }
  }

  absl::StatusOr<std::ostream*> Open() {
    stream_.open(tmp_, std::ios::binary | std::ios::trunc);
    if (!stream_) return ErrnoStatus(errno, absl::StrCat("open ", tmp_));
    return &stream_;
  }

  absl::Status Commit() {
    stream_.close();
    if (stream_.fail()) return absl::DataLossError(absl::StrCat("write ", tmp_, " failed"));
    if (::rename(tmp_.c_str(), path_.c_str()) != 0) {
      return ErrnoStatus(errno, absl::StrCat("rename ", tmp_, " to ", path_));
    }
    committed_ = true;
    return absl::OkStatus();
  }

 private:
  std::string path_;
  std::string tmp_;
  std::ofstream stream_;
  bool committed_ = false;
};

void ReportEnd(const analysis::ExportSummary& sum, const std::string& file) {
  if (sum.truncated) {
    std::fprintf(stderr, "fraglab export: warning: %s: %s; exported the %llu records before it\n",
                 file.c_str(), sum.truncation_note.c_str(),
                 static_cast<unsigned long long>(sum.records_exported));
  } else if (!sum.closed) {
    std::fprintf(stderr,
                 "fraglab export: warning: %s: no end marker (the writer did not finish); "
                 "exported the %llu complete records\n",
                 file.c_str(), static_cast<unsigned long long>(sum.records_exported));
  }
}

int RunExport(const ExportCmdOptions& opt) {
  absl::StatusOr<analysis::ExportFormat> format = analysis::ParseExportFormat(opt.format);
  if (!format.ok()) {
    std::fprintf(stderr, "fraglab export: %s\n", std::string(format.status().message()).c_str());
    return kExitUsage;
  }
  analysis::ExportOptions options;
  if (!opt.kinds.empty()) {
    absl::StatusOr<std::vector<uint16_t>> kinds = analysis::ParseKindList(opt.kinds);
    if (!kinds.ok()) {
      std::fprintf(stderr, "fraglab export: --kinds: %s\n",
                   std::string(kinds.status().message()).c_str());
      return kExitUsage;
    }
    options.kinds = *kinds;
  }
  const bool csv_dir = *format == analysis::ExportFormat::kCsv && options.kinds.size() != 1;
  if (csv_dir && opt.output.empty()) {
    std::fprintf(stderr,
                 "fraglab export: csv writes one table per record kind: give -o DIR, or select "
                 "one kind with --kinds KIND to write it to stdout\n");
    return kExitUsage;
  }

  auto reader = TraceReader::Open(opt.file);
  if (!reader.ok()) return ReportStatus("export", reader.status());

  absl::StatusOr<analysis::ExportSummary> sum;
  if (csv_dir) {
    if (::mkdir(opt.output.c_str(), 0755) != 0 && errno != EEXIST) {
      return ReportStatus("export", ErrnoStatus(errno, absl::StrCat("mkdir ", opt.output)));
    }
    std::map<uint16_t, std::unique_ptr<PendingFile>> files;
    sum = analysis::ExportCsv(
        **reader,
        [&](uint16_t kind) -> absl::StatusOr<std::ostream*> {
          const char* name = RecordKindName(kind);
          auto f = std::make_unique<PendingFile>(
              absl::StrCat(opt.output, "/", name ? name : absl::StrCat("kind", kind), ".csv"));
          ASSIGN_OR_RETURN(std::ostream * s, f->Open());
          files[kind] = std::move(f);
          return s;
        },
        options);
    if (!sum.ok()) return ReportStatus("export", sum.status());
    for (auto& [kind, f] : files) {
      if (absl::Status st = f->Commit(); !st.ok()) return ReportStatus("export", st);
    }
    std::fprintf(stderr, "fraglab export: wrote %zu tables to %s\n", files.size(),
                 opt.output.c_str());
  } else {
    std::unique_ptr<PendingFile> pending;
    std::ostream* out = &std::cout;
    if (!opt.output.empty() && opt.output != "-") {
      pending = std::make_unique<PendingFile>(opt.output);
      absl::StatusOr<std::ostream*> s = pending->Open();
      if (!s.ok()) return ReportStatus("export", s.status());
      out = *s;
    }
    switch (*format) {
      case analysis::ExportFormat::kJsonl:
        sum = analysis::ExportJsonl(**reader, *out, options);
        break;
      case analysis::ExportFormat::kChrome:
        sum = analysis::ExportChrome(**reader, *out, options);
        break;
      case analysis::ExportFormat::kCsv:
        sum = analysis::ExportCsv(
            **reader, [&](uint16_t) -> absl::StatusOr<std::ostream*> { return out; }, options);
        break;
    }
    if (!sum.ok()) return ReportStatus("export", sum.status());
    out->flush();
    if (pending != nullptr) {
      if (absl::Status st = pending->Commit(); !st.ok()) return ReportStatus("export", st);
    } else if (!*out) {
      return ReportStatus("export", absl::DataLossError("write to stdout failed"));
    }
  }
  ReportEnd(*sum, opt.file);
  return kExitOk;
}

}  // namespace

FRAGLAB_COMMAND("export", 95, [](CLI::App& app) -> CommandRunner {
  auto opt = std::make_shared<ExportCmdOptions>();
  CLI::App* cmd = app.add_subcommand(
      "export",
      "Convert a trace to JSON lines, CSV (one table per record kind) or Chrome trace JSON "
      "(open it in the Perfetto UI: counters as tracks, phases as slices, fallbacks and "
      "compactions as instant events).");
  cmd->add_option("FILE", opt->file, "Trace file")->required();
  cmd->add_option("--format", opt->format, "jsonl, csv or chrome")
      ->required()
      ->check(CLI::IsMember({"jsonl", "csv", "chrome"}));
  cmd->add_option("-o,--output", opt->output,
                  "Output file (default stdout); for csv with more than one kind, a directory "
                  "that receives <kind>.csv per record kind");
  cmd->add_option("--kinds", opt->kinds,
                  "Comma-separated record kinds to export (e.g. extfrag,phase); default all");
  return [opt]() { return RunExport(*opt); };
});

}  // namespace fraglab::cli
