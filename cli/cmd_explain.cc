// fraglab explain: runs a scenario on the simulated page allocator and
// narrates it for teaching. Every single allocation or free of a phase is a
// line; under it, indented, each decision the allocator model takes (list
// searches, splits, fallback candidates, the claim threshold, conversions,
// boosts, merges, head/tail placement) in plain words, as sim/narrator.h
// delivers them. After each phase: a map of the pageblocks (one character
// per pageblock, coloured by migratetype on a terminal; analysis/
// pageblock_picture.h) and the free lists per order and type.
//
// Kernel-model phases (anon, pin, pagecache, ...) make thousands of
// allocator calls; the model reports them in batches ("anon 'fill' 1 GiB
// base ...: faults try order 0 ...", then the outcome), and under each
// batch only the first kDecisionsPerStep decisions are printed, followed by
// how many were left out.
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <variant>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "analysis/pageblock_picture.h"
#include "cli/command.h"
#include "common/scenario_parser.h"
#include "sim/scenario_sim.h"

namespace fraglab::cli {
namespace {

struct ExplainOptions {
  std::string scenario;
  int64_t from = 0;
  int64_t to = -1;  // -1: to the end
  bool no_color = false;
  int width = 64;
};

// The allocator's pageblocks as a picture: type from the pageblock bits,
// free pages from the buddy free blocks (pages on per-CPU lists count as in
// use, as the kernel's free counters do). O(pages of the zones).
picture::PageblockMap MapOf(const sim::PageAllocator& a, const std::string& title) {
  picture::PageblockMap map;
  map.title = title;
  const sim::MigratetypeNumbering& num = a.numbering();
  for (int n = 0; n < num.count(); ++n) map.migratetype_names.push_back(num.Name(n));
  std::vector<int> order;
  for (int z = 0; z < a.num_zones(); ++z) order.push_back(z);
  std::sort(order.begin(), order.end(),
            [&](int x, int y) { return a.zone_stats(x).start_pfn < a.zone_stats(y).start_pfn; });
  for (int z : order) {
    const sim::ZoneStats st = a.zone_stats(z);
    if (st.spanned == 0) continue;
    picture::ZoneBlocks zb;
    zb.nid = st.node;
    zb.zone_idx = static_cast<int>(st.type);
    zb.name = sim::ZoneTypeName(st.type);
    const uint64_t first = st.start_pfn & ~(sim::kPageblockPages - 1);
    const uint64_t end = st.start_pfn + st.spanned;
    zb.first_pfn = first;
    const uint64_t nblocks = (end - first + sim::kPageblockPages - 1) / sim::kPageblockPages;
    zb.blocks.resize(nblocks);
    for (uint64_t b = 0; b < nblocks; ++b) {
      const uint64_t pfn = first + b * sim::kPageblockPages;
      zb.blocks[b].migratetype = static_cast<uint8_t>(num.Number(a.PageblockType(std::max(pfn, st.start_pfn))));
      if (pfn < st.start_pfn || pfn + sim::kPageblockPages > end) zb.blocks[b].flags |= FL_PB_PARTIAL;
    }
    for (uint64_t pfn = st.start_pfn; pfn < end;) {
      const sim::PageInfo info = a.Page(pfn);
      const uint64_t len = info.kind == sim::PageInfo::Kind::kNone ? 1 : (uint64_t{1} << info.order);
      if (info.kind == sim::PageInfo::Kind::kFree) {
        for (uint64_t p = pfn; p < pfn + len && p < end; p += sim::kPageblockPages) {
          const uint64_t b = (p - first) / sim::kPageblockPages;
          const uint64_t in_block = std::min<uint64_t>(len - (p - pfn), sim::kPageblockPages);
          zb.blocks[b].free_pages = static_cast<uint16_t>(zb.blocks[b].free_pages + in_block);
        }
      }
      pfn += len;
    }
    map.zones.push_back(std::move(zb));
  }
  return map;
}

// "Movable  o10:3 (0 1024 2048)  o0:1 (5)" per type with free blocks.
std::string FreeLists(const sim::PageAllocator& a, const std::string& indent) {
  std::string out;
  const sim::MigratetypeNumbering& num = a.numbering();
  for (int z = 0; z < a.num_zones(); ++z) {
    const sim::ZoneStats st = a.zone_stats(z);
    if (st.spanned == 0) continue;
    absl::StrAppend(&out, indent, "free lists of node ", st.node, " ", sim::ZoneTypeName(st.type), " (",
                    st.free_pages, " free pages", st.boost ? absl::StrCat(", boost ", st.boost) : "",
                    st.pcp_pages ? absl::StrCat(", ", st.pcp_pages, " on per-CPU lists") : "", "):\n");
    bool any = false;
    for (int n = 0; n < num.count(); ++n) {
      const sim::MigrateType t = num.FromNumber(n);
      std::vector<std::string> cells;
      for (int o = sim::kMaxOrder; o >= 0; --o) {
        const uint64_t count = a.FreeCount(z, o, t);
        if (count == 0) continue;
        std::vector<std::string> pfns;
        for (uint64_t pfn : a.FreeList(z, o, t)) {
          if (pfns.size() == 4) {
            pfns.push_back("...");
            break;
          }
          pfns.push_back(absl::StrCat(pfn));
        }
        cells.push_back(absl::StrCat("o", o, ":", count, " (", absl::StrJoin(pfns, " "), ")"));
      }
      if (cells.empty()) continue;
      any = true;
      absl::StrAppend(&out, indent, "  ", num.Name(n), std::string(12 - std::min<size_t>(11, strlen(num.Name(n))), ' '),
                      absl::StrJoin(cells, "  "), "\n");
    }
    if (!any) absl::StrAppend(&out, indent, "  (empty)\n");
  }
  return out;
}

// Decisions printed under one batched kernel-model step.
constexpr uint64_t kDecisionsPerStep = 20;

class Explainer final : public sim::Narrator, public sim::RunObserver {
 public:
  Explainer(const ExplainOptions& opt, const std::string& file) : opt_(opt), file_(file) {}

