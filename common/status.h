// Status helpers used across fraglab libraries: libraries never throw, they
// return absl::Status / absl::StatusOr<T>. These macros keep call sites short.
#pragma once

#include <cerrno>
#include <cstring>
#include <string>
#include "absl/strings/string_view.h"

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"

#define FRAGLAB_STATUS_CONCAT_INNER(a, b) a##b
#define FRAGLAB_STATUS_CONCAT(a, b) FRAGLAB_STATUS_CONCAT_INNER(a, b)

// Evaluates `expr` (an absl::Status); returns it from the enclosing function
// if it is not OK.
#define RETURN_IF_ERROR(expr)                                \
  do {                                                       \
    ::absl::Status fraglab_status_ = (expr);                 \
    if (!fraglab_status_.ok()) return fraglab_status_;       \
  } while (0)

// ASSIGN_OR_RETURN(lhs, expr): evaluates `expr` (an absl::StatusOr<T>); on
// error returns its status, otherwise moves the value into `lhs` (which may be
// a declaration such as `auto x`).
#define ASSIGN_OR_RETURN(lhs, expr) \
  FRAGLAB_ASSIGN_OR_RETURN_IMPL(FRAGLAB_STATUS_CONCAT(fraglab_so_, __LINE__), lhs, expr)
#define FRAGLAB_ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                                  \
  if (!tmp.ok()) return std::move(tmp).status();      \
  lhs = std::move(tmp).value()

namespace fraglab {

// Builds a status from an errno value captured right after the failing call:
// "<what>: <strerror> (errno N)". EACCES/EPERM map to PermissionDenied, ENOENT
// to NotFound, everything else to the canonical mapping of absl::ErrnoToStatus.
absl::Status ErrnoStatus(int err, absl::string_view what);

}  // namespace fraglab
