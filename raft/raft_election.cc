// Raft: timers, elections (with pre-vote and check-quorum) and the term rules every
// message passes through first.
#include "common/check.h"
#include "raft/raft.h"

namespace keel::raft {
namespace {

// Marks a vote request sent because of a leadership transfer: it may interrupt a
// healthy leader's lease.
constexpr char kCampaignTransfer[] = "transfer";

raftpb::MessageType VoteResponseType(raftpb::MessageType request) {
  return request == raftpb::MSG_PRE_VOTE ? raftpb::MSG_PRE_VOTE_RESP : raftpb::MSG_VOTE_RESP;
}

}  // namespace

void Raft::Tick() {
  if (role_ == Role::kLeader) {
    TickHeartbeat();
  } else {
    TickElection();
  }
}

void Raft::TickElection() {
  ++election_elapsed_;
  if (Promotable() && election_elapsed_ >= randomized_election_timeout_) {
    election_elapsed_ = 0;
    raftpb::Message hup;
    hup.set_type(raftpb::MSG_HUP);
    hup.set_group_id(group_id_);
    (void)Step(hup);
  }
}

void Raft::TickHeartbeat() {
  ++heartbeat_elapsed_;
  ++election_elapsed_;
  if (election_elapsed_ >= election_timeout_ticks_) {
    election_elapsed_ = 0;
    // A leader removed from the group stays until a voter takes over (or a higher term
    // deposes it): it may be the only node able to tell the others that its removal
    // committed. It cannot commit or serve anything on its own, so staying is safe.
    if (check_quorum_ && tracker_.IsVoter(id_)) {
      if (!tracker_.QuorumActive(id_)) {
        // Cannot reach a quorum: another leader may exist; stop serving (check-quorum).
        BecomeFollower(current_term_, 0);
        return;
      }
      tracker_.ResetRecentActive(id_);
    }
    // The transfer target did not take over within an election timeout.
    if (lead_transferee_ != 0) AbortLeaderTransfer();
    // Removed from the group: keep trying to hand over.
    if (!tracker_.IsVoter(id_)) TransferAfterSelfRemoval();
  }
  if (role_ != Role::kLeader) return;
  if (heartbeat_elapsed_ >= heartbeat_timeout_ticks_) {
    heartbeat_elapsed_ = 0;
    const uint64_t round = read_queue_.LatestPendingRound();
    BroadcastHeartbeat(round == 0 ? std::string() : ReadIndexQueue::EncodeRound(round));
  }
}

bool Raft::HasUnappliedConfChanges() const {
  if (log_.committed() <= log_.applied()) return false;
  // Scan committed but unapplied entries in pages (they are few in practice).
  uint64_t lo = log_.applied() + 1;
  const uint64_t hi = log_.committed() + 1;
  while (lo < hi) {
    auto entries = log_.Slice(lo, hi, max_size_per_msg_bytes_);
    if (!entries.ok() || entries->empty()) return true;  // Unknown: be conservative.
    for (const auto& e : *entries) {
      if (e.type() == raftpb::ENTRY_CONF_CHANGE) return true;
    }
    lo = entries->back().index() + 1;
  }
  return false;
}

void Raft::Hup(CampaignType type) {
  if (role_ == Role::kLeader || !Promotable()) return;
  // A committed membership change not yet applied may remove this node or change the
  // quorum; campaigning before applying it could count the wrong votes.
  if (HasUnappliedConfChanges()) return;
  Campaign(type);
}

void Raft::Campaign(CampaignType type) {
  uint64_t term;
  raftpb::MessageType vote_type;
  if (type == CampaignType::kPreElection) {
    BecomePreCandidate();
    vote_type = raftpb::MSG_PRE_VOTE;
    term = current_term_ + 1;  // The term we would campaign in; ours stays put.
  } else {
    BecomeCandidate();
    vote_type = raftpb::MSG_VOTE;
    term = current_term_;
  }
  if (Poll(id_, VoteResponseType(vote_type), true) == VoteResult::kWon) {
    // Single voter: no one else to ask.
    if (type == CampaignType::kPreElection) {
      Campaign(CampaignType::kElection);
    } else {
      BecomeLeader();
    }
    return;
  }
  for (uint64_t voter : tracker_.voters()) {
    if (voter == id_) continue;
    raftpb::Message m;
    m.set_type(vote_type);
    m.set_to(voter);
    m.set_term(term);
    m.set_index(log_.LastIndex());
    m.set_log_term(log_.LastTerm());
    if (type == CampaignType::kTransfer) m.set_context(kCampaignTransfer);
    Send(std::move(m));
  }
}

VoteResult Raft::Poll(uint64_t id, raftpb::MessageType type, bool granted) {
  return tracker_.RecordVote(id, granted);
}

void Raft::HandleVoteRequest(const raftpb::Message& m) {
  // One vote per term (Figure 2); a pre-vote for a future term binds nothing.
  const bool can_vote = voted_for_ == m.from() || (voted_for_ == 0 && lead_ == 0) ||
                        (m.type() == raftpb::MSG_PRE_VOTE && m.term() > current_term_);
  const bool up_to_date = bugs_.vote_without_log_check || log_.IsUpToDate(m.index(), m.log_term());
  raftpb::Message resp;
  resp.set_type(VoteResponseType(m.type()));
  resp.set_to(m.from());
  if (can_vote && up_to_date) {
    // Answer in the request's term: for a pre-vote, our own term has not changed.
    resp.set_term(m.term());
    if (m.type() == raftpb::MSG_VOTE) {
      election_elapsed_ = 0;
      voted_for_ = m.from();
    }
  } else {
    resp.set_term(current_term_);
    resp.set_reject(true);
  }
  Send(std::move(resp));
}

absl::Status Raft::StepByTerm(const raftpb::Message& m, bool* drop) {
  *drop = false;
  if (m.term() == 0) return absl::OkStatus();  // Local message or forwarded request.
  if (m.term() > current_term_) {
    const bool is_vote_request = m.type() == raftpb::MSG_VOTE || m.type() == raftpb::MSG_PRE_VOTE;
    if (is_vote_request) {
      const bool forced = m.context() == kCampaignTransfer;
      const bool in_lease =
          check_quorum_ && lead_ != 0 && election_elapsed_ < election_timeout_ticks_;
      if (!forced && in_lease) {
        // We heard from a leader within the minimum election timeout: a vote now could
        // only disrupt it (the node asking is probably partitioned and behind).
        *drop = true;
        return absl::OkStatus();
      }
    }
    if (m.type() == raftpb::MSG_PRE_VOTE) {
      // Never change term because of a pre-vote.
    } else if (m.type() == raftpb::MSG_PRE_VOTE_RESP && !m.reject()) {
      // A granted pre-vote carries the future term; the real election will raise ours.
    } else if (m.type() == raftpb::MSG_APP || m.type() == raftpb::MSG_HEARTBEAT ||
               m.type() == raftpb::MSG_SNAP) {
      BecomeFollower(m.term(), m.from());
    } else {
      BecomeFollower(m.term(), 0);
    }
    return absl::OkStatus();
  }
  if (m.term() < current_term_) {
    *drop = true;
    if ((check_quorum_ || pre_vote_) &&
        (m.type() == raftpb::MSG_HEARTBEAT || m.type() == raftpb::MSG_APP)) {
      // A stale leader (e.g. back from a partition): tell it our term so it steps down;
      // without this it could keep a pre-voting follower from ever winning.
      raftpb::Message resp;
      resp.set_type(raftpb::MSG_APP_RESP);
      resp.set_to(m.from());
      Send(std::move(resp));
    } else if (m.type() == raftpb::MSG_PRE_VOTE) {
      raftpb::Message resp;
      resp.set_type(raftpb::MSG_PRE_VOTE_RESP);
      resp.set_to(m.from());
      resp.set_term(current_term_);
      resp.set_reject(true);
      Send(std::move(resp));
    }
    // Everything else from an old term is ignored.
  }
  return absl::OkStatus();
}

absl::Status Raft::StepCandidate(const raftpb::Message& m) {
  const raftpb::MessageType my_response =
      role_ == Role::kPreCandidate ? raftpb::MSG_PRE_VOTE_RESP : raftpb::MSG_VOTE_RESP;
  switch (m.type()) {
    case raftpb::MSG_PROP:
      return absl::UnavailableError("raft: no leader");
    case raftpb::MSG_APP:
      BecomeFollower(m.term(), m.from());  // A leader of this term exists.
      HandleAppendEntries(m);
      return absl::OkStatus();
    case raftpb::MSG_HEARTBEAT:
      BecomeFollower(m.term(), m.from());
      HandleHeartbeat(m);
      return absl::OkStatus();
    case raftpb::MSG_SNAP:
      BecomeFollower(m.term(), m.from());
      HandleSnapshot(m);
      return absl::OkStatus();
    case raftpb::MSG_TIMEOUT_NOW:
      return absl::OkStatus();  // Already campaigning.
    case raftpb::MSG_READ_INDEX:
      return absl::OkStatus();  // No leader: dropped; the caller retries.
    default:
      break;
  }
  if (m.type() != my_response) return absl::OkStatus();
  switch (Poll(m.from(), m.type(), !m.reject())) {
    case VoteResult::kWon:
      if (role_ == Role::kPreCandidate) {
        Campaign(CampaignType::kElection);
      } else {
        BecomeLeader();
        BroadcastAppend();
      }
      break;
    case VoteResult::kLost:
      // Rejected by a majority: wait for a leader (or the next timeout).
      BecomeFollower(current_term_, 0);
      break;
    case VoteResult::kPending:
      break;
  }
  return absl::OkStatus();
}

}  // namespace keel::raft