  void Narrate(const sim::Decision& d) override {
    if (!active_) return;
    if (batched_ && ++decisions_ > kDecisionsPerStep) return;
    std::printf("      %s\n", d.text.c_str());
  }
  void OnPhaseBegin(const scenario::ExpandedPhase& phase) override {
    const int64_t i = static_cast<int64_t>(phase.index);
    active_ = i >= opt_.from && (opt_.to < 0 || i <= opt_.to);
    // Raw alloc/free phases narrate every decision of every call.
    batched_ = !scenario::IsSimulatorOnly(phase.phase->op);
    decisions_ = 0;
    if (active_) std::printf("== phase %s (%s:%d) ==\n", phase.label.c_str(), file_.c_str(), phase.phase->pos.line);
  }
  void OnCall(const std::string& what) override {
    decisions_ = 0;
    if (active_) std::printf("  %s\n", what.c_str());
  }
  void OnCallDone(const std::string& result) override {
    if (!active_) return;
    if (batched_ && decisions_ > kDecisionsPerStep) {
      std::printf("      ... %llu more allocator decisions not shown\n",
                  static_cast<unsigned long long>(decisions_ - kDecisionsPerStep));
    }
    decisions_ = 0;
    std::printf("    -> %s\n", result.c_str());
  }
  void OnPhaseEnd(const scenario::ExpandedPhase& phase, const sim::PageAllocator& a,
                  const absl::Status& outcome) override {
    if (!active_) return;
    const bool is_expect = std::holds_alternative<scenario::ExpectOp>(phase.phase->op);
    if (is_expect) {
      const auto& e = std::get<scenario::ExpectOp>(phase.phase->op);
      std::printf("  expect %s: %s\n\n", scenario::ExpectCheckName(e),
                  outcome.ok() ? "ok" : std::string(outcome.message()).c_str());
      return;  // the state did not change: no new map
    }
    if (!outcome.ok()) std::printf("  error: %s\n", std::string(outcome.message()).c_str());
    picture::TerminalOptions to;
    to.width = opt_.width;
    to.color = !opt_.no_color && isatty(STDOUT_FILENO);
    const std::string map = picture::RenderTerminal(MapOf(a, absl::StrCat("after phase ", phase.label)), to);
    std::printf("\n");
    for (absl::string_view line : absl::StrSplit(map, '\n')) {
      if (!line.empty()) std::printf("  %s\n", std::string(line).c_str());
    }
    std::printf("%s\n", FreeLists(a, "  ").c_str());
  }

