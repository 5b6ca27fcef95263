// Reading and writing kernel settings and counters in sysfs and procfs, with
// errors that name the path. Kept small and self-contained so every operation
// family and the restore journal share one way of touching the kernel.
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace fraglab::gen {

// Reads a whole (small) file and strips trailing whitespace. NotFound when the
// path does not exist; other errors name the path.
[[nodiscard]] absl::StatusOr<std::string> ReadSetting(const std::string& path);

// Writes `value` to `path` in one write(2) after O_TRUNC (as `echo value > path`, but
// without a newline so the value round-trips). The error names the path and
// the value; the kernel's errno (EINVAL for a refused value, EACCES/EPERM when
// not root) is kept in the status code.
[[nodiscard]] absl::Status WriteSetting(const std::string& path, const std::string& value);

// For "choice" files such as transparent_hugepage/enabled ("always [madvise]
// never") returns the bracketed word; otherwise the trimmed content.
std::string ActiveChoice(const std::string& content);

// Parses "key value" or "key: value [kB]" lines (/proc/vmstat, /proc/meminfo,
// /proc/self/status). Values with a "kB" unit are converted to bytes. Lines
// that do not parse are skipped; a later duplicate key wins.
std::map<std::string, uint64_t> ParseKeyValues(const std::string& text);

// ParseKeyValues over a file; the error names the path.
[[nodiscard]] absl::StatusOr<std::map<std::string, uint64_t>> ReadKeyValueFile(
    const std::string& path);

// Reads one unsigned integer from a file such as /proc/sys/vm/nr_hugepages.
[[nodiscard]] absl::StatusOr<uint64_t> ReadUint(const std::string& path);

// Value of `key` in `values`, or 0 when absent (counters a kernel lacks).
uint64_t ValueOr0(const std::map<std::string, uint64_t>& values, const std::string& key);

// Maps a sysctl name ("vm.compaction_proactiveness") or a path to its file:
// names become /proc/sys/<name with dots as slashes>; absolute paths are kept.
std::string SysctlPath(const std::string& name_or_path);

// True when the process has an effective uid of 0. The generator uses this
// only to word its "needs root" notes; the kernel's own answer is what counts.
bool IsRoot();

}  // namespace fraglab::gen
