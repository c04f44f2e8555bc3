#include "server/raft_node.h"

#include <filesystem>
#include <future>
#include <random>

#include "absl/strings/str_cat.h"
#include "common/check.h"
#include "common/failpoint.h"
#include "common/status_macros.h"
#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/wire_format_lite.h"
#include "raft/read_only.h"
#include "server/errors.h"
#include "server/failpoint_messages.h"
#include "server/thread_name.h"

namespace keel::server {
namespace {

using google::protobuf::internal::WireFormatLite;

// Reads only origin_member_id (3) and origin_proposal_id (4) of an internalpb.Request,
// skipping the rest, so the apply thread does not parse (and copy) every value twice.
bool ParseOrigin(std::string_view data, uint64_t* member, uint64_t* proposal) {
  google::protobuf::io::CodedInputStream in(reinterpret_cast<const uint8_t*>(data.data()),
                                            static_cast<int>(data.size()));
  *member = 0;
  *proposal = 0;
  for (;;) {
    const uint32_t tag = in.ReadTag();
    if (tag == 0) return true;
    const int field = WireFormatLite::GetTagFieldNumber(tag);
    if ((field == 3 || field == 4) &&
        WireFormatLite::GetTagWireType(tag) == WireFormatLite::WIRETYPE_VARINT) {
      uint64_t v;
      if (!in.ReadVarint64(&v)) return false;
      (field == 3 ? *member : *proposal) = v;
    } else if (!WireFormatLite::SkipField(&in, tag)) {
      return false;
    }
  }
}

absl::Status MapProposeError(const absl::Status& status, uint64_t leader_id) {
  if (absl::IsUnavailable(status)) return leader_id == 0 ? ErrNoLeader() : ErrLeaderChanged();
  if (absl::IsResourceExhausted(status)) return ErrTooManyRequests();
  return status;
}

// The raft thread may fall behind its ticks (a long fsync); it then ticks once and
// re-anchors rather than firing a burst that would expire election timers at once.
constexpr int kMaxTickLagIntervals = 5;
// Loop passes a caller runs in a row before it leaves the rest to the raft thread.
constexpr int kCallerPassesMax = 4;
// Incoming peer messages buffered for the raft thread beyond which new ones are
// dropped (raft retransmits).
constexpr size_t kInboxMessagesMax = 100'000;

}  // namespace

RaftNode::RaftNode(RaftNodeOptions options, storage::RaftLogStore* log, storage::KvStore* kv)
    : options_(std::move(options)), log_(log), kv_(kv) {}

RaftNode::~RaftNode() { Stop(); }

absl::Status RaftNode::Start() {
  KEEL_CHECK_MSG(transport_ != nullptr, "SetTransport before Start");
  std::error_code ec;
  std::filesystem::create_directories(options_.snapshot_dir, ec);
  if (ec) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot create snapshot dir ", options_.snapshot_dir, ": ", ec.message()));
  }
  ASSIGN_OR_RETURN(raft::InitialState initial, log_->GetInitialState());
  ASSIGN_OR_RETURN(raftpb::Snapshot snapshot, log_->GetSnapshot());
  const uint64_t snapshot_index = snapshot.metadata().index();
  if (kv_->AppliedIndex() < snapshot_index) {
    return absl::DataLossError(absl::StrCat(
        "the state machine in ", kv_->dir(), " has applied up to index ", kv_->AppliedIndex(),
        " but the raft log starts after its snapshot at index ", snapshot_index,
        ": the state machine's data is missing or older than the log. Remove this member's "
        "data directory and add it back to the cluster."));
  }
  applied_conf_state_ = initial.conf_state;
  raft_applied_index_ = snapshot_index;
  last_snapshot_index_ = snapshot_index;
  applied_index_ = kv_->AppliedIndex();
  // Outgoing checkpoints left by a crash are garbage.
  for (const auto& entry : std::filesystem::directory_iterator(options_.snapshot_dir, ec)) {
    std::filesystem::remove_all(entry.path(), ec);
  }
  term_ = initial.hard_state.term();
  commit_index_ = initial.hard_state.commit();

  raft::Config config;
  config.id = options_.member_id;
  config.group_id = options_.group_id;
  config.election_tick = options_.election_timeout_ticks;
  config.heartbeat_tick = 1;
  config.storage = log_;
  // Raft re-delivers committed entries above its snapshot; the state machine skips the
  // ones it already applied, and raft relearns the conf changes among them.
  config.applied = 0;
  config.max_size_per_msg_bytes = options_.max_size_per_msg_bytes;
  config.max_inflight_msgs = options_.max_inflight_msgs;
  config.max_uncommitted_entries_bytes = options_.proposal_queue_bytes_max;
  config.pre_vote = true;
  config.check_quorum = true;
  config.random_seed = options_.random_seed != 0
                           ? options_.random_seed
                           : std::random_device{}() ^ (options_.member_id << 17);
  ASSIGN_OR_RETURN(raw_node_, raft::RawNode::Create(config));
  RETURN_IF_ERROR(LoadMembership());

  next_tick_ = absl::Now() + absl::Milliseconds(options_.tick_interval_ms);
  started_ = true;
  apply_thread_ = std::thread([this] { ApplyLoop(); });
  raft_thread_ = std::thread([this] { RaftLoop(); });
  return absl::OkStatus();
}

