#include "client/retry_policy.h"

#include "absl/strings/match.h"

namespace keel::client {
namespace {

// Server answers carry etcd's texts; anything else under UNAVAILABLE comes from the
// transport (connection refused, reset, closed) and says the endpoint is down.
bool FromServer(const absl::Status& s) { return absl::StartsWith(s.message(), "etcdserver:"); }

// Answers that say the request was refused before it was proposed, and the
// transport's "could not connect" (nothing was sent).
bool RefusedBeforeProposal(const absl::Status& s) {
  return s.message() == "etcdserver: no leader" || s.message() == "etcdserver: not leader" ||
         s.message() == "etcdserver: too many requests" ||
         absl::StartsWith(s.message(), "failed to connect");
}

}  // namespace

AttemptVerdict JudgeAttempt(CallKind kind, const absl::Status& status, bool attempt_timed_out) {
  AttemptVerdict v;
  switch (status.code()) {
    case absl::StatusCode::kUnavailable:
      v.endpoint_failed = !FromServer(status);
      v.leader_suspect = true;
      v.retry = kind != CallKind::kUnsafeWrite || RefusedBeforeProposal(status);
      return v;
    case absl::StatusCode::kResourceExhausted:
      // "database space exceeded" will not go away by waiting.
      if (absl::StrContains(status.message(), "database space exceeded")) return v;
      v.overloaded = true;
      v.retry = kind != CallKind::kUnsafeWrite || RefusedBeforeProposal(status);
      return v;
    case absl::StatusCode::kDeadlineExceeded:
      if (!attempt_timed_out) return v;  // The call's own deadline: give up.
      v.endpoint_failed = true;
      v.leader_suspect = true;
      v.retry = kind != CallKind::kUnsafeWrite;
      return v;
    default:
      return v;  // INVALID_ARGUMENT, FAILED_PRECONDITION, OUT_OF_RANGE, ...: never.
  }
}

}  // namespace keel::client
