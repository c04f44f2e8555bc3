// Raft: construction, role transitions, message dispatch and membership.
// Elections live in raft_election.cc, replication and reads in raft_replication.cc.
#include "raft/raft.h"

#include "absl/strings/str_cat.h"
#include "common/check.h"

namespace keel::raft {

uint64_t Rng::Next() {
  uint64_t z = (state_ += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

const char* RoleName(Role role) {
  switch (role) {
    case Role::kFollower:
      return "follower";
    case Role::kPreCandidate:
      return "pre-candidate";
    case Role::kCandidate:
      return "candidate";
    case Role::kLeader:
      return "leader";
  }
  return "?";
}

Raft::Raft(const Config& config)
    : id_(config.id),
      group_id_(config.group_id),
      election_timeout_ticks_(config.election_tick),
      heartbeat_timeout_ticks_(config.heartbeat_tick),
      max_size_per_msg_bytes_(config.max_size_per_msg_bytes),
      max_uncommitted_entries_bytes_(config.max_uncommitted_entries_bytes),
      pre_vote_(config.pre_vote),
      check_quorum_(config.check_quorum),
      initial_applied_(config.applied),
      bugs_(config.unsafe_injected_bugs),
      storage_(config.storage),
      log_(config.storage, config.max_committed_size_per_ready_bytes),
      tracker_(config.max_inflight_msgs, config.max_inflight_bytes),
      rng_(config.random_seed ^ (config.id * 0x2545f4914f6cdd1dULL)) {}

absl::StatusOr<std::unique_ptr<Raft>> Raft::Create(const Config& config) {
  if (config.id == 0) return absl::InvalidArgumentError("raft: node id must not be 0");
  if (config.storage == nullptr) return absl::InvalidArgumentError("raft: storage is required");
  if (config.heartbeat_tick <= 0) {
    return absl::InvalidArgumentError("raft: heartbeat_tick must be positive");
  }
  if (config.election_tick <= config.heartbeat_tick) {
    return absl::InvalidArgumentError("raft: election_tick must exceed heartbeat_tick");
  }
  if (config.max_inflight_msgs <= 0) {
    return absl::InvalidArgumentError("raft: max_inflight_msgs must be positive");
  }
  std::unique_ptr<Raft> raft(new Raft(config));
  absl::Status status = raft->Init();
  if (!status.ok()) return status;
  return raft;
}

absl::Status Raft::Init() {
  absl::Status status = log_.Init();
  if (!status.ok()) return status;
  auto state = storage_->GetInitialState();
  if (!state.ok()) return state.status();
  const raftpb::HardState& hs = state->hard_state;
  if (hs.commit() != 0) {
    if (hs.commit() < log_.committed() || hs.commit() > log_.LastIndex()) {
      return absl::DataLossError(absl::StrCat("raft: stored commit index ", hs.commit(),
                                              " is outside the log [", log_.committed(), ", ",
                                              log_.LastIndex(), "]"));
    }
    log_.set_committed_for_restart(hs.commit());
  }
  current_term_ = hs.term();
  voted_for_ = hs.vote();
  durable_term_ = hs.term();
  tracker_.Reset(state->conf_state, log_.LastIndex() + 1);
  if (initial_applied_ > 0) {
    if (initial_applied_ > log_.committed()) {
      return absl::InvalidArgumentError(absl::StrCat("raft: applied index ", initial_applied_,
                                                     " is beyond the commit index ",
                                                     log_.committed()));
    }
    log_.AppliedTo(initial_applied_);
  }
  BecomeFollower(current_term_, 0);
  return absl::OkStatus();
}

raftpb::HardState Raft::GetHardState() const {
  raftpb::HardState hs;
  hs.set_term(current_term_);
  hs.set_vote(voted_for_);
  hs.set_commit(log_.committed());
  return hs;
}

void Raft::ResetRandomizedElectionTimeout() {
  randomized_election_timeout_ =
      election_timeout_ticks_ + static_cast<int>(rng_.Uniform(election_timeout_ticks_));
}

void Raft::Reset(uint64_t term) {
  if (current_term_ != term) {
    current_term_ = term;
    voted_for_ = 0;
  }
  lead_ = 0;
  election_elapsed_ = 0;
  heartbeat_elapsed_ = 0;
  ResetRandomizedElectionTimeout();
  AbortLeaderTransfer();
  tracker_.ResetVotes();
  const uint64_t next = log_.LastIndex() + 1;
  for (auto& [peer, pr] : tracker_.progress()) {
    pr.ResetForNewTerm(next);
    if (peer == id_) pr.match = log_.StableLastIndex();
  }
  pending_conf_index_ = 0;
  uncommitted_bytes_ = 0;
  broadcast_pending_ = false;
  read_queue_.Reset();
  reads_awaiting_term_commit_.clear();
}

void Raft::BecomeFollower(uint64_t term, uint64_t lead) {
  Reset(term);
  lead_ = lead;
  role_ = Role::kFollower;
}

void Raft::BecomePreCandidate() {
  KEEL_CHECK_MSG(role_ != Role::kLeader, "a leader cannot become a pre-candidate");
  // No term change and no vote: a pre-vote round must not disturb anyone.
  tracker_.ResetVotes();
  lead_ = 0;
  role_ = Role::kPreCandidate;
  ResetRandomizedElectionTimeout();
}

void Raft::BecomeCandidate() {
  KEEL_CHECK_MSG(role_ != Role::kLeader, "a leader cannot become a candidate");
  Reset(current_term_ + 1);
  voted_for_ = id_;
  role_ = Role::kCandidate;
}

void Raft::BecomeLeader() {
  KEEL_CHECK_MSG(role_ == Role::kCandidate, "only a candidate can become leader");
  Reset(current_term_);
  lead_ = id_;
  role_ = Role::kLeader;
  if (Progress* self = tracker_.Get(id_)) self->BecomeReplicate();
  // The no-op commits the previous terms' entries (Raft §5.4.2, §8).
  AppendEntries({raftpb::Entry()});
  // No conf change until the no-op (and so every earlier change) is committed and
  // applied: the fix for the single-server change bug Ongaro described in 2015.
  pending_conf_index_ = log_.LastIndex();
}

bool Raft::Promotable() const {
  return tracker_.IsVoter(id_) && !log_.unstable_snapshot().has_value();
}

void Raft::Send(raftpb::Message m) {
  m.set_group_id(group_id_);
  if (m.type() != raftpb::MSG_TRANSFER_LEADER || m.from() == 0) m.set_from(id_);
  const bool carries_term = m.type() != raftpb::MSG_PROP && m.type() != raftpb::MSG_READ_INDEX &&
                            m.type() != raftpb::MSG_TRANSFER_LEADER;
  const bool is_vote = m.type() == raftpb::MSG_VOTE || m.type() == raftpb::MSG_PRE_VOTE ||
                       m.type() == raftpb::MSG_VOTE_RESP || m.type() == raftpb::MSG_PRE_VOTE_RESP;
  if (carries_term && !is_vote) m.set_term(current_term_);
  // A leader's messages promise nothing about its unpersisted log, but they do carry
  // its term: they may go out before the Ready is persisted only once that term is on
  // disk (a single voter wins and sends within one Ready). Everything else — votes,
  // acks — must wait for the disk.
  if ((role_ == Role::kLeader && durable_term_ == current_term_) || bugs_.send_before_persist) {
    msgs_.push_back(std::move(m));
  } else {
    msgs_after_persist_.push_back(std::move(m));
  }
}

absl::Status Raft::Step(const raftpb::Message& m) {
  if (m.group_id() != group_id_) {
    return absl::InvalidArgumentError(
        absl::StrCat("raft: message for group ", m.group_id(), " sent to group ", group_id_));
  }
  bool drop = false;
  absl::Status status = StepByTerm(m, &drop);
  if (!status.ok() || drop) return status;

  switch (m.type()) {
    case raftpb::MSG_HUP:
      Hup(pre_vote_ ? CampaignType::kPreElection : CampaignType::kElection);
      return absl::OkStatus();
    case raftpb::MSG_VOTE:
    case raftpb::MSG_PRE_VOTE:
      HandleVoteRequest(m);
      return absl::OkStatus();
    default:
      break;
  }
  switch (role_) {
    case Role::kLeader:
      return StepLeader(m);
    case Role::kCandidate:
    case Role::kPreCandidate:
      return StepCandidate(m);
    case Role::kFollower:
      return StepFollower(m);
  }
  return absl::OkStatus();
}

void Raft::OnPersisted() {
  if (role_ != Role::kLeader) return;
  Progress* self = tracker_.Get(id_);
  if (self == nullptr) return;  // Removed from the group.
  if (self->MaybeUpdate(log_.StableLastIndex()) && MaybeCommit()) OnCommitAdvanced();
}

void Raft::FlushBroadcast() {
  if (!broadcast_pending_) return;
  broadcast_pending_ = false;
  if (role_ == Role::kLeader) BroadcastAppend();
}

void Raft::FlushReadIndex() {
  if (role_ != Role::kLeader || !read_queue_.HasUnassigned()) return;
  const uint64_t round = read_queue_.StartRound(log_.committed());
  ReleaseReads(read_queue_.Ack(id_, round, id_, tracker_.voters()));
  if (tracker_.voters().size() > 1) BroadcastHeartbeat(ReadIndexQueue::EncodeRound(round));
}

void Raft::ReduceUncommittedSize(const std::vector<raftpb::Entry>& entries) {
  if (role_ != Role::kLeader) return;
  uint64_t bytes = 0;
  for (const auto& e : entries) bytes += e.data().size();
  uncommitted_bytes_ = bytes >= uncommitted_bytes_ ? 0 : uncommitted_bytes_ - bytes;
}

absl::Status Raft::ValidateConfChange(const raftpb::ConfChange& change) const {
  const uint64_t node = change.node_id();
  if (node == 0) return absl::InvalidArgumentError("raft: conf change for node id 0");
  switch (change.type()) {
    case raftpb::CONF_CHANGE_ADD_NODE:
      if (tracker_.IsVoter(node)) {
        return absl::InvalidArgumentError(absl::StrCat("raft: node ", node, " is already a voter"));
      }
      return absl::OkStatus();
    case raftpb::CONF_CHANGE_ADD_LEARNER:
      if (tracker_.IsVoter(node)) {
        return absl::InvalidArgumentError(
            absl::StrCat("raft: node ", node, " is a voter; demotion is not supported"));
      }
      if (tracker_.IsLearner(node)) {
        return absl::InvalidArgumentError(
            absl::StrCat("raft: node ", node, " is already a learner"));
      }
      return absl::OkStatus();
    case raftpb::CONF_CHANGE_REMOVE_NODE:
      if (!tracker_.IsMember(node)) {
        return absl::InvalidArgumentError(absl::StrCat("raft: node ", node, " is not a member"));
      }
      if (tracker_.IsVoter(node) && tracker_.voters().size() == 1) {
        return absl::InvalidArgumentError("raft: cannot remove the last voter");
      }
      return absl::OkStatus();
    case raftpb::CONF_CHANGE_UPDATE_NODE:
      if (!tracker_.IsMember(node)) {
        return absl::InvalidArgumentError(absl::StrCat("raft: node ", node, " is not a member"));
      }
      return absl::OkStatus();
    default:
      return absl::InvalidArgumentError("raft: unknown conf change type");
  }
}

raftpb::ConfState Raft::ApplyConfChange(const raftpb::ConfChange& change) {
  // Every node applies the same committed changes in the same order, so ignoring an
  // invalid one here is deterministic cluster-wide.
  if (!ValidateConfChange(change).ok()) return tracker_.GetConfState();
  const uint64_t node = change.node_id();
  const uint64_t next = log_.LastIndex() + 1;
  switch (change.type()) {
    case raftpb::CONF_CHANGE_ADD_NODE:
      tracker_.AddVoter(node, next);
      break;
    case raftpb::CONF_CHANGE_ADD_LEARNER:
      tracker_.AddLearner(node, next);
      break;
    case raftpb::CONF_CHANGE_REMOVE_NODE:
      tracker_.Remove(node);
      break;
    default:
      break;
  }
  if (role_ == Role::kLeader) {
    if (lead_transferee_ != 0 && !tracker_.IsVoter(lead_transferee_)) AbortLeaderTransfer();
    // A smaller quorum may commit more right away.
    if (MaybeCommit()) OnCommitAdvanced();
    if (tracker_.IsMember(node) && node != id_) SendAppend(node);
    // A removed leader keeps leading (without counting itself) until a voter takes
    // over: stepping down at once could leave the only node that knows the removal
    // committed — and perhaps the longest log — refusing every candidate.
    if (!tracker_.IsVoter(id_)) TransferAfterSelfRemoval();
  }
  return tracker_.GetConfState();
}

void Raft::TransferAfterSelfRemoval() {
  if (lead_transferee_ != 0) return;
  uint64_t best = 0, best_match = 0;
  for (uint64_t voter : tracker_.voters()) {
    const Progress* pr = tracker_.Get(voter);
    if (pr != nullptr && (best == 0 || pr->match > best_match)) {
      best = voter;
      best_match = pr->match;
    }
  }
  if (best == 0) return;
  raftpb::Message m;
  m.set_type(raftpb::MSG_TRANSFER_LEADER);
  m.set_from(best);
  HandleTransferLeader(m);
}

}  // namespace keel::raft
