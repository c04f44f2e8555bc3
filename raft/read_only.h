// ReadIndexQueue: the leader's bookkeeping for linearizable reads (Raft thesis §6.4).
//
// A read request records the commit index; the leader then proves it is still leader
// with one heartbeat round; once a quorum answered that round, every request assigned
// to it (or an earlier round) may be served at its recorded index. Requests that arrive
// between two Readies share one round, so a burst of reads costs one heartbeat each
// way, not one per read.
//
// Rounds are numbered from 1 and travel in the heartbeat context as 8 big-endian bytes.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace keel::raft {

struct PendingRead {
  uint64_t from = 0;        // Node that asked (the leader itself for local reads).
  std::string request_ctx;  // The caller's id for the read.
  uint64_t index = 0;       // Commit index recorded for it.
  uint64_t round = 0;       // Heartbeat round confirming it (0: not yet assigned).
};

class ReadIndexQueue {
 public:
  // Queues a read that waits for the next round.
  void Add(uint64_t from, std::string request_ctx);
  bool HasUnassigned() const { return !unassigned_.empty(); }
  // Starts a round for all unassigned reads at `commit_index`; returns the round.
  uint64_t StartRound(uint64_t commit_index);
  // The newest round still waiting for acks (0 if none).
  uint64_t LatestPendingRound() const;
  // Records that `peer` acknowledged `round`; returns the reads that became servable,
  // given the voters (which include self, who acks every round it starts).
  std::vector<PendingRead> Ack(uint64_t peer, uint64_t round, uint64_t self,
                               const std::set<uint64_t>& voters);
  // Drops everything (on losing leadership); the callers time out and retry.
  void Reset();

  static std::string EncodeRound(uint64_t round);
  static std::optional<uint64_t> DecodeRound(const std::string& ctx);

 private:
  std::deque<PendingRead> unassigned_;
  std::deque<PendingRead> waiting_;           // Ordered by round.
  std::map<uint64_t, uint64_t> acked_round_;  // Highest round each peer acked.
  uint64_t last_round_ = 0;
};

}  // namespace keel::raft
