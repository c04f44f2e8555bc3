// The fault schedule and the simulated clients of Simulator (see simulator.h).
#include <algorithm>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "tests/sim/simulator.h"

namespace keel::sim {
namespace {

bool Contains(const google::protobuf::RepeatedField<uint64_t>& field, uint64_t id) {
  return std::find(field.begin(), field.end(), id) != field.end();
}

// Ticks after which a node that never became a member (its add was lost) is dropped.
constexpr uint64_t kOrphanTicks = 300;

}  // namespace

absl::Status Simulator::InjectFaults() {
  RETURN_IF_ERROR(RestartDueNodes(/*all=*/false));
  if (rng_.Chance(profile_.crash_per_step)) CrashRandomNode();
  for (SimNode* node : UpNodes()) {
    if (node->crash_at_tick != 0 && node->crash_at_tick <= now_) {
      node->Crash(*this);
      node->crash_at_tick = 0;
      node->down_until_tick = now_ + rng_.Range(1, profile_.down_ticks_max);
      ++stats_.crashes;
      if (options_.verbose) {
        Trace(absl::StrCat("new leader ", node->id(), " CRASHES until t=", node->down_until_tick));
      }
    }
  }
  if (network_.partitioned() && now_ >= partition_until_) {
    network_.Heal();
    if (options_.verbose) Trace("partition heals");
  }
  if (rng_.Chance(profile_.partition_per_step)) ChangePartition();
  if (rng_.Chance(profile_.membership_per_step)) RETURN_IF_ERROR(ChangeMembership());
  if (rng_.Chance(profile_.transfer_per_step)) TransferLeadership();
  return absl::OkStatus();
}

absl::Status Simulator::RestartDueNodes(bool all) {
  for (auto& [id, node] : nodes_) {
    if (node->up() || node->removed) continue;
    if (!all && node->down_until_tick > now_) continue;
    RETURN_IF_ERROR(StartNode(*node));
  }
  return absl::OkStatus();
}

void Simulator::CrashRandomNode() {
  std::vector<SimNode*> up = UpNodes();
  if (up.empty()) return;
  SimNode* leader = Leader();
  SimNode* victim = leader != nullptr && rng_.Chance(0.5) ? leader : rng_.Pick(up);
  victim->Crash(*this);
  victim->down_until_tick = now_ + rng_.Range(1, profile_.down_ticks_max);
  ++stats_.crashes;
  if (options_.verbose) {
    Trace(absl::StrCat("node ", victim->id(), " CRASHES until t=", victim->down_until_tick));
  }
}

void Simulator::ScheduleNewLeaderCrashes() {
  for (SimNode* node : UpNodes()) {
    const bool applied_more = node->state().applied_index > node->applied_seen;
    node->applied_seen = node->state().applied_index;
    if (node->role() == raft::Role::kLeader && applied_more && node->crash_at_tick == 0 &&
        !network_.partitioned() && rng_.Chance(profile_.cut_leader_after_commit)) {
      network_.SetGroups({{node->id(), 1}}, {});
      node->crash_at_tick = now_ + rng_.Range(1, 3);
      partition_until_ = node->crash_at_tick + rng_.Range(0, 3);
      if (options_.verbose) {
        Trace(absl::StrCat("leader ", node->id(), " cut off after applying ", node->applied_seen,
                           "; crashes at t=", node->crash_at_tick));
      }
    }
    if (node->role() != raft::Role::kLeader || node->leader_term_handled == node->term()) continue;
    node->leader_term_handled = node->term();
    if (!rng_.Chance(profile_.crash_new_leader)) continue;
    node->crash_at_tick = now_ + rng_.Range(1, 4);
    // Often cut it off first, so that what it just wrote (its no-op, new proposals)
    // stays on its own disk only: old-term entries that later leaders must handle.
    if (!network_.partitioned() && rng_.Chance(0.5)) {
      network_.SetGroups({{node->id(), 1}}, {});
      partition_until_ = node->crash_at_tick + rng_.Range(0, 3);
    }
    if (options_.verbose) {
      Trace(absl::StrCat("new leader ", node->id(), " will crash at t=", node->crash_at_tick,
                         network_.partitioned() ? "; " + network_.DescribePartition() : ""));
    }
  }
}

void Simulator::ChangePartition() {
  std::vector<uint64_t> ids;
  for (auto& [id, node] : nodes_) {
    if (!node->removed) ids.push_back(id);
  }
  if (ids.size() < 2) return;
  std::map<uint64_t, int> group_of;
  std::set<uint64_t> bridges;
  switch (rng_.Uniform(4)) {
    case 0:  // Heal.
      break;
    case 1:  // A random split.
      for (uint64_t id : ids) group_of[id] = static_cast<int>(rng_.Uniform(2));
      break;
    case 2: {  // Isolate the leader (or a random node when there is none).
      SimNode* leader = Leader();
      group_of[leader != nullptr ? leader->id() : rng_.Pick(ids)] = 1;
      break;
    }
    default: {  // Two sides and a bridge node that sees both (non-transitive).
      for (uint64_t id : ids) group_of[id] = static_cast<int>(rng_.Uniform(2));
      SimNode* leader = Leader();
      bridges.insert(leader != nullptr && rng_.Chance(0.5) ? leader->id() : rng_.Pick(ids));
      break;
    }
  }
  network_.SetGroups(group_of, bridges);
  partition_until_ = now_ + rng_.Range(10, 200);
  ++stats_.partitions;
  if (options_.verbose) {
    Trace(absl::StrCat("partition ", network_.DescribePartition(), " until t=", partition_until_));
  }
}

absl::Status Simulator::ChangeMembership() {
  SimNode* leader = Leader();
  if (leader == nullptr) return absl::OkStatus();
  const raftpb::ConfState& conf = leader->conf();
  size_t present = 0;
  for (auto& [id, node] : nodes_) present += node->removed ? 0 : 1;
  std::vector<uint64_t> promotable;
  for (uint64_t id : conf.learners()) {
    SimNode* node = Node(id);
    if (node != nullptr && node->up() && !node->removed) promotable.push_back(id);
  }
  std::vector<uint64_t> removable(conf.learners().begin(), conf.learners().end());
  // No voter leaves a two-voter group: whichever goes, if the survivor crashes before
  // it learns the removal committed it needs the removed node's vote, which a longer log
  // refuses — a limit Raft shares with etcd (raft/design.md).
  if (conf.voters_size() > 2) {
    removable.insert(removable.end(), conf.voters().begin(), conf.voters().end());
  }
  enum Kind { kAddLearner, kPromote, kRemove };
  std::vector<Kind> kinds;
  if (present < kMaxNodes) kinds.push_back(kAddLearner);
  if (!promotable.empty() && !profile_.learners_only) kinds.push_back(kPromote);
  if (!removable.empty() && !profile_.learners_only) kinds.push_back(kRemove);
  if (kinds.empty()) return absl::OkStatus();

  raftpb::ConfChange change;
  switch (rng_.Pick(kinds)) {
    case kAddLearner: {
      // A re-added member always gets a fresh id and an empty disk.
      const uint64_t id = next_node_id_++;
      auto node = std::make_unique<SimNode>(id, std::vector<uint64_t>{});
      node->created_tick = now_;
      SimNode& ref = *node;
      nodes_.emplace(id, std::move(node));
      RETURN_IF_ERROR(StartNode(ref));
      change.set_type(raftpb::CONF_CHANGE_ADD_LEARNER);
      change.set_node_id(id);
      break;
    }
    case kPromote:
      change.set_type(raftpb::CONF_CHANGE_ADD_NODE);
      change.set_node_id(rng_.Pick(promotable));
      break;
    case kRemove:
      change.set_type(raftpb::CONF_CHANGE_REMOVE_NODE);
      change.set_node_id(rng_.Pick(removable));
      break;
  }
  absl::Status s = leader->raw()->ProposeConfChange(change);
  ++stats_.conf_changes_proposed;
  if (options_.verbose) {
    Trace(absl::StrCat("propose conf change ", raftpb::ConfChangeType_Name(change.type()), " ",
                       change.node_id(), " at leader ", leader->id(), ": ", s.ToString()));
  }
  if (!s.ok() && change.type() == raftpb::CONF_CHANGE_ADD_LEARNER) {
    nodes_.erase(change.node_id());  // Never became a member; nothing can reach it.
  }
  return absl::OkStatus();
}

void Simulator::TransferLeadership() {
  SimNode* leader = Leader();
  if (leader == nullptr) return;
  std::vector<uint64_t> targets;
  for (uint64_t id : leader->conf().voters()) {
    if (id != leader->id()) targets.push_back(id);
  }
  if (targets.empty()) return;
  const uint64_t target = rng_.Pick(targets);
  leader->raw()->TransferLeader(target);
  ++stats_.transfers;
  if (options_.verbose) Trace(absl::StrCat("leader ", leader->id(), " transfers to ", target));
}

void Simulator::ClientPropose(const std::string& payload, bool to_leader) {
  std::vector<SimNode*> up = UpNodes();
  if (up.empty()) return;
  SimNode* leader = Leader();
  SimNode* target = to_leader && leader != nullptr ? leader : rng_.Pick(up);
  absl::Status s = target->raw()->Propose(payload);
  ++stats_.proposals;
  if (options_.verbose) {
    Trace(absl::StrCat("client proposes ", payload, " at node ", target->id(), ": ", s.ToString()));
  }
}

void Simulator::ClientRead() {
  std::vector<SimNode*> up = UpNodes();
  if (up.empty()) return;
  SimNode* leader = Leader();
  SimNode* target = leader != nullptr && rng_.Chance(0.5) ? leader : rng_.Pick(up);
  const std::string ctx = absl::StrCat("read", next_read_++);
  checker_.OnReadStart(ctx);
  target->raw()->ReadIndex(ctx);
  ++stats_.reads_started;
  if (options_.verbose) Trace(absl::StrCat("client reads ", ctx, " at node ", target->id()));
}

void Simulator::RetireRemovedNodes() {
  const raftpb::ConfState& conf = checker_.config();
  // A removed node keeps running until every remaining member has applied the change:
  // a removed leader may be the only one that knows the removal committed, and the rest
  // still count its vote until they apply it.
  bool members_caught_up = true;
  for (auto& [id, node] : nodes_) {
    const bool member = Contains(conf.voters(), id) || Contains(conf.learners(), id);
    if (member && !node->removed && node->state().applied_index < checker_.config_index()) {
      members_caught_up = false;
    }
  }
  for (auto& [id, node] : nodes_) {
    if (node->removed) continue;
    const bool member = Contains(conf.voters(), id) || Contains(conf.learners(), id);
    if (member) {
      node->joined = true;
      continue;
    }
    const bool orphan =
        !node->joined && node->created_tick > 0 && now_ > node->created_tick + kOrphanTicks;
    if ((node->joined && members_caught_up) || orphan) {
      node->removed = true;
      node->Crash(*this);
      if (options_.verbose) {
        Trace(absl::StrCat("node ", id, orphan ? " never joined; dropped" : " removed; stops"));
      }
    }
  }
}

}  // namespace keel::sim
