// Lessor: expiry, renewal, checkpoints, promotion/demotion and the failover rule,
// driven by a fake monotonic clock.
#include "server/lessor.h"

#include <algorithm>

#include "gtest/gtest.h"

namespace keel::server {
namespace {

using Outcome = Lessor::RenewOutcome;

class LessorTest : public ::testing::Test {
 protected:
  LessorTest() : lessor_(Options()) {}

  LessorOptions Options() {
    LessorOptions o;
    o.now = [this] { return now_; };
    o.promotion_extension = absl::Seconds(1);
    o.checkpoint_interval = absl::Seconds(5);
    o.revoke_retry = absl::Seconds(3);
    return o;
  }

  static internalpb::StoredLease Stored(int64_t id, int64_t granted_s, int64_t remaining_s) {
    internalpb::StoredLease s;
    s.set_id(id);
    s.set_granted_ttl_s(granted_s);
    s.set_remaining_ttl_s(remaining_s);
    return s;
  }

  void PromoteWith(uint64_t term, std::vector<internalpb::StoredLease> leases) {
    ASSERT_TRUE(lessor_
                    .Promote(term,
                             [&]() -> absl::StatusOr<std::vector<internalpb::StoredLease>> {
                               return leases;
                             })
                    .ok());
  }

  int64_t Remaining(int64_t id) {
    auto ttl = lessor_.TimeToLive(id);
    EXPECT_TRUE(ttl.ok());
    return ttl.ok() ? ttl->remaining_s : -2;
  }