void RaftNode::Stop() {
  if (!started_.exchange(false)) return;
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (raft_thread_.joinable()) raft_thread_.join();
  {
    // MoveLeader calls still waiting (the raft thread is gone and, once a caller's pass
    // ended, no pass starts again: no race on moves_). Answers a pass left are given
    // before Stop returns, as before it.
    std::vector<MoveWaiter> moves;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [this] { return !loop_busy_ && answering_ == 0; });
      moves.swap(inbox_moves_);
    }
    for (auto& m : moves_) moves.push_back(std::move(m));
    moves_.clear();
    for (auto& m : moves) m.done(ErrStopped());
  }
  {
    std::lock_guard<std::mutex> lock(apply_mu_);
    apply_stopping_ = true;
  }
  apply_cv_.notify_all();
  if (apply_thread_.joinable()) apply_thread_.join();
  FailAllWaiters(ErrStopped());
}

absl::Status RaftNode::fatal_error() const {
  std::lock_guard<std::mutex> lock(mu_);
  return fatal_;
}

void RaftNode::Fatal(const absl::Status& status) {
  std::fprintf(stderr, "keeld: fatal: %s\n", status.ToString().c_str());
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (fatal_.ok()) fatal_ = status;
    stopping_ = true;
  }
  cv_.notify_all();
  {
    std::lock_guard<std::mutex> lock(apply_mu_);
    apply_stopping_ = true;
  }
  apply_cv_.notify_all();
  FailAllWaiters(ErrStopped());
}

NodeStatus RaftNode::Status() const {
  NodeStatus s;
  s.member_id = options_.member_id;
  s.leader_id = leader_id_.load();
  s.term = term_.load();
  s.commit_index = commit_index_.load();
  s.applied_index = applied_index_.load();
  s.is_leader = s.leader_id == options_.member_id;
  s.is_learner = is_learner_.load();
  return s;
}

// ---------------------------------------------------------------- client entry points

void RaftNode::Propose(internalpb::Request request, absl::Time deadline, WriteCallback done,
                       uint64_t leader_term, LoopPass pass) {
  if (commit_index_.load() > applied_index_.load() + options_.max_apply_lag_entries) {
    done(ErrTooManyRequests());  // Apply is far behind: shed load instead of queueing.
    return;
  }
  uint64_t id;
  {
    std::lock_guard<std::mutex> lock(waiters_mu_);
    id = next_proposal_id_++;
    write_waiters_.emplace(id, WriteWaiter{deadline, std::move(done)});
  }
  request.set_origin_member_id(options_.member_id);
  request.set_origin_proposal_id(id);
  std::string data = request.SerializeAsString();
  absl::Status refused;
  Handoff handoff = Handoff::kNone;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) {
      refused = ErrStopped();
    } else if (inbox_proposals_.size() >= options_.proposal_queue_max ||
               inbox_proposal_bytes_ + data.size() > options_.proposal_queue_bytes_max) {
      refused = ErrTooManyRequests();
    } else {
      inbox_proposal_bytes_ += data.size();
      inbox_proposals_.push_back(PendingProposal{id, std::move(data), leader_term});
      handoff = HandoffLocked(pass);
    }
  }
  if (refused.ok()) {
    CarryOut(handoff);
    return;
  }
  WriteCallback cb;
  {
    std::lock_guard<std::mutex> lock(waiters_mu_);
    auto it = write_waiters_.find(id);
    if (it == write_waiters_.end()) return;
    cb = std::move(it->second.done);
    write_waiters_.erase(it);
  }
  cb(refused);
}

void RaftNode::ReadBarrier(absl::Time deadline, ReadCallback done, LoopPass pass) {
  absl::Status refused;
  Handoff handoff = Handoff::kNone;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) {
      refused = ErrStopped();
    } else {
      inbox_reads_.push_back(ReadWaiter{deadline, std::move(done)});
      handoff = HandoffLocked(pass);
    }
  }
  if (!refused.ok()) {
    done(refused);
    return;
  }
  CarryOut(handoff);
}

void RaftNode::ProposeConfChange(raftpb::ConfChange change, internalpb::ConfChangeContext context,
                                 absl::Time deadline, std::function<void(absl::Status)> done) {
  uint64_t id;
  {
    std::lock_guard<std::mutex> lock(waiters_mu_);
    id = next_proposal_id_++;
    conf_waiters_.emplace(id, ConfWaiter{deadline, std::move(done)});
  }
  context.set_origin_member_id(options_.member_id);
  context.set_origin_proposal_id(id);
  change.set_context(context.SerializeAsString());
  bool stopping;
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping = stopping_;
    if (!stopping) inbox_conf_changes_.push_back(PendingConfChange{id, std::move(change)});
  }
  if (stopping) {
    FinishConfWaiter(id, ErrStopped());
    return;
  }
  cv_.notify_one();
}

void RaftNode::MoveLeader(uint64_t target, absl::Time deadline,
                          std::function<void(absl::Status)> done) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!stopping_) {
      inbox_moves_.push_back(MoveWaiter{target, deadline, std::move(done)});
      done = nullptr;
    }
  }
  if (done) {
    done(ErrStopped());
    return;
  }
  cv_.notify_one();
}

bool RaftNode::ConfWaiterPending(uint64_t proposal_id) const {
  std::lock_guard<std::mutex> lock(waiters_mu_);
  return conf_waiters_.count(proposal_id) != 0;
}

void RaftNode::FinishConfWaiter(uint64_t proposal_id, const absl::Status& status) {
  std::function<void(absl::Status)> cb;
  {
    std::lock_guard<std::mutex> lock(waiters_mu_);
    auto it = conf_waiters_.find(proposal_id);
    if (it == conf_waiters_.end()) return;
    cb = std::move(it->second.done);
    conf_waiters_.erase(it);
  }
  cb(status);
}

