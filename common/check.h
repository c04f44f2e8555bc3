// CHECK macros for programmer errors (broken invariants). Operating errors are
// absl::Status values, never CHECKs. A failed CHECK prints where and why, then aborts.
#pragma once

#include <cstdio>
#include <cstdlib>

namespace keel::internal {
[[noreturn]] inline void CheckFailed(const char* file, int line, const char* expr,
                                     const char* msg) {
  std::fprintf(stderr, "%s:%d: CHECK failed: %s %s\n", file, line, expr, msg ? msg : "");
  std::fflush(stderr);
  std::abort();
}
}  // namespace keel::internal

#define KEEL_CHECK(cond)                                                            \
  do {                                                                              \
    if (!(cond)) ::keel::internal::CheckFailed(__FILE__, __LINE__, #cond, nullptr); \
  } while (0)

#define KEEL_CHECK_MSG(cond, msg)                                                 \
  do {                                                                            \
    if (!(cond)) ::keel::internal::CheckFailed(__FILE__, __LINE__, #cond, (msg)); \
  } while (0)

#ifdef NDEBUG
#define KEEL_DCHECK(cond) \
  do {                    \
  } while (0 && (cond))
#else
#define KEEL_DCHECK(cond) KEEL_CHECK(cond)
#endif
