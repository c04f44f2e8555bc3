// Raft: the protocol state machine of one node (Raft paper Figure 2, plus pre-vote,
// check-quorum, ReadIndex, leadership transfer, learners and single-server membership
// changes). Internal to raft/: applications use RawNode, which wraps it with the
// Ready/Advance contract. See raft/design.md for the state diagrams and rules.
//
// Pure: no clock (time is Tick), no I/O (output accumulates in msgs_, the log's
// unstable tail and read_states_), no global randomness (rng_ is seeded from Config).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "proto/raft.pb.h"
#include "raft/config.h"
#include "raft/progress_tracker.h"
#include "raft/raft_log.h"
#include "raft/raw_node.h"
#include "raft/read_only.h"

namespace keel::raft {

// Small deterministic PRNG (splitmix64) for election timeouts.
class Rng {
 public:
  explicit Rng(uint64_t seed) : state_(seed) {}
  uint64_t Next();
  // Uniform in [0, n).
  uint64_t Uniform(uint64_t n) { return n == 0 ? 0 : Next() % n; }

 private:
  uint64_t state_;
};

class Raft {
 public:
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<Raft>> Create(const Config& config);

  void Tick();
  // Handles a message (local or from a peer). Errors: see RawNode::Step / Propose.
  [[nodiscard]] absl::Status Step(const raftpb::Message& m);
  raftpb::ConfState ApplyConfChange(const raftpb::ConfChange& change);

  // Called by RawNode::Advance after the caller persisted up to the log's stable index.
  void OnPersisted();
  // Starts a heartbeat round for reads queued since the last Ready (leader only).
  void FlushReadIndex();
  bool HasUnsentReads() const { return read_queue_.HasUnassigned(); }
  // Sends the appends (new entries, a new commit index) batched since the last Ready.
  void FlushBroadcast();
  bool HasPendingBroadcast() const { return broadcast_pending_; }
  // Decrements the uncommitted-bytes budget for entries handed out to apply.
  void ReduceUncommittedSize(const std::vector<raftpb::Entry>& entries);

  // A Ready with committed entries is being carried out (GetReady..Advance).
  void set_applying(bool applying) { applying_ = applying; }
  // The term (and vote) of this hard state are on disk (RawNode::Advance).
  void set_durable_term(uint64_t term) { durable_term_ = term; }

  SoftState GetSoftState() const { return SoftState{lead_, role_}; }
  raftpb::HardState GetHardState() const;
  raftpb::ConfState GetConfState() const { return tracker_.GetConfState(); }

  RaftLog& log() { return log_; }
  const RaftLog& log() const { return log_; }
  std::vector<raftpb::Message>& msgs() { return msgs_; }
  std::vector<raftpb::Message>& msgs_after_persist() { return msgs_after_persist_; }
  std::vector<ReadState>& read_states() { return read_states_; }
  const ProgressTracker& tracker() const { return tracker_; }
  uint64_t id() const { return id_; }
  uint64_t group_id() const { return group_id_; }
  uint64_t lead_transferee() const { return lead_transferee_; }
  const UnsafeInjectedBugs& bugs() const { return bugs_; }

 private:
  enum class CampaignType { kPreElection, kElection, kTransfer };

  explicit Raft(const Config& config);
  [[nodiscard]] absl::Status Init();

  // Role transitions (reset clears per-term state).
  void Reset(uint64_t term);
  void BecomeFollower(uint64_t term, uint64_t lead);
  void BecomePreCandidate();
  void BecomeCandidate();
  void BecomeLeader();
  void ResetRandomizedElectionTimeout();
  bool Promotable() const;

  // Elections (raft_election.cc).
  void TickElection();
  void TickHeartbeat();
  void Hup(CampaignType type);
  void Campaign(CampaignType type);
  VoteResult Poll(uint64_t id, raftpb::MessageType type, bool granted);
  void HandleVoteRequest(const raftpb::Message& m);
  [[nodiscard]] absl::Status StepByTerm(const raftpb::Message& m, bool* drop);
  [[nodiscard]] absl::Status StepLeader(const raftpb::Message& m);
  [[nodiscard]] absl::Status StepCandidate(const raftpb::Message& m);
  [[nodiscard]] absl::Status StepFollower(const raftpb::Message& m);

  // Replication (raft_replication.cc).
  [[nodiscard]] absl::Status AppendProposal(const raftpb::Message& m);
  void AppendEntries(std::vector<raftpb::Entry> entries);
  void SendAppend(uint64_t to);
  bool MaybeSendAppend(uint64_t to, bool send_if_empty);
  bool SendSnapshot(uint64_t to, Progress* pr);
  void BroadcastAppend();
  void BroadcastHeartbeat(const std::string& ctx);
  void SendHeartbeat(uint64_t to, const std::string& ctx);
  bool MaybeCommit();
  void OnCommitAdvanced();
  void HandleAppendEntries(const raftpb::Message& m);
  void HandleAppendResponse(const raftpb::Message& m, Progress* pr);
  void HandleHeartbeat(const raftpb::Message& m);
  void HandleHeartbeatResponse(const raftpb::Message& m, Progress* pr);
  void HandleSnapshot(const raftpb::Message& m);
  bool Restore(const raftpb::Snapshot& snapshot);
  void HandleReadIndex(const raftpb::Message& m);
  void ReleaseReads(std::vector<PendingRead> reads);
  void HandleTransferLeader(const raftpb::Message& m);
  void SendTimeoutNow(uint64_t to);
  void AbortLeaderTransfer() { lead_transferee_ = 0; }
  // A leader removed from the group hands over to the most caught-up voter.
  void TransferAfterSelfRemoval();
  bool CommittedEntryInCurrentTerm() const;
  bool HasUnappliedConfChanges() const;
  [[nodiscard]] absl::Status ValidateConfChange(const raftpb::ConfChange& change) const;

  void Send(raftpb::Message m);

  const uint64_t id_;
  const uint64_t group_id_;
  const int election_timeout_ticks_;
  const int heartbeat_timeout_ticks_;
  const uint64_t max_size_per_msg_bytes_;
  const uint64_t max_uncommitted_entries_bytes_;
  const bool pre_vote_;
  const bool check_quorum_;
  const uint64_t initial_applied_;
  const UnsafeInjectedBugs bugs_;
  LogStorage* storage_;

  // Persistent state (Figure 2), written out through Ready.hard_state.
  uint64_t current_term_ = 0;
  uint64_t voted_for_ = 0;
  uint64_t durable_term_ = 0;  // Term of the last hard state known to be on disk.
  bool applying_ = false;
  RaftLog log_;

  Role role_ = Role::kFollower;
  uint64_t lead_ = 0;
  ProgressTracker tracker_;
  uint64_t lead_transferee_ = 0;
  // Index of the last conf change proposed; another may be proposed once it is applied.
  uint64_t pending_conf_index_ = 0;
  uint64_t uncommitted_bytes_ = 0;
  bool broadcast_pending_ = false;  // Leader: appends to send at the next Ready.
  ReadIndexQueue read_queue_;
  // Reads that arrived before this leader committed an entry of its term.
  std::vector<raftpb::Message> reads_awaiting_term_commit_;
  std::vector<ReadState> read_states_;

  int election_elapsed_ = 0;   // Ticks since last reset (leader: since last quorum check).
  int heartbeat_elapsed_ = 0;  // Leader only.
  int randomized_election_timeout_ = 0;
  Rng rng_;

  std::vector<raftpb::Message> msgs_;                // May be sent before persisting.
  std::vector<raftpb::Message> msgs_after_persist_;  // Only after persisting.
};

}  // namespace keel::raft
