#include "tests/sim/sim_node.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "common/check.h"
#include "common/status_macros.h"
#include "raft/bootstrap.h"

namespace keel::sim {
namespace {

// A failure of the core to keep its own contract (not one of the Raft properties).
absl::Status CoreProblem(uint64_t id, absl::string_view what, const absl::Status& status) {
  return absl::InternalError(
      absl::StrCat("CORE PROBLEM at node ", id, ": ", what, ": ", status.ToString()));
}

absl::Status CoreProblem(uint64_t id, absl::string_view what) {
  return absl::InternalError(absl::StrCat("CORE PROBLEM at node ", id, ": ", what));
}

}  // namespace

std::string DescribeMessage(const raftpb::Message& m) {
  std::string out =
      absl::StrCat(raftpb::MessageType_Name(m.type()), " ", m.from(), "->", m.to(), " t", m.term());
  if (m.log_term() || m.index()) absl::StrAppend(&out, " lt", m.log_term(), " i", m.index());
  if (m.entries_size()) {
    absl::StrAppend(&out, " entries[", m.entries(0).index(), "..",
                    m.entries(m.entries_size() - 1).index(), "]");
  }
  if (m.commit()) absl::StrAppend(&out, " c", m.commit());
  if (m.reject()) absl::StrAppend(&out, " reject(hint ", m.reject_hint(), ")");
  if (m.type() == raftpb::MSG_SNAP)
    absl::StrAppend(&out, " snap@", m.snapshot().metadata().index());
  return out;
}

SimNode::SimNode(uint64_t id, const std::vector<uint64_t>& bootstrap_voters) : id_(id) {
  if (!bootstrap_voters.empty()) {
    // Bootstrapping writes into an empty MemoryStorage; it cannot fail for distinct ids.
    KEEL_CHECK(raft::Bootstrap(&storage_, bootstrap_voters).ok());
  }
}

absl::Status SimNode::Start(raft::Config config, NodeEnv& env) {
  KEEL_CHECK(!up());
  auto snapshot = storage_.GetSnapshot();
  if (!snapshot.ok()) return CoreProblem(id_, "storage snapshot", snapshot.status());
  auto state = StateMachine::Decode(snapshot->data());
  if (!state.ok()) return state.status();
  if (state->applied_index != snapshot->metadata().index()) {
    return absl::InternalError(absl::StrCat("sim bug: snapshot state at ", state->applied_index,
                                            " vs metadata ", snapshot->metadata().index()));
  }
  auto initial = storage_.GetInitialState();
  if (!initial.ok()) return CoreProblem(id_, "initial state", initial.status());
  state_ = *state;
  conf_ = initial->conf_state;
  term_ = initial->hard_state.term();
  role_ = raft::Role::kFollower;
  leader_id_ = 0;
  if (state_.applied_index > 0) RETURN_IF_ERROR(env.checker().OnRestore(id_, state_, conf_));

  config.id = id_;
  config.storage = &storage_;
  config.applied = snapshot->metadata().index();
  auto raw = raft::RawNode::Create(config);
  if (!raw.ok()) return CoreProblem(id_, "RawNode::Create on restart", raw.status());
  raw_ = std::move(*raw);
  ++incarnation_;
  return absl::OkStatus();
}

void SimNode::Crash(NodeEnv& env) {
  env.checker().OnCrash(id_);
  raw_.reset();
  crash_at_tick = 0;
  in_flight_.reset();
  pending_reads_.clear();
  role_ = raft::Role::kFollower;
  leader_id_ = 0;
}

absl::Status SimNode::BeginReady(NodeEnv& env) {
  KEEL_CHECK(up() && !in_flight_.has_value());
  raft::Ready ready = raw_->GetReady();
  if (ready.hard_state.has_value()) {
    if (ready.hard_state->term() < term_) {
      return CoreProblem(
          id_, absl::StrCat("term went back from ", term_, " to ", ready.hard_state->term()));
    }
    term_ = ready.hard_state->term();
  }
  if (ready.soft_state.has_value()) {
    const bool was_leader = role_ == raft::Role::kLeader;
    role_ = ready.soft_state->role;
    leader_id_ = ready.soft_state->leader_id;
    if (env.verbose()) {
      env.Trace(absl::StrCat("node ", id_, " is ", raft::RoleName(role_), " term ", term_,
                             " leader ", leader_id_));
    }
    if (role_ == raft::Role::kLeader && !was_leader) {
      LogView view{&storage_, ready.snapshot.has_value() ? &*ready.snapshot : nullptr,
                   &ready.entries};
      RETURN_IF_ERROR(env.checker().OnLeader(id_, term_, view));
    }
  }
  if (role_ == raft::Role::kLeader && !ready.messages.empty()) {
    env.checker().OnLeaderActs(id_, term_);
  }
  for (const raftpb::Message& m : ready.messages) env.Send(incarnation_, m);

  const bool writes =
      !ready.entries.empty() || ready.hard_state.has_value() || ready.snapshot.has_value();
  if (writes && env.rng().Chance(env.node_faults().crash_after_send)) {
    if (env.verbose()) {
      env.Trace(absl::StrCat("node ", id_, " CRASHES after sending, before persisting ",
                             ready.entries.size(), " entries"));
    }
    Crash(env);
    return absl::OkStatus();
  }
  in_flight_ = std::move(ready);
  const uint64_t latency = env.rng().Range(0, env.node_faults().disk_latency_ticks_max);
  write_due_tick_ = env.now_tick() + latency;
  if (latency == 0) return CompleteWrite(env);
  return absl::OkStatus();
}

absl::Status SimNode::Persist(NodeEnv& env, raft::Ready& ready) {
  if (ready.snapshot.has_value()) {
    absl::Status s = storage_.ApplySnapshot(*ready.snapshot);
    if (!s.ok()) return CoreProblem(id_, "persisting the Ready's snapshot", s);
  }
  if (!ready.entries.empty()) {
    std::optional<uint64_t> prev_term;
    const uint64_t first = ready.entries.front().index();
    if (first > 1) {
      auto t = storage_.Term(first - 1);
      if (t.ok()) prev_term = *t;
    } else {
      prev_term = 0;
    }
    for (size_t i = 1; i < ready.entries.size(); ++i) {
      if (ready.entries[i].index() != ready.entries[i - 1].index() + 1) {
        return CoreProblem(id_, "Ready entries are not contiguous");
      }
    }
    RETURN_IF_ERROR(env.checker().OnPersist(id_, prev_term, ready.entries));
    absl::Status s = storage_.Append(ready.entries);
    if (!s.ok()) return CoreProblem(id_, "persisting the Ready's entries", s);
  }
  if (ready.hard_state.has_value()) storage_.SetHardState(*ready.hard_state);
  return absl::OkStatus();
}

absl::Status SimNode::CompleteWrite(NodeEnv& env) {
  KEEL_CHECK(up() && in_flight_.has_value());
  raft::Ready& ready = *in_flight_;
  RETURN_IF_ERROR(Persist(env, ready));
  // Readys are persisted in order: this one's term (the leader's) is on disk now.
  if (role_ == raft::Role::kLeader) env.checker().OnLeaderActs(id_, term_);
  if (env.rng().Chance(env.node_faults().crash_after_persist)) {
    if (env.verbose()) {
      env.Trace(absl::StrCat("node ", id_, " CRASHES after persisting, before sending ",
                             ready.messages_after_persist.size(), " messages"));
    }
    Crash(env);
    return absl::OkStatus();
  }
  for (const raftpb::Message& m : ready.messages_after_persist) env.Send(incarnation_, m);
  RETURN_IF_ERROR(Apply(env, ready));
  for (raft::ReadState& rs : ready.read_states) pending_reads_.push_back(std::move(rs));
  RETURN_IF_ERROR(ReleaseReads(env));
  in_flight_.reset();
  raw_->Advance();
  return MaybeSnapshot(env);
}

absl::Status SimNode::Apply(NodeEnv& env, raft::Ready& ready) {
  if (ready.snapshot.has_value()) {
    auto state = StateMachine::Decode(ready.snapshot->data());
    if (!state.ok()) return CoreProblem(id_, "snapshot data", state.status());
    if (state->applied_index != ready.snapshot->metadata().index()) {
      return CoreProblem(id_, "snapshot data does not match its metadata index");
    }
    if (state->applied_index < state_.applied_index) {
      return CoreProblem(id_, absl::StrCat("snapshot at ", state->applied_index,
                                           " is behind the applied index ", state_.applied_index));
    }
    state_ = *state;
    conf_ = ready.snapshot->metadata().conf_state();
    if (env.verbose()) {
      env.Trace(absl::StrCat("node ", id_, " installs snapshot at ", state_.applied_index));
    }
    RETURN_IF_ERROR(env.checker().OnRestore(id_, state_, conf_));
  }
  for (const raftpb::Entry& entry : ready.committed_entries) {
    if (entry.index() != state_.applied_index + 1) {
      return CoreProblem(
          id_, absl::StrCat("committed entry ", entry.index(), " handed out after applied index ",
                            state_.applied_index));
    }
    if (entry.index() > storage_.LastIndex()) {
      return CoreProblem(
          id_, absl::StrCat("committed entry ", entry.index(),
                            " is not durable (last durable index ", storage_.LastIndex(), ")"));
    }
    state_.Apply(entry);
    const raftpb::ConfState* conf = nullptr;
    if (entry.type() == raftpb::ENTRY_CONF_CHANGE) {
      raftpb::ConfChange change;
      if (!change.ParseFromString(entry.data())) {
        return CoreProblem(id_, absl::StrCat("unparsable conf change at ", entry.index()));
      }
      conf_ = raw_->ApplyConfChange(change);
      conf = &conf_;
      if (env.verbose()) {
        env.Trace(absl::StrCat("node ", id_, " applies conf change ",
                               raftpb::ConfChangeType_Name(change.type()), " ", change.node_id(),
                               " at ", entry.index(), " -> voters ", conf_.voters_size(),
                               " learners ", conf_.learners_size()));
      }
    }
    RETURN_IF_ERROR(env.checker().OnApply(id_, entry, state_, conf));
  }
  return absl::OkStatus();
}

absl::Status SimNode::ReleaseReads(NodeEnv& env) {
  std::vector<raft::ReadState> waiting;
  for (raft::ReadState& rs : pending_reads_) {
    if (state_.applied_index >= rs.index) {
      if (env.verbose()) {
        env.Trace(absl::StrCat("node ", id_, " serves read ", rs.request_ctx, " at index ",
                               rs.index, " (applied ", state_.applied_index, ")"));
      }
      RETURN_IF_ERROR(env.checker().OnRead(id_, rs.request_ctx, rs.index, state_));
    } else {
      waiting.push_back(std::move(rs));
    }
  }
  pending_reads_ = std::move(waiting);
  return absl::OkStatus();
}

absl::Status SimNode::MaybeSnapshot(NodeEnv& env) {
  const NodeFaults& faults = env.node_faults();
  auto snapshot = storage_.GetSnapshot();
  if (!snapshot.ok()) return CoreProblem(id_, "storage snapshot", snapshot.status());
  const uint64_t snapshot_index = snapshot->metadata().index();
  if (state_.applied_index < snapshot_index + faults.snapshot_every_entries) {
    return absl::OkStatus();
  }
  if (state_.applied_index > storage_.LastIndex()) return absl::OkStatus();
  auto created = storage_.CreateSnapshot(state_.applied_index, conf_, state_.Encode());
  if (!created.ok()) return CoreProblem(id_, "CreateSnapshot", created.status());
  const uint64_t keep = env.rng().Range(0, faults.compact_keep_entries_max);
  const uint64_t compact_index = state_.applied_index - std::min(keep, state_.applied_index);
  if (compact_index >= storage_.FirstIndex()) {
    absl::Status s = storage_.Compact(compact_index);
    if (!s.ok()) return CoreProblem(id_, "Compact", s);
  }
  if (env.verbose()) {
    env.Trace(absl::StrCat("node ", id_, " snapshots at ", state_.applied_index,
                           ", log now starts at ", storage_.FirstIndex()));
  }
  return absl::OkStatus();
}

}  // namespace keel::sim
