#include "client/retry_policy.h"

#include "gtest/gtest.h"

namespace keel::client {
namespace {

TEST(RetryPolicyTest, UnavailableIsRetriedAndTransportErrorsCountAgainstTheEndpoint) {
  const auto transport = absl::UnavailableError("Connection refused");
  const auto not_leader = absl::UnavailableError("etcdserver: not leader");
  for (CallKind kind : {CallKind::kRead, CallKind::kWrite}) {
    AttemptVerdict v = JudgeAttempt(kind, transport, false);
    EXPECT_TRUE(v.retry);
    EXPECT_TRUE(v.endpoint_failed);
    EXPECT_TRUE(v.leader_suspect);
    v = JudgeAttempt(kind, not_leader, false);
    EXPECT_TRUE(v.retry);
    EXPECT_FALSE(v.endpoint_failed) << "the member answered: it is alive";
    EXPECT_TRUE(v.leader_suspect);
  }
}

TEST(RetryPolicyTest, ResourceExhaustedBacksOffLongerButNoSpaceIsFinal) {
  AttemptVerdict v = JudgeAttempt(
      CallKind::kWrite, absl::ResourceExhaustedError("etcdserver: too many requests"), false);
  EXPECT_TRUE(v.retry);
  EXPECT_TRUE(v.overloaded);
  EXPECT_FALSE(v.endpoint_failed);
  v = JudgeAttempt(CallKind::kWrite,
                   absl::ResourceExhaustedError("etcdserver: mvcc: database space exceeded"),
                   false);
  EXPECT_FALSE(v.retry);
}

TEST(RetryPolicyTest, AttemptTimeoutRetriesReadsAndIdentifiedWritesOnly) {
  const auto timeout = absl::DeadlineExceededError("Deadline Exceeded");
  EXPECT_TRUE(JudgeAttempt(CallKind::kRead, timeout, true).retry);
  EXPECT_TRUE(JudgeAttempt(CallKind::kWrite, timeout, true).retry);
  EXPECT_FALSE(JudgeAttempt(CallKind::kUnsafeWrite, timeout, true).retry);
  EXPECT_TRUE(JudgeAttempt(CallKind::kRead, timeout, true).endpoint_failed);
  // The call's own deadline: nothing left to retry in.
  EXPECT_FALSE(JudgeAttempt(CallKind::kRead, timeout, false).retry);
}

TEST(RetryPolicyTest, UnsafeWritesRetryOnlyWhenSurelyNotApplied) {
  EXPECT_TRUE(
      JudgeAttempt(CallKind::kUnsafeWrite, absl::UnavailableError("etcdserver: no leader"), false)
          .retry);
  EXPECT_TRUE(JudgeAttempt(CallKind::kUnsafeWrite,
                           absl::UnavailableError("failed to connect to all addresses"), false)
                  .retry);
  EXPECT_FALSE(JudgeAttempt(CallKind::kUnsafeWrite,
                            absl::UnavailableError("etcdserver: request timed out"), false)
                   .retry);
  EXPECT_FALSE(
      JudgeAttempt(CallKind::kUnsafeWrite, absl::UnavailableError("Socket closed"), false).retry);
}

TEST(RetryPolicyTest, ClientErrorsAreNeverRetried) {
  for (const absl::Status& s :
       {absl::InvalidArgumentError("etcdserver: key is not provided"),
        absl::FailedPreconditionError("etcdserver: lease already exists"),
        absl::OutOfRangeError("etcdserver: mvcc: required revision has been compacted"),
        absl::NotFoundError("etcdserver: requested lease not found"),
        absl::PermissionDeniedError("etcdserver: permission denied"), absl::AbortedError("aborted"),
        absl::CancelledError("cancelled"), absl::InternalError("internal"),
        absl::DataLossError("corrupt")}) {
    for (CallKind kind : {CallKind::kRead, CallKind::kWrite, CallKind::kUnsafeWrite}) {
      const AttemptVerdict v = JudgeAttempt(kind, s, false);
      EXPECT_FALSE(v.retry) << s;
      EXPECT_FALSE(v.endpoint_failed) << s;
    }
  }
}

}  // namespace
}  // namespace keel::client