absl::Status RaftNode::CheckConfChange(const raftpb::ConfChange& change) {
  const raft::Status st = raw_node_->GetStatus();
  if (st.soft_state.role != raft::Role::kLeader) {
    return st.soft_state.leader_id == 0 ? ErrNoLeader() : ErrNotLeader();
  }
  const std::vector<uint64_t> voters(st.conf_state.voters().begin(), st.conf_state.voters().end());
  // Started: heard from within an election timeout (and not just reported back by
  // raft's per-period flag, which stays set for up to two timeouts after a crash).
  std::vector<uint64_t> active = {options_.member_id};
  {
    const absl::Time since = absl::Now() - absl::Milliseconds(options_.tick_interval_ms *
                                                              options_.election_timeout_ticks);
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& [peer, pr] : st.progress) {
      auto it = last_heard_.find(peer);
      if (peer != options_.member_id && it != last_heard_.end() && it->second >= since) {
        active.push_back(peer);
      }
    }
  }
  const bool learner = std::find(st.conf_state.learners().begin(), st.conf_state.learners().end(),
                                 change.node_id()) != st.conf_state.learners().end();
  if (change.type() == raftpb::CONF_CHANGE_ADD_NODE && learner) {
    // etcd's rule: a learner is in sync once it has 90% of the leader's log.
    auto self = st.progress.find(options_.member_id);
    auto it = st.progress.find(change.node_id());
    const uint64_t leader_match = self != st.progress.end() ? self->second.match : st.last_index;
    if (it == st.progress.end() ||
        static_cast<double>(it->second.match) < 0.9 * static_cast<double>(leader_match)) {
      return ErrLearnerNotReady();
    }
  }
  return CheckQuorumAfter(voters, active, change);
}

void RaftNode::StartMoves(std::vector<MoveWaiter> moves) {
  const raft::Status st = raw_node_->GetStatus();
  for (auto& m : moves) {
    absl::Status refused;
    const bool voter = std::find(st.conf_state.voters().begin(), st.conf_state.voters().end(),
                                 m.target) != st.conf_state.voters().end();
    if (st.soft_state.role != raft::Role::kLeader) {
      refused = st.soft_state.leader_id == 0 ? ErrNoLeader() : ErrNotLeader();
    } else if (!voter) {
      refused = ErrBadLeaderTransferee();
    } else if (m.target == options_.member_id) {
      m.done(absl::OkStatus());  // Already there (etcd answers the same).
      continue;
    }
    if (!refused.ok()) {
      m.done(refused);
      continue;
    }
    raw_node_->TransferLeader(m.target);
    moves_.push_back(std::move(m));
  }
}

void RaftNode::CheckMoves() {
  if (moves_.empty()) return;
  const uint64_t leader = leader_id_.load();
  const absl::Time now = absl::Now();
  std::vector<std::pair<std::function<void(absl::Status)>, absl::Status>> finished;
  for (auto it = moves_.begin(); it != moves_.end();) {
    if (leader == it->target) {
      finished.emplace_back(std::move(it->done), absl::OkStatus());
    } else if (now >= it->deadline) {
      finished.emplace_back(std::move(it->done), ErrLeaderTransferTimeout());
    } else {
      ++it;
      continue;
    }
    it = moves_.erase(it);
  }
  for (auto& [cb, status] : finished) cb(status);
}

void RaftNode::TransferLeadershipAway(absl::Duration timeout) {
  if (leader_id_.load() != options_.member_id) return;
  {
    std::lock_guard<std::mutex> lock(mu_);
    inbox_transfer_to_ = ~uint64_t{0};  // "The best other voter", chosen by the raft thread.
  }
  cv_.notify_one();
  const absl::Time deadline = absl::Now() + timeout;
  while (absl::Now() < deadline) {
    const uint64_t leader = leader_id_.load();
    if (leader != 0 && leader != options_.member_id) return;
    absl::SleepFor(absl::Milliseconds(10));  // Shutdown path only.
  }
}

// ---------------------------------------------------------------- transport callbacks

void RaftNode::OnMessages(std::vector<raftpb::Message> messages) {
  Handoff handoff;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_ || inbox_messages_.size() >= kInboxMessagesMax) return;
    if (!messages.empty()) last_heard_[messages.front().from()] = absl::Now();
    for (auto& m : messages) inbox_messages_.push_back(std::move(m));
    handoff = HandoffLocked(LoopPass::kCallerIfIdle);
  }
  CarryOut(handoff);
}

void RaftNode::OnUnreachable(uint64_t peer_id) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    inbox_unreachable_.push_back(peer_id);
  }
  cv_.notify_one();
}

void RaftNode::OnSnapshotSent(uint64_t peer_id, bool ok) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    inbox_snapshot_status_.emplace_back(peer_id, ok);
  }
  cv_.notify_one();
}

void RaftNode::OnPeerClientUrls(uint64_t peer_id, const std::string& client_urls,
                                const std::string& name) {
  if (options_.on_peer_client_urls) options_.on_peer_client_urls(peer_id, client_urls, name);
}

void RaftNode::OnRemovedByPeer(uint64_t peer_id) {
  if (options_.on_removed_by_peer) options_.on_removed_by_peer(peer_id);
}

// ---------------------------------------------------------------- raft thread

bool RaftNode::HasWorkLocked() const {
  return !inbox_messages_.empty() || !inbox_proposals_.empty() || !inbox_reads_.empty() ||
         !inbox_unreachable_.empty() || !inbox_snapshot_status_.empty() ||
         !inbox_compactions_.empty() || inbox_transfer_to_ != 0 || !inbox_conf_changes_.empty() ||
         !inbox_moves_.empty();
}

