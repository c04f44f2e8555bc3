// SimNode: one simulated keel node: a RawNode, its "disk" (a MemoryStorage that survives
// crashes), its state machine, and the Ready it is carrying out.
//
// A Ready is carried out in two halves so that crashes can fall between them, as in a
// real node whose disk write is slow:
//  - BeginReady takes the Ready and sends `messages` (which raw_node.h allows before the
//    write); the write is then in flight for a random number of ticks, during which the
//    node keeps receiving messages and ticks (the leader's parallel write of thesis
//    §10.2.1).
//  - CompleteWrite persists snapshot, entries and hard state, then sends
//    `messages_after_persist`, applies, releases reads and calls Advance.
// A crash (Crash) drops everything but the MemoryStorage; Start rebuilds the node from it.
//
// Thread-safety: none. Ownership: the node owns its storage and RawNode; the NodeEnv
// passed to each call is borrowed for that call.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "proto/raft.pb.h"
#include "raft/config.h"
#include "raft/memory_storage.h"
#include "raft/raw_node.h"
#include "tests/sim/checker.h"
#include "tests/sim/rng.h"
#include "tests/sim/state_machine.h"

namespace keel::sim {

// Per-seed knobs that a node consults while carrying out a Ready.
struct NodeFaults {
  uint64_t disk_latency_ticks_max = 0;   // 0: writes complete within the step.
  double crash_after_send = 0;           // Per Ready with a write: crash after `messages` went out.
  double crash_after_persist = 0;        // Per write: crash before `messages_after_persist`.
  uint64_t snapshot_every_entries = 50;  // Applied entries between two snapshots.
  uint64_t compact_keep_entries_max = 5;  // Entries kept below a snapshot when compacting.
};

// What a node needs from the simulator around it.
class NodeEnv {
 public:
  virtual ~NodeEnv() = default;
  virtual void Send(uint64_t sender_incarnation, const raftpb::Message& message) = 0;
  virtual Checker& checker() = 0;
  virtual Rng& rng() = 0;
  virtual uint64_t now_tick() const = 0;
  virtual const NodeFaults& node_faults() const = 0;
  virtual bool verbose() const = 0;
  virtual void Trace(const std::string& line) = 0;
};

class SimNode {
 public:
  // A bootstrap node gets the initial membership written into its log (raft/bootstrap.h);
  // a node added later starts empty and learns the membership from the leader.
  SimNode(uint64_t id, const std::vector<uint64_t>& bootstrap_voters);

  // (Re)starts the node from its storage: a new RawNode with applied = snapshot index,
  // and the state machine restored from the snapshot data.
  [[nodiscard]] absl::Status Start(raft::Config config, NodeEnv& env);
  // Loses everything that is not in storage.
  void Crash(NodeEnv& env);

  // Takes a Ready and sends its `messages`; may crash (crash_after_send) or complete the
  // write at once (zero disk latency).
  [[nodiscard]] absl::Status BeginReady(NodeEnv& env);
  // Carries out the rest of the in-flight Ready (see the file comment).
  [[nodiscard]] absl::Status CompleteWrite(NodeEnv& env);

  uint64_t id() const { return id_; }
  bool up() const { return raw_ != nullptr; }
  raft::RawNode* raw() { return raw_.get(); }
  const raft::MemoryStorage& storage() const { return storage_; }
  bool write_in_flight() const { return in_flight_.has_value(); }
  uint64_t write_due_tick() const { return write_due_tick_; }
  // The durable log only (what survives a crash).
  LogView DurableView() const { return LogView{&storage_}; }

  raft::Role role() const { return role_; }
  uint64_t term() const { return term_; }
  uint64_t leader_id() const { return leader_id_; }
  uint64_t incarnation() const { return incarnation_; }
  const StateMachine& state() const { return state_; }
  // Membership as this node has applied it.
  const raftpb::ConfState& conf() const { return conf_; }

  // Simulator bookkeeping.
  uint64_t down_until_tick = 0;
  uint64_t crash_at_tick = 0;        // A scheduled crash (0: none).
  uint64_t leader_term_handled = 0;  // Last term in which a leader crash was considered.
  uint64_t applied_seen = 0;         // Applied index at the end of the previous step.
  uint64_t created_tick = 0;
  bool joined = false;   // Has been a member in the history's membership.
  bool removed = false;  // Removed from the group for good; never restarts.

 private:
  [[nodiscard]] absl::Status Persist(NodeEnv& env, raft::Ready& ready);
  [[nodiscard]] absl::Status Apply(NodeEnv& env, raft::Ready& ready);
  [[nodiscard]] absl::Status ReleaseReads(NodeEnv& env);
  [[nodiscard]] absl::Status MaybeSnapshot(NodeEnv& env);

  const uint64_t id_;
  raft::MemoryStorage storage_;
  std::unique_ptr<raft::RawNode> raw_;
  uint64_t incarnation_ = 0;

  // Volatile state, rebuilt by Start.
  StateMachine state_;
  raftpb::ConfState conf_;
  raft::Role role_ = raft::Role::kFollower;
  uint64_t term_ = 0;
  uint64_t leader_id_ = 0;
  std::optional<raft::Ready> in_flight_;
  uint64_t write_due_tick_ = 0;
  std::vector<raft::ReadState> pending_reads_;
};

// One line describing a message, for traces.
std::string DescribeMessage(const raftpb::Message& m);

}  // namespace keel::sim
