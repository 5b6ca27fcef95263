// The restore journal: before the generator changes anything that outlives
// the process (a sysfs/procfs setting, a mount, a loop device, a file it
// creates outside its own memory) it appends how to undo the change to a
// journal file and fsyncs it. The journal is replayed in reverse at the end
// of a run, on SIGINT/SIGTERM, on the next start after a crash or SIGKILL,
// and by `fraglab restore`. Replay is idempotent: undoing an entry whose
// change is already gone (a value already back, a mount already gone) is not
// an error, so a replay interrupted half-way can simply be run again.
//
// File: <dir>/restore.journal, <dir> = $FRAGLAB_STATE_DIR or /var/lib/fraglab.
// One entry per line: kind TAB path [TAB value] NEWLINE, with backslash,
// tab and newline escaped as \\ \t \n. A last line without its newline is a
// torn write: the change it announced was never made (changes happen only
// after the entry is on disk), so it is ignored.
// The running process holds a POSIX write lock on the journal, so a second
// run or `fraglab restore` sees that the journal is live and names its pid.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace fraglab::gen {

enum class JournalEntryKind {
  kSetting,  // path = sysfs/procfs file, value = the value to write back
  kMount,    // path = mount point to unmount
  kLoop,     // path = loop device to detach
  kFile,     // path = file to remove
  kDir,      // path = (empty) directory to remove
};

struct JournalEntry {
  JournalEntryKind kind = JournalEntryKind::kSetting;
  std::string path;
  std::string value;  // kSetting only
};

// What a replay did.
struct ReplayReport {
  size_t entries = 0;                 // entries found in the journal
  size_t undone = 0;                  // entries undone (or found already undone)
  std::vector<std::string> actions;   // one line per entry: what was done
  std::vector<std::string> failures;  // entries that could not be undone, with why
  bool torn_tail = false;             // the journal ended in a partial line
};

// One journal line (with its newline) for `entry`.
std::string FormatJournalEntry(const JournalEntry& entry);

// Parses a journal's text. `source` names the file in errors ("<source>:<line>:
// ..."). A torn last line sets *torn_tail (when non-null) and is dropped.
[[nodiscard]] absl::StatusOr<std::vector<JournalEntry>> ParseJournal(const std::string& text,
                                                                     const std::string& source,
                                                                     bool* torn_tail = nullptr);

// Undoes one entry. OK when the change is undone or was already undone;
// `action` (when non-null) receives a one-line description.
[[nodiscard]] absl::Status UndoEntry(const JournalEntry& entry, std::string* action = nullptr);

class RestoreJournal {
 public:
  // $FRAGLAB_STATE_DIR when set and non-empty, else /var/lib/fraglab.
  static std::string DefaultDir();

  // Opens (creating `dir` and the journal when needed) and locks the journal.
  // When the journal already holds entries (a previous run crashed or was
  // killed), they are replayed first and the outcome stored in *recovered
  // (when non-null); a failed recovery is an error and nothing is locked.
  // FailedPrecondition when another live process holds the journal.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<RestoreJournal>> Open(
      const std::string& dir, ReplayReport* recovered = nullptr);

  // Closes the journal without replaying it: entries still pending are left
  // for the next start or `fraglab restore` (this is what a crash looks like).
  ~RestoreJournal();
  RestoreJournal(const RestoreJournal&) = delete;
  RestoreJournal& operator=(const RestoreJournal&) = delete;

  // Appends `entry` and fsyncs the journal before returning.
  [[nodiscard]] absl::Status Record(const JournalEntry& entry);

  // Records the current value of `path` (the active choice for files such as
  // transparent_hugepage/enabled) and then writes `value` to it. A value
  // equal to the current one is still recorded (cheap, and keeps the
  // replay order simple) but not written.
  [[nodiscard]] absl::Status ChangeSetting(const std::string& path, const std::string& value);

  // Undoes every pending entry in reverse order and empties the journal.
  // Entries that failed stay in the journal (so a later restore retries them)
  // and the report lists them; the status is an error naming the first one.
  [[nodiscard]] absl::StatusOr<ReplayReport> Replay();

  const std::string& path() const { return path_; }
  size_t pending() const { return entries_.size(); }

 private:
  RestoreJournal(std::string path, int fd) : path_(std::move(path)), fd_(fd) {}
  [[nodiscard]] absl::Status Rewrite(const std::vector<JournalEntry>& entries);

  std::string path_;
  int fd_ = -1;
  std::vector<JournalEntry> entries_;  // pending, in the order recorded
};

// Replays the journal in `dir` without starting a run (`fraglab restore`).
// FailedPrecondition when a live run holds it; an empty or missing journal
// gives an empty report.
[[nodiscard]] absl::StatusOr<ReplayReport> ReplayJournalAt(const std::string& dir);

}  // namespace fraglab::gen