RaftNode::Handoff RaftNode::HandoffLocked(LoopPass pass) {
  // A running pass (the raft thread's or a caller's) sees the work when it lets go.
  if (loop_busy_ || stopping_) return Handoff::kNone;
  if (pass == LoopPass::kCallerIfIdle && started_.load()) {
    loop_busy_ = true;  // The raft thread sleeps on: no wake-up to pay for.
    return Handoff::kRunHere;
  }
  return Handoff::kWakeRaftThread;
}

void RaftNode::CarryOut(Handoff handoff) {
  if (handoff == Handoff::kRunHere) {
    RunClaimedPass();
  } else if (handoff == Handoff::kWakeRaftThread) {
    cv_.notify_one();
  }
}

void RaftNode::RunClaimedPass() {
  for (int pass = 1;; ++pass) {
    RunPass();
    Answers answers;
    bool more, wake = false;
    {
      std::lock_guard<std::mutex> lock(mu_);
      // Work queued meanwhile is most often this pass's sequel (the acks of the entries
      // it just sent): run it here too, a few passes at most, then the raft thread does.
      more = pass < kCallerPassesMax && !stopping_ && HasWorkLocked();
      answers = TakeAnswersLocked();
      if (!more) {
        loop_busy_ = false;
        wake = raft_thread_waits_for_pass_ || stopping_ || HasWorkLocked();
      }
    }
    if (wake) cv_.notify_all();  // The raft thread, and Stop() waiting for this pass.
    // Answered after the pass, not in it; between two passes the loop stays claimed.
    AnswerAfterPass(std::move(answers));
    if (!more) return;
  }
}

RaftNode::Answers RaftNode::TakeAnswersLocked() {
  if (pass_answers_.empty()) return {};
  ++answering_;
  return std::exchange(pass_answers_, {});
}

void RaftNode::AnswerAfterPass(Answers answers) {
  if (answers.empty()) return;
  Answer(std::move(answers));
  bool stopping;
  {
    std::lock_guard<std::mutex> lock(mu_);
    --answering_;
    stopping = stopping_;
  }
  if (stopping) cv_.notify_all();  // Stop() waits for answers in flight.
}

void RaftNode::Answer(Answers answers) {
  for (auto& [done, result] : answers.writes) done(std::move(result));
  for (auto& done : answers.reads) done(absl::OkStatus());
}

void RaftNode::RaftLoop() {
  SetThreadName("keel-raft");
  for (;;) {
    {
      std::unique_lock<std::mutex> lock(mu_);
      for (;;) {
        if (stopping_) return;
        if (loop_busy_) {  // A caller's pass; it wakes us when it ends.
          raft_thread_waits_for_pass_ = true;
          cv_.wait(lock);
          raft_thread_waits_for_pass_ = false;
          continue;
        }
        if (HasWorkLocked() || absl::Now() >= next_tick_) break;
        cv_.wait_until(lock, absl::ToChronoTime(next_tick_));
      }
      loop_busy_ = true;
    }
    RunPass();
    Answers answers;
    {
      std::lock_guard<std::mutex> lock(mu_);
      answers = TakeAnswersLocked();
      loop_busy_ = false;
    }
    AnswerAfterPass(std::move(answers));
  }
}

void RaftNode::RunPass() {
  DrainInbox();
  do {
    while (raw_node_->HasReady()) {
      absl::Status status = HandleReady(raw_node_->GetReady());
      if (!status.ok()) {
        Fatal(status);
        return;
      }
    }
  } while (MaybeStartReadRound());  // Its heartbeats go out in the next Ready.
  CheckMoves();
}

