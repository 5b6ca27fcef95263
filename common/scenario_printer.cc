// Canonical TOML writer for scenarios. Written by hand rather than through
// toml++'s formatter so the key order, units and omitted defaults are ours
// and stable across toml++ versions.
#include "common/scenario_printer.h"

#include <charconv>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"

namespace fraglab::scenario {

std::string TomlQuote(const std::string& text) {
  std::string out = "\"";
  for (unsigned char c : text) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\b': out += "\\b"; break;
      case '\t': out += "\\t"; break;
      case '\n': out += "\\n"; break;
      case '\f': out += "\\f"; break;
      case '\r': out += "\\r"; break;
      default:
        if (c < 0x20 || c == 0x7f) {
          out += absl::StrFormat("\\u%04X", c);
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  out += "\"";
  return out;
}

namespace {

// Shortest text that reads back as the same double, always a TOML float.
std::string TomlFloat(double v) {
  char buf[64];
  auto res = std::to_chars(buf, buf + sizeof(buf), v);
  std::string s(buf, res.ptr);
  if (s.find_first_of(".eEn") == std::string::npos) s += ".0";  // "1" -> "1.0"
  return s;
}

class Writer {
 public:
  void Header(const std::string& h) {
    Blank();
    absl::StrAppend(&out_, h, "\n");
  }
  void Raw(absl::string_view key, const std::string& value) {
    absl::StrAppend(&out_, key, " = ", value, "\n");
  }
  void Str(absl::string_view key, const std::string& value) { Raw(key, TomlQuote(value)); }
  void Int(absl::string_view key, int64_t v) { Raw(key, absl::StrCat(v)); }
  void UInt(absl::string_view key, uint64_t v) { Raw(key, absl::StrCat(v)); }
  void Bool(absl::string_view key, bool v) { Raw(key, v ? "true" : "false"); }
  void SizeVal(absl::string_view key, const Size& s) { Str(key, FormatSize(s)); }
  void Float(absl::string_view key, double v) { Raw(key, TomlFloat(v)); }
  void Blank() {
    if (!out_.empty() && !(out_.size() >= 2 && out_.compare(out_.size() - 2, 2, "\n\n") == 0)) {
      out_ += "\n";
    }
  }
  std::string Take() { return std::move(out_); }

 private:
  std::string out_;
};

void PrintMachine(const SimMachineSpec& m, Writer& w) {
  const SimMachineSpec d;
  bool header = false;
  auto section = [&] {
    if (!header) w.Header("[machine]");
    header = true;
  };
  if (m.zones.empty() && m.memory_bytes != d.memory_bytes) {
    section();
    w.Str("memory", FormatBytes(m.memory_bytes));
  }
  if (m.nodes != d.nodes) { section(); w.Int("nodes", m.nodes); }
  if (m.cpus != d.cpus) { section(); w.Int("cpus", m.cpus); }
  if (m.era != d.era) { section(); w.Str("era", EraName(m.era)); }
  if (m.kernel_release != d.kernel_release) { section(); w.Str("kernel_release", m.kernel_release); }
  if (m.pcp != d.pcp) { section(); w.Bool("pcp", m.pcp); }
  if (m.pcp_tuning != d.pcp_tuning) { section(); w.Str("pcp_tuning", PcpTuningName(m.pcp_tuning)); }
  if (m.cma != d.cma) { section(); w.Bool("cma", m.cma); }
  for (const ZoneSpec& z : m.zones) {
    w.Header("[[machine.zones]]");
    w.Str("name", ZoneName(z.type));
    if (z.node != 0) w.Int("node", z.node);
    w.UInt("start_pfn", z.start_pfn);
    w.UInt("end_pfn", z.end_pfn);
  }
  struct VmField {
    const char* key;
    int64_t VmSysctls::*field;
  };
  static constexpr VmField kVm[] = {
      {"min_free_kbytes", &VmSysctls::min_free_kbytes},
      {"watermark_scale_factor", &VmSysctls::watermark_scale_factor},
      {"watermark_boost_factor", &VmSysctls::watermark_boost_factor},
      {"defrag_mode", &VmSysctls::defrag_mode},
      {"extfrag_threshold", &VmSysctls::extfrag_threshold},
      {"compaction_proactiveness", &VmSysctls::compaction_proactiveness},
      {"percpu_pagelist_high_fraction", &VmSysctls::percpu_pagelist_high_fraction},
  };
  bool vm_header = false;
  for (const VmField& f : kVm) {
    if (m.vm.*(f.field) == d.vm.*(f.field)) continue;
    if (!vm_header) w.Header("[machine.vm]");
    vm_header = true;
    w.Int(f.key, m.vm.*(f.field));
  }
  if (m.thp.enabled != d.thp.enabled || m.thp.defrag != d.thp.defrag) {
    w.Header("[machine.thp]");
    if (m.thp.enabled != d.thp.enabled) w.Str("enabled", ThpEnabledName(m.thp.enabled));
    if (m.thp.defrag != d.thp.defrag) w.Str("defrag", ThpDefragName(m.thp.defrag));
  }
  if (!m.thp.mthp.empty()) {
    w.Header("[machine.thp.mthp]");
    for (const auto& [order, setting] : m.thp.mthp) w.Str(MthpSizeName(order), MthpEnabledName(setting));
  }
}

void PrintBudget(const Budget& b, Writer& w) {
  const Budget d;
  if (b == d) return;
  w.Header("[budget]");
  if (b.memory != d.memory) w.SizeVal("memory", b.memory);
  if (b.max_duration != d.max_duration) w.Str("max_duration", FormatDurationCanonical(b.max_duration));
  if (b.arena) w.SizeVal("arena", *b.arena);
}

void PrintBound(const CountBound& b, Writer& w) {
  if (b.count) w.UInt("count", *b.count);
  if (b.min) w.UInt("min", *b.min);
  if (b.max) w.UInt("max", *b.max);
}

struct OpPrinter {
  Writer& w;

  void operator()(const AnonOp& op) {
    if (!op.tag.empty()) w.Str("tag", op.tag);
    w.SizeVal("size", op.size);
    if (op.page_size != PageSize::Base()) w.Str("page_size", FormatPageSize(op.page_size));
    if (op.touch != TouchOrder::kSequential) w.Str("touch", TouchOrderName(op.touch));
  }
  void operator()(const ReleaseOp& op) {
    w.Str("region", op.region);
    w.Str("pattern", ReleasePatternName(op.pattern));
    switch (op.pattern) {
      case ReleasePattern::kEveryNth:
        w.UInt("n", op.n);
        if (op.offset != 0) w.UInt("offset", op.offset);
        break;
      case ReleasePattern::kRandom:
        w.Float("fraction", op.fraction);
        break;
      case ReleasePattern::kStride:
        w.SizeVal("stride", op.stride);
        w.SizeVal("length", op.length);
        break;
      case ReleasePattern::kWhole:
        break;
    }
    if (op.unit) w.SizeVal("unit", *op.unit);
    if (op.method != ReleaseMethod::kDontneed) w.Str("method", ReleaseMethodName(op.method));
  }
  void operator()(const PinOp& op) {
    w.Str("kind", PinKindName(op.kind));
    w.SizeVal("size", op.size);
    if (!op.tag.empty()) w.Str("tag", op.tag);
  }
  void operator()(const SlabOp& op) {
    w.Str("kind", SlabKindName(op.kind));
    w.UInt("count", op.count);
    if (!op.tag.empty()) w.Str("tag", op.tag);
  }
  void operator()(const PagecacheOp& op) {
    if (op.path) w.Str("path", *op.path);
    if (op.fs) {
      std::vector<std::string> parts = {absl::StrCat("type = ", TomlQuote(FsTypeName(op.fs->type)))};
      if (op.fs->block_size) {
        parts.push_back(absl::StrCat("block_size = ", TomlQuote(FormatBytes(*op.fs->block_size))));
      }
      if (op.fs->size) parts.push_back(absl::StrCat("size = ", TomlQuote(FormatSize(*op.fs->size))));
      w.Raw("fs", absl::StrCat("{ ", absl::StrJoin(parts, ", "), " }"));
    }
    w.SizeVal("size", op.size);
    if (op.files != 1) w.UInt("files", op.files);
    if (op.mode != IoMode::kWrite) w.Str("mode", IoModeName(op.mode));
    if (op.cycles != 1) w.UInt("cycles", op.cycles);
    if (op.fadvise != Fadvise::kNone) w.Str("fadvise", FadviseName(op.fadvise));
    if (!op.tag.empty()) w.Str("tag", op.tag);
  }
  void operator()(const ThpOp& op) {
    w.Str("action", ThpActionName(op.action));
    w.Str("region", op.region);
  }
  void operator()(const ProbeOp& op) {
    w.Str("kind", ProbeKindName(op.kind));
    w.UInt("count", op.count);
    if (op.kind == ProbeKind::kThp && op.page_size != PageSize::Thp()) {
      w.Str("page_size", FormatPageSize(op.page_size));
    }
  }
  void operator()(const CompactOp& op) {
    if (op.node) w.Int("node", *op.node);
  }
  void operator()(const DropCachesOp& op) {
    if (op.what != DropWhat::kAll) w.Str("what", DropWhatName(op.what));
  }
  void operator()(const SnapshotOp& op) {
    if (!op.label.empty()) w.Str("label", op.label);
  }
  void operator()(const HoldOp& op) { w.Str("duration", FormatDurationCanonical(op.duration)); }
  void operator()(const SysctlOp& op) {
    w.Str("setting", op.setting);
    // vm.* values are integers (the parser keeps them in canonical decimal).
    if (op.setting.rfind("vm.", 0) == 0) {
      w.Raw("value", op.value);
    } else {
      w.Str("value", op.value);
    }
  }
  void operator()(const AllocOp& op) {
    if (op.count != 1) w.UInt("count", op.count);
    if (op.order != 0) w.Int("order", op.order);
    if (op.migratetype) w.Str("migratetype", MigratetypeName(*op.migratetype));
    if (op.gfp) w.Str("gfp", op.gfp->text);
    if (op.zone) w.Str("zone", ZoneName(*op.zone));
    if (op.node != 0) w.Int("node", op.node);
    if (op.cpu != 0) w.Int("cpu", op.cpu);
    if (!op.tag.empty()) w.Str("tag", op.tag);
  }
  void operator()(const FreeOp& op) {
    w.Str("tag", op.tag);
    if (op.pattern != FreePattern::kAll) w.Str("pattern", FreePatternName(op.pattern));
    switch (op.pattern) {
      case FreePattern::kAll: break;
      case FreePattern::kEveryNth:
        w.UInt("n", op.n);
        if (op.offset != 0) w.UInt("offset", op.offset);
        break;
      case FreePattern::kRandom: w.Float("fraction", op.fraction); break;
      case FreePattern::kFirst:
      case FreePattern::kLast: w.UInt("k", op.k); break;
    }
    if (op.cpu != 0) w.Int("cpu", op.cpu);
  }
  void operator()(const ExpectOp& op) {
    w.Str("check", ExpectCheckName(op));
    if (const auto* e = std::get_if<ExpectFreeBlocks>(&op.check)) {
      w.Str("zone", ZoneName(e->zone));
      if (e->node != 0) w.Int("node", e->node);
      w.Int("order", e->order);
      w.Str("migratetype", MigratetypeName(e->migratetype));
      PrintBound(e->bound, w);
    } else if (const auto* p = std::get_if<ExpectPageblocks>(&op.check)) {
      w.Str("zone", ZoneName(p->zone));
      if (p->node != 0) w.Int("node", p->node);
      w.Str("migratetype", MigratetypeName(p->migratetype));
      PrintBound(p->bound, w);
    } else if (const auto* l = std::get_if<ExpectLastAlloc>(&op.check)) {
      if (l->pfn) w.UInt("pfn", *l->pfn);
      if (l->failed) w.Bool("failed", true);
    } else if (const auto* f = std::get_if<ExpectFallback>(&op.check)) {
      if (f->alloc_order) w.Int("alloc_order", *f->alloc_order);
      if (f->fallback_order) w.Int("fallback_order", *f->fallback_order);
      if (f->alloc_migratetype) w.Str("alloc_migratetype", MigratetypeName(*f->alloc_migratetype));
      if (f->fallback_migratetype) {
        w.Str("fallback_migratetype", MigratetypeName(*f->fallback_migratetype));
      }
      if (f->change_ownership) w.Bool("change_ownership", *f->change_ownership);
      if (f->fallback_class) w.Str("class", FallbackClassName(*f->fallback_class));
      PrintBound(f->bound, w);
    }
  }
};

void PrintSteps(const std::vector<Step>& steps, const std::string& array, Writer& w) {
  for (const Step& step : steps) {
    w.Header(absl::StrCat("[[", array, "]]"));
    if (const auto* phase = std::get_if<Phase>(&step.node)) {
      w.Str("op", OpName(phase->op));
      std::visit(OpPrinter{w}, phase->op);
    } else {
      const auto& group = std::get<RepeatGroup>(step.node);
      w.Str("op", "repeat");
      w.UInt("count", group.count);
      PrintSteps(group.body, absl::StrCat(array, ".phases"), w);
    }
  }
}

}  // namespace

std::string PrintScenario(const Scenario& s) {
  Writer w;
  w.Str("name", s.name);
  if (!s.description.empty()) w.Str("description", s.description);
  w.UInt("seed", s.seed);
  PrintMachine(s.machine, w);
  PrintBudget(s.budget, w);
  PrintSteps(s.phases, "phases", w);
  return w.Take();
}

}  // namespace fraglab::scenario
