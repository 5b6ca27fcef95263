// What every generator operation needs from the run: where to stop, how much
// memory it may still take, where to journal a setting it changes, and a
// scratch directory for files and mount points.
#pragma once

#include <string>
#include <vector>

#include "gen/restore_journal.h"
#include "gen/safety.h"

namespace fraglab::gen {

struct OpContext {
  StopFlag* stop = nullptr;          // required
  MemoryLedger* ledger = nullptr;    // required
  RestoreJournal* journal = nullptr; // null: operations that change settings refuse
  std::string work_dir;              // scratch directory on a disk filesystem, owned by the run
};

// FailedPrecondition "<what> needs the restore journal" when ctx has none.
[[nodiscard]] absl::Status RequireJournal(const OpContext& ctx, absl::string_view what);

}  // namespace fraglab::gen
