// Shared plumbing of the /proc and debugfs parsers (common/proc_*.h): reading
// a file under a configurable root, and the line/word helpers every parser
// uses so that errors always name the file and the line.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace fraglab::procfs {

// Joins a filesystem root and an absolute in-tree path: ("/", "/proc/x") ->
// "/proc/x"; ("tests/fixtures/proc/6.18", "/proc/x") ->
// "tests/fixtures/proc/6.18/proc/x". Fixture directories mirror the real tree.
std::string PathUnderRoot(const std::string& root, absl::string_view path);

// Reads a whole (pseudo-)file with read(2) into a string. NotFound when it
// does not exist, PermissionDenied when not readable (pagetypeinfo, debugfs and
// kpageflags are root-only), other errors with errno; the message names the path.
[[nodiscard]] absl::StatusOr<std::string> ReadWholeFile(const std::string& path);

// One line of a text file, numbered from 1, split into whitespace-separated
// words (views into the text).
struct TextLine {
  int number = 0;
  absl::string_view text;
  std::vector<absl::string_view> words;
};

// Splits `text` into lines (no empty trailing line) with their words.
std::vector<TextLine> SplitLines(absl::string_view text);

// Parses an unsigned decimal word; InvalidArgument "<source>:<line>: <what>:
// expected an unsigned number, got '<word>'" otherwise.
[[nodiscard]] absl::StatusOr<uint64_t> ParseU64Word(absl::string_view word, absl::string_view source,
                                                    int line, absl::string_view what);
// Same for a signed decimal word.
[[nodiscard]] absl::StatusOr<int64_t> ParseI64Word(absl::string_view word, absl::string_view source,
                                                   int line, absl::string_view what);

// InvalidArgument "<source>:<line>: <message>".
absl::Status LineError(absl::string_view source, int line, absl::string_view message);

// Removes one trailing ',' (the kernel writes "Node 0," and "zone DMA,").
absl::string_view StripComma(absl::string_view word);

}  // namespace fraglab::procfs
