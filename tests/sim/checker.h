// Checker: the safety properties of Raft, checked against everything the simulator sees.
//
// The simulator reports each event as it happens (a node became leader, persisted
// entries, applied an entry, answered a read) and asks for the durability check after
// every step; each call returns OK or an error whose message names the violated
// property. The checker keeps the one global history: the sequence of entries that
// some node applied (an entry applied anywhere is committed), with its hash chain.
//
// Properties:
//  - Election safety: at most one leader per term, over the whole run. A leadership
//    counts from when it could have had an effect: once its term is on the leader's
//    disk or it has sent a message as leader. A lone voter wins its election within one
//    Ready, before its new term and self-vote are persisted; if it crashes before that
//    write it restarts in the old term, its leadership gone without a trace (it sent
//    nothing: raft holds a leader's messages until its term is durable), and its
//    forgotten vote may elect another node in that term. Two leaders of one term alive
//    at once are a violation either way.
//  - Leader completeness: a new leader's log holds every entry committed so far.
//  - Log matching: two logs with an entry of the same index and term agree on that entry
//    and on the term of the entry before it (so, by induction, on the whole prefix).
//  - State machine safety: every node's applied sequence is a prefix of the history; all
//    nodes that apply a conf change reach the same membership.
//  - Durability (no committed entry lost, crashes included): the durable logs of the
//    current voters hold the whole history on enough voters to meet every quorum.
//  - Linearizable reads: a ReadIndex read sees every write committed before it began.
//
// Thread-safety: none. The checker borrows nothing beyond the duration of a call.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "proto/raft.pb.h"
#include "raft/memory_storage.h"
#include "tests/sim/state_machine.h"

namespace keel::sim {

// One node's log as the checker reads it: the durable storage, overlaid with a Ready
// that is not persisted yet (its snapshot replaces the log, its entries replace the
// suffix from their first index).
struct LogView {
  const raft::MemoryStorage* storage = nullptr;
  const raftpb::Snapshot* pending_snapshot = nullptr;
  const std::vector<raftpb::Entry>* pending_entries = nullptr;

  uint64_t SnapshotIndex() const;
  uint64_t LastIndex() const;
  // The term at i, or nullopt when i is compacted away or beyond the log.
  std::optional<uint64_t> Term(uint64_t i) const;
};

class Checker {
 public:
  explicit Checker(const std::vector<uint64_t>& initial_voters);

  // `id` is leader of `term`; `log` is its log at that moment (election time).
  [[nodiscard]] absl::Status OnLeader(uint64_t id, uint64_t term, const LogView& log);
  // `id`, leader of `term`, persisted a Ready (so its term is durable) or sends a message.
  void OnLeaderActs(uint64_t id, uint64_t term);
  // `id` crashed: its leaderships that never acted are forgotten (see election safety).
  void OnCrash(uint64_t id);
  // `id` persists `entries`; `prev_term` is the term of the entry before them if known.
  [[nodiscard]] absl::Status OnPersist(uint64_t id, std::optional<uint64_t> prev_term,
                                       const std::vector<raftpb::Entry>& entries);
  // `id` applied `entry`, reaching `state`; `conf` is the membership after it for a conf
  // change entry.
  [[nodiscard]] absl::Status OnApply(uint64_t id, const raftpb::Entry& entry,
                                     const StateMachine& state, const raftpb::ConfState* conf);
  // `id` replaced its state machine by a snapshot's (installed, or restored on restart).
  [[nodiscard]] absl::Status OnRestore(uint64_t id, const StateMachine& state,
                                       const raftpb::ConfState& conf);
  // A client issues the ReadIndex request `ctx` now.
  void OnReadStart(const std::string& ctx);
  // `id` answers `ctx` at read index `read_index` from `state`.
  [[nodiscard]] absl::Status OnRead(uint64_t id, const std::string& ctx, uint64_t read_index,
                                    const StateMachine& state);
  // The durable logs of all nodes that still have storage (crashed ones included).
  [[nodiscard]] absl::Status CheckDurability(const std::map<uint64_t, LogView>& durable) const;

  // The highest index such that `log` holds the history up to it.
  uint64_t Coverage(const LogView& log) const;

  uint64_t committed_index() const { return history_.size() - 1; }
  size_t leaders_elected() const { return leader_of_term_.size(); }
  // Membership after the last conf change in the history.
  const raftpb::ConfState& config() const { return config_at_.rbegin()->second; }
  // History index of the last conf change (0: the initial membership).
  uint64_t config_index() const { return config_at_.rbegin()->first; }
  // Index at which `payload` was first applied, if it was.
  std::optional<uint64_t> IndexOfPayload(const std::string& payload) const;
  // Term of history entry i (1 <= i <= committed_index()).
  uint64_t TermAt(uint64_t i) const { return history_[i].term; }

 private:
  struct HistoryEntry {
    uint64_t term = 0;
    uint64_t entry_hash = 0;
    uint64_t chain_hash = 0;
  };
  const raftpb::ConfState& ConfigAt(uint64_t index) const;

  std::vector<HistoryEntry> history_;                // [0] is the empty prefix.
  std::map<uint64_t, raftpb::ConfState> config_at_;  // History index -> membership after.
  struct TermLeader {
    uint64_t id = 0;
    bool acted = false;  // Its term reached its disk, or it sent a message as leader.
  };
  std::map<uint64_t, TermLeader> leader_of_term_;
  struct SeenEntry {
    std::optional<uint64_t> prev_term;
    uint64_t entry_hash = 0;
    uint64_t first_writer = 0;
  };
  std::map<std::pair<uint64_t, uint64_t>, SeenEntry> seen_;  // (index, term) -> entry.
  std::map<std::string, uint64_t> read_start_committed_;
  std::map<std::string, uint64_t> payload_index_;
};

}  // namespace keel::sim