 private:
  const ExplainOptions& opt_;
  std::string file_;
  bool active_ = true;
  bool batched_ = false;
  uint64_t decisions_ = 0;
};

int RunExplain(const ExplainOptions& opt) {
  const char* kCmd = "explain";
  absl::StatusOr<scenario::Scenario> s = scenario::ParseScenarioFile(opt.scenario);
  if (!s.ok()) return ReportStatus(kCmd, s.status());
  const uint64_t n = scenario::ExpandedCount(s->phases);
  if (opt.to >= 0 && opt.to < opt.from) {
    std::fprintf(stderr, "fraglab explain: --to %lld is before --from %lld\n", static_cast<long long>(opt.to),
                 static_cast<long long>(opt.from));
    return kExitUsage;
  }
  if (static_cast<uint64_t>(opt.from) >= n) {
    std::fprintf(stderr, "fraglab explain: --from %lld: the scenario has %llu phases (0..%llu)\n",
                 static_cast<long long>(opt.from), static_cast<unsigned long long>(n),
                 static_cast<unsigned long long>(n - 1));
    return kExitUsage;
  }
  Explainer ex(opt, opt.scenario);
  sim::ScenarioSimulator::Options so;
  so.narrator = &ex;
  so.observer = &ex;
  absl::StatusOr<std::unique_ptr<sim::ScenarioSimulator>> simulator = sim::ScenarioSimulator::Create(*s, so);
  if (!simulator.ok()) return ReportStatus(kCmd, simulator.status());
  const sim::PageAllocator& a = (*simulator)->allocator();
  std::printf("%s: %s\n", s->name.c_str(), s->description.c_str());
  if (opt.from == 0) {
    std::printf("machine: %s era, %d CPU(s), per-CPU lists %s\n",
                a.config().era == sim::Era::kLegacy    ? "LEGACY"
                : a.config().era == sim::Era::kHygiene ? "HYGIENE"
                                                       : "CLAIM",
                a.config().cpus, a.config().pcp ? "on" : "off");
    for (int z = 0; z < a.num_zones(); ++z) {
      const sim::ZoneStats st = a.zone_stats(z);
      std::printf("  node %d %-7s pfns %llu..%llu, watermarks min %llu low %llu high %llu\n", st.node,
                  sim::ZoneTypeName(st.type), static_cast<unsigned long long>(st.start_pfn),
                  static_cast<unsigned long long>(st.start_pfn + st.spanned - 1),
                  static_cast<unsigned long long>(st.wmark_min), static_cast<unsigned long long>(st.wmark_low),
                  static_cast<unsigned long long>(st.wmark_high));
    }
    std::printf("\nboot state:\n%s\n", FreeLists(a, "  ").c_str());
  }
  const absl::Status run = (*simulator)->Run();
  if (!run.ok()) return ReportStatus(kCmd, run);
  std::printf("%llu expectation(s) passed\n",
              static_cast<unsigned long long>((*simulator)->expectations_passed()));
  return kExitOk;
}

}  // namespace

FRAGLAB_COMMAND("explain", 42, [](CLI::App& app) -> CommandRunner {
  auto opt = std::make_shared<ExplainOptions>();
  CLI::App* cmd = app.add_subcommand(
      "explain",
      "Narrate a simulated scenario for teaching: every allocator decision under the operation it belongs "
      "to, then a pageblock map and the free lists after each phase");
  cmd->add_option("scenario", opt->scenario, "Scenario file (TOML)")->required();
  cmd->add_option("--from", opt->from, "First phase to narrate (0-based run index; earlier phases run silently)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--to", opt->to, "Last phase to narrate (inclusive; later phases still run and are checked)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_flag("--no-color", opt->no_color, "No ANSI colours in the map even on a terminal");
  cmd->add_option("--width", opt->width, "Pageblocks per map line (8..1000)")->check(CLI::Range(8, 1000));
  return [opt]() { return RunExplain(*opt); };
});

}  // namespace fraglab::cli
