#include "raft/read_only.h"

#include <algorithm>
#include <functional>

namespace keel::raft {

void ReadIndexQueue::Add(uint64_t from, std::string request_ctx) {
  unassigned_.push_back(PendingRead{from, std::move(request_ctx), 0, 0});
}

uint64_t ReadIndexQueue::StartRound(uint64_t commit_index) {
  const uint64_t round = ++last_round_;
  for (auto& read : unassigned_) {
    read.index = commit_index;
    read.round = round;
    waiting_.push_back(std::move(read));
  }
  unassigned_.clear();
  return round;
}

uint64_t ReadIndexQueue::LatestPendingRound() const {
  return waiting_.empty() ? 0 : waiting_.back().round;
}

std::vector<PendingRead> ReadIndexQueue::Ack(uint64_t peer, uint64_t round, uint64_t self,
                                             const std::set<uint64_t>& voters) {
  std::vector<PendingRead> ready;
  if (waiting_.empty() || round == 0 || round > last_round_) return ready;
  uint64_t& acked = acked_round_[peer];
  acked = std::max(acked, round);
  // The highest round acknowledged by a quorum of voters.
  std::vector<uint64_t> rounds;
  for (uint64_t id : voters) {
    if (id == self) {
      rounds.push_back(last_round_);
    } else {
      auto it = acked_round_.find(id);
      rounds.push_back(it == acked_round_.end() ? 0 : it->second);
    }
  }
  if (rounds.empty()) return ready;
  std::sort(rounds.begin(), rounds.end(), std::greater<>());
  const uint64_t confirmed = rounds[voters.size() / 2];
  while (!waiting_.empty() && waiting_.front().round <= confirmed) {
    ready.push_back(std::move(waiting_.front()));
    waiting_.pop_front();
  }
  return ready;
}

void ReadIndexQueue::Reset() {
  unassigned_.clear();
  waiting_.clear();
  acked_round_.clear();
}

std::string ReadIndexQueue::EncodeRound(uint64_t round) {
  std::string out(8, '\0');
  for (int i = 7; i >= 0; --i) {
    out[i] = static_cast<char>(round & 0xff);
    round >>= 8;
  }
  return out;
}

std::optional<uint64_t> ReadIndexQueue::DecodeRound(const std::string& ctx) {
  if (ctx.size() != 8) return std::nullopt;
  uint64_t round = 0;
  for (unsigned char c : ctx) round = (round << 8) | c;
  return round;
}

}  // namespace keel::raft
