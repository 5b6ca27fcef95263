// Helpers shared by the live tests: running the built fraglab binary (or any
// shell command line) and collecting what it prints, a fixture with a fresh
// temporary directory per test, and a fixture with a generator context
// (ledger, stop flag, restore journal) that puts back every setting a test
// changes. Command lines are built from fixed words and our own temp paths
// only, never from untrusted input.
#pragma once

#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <system_error>
#include <utility>

#include <gtest/gtest.h>

#include "gen/context.h"
#include "gen/restore_journal.h"
#include "gen/safety.h"
#include "gen/sysfs.h"

namespace fraglab::testing {

// What a command printed on stdout and how it exited (-1: it did not exit
// normally, or could not be started).
struct CommandResult {
  int exit_code = -1;
  std::string out;
};

// Runs the shell command line `cmd` and collects its stdout (redirections
// in `cmd` decide where stderr goes).
inline CommandResult RunShell(const std::string& cmd) {
  CommandResult r;
  FILE* p = popen(cmd.c_str(), "r");
  if (p == nullptr) return r;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), p)) > 0) r.out.append(buf, n);
  const int status = pclose(p);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

// Where fraglab's stderr goes: after its stdout in `out`, or nowhere.
enum class Stderr { kMerged, kDropped };

// Runs the fraglab binary under test with `args` (shell words).
inline CommandResult RunFraglab(const std::string& args, Stderr err = Stderr::kMerged) {
  return RunShell(std::string(FRAGLAB_BINARY) + " " + args + (err == Stderr::kMerged ? " 2>&1" : " 2>/dev/null"));
}

// The whole file at `path` ("" when it cannot be read).
inline std::string ReadWholeFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// A fresh directory /tmp/<prefix>-XXXXXX for each test (in dir_), removed
// with everything in it afterwards. A derived SetUp calls this SetUp first.
class TempDirTest : public ::testing::Test {
 protected:
  explicit TempDirTest(std::string prefix) : prefix_(std::move(prefix)) {}
  void SetUp() override {
    std::string tmpl = "/tmp/" + prefix_ + "-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr) << "mkdtemp " << tmpl;
    dir_ = tmpl;
  }
  void TearDown() override {
    if (dir_.empty()) return;
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
    EXPECT_FALSE(ec) << "removing " << dir_ << ": " << ec.message();
  }

  std::string dir_;

 private:
  std::string prefix_;
};

// A generator context for one test, working in a fresh temp dir: a 1 GiB
// ledger, a stop flag and, when root, a restore journal in
// dir_/<journal_subdir> ("" = dir_ itself) that TearDown replays, so every
// setting the test changed is back before the dir goes.
class GenContextTest : public TempDirTest {
 protected:
  static constexpr uint64_t kLedgerBytes = uint64_t{1024} << 20;

  // `root_needed_for` completes NeedRoot's skip message "needs root (...)".
  GenContextTest(std::string prefix, std::string journal_subdir, std::string root_needed_for)
      : TempDirTest(std::move(prefix)),
        journal_subdir_(std::move(journal_subdir)),
        root_needed_for_(std::move(root_needed_for)) {}
  void SetUp() override {
    TempDirTest::SetUp();
    if (HasFatalFailure()) return;
    ledger_ = std::make_unique<gen::MemoryLedger>(kLedgerBytes);
    ctx_.stop = &stop_;
    ctx_.ledger = ledger_.get();
    ctx_.work_dir = dir_;
    if (gen::IsRoot()) {
      auto j = gen::RestoreJournal::Open(journal_subdir_.empty() ? dir_ : dir_ + "/" + journal_subdir_);
      ASSERT_TRUE(j.ok()) << j.status();
      journal_ = std::move(*j);
      ctx_.journal = journal_.get();
    }
  }
  void TearDown() override {
    if (journal_) {
      auto r = journal_->Replay();
      EXPECT_TRUE(r.ok()) << r.status();
      journal_.reset();
    }
    TempDirTest::TearDown();
  }
  // Marks the test skipped when not root (GTEST_SKIP in a helper ends only
  // the helper: a caller that must not go on checks IsSkipped()).
  void NeedRoot() {
    if (!gen::IsRoot()) GTEST_SKIP() << "needs root (" << root_needed_for_ << ")";
  }

  gen::StopFlag stop_;
  std::unique_ptr<gen::MemoryLedger> ledger_;
  std::unique_ptr<gen::RestoreJournal> journal_;
  gen::OpContext ctx_;

 private:
  std::string journal_subdir_;
  std::string root_needed_for_;
};

}  // namespace fraglab::testing
