// FRAGLAB_CHECK: our own fatal assertion for internal invariants (Debian 12's
// Abseil has no absl/log). Use only for programming errors, never for bad
// input: bad input gets an absl::Status.
#pragma once

#include <cstdio>
#include <cstdlib>

#define FRAGLAB_CHECK(cond)                                                    \
  do {                                                                         \
    if (!(cond)) [[unlikely]] {                                                \
      std::fprintf(stderr, "%s:%d: FRAGLAB_CHECK failed: %s\n", __FILE__,      \
                   __LINE__, #cond);                                           \
      std::abort();                                                            \
    }                                                                          \
  } while (0)

#define FRAGLAB_CHECK_MSG(cond, ...)                                           \
  do {                                                                         \
    if (!(cond)) [[unlikely]] {                                                \
      std::fprintf(stderr, "%s:%d: FRAGLAB_CHECK failed: %s: ", __FILE__,      \
                   __LINE__, #cond);                                           \
      std::fprintf(stderr, __VA_ARGS__);                                       \
      std::fputc('\n', stderr);                                                \
      std::abort();                                                            \
    }                                                                          \
  } while (0)

#ifdef NDEBUG
#define FRAGLAB_DCHECK(cond) \
  do {                       \
  } while (0)
#else
#define FRAGLAB_DCHECK(cond) FRAGLAB_CHECK(cond)
#endif
