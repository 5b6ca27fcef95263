// The restore journal against a temporary directory standing in for /sys:
// format/parse round trips, torn tails, reverse replay, idempotence, crash
// recovery on the next Open, and the lock between two processes.
#include "gen/restore_journal.h"

#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "gen/sysfs.h"

namespace fraglab::gen {
namespace {

using ::testing::HasSubstr;

class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/fraglab-journal-test-XXXXXX";
    path_ = ::mkdtemp(tmpl);
  }
  ~TempDir() { std::system(("rm -rf '" + path_ + "'").c_str()); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

void WriteFile(const std::string& path, const std::string& text) {
  std::ofstream(path) << text;
}

std::string Slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

TEST(JournalFormatTest, RoundTripWithEscapes) {
  std::vector<JournalEntry> in = {
      {JournalEntryKind::kSetting, "/sys/x\ty", "a\\b\nc"},
      {JournalEntryKind::kMount, "/mnt/fraglab", ""},
      {JournalEntryKind::kLoop, "/dev/loop3", ""},
      {JournalEntryKind::kFile, "/var/lib/fraglab/img", ""},
      {JournalEntryKind::kDir, "/var/lib/fraglab/mnt", ""},
  };
  std::string text;
  for (const auto& e : in) text += FormatJournalEntry(e);
  bool torn = true;
  auto out = ParseJournal(text, "j", &torn);
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_FALSE(torn);
  ASSERT_EQ(out->size(), in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    EXPECT_EQ((*out)[i].kind, in[i].kind);
    EXPECT_EQ((*out)[i].path, in[i].path);
    EXPECT_EQ((*out)[i].value, in[i].value);
  }
}

TEST(JournalFormatTest, TornTailIsDropped) {
  std::string text = FormatJournalEntry({JournalEntryKind::kSetting, "/a", "1"}) + "setting\t/b";
  bool torn = false;
  auto out = ParseJournal(text, "j", &torn);
  ASSERT_TRUE(out.ok());
  EXPECT_TRUE(torn);
  EXPECT_EQ(out->size(), 1u);
}

TEST(JournalFormatTest, ErrorsNameFileAndLine) {
  auto bad_kind = ParseJournal("setting\t/a\t1\nfrobnicate\t/b\n", "state/restore.journal");
  ASSERT_FALSE(bad_kind.ok());
  EXPECT_THAT(std::string(bad_kind.status().message()),
              HasSubstr("state/restore.journal:2: unknown journal entry kind 'frobnicate'"));
  auto bad_fields = ParseJournal("setting\t/a\n", "j");
  EXPECT_THAT(std::string(bad_fields.status().message()), HasSubstr("j:1: a 'setting' entry has 3"));
  auto bad_escape = ParseJournal("file\t/a\\q\n", "j");
  EXPECT_THAT(std::string(bad_escape.status().message()), HasSubstr("j:1: bad or empty path"));
}

TEST(JournalTest, ChangeSettingThenReplayRestoresInReverse) {
  TempDir sys, state;
  const std::string enabled = sys.path() + "/enabled";
  const std::string nr = sys.path() + "/nr_hugepages";
  WriteFile(enabled, "always [madvise] never\n");
  WriteFile(nr, "0\n");
  auto j = RestoreJournal::Open(state.path());
  ASSERT_TRUE(j.ok()) << j.status();
  ASSERT_TRUE((*j)->ChangeSetting(enabled, "never").ok());
  ASSERT_TRUE((*j)->ChangeSetting(nr, "5").ok());
  ASSERT_TRUE((*j)->ChangeSetting(nr, "9").ok());  // second change of the same file
  EXPECT_EQ(*ReadSetting(enabled), "never");
  EXPECT_EQ(*ReadSetting(nr), "9");
  EXPECT_EQ((*j)->pending(), 3u);
  // On disk before any replay (fsync'd append).
  EXPECT_THAT(Slurp(state.path() + "/restore.journal"), HasSubstr("setting\t" + nr + "\t5\n"));

  auto rep = (*j)->Replay();
  ASSERT_TRUE(rep.ok()) << rep.status();
  EXPECT_EQ(rep->entries, 3u);
  EXPECT_EQ(rep->undone, 3u);
  EXPECT_EQ(*ReadSetting(enabled), "madvise");  // the active choice written back
  EXPECT_EQ(*ReadSetting(nr), "0");             // the first old value wins (reverse order)
  EXPECT_EQ((*j)->pending(), 0u);
  EXPECT_EQ(Slurp(state.path() + "/restore.journal"), "");

  // Idempotent: a second replay has nothing to do and is fine.
  auto again = (*j)->Replay();
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->entries, 0u);
}

TEST(JournalTest, FilesAndDirsAreRemovedAndAlreadyGoneIsFine) {
  TempDir state, scratch;
  const std::string file = scratch.path() + "/image";
  const std::string dir = scratch.path() + "/mnt";
  WriteFile(file, "x");
  ASSERT_EQ(::mkdir(dir.c_str(), 0700), 0);
  auto j = RestoreJournal::Open(state.path());
  ASSERT_TRUE(j.ok());
  ASSERT_TRUE((*j)->Record({JournalEntryKind::kDir, dir, ""}).ok());
  ASSERT_TRUE((*j)->Record({JournalEntryKind::kFile, file, ""}).ok());
  ASSERT_TRUE((*j)->Record({JournalEntryKind::kFile, scratch.path() + "/never-made", ""}).ok());
  ASSERT_TRUE((*j)->Record({JournalEntryKind::kMount, scratch.path() + "/not-a-mount", ""}).ok());
  auto rep = (*j)->Replay();
  ASSERT_TRUE(rep.ok()) << rep.status();
  EXPECT_EQ(rep->undone, 4u);
  EXPECT_NE(::access(file.c_str(), F_OK), 0);
  EXPECT_NE(::access(dir.c_str(), F_OK), 0);
}

TEST(JournalTest, FailedEntriesStayForTheNextRestore) {
  TempDir state, scratch;
  const std::string dir = scratch.path() + "/full";
  ASSERT_EQ(::mkdir(dir.c_str(), 0700), 0);
  WriteFile(dir + "/blocker", "x");  // rmdir fails: ENOTEMPTY
  auto j = RestoreJournal::Open(state.path());
  ASSERT_TRUE(j.ok());
  ASSERT_TRUE((*j)->Record({JournalEntryKind::kDir, dir, ""}).ok());
  auto rep = (*j)->Replay();
  ASSERT_FALSE(rep.ok());
  EXPECT_THAT(std::string(rep.status().message()), HasSubstr(dir));
  EXPECT_EQ((*j)->pending(), 1u);
  ::unlink((dir + "/blocker").c_str());
  auto rep2 = (*j)->Replay();
  ASSERT_TRUE(rep2.ok()) << rep2.status();
  EXPECT_EQ(rep2->undone, 1u);
}

TEST(JournalTest, NextOpenReplaysWhatACrashLeft) {
  TempDir sys, state;
  const std::string defrag = sys.path() + "/defrag";
  WriteFile(defrag, "always defer defer+madvise [madvise] never\n");
  {
    auto j = RestoreJournal::Open(state.path());
    ASSERT_TRUE(j.ok());
    ASSERT_TRUE((*j)->ChangeSetting(defrag, "always").ok());
    // Destroyed without Replay: what a crash or SIGKILL leaves behind.
  }
  EXPECT_EQ(*ReadSetting(defrag), "always");
  // A torn last line from the crash must not matter.
  std::ofstream(state.path() + "/restore.journal", std::ios::app) << "setting\t/tor";
  ReplayReport recovered;
  auto j2 = RestoreJournal::Open(state.path(), &recovered);
  ASSERT_TRUE(j2.ok()) << j2.status();
  EXPECT_EQ(recovered.entries, 1u);
  EXPECT_EQ(recovered.undone, 1u);
  EXPECT_TRUE(recovered.torn_tail);
  EXPECT_EQ(*ReadSetting(defrag), "madvise");
  EXPECT_EQ((*j2)->pending(), 0u);
}

TEST(JournalTest, ASecondProcessIsRefusedWhileTheFirstHoldsIt) {
  TempDir state;
  auto j = RestoreJournal::Open(state.path());
  ASSERT_TRUE(j.ok());
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    auto other = ReplayJournalAt(state.path());
    bool refused = !other.ok() &&
                   other.status().code() == absl::StatusCode::kFailedPrecondition &&
                   std::string(other.status().message()).find(std::to_string(::getppid())) !=
                       std::string::npos;
    ::_exit(refused ? 0 : 1);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0) << "child was not refused with the holder's pid";
  j->reset();
  // Released on close: now it opens.
  EXPECT_TRUE(ReplayJournalAt(state.path()).ok());
}

TEST(JournalTest, DefaultDirFollowsEnvironment) {
  ::setenv("FRAGLAB_STATE_DIR", "/tmp/x-state", 1);
  EXPECT_EQ(RestoreJournal::DefaultDir(), "/tmp/x-state");
  ::unsetenv("FRAGLAB_STATE_DIR");
  EXPECT_EQ(RestoreJournal::DefaultDir(), "/var/lib/fraglab");
}

}  // namespace
}  // namespace fraglab::gen