  absl::Duration now_ = absl::Hours(1);  // Arbitrary origin.
  Lessor lessor_;
};

TEST_F(LessorTest, FollowerIgnoresEventsAndRefusesRenewals) {
  EXPECT_FALSE(lessor_.primary());
  lessor_.OnGranted(1, 10);
  EXPECT_EQ(lessor_.size(), 0u);
  EXPECT_EQ(lessor_.Renew(1).outcome, Outcome::kNotPrimary);
  EXPECT_TRUE(absl::IsUnavailable(lessor_.TimeToLive(1).status()));
  EXPECT_TRUE(lessor_.TakeExpired(10).empty());
  EXPECT_TRUE(lessor_.TakeCheckpoints().empty());
}

TEST_F(LessorTest, GrantedLeaseExpiresAtItsTtlAndNotBefore) {
  PromoteWith(3, {});
  EXPECT_EQ(lessor_.primary_term(), 3u);
  lessor_.OnGranted(7, 10);
  EXPECT_EQ(Remaining(7), 10);
  now_ += absl::Milliseconds(9999);
  EXPECT_TRUE(lessor_.TakeExpired(10).empty());
  EXPECT_EQ(Remaining(7), 0);
  now_ += absl::Milliseconds(1);
  EXPECT_EQ(lessor_.TakeExpired(10), std::vector<int64_t>{7});
  // Being revoked: not handed out twice, renewals and TTL queries see it as gone.
  EXPECT_TRUE(lessor_.TakeExpired(10).empty());
  EXPECT_EQ(lessor_.Renew(7).outcome, Outcome::kExpired);
  EXPECT_EQ(Remaining(7), -1);
  lessor_.OnRevoked(7);
  EXPECT_EQ(lessor_.size(), 0u);
  EXPECT_EQ(lessor_.Renew(7).outcome, Outcome::kUnknown);
}

TEST_F(LessorTest, ExpiredInDeadlineOrderAndBounded) {
  PromoteWith(1, {});
  lessor_.OnGranted(1, 30);
  lessor_.OnGranted(2, 10);
  lessor_.OnGranted(3, 20);
  now_ += absl::Seconds(40);
  EXPECT_EQ(lessor_.TakeExpired(2), (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(lessor_.TakeExpired(2), (std::vector<int64_t>{1}));
}

TEST_F(LessorTest, LostOrFailedRevokeIsHandedOutAgain) {
  PromoteWith(1, {});
  lessor_.OnGranted(5, 2);
  now_ += absl::Seconds(2);
  EXPECT_EQ(lessor_.TakeExpired(10), std::vector<int64_t>{5});
  lessor_.RevokeFailed(5);
  EXPECT_EQ(lessor_.TakeExpired(10), std::vector<int64_t>{5});
  // No answer at all: again after revoke_retry.
  now_ += absl::Milliseconds(2999);
  EXPECT_TRUE(lessor_.TakeExpired(10).empty());
  now_ += absl::Milliseconds(1);
  EXPECT_EQ(lessor_.TakeExpired(10), std::vector<int64_t>{5});
}

TEST_F(LessorTest, RenewRestartsTheFullTtl) {
  PromoteWith(1, {});
  lessor_.OnGranted(9, 10);
  now_ += absl::Seconds(8);
  Lessor::RenewResult r = lessor_.Renew(9);
  EXPECT_EQ(r.outcome, Outcome::kRenewed);
  EXPECT_EQ(r.ttl_s, 10);
  EXPECT_FALSE(r.clear_checkpoint);
  now_ += absl::Seconds(8);
  EXPECT_TRUE(lessor_.TakeExpired(10).empty()) << "renewed at 8 s: alive until 18 s";
  now_ += absl::Seconds(2);
  EXPECT_EQ(lessor_.TakeExpired(10), std::vector<int64_t>{9});
}

TEST_F(LessorTest, GrantAndRevokeEventsAreIdempotent) {
  PromoteWith(1, {Stored(4, 10, 0)});
  now_ += absl::Seconds(5);
  lessor_.OnGranted(4, 10);    // Replay of a grant the load already saw: keeps the countdown.
  EXPECT_EQ(Remaining(4), 6);  // 10 + 1 (extension) - 5.
  lessor_.OnRevoked(99);       // Unknown: nothing.
  EXPECT_EQ(lessor_.size(), 1u);
}

TEST_F(LessorTest, CheckpointsRecordRemainingTtlRoundedUpEveryInterval) {
  PromoteWith(1, {});
  lessor_.OnGranted(1, 60);
  lessor_.OnGranted(2, 60);
  now_ += absl::Milliseconds(4900);
  EXPECT_TRUE(lessor_.TakeCheckpoints().empty()) << "not due before the interval";
  EXPECT_EQ(lessor_.Renew(2).outcome, Outcome::kRenewed);  // At 4.9 s: back to 60 s left.
  now_ += absl::Milliseconds(100);
  // Lease 2's 59.9 s round up to its full 60 s, which "nothing recorded" already says.
  auto cps = lessor_.TakeCheckpoints();
  ASSERT_EQ(cps.size(), 1u);
  EXPECT_EQ(cps[0].id(), 1);
  EXPECT_EQ(cps[0].remaining_ttl(), 55);
  now_ += absl::Milliseconds(4500);
  EXPECT_TRUE(lessor_.TakeCheckpoints().empty()) << "one round per interval";
  now_ += absl::Milliseconds(600);  // Lease 1: 49.9 s left, lease 2: 54.9 s.
  cps = lessor_.TakeCheckpoints();
  ASSERT_EQ(cps.size(), 2u);
  std::sort(cps.begin(), cps.end(), [](auto& a, auto& b) { return a.id() < b.id(); });
  EXPECT_EQ(cps[0].remaining_ttl(), 50) << "rounded up, never down";
  EXPECT_EQ(cps[1].remaining_ttl(), 55);
  EXPECT_TRUE(lessor_.TakeCheckpoints().empty()) << "one round per interval";
}

TEST_F(LessorTest, LeaseAtFullTtlIsNotCheckpointedUnlessARecordMustBeCleared) {
  PromoteWith(1, {Stored(1, 10, 4)});  // Loaded with a record of 4 s.
  now_ += absl::Milliseconds(4500);
  // The renewal clears the record (through raft) before it is acknowledged...
  Lessor::RenewResult r = lessor_.Renew(1);
  EXPECT_TRUE(r.clear_checkpoint);
  // ...but if that clear failed, the next round (at 5 s, lease at 9.5 s of 10) clears it.
  lessor_.RestoreCheckpointed(1);
  now_ += absl::Milliseconds(500);
  auto cps = lessor_.TakeCheckpoints();
  ASSERT_EQ(cps.size(), 1u);
  EXPECT_EQ(cps[0].remaining_ttl(), 0);
  // No record any more, lease at its full TTL: nothing to record next time either.
  EXPECT_EQ(lessor_.Renew(1).outcome, Outcome::kRenewed);
  now_ += absl::Seconds(5);
  EXPECT_EQ(lessor_.Renew(1).outcome, Outcome::kRenewed);
  EXPECT_TRUE(lessor_.TakeCheckpoints().empty());
}

TEST_F(LessorTest, RenewAfterCheckpointMustClearIt) {
  PromoteWith(1, {});
  lessor_.OnGranted(1, 30);
  now_ += absl::Seconds(5);
  ASSERT_EQ(lessor_.TakeCheckpoints().size(), 1u);
  Lessor::RenewResult r = lessor_.Renew(1);
  EXPECT_TRUE(r.clear_checkpoint) << "a recorded 25 s would let a new leader expire it early";
  EXPECT_FALSE(lessor_.Renew(1).clear_checkpoint) << "cleared once is enough";
}

TEST_F(LessorTest, PromotionResumesFromCheckpointPlusExtension) {
  // Lease 1 was checkpointed at 7 s left; lease 2 never was (full 20 s).
  PromoteWith(8, {Stored(1, 60, 7), Stored(2, 20, 0)});
  EXPECT_EQ(lessor_.size(), 2u);
  EXPECT_EQ(Remaining(1), 8);  // 7 + one election timeout.
  EXPECT_EQ(Remaining(2), 21);
  now_ += absl::Seconds(8);
  EXPECT_EQ(lessor_.TakeExpired(10), std::vector<int64_t>{1});
  // A loaded checkpoint counts as recorded: renewing lease 2 needs no clear, lease 1's...
  EXPECT_FALSE(lessor_.Renew(2).clear_checkpoint);
}

TEST_F(LessorTest, DemotionForgetsAndRepromotionReloads) {
  PromoteWith(2, {});
  lessor_.OnGranted(1, 10);
  lessor_.Demote();
  EXPECT_FALSE(lessor_.primary());
  EXPECT_EQ(lessor_.primary_term(), 0u);
  EXPECT_EQ(lessor_.size(), 0u);
  EXPECT_EQ(lessor_.Renew(1).outcome, Outcome::kNotPrimary);
  now_ += absl::Seconds(100);
  EXPECT_TRUE(lessor_.TakeExpired(10).empty()) << "a follower expires nothing";
  PromoteWith(5, {Stored(1, 10, 3)});
  EXPECT_EQ(lessor_.primary_term(), 5u);
  EXPECT_EQ(Remaining(1), 4);
}

TEST_F(LessorTest, FailedLoadLeavesAFollower) {
  PromoteWith(1, {Stored(1, 10, 0)});
  absl::Status s = lessor_.Promote(2, []() -> absl::StatusOr<std::vector<internalpb::StoredLease>> {
    return absl::DataLossError("bad lease record");
  });
  EXPECT_TRUE(absl::IsDataLoss(s));
  EXPECT_FALSE(lessor_.primary());
  EXPECT_EQ(lessor_.size(), 0u);
}

TEST_F(LessorTest, FailoverBoundsHoldForACheckpointedLease) {
  // Old leader: granted 30 s at t0, checkpointed at t0+10 s (20 s left), then fails at
  // t0+12 s; the new leader takes office at t0+14 s.
  PromoteWith(1, {});
  lessor_.OnGranted(1, 30);
  const absl::Duration t0 = now_;
  now_ += absl::Seconds(10);
  auto cps = lessor_.TakeCheckpoints();
  ASSERT_EQ(cps.size(), 1u);
  const int64_t recorded = cps[0].remaining_ttl();
  EXPECT_EQ(recorded, 20);
  lessor_.Demote();
  now_ = t0 + absl::Seconds(14);
  PromoteWith(2, {Stored(1, 30, recorded)});
  // Never earlier than the old deadline (t0+30 s), never later than the record + one
  // election timeout after taking office (t0+14+20+1 s).
  now_ = t0 + absl::Seconds(30) - absl::Milliseconds(1);
  EXPECT_TRUE(lessor_.TakeExpired(10).empty());
  now_ = t0 + absl::Seconds(35);
  EXPECT_EQ(lessor_.TakeExpired(10), std::vector<int64_t>{1});
}

TEST(SteadyClockTest, NeverGoesBackwards) {
  MonotonicClock clock = SteadyClock();
  absl::Duration last = clock();
  for (int i = 0; i < 1000; ++i) {
    const absl::Duration now = clock();
    EXPECT_GE(now, last);
    last = now;
  }
}

}  // namespace
}  // namespace keel::server