void RaftNode::DrainInbox() {
  std::vector<raftpb::Message> messages;
  std::vector<uint64_t> unreachable;
  std::vector<std::pair<uint64_t, bool>> snapshot_status;
  std::deque<PendingProposal> proposals;
  std::vector<ReadWaiter> reads;
  std::vector<uint64_t> compactions;
  uint64_t transfer_to;
  std::vector<PendingConfChange> conf_changes;
  std::vector<MoveWaiter> moves;
  bool tick = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    const absl::Time now = absl::Now();
    if (now >= next_tick_) {
      tick = true;
      const absl::Duration interval = absl::Milliseconds(options_.tick_interval_ms);
      next_tick_ += interval;
      if (now - next_tick_ > kMaxTickLagIntervals * interval) next_tick_ = now + interval;
    }
    messages.swap(inbox_messages_);
    unreachable.swap(inbox_unreachable_);
    snapshot_status.swap(inbox_snapshot_status_);
    proposals.swap(inbox_proposals_);
    inbox_proposal_bytes_ = 0;
    reads.swap(inbox_reads_);
    compactions.swap(inbox_compactions_);
    transfer_to = inbox_transfer_to_;
    inbox_transfer_to_ = 0;
    conf_changes.swap(inbox_conf_changes_);
    moves.swap(inbox_moves_);
  }
  KEEL_FAILPOINT(PerturbPeerMessages(&messages));
  if (tick) {
    raw_node_->Tick();
    ExpireWaiters();
  }
  for (const auto& m : messages) (void)raw_node_->Step(m);  // Stale or foreign: dropped.
  for (uint64_t peer : unreachable) raw_node_->ReportUnreachable(peer);
  for (auto [peer, ok] : snapshot_status) raw_node_->ReportSnapshot(peer, ok);
  for (uint64_t index : compactions) {
    absl::Status status = log_->Compact(index);
    if (!status.ok() && !raft::IsCompacted(status)) {
      std::fprintf(stderr, "keeld: log compaction to %lu failed: %s\n",
                   static_cast<unsigned long>(index), status.ToString().c_str());
    }
  }
  if (transfer_to != 0) {
    const raft::Status st = raw_node_->GetStatus();
    uint64_t best = 0, best_match = 0;
    for (const auto& [peer, pr] : st.progress) {
      if (peer == options_.member_id || pr.is_learner) continue;
      if (best == 0 || pr.match > best_match) {
        best = peer;
        best_match = pr.match;
      }
    }
    if (best != 0) raw_node_->TransferLeader(best);
  }

  if (!moves.empty()) StartMoves(std::move(moves));
  // Deferred changes first, in arrival order. A change that must wait for another one
  // to apply waits (until its deadline: etcd times out there too) rather than failing,
  // so `member add` right after a leader change just works; it is checked again at
  // apply time against the membership it then meets (ApplyChange).
  if (!deferred_conf_changes_.empty()) {
    conf_changes.insert(conf_changes.begin(),
                        std::make_move_iterator(deferred_conf_changes_.begin()),
                        std::make_move_iterator(deferred_conf_changes_.end()));
    deferred_conf_changes_.clear();
  }
  for (auto& c : conf_changes) {
    if (!ConfWaiterPending(c.proposal_id)) continue;  // Expired while deferred.
    absl::Status status = CheckConfChange(c.change);
    if (status.ok()) {
      status = raw_node_->ProposeConfChange(c.change);
      if (absl::IsFailedPrecondition(status)) {
        deferred_conf_changes_.push_back(std::move(c));
        continue;
      }
      if (!status.ok()) status = MapProposeError(status, leader_id_.load());
    }
    if (!status.ok()) FinishConfWaiter(c.proposal_id, status);
  }

  // Proposals: each becomes one entry; all of them land in the next Ready's one fsync.
  std::vector<std::pair<uint64_t, absl::Status>> refused;
  std::optional<raft::Status> raft_status;  // Read once, only for leader-only proposals.
  for (auto& p : proposals) {
    if (p.leader_term != 0) {
      if (!raft_status) raft_status = raw_node_->GetStatus();
      if (raft_status->soft_state.role != raft::Role::kLeader ||
          raft_status->hard_state.term() != p.leader_term) {
        refused.emplace_back(p.proposal_id, ErrNotLeader());
        continue;
      }
    }
    absl::Status status = raw_node_->Propose(std::move(p.data));
    if (!status.ok()) {
      refused.emplace_back(p.proposal_id, MapProposeError(status, leader_id_.load()));
    }
  }
  if (!refused.empty()) {
    std::vector<std::pair<WriteCallback, absl::Status>> calls;
    {
      std::lock_guard<std::mutex> lock(waiters_mu_);
      for (auto& [id, status] : refused) {
        auto it = write_waiters_.find(id);
        if (it == write_waiters_.end()) continue;
        calls.emplace_back(std::move(it->second.done), status);
        write_waiters_.erase(it);
      }
    }
    for (auto& [cb, status] : calls) cb(status);
  }

  // Reads join the batch waiting for the next ReadIndex round (MaybeStartReadRound).
  std::vector<uint64_t> reissue;
  {
    std::lock_guard<std::mutex> lock(waiters_mu_);
    if (!reads.empty()) JoinWaitingReadsLocked(reads);
    if (tick) {
      // A read request is lost if there was no leader or the leader changed; ask again
      // every half election timeout until the read's deadline.
      const int every = std::max(1, options_.election_timeout_ticks / 2);
      for (auto& [ctx, batch] : read_batches_) {
        if (ctx == waiting_read_ctx_) continue;  // Not asked yet.
        if (++batch.ticks_waited % every == 0) reissue.push_back(ctx);
      }
    }
  }
  for (uint64_t ctx : reissue) raw_node_->ReadIndex(raft::ReadIndexQueue::EncodeRound(ctx));
}

void RaftNode::JoinWaitingReadsLocked(std::vector<ReadWaiter>& reads) {
  if (waiting_read_ctx_ == 0 || !read_batches_.contains(waiting_read_ctx_)) {
    waiting_read_ctx_ = next_read_ctx_++;
  }
  auto& waiting = read_batches_[waiting_read_ctx_].waiters;
  for (auto& r : reads) waiting.push_back(std::move(r));
}

void RaftNode::RequeueInflightReads() {
  std::lock_guard<std::mutex> lock(waiters_mu_);
  auto it = read_batches_.find(std::exchange(inflight_read_ctx_, 0));
  if (it == read_batches_.end()) return;
  // The round went to a leader that is gone (its answer may never come): its reads join
  // the next round, which asks the new leader (asking later is always safe).
  JoinWaitingReadsLocked(it->second.waiters);
  read_batches_.erase(it);
}

bool RaftNode::MaybeStartReadRound() {
  uint64_t ctx;
  {
    std::lock_guard<std::mutex> lock(waiters_mu_);
    // One round at a time: the reads that arrive meanwhile share the next one (as etcd's
    // read loop does). A round costs a heartbeat to every follower and its answer; when
    // every read started its own, followers spent more CPU on reads than the leader.
    if (inflight_read_ctx_ != 0 && read_batches_.contains(inflight_read_ctx_)) return false;
    inflight_read_ctx_ = 0;
    if (waiting_read_ctx_ == 0 || !read_batches_.contains(waiting_read_ctx_)) return false;
    ctx = inflight_read_ctx_ = std::exchange(waiting_read_ctx_, 0);
  }
  raw_node_->ReadIndex(raft::ReadIndexQueue::EncodeRound(ctx));
  return true;
}

