#include "gen/restore_journal.h"

#include <fcntl.h>
#include <linux/loop.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/status.h"
#include "gen/sysfs.h"

namespace fraglab::gen {
namespace {

constexpr char kJournalName[] = "restore.journal";
constexpr char kOwnerName[] = "restore.journal.owner";

const char* KindName(JournalEntryKind kind) {
  switch (kind) {
    case JournalEntryKind::kSetting: return "setting";
    case JournalEntryKind::kMount: return "mount";
    case JournalEntryKind::kLoop: return "loop";
    case JournalEntryKind::kFile: return "file";
    case JournalEntryKind::kDir: return "dir";
  }
  return "?";
}

bool KindFromName(absl::string_view name, JournalEntryKind* kind) {
  static constexpr JournalEntryKind kAll[] = {JournalEntryKind::kSetting, JournalEntryKind::kMount,
                                              JournalEntryKind::kLoop, JournalEntryKind::kFile,
                                              JournalEntryKind::kDir};
  for (JournalEntryKind k : kAll) {
    if (name == KindName(k)) {
      *kind = k;
      return true;
    }
  }
  return false;
}

std::string Escape(absl::string_view s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '\\': out += "\\\\"; break;
      case '\t': out += "\\t"; break;
      case '\n': out += "\\n"; break;
      default: out += c;
    }
  }
  return out;
}

bool Unescape(absl::string_view s, std::string* out) {
  out->clear();
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '\\') {
      *out += s[i];
      continue;
    }
    if (++i == s.size()) return false;
    switch (s[i]) {
      case '\\': *out += '\\'; break;
      case 't': *out += '\t'; break;
      case 'n': *out += '\n'; break;
      default: return false;
    }
  }
  return true;
}

absl::Status MkdirP(const std::string& dir) {
  std::string cur;
  for (absl::string_view part : absl::StrSplit(dir, '/', absl::SkipEmpty())) {
    absl::StrAppend(&cur, "/", part);
    if (::mkdir(cur.c_str(), 0700) != 0 && errno != EEXIST) {
      return ErrnoStatus(errno, absl::StrCat("create state directory ", cur));
    }
  }
  return absl::OkStatus();
}

absl::Status WriteAll(int fd, const std::string& data, const std::string& what) {
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus(errno, what);
    }
    done += static_cast<size_t>(n);
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> ReadAllFd(int fd, const std::string& path) {
  std::string text;
  char buf[8192];
  off_t off = 0;
  for (;;) {
    ssize_t n = ::pread(fd, buf, sizeof(buf), off);
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus(errno, absl::StrCat("read ", path));
    }
    if (n == 0) break;
    text.append(buf, static_cast<size_t>(n));
    off += n;
  }
  return text;
}

// Takes an open-file-description lock (conflicts with any other open of the
// file, in this process or another) so two runs never share a journal.
absl::Status LockJournal(int fd, const std::string& dir, const std::string& path) {
  struct flock fl = {};
  fl.l_type = F_WRLCK;
  fl.l_whence = SEEK_SET;
  if (::fcntl(fd, F_OFD_SETLK, &fl) == 0) return absl::OkStatus();
  int err = errno;
  if (err == EAGAIN || err == EACCES) {
    std::string owner = "unknown pid";
    auto text = ReadSetting(absl::StrCat(dir, "/", kOwnerName));
    if (text.ok()) owner = absl::StrCat("pid ", *text);
    return absl::FailedPreconditionError(
        absl::StrCat("the restore journal ", path, " is held by a running fraglab (", owner,
                     "); stop that run first (it restores its own changes)"));
  }
  return ErrnoStatus(err, absl::StrCat("lock ", path));
}

absl::Status WriteOwner(const std::string& path) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return ErrnoStatus(errno, absl::StrCat("create ", path));
  absl::Status s = WriteAll(fd, std::to_string(::getpid()), absl::StrCat("write ", path));
  ::close(fd);
  return s;
}

}  // namespace

std::string FormatJournalEntry(const JournalEntry& entry) {
  std::string line = absl::StrCat(KindName(entry.kind), "\t", Escape(entry.path));
  if (entry.kind == JournalEntryKind::kSetting) absl::StrAppend(&line, "\t", Escape(entry.value));
  line += '\n';
  return line;
}

