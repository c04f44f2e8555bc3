// ProgressTracker: the membership of a group (voters and learners), the leader's
// Progress for each member, and the votes of an election. Quorum means a majority of
// voters; learners are tracked but never counted.
//
// Containers are ordered so that iteration order (and so message order) is
// deterministic.
#pragma once

#include <cstdint>
#include <map>
#include <set>

#include "proto/raft.pb.h"
#include "raft/progress.h"

namespace keel::raft {

enum class VoteResult { kPending, kWon, kLost };

class ProgressTracker {
 public:
  ProgressTracker(int max_inflight_msgs, uint64_t max_inflight_bytes)
      : max_inflight_msgs_(max_inflight_msgs), max_inflight_bytes_(max_inflight_bytes) {}

  // Replaces the membership (e.g. from a snapshot); progress starts at `next`.
  void Reset(const raftpb::ConfState& conf_state, uint64_t next);
  raftpb::ConfState GetConfState() const;

  void AddVoter(uint64_t id, uint64_t next);  // Adds, or promotes a learner.
  void AddLearner(uint64_t id, uint64_t next);
  void Remove(uint64_t id);

  bool IsVoter(uint64_t id) const { return voters_.count(id) > 0; }
  bool IsLearner(uint64_t id) const { return learners_.count(id) > 0; }
  bool IsMember(uint64_t id) const { return IsVoter(id) || IsLearner(id); }
  const std::set<uint64_t>& voters() const { return voters_; }
  size_t Quorum() const { return voters_.size() / 2 + 1; }

  Progress* Get(uint64_t id);
  std::map<uint64_t, Progress>& progress() { return progress_; }
  const std::map<uint64_t, Progress>& progress() const { return progress_; }

  // The highest index matched by a quorum of voters (0 with no voters).
  uint64_t QuorumMatch() const;
  // True when a quorum of voters has been recently active (`self` always counts).
  bool QuorumActive(uint64_t self) const;
  void ResetRecentActive(uint64_t self);

  void ResetVotes() { votes_.clear(); }
  // Records a vote (the first from each voter counts) and tallies.
  VoteResult RecordVote(uint64_t id, bool granted);
  VoteResult TallyVotes() const;

 private:
  int max_inflight_msgs_;
  uint64_t max_inflight_bytes_;
  std::set<uint64_t> voters_;
  std::set<uint64_t> learners_;
  std::map<uint64_t, Progress> progress_;
  std::map<uint64_t, bool> votes_;
};

}  // namespace keel::raft