absl::Status RaftNode::HandleReady(raft::Ready rd) {
  if (rd.soft_state) {
    if (rd.soft_state->leader_id != leader_id_.load()) RequeueInflightReads();
    leader_id_ = rd.soft_state->leader_id;
  }
  if (rd.hard_state) {
    term_ = rd.hard_state->term();
    commit_index_ = rd.hard_state->commit();
  }
  // 1. The leader's messages go out while it persists (thesis §10.2.1).
  if (!rd.messages.empty()) transport_->Send(std::move(rd.messages));
  // 2. A received snapshot reaches the state machine before the log records it: a
  //    crash in between leaves a log that replays into a state machine that skips it.
  if (rd.snapshot) RETURN_IF_ERROR(InstallSnapshot(*rd.snapshot));
  // 3. One synced batch for everything this Ready persists.
  if (rd.hard_state || !rd.entries.empty() || rd.snapshot) {
    RETURN_IF_ERROR(log_->Save(rd.hard_state ? &*rd.hard_state : nullptr, rd.entries,
                               rd.snapshot ? &rd.snapshot->metadata() : nullptr, rd.must_sync,
                               rd.snapshot ? rd.snapshot->data() : std::string_view()));
  }
  // 4. Acks and votes only now.
  if (!rd.messages_after_persist.empty()) transport_->Send(std::move(rd.messages_after_persist));
  // 5. Reads confirmed by the leader wait for the apply thread to reach their index.
  if (!rd.read_states.empty()) {
    std::lock_guard<std::mutex> lock(waiters_mu_);
    for (auto& rs : rd.read_states) {
      auto ctx = raft::ReadIndexQueue::DecodeRound(rs.request_ctx);
      if (!ctx) continue;
      auto it = read_batches_.find(*ctx);
      if (it == read_batches_.end()) continue;  // Answered already (a re-issued request).
      for (auto& w : it->second.waiters) confirmed_reads_.emplace(rs.index, std::move(w));
      read_batches_.erase(it);
    }
  }
  if (!rd.read_states.empty()) ReleaseReads(applied_index_.load(), &pass_answers_);
  // 6. Committed entries go to the apply thread; conf changes take effect in raft now.
  if (!rd.committed_entries.empty()) {
    ApplyTask task;
    for (const auto& e : rd.committed_entries) {
      if (e.type() != raftpb::ENTRY_CONF_CHANGE) continue;
      raftpb::ConfChange change;
      if (!change.ParseFromString(e.data())) {
        return absl::DataLossError(absl::StrCat("malformed conf change at index ", e.index()));
      }
      task.conf_state = raw_node_->ApplyConfChange(change);
      bool learner = false;
      for (uint64_t id : task.conf_state->learners()) learner |= id == options_.member_id;
      is_learner_ = learner;
    }
    task.entries = std::move(rd.committed_entries);
    RETURN_IF_ERROR(ScheduleApply(std::move(task)));
  }
  raw_node_->Advance();
  return absl::OkStatus();
}

absl::Status RaftNode::ScheduleApply(ApplyTask task) {
  bool run_here = false;
  {
    std::lock_guard<std::mutex> lock(apply_mu_);
    // The apply thread is idle and nothing is queued, so this thread may stand in for
    // it (apply_running_ keeps it out meanwhile). A snapshot that falls due stays on
    // the apply thread: it syncs the state machine and may take long.
    run_here = !apply_stopping_ && !apply_running_ && apply_queue_.empty() && !task.conf_state &&
               task.entries.size() <= kInlineApplyMaxEntries &&
               task.entries.back().index() < last_snapshot_index_ + options_.snapshot_count;
    if (run_here) {
      apply_running_ = true;
    } else {
      apply_queue_.push_back(std::move(task));
    }
  }
  if (!run_here) {
    apply_cv_.notify_one();
    return absl::OkStatus();
  }
  absl::Status status = ApplyEntries(task, &pass_answers_);
  bool queued;
  {
    std::lock_guard<std::mutex> lock(apply_mu_);
    apply_running_ = false;
    queued = !apply_queue_.empty();
  }
  // A task queued meanwhile (RunOnApplyThread) may run now. Otherwise the apply thread
  // sleeps on: waking it for nothing cost a context switch per write.
  if (queued) apply_cv_.notify_one();
  return status;
}

absl::Status RaftNode::RunOnApplyThread(std::function<absl::Status()> fn) {
  std::promise<absl::Status> done;
  std::future<absl::Status> result = done.get_future();
  ApplyTask task;
  task.run = [this, &fn, &done] { done.set_value(apply_thread_stopping_ ? ErrStopped() : fn()); };
  {
    std::lock_guard<std::mutex> lock(apply_mu_);
    if (apply_stopping_) return ErrStopped();
    apply_queue_.push_back(std::move(task));
  }
  apply_cv_.notify_one();
  return result.get();
}

absl::Status RaftNode::InstallSnapshot(const raftpb::Snapshot& snapshot) {
  // The data arrived (and was installed) before raft saw the snapshot message
  // (ReceiveSnapshot); here the apply thread only adopts raft's view of it.
  const raftpb::SnapshotMetadata meta = snapshot.metadata();
  return RunOnApplyThread([this, meta]() -> absl::Status {
    if (kv_->AppliedIndex() < meta.index()) {
      return absl::DataLossError(absl::StrCat("raft installed a snapshot at index ", meta.index(),
                                              " but the state machine has only applied up to ",
                                              kv_->AppliedIndex()));
    }
    applied_conf_state_ = meta.conf_state();
    raft_applied_index_ = std::max(raft_applied_index_, meta.index());
    last_snapshot_index_ = std::max(last_snapshot_index_, meta.index());
    return absl::OkStatus();
  });
}

