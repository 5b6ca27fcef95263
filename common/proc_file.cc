#include "common/proc_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/status.h"

namespace fraglab::procfs {

std::string PathUnderRoot(const std::string& root, absl::string_view path) {
  std::string out = root.empty() ? std::string("/") : root;
  while (out.size() > 1 && out.back() == '/') out.pop_back();
  if (out == "/") out.clear();
  if (path.empty() || path.front() != '/') out.push_back('/');
  absl::StrAppend(&out, path);
  return out;
}

absl::StatusOr<std::string> ReadWholeFile(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    int err = errno;
    return ErrnoStatus(err, absl::StrCat("open ", path));
  }
  std::string out;
  // /proc files report size 0, so read in chunks until EOF. 64 KiB covers
  // zoneinfo of a large machine in a few calls.
  size_t used = 0;
  out.resize(64 * 1024);
  for (;;) {
    if (out.size() - used < 16 * 1024) out.resize(out.size() * 2);
    ssize_t n = ::read(fd, out.data() + used, out.size() - used);
    if (n < 0) {
      int err = errno;
      if (err == EINTR) continue;
      ::close(fd);
      return ErrnoStatus(err, absl::StrCat("read ", path));
    }
    if (n == 0) break;
    used += static_cast<size_t>(n);
  }
  ::close(fd);
  out.resize(used);
  return out;
}

std::vector<TextLine> SplitLines(absl::string_view text) {
  std::vector<TextLine> lines;
  int number = 0;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    if (end == absl::string_view::npos) end = text.size();
    TextLine line;
    line.number = ++number;
    line.text = text.substr(pos, end - pos);
    size_t i = 0;
    const absl::string_view t = line.text;
    while (i < t.size()) {
      while (i < t.size() && absl::ascii_isspace(static_cast<unsigned char>(t[i]))) ++i;
      size_t start = i;
      while (i < t.size() && !absl::ascii_isspace(static_cast<unsigned char>(t[i]))) ++i;
      if (i > start) line.words.push_back(t.substr(start, i - start));
    }
    lines.push_back(std::move(line));
    pos = end + 1;
  }
  return lines;
}

absl::Status LineError(absl::string_view source, int line, absl::string_view message) {
  return absl::InvalidArgumentError(absl::StrCat(source, ":", line, ": ", message));
}

absl::StatusOr<uint64_t> ParseU64Word(absl::string_view word, absl::string_view source, int line,
                                      absl::string_view what) {
  uint64_t v = 0;
  if (word.empty() || word.front() == '-' || word.front() == '+' || !absl::SimpleAtoi(word, &v)) {
    return LineError(source, line,
                     absl::StrCat(what, ": expected an unsigned number, got '", word, "'"));
  }
  return v;
}

absl::StatusOr<int64_t> ParseI64Word(absl::string_view word, absl::string_view source, int line,
                                     absl::string_view what) {
  int64_t v = 0;
  if (word.empty() || !absl::SimpleAtoi(word, &v)) {
    return LineError(source, line, absl::StrCat(what, ": expected a number, got '", word, "'"));
  }
  return v;
}

absl::string_view StripComma(absl::string_view word) {
  if (!word.empty() && word.back() == ',') word.remove_suffix(1);
  return word;
}

}  // namespace fraglab::procfs
