// Raft: log replication (leader and follower sides), heartbeats, snapshots,
// linearizable reads (ReadIndex) and leadership transfer.
#include "absl/strings/str_cat.h"
#include "common/check.h"
#include "raft/raft.h"

namespace keel::raft {

absl::Status Raft::StepLeader(const raftpb::Message& m) {
  switch (m.type()) {
    case raftpb::MSG_BEAT:
      BroadcastHeartbeat(std::string());
      return absl::OkStatus();
    case raftpb::MSG_PROP:
      return AppendProposal(m);
    case raftpb::MSG_READ_INDEX:
      HandleReadIndex(m);
      return absl::OkStatus();
    default:
      break;
  }
  // Everything else is about one peer's progress.
  Progress* pr = tracker_.Get(m.from());
  if (pr == nullptr) return absl::OkStatus();  // Not (or no longer) a member.
  switch (m.type()) {
    case raftpb::MSG_APP_RESP:
      HandleAppendResponse(m, pr);
      break;
    case raftpb::MSG_HEARTBEAT_RESP:
      HandleHeartbeatResponse(m, pr);
      break;
    case raftpb::MSG_SNAP_STATUS:
      if (pr->state != Progress::State::kSnapshot) break;
      if (m.reject()) pr->pending_snapshot = 0;  // Failed: probe from the old match.
      pr->BecomeProbe();
      // Wait for the peer's answer (or a heartbeat answer) before probing.
      pr->probe_sent = true;
      break;
    case raftpb::MSG_UNREACHABLE:
      // Replicating optimistically to a peer that did not get our messages wastes them.
      if (pr->state == Progress::State::kReplicate) pr->BecomeProbe();
      break;
    case raftpb::MSG_TRANSFER_LEADER:
      HandleTransferLeader(m);
      break;
    default:
      break;
  }
  return absl::OkStatus();
}

absl::Status Raft::StepFollower(const raftpb::Message& m) {
  switch (m.type()) {
    case raftpb::MSG_PROP: {
      if (lead_ == 0) return absl::UnavailableError("raft: no leader");
      raftpb::Message fwd = m;
      fwd.set_to(lead_);
      Send(std::move(fwd));
      return absl::OkStatus();
    }
    case raftpb::MSG_APP:
      election_elapsed_ = 0;
      lead_ = m.from();
      HandleAppendEntries(m);
      return absl::OkStatus();
    case raftpb::MSG_HEARTBEAT:
      election_elapsed_ = 0;
      lead_ = m.from();
      HandleHeartbeat(m);
      return absl::OkStatus();
    case raftpb::MSG_SNAP:
      election_elapsed_ = 0;
      lead_ = m.from();
      HandleSnapshot(m);
      return absl::OkStatus();
    case raftpb::MSG_TRANSFER_LEADER:
    case raftpb::MSG_READ_INDEX: {
      if (lead_ == 0) return absl::OkStatus();  // Dropped; the caller retries.
      raftpb::Message fwd = m;
      fwd.set_to(lead_);
      Send(std::move(fwd));
      return absl::OkStatus();
    }
    case raftpb::MSG_TIMEOUT_NOW:
      // The leader hands over: campaign at once, skipping pre-vote and the lease.
      if (Promotable()) Campaign(CampaignType::kTransfer);
      return absl::OkStatus();
    case raftpb::MSG_READ_INDEX_RESP: {
      ReadState rs;
      rs.index = m.index();
      rs.request_ctx = m.context();
      read_states_.push_back(std::move(rs));
      return absl::OkStatus();
    }
    default:
      return absl::OkStatus();
  }
}

absl::Status Raft::AppendProposal(const raftpb::Message& m) {
  if (m.entries().empty()) return absl::InvalidArgumentError("raft: empty proposal");
  if (!tracker_.IsMember(id_)) {
    return absl::UnavailableError("raft: this leader was removed from the group");
  }
  if (lead_transferee_ != 0) {
    return absl::UnavailableError(
        absl::StrCat("raft: leadership is being transferred to ", lead_transferee_));
  }
  uint64_t bytes = 0;
  for (const auto& e : m.entries()) bytes += e.data().size();
  if (max_uncommitted_entries_bytes_ > 0 && uncommitted_bytes_ > 0 &&
      uncommitted_bytes_ + bytes > max_uncommitted_entries_bytes_) {
    return absl::ResourceExhaustedError("raft: too many uncommitted bytes");
  }
  std::vector<raftpb::Entry> entries(m.entries().begin(), m.entries().end());
  for (auto& e : entries) {
    if (e.type() != raftpb::ENTRY_CONF_CHANGE) continue;
    if (pending_conf_index_ > log_.applied()) {
      return absl::FailedPreconditionError("raft: a configuration change is already in progress");
    }
    raftpb::ConfChange change;
    if (!change.ParseFromString(e.data())) {
      return absl::InvalidArgumentError("raft: malformed conf change");
    }
    absl::Status valid = ValidateConfChange(change);
    if (!valid.ok()) return valid;
    pending_conf_index_ = log_.LastIndex() + 1 + (&e - entries.data());
  }
  uncommitted_bytes_ += bytes;
  AppendEntries(std::move(entries));
  // Replicated at the next Ready: every proposal until then shares one MsgApp per peer.
  broadcast_pending_ = true;
  return absl::OkStatus();
}

void Raft::AppendEntries(std::vector<raftpb::Entry> entries) {
  uint64_t index = log_.LastIndex();
  for (auto& e : entries) {
    e.set_term(current_term_);
    e.set_index(++index);
  }
  log_.Append(entries);
  // The leader's own copy counts once it is durable (OnPersisted), never before:
  // Raft thesis §10.2.1 lets it send first, not count first.
  if (bugs_.leader_counts_unpersisted_self) {
    if (Progress* self = tracker_.Get(id_)) self->MaybeUpdate(log_.LastIndex());
    MaybeCommit();
  }
}

void Raft::SendAppend(uint64_t to) { MaybeSendAppend(to, true); }

bool Raft::MaybeSendAppend(uint64_t to, bool send_if_empty) {
  Progress* pr = tracker_.Get(to);
  if (pr == nullptr || pr->IsPaused()) return false;
  const uint64_t prev_index = pr->next - 1;
  auto prev_term = log_.Term(prev_index);
  auto entries = log_.EntriesFrom(pr->next, max_size_per_msg_bytes_);
  if (!prev_term.ok() || !entries.ok()) {
    // The entries were compacted: only a snapshot can catch this peer up.
    return SendSnapshot(to, pr);
  }
  if (entries->empty() && !send_if_empty) return false;
  raftpb::Message m;
  m.set_type(raftpb::MSG_APP);
  m.set_to(to);
  m.set_index(prev_index);
  m.set_log_term(*prev_term);
  m.set_commit(log_.committed());
  uint64_t bytes = 0;
  for (auto& e : *entries) {
    bytes += e.ByteSizeLong();
    *m.add_entries() = std::move(e);
  }
  const uint64_t count = m.entries_size();
  if (count > 0)
    pr->SentEntries(m.entries(count - 1).index(), count, bytes);
  else
    pr->SentEntries(0, 0, 0);
  Send(std::move(m));
  return true;
}

bool Raft::SendSnapshot(uint64_t to, Progress* pr) {
  if (!pr->recent_active) return false;  // Do not ship a snapshot into the void.
  auto snapshot = log_.Snapshot();
  if (!snapshot.ok()) return false;  // Temporarily unavailable: retried on the next tick.
  KEEL_CHECK_MSG(snapshot->metadata().index() != 0, "need a snapshot but there is none");
  pr->BecomeSnapshot(snapshot->metadata().index());
  raftpb::Message m;
  m.set_type(raftpb::MSG_SNAP);
  m.set_to(to);
  *m.mutable_snapshot() = std::move(*snapshot);
  Send(std::move(m));
  return true;
}

void Raft::BroadcastAppend() {
  for (const auto& [peer, pr] : tracker_.progress()) {
    if (peer != id_) SendAppend(peer);
  }
}

void Raft::BroadcastHeartbeat(const std::string& ctx) {
  for (const auto& [peer, pr] : tracker_.progress()) {
    if (peer != id_) SendHeartbeat(peer, ctx);
  }
}

void Raft::SendHeartbeat(uint64_t to, const std::string& ctx) {
  const Progress* pr = tracker_.Get(to);
  raftpb::Message m;
  m.set_type(raftpb::MSG_HEARTBEAT);
  m.set_to(to);
  // Never tell a follower to commit beyond what it is known to hold.
  m.set_commit(std::min(pr->match, log_.committed()));
  m.set_context(ctx);
  Send(std::move(m));
}

bool Raft::MaybeCommit() {
  const uint64_t index = tracker_.QuorumMatch();
  if (index <= log_.committed()) return false;
  // Raft §5.4.2: only entries of the current term are committed by counting replicas.
  if (!bugs_.commit_previous_term_by_counting && log_.TermOrZero(index) != current_term_) {
    return false;
  }
  log_.CommitTo(index);
  return true;
}

void Raft::OnCommitAdvanced() {
  // Followers learn the new commit index at the next Ready, once per Ready however
  // many acks advanced it.
  broadcast_pending_ = true;
  if (!reads_awaiting_term_commit_.empty() && CommittedEntryInCurrentTerm()) {
    std::vector<raftpb::Message> reads = std::move(reads_awaiting_term_commit_);
    reads_awaiting_term_commit_.clear();
    for (const auto& r : reads) HandleReadIndex(r);
  }
}

bool Raft::CommittedEntryInCurrentTerm() const {
  return log_.TermOrZero(log_.committed()) == current_term_;
}

void Raft::HandleAppendEntries(const raftpb::Message& m) {
  raftpb::Message resp;
  resp.set_type(raftpb::MSG_APP_RESP);
  resp.set_to(m.from());
  if (m.index() < log_.committed()) {
    // Everything up to our commit index already matches the leader.
    resp.set_index(log_.committed());
    Send(std::move(resp));
    return;
  }
  std::vector<raftpb::Entry> entries(m.entries().begin(), m.entries().end());
  if (auto last_new = log_.MaybeAppend(m.index(), m.log_term(), m.commit(), entries)) {
    resp.set_index(*last_new);
    Send(std::move(resp));
    return;
  }
  // Consistency check failed (§5.3). Hint the largest index that might match: at or
  // below our last index, with a term no greater than the leader's term there.
  const uint64_t hint = std::min(m.index(), log_.LastIndex());
  auto [hint_index, hint_term] = log_.FindConflictByTerm(hint, m.log_term());
  resp.set_index(m.index());
  resp.set_reject(true);
  resp.set_reject_hint(hint_index);
  resp.set_log_term(hint_term);
  Send(std::move(resp));
}

void Raft::HandleAppendResponse(const raftpb::Message& m, Progress* pr) {
  pr->recent_active = true;
  if (m.reject()) {
    uint64_t next_probe = m.reject_hint();
    if (m.log_term() > 0) {
      // Skip all our entries with a term above the follower's at the hint.
      next_probe = log_.FindConflictByTerm(m.reject_hint(), m.log_term()).first;
    }
    if (pr->MaybeDecrTo(m.index(), next_probe)) {
      if (pr->state == Progress::State::kReplicate) pr->BecomeProbe();
      SendAppend(m.from());
    }
    return;
  }
  const bool was_paused = pr->IsPaused();
  // An answer that matches what we know still ends a probe (e.g. after a snapshot).
  const bool confirms_probe = pr->match == m.index() && pr->state == Progress::State::kProbe;
  if (!pr->MaybeUpdate(m.index()) && !confirms_probe) return;
  switch (pr->state) {
    case Progress::State::kProbe:
      pr->BecomeReplicate();
      break;
    case Progress::State::kSnapshot:
      if (pr->match + 1 >= log_.FirstIndex()) {
        pr->BecomeProbe();
        pr->BecomeReplicate();
      }
      break;
    case Progress::State::kReplicate:
      pr->inflights.FreeLE(m.index());
      break;
  }
  if (MaybeCommit()) {
    OnCommitAdvanced();
  } else if (was_paused) {
    SendAppend(m.from());
  }
  // Fill the pipeline while the window allows.
  while (MaybeSendAppend(m.from(), false)) {
  }
  if (m.from() == lead_transferee_ && pr->match == log_.LastIndex()) {
    SendTimeoutNow(m.from());
  }
}

void Raft::HandleHeartbeat(const raftpb::Message& m) {
  log_.CommitTo(std::min(m.commit(), log_.LastIndex()));
  raftpb::Message resp;
  resp.set_type(raftpb::MSG_HEARTBEAT_RESP);
  resp.set_to(m.from());
  resp.set_context(m.context());
  Send(std::move(resp));
}

void Raft::HandleHeartbeatResponse(const raftpb::Message& m, Progress* pr) {
  pr->recent_active = true;
  pr->probe_sent = false;
  // A full window may mean the appends were lost: free one slot so the next append
  // goes out and the follower's answer (or rejection) gets replication moving again.
  if (pr->state == Progress::State::kReplicate && pr->inflights.Full()) {
    pr->inflights.FreeFirstOne();
  }
  if (pr->match < log_.LastIndex()) SendAppend(m.from());
  if (m.context().empty()) return;
  if (auto round = ReadIndexQueue::DecodeRound(m.context())) {
    ReleaseReads(read_queue_.Ack(m.from(), *round, id_, tracker_.voters()));
  }
}

void Raft::HandleSnapshot(const raftpb::Message& m) {
  raftpb::Message resp;
  resp.set_type(raftpb::MSG_APP_RESP);
  resp.set_to(m.from());
  resp.set_index(Restore(m.snapshot()) ? log_.LastIndex() : log_.committed());
  Send(std::move(resp));
}

bool Raft::Restore(const raftpb::Snapshot& snapshot) {
  const auto& meta = snapshot.metadata();
  if (meta.index() <= log_.committed()) return false;
  // Committed entries handed out in the Ready now being carried out may hold conf
  // changes the application has yet to apply; resetting membership under them would
  // apply them on top of the snapshot's. The leader sends the snapshot again later.
  if (applying_) return false;
  if (log_.MatchTerm(meta.index(), meta.term())) {
    // We already have the entries the snapshot covers: just commit them.
    log_.CommitTo(meta.index());
    return false;
  }
  log_.Restore(snapshot);
  tracker_.Reset(meta.conf_state(), log_.LastIndex() + 1);
  return true;
}

void Raft::HandleReadIndex(const raftpb::Message& m) {
  const uint64_t from = m.from() == 0 ? id_ : m.from();
  // Until this leader commits an entry of its term it does not know the true commit
  // index (Raft thesis §6.4 step 1): hold the read until the no-op commits. This holds
  // for a single voter too: after a restart its stored commit index may lag.
  if (!CommittedEntryInCurrentTerm()) {
    reads_awaiting_term_commit_.push_back(m);
    return;
  }
  if (tracker_.voters().size() == 1 && tracker_.IsVoter(id_)) {
    // A single voter is its own quorum.
    ReleaseReads({PendingRead{from, m.context(), log_.committed(), 0}});
    return;
  }
  read_queue_.Add(from, m.context());
}

void Raft::ReleaseReads(std::vector<PendingRead> reads) {
  for (auto& r : reads) {
    if (r.from == id_) {
      read_states_.push_back(ReadState{r.index, std::move(r.request_ctx)});
    } else {
      raftpb::Message resp;
      resp.set_type(raftpb::MSG_READ_INDEX_RESP);
      resp.set_to(r.from);
      resp.set_index(r.index);
      resp.set_context(std::move(r.request_ctx));
      Send(std::move(resp));
    }
  }
}

void Raft::HandleTransferLeader(const raftpb::Message& m) {
  const uint64_t transferee = m.from();
  if (transferee == id_ || !tracker_.IsVoter(transferee)) return;
  if (lead_transferee_ == transferee) return;  // Already under way.
  election_elapsed_ = 0;  // The transfer must finish within one election timeout.
  lead_transferee_ = transferee;
  const Progress* pr = tracker_.Get(transferee);
  if (pr->match == log_.LastIndex()) {
    SendTimeoutNow(transferee);
  } else {
    SendAppend(transferee);  // Catch it up first; the append answer sends TimeoutNow.
  }
}

void Raft::SendTimeoutNow(uint64_t to) {
  raftpb::Message m;
  m.set_type(raftpb::MSG_TIMEOUT_NOW);
  m.set_to(to);
  Send(std::move(m));
}

}  // namespace keel::raft