void RaftNode::ExpireWaiters() {
  const absl::Time now = absl::Now();
  std::vector<std::function<void(absl::Status)>> expired_reads;
  std::vector<WriteCallback> expired_writes;
  {
    std::lock_guard<std::mutex> lock(waiters_mu_);
    for (auto it = write_waiters_.begin(); it != write_waiters_.end();) {
      if (it->second.deadline <= now) {
        expired_writes.push_back(std::move(it->second.done));
        it = write_waiters_.erase(it);
      } else {
        ++it;
      }
    }
    for (auto it = conf_waiters_.begin(); it != conf_waiters_.end();) {
      if (it->second.deadline <= now) {
        expired_reads.push_back(std::move(it->second.done));
        it = conf_waiters_.erase(it);
      } else {
        ++it;
      }
    }
    for (auto it = read_batches_.begin(); it != read_batches_.end();) {
      auto& waiters = it->second.waiters;
      for (auto w = waiters.begin(); w != waiters.end();) {
        if (w->deadline <= now) {
          expired_reads.push_back(std::move(w->done));
          w = waiters.erase(w);
        } else {
          ++w;
        }
      }
      it = waiters.empty() ? read_batches_.erase(it) : std::next(it);
    }
    for (auto it = confirmed_reads_.begin(); it != confirmed_reads_.end();) {
      if (it->second.deadline <= now) {
        expired_reads.push_back(std::move(it->second.done));
        it = confirmed_reads_.erase(it);
      } else {
        ++it;
      }
    }
  }
  for (auto& cb : expired_writes) cb(ErrTimeout());
  for (auto& cb : expired_reads) cb(ErrTimeout());
}

void RaftNode::FailAllWaiters(const absl::Status& status) {
  std::vector<WriteCallback> writes;
  std::vector<ReadCallback> reads;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& r : inbox_reads_) reads.push_back(std::move(r.done));
    inbox_reads_.clear();
    inbox_proposals_.clear();
    inbox_proposal_bytes_ = 0;
  }
  {
    std::lock_guard<std::mutex> lock(waiters_mu_);
    for (auto& [id, w] : write_waiters_) writes.push_back(std::move(w.done));
    write_waiters_.clear();
    for (auto& [id, w] : conf_waiters_) reads.push_back(std::move(w.done));
    conf_waiters_.clear();
    for (auto& [ctx, batch] : read_batches_) {
      for (auto& w : batch.waiters) reads.push_back(std::move(w.done));
    }
    read_batches_.clear();
    for (auto& [index, w] : confirmed_reads_) reads.push_back(std::move(w.done));
    confirmed_reads_.clear();
  }
  for (auto& cb : writes) cb(status);
  for (auto& cb : reads) cb(status);
}

// ---------------------------------------------------------------- apply thread

void RaftNode::ApplyLoop() {
  SetThreadName("keel-apply");
  for (;;) {
    ApplyTask task;
    std::deque<ApplyTask> abandoned;
    bool stopping = false;
    {
      std::unique_lock<std::mutex> lock(apply_mu_);
      apply_cv_.wait(
          lock, [this] { return apply_stopping_ || (!apply_queue_.empty() && !apply_running_); });
      if (apply_stopping_) {
        stopping = true;
        abandoned.swap(apply_queue_);
      } else {
        task = std::move(apply_queue_.front());
        apply_queue_.pop_front();
        apply_running_ = true;
      }
    }
    if (stopping) {
      apply_thread_stopping_ = true;
      // Unapplied entries are applied again from the log after a restart; threads
      // waiting for a function to run must not wait forever.
      for (auto& t : abandoned) {
        if (t.run) t.run();
      }
      return;
    }
    absl::Status status;
    if (task.run) {
      task.run();
    } else {
      status = ApplyEntries(task, /*deferred=*/nullptr);
      if (status.ok()) status = MaybeSnapshot();
    }
    {
      std::lock_guard<std::mutex> lock(apply_mu_);
      apply_running_ = false;
    }
    if (!status.ok()) {
      Fatal(status);
      return;
    }
  }
}

