#include "raft/raw_node.h"

#include "common/check.h"
#include "raft/raft.h"

namespace keel::raft {
namespace {

bool HardStateEqual(const raftpb::HardState& a, const raftpb::HardState& b) {
  return a.term() == b.term() && a.vote() == b.vote() && a.commit() == b.commit();
}

raftpb::Message LocalMessage(raftpb::MessageType type, uint64_t group_id) {
  raftpb::Message m;
  m.set_type(type);
  m.set_group_id(group_id);
  return m;
}

}  // namespace

absl::StatusOr<std::unique_ptr<RawNode>> RawNode::Create(const Config& config) {
  auto raft = Raft::Create(config);
  if (!raft.ok()) return raft.status();
  return std::unique_ptr<RawNode>(new RawNode(std::move(*raft)));
}

RawNode::RawNode(std::unique_ptr<Raft> raft) : raft_(std::move(raft)) {
  prev_soft_state_ = raft_->GetSoftState();
  prev_hard_state_ = raft_->GetHardState();
}

RawNode::~RawNode() = default;

uint64_t RawNode::id() const { return raft_->id(); }

void RawNode::Tick() { raft_->Tick(); }

absl::Status RawNode::Campaign() {
  return raft_->Step(LocalMessage(raftpb::MSG_HUP, raft_->group_id()));
}

absl::Status RawNode::Propose(std::string data) {
  raftpb::Message m = LocalMessage(raftpb::MSG_PROP, raft_->group_id());
  m.add_entries()->set_data(std::move(data));
  return raft_->Step(m);
}

absl::Status RawNode::ProposeConfChange(const raftpb::ConfChange& change) {
  raftpb::Message m = LocalMessage(raftpb::MSG_PROP, raft_->group_id());
  raftpb::Entry* e = m.add_entries();
  e->set_type(raftpb::ENTRY_CONF_CHANGE);
  e->set_data(change.SerializeAsString());
  return raft_->Step(m);
}

raftpb::ConfState RawNode::ApplyConfChange(const raftpb::ConfChange& change) {
  return raft_->ApplyConfChange(change);
}

absl::Status RawNode::Step(const raftpb::Message& message) {
  switch (message.type()) {
    case raftpb::MSG_HUP:
    case raftpb::MSG_BEAT:
    case raftpb::MSG_UNREACHABLE:
    case raftpb::MSG_SNAP_STATUS:
    case raftpb::MSG_CHECK_QUORUM:
      return absl::InvalidArgumentError("raft: local message type received from a peer");
    default:
      break;
  }
  if (message.from() == 0) return absl::InvalidArgumentError("raft: message without sender");
  return raft_->Step(message);
}

void RawNode::ReadIndex(std::string request_ctx) {
  raftpb::Message m = LocalMessage(raftpb::MSG_READ_INDEX, raft_->group_id());
  m.set_context(std::move(request_ctx));
  (void)raft_->Step(m);
}

void RawNode::TransferLeader(uint64_t transferee) {
  raftpb::Message m = LocalMessage(raftpb::MSG_TRANSFER_LEADER, raft_->group_id());
  m.set_from(transferee);
  (void)raft_->Step(m);
}

void RawNode::ReportUnreachable(uint64_t id) {
  raftpb::Message m = LocalMessage(raftpb::MSG_UNREACHABLE, raft_->group_id());
  m.set_from(id);
  (void)raft_->Step(m);
}

void RawNode::ReportSnapshot(uint64_t id, bool ok) {
  raftpb::Message m = LocalMessage(raftpb::MSG_SNAP_STATUS, raft_->group_id());
  m.set_from(id);
  m.set_reject(!ok);
  (void)raft_->Step(m);
}

bool RawNode::HasReady() const {
  const Raft& r = *raft_;
  if (!(r.GetSoftState() == prev_soft_state_)) return true;
  if (!HardStateEqual(r.GetHardState(), prev_hard_state_)) return true;
  if (r.log().unstable_snapshot() || !r.log().unstable_entries().empty()) return true;
  if (!raft_->msgs().empty() || !raft_->msgs_after_persist().empty()) return true;
  if (!raft_->read_states().empty() || raft_->HasUnsentReads()) return true;
  if (raft_->HasPendingBroadcast()) return true;
  return r.log().HasNextCommittedEntries();
}

Ready RawNode::GetReady() {
  KEEL_CHECK_MSG(!ready_in_flight_, "GetReady called again before Advance");
  raft_->FlushBroadcast();
  raft_->FlushReadIndex();
  Ready rd;
  const SoftState soft = raft_->GetSoftState();
  if (!(soft == prev_soft_state_)) {
    rd.soft_state = soft;
    prev_soft_state_ = soft;
  }
  const raftpb::HardState hard = raft_->GetHardState();
  if (!HardStateEqual(hard, prev_hard_state_)) {
    rd.hard_state = hard;
    rd.must_sync = hard.term() != prev_hard_state_.term() || hard.vote() != prev_hard_state_.vote();
    prev_hard_state_ = hard;
  }
  RaftLog& log = raft_->log();
  rd.entries = log.unstable_entries();
  rd.snapshot = log.unstable_snapshot();
  if (!rd.entries.empty() || rd.snapshot) rd.must_sync = true;
  if (!rd.snapshot) {
    auto committed = log.NextCommittedEntries();
    // A failed read leaves the entries for the next Ready; a persistent failure shows up
    // as a node that stops applying, which the node loop's own reads will report.
    if (committed.ok()) rd.committed_entries = std::move(*committed);
  }
  rd.read_states = std::move(raft_->read_states());
  raft_->read_states().clear();
  rd.messages = std::move(raft_->msgs());
  raft_->msgs().clear();
  rd.messages_after_persist = std::move(raft_->msgs_after_persist());
  raft_->msgs_after_persist().clear();

  ready_in_flight_ = true;
  ready_last_entry_index_ = rd.entries.empty() ? 0 : rd.entries.back().index();
  ready_last_entry_term_ = rd.entries.empty() ? 0 : rd.entries.back().term();
  ready_snapshot_index_ = rd.snapshot ? rd.snapshot->metadata().index() : 0;
  ready_last_committed_index_ =
      rd.committed_entries.empty() ? 0 : rd.committed_entries.back().index();
  ready_hard_state_term_ = rd.hard_state ? rd.hard_state->term() : 0;
  raft_->set_applying(!rd.committed_entries.empty());
  raft_->ReduceUncommittedSize(rd.committed_entries);
  return rd;
}

void RawNode::Advance() {
  KEEL_CHECK_MSG(ready_in_flight_, "Advance called without a Ready");
  ready_in_flight_ = false;
  RaftLog& log = raft_->log();
  if (ready_snapshot_index_ != 0) {
    log.StableSnapshotTo(ready_snapshot_index_);
    log.AppliedTo(ready_snapshot_index_);
  }
  if (ready_last_entry_index_ != 0) log.StableTo(ready_last_entry_index_, ready_last_entry_term_);
  if (ready_last_committed_index_ != 0) log.AppliedTo(ready_last_committed_index_);
  if (ready_hard_state_term_ != 0) raft_->set_durable_term(ready_hard_state_term_);
  raft_->set_applying(false);
  raft_->OnPersisted();
}

Status RawNode::GetStatus() const {
  Status s;
  s.id = raft_->id();
  s.group_id = raft_->group_id();
  s.hard_state = raft_->GetHardState();
  s.soft_state = raft_->GetSoftState();
  s.applied = raft_->log().applied();
  s.last_index = raft_->log().LastIndex();
  s.lead_transferee = raft_->lead_transferee();
  s.conf_state = raft_->GetConfState();
  if (s.soft_state.role == Role::kLeader) {
    for (const auto& [peer, pr] : raft_->tracker().progress()) {
      PeerStatus ps;
      ps.match = pr.match;
      ps.next = pr.next;
      ps.state = pr.StateName();
      ps.is_learner = pr.is_learner;
      ps.recent_active = pr.recent_active;
      s.progress[peer] = ps;
    }
  }
  return s;
}

}  // namespace keel::raft
