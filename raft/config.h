// Config: everything a RawNode is built from. Every option states its default.
#pragma once

#include <cstdint>

#include "raft/log_storage.h"

namespace keel::raft {

// Deliberate protocol bugs, for proving that the simulator catches them. TEST ONLY:
// keeld never sets these; each one breaks a safety rule of Raft.
struct UnsafeInjectedBugs {
  // Commit an entry of an earlier term by counting replicas (violates Raft §5.4.2).
  bool commit_previous_term_by_counting = false;
  // Grant votes without checking that the candidate's log is up to date (§5.4.1).
  bool vote_without_log_check = false;
  // Send every message before the Ready is persisted, followers' acks included.
  bool send_before_persist = false;
  // Leader counts its own entries towards quorum before they are durable (and the
  // caller is told it may send everything first), so a crashed leader loses them.
  bool leader_counts_unpersisted_self = false;
};

struct Config {
  // This node's id; 0 is not a valid id (it means "none").
  uint64_t id = 0;
  // The Raft group this node belongs to; stamped on every outgoing message.
  uint64_t group_id = 0;

  // Ticks without hearing from a leader before a follower campaigns. The actual timeout
  // is drawn uniformly from [election_tick, 2 * election_tick). Must exceed heartbeat_tick.
  int election_tick = 10;
  // Ticks between leader heartbeats.
  int heartbeat_tick = 1;

  // The log; not owned, must outlive the node.
  LogStorage* storage = nullptr;

  // Last index the application had applied when it started; committed entries at or
  // below it are not handed out again. 0 means "replay from the snapshot". Conf changes
  // reach raft only when handed out (ApplyConfChange), and storage reports membership as
  // of its snapshot, so pass at most the snapshot index unless storage's ConfState is
  // current up to `applied`; a state machine that remembers its applied index simply
  // skips the replayed entries it already has.
  uint64_t applied = 0;

  // Upper bound on the bytes of entries in one MsgApp (at least one entry is sent).
  uint64_t max_size_per_msg_bytes = 1 << 20;
  // Upper bound on the bytes of committed entries handed out in one Ready.
  uint64_t max_committed_size_per_ready_bytes = 64 << 20;
  // Pipelining window per follower in Replicate state: messages in flight...
  int max_inflight_msgs = 256;
  // ...and bytes of entries in flight (0 = no byte bound).
  uint64_t max_inflight_bytes = 0;
  // Bytes of proposed but uncommitted entries the leader accepts before refusing new
  // proposals with kResourceExhausted (0 = no bound).
  uint64_t max_uncommitted_entries_bytes = 0;

  // Pre-vote (Raft thesis §9.6): a candidate first asks whether it could win, without
  // raising its term, so a partitioned node cannot disrupt a healthy leader on return.
  bool pre_vote = true;
  // Check-quorum: a leader that has not heard from a quorum within an election timeout
  // steps down, and followers that heard from a leader recently ignore vote requests.
  bool check_quorum = true;

  // Seed for the election-timeout randomisation; the only randomness in raft/.
  uint64_t random_seed = 1;

  UnsafeInjectedBugs unsafe_injected_bugs;
};

}  // namespace keel::raft