absl::Status RaftNode::ApplyEntries(ApplyTask& task, Answers* deferred) {
  std::vector<storage::ApplyEntry> batch;
  batch.reserve(task.entries.size());
  // Conf changes reach the state machine as no-ops that store the membership after them.
  std::vector<std::string> member_records;
  std::vector<std::pair<uint64_t, absl::Status>> conf_done;
  if (task.conf_state) RETURN_IF_ERROR(ApplyMembership(task.entries, &member_records, &conf_done));
  for (size_t i = 0; i < task.entries.size(); ++i) {
    const auto& e = task.entries[i];
    const bool conf = e.type() == raftpb::ENTRY_CONF_CHANGE;
    batch.push_back(storage::ApplyEntry{e.index(), conf ? std::string_view() : e.data(),
                                        conf && i < member_records.size()
                                            ? std::string_view(member_records[i])
                                            : std::string_view()});
  }
  ASSIGN_OR_RETURN(std::vector<storage::ApplyResult> results, kv_->Apply(batch));
  if (!member_records.empty() && options_.on_membership) options_.on_membership(membership_);

  // Answer the writers that proposed through this member.
  std::vector<std::pair<WriteCallback, storage::ApplyResult*>> calls;
  {
    size_t r = 0;
    std::lock_guard<std::mutex> lock(waiters_mu_);
    for (const auto& e : task.entries) {
      while (r < results.size() && results[r].index < e.index()) ++r;
      if (r >= results.size() || results[r].index != e.index()) continue;  // Replayed.
      if (e.type() == raftpb::ENTRY_CONF_CHANGE || e.data().empty()) continue;
      uint64_t member, proposal;
      if (!ParseOrigin(e.data(), &member, &proposal) || member != options_.member_id) continue;
      auto it = write_waiters_.find(proposal);
      if (it == write_waiters_.end()) continue;  // Timed out meanwhile.
      calls.emplace_back(std::move(it->second.done), &results[r]);
      write_waiters_.erase(it);
    }
  }
  if (task.conf_state) applied_conf_state_ = *task.conf_state;
  raft_applied_index_ = task.entries.back().index();
  // After a snapshot install the state machine may be ahead of what raft handed out.
  const uint64_t applied = std::max(raft_applied_index_, kv_->AppliedIndex());
  // Before applied_index_ moves: a read barrier released by it (on the raft thread too)
  // must find the observer's view already updated.
  if (options_.on_applied) options_.on_applied(task.entries, results);
  if (options_.on_events) options_.on_events(&results);
  applied_index_ = applied;
  for (auto& [id, status] : conf_done) FinishConfWaiter(id, status);
  Answers here;
  Answers* answers = deferred != nullptr ? deferred : &here;
  for (auto& [cb, result] : calls) answers->writes.emplace_back(std::move(cb), std::move(*result));
  ReleaseReads(applied, answers);
  Answer(std::move(here));
  return absl::OkStatus();
}

absl::Status RaftNode::LoadMembership() {
  ASSIGN_OR_RETURN(std::string stored, kv_->Members());
  if (stored.empty()) {
    membership_ = options_.initial_membership;
  } else if (!membership_.ParseFromString(stored)) {
    return absl::DataLossError(absl::StrCat("malformed membership record in ", kv_->dir()));
  }
  if (options_.on_membership) options_.on_membership(membership_);
  return absl::OkStatus();
}

absl::Status RaftNode::ApplyMembership(const std::vector<raftpb::Entry>& entries,
                                       std::vector<std::string>* records,
                                       std::vector<std::pair<uint64_t, absl::Status>>* done) {
  const uint64_t applied = kv_->AppliedIndex();
  bool changed = false;
  records->resize(entries.size());
  for (size_t i = 0; i < entries.size(); ++i) {
    const raftpb::Entry& e = entries[i];
    // Entries the state machine has (a replay after a restart) are in the stored record.
    if (e.type() != raftpb::ENTRY_CONF_CHANGE || e.index() <= applied) continue;
    raftpb::ConfChange change;
    internalpb::ConfChangeContext context;
    if (!change.ParseFromString(e.data()) || !context.ParseFromString(change.context())) {
      return absl::DataLossError(absl::StrCat("malformed conf change at index ", e.index()));
    }
    absl::Status status = ApplyChange(change, context, &membership_);
    if (!status.ok() && context.origin_member_id() == 0) {
      status = absl::OkStatus();  // A bootstrap entry of a member the record already has.
    }
    if (!status.ok()) {
      std::fprintf(stderr, "keeld: conf change at index %lu ignored: %s\n",
                   static_cast<unsigned long>(e.index()), std::string(status.message()).c_str());
    }
    (*records)[i] = membership_.SerializeAsString();
    changed = true;
    if (context.origin_member_id() == options_.member_id) {
      done->emplace_back(context.origin_proposal_id(), status);
    }
  }
  if (!changed) records->clear();
  return absl::OkStatus();
}

void RaftNode::ReleaseReads(uint64_t applied_index, Answers* deferred) {
  Answers here;
  Answers* answers = deferred != nullptr ? deferred : &here;
  {
    std::lock_guard<std::mutex> lock(waiters_mu_);
    auto end = confirmed_reads_.upper_bound(applied_index);
    for (auto it = confirmed_reads_.begin(); it != end; ++it) {
      answers->reads.push_back(std::move(it->second.done));
    }
    confirmed_reads_.erase(confirmed_reads_.begin(), end);
  }
  Answer(std::move(here));
}

absl::Status RaftNode::MaybeSnapshot() {
  const uint64_t index = raft_applied_index_;
  if (index < last_snapshot_index_ + options_.snapshot_count) return absl::OkStatus();
  // Only a state machine that is exactly at `index` can stand for the snapshot (after
  // a snapshot install it may be ahead until raft's entries catch up).
  if (kv_->AppliedIndex() != index) return absl::OkStatus();
  // The state machine's writes are not fsynced one by one; the log may only drop
  // entries that are durable in it. Its data is streamed from a fresh checkpoint
  // whenever a follower needs it (OpenSnapshot), so the snapshot record is metadata.
  RETURN_IF_ERROR(kv_->Sync());
  ASSIGN_OR_RETURN(raftpb::Snapshot recorded,
                   log_->CreateSnapshot(index, applied_conf_state_, std::string_view()));
  (void)recorded;
  last_snapshot_index_ = index;
  if (index > options_.snapshot_catchup_entries) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      inbox_compactions_.push_back(index - options_.snapshot_catchup_entries);
    }
    cv_.notify_one();
  }
  return absl::OkStatus();
}

}  // namespace keel::server
