#include "gen/context.h"

#include "absl/strings/str_cat.h"

namespace fraglab::gen {

absl::Status RequireJournal(const OpContext& ctx, absl::string_view what) {
  if (ctx.journal != nullptr) return absl::OkStatus();
  return absl::FailedPreconditionError(
      absl::StrCat(what, " changes a kernel setting and needs the restore journal"));
}

}  // namespace fraglab::gen
