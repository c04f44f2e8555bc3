// Which failed attempts are retried, by status code and call kind (the code meanings
// of STYLE.md; see client.h for the table), and what a failure says about the
// endpoint (for its circuit breaker) and about the leader (refresh it). Pure.
#pragma once

#include "absl/status/status.h"

namespace keel::client {

enum class CallKind {
  kRead,         // Never changes state: retried freely.
  kWrite,        // Carries an exactly-once request id: a retry cannot apply it twice.
  kUnsafeWrite,  // No request id: retried only when the server surely did not apply it.
};

struct AttemptVerdict {
  bool retry = false;
  bool overloaded = false;       // Back off from the longer RESOURCE_EXHAUSTED ceiling.
  bool endpoint_failed = false;  // The endpoint did not answer: counts for its breaker.
  bool leader_suspect = false;   // The leader may have changed: refresh it.
};

// `status` is the attempt's result (not OK). `attempt_timed_out`: the attempt hit its
// own deadline while the call's deadline had not passed.
[[nodiscard]] AttemptVerdict JudgeAttempt(CallKind kind, const absl::Status& status,
                                          bool attempt_timed_out);

}  // namespace keel::client
