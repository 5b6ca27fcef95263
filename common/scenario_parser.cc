// Scenario parser: toml++ (with source positions) -> Scenario, validating as
// it goes. Structure: a Parser holds the file name, the collected errors and
// the tags seen so far; a FieldReader wraps one TOML table with its field
// path and hands out typed, range-checked values.
//
// Debian ships toml++ as a shared library built with exceptions, so
// toml::parse reports syntax errors by throwing toml::parse_error; we catch
// it right at the call and turn it into a Status (nothing escapes).
#include <toml++/toml.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <limits>
#include <set>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "common/scenario_parser.h"
#include "common/status.h"

namespace fraglab::scenario {
namespace {

constexpr int64_t kInt64Max = std::numeric_limits<int64_t>::max();
// Counts beyond this are surely typos and would overflow later arithmetic.
constexpr int64_t kMaxCount = int64_t{1} << 40;
constexpr uint64_t kMinMachineBytes = uint64_t{2} << 20;  // one pageblock
constexpr uint64_t kMaxMachineBytes = uint64_t{64} << 40;  // 64 TiB

std::string_view SV(absl::string_view s) { return std::string_view(s.data(), s.size()); }

SourcePos PosOf(const toml::source_region& r) {
  return {static_cast<int>(r.begin.line), static_cast<int>(r.begin.column)};
}

const char* TypeName(const toml::node& n) {
  switch (n.type()) {
    case toml::node_type::table: return "a table";
    case toml::node_type::array: return "an array";
    case toml::node_type::string: return "a string";
    case toml::node_type::integer: return "an integer";
    case toml::node_type::floating_point: return "a float";
    case toml::node_type::boolean: return "a boolean";
    case toml::node_type::date: return "a date";
    case toml::node_type::time: return "a time";
    case toml::node_type::date_time: return "a date-time";
    default: return "nothing";
  }
}

// Enum names for messages and lookups: the first `n` values of E.
template <typename E>
std::vector<std::string> EnumNames(int n, const char* (*name)(E)) {
  std::vector<std::string> out;
  for (int i = 0; i < n; ++i) out.push_back(name(static_cast<E>(i)));
  return out;
}

struct TagInfo {
  OpKind kind;
  SourcePos pos;
};

class Parser;

// One TOML table being read: knows its field path ("phases[3]") for
// messages and where it was written.
class FieldReader {
 public:
  FieldReader(Parser& parser, const toml::table& table, std::string path)
      : parser_(parser), table_(table), path_(std::move(path)) {}

  const toml::table& table() const { return table_; }
  SourcePos pos() const { return PosOf(table_.source()); }
  const std::string& path() const { return path_; }
  std::string Path(absl::string_view key) const {
    return path_.empty() ? std::string(key) : absl::StrCat(path_, ".", key);
  }
  bool Has(absl::string_view key) const { return table_.contains(SV(key)); }
  const toml::node* Find(absl::string_view key) const { return table_.get(SV(key)); }

  // An error about `key`: at its value if written, else at the table.
  absl::Status Err(absl::string_view key, absl::string_view message) const;
  absl::Status Missing(absl::string_view key, absl::string_view why = "") const {
    return Err(key, why.empty() ? std::string("missing (required)")
                                : absl::StrCat("missing (required; ", why, ")"));
  }

  // Every key must be in `allowed`; the first other key is an error at the
  // key itself, listing the allowed keys.
  absl::Status CheckKeys(const std::vector<std::string>& allowed) const;

  // Records each key's value position (for run-time messages).
  void RecordPositions(std::map<std::string, SourcePos>& out) const {
    for (auto&& [key, node] : table_) out[std::string(key.str())] = PosOf(node.source());
  }

  // Typed getters: if `key` is present, check and store into *out (left
  // untouched when absent); with `required`, absence is an error.
  absl::Status String(absl::string_view key, std::string* out, bool required = false) const;
  absl::Status String(absl::string_view key, std::optional<std::string>* out) const;
  absl::Status Int(absl::string_view key, int64_t min, int64_t max, int64_t* out,
                   bool required = false) const;
  template <typename T>
  absl::Status Int(absl::string_view key, int64_t min, int64_t max, T* out,
                   bool required = false) const {
    int64_t v = 0;
    if (!Has(key)) return required ? Missing(key) : absl::OkStatus();
    RETURN_IF_ERROR(Int(key, min, max, &v, true));
    *out = static_cast<T>(v);
    return absl::OkStatus();
  }
  template <typename T>
  absl::Status Int(absl::string_view key, int64_t min, int64_t max, std::optional<T>* out) const {
    if (!Has(key)) return absl::OkStatus();
    T v{};
    RETURN_IF_ERROR(Int(key, min, max, &v, true));
    *out = v;
    return absl::OkStatus();
  }
  absl::Status Bool(absl::string_view key, bool* out) const;
  absl::Status Bool(absl::string_view key, std::optional<bool>* out) const {
    if (!Has(key)) return absl::OkStatus();
    bool v = false;
    RETURN_IF_ERROR(Bool(key, &v));
    *out = v;
    return absl::OkStatus();
  }
  // 0 < value <= 1.
  absl::Status Fraction(absl::string_view key, double* out, bool required) const;
  // Sizes must be > 0. `percent_of` names the base of a percentage ("" =
  // percentages not allowed); pages are always allowed.
  absl::Status SizeField(absl::string_view key, absl::string_view percent_of, Size* out,
                         bool required = false) const;
  absl::Status SizeField(absl::string_view key, absl::string_view percent_of,
                         std::optional<Size>* out) const {
    if (!Has(key)) return absl::OkStatus();
    Size v;
    RETURN_IF_ERROR(SizeField(key, percent_of, &v, true));
    *out = v;
    return absl::OkStatus();
  }
  absl::Status DurationField(absl::string_view key, absl::Duration* out,
                             bool required = false) const;
  absl::Status PageSizeField(absl::string_view key, PageSize* out) const;

  // A string that must be one of the first `n` values of E by name.
  template <typename E>
  absl::Status Enum(absl::string_view key, int n, const char* (*name)(E), E* out,
                    bool required = false) const {
    std::optional<E> v;
    RETURN_IF_ERROR(Enum(key, n, name, &v));
    if (v) {
      *out = *v;
    } else if (required) {
      return Missing(key);
    }
    return absl::OkStatus();
  }
  template <typename E>
  absl::Status Enum(absl::string_view key, int n, const char* (*name)(E), std::optional<E>* out,
                    int first = 0) const {
    if (!Has(key)) return absl::OkStatus();
    std::string s;
    RETURN_IF_ERROR(String(key, &s, true));
    std::vector<std::string> names;
    for (int i = first; i < n; ++i) {
      E e = static_cast<E>(i);
      if (s == name(e)) {
        *out = e;
        return absl::OkStatus();
      }
      names.push_back(name(e));
    }
    return Err(key, absl::StrCat("unknown value '", s, "' (allowed: ", absl::StrJoin(names, ", "),
                                 ")"));
  }

 private:
  Parser& parser_;
  const toml::table& table_;
  std::string path_;
};

class Parser {
 public:
  explicit Parser(std::string file) : file_(std::move(file)) {}

  absl::StatusOr<Scenario> Parse(absl::string_view text);