absl::StatusOr<std::vector<JournalEntry>> ParseJournal(const std::string& text,
                                                       const std::string& source,
                                                       bool* torn_tail) {
  std::vector<JournalEntry> out;
  if (torn_tail != nullptr) *torn_tail = false;
  size_t pos = 0;
  int line_no = 0;
  while (pos < text.size()) {
    ++line_no;
    size_t nl = text.find('\n', pos);
    if (nl == std::string::npos) {
      // A write cut short by a crash: the change it announced never happened.
      if (torn_tail != nullptr) *torn_tail = true;
      break;
    }
    absl::string_view line(text.data() + pos, nl - pos);
    pos = nl + 1;
    if (line.empty()) continue;
    std::vector<absl::string_view> fields = absl::StrSplit(line, '\t');
    JournalEntry e;
    if (!KindFromName(fields[0], &e.kind)) {
      return absl::InvalidArgumentError(absl::StrCat(source, ":", line_no,
                                                     ": unknown journal entry kind '", fields[0],
                                                     "'"));
    }
    const size_t want = e.kind == JournalEntryKind::kSetting ? 3 : 2;
    if (fields.size() != want) {
      return absl::InvalidArgumentError(absl::StrCat(source, ":", line_no, ": a '", fields[0],
                                                     "' entry has ", want, " fields, found ",
                                                     fields.size()));
    }
    if (!Unescape(fields[1], &e.path) || e.path.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat(source, ":", line_no, ": bad or empty path field"));
    }
    if (want == 3 && !Unescape(fields[2], &e.value)) {
      return absl::InvalidArgumentError(absl::StrCat(source, ":", line_no, ": bad value field"));
    }
    out.push_back(std::move(e));
  }
  return out;
}

absl::Status UndoEntry(const JournalEntry& entry, std::string* action) {
  std::string dummy;
  std::string& act = action != nullptr ? *action : dummy;
  switch (entry.kind) {
    case JournalEntryKind::kSetting: {
      auto current = ReadSetting(entry.path);
      if (current.ok() && (*current == entry.value || ActiveChoice(*current) == entry.value)) {
        act = absl::StrCat(entry.path, " already ", entry.value);
        return absl::OkStatus();
      }
      RETURN_IF_ERROR(WriteSetting(entry.path, entry.value));
      ASSIGN_OR_RETURN(std::string after, ReadSetting(entry.path));
      if (after != entry.value && ActiveChoice(after) != entry.value) {
        // nr_hugepages can stay above the old value while huge pages are in use.
        return absl::UnavailableError(absl::StrCat("wrote '", entry.value, "' to ", entry.path,
                                                   " but it reads '", after, "'"));
      }
      act = absl::StrCat(entry.path, " restored to ", entry.value);
      return absl::OkStatus();
    }
    case JournalEntryKind::kMount: {
      if (::umount2(entry.path.c_str(), UMOUNT_NOFOLLOW) == 0) {
        act = absl::StrCat("unmounted ", entry.path);
        return absl::OkStatus();
      }
      int err = errno;
      if (err == EINVAL || err == ENOENT) {
        act = absl::StrCat(entry.path, " already unmounted");
        return absl::OkStatus();
      }
      if (err == EBUSY && ::umount2(entry.path.c_str(), MNT_DETACH | UMOUNT_NOFOLLOW) == 0) {
        act = absl::StrCat("detached busy mount ", entry.path, " (freed when its last user exits)");
        return absl::OkStatus();
      }
      return ErrnoStatus(err, absl::StrCat("unmount ", entry.path));
    }
    case JournalEntryKind::kLoop: {
      int fd = ::open(entry.path.c_str(), O_RDONLY | O_CLOEXEC);
      if (fd < 0) {
        if (errno == ENOENT || errno == ENXIO) {
          act = absl::StrCat(entry.path, " already gone");
          return absl::OkStatus();
        }
        return ErrnoStatus(errno, absl::StrCat("open loop device ", entry.path));
      }
      int rc = ::ioctl(fd, LOOP_CLR_FD, 0);
      int err = errno;
      ::close(fd);
      if (rc == 0) {
        act = absl::StrCat("detached ", entry.path);
        return absl::OkStatus();
      }
      if (err == ENXIO) {
        act = absl::StrCat(entry.path, " already detached");
        return absl::OkStatus();
      }
      return ErrnoStatus(err, absl::StrCat("detach loop device ", entry.path));
    }
    case JournalEntryKind::kFile: {
      if (::unlink(entry.path.c_str()) == 0) {
        act = absl::StrCat("removed ", entry.path);
        return absl::OkStatus();
      }
      if (errno == ENOENT) {
        act = absl::StrCat(entry.path, " already removed");
        return absl::OkStatus();
      }
      return ErrnoStatus(errno, absl::StrCat("remove ", entry.path));
    }
    case JournalEntryKind::kDir: {
      if (::rmdir(entry.path.c_str()) == 0) {
        act = absl::StrCat("removed directory ", entry.path);
        return absl::OkStatus();
      }
      if (errno == ENOENT) {
        act = absl::StrCat(entry.path, " already removed");
        return absl::OkStatus();
      }
      return ErrnoStatus(errno, absl::StrCat("remove directory ", entry.path));
    }
  }
  return absl::InternalError("unknown journal entry kind");
}

