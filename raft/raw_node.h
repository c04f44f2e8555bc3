// RawNode: the consensus core of one Raft group, as a pure state machine.
//
// No threads, no I/O, no clock, no global randomness: the caller feeds inputs
// (Tick, Step, Propose, ...), then collects one Ready, carries it out in the order the
// Ready documents, and calls Advance. This is the design of etcd's raft library, and it
// is what lets tests/sim/ drive many nodes deterministically from one seed.
//
// Thread-safety: none. One thread (the node loop) owns a RawNode.
// Ownership: the LogStorage in Config is borrowed and must outlive the RawNode.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "proto/raft.pb.h"
#include "raft/config.h"

namespace keel::raft {

class Raft;

enum class Role { kFollower, kPreCandidate, kCandidate, kLeader };
const char* RoleName(Role role);

// Volatile state the application may want to show or act on (who leads).
struct SoftState {
  uint64_t leader_id = 0;  // 0: no known leader.
  Role role = Role::kFollower;
  bool operator==(const SoftState&) const = default;
};

// A linearizable read point: once the application has applied up to `index`, a read
// of its state machine answers the ReadIndex request identified by `request_ctx`.
struct ReadState {
  uint64_t index = 0;
  std::string request_ctx;
};

// One batch of work for the application. Carry it out in this order:
//  1. Send `messages` — they may go out at once, in parallel with step 2 (they are the
//     leader's appends and heartbeats; the leader counts its own log entry only after
//     Advance reports it durable, Raft thesis §10.2.1).
//  2. Persist `snapshot` (if any), then `entries`, then `hard_state`, atomically and
//     durably (one synced write) when `must_sync` is true. Entries replace any stored
//     entries at the same or higher indices.
//  3. Only then send `messages_after_persist` (votes, append acks: they promise that the
//     state above is on disk).
//  4. Apply `snapshot` to the state machine (if any), then `committed_entries` in order.
//     For an ENTRY_CONF_CHANGE entry call RawNode::ApplyConfChange before Advance.
//     Other entries may be applied on another thread after Advance, in order.
//  5. Release `read_states` once applied >= their index.
//  6. Call Advance().
struct Ready {
  std::optional<SoftState> soft_state;          // Set when it changed.
  std::optional<raftpb::HardState> hard_state;  // Set when it changed; persist it.
  std::vector<ReadState> read_states;
  std::vector<raftpb::Entry> entries;                   // New log entries to persist.
  std::optional<raftpb::Snapshot> snapshot;             // A snapshot received from the leader.
  std::vector<raftpb::Entry> committed_entries;         // Durable and committed: apply them.
  std::vector<raftpb::Message> messages;                // Send now (see 1).
  std::vector<raftpb::Message> messages_after_persist;  // Send after persisting (see 3).
  bool must_sync = false;                               // The persistence in step 2 needs an fsync.
};

// Replication progress of one peer, as the leader sees it.
struct PeerStatus {
  uint64_t match = 0;
  uint64_t next = 0;
  const char* state = "";  // "probe", "replicate" or "snapshot".
  bool is_learner = false;
  bool recent_active = false;
};

struct Status {
  uint64_t id = 0;
  uint64_t group_id = 0;
  raftpb::HardState hard_state;
  SoftState soft_state;
  uint64_t applied = 0;
  uint64_t last_index = 0;
  uint64_t lead_transferee = 0;
  raftpb::ConfState conf_state;
  std::map<uint64_t, PeerStatus> progress;  // Leader only.
};

class RawNode {
 public:
  // Builds a node from its storage. Errors: kInvalidArgument for a bad config, storage
  // errors as returned (kDataLoss on corruption).
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<RawNode>> Create(const Config& config);
  ~RawNode();
  RawNode(const RawNode&) = delete;
  RawNode& operator=(const RawNode&) = delete;

  // Advances the logical clock by one tick (election timeout and heartbeats count ticks).
  void Tick();

  // Starts an election now (pre-vote first when enabled).
  [[nodiscard]] absl::Status Campaign();

  // Proposes data to be appended. A follower forwards it to the leader. Errors:
  // kUnavailable when there is no leader or a leadership transfer is in progress
  // (retry elsewhere or later), kResourceExhausted when too many uncommitted bytes.
  // OK means accepted for replication, not committed: watch committed entries.
  [[nodiscard]] absl::Status Propose(std::string data);

  // Proposes a membership change (single-server; one in flight at a time). Errors as
  // Propose, plus kFailedPrecondition when another change is pending, and
  // kInvalidArgument for a change that makes no sense (adding an existing voter,
  // removing a non-member, demoting a voter, removing the last voter).
  [[nodiscard]] absl::Status ProposeConfChange(const raftpb::ConfChange& change);

  // Applies a committed conf change entry (call it from the apply stage, in log order)
  // and returns the new membership. Changes that are invalid at this point are ignored
  // the same way on every node.
  raftpb::ConfState ApplyConfChange(const raftpb::ConfChange& change);

  // Delivers a message from a peer. Errors: kInvalidArgument for a local-only message
  // type or a message for another group; messages from unknown peers are ignored. A
  // proposal forwarded by a follower (MSG_PROP) returns what Propose would (kUnavailable,
  // kResourceExhausted, kFailedPrecondition): the proposal was dropped, nothing else.
  [[nodiscard]] absl::Status Step(const raftpb::Message& message);

  // Requests a linearizable read point; the answer comes back as a ReadState carrying
  // `request_ctx` (which should be unique). All requests made before the next Ready
  // share one heartbeat round. Requests that cannot be served (no leader) are dropped:
  // the caller times out and retries.
  void ReadIndex(std::string request_ctx);

  // Asks the leader to hand leadership to `transferee`.
  void TransferLeader(uint64_t transferee);

  // The transport could not deliver to `id`: probe it again later.
  void ReportUnreachable(uint64_t id);
  // A snapshot send to `id` finished (`ok` false: failed, retry later).
  void ReportSnapshot(uint64_t id, bool ok);

  [[nodiscard]] bool HasReady() const;
  // Takes the pending work. Call Advance before the next GetReady.
  [[nodiscard]] Ready GetReady();
  // Tells the node the last Ready was carried out (persisted, sent, handed to apply).
  void Advance();

  [[nodiscard]] Status GetStatus() const;
  [[nodiscard]] uint64_t id() const;

 private:
  explicit RawNode(std::unique_ptr<Raft> raft);
  std::unique_ptr<Raft> raft_;
  SoftState prev_soft_state_;
  raftpb::HardState prev_hard_state_;
  // What the Ready in the caller's hands covers, to acknowledge on Advance.
  bool ready_in_flight_ = false;
  uint64_t ready_last_entry_index_ = 0;
  uint64_t ready_last_entry_term_ = 0;
  uint64_t ready_snapshot_index_ = 0;
  uint64_t ready_last_committed_index_ = 0;
  uint64_t ready_hard_state_term_ = 0;
};

}  // namespace keel::raft
