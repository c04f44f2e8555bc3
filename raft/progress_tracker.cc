#include "raft/progress_tracker.h"

#include <algorithm>
#include <functional>
#include <vector>

namespace keel::raft {

void ProgressTracker::Reset(const raftpb::ConfState& conf_state, uint64_t next) {
  voters_.clear();
  learners_.clear();
  progress_.clear();
  votes_.clear();
  for (uint64_t id : conf_state.voters()) AddVoter(id, next);
  for (uint64_t id : conf_state.learners()) AddLearner(id, next);
}

raftpb::ConfState ProgressTracker::GetConfState() const {
  raftpb::ConfState cs;
  for (uint64_t id : voters_) cs.add_voters(id);
  for (uint64_t id : learners_) cs.add_learners(id);
  return cs;
}

void ProgressTracker::AddVoter(uint64_t id, uint64_t next) {
  learners_.erase(id);
  voters_.insert(id);
  auto it = progress_.find(id);
  if (it != progress_.end()) {
    it->second.is_learner = false;
    return;
  }
  auto [pos, _] = progress_.try_emplace(id, next, max_inflight_msgs_, max_inflight_bytes_, false);
  // A new member gets an election timeout's grace before check-quorum counts it absent.
  pos->second.recent_active = true;
}

void ProgressTracker::AddLearner(uint64_t id, uint64_t next) {
  if (voters_.count(id)) return;  // Demotion is not supported.
  learners_.insert(id);
  auto [pos, inserted] =
      progress_.try_emplace(id, next, max_inflight_msgs_, max_inflight_bytes_, true);
  if (inserted) pos->second.recent_active = true;
}

void ProgressTracker::Remove(uint64_t id) {
  voters_.erase(id);
  learners_.erase(id);
  progress_.erase(id);
  votes_.erase(id);
}

Progress* ProgressTracker::Get(uint64_t id) {
  auto it = progress_.find(id);
  return it == progress_.end() ? nullptr : &it->second;
}

uint64_t ProgressTracker::QuorumMatch() const {
  if (voters_.empty()) return 0;
  std::vector<uint64_t> matches;
  matches.reserve(voters_.size());
  for (uint64_t id : voters_) {
    auto it = progress_.find(id);
    matches.push_back(it == progress_.end() ? 0 : it->second.match);
  }
  // The Quorum()-th largest match is held by a quorum.
  std::sort(matches.begin(), matches.end(), std::greater<>());
  return matches[Quorum() - 1];
}

bool ProgressTracker::QuorumActive(uint64_t self) const {
  size_t active = 0;
  for (uint64_t id : voters_) {
    if (id == self) {
      ++active;
      continue;
    }
    auto it = progress_.find(id);
    if (it != progress_.end() && it->second.recent_active) ++active;
  }
  return active >= Quorum();
}

void ProgressTracker::ResetRecentActive(uint64_t self) {
  for (auto& [id, pr] : progress_) pr.recent_active = (id == self);
}

VoteResult ProgressTracker::RecordVote(uint64_t id, bool granted) {
  if (voters_.count(id)) votes_.try_emplace(id, granted);
  return TallyVotes();
}

VoteResult ProgressTracker::TallyVotes() const {
  size_t granted = 0, rejected = 0;
  for (const auto& [id, vote] : votes_) (vote ? granted : rejected)++;
  if (granted >= Quorum()) return VoteResult::kWon;
  if (rejected + Quorum() > voters_.size()) return VoteResult::kLost;
  return VoteResult::kPending;
}

}  // namespace keel::raft