  // "file:line:col: field 'path': message" as InvalidArgument.
  // Control characters (from user strings or toml++'s multi-line syntax
  // messages) are escaped so that every error stays on one line.
  absl::Status ErrorAt(SourcePos pos, absl::string_view path, absl::string_view message) const {
    std::string out = absl::StrCat(file_, ":", pos.line, ":", pos.column, ": ");
    if (!path.empty()) absl::StrAppend(&out, "field '", OneLine(path), "': ");
    absl::StrAppend(&out, OneLine(message));
    return absl::InvalidArgumentError(out);
  }

  static std::string OneLine(absl::string_view text) {
    std::string out;
    for (unsigned char c : text) {
      if (c == '\n') {
        out += "\\n";
      } else if (c < 0x20 || c == 0x7f) {
        out += absl::StrFormat("\\x%02x", c);
      } else {
        out += static_cast<char>(c);
      }
    }
    return out;
  }

 private:
  void Record(const absl::Status& status) {
    if (!status.ok()) errors_.push_back(std::string(status.message()));
  }

  absl::Status ParseMachine(const FieldReader& f, SimMachineSpec& m);
  absl::Status ParseZones(const FieldReader& machine, const toml::array& zones,
                          SimMachineSpec& m, bool memory_given, bool nodes_given);
  absl::Status ParseBudget(const FieldReader& f, Budget& b);
  // Parses an array of phases at `path` ("phases", "phases[2].phases").
  void ParseSteps(const toml::array& array, const std::string& path, int depth,
                  std::vector<Step>& out);
  absl::StatusOr<Step> ParseStep(const FieldReader& f, int depth);
  absl::Status ParseOp(const FieldReader& f, OpKind kind, Operation& op);

  absl::Status ParseAnon(const FieldReader& f, AnonOp& op);
  absl::Status ParseRelease(const FieldReader& f, ReleaseOp& op);
  absl::Status ParsePin(const FieldReader& f, PinOp& op);
  absl::Status ParseSlab(const FieldReader& f, SlabOp& op);
  absl::Status ParsePagecache(const FieldReader& f, PagecacheOp& op);
  absl::Status ParseThp(const FieldReader& f, ThpOp& op);
  absl::Status ParseProbe(const FieldReader& f, ProbeOp& op);
  absl::Status ParseSysctl(const FieldReader& f, SysctlOp& op);
  absl::Status ParseAlloc(const FieldReader& f, AllocOp& op);
  absl::Status ParseFree(const FieldReader& f, FreeOp& op);
  absl::Status ParseExpect(const FieldReader& f, ExpectOp& op);
  absl::Status ParseBound(const FieldReader& f, CountBound& b, bool required);

  // Tag bookkeeping, in declaration (= run) order.
  absl::Status DeclareTag(const FieldReader& f, absl::string_view key, const std::string& tag,
                          OpKind kind);
  absl::Status UseTag(const FieldReader& f, absl::string_view key, const std::string& tag,
                      const std::vector<OpKind>& kinds, absl::string_view hint);
  // Machine-dependent checks for the raw operations.
  absl::Status CheckCpu(const FieldReader& f, int cpu) const;
  absl::Status CheckNode(const FieldReader& f, absl::string_view key, int node) const;
  absl::Status CheckZone(const FieldReader& f, ZoneType zone, int node) const;
  absl::Status CheckMigratetype(const FieldReader& f, absl::string_view key,
                                Migratetype mt) const;

