#include "gen/sysfs.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/status.h"

namespace fraglab::gen {

absl::StatusOr<std::string> ReadSetting(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return ErrnoStatus(errno, absl::StrCat("open ", path, " for reading"));
  std::string out;
  char buf[4096];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof(buf));
    if (n < 0) {
      if (errno == EINTR) continue;
      int err = errno;
      ::close(fd);
      return ErrnoStatus(err, absl::StrCat("read ", path));
    }
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  while (!out.empty() && (out.back() == '\n' || out.back() == ' ' || out.back() == '\t')) {
    out.pop_back();
  }
  return out;
}

absl::Status WriteSetting(const std::string& path, const std::string& value) {
  int fd = ::open(path.c_str(), O_WRONLY | O_TRUNC | O_CLOEXEC);
  if (fd < 0) return ErrnoStatus(errno, absl::StrCat("open ", path, " for writing"));
  ssize_t n;
  do {
    n = ::write(fd, value.data(), value.size());
  } while (n < 0 && errno == EINTR);
  int err = errno;
  ::close(fd);
  if (n < 0) return ErrnoStatus(err, absl::StrCat("write '", value, "' to ", path));
  if (static_cast<size_t>(n) != value.size()) {
    return absl::InternalError(absl::StrCat("short write of '", value, "' to ", path, ": ", n,
                                            " of ", value.size(), " bytes"));
  }
  return absl::OkStatus();
}

std::string ActiveChoice(const std::string& content) {
  size_t open = content.find('[');
  size_t close = content.find(']', open == std::string::npos ? 0 : open);
  if (open != std::string::npos && close != std::string::npos && close > open) {
    return content.substr(open + 1, close - open - 1);
  }
  return std::string(absl::StripAsciiWhitespace(content));
}

std::map<std::string, uint64_t> ParseKeyValues(const std::string& text) {
  std::map<std::string, uint64_t> out;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    std::vector<absl::string_view> parts =
        absl::StrSplit(line, absl::ByAnyChar(" \t"), absl::SkipEmpty());
    if (parts.size() < 2) continue;
    absl::string_view key = parts[0];
    absl::ConsumeSuffix(&key, ":");
    uint64_t v = 0;
    if (!absl::SimpleAtoi(parts[1], &v)) continue;
    if (parts.size() >= 3 && parts[2] == "kB") v *= 1024;
    out[std::string(key)] = v;
  }
  return out;
}

absl::StatusOr<std::map<std::string, uint64_t>> ReadKeyValueFile(const std::string& path) {
  ASSIGN_OR_RETURN(std::string text, ReadSetting(path));
  return ParseKeyValues(text);
}

absl::StatusOr<uint64_t> ReadUint(const std::string& path) {
  ASSIGN_OR_RETURN(std::string text, ReadSetting(path));
  uint64_t v = 0;
  if (!absl::SimpleAtoi(absl::StripAsciiWhitespace(text), &v)) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": expected an unsigned integer, read '", text, "'"));
  }
  return v;
}

uint64_t ValueOr0(const std::map<std::string, uint64_t>& values, const std::string& key) {
  auto it = values.find(key);
  return it == values.end() ? 0 : it->second;
}

std::string SysctlPath(const std::string& name_or_path) {
  if (!name_or_path.empty() && name_or_path[0] == '/') return name_or_path;
  return absl::StrCat("/proc/sys/", absl::StrReplaceAll(name_or_path, {{".", "/"}}));
}

bool IsRoot() { return ::geteuid() == 0; }

}  // namespace fraglab::gen