std::string RestoreJournal::DefaultDir() {
  const char* env = std::getenv("FRAGLAB_STATE_DIR");
  if (env != nullptr && env[0] != '\0') return env;
  return "/var/lib/fraglab";
}

absl::StatusOr<std::unique_ptr<RestoreJournal>> RestoreJournal::Open(const std::string& dir,
                                                                     ReplayReport* recovered) {
  RETURN_IF_ERROR(MkdirP(dir));
  std::string path = absl::StrCat(dir, "/", kJournalName);
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (fd < 0) return ErrnoStatus(errno, absl::StrCat("open restore journal ", path));
  std::unique_ptr<RestoreJournal> journal(new RestoreJournal(path, fd));
  RETURN_IF_ERROR(LockJournal(fd, dir, path));
  // The owner file only helps a second process name who holds the lock.
  RETURN_IF_ERROR(WriteOwner(absl::StrCat(dir, "/", kOwnerName)));
  ASSIGN_OR_RETURN(std::string text, ReadAllFd(fd, path));
  bool torn = false;
  ASSIGN_OR_RETURN(journal->entries_, ParseJournal(text, path, &torn));
  if (!journal->entries_.empty() || torn) {
    ASSIGN_OR_RETURN(ReplayReport report, journal->Replay());
    report.torn_tail = torn;
    if (recovered != nullptr) *recovered = std::move(report);
  }
  return journal;
}

RestoreJournal::~RestoreJournal() {
  if (fd_ >= 0) ::close(fd_);  // releases the lock
}

absl::Status RestoreJournal::Record(const JournalEntry& entry) {
  RETURN_IF_ERROR(WriteAll(fd_, FormatJournalEntry(entry), absl::StrCat("append to ", path_)));
  if (::fsync(fd_) != 0) return ErrnoStatus(errno, absl::StrCat("fsync ", path_));
  entries_.push_back(entry);
  return absl::OkStatus();
}

absl::Status RestoreJournal::ChangeSetting(const std::string& path, const std::string& value) {
  ASSIGN_OR_RETURN(std::string current, ReadSetting(path));
  std::string old = ActiveChoice(current);
  RETURN_IF_ERROR(Record({JournalEntryKind::kSetting, path, old}));
  if (old == value) return absl::OkStatus();
  return WriteSetting(path, value);
}

absl::Status RestoreJournal::Rewrite(const std::vector<JournalEntry>& entries) {
  if (::ftruncate(fd_, 0) != 0) return ErrnoStatus(errno, absl::StrCat("truncate ", path_));
  std::string text;
  for (const JournalEntry& e : entries) text += FormatJournalEntry(e);
  RETURN_IF_ERROR(WriteAll(fd_, text, absl::StrCat("rewrite ", path_)));
  if (::fsync(fd_) != 0) return ErrnoStatus(errno, absl::StrCat("fsync ", path_));
  entries_ = entries;
  return absl::OkStatus();
}

absl::StatusOr<ReplayReport> RestoreJournal::Replay() {
  ReplayReport report;
  report.entries = entries_.size();
  std::vector<JournalEntry> failed;  // in reverse order while collecting
  for (auto it = entries_.rbegin(); it != entries_.rend(); ++it) {
    std::string action;
    absl::Status s = UndoEntry(*it, &action);
    if (s.ok()) {
      ++report.undone;
      report.actions.push_back(std::move(action));
    } else {
      report.failures.push_back(std::string(s.message()));
      failed.push_back(*it);
    }
  }
  std::vector<JournalEntry> keep(failed.rbegin(), failed.rend());
  RETURN_IF_ERROR(Rewrite(keep));
  if (!report.failures.empty()) {
    return absl::UnavailableError(absl::StrCat(
        "restore left ", report.failures.size(), " of ", report.entries,
        " journal entries undone in ", path_, ": ", absl::StrJoin(report.failures, "; ")));
  }
  return report;
}

absl::StatusOr<ReplayReport> ReplayJournalAt(const std::string& dir) {
  ReplayReport report;
  ASSIGN_OR_RETURN(std::unique_ptr<RestoreJournal> journal, RestoreJournal::Open(dir, &report));
  return report;
}

}  // namespace fraglab::gen