  std::string file_;
  std::vector<std::string> errors_;
  std::map<std::string, TagInfo> tags_;
  SimMachineSpec machine_;  // parsed before the phases, for the checks above
  bool seen_alloc_ = false;  // an alloc phase came before (for expect last_alloc)
};

// ---------------------------------------------------------------------------
// FieldReader

absl::Status FieldReader::Err(absl::string_view key, absl::string_view message) const {
  const toml::node* n = Find(key);
  SourcePos pos = n ? PosOf(n->source()) : this->pos();
  return parser_.ErrorAt(pos, Path(key), message);
}

absl::Status FieldReader::CheckKeys(const std::vector<std::string>& allowed) const {
  for (auto&& [key, node] : table_) {
    bool ok = false;
    for (const std::string& a : allowed) ok = ok || key.str() == a;
    if (!ok) {
      return parser_.ErrorAt(PosOf(key.source()), Path(std::string(key.str())),
                             absl::StrCat("unknown field (allowed here: ",
                                          absl::StrJoin(allowed, ", "), ")"));
    }
  }
  return absl::OkStatus();
}

absl::Status FieldReader::String(absl::string_view key, std::string* out, bool required) const {
  const toml::node* n = Find(key);
  if (!n) return required ? Missing(key) : absl::OkStatus();
  const auto* v = n->as_string();
  if (!v) return Err(key, absl::StrCat("expected a string, got ", TypeName(*n)));
  *out = v->get();
  return absl::OkStatus();
}

absl::Status FieldReader::String(absl::string_view key, std::optional<std::string>* out) const {
  if (!Has(key)) return absl::OkStatus();
  std::string s;
  RETURN_IF_ERROR(String(key, &s, true));
  *out = std::move(s);
  return absl::OkStatus();
}

absl::Status FieldReader::Int(absl::string_view key, int64_t min, int64_t max, int64_t* out,
                              bool required) const {
  const toml::node* n = Find(key);
  if (!n) return required ? Missing(key) : absl::OkStatus();
  const auto* v = n->as_integer();
  if (!v) return Err(key, absl::StrCat("expected an integer, got ", TypeName(*n)));
  int64_t x = v->get();
  if (x < min || x > max) {
    std::string allowed = max == kInt64Max ? absl::StrCat(">= ", min) : absl::StrCat(min, "..", max);
    return Err(key, absl::StrCat("value ", x, " out of range (allowed: ", allowed, ")"));
  }
  *out = x;
  return absl::OkStatus();
}

absl::Status FieldReader::Bool(absl::string_view key, bool* out) const {
  const toml::node* n = Find(key);
  if (!n) return absl::OkStatus();
  const auto* v = n->as_boolean();
  if (!v) return Err(key, absl::StrCat("expected true or false, got ", TypeName(*n)));
  *out = v->get();
  return absl::OkStatus();
}

absl::Status FieldReader::Fraction(absl::string_view key, double* out, bool required) const {
  const toml::node* n = Find(key);
  if (!n) return required ? Missing(key) : absl::OkStatus();
  double x = 0;
  if (const auto* d = n->as_floating_point()) {
    x = d->get();
  } else if (const auto* i = n->as_integer()) {
    x = static_cast<double>(i->get());
  } else {
    return Err(key, absl::StrCat("expected a number, got ", TypeName(*n)));
  }
  if (!(x > 0.0 && x <= 1.0)) {  // also rejects nan
    return Err(key, absl::StrCat("value ", x, " out of range (allowed: 0 < fraction <= 1)"));
  }
  *out = x;
  return absl::OkStatus();
}

absl::Status FieldReader::SizeField(absl::string_view key, absl::string_view percent_of,
                                    Size* out, bool required) const {
  const toml::node* n = Find(key);
  if (!n) return required ? Missing(key) : absl::OkStatus();
  const auto* v = n->as_string();
  const std::string allowed =
      percent_of.empty() ? "a string with a unit: B, KiB, MiB, GiB, TiB (or K, M, G, T), pages"
                         : absl::StrCat("a string with a unit: B, KiB, MiB, GiB, TiB (or K, M, G, "
                                        "T), pages, or % of ",
                                        percent_of);
  if (!v) return Err(key, absl::StrCat("expected a size (", allowed, "), got ", TypeName(*n)));
  absl::StatusOr<Size> size = ParseSize(v->get());
  if (!size.ok()) return Err(key, size.status().message());
  if (size->unit == SizeUnit::kPercent && percent_of.empty()) {
    return Err(key, absl::StrCat("a percentage is not allowed here (", allowed, ")"));
  }
  if (size->amount == 0) return Err(key, "size must be greater than 0");
  *out = *size;
  return absl::OkStatus();
}

absl::Status FieldReader::DurationField(absl::string_view key, absl::Duration* out,
                                        bool required) const {
  const toml::node* n = Find(key);
  if (!n) return required ? Missing(key) : absl::OkStatus();
  const auto* v = n->as_string();
  if (!v) {
    return Err(key, absl::StrCat("expected a duration string such as \"500ms\", \"2s\", \"1m\", "
                                 "got ", TypeName(*n)));
  }
  absl::StatusOr<absl::Duration> d = ParseDuration(v->get());
  if (!d.ok()) return Err(key, d.status().message());
  if (*d <= absl::ZeroDuration()) return Err(key, "duration must be greater than 0");
  *out = *d;
  return absl::OkStatus();
}

absl::Status FieldReader::PageSizeField(absl::string_view key, PageSize* out) const {
  std::optional<std::string> s;
  RETURN_IF_ERROR(String(key, &s));
  if (!s) return absl::OkStatus();
  absl::StatusOr<PageSize> p = ParsePageSize(*s);
  if (!p.ok()) return Err(key, p.status().message());
  *out = *p;
  return absl::OkStatus();
}

// ---------------------------------------------------------------------------
// Top level

absl::StatusOr<Scenario> Parser::Parse(absl::string_view text) {
  toml::table root;
  try {
    root = toml::parse(SV(text), SV(file_));
  } catch (const toml::parse_error& e) {
    return ErrorAt(PosOf(e.source()), "",
                   absl::StrCat("TOML syntax error: ", std::string(e.description())));
  }
  Scenario s;
  s.source_file = file_;
  FieldReader top(*this, root, "");
  // The root table has no header line: report its errors at 1:1.
  Record(top.CheckKeys({"name", "description", "seed", "machine", "budget", "phases"}));
  Record(top.String("name", &s.name, true));
  if (top.Has("name") && s.name.empty()) Record(top.Err("name", "must not be empty"));
  Record(top.String("description", &s.description));
  Record(top.Int("seed", 0, kInt64Max, &s.seed));

  if (const toml::node* n = top.Find("machine")) {
    if (const toml::table* t = n->as_table()) {
      Record(ParseMachine(FieldReader(*this, *t, "machine"), s.machine));
    } else {
      Record(top.Err("machine", absl::StrCat("expected a table ([machine]), got ", TypeName(*n))));
    }
  }
  machine_ = s.machine;
  if (const toml::node* n = top.Find("budget")) {
    if (const toml::table* t = n->as_table()) {
      Record(ParseBudget(FieldReader(*this, *t, "budget"), s.budget));
    } else {
      Record(top.Err("budget", absl::StrCat("expected a table ([budget]), got ", TypeName(*n))));
    }
  }
  if (const toml::node* n = top.Find("phases")) {
    const toml::array* a = n->as_array();
    if (!a) {
      Record(top.Err("phases", absl::StrCat("expected an array of tables ([[phases]]), got ",
                                            TypeName(*n))));
    } else if (a->empty()) {
      Record(top.Err("phases", "must contain at least one phase"));
    } else {
      ParseSteps(*a, "phases", 0, s.phases);
      uint64_t total = ExpandedCount(s.phases);
      if (total > kMaxExpandedPhases) {
        Record(top.Err("phases", absl::StrCat("repeat groups expand to ", total,
                                              " phases (allowed: at most ", kMaxExpandedPhases,
                                              ")")));
      }
    }
  } else {
    Record(top.Missing("phases", "at least one [[phases]] table"));
  }

  if (!errors_.empty()) {
    std::vector<std::string> shown(errors_.begin(),
                                   errors_.begin() + std::min<size_t>(errors_.size(),
                                                                      kMaxReportedErrors));
    std::string msg = absl::StrJoin(shown, "\n");
    if (errors_.size() > shown.size()) {
      absl::StrAppend(&msg, "\n", file_, ": ", errors_.size() - shown.size(), " more errors");
    }
    return absl::InvalidArgumentError(msg);
  }
  return s;
}

// ---------------------------------------------------------------------------
// [machine] and [budget]

absl::Status Parser::ParseMachine(const FieldReader& f, SimMachineSpec& m) {
  RETURN_IF_ERROR(f.CheckKeys({"memory", "nodes", "cpus", "era", "kernel_release", "pcp",
                               "pcp_tuning", "cma", "zones", "vm", "thp"}));
  Size memory;
  RETURN_IF_ERROR(f.SizeField("memory", "", &memory));
  if (f.Has("memory")) {
    absl::StatusOr<uint64_t> bytes = ResolveSizeBytes(memory, 0);
    if (!bytes.ok()) return f.Err("memory", bytes.status().message());
    if (*bytes % kBasePageBytes != 0 || *bytes < kMinMachineBytes || *bytes > kMaxMachineBytes) {
      return f.Err("memory", absl::StrCat("'", FormatSize(memory),
                                          "' not allowed (allowed: whole 4KiB pages, 2MiB..64TiB)"));
    }
    m.memory_bytes = *bytes;
  }
  RETURN_IF_ERROR(f.Int("nodes", 1, 64, &m.nodes));
  RETURN_IF_ERROR(f.Int("cpus", 1, 1024, &m.cpus));
  RETURN_IF_ERROR(f.Enum("era", 3, EraName, &m.era));
  RETURN_IF_ERROR(f.String("kernel_release", &m.kernel_release));
  RETURN_IF_ERROR(f.Bool("pcp", &m.pcp));
  RETURN_IF_ERROR(f.Enum("pcp_tuning", 2, PcpTuningName, &m.pcp_tuning));
  RETURN_IF_ERROR(f.Bool("cma", &m.cma));

  if (const toml::node* n = f.Find("vm")) {
    const toml::table* t = n->as_table();
    if (!t) return f.Err("vm", absl::StrCat("expected a table ([machine.vm]), got ", TypeName(*n)));
    FieldReader vm(*this, *t, f.Path("vm"));
    std::vector<std::string> keys;
    for (const std::string& name : SysctlNames()) {
      if (name.rfind("vm.", 0) == 0) keys.push_back(name.substr(3));
    }
    RETURN_IF_ERROR(vm.CheckKeys(keys));
    for (const std::string& key : keys) {
      int64_t v = 0;
      if (!vm.Has(key)) continue;
      RETURN_IF_ERROR(vm.Int(key, std::numeric_limits<int64_t>::min(), kInt64Max, &v, true));
      absl::Status st = ApplySysctl(m, absl::StrCat("vm.", key), absl::StrCat(v));
      if (!st.ok()) return vm.Err(key, st.message());
    }
  }
  if (const toml::node* n = f.Find("thp")) {
    const toml::table* t = n->as_table();
    if (!t) {
      return f.Err("thp", absl::StrCat("expected a table ([machine.thp]), got ", TypeName(*n)));
    }
    FieldReader thp(*this, *t, f.Path("thp"));
    RETURN_IF_ERROR(thp.CheckKeys({"enabled", "defrag", "mthp"}));
    RETURN_IF_ERROR(thp.Enum("enabled", 3, ThpEnabledName, &m.thp.enabled));
    RETURN_IF_ERROR(thp.Enum("defrag", 5, ThpDefragName, &m.thp.defrag));
    if (const toml::node* mn = thp.Find("mthp")) {
      const toml::table* mt = mn->as_table();
      if (!mt) {
        return thp.Err("mthp", absl::StrCat("expected a table ([machine.thp.mthp]) of size = "
                                            "setting, got ",
                                            TypeName(*mn)));
      }
      FieldReader mthp(*this, *mt, thp.Path("mthp"));
      for (auto&& [key, node] : *mt) {
        const std::string size(key.str());
        absl::StatusOr<int> order = ParseMthpOrder(size);
        if (!order.ok()) {
          return ErrorAt(PosOf(key.source()), mthp.Path(size), order.status().message());
        }
        std::optional<MthpEnabled> v;
        RETURN_IF_ERROR(mthp.Enum(size, 4, MthpEnabledName, &v));
        if (*v == MthpEnabled::kNever) {
          m.thp.mthp.erase(*order);
        } else {
          m.thp.mthp[*order] = *v;
        }
      }
    }
  }
  if (const toml::node* n = f.Find("zones")) {
    const toml::array* a = n->as_array();
    if (!a || a->empty()) {
      return f.Err("zones", absl::StrCat("expected a non-empty array of zone tables "
                                         "([[machine.zones]]), got ",
                                         a ? "an empty array" : TypeName(*n)));
    }
    RETURN_IF_ERROR(ParseZones(f, *a, m, f.Has("memory"), f.Has("nodes")));
  } else {
    // Every node of the default layout must get memory.
    uint64_t per_node = m.memory_bytes / kBasePageBytes / static_cast<uint64_t>(m.nodes);
    if (per_node < (uint64_t{1} << kPageblockOrder)) {
      return f.Err(f.Has("nodes") ? "nodes" : "memory",
                   absl::StrCat("each of the ", m.nodes, " nodes would get less than one 2MiB "
                                "pageblock of the ", FormatBytes(m.memory_bytes),
                                " (give more memory, fewer nodes, or explicit zones)"));
    }
  }
  return absl::OkStatus();
}

absl::Status Parser::ParseZones(const FieldReader& machine, const toml::array& zones,
                                SimMachineSpec& m, bool memory_given, bool nodes_given) {
  std::vector<ZoneSpec> out;
  std::vector<SourcePos> positions;
  uint64_t next_start = 0;
  for (size_t i = 0; i < zones.size(); ++i) {
    const std::string path = absl::StrCat(machine.Path("zones"), "[", i, "]");
    const toml::table* t = zones.get(i)->as_table();
    if (!t) {
      return ErrorAt(PosOf(zones.get(i)->source()), path,
                     absl::StrCat("expected a zone table, got ", TypeName(*zones.get(i))));
    }
    FieldReader z(*this, *t, path);
    RETURN_IF_ERROR(z.CheckKeys({"name", "node", "start_pfn", "end_pfn", "size"}));
    ZoneSpec zone;
    RETURN_IF_ERROR(z.Enum("name", 4, ZoneName, &zone.type, true));
    RETURN_IF_ERROR(z.Int("node", 0, 63, &zone.node));
    zone.start_pfn = next_start;
    RETURN_IF_ERROR(z.Int("start_pfn", 0, kInt64Max, &zone.start_pfn));
    if (z.Has("size") == z.Has("end_pfn")) {
      return z.Err(z.Has("size") ? "end_pfn" : "size",
                   "give exactly one of size and end_pfn");
    }
    if (z.Has("size")) {
      Size size;
      RETURN_IF_ERROR(z.SizeField("size", "", &size, true));
      absl::StatusOr<uint64_t> bytes = ResolveSizeBytes(size, 0);
      if (!bytes.ok()) return z.Err("size", bytes.status().message());
      if (*bytes % kBasePageBytes != 0) {
        return z.Err("size", absl::StrCat("'", FormatSize(size), "' is not a whole number of 4KiB pages"));
      }
      if (*bytes / kBasePageBytes > static_cast<uint64_t>(kInt64Max) - zone.start_pfn) {
        return z.Err("size", "zone ends beyond the largest pfn");
      }
      zone.end_pfn = zone.start_pfn + *bytes / kBasePageBytes;
    } else {
      RETURN_IF_ERROR(z.Int("end_pfn", 1, kInt64Max, &zone.end_pfn, true));
      if (zone.end_pfn <= zone.start_pfn) {
        return z.Err("end_pfn", absl::StrCat("end_pfn ", zone.end_pfn, " must be above start_pfn ",
                                             zone.start_pfn));
      }
    }
    const char* limit_key = z.Has("size") ? "size" : "end_pfn";
    if (zone.type == ZoneType::kDma && zone.end_pfn > kDmaEndPfn) {
      return z.Err(limit_key, absl::StrCat("DMA zone ends at pfn ", zone.end_pfn,
                                           " (allowed: DMA ends at or below pfn 4096, 16MiB)"));
    }
    if (zone.type == ZoneType::kDma32 && zone.end_pfn > kDma32EndPfn) {
      return z.Err(limit_key, absl::StrCat("DMA32 zone ends at pfn ", zone.end_pfn,
                                           " (allowed: DMA32 ends at or below pfn 0x100000, 4GiB)"));
    }
    for (size_t j = 0; j < out.size(); ++j) {
      const ZoneSpec& o = out[j];
      if (zone.start_pfn < o.end_pfn && o.start_pfn < zone.end_pfn) {
        return z.Err(z.Has("start_pfn") ? "start_pfn" : "name",
                     absl::StrCat("pfns [", zone.start_pfn, ", ", zone.end_pfn, ") overlap zone ",
                                  ZoneName(o.type), " [", o.start_pfn, ", ", o.end_pfn,
                                  ") declared at line ", positions[j].line));
      }
      if (o.node == zone.node &&
          (static_cast<int>(o.type) >= static_cast<int>(zone.type) || o.start_pfn > zone.start_pfn)) {
        return z.Err("name", absl::StrCat("zone ", ZoneName(zone.type), " on node ", zone.node,
                                          " must come after ", ZoneName(o.type),
                                          " in both type and address (allowed order: DMA, "
                                          "DMA32, Normal, Movable, each at most once per node)"));
      }
    }
    next_start = zone.end_pfn;
    out.push_back(zone);
    positions.push_back(z.pos());
  }
  int max_node = 0;
  uint64_t pages = 0;
  for (const ZoneSpec& z : out) {
    max_node = std::max(max_node, z.node);
    pages += z.end_pfn - z.start_pfn;
  }
  for (int node = 0; node <= max_node; ++node) {
    bool found = false;
    for (const ZoneSpec& z : out) found = found || z.node == node;
    if (!found) {
      return machine.Err("zones", absl::StrCat("node ", node, " has no zone (nodes are numbered "
                                               "0..", max_node, " without gaps)"));
    }
  }
  if (nodes_given && m.nodes != max_node + 1) {
    return machine.Err("nodes", absl::StrCat("nodes = ", m.nodes, " but the zones are on ",
                                             max_node + 1, " node(s)"));
  }
  m.nodes = max_node + 1;
  const uint64_t bytes = pages * kBasePageBytes;
  if (memory_given && m.memory_bytes != bytes) {
    return machine.Err("memory", absl::StrCat("memory ", FormatBytes(m.memory_bytes),
                                              " differs from the zones' total ", FormatBytes(bytes),
                                              " (omit memory when giving zones)"));
  }
  if (bytes > kMaxMachineBytes) {
    return machine.Err("zones", "zones total more than 64TiB");
  }
  m.memory_bytes = bytes;
  m.zones = std::move(out);
  return absl::OkStatus();
}

absl::Status Parser::ParseBudget(const FieldReader& f, Budget& b) {
  RETURN_IF_ERROR(f.CheckKeys({"memory", "max_duration", "arena"}));
  RETURN_IF_ERROR(f.SizeField("memory", "MemAvailable", &b.memory));
  RETURN_IF_ERROR(f.DurationField("max_duration", &b.max_duration));
  RETURN_IF_ERROR(f.SizeField("arena", "the budget memory", &b.arena));
  return absl::OkStatus();
}

// ---------------------------------------------------------------------------
// Phases

void Parser::ParseSteps(const toml::array& array, const std::string& path, int depth,
                        std::vector<Step>& out) {
  for (size_t i = 0; i < array.size(); ++i) {
    const toml::node& n = *array.get(i);
    const std::string item = absl::StrCat(path, "[", i, "]");
    const toml::table* t = n.as_table();
    if (!t) {
      Record(ErrorAt(PosOf(n.source()), item,
                     absl::StrCat("expected a phase table ([[", path, "]]), got ", TypeName(n))));
      continue;
    }
    absl::StatusOr<Step> step = ParseStep(FieldReader(*this, *t, item), depth);
    if (!step.ok()) {
      // An empty message marks a repeat group whose body errors are recorded.
      if (!step.status().message().empty()) Record(step.status());
      continue;
    }
    out.push_back(*std::move(step));
  }
}

absl::StatusOr<Step> Parser::ParseStep(const FieldReader& f, int depth) {
  std::string op_name;
  RETURN_IF_ERROR(f.String("op", &op_name, true));
  if (op_name == "repeat") {
    RETURN_IF_ERROR(f.CheckKeys({"op", "count", "phases"}));
    if (depth + 1 > kMaxRepeatDepth) {
      return f.Err("op", absl::StrCat("repeat groups nested more than ", kMaxRepeatDepth,
                                      " deep"));
    }
    RepeatGroup group;
    group.path = f.path();
    group.pos = f.pos();
    RETURN_IF_ERROR(f.Int("count", 1, static_cast<int64_t>(kMaxExpandedPhases), &group.count,
                          true));
    const toml::node* n = f.Find("phases");
    if (!n) return f.Missing("phases", "the phases op 'repeat' repeats");
    const toml::array* a = n->as_array();
    if (!a || a->empty()) {
      return f.Err("phases", absl::StrCat("expected a non-empty array of phase tables ([[",
                                          f.Path("phases"), "]]), got ",
                                          a ? "an empty array" : TypeName(*n)));
    }
    const size_t errors_before = errors_.size();
    ParseSteps(*a, f.Path("phases"), depth + 1, group.body);
    if (errors_.size() != errors_before) {
      // The body's errors are recorded already; drop the group quietly.
      return absl::InvalidArgumentError("");
    }
    return Step{std::move(group)};
  }
  std::optional<OpKind> kind;
  for (int i = 0; i < kNumOpKinds; ++i) {
    if (op_name == OpName(static_cast<OpKind>(i))) kind = static_cast<OpKind>(i);
  }
  if (!kind) {
    std::vector<std::string> names;
    for (int i = 0; i < kNumOpKinds; ++i) names.push_back(OpName(static_cast<OpKind>(i)));
    names.push_back("repeat");
    return f.Err("op", absl::StrCat("unknown value '", op_name, "' (allowed: ",
                                    absl::StrJoin(names, ", "), ")"));
  }
  Phase phase;
  phase.path = f.path();
  phase.pos = f.pos();
  f.RecordPositions(phase.field_pos);
  RETURN_IF_ERROR(ParseOp(f, *kind, phase.op));
  return Step{std::move(phase)};
}

absl::Status Parser::ParseOp(const FieldReader& f, OpKind kind, Operation& op) {
  switch (kind) {
    case OpKind::kAnon: return ParseAnon(f, op.emplace<AnonOp>());
    case OpKind::kRelease: return ParseRelease(f, op.emplace<ReleaseOp>());
    case OpKind::kPin: return ParsePin(f, op.emplace<PinOp>());
    case OpKind::kSlab: return ParseSlab(f, op.emplace<SlabOp>());
    case OpKind::kPagecache: return ParsePagecache(f, op.emplace<PagecacheOp>());
    case OpKind::kThp: return ParseThp(f, op.emplace<ThpOp>());
    case OpKind::kProbe: return ParseProbe(f, op.emplace<ProbeOp>());
    case OpKind::kCompact: {
      auto& c = op.emplace<CompactOp>();
      RETURN_IF_ERROR(f.CheckKeys({"op", "node"}));
      RETURN_IF_ERROR(f.Int("node", 0, 63, &c.node));
      if (c.node) RETURN_IF_ERROR(CheckNode(f, "node", *c.node));
      return absl::OkStatus();
    }
    case OpKind::kDropCaches: {
      auto& d = op.emplace<DropCachesOp>();
      RETURN_IF_ERROR(f.CheckKeys({"op", "what"}));
      return f.Enum("what", 3, DropWhatName, &d.what);
    }
    case OpKind::kSnapshot: {
      auto& s = op.emplace<SnapshotOp>();
      RETURN_IF_ERROR(f.CheckKeys({"op", "label"}));
      return f.String("label", &s.label);
    }
    case OpKind::kHold: {
      auto& h = op.emplace<HoldOp>();
      RETURN_IF_ERROR(f.CheckKeys({"op", "duration"}));
      return f.DurationField("duration", &h.duration, true);
    }
    case OpKind::kSysctl: return ParseSysctl(f, op.emplace<SysctlOp>());
    case OpKind::kAlloc: return ParseAlloc(f, op.emplace<AllocOp>());
    case OpKind::kFree: return ParseFree(f, op.emplace<FreeOp>());
    case OpKind::kExpect: return ParseExpect(f, op.emplace<ExpectOp>());
  }
  return absl::InternalError("ParseOp: unhandled operation kind");
}

absl::Status Parser::DeclareTag(const FieldReader& f, absl::string_view key,
                                const std::string& tag, OpKind kind) {
  if (tag.empty()) {
    if (f.Has(key)) return f.Err(key, "must not be empty (omit it for no tag)");
    return absl::OkStatus();
  }
  auto it = tags_.find(tag);
  if (it != tags_.end() && it->second.kind != kind) {
    return f.Err(key, absl::StrCat("tag '", tag, "' already names ", OpName(it->second.kind),
                                   " memory (declared at ", file_, ":", it->second.pos.line,
                                   "); a tag names one kind of memory"));
  }
  // Declaring an existing tag again (same kind, e.g. inside a repeat group)
  // adds to the same group.
  if (it == tags_.end()) tags_[tag] = {kind, PosOf(f.Find(key)->source())};
  return absl::OkStatus();
}

absl::Status Parser::UseTag(const FieldReader& f, absl::string_view key, const std::string& tag,
                            const std::vector<OpKind>& kinds, absl::string_view hint) {
  auto it = tags_.find(tag);
  std::vector<std::string> kind_names;
  for (OpKind k : kinds) kind_names.push_back(OpName(k));
  if (it == tags_.end()) {
    std::vector<std::string> known;
    for (const auto& [name, info] : tags_) {
      for (OpKind k : kinds) {
        if (info.kind == k) known.push_back(name);
      }
    }
    return f.Err(key, absl::StrCat("unknown tag '", tag, "' (allowed: a tag of an earlier ",
                                    absl::StrJoin(kind_names, "/"), " phase",
                                    known.empty() ? std::string(": none declared so far")
                                                  : absl::StrCat(": ", absl::StrJoin(known, ", ")),
                                    ")"));
  }
  for (OpKind k : kinds) {
    if (it->second.kind == k) return absl::OkStatus();
  }
  return f.Err(key, absl::StrCat("tag '", tag, "' names ", OpName(it->second.kind),
                                 " memory (allowed: a tag of an earlier ",
                                 absl::StrJoin(kind_names, "/"), " phase)", hint));
}

absl::Status Parser::ParseAnon(const FieldReader& f, AnonOp& op) {
  RETURN_IF_ERROR(f.CheckKeys({"op", "tag", "size", "page_size", "touch"}));
  RETURN_IF_ERROR(f.String("tag", &op.tag));
  RETURN_IF_ERROR(f.SizeField("size", "the budget memory", &op.size, true));
  RETURN_IF_ERROR(f.PageSizeField("page_size", &op.page_size));
  RETURN_IF_ERROR(f.Enum("touch", 4, TouchOrderName, &op.touch));
  return DeclareTag(f, "tag", op.tag, OpKind::kAnon);
}

absl::Status Parser::ParseRelease(const FieldReader& f, ReleaseOp& op) {
  RETURN_IF_ERROR(f.CheckKeys({"op", "region", "pattern", "n", "offset", "fraction", "stride",
                               "length", "unit", "method"}));
  RETURN_IF_ERROR(f.String("region", &op.region, true));
  RETURN_IF_ERROR(UseTag(f, "region", op.region,
                         {OpKind::kAnon, OpKind::kPin, OpKind::kSlab, OpKind::kPagecache},
                         "; alloc blocks are freed with op 'free'"));
  RETURN_IF_ERROR(f.Enum("pattern", 4, ReleasePatternName, &op.pattern, true));
  std::vector<std::string> own;
  switch (op.pattern) {
    case ReleasePattern::kEveryNth: own = {"n", "offset"}; break;
    case ReleasePattern::kRandom: own = {"fraction"}; break;
    case ReleasePattern::kStride: own = {"stride", "length"}; break;
    case ReleasePattern::kWhole: break;
  }
  for (const char* key : {"n", "offset", "fraction", "stride", "length"}) {
    if (f.Has(key) && std::find(own.begin(), own.end(), key) == own.end()) {
      return f.Err(key, absl::StrCat("not used by pattern '", ReleasePatternName(op.pattern),
                                     "' (its fields: ",
                                     own.empty() ? "none" : absl::StrJoin(own, ", "), ")"));
    }
  }
  switch (op.pattern) {
    case ReleasePattern::kEveryNth:
      RETURN_IF_ERROR(f.Int("n", 1, kMaxCount, &op.n, true));
      RETURN_IF_ERROR(f.Int("offset", 0, static_cast<int64_t>(op.n) - 1, &op.offset));
      break;
    case ReleasePattern::kRandom:
      RETURN_IF_ERROR(f.Fraction("fraction", &op.fraction, true));
      break;
    case ReleasePattern::kStride: {
      RETURN_IF_ERROR(f.SizeField("stride", "", &op.stride, true));
      RETURN_IF_ERROR(f.SizeField("length", "", &op.length, true));
      uint64_t stride = ResolveSizeBytes(op.stride, 0).value_or(0);
      uint64_t length = ResolveSizeBytes(op.length, 0).value_or(0);
      if (length > stride) {
        return f.Err("length", absl::StrCat("length ", FormatSize(op.length),
                                            " exceeds stride ", FormatSize(op.stride),
                                            " (allowed: 0 < length <= stride)"));
      }
      break;
    }
    case ReleasePattern::kWhole:
      break;
  }
  RETURN_IF_ERROR(f.SizeField("unit", "", &op.unit));
  RETURN_IF_ERROR(f.Enum("method", 4, ReleaseMethodName, &op.method));
  return absl::OkStatus();
}

absl::Status Parser::ParsePin(const FieldReader& f, PinOp& op) {
  RETURN_IF_ERROR(f.CheckKeys({"op", "kind", "size", "tag"}));
  RETURN_IF_ERROR(f.Enum("kind", 4, PinKindName, &op.kind, true));
  RETURN_IF_ERROR(f.SizeField("size", "the budget memory", &op.size, true));
  RETURN_IF_ERROR(f.String("tag", &op.tag));
  return DeclareTag(f, "tag", op.tag, OpKind::kPin);
}

absl::Status Parser::ParseSlab(const FieldReader& f, SlabOp& op) {
  RETURN_IF_ERROR(f.CheckKeys({"op", "kind", "count", "tag"}));
  RETURN_IF_ERROR(f.Enum("kind", 2, SlabKindName, &op.kind, true));
  RETURN_IF_ERROR(f.Int("count", 1, kMaxCount, &op.count, true));
  RETURN_IF_ERROR(f.String("tag", &op.tag));
  return DeclareTag(f, "tag", op.tag, OpKind::kSlab);
}

absl::Status Parser::ParsePagecache(const FieldReader& f, PagecacheOp& op) {
  RETURN_IF_ERROR(f.CheckKeys(
      {"op", "path", "fs", "size", "files", "mode", "cycles", "fadvise", "tag"}));
  if (f.Has("path") == f.Has("fs")) {
    return f.Err(f.Has("path") ? "fs" : "path",
                 "give exactly one of path (an existing directory) and fs (a filesystem to "
                 "create)");
  }
  RETURN_IF_ERROR(f.String("path", &op.path));
  if (op.path && op.path->empty()) return f.Err("path", "must not be empty");
  if (const toml::node* n = f.Find("fs")) {
    const toml::table* t = n->as_table();
    if (!t) {
      return f.Err("fs", absl::StrCat("expected a table such as { type = \"xfs\", block_size = "
                                      "\"16KiB\" }, got ",
                                      TypeName(*n)));
    }
    FieldReader fs(*this, *t, f.Path("fs"));
    RETURN_IF_ERROR(fs.CheckKeys({"type", "block_size", "size"}));
    FsSpec spec;
    RETURN_IF_ERROR(fs.Enum("type", 4, FsTypeName, &spec.type, true));
    if (fs.Has("block_size")) {
      if (spec.type == FsType::kTmpfs) {
        return fs.Err("block_size", "tmpfs has no block size (allowed with ext4, xfs, btrfs)");
      }
      Size bs;
      RETURN_IF_ERROR(fs.SizeField("block_size", "", &bs, true));
      uint64_t bytes = ResolveSizeBytes(bs, 0).value_or(0);
      if (bytes < 512 || bytes > 65536 || (bytes & (bytes - 1)) != 0) {
        return fs.Err("block_size", absl::StrCat("'", FormatSize(bs),
                                                 "' not allowed (allowed: a power of two from "
                                                 "512B to 64KiB)"));
      }
      spec.block_size = bytes;
    }
    RETURN_IF_ERROR(fs.SizeField("size", "", &spec.size));
    op.fs = spec;
  }
  RETURN_IF_ERROR(f.SizeField("size", "the budget memory", &op.size, true));
  RETURN_IF_ERROR(f.Int("files", 1, kMaxCount, &op.files));
  RETURN_IF_ERROR(f.Enum("mode", 2, IoModeName, &op.mode));
  RETURN_IF_ERROR(f.Int("cycles", 1, kMaxCount, &op.cycles));
  RETURN_IF_ERROR(f.Enum("fadvise", 7, FadviseName, &op.fadvise));
  RETURN_IF_ERROR(f.String("tag", &op.tag));
  return DeclareTag(f, "tag", op.tag, OpKind::kPagecache);
}

absl::Status Parser::ParseThp(const FieldReader& f, ThpOp& op) {
  RETURN_IF_ERROR(f.CheckKeys({"op", "action", "region"}));
  RETURN_IF_ERROR(f.Enum("action", 2, ThpActionName, &op.action, true));
  RETURN_IF_ERROR(f.String("region", &op.region, true));
  return UseTag(f, "region", op.region, {OpKind::kAnon}, "");
}

absl::Status Parser::ParseProbe(const FieldReader& f, ProbeOp& op) {
  RETURN_IF_ERROR(f.CheckKeys({"op", "kind", "count", "page_size"}));
  RETURN_IF_ERROR(f.Enum("kind", 2, ProbeKindName, &op.kind, true));
  RETURN_IF_ERROR(f.Int("count", 1, kMaxCount, &op.count, true));
  if (f.Has("page_size")) {
    if (op.kind == ProbeKind::kHugetlb) {
      return f.Err("page_size", "not used by kind 'hugetlb' (hugetlb pages are 2MiB)");
    }
    RETURN_IF_ERROR(f.PageSizeField("page_size", &op.page_size));
    if (op.page_size.kind == PageSize::Kind::kBase) {
      return f.Err("page_size", "'base' cannot be probed (allowed: thp, mthp:<size>)");
    }
  }
  return absl::OkStatus();
}

absl::Status Parser::ParseSysctl(const FieldReader& f, SysctlOp& op) {
  RETURN_IF_ERROR(f.CheckKeys({"op", "setting", "value"}));
  RETURN_IF_ERROR(f.String("setting", &op.setting, true));
  const toml::node* v = f.Find("value");
  if (!v) return f.Missing("value");
  if (const auto* i = v->as_integer()) {
    op.value = absl::StrCat(i->get());
  } else if (const auto* s = v->as_string()) {
    op.value = s->get();
  } else {
    return f.Err("value", absl::StrCat("expected an integer or a string, got ", TypeName(*v)));
  }
  bool known = false;
  for (const std::string& name : SysctlNames()) known = known || name == op.setting;
  if (!known && op.setting.rfind("thp.mthp.", 0) == 0) {
    absl::StatusOr<int> order = ParseMthpOrder(absl::string_view(op.setting).substr(9));
    if (!order.ok()) return f.Err("setting", order.status().message());
    known = true;
  }
  if (!known) {
    return f.Err("setting", absl::StrCat("unknown setting '", op.setting, "' (allowed: ",
                                         absl::StrJoin(SysctlNames(), ", "), ")"));
  }
  SimMachineSpec scratch = machine_;
  absl::Status st = ApplySysctl(scratch, op.setting, op.value);
  if (!st.ok()) return f.Err("value", st.message());
  return absl::OkStatus();
}

absl::Status Parser::CheckCpu(const FieldReader& f, int cpu) const {
  if (cpu >= machine_.cpus) {
    return f.Err("cpu", absl::StrCat("cpu ", cpu, " does not exist (allowed: 0..",
                                     machine_.cpus - 1, "; machine.cpus = ", machine_.cpus, ")"));
  }
  return absl::OkStatus();
}

absl::Status Parser::CheckNode(const FieldReader& f, absl::string_view key, int node) const {
  if (node >= machine_.nodes) {
    return f.Err(key, absl::StrCat("node ", node, " does not exist (allowed: 0..",
                                   machine_.nodes - 1, "; machine.nodes = ", machine_.nodes, ")"));
  }
  return absl::OkStatus();
}

absl::Status Parser::CheckZone(const FieldReader& f, ZoneType zone, int node) const {
  std::vector<std::string> present;
  for (const ZoneSpec& z : ResolvedZones(machine_)) {
    if (z.node != node) continue;
    if (z.type == zone) return absl::OkStatus();
    present.push_back(ZoneName(z.type));
  }
  return f.Err("zone", absl::StrCat("zone ", ZoneName(zone), " does not exist on node ", node,
                                    " of the machine (allowed: ",
                                    present.empty() ? "none" : absl::StrJoin(present, ", "), ")"));
}

absl::Status Parser::CheckMigratetype(const FieldReader& f, absl::string_view key,
                                      Migratetype mt) const {
  if (mt == Migratetype::kCma && !machine_.cma) {
    return f.Err(key, "migratetype 'cma' needs machine.cma = true");
  }
  return absl::OkStatus();
}

absl::Status Parser::ParseAlloc(const FieldReader& f, AllocOp& op) {
  RETURN_IF_ERROR(f.CheckKeys(
      {"op", "count", "order", "migratetype", "gfp", "zone", "node", "cpu", "tag"}));
  RETURN_IF_ERROR(f.Int("count", 1, kMaxCount, &op.count));
  RETURN_IF_ERROR(f.Int("order", 0, kMaxOrder, &op.order));
  if (f.Has("migratetype") && f.Has("gfp")) {
    return f.Err("gfp", "give either migratetype or gfp, not both");
  }
  RETURN_IF_ERROR(f.Enum("migratetype", 3, MigratetypeName, &op.migratetype));
  if (const toml::node* n = f.Find("gfp")) {
    absl::StatusOr<Gfp> gfp;
    if (const auto* i = n->as_integer()) {
      if (i->get() < 0) return f.Err("gfp", "gfp flags cannot be negative");
      gfp = ParseGfp(absl::StrCat(i->get()));
    } else if (const auto* s = n->as_string()) {
      gfp = ParseGfp(s->get());
    } else {
      return f.Err("gfp", absl::StrCat("expected flag names joined by '|' or a number, got ",
                                       TypeName(*n)));
    }
    if (!gfp.ok()) return f.Err("gfp", gfp.status().message());
    op.gfp = *gfp;
  }
  RETURN_IF_ERROR(f.Int("node", 0, 63, &op.node));
  RETURN_IF_ERROR(CheckNode(f, "node", op.node));
  RETURN_IF_ERROR(f.Enum("zone", 4, ZoneName, &op.zone));
  if (op.zone) RETURN_IF_ERROR(CheckZone(f, *op.zone, op.node));
  RETURN_IF_ERROR(f.Int("cpu", 0, 1023, &op.cpu));
  RETURN_IF_ERROR(CheckCpu(f, op.cpu));
  RETURN_IF_ERROR(f.String("tag", &op.tag));
  seen_alloc_ = true;
  return DeclareTag(f, "tag", op.tag, OpKind::kAlloc);
}

absl::Status Parser::ParseFree(const FieldReader& f, FreeOp& op) {
  RETURN_IF_ERROR(f.CheckKeys({"op", "tag", "pattern", "n", "offset", "fraction", "k", "cpu"}));
  RETURN_IF_ERROR(f.String("tag", &op.tag, true));
  RETURN_IF_ERROR(UseTag(f, "tag", op.tag, {OpKind::kAlloc},
                         "; other memory is given back with op 'release'"));
  RETURN_IF_ERROR(f.Enum("pattern", 5, FreePatternName, &op.pattern));
  std::vector<std::string> own;
  switch (op.pattern) {
    case FreePattern::kAll: break;
    case FreePattern::kEveryNth: own = {"n", "offset"}; break;
    case FreePattern::kRandom: own = {"fraction"}; break;
    case FreePattern::kFirst:
    case FreePattern::kLast: own = {"k"}; break;
  }
  for (const char* key : {"n", "offset", "fraction", "k"}) {
    if (f.Has(key) && std::find(own.begin(), own.end(), key) == own.end()) {
      return f.Err(key, absl::StrCat("not used by pattern '", FreePatternName(op.pattern),
                                     "' (its fields: ",
                                     own.empty() ? "none" : absl::StrJoin(own, ", "), ")"));
    }
  }
  switch (op.pattern) {
    case FreePattern::kAll: break;
    case FreePattern::kEveryNth:
      RETURN_IF_ERROR(f.Int("n", 1, kMaxCount, &op.n, true));
      RETURN_IF_ERROR(f.Int("offset", 0, static_cast<int64_t>(op.n) - 1, &op.offset));
      break;
    case FreePattern::kRandom:
      RETURN_IF_ERROR(f.Fraction("fraction", &op.fraction, true));
      break;
    case FreePattern::kFirst:
    case FreePattern::kLast:
      RETURN_IF_ERROR(f.Int("k", 1, kMaxCount, &op.k, true));
      break;
  }
  RETURN_IF_ERROR(f.Int("cpu", 0, 1023, &op.cpu));
  return CheckCpu(f, op.cpu);
}

absl::Status Parser::ParseBound(const FieldReader& f, CountBound& b, bool required) {
  RETURN_IF_ERROR(f.Int("count", 0, kInt64Max, &b.count));
  RETURN_IF_ERROR(f.Int("min", 0, kInt64Max, &b.min));
  RETURN_IF_ERROR(f.Int("max", 0, kInt64Max, &b.max));
  if (b.count && (b.min || b.max)) {
    return f.Err(b.min ? "min" : "max", "give either count or min/max, not both");
  }
  if (b.min && b.max && *b.min > *b.max) {
    return f.Err("max", absl::StrCat("max ", *b.max, " is below min ", *b.min));
  }
  if (required && !b.count && !b.min && !b.max) {
    return f.Missing("count", "this check needs count, or min and/or max");
  }
  return absl::OkStatus();
}

absl::Status Parser::ParseExpect(const FieldReader& f, ExpectOp& op) {
  std::string check;
  RETURN_IF_ERROR(f.String("check", &check, true));
  if (check == "free_blocks") {
    RETURN_IF_ERROR(f.CheckKeys(
        {"op", "check", "zone", "node", "order", "migratetype", "count", "min", "max"}));
    ExpectFreeBlocks e;
    RETURN_IF_ERROR(f.Enum("zone", 4, ZoneName, &e.zone, true));
    RETURN_IF_ERROR(f.Int("node", 0, 63, &e.node));
    RETURN_IF_ERROR(CheckNode(f, "node", e.node));
    RETURN_IF_ERROR(CheckZone(f, e.zone, e.node));
    RETURN_IF_ERROR(f.Int("order", 0, kMaxOrder, &e.order, true));
    RETURN_IF_ERROR(f.Enum("migratetype", 6, MigratetypeName, &e.migratetype, true));
    RETURN_IF_ERROR(CheckMigratetype(f, "migratetype", e.migratetype));
    RETURN_IF_ERROR(ParseBound(f, e.bound, true));
    op.check = e;
  } else if (check == "pageblocks") {
    RETURN_IF_ERROR(
        f.CheckKeys({"op", "check", "zone", "node", "migratetype", "count", "min", "max"}));
    ExpectPageblocks e;
    RETURN_IF_ERROR(f.Enum("zone", 4, ZoneName, &e.zone, true));
    RETURN_IF_ERROR(f.Int("node", 0, 63, &e.node));
    RETURN_IF_ERROR(CheckNode(f, "node", e.node));
    RETURN_IF_ERROR(CheckZone(f, e.zone, e.node));
    RETURN_IF_ERROR(f.Enum("migratetype", 6, MigratetypeName, &e.migratetype, true));
    RETURN_IF_ERROR(CheckMigratetype(f, "migratetype", e.migratetype));
    RETURN_IF_ERROR(ParseBound(f, e.bound, true));
    op.check = e;
  } else if (check == "last_alloc") {
    RETURN_IF_ERROR(f.CheckKeys({"op", "check", "pfn", "failed"}));
    ExpectLastAlloc e;
    RETURN_IF_ERROR(f.Int("pfn", 0, kInt64Max, &e.pfn));
    RETURN_IF_ERROR(f.Bool("failed", &e.failed));
    if (e.pfn.has_value() == e.failed) {
      return f.Err(e.failed ? "pfn" : "failed",
                   "give exactly one of pfn (the expected first pfn) and failed = true");
    }
    if (!seen_alloc_) {
      return f.Err("check", "'last_alloc' needs an earlier alloc phase");
    }
    op.check = e;
  } else if (check == "fallback") {
    RETURN_IF_ERROR(f.CheckKeys({"op", "check", "alloc_order", "fallback_order",
                                 "alloc_migratetype", "fallback_migratetype", "change_ownership",
                                 "class", "count", "min", "max"}));
    ExpectFallback e;
    RETURN_IF_ERROR(f.Int("alloc_order", 0, kMaxOrder, &e.alloc_order));
    RETURN_IF_ERROR(f.Int("fallback_order", 0, kMaxOrder, &e.fallback_order));
    RETURN_IF_ERROR(f.Enum("alloc_migratetype", 3, MigratetypeName, &e.alloc_migratetype));
    RETURN_IF_ERROR(f.Enum("fallback_migratetype", 3, MigratetypeName, &e.fallback_migratetype));
    RETURN_IF_ERROR(f.Bool("change_ownership", &e.change_ownership));
    RETURN_IF_ERROR(f.Enum("class", 3, FallbackClassName, &e.fallback_class));
    if (e.alloc_order && e.fallback_order && *e.fallback_order < *e.alloc_order) {
      return f.Err("fallback_order", absl::StrCat("fallback_order ", *e.fallback_order,
                                                  " is below alloc_order ", *e.alloc_order,
                                                  " (a fallback splits a block at least as large)"));
    }
    if (e.alloc_migratetype && e.fallback_migratetype &&
        *e.alloc_migratetype == *e.fallback_migratetype) {
      return f.Err("fallback_migratetype",
                   "equals alloc_migratetype (a fallback takes another type's block)");
    }
    RETURN_IF_ERROR(ParseBound(f, e.bound, false));
    op.check = e;
  } else {
    return f.Err("check", absl::StrCat("unknown value '", check,
                                       "' (allowed: free_blocks, pageblocks, last_alloc, fallback)"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<Scenario> ParseScenarioString(absl::string_view text, absl::string_view filename) {
  Parser parser{std::string(filename)};
  return parser.Parse(text);
}

absl::StatusOr<Scenario> ParseScenarioFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    const int err = errno;
    return ErrnoStatus(err, absl::StrCat("cannot open scenario file '", path, "'"));
  }
  std::ostringstream buf;
  buf << in.rdbuf();
  if (in.bad()) {
    const int err = errno;
    return ErrnoStatus(err, absl::StrCat("cannot read scenario file '", path, "'"));
  }
  return ParseScenarioString(buf.str(), path);
}

}  // namespace fraglab::scenario
