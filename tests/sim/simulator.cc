#include "tests/sim/simulator.h"

#include <algorithm>
#include <cstdio>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"

namespace keel::sim {
namespace {

template <typename T>
T PickOne(Rng& rng, std::initializer_list<T> choices) {
  auto it = choices.begin();
  std::advance(it, rng.Uniform(choices.size()));
  return *it;
}

absl::Status LivenessFailure(absl::string_view detail) {
  return absl::InternalError(absl::StrCat("VIOLATION of liveness: ", detail));
}

}  // namespace

std::string FaultProfile::Describe() const {
  return absl::StrCat("drop=", network.drop_probability, " dup=", network.duplicate_probability,
                      " delay<=", network.delay_ticks_max, " disk<=", node.disk_latency_ticks_max,
                      " crash/step=", crash_per_step, " crash_after_send=", node.crash_after_send,
                      " crash_after_persist=", node.crash_after_persist, " down<=", down_ticks_max,
                      " partition/step=", partition_per_step,
                      " membership/step=", membership_per_step,
                      " transfer/step=", transfer_per_step, " propose/step=", propose_per_step,
                      " read/step=", read_per_step, " snapshot_every=", node.snapshot_every_entries,
                      " crash_new_leader=", crash_new_leader, " learners_only=", learners_only,
                      " cut_leader_after_commit=", cut_leader_after_commit);
}

Simulator::Simulator(const SimOptions& options)
    : options_(options), rng_(options.seed), network_(&rng_), checker_({}) {
  DrawProfile();
}

Simulator::~Simulator() = default;

void Simulator::DrawProfile() {
  if (options_.nodes <= 0) {
    options_.nodes = PickOne<int>(rng_, {1, 1, 2, 3, 3, 4, 5, 5, 5, 6, 7});
  }
  if (options_.fault_steps == 0) options_.fault_steps = rng_.Range(300, 700);

  base_config_.group_id = 1;
  // Election timeouts stay well above the calm phase's round trip (about 6 ticks, see
  // RunLiveness), as Raft's timing requirement asks; the fault phase may exceed it.
  base_config_.election_tick = PickOne<int>(rng_, {8, 10, 12});
  base_config_.heartbeat_tick = PickOne<int>(rng_, {1, 2});
  base_config_.pre_vote = rng_.Chance(0.7);
  base_config_.check_quorum = rng_.Chance(0.7);
  // One entry per MsgApp makes followers acknowledge old-term entries on their own,
  // which the Figure 8 scenario needs.
  base_config_.max_size_per_msg_bytes = rng_.Chance(0.4) ? 1 : (1 << 20);
  base_config_.max_inflight_msgs = PickOne<int>(rng_, {1, 4, 256});
  base_config_.unsafe_injected_bugs = options_.bugs;

  profile_.network.drop_probability = PickOne<double>(rng_, {0, 0, 0.01, 0.05, 0.15});
  profile_.network.duplicate_probability = PickOne<double>(rng_, {0, 0.02, 0.1});
  profile_.network.delay_ticks_max = PickOne<uint64_t>(rng_, {1, 2, 4, 10});
  profile_.node.disk_latency_ticks_max = PickOne<uint64_t>(rng_, {0, 0, 1, 3});
  profile_.node.crash_after_send = PickOne<double>(rng_, {0, 0.001, 0.005, 0.02});
  profile_.node.crash_after_persist = PickOne<double>(rng_, {0, 0.001, 0.005});
  profile_.node.snapshot_every_entries = PickOne<uint64_t>(rng_, {5, 20, 100});
  profile_.node.compact_keep_entries_max = rng_.Range(0, 5);
  profile_.crash_per_step = PickOne<double>(rng_, {0, 0.002, 0.01, 0.03});
  profile_.down_ticks_max = PickOne<uint64_t>(rng_, {5, 30, 150});
  profile_.partition_per_step = PickOne<double>(rng_, {0, 0.005, 0.02});
  profile_.membership_per_step = PickOne<double>(rng_, {0, 0.005, 0.02});
  profile_.transfer_per_step = PickOne<double>(rng_, {0, 0.003, 0.01});
  profile_.propose_per_step = PickOne<double>(rng_, {0.1, 0.3, 1.0});
  profile_.read_per_step = PickOne<double>(rng_, {0.05, 0.2});
  profile_.tick_skip = PickOne<double>(rng_, {0, 0.05});
  profile_.report_unreachable = 0.5;
  profile_.crash_new_leader = PickOne<double>(rng_, {0, 0, 0.2, 0.5});
  profile_.learners_only = options_.nodes == 1 && rng_.Chance(0.7);
  profile_.cut_leader_after_commit = PickOne<double>(rng_, {0, 0, 0.02, 0.1});
  if (options_.nodes == 1 && profile_.membership_per_step == 0) {
    profile_.membership_per_step = 0.01;
  }
  network_.set_faults(profile_.network);
}

raft::Config Simulator::BaseConfig() {
  raft::Config config = base_config_;
  config.random_seed = rng_.Next();
  return config;
}

absl::Status Simulator::StartNode(SimNode& node) {
  if (options_.verbose) Trace(absl::StrCat("node ", node.id(), " starts"));
  return node.Start(BaseConfig(), *this);
}

void Simulator::Trace(const std::string& line) {
  std::printf("[t=%llu] %s\n", static_cast<unsigned long long>(now_), line.c_str());
}

void Simulator::Send(uint64_t sender_incarnation, const raftpb::Message& message) {
  if (message.type() == raftpb::MSG_SNAP) ++stats_.snapshots_sent;
  if (options_.verbose) Trace(absl::StrCat("send ", DescribeMessage(message)));
  network_.Send(message, sender_incarnation, now_);
}

SimNode* Simulator::Node(uint64_t id) {
  auto it = nodes_.find(id);
  return it == nodes_.end() ? nullptr : it->second.get();
}

std::vector<SimNode*> Simulator::UpNodes() {
  std::vector<SimNode*> out;
  for (auto& [id, node] : nodes_) {
    if (node->up() && !node->removed) out.push_back(node.get());
  }
  return out;
}

SimNode* Simulator::Leader() {
  SimNode* best = nullptr;
  for (SimNode* node : UpNodes()) {
    if (node->role() == raft::Role::kLeader && (best == nullptr || node->term() > best->term())) {
      best = node;
    }
  }
  return best;
}

SimResult Simulator::Run() {
  SimResult result;
  result.profile =
      absl::StrCat("nodes=", options_.nodes, " steps=", options_.fault_steps,
                   " election_tick=", base_config_.election_tick,
                   " pre_vote=", base_config_.pre_vote, " check_quorum=", base_config_.check_quorum,
                   " max_msg_bytes=", base_config_.max_size_per_msg_bytes,
                   " inflight=", base_config_.max_inflight_msgs, " ", profile_.Describe());
  if (options_.verbose) std::printf("profile: %s\n", result.profile.c_str());
  absl::Status status;
  std::vector<uint64_t> voters;
  for (int i = 1; i <= options_.nodes; ++i) voters.push_back(i);
  for (uint64_t id : voters) {
    auto node = std::make_unique<SimNode>(id, voters);
    SimNode& ref = *node;
    nodes_.emplace(id, std::move(node));
    status.Update(StartNode(ref));
  }
  next_node_id_ = voters.size() + 1;
  for (now_ = 1; status.ok() && now_ <= options_.fault_steps; ++now_) {
    status = Step(true);
    if (!status.ok()) break;
  }
  if (status.ok()) status = RunLiveness();
  stats_.steps = now_;
  stats_.committed = checker_.committed_index();
  stats_.leaders = checker_.leaders_elected();
  result.stats = stats_;
  if (!status.ok()) {
    result.ok = false;
    result.step = now_;
    result.failure = std::string(status.message());
  }
  return result;
}

absl::Status Simulator::Step(bool faults_on) {
  RETURN_IF_ERROR(Deliver());
  TickNodes(faults_on);
  if (faults_on) RETURN_IF_ERROR(InjectFaults());
  // Background writes stop with the faults, so that the liveness bound measures the
  // cluster draining its backlog, not a load it may be too slow for.
  if (faults_on && rng_.Chance(profile_.propose_per_step)) {
    ClientPropose(absl::StrCat("v", next_payload_++), rng_.Chance(0.7));
  }
  if (rng_.Chance(profile_.read_per_step)) ClientRead();
  RETURN_IF_ERROR(ProcessReadies());
  if (faults_on) ScheduleNewLeaderCrashes();
  RetireRemovedNodes();
  return CheckAfterStep();
}

absl::Status Simulator::Deliver() {
  for (Delivery& d : network_.TakeDue(now_)) {
    const raftpb::Message& m = d.message;
    SimNode* to = Node(m.to());
    SimNode* from = Node(m.from());
    const bool delivered = !d.lost && to != nullptr && to->up() && !to->removed;
    if (options_.verbose) {
      Trace(absl::StrCat(delivered ? "deliver " : "lose ", DescribeMessage(m)));
    }
    if (delivered) {
      absl::Status s = to->raw()->Step(m);
      // A forwarded proposal may be refused (no leader, transfer in progress): that is
      // the client's problem. A message the core itself calls malformed is the core's.
      if (options_.verbose && !s.ok()) Trace(absl::StrCat("step refused: ", s.ToString()));
      if (absl::IsInvalidArgument(s)) {
        return absl::InternalError(absl::StrCat("CORE PROBLEM at node ", m.to(), ": Step(",
                                                DescribeMessage(m), "): ", s.ToString()));
      }
    }
    const bool sender_alive =
        from != nullptr && from->up() && from->incarnation() == d.sender_incarnation;
    if (!sender_alive) continue;
    if (m.type() == raftpb::MSG_SNAP) from->raw()->ReportSnapshot(m.to(), delivered);
    if (!delivered && rng_.Chance(profile_.report_unreachable)) {
      from->raw()->ReportUnreachable(m.to());
    }
  }
  return absl::OkStatus();
}

void Simulator::TickNodes(bool faults_on) {
  for (SimNode* node : UpNodes()) {
    if (faults_on && rng_.Chance(profile_.tick_skip)) continue;
    node->raw()->Tick();
  }
}

absl::Status Simulator::ProcessReadies() {
  for (auto& [id, node] : nodes_) {
    for (int rounds = 0; node->up(); ++rounds) {
      if (rounds > 1000) {
        return absl::InternalError(
            absl::StrCat("CORE PROBLEM at node ", id, ": Ready loop never quiesces"));
      }
      if (node->write_in_flight()) {
        if (node->write_due_tick() > now_) break;
        RETURN_IF_ERROR(node->CompleteWrite(*this));
        continue;
      }
      if (!node->raw()->HasReady()) break;
      RETURN_IF_ERROR(node->BeginReady(*this));
    }
    if (!node->up() && !node->removed && node->down_until_tick <= now_) {
      // The node crashed inside a Ready (a targeted crash point).
      ++stats_.crashes;
      node->down_until_tick = now_ + rng_.Range(1, profile_.down_ticks_max);
    }
  }
  return absl::OkStatus();
}

absl::Status Simulator::CheckAfterStep() {
  std::map<uint64_t, LogView> durable;
  for (auto& [id, node] : nodes_) {
    if (!node->removed) durable.emplace(id, node->DurableView());
  }
  absl::Status s = checker_.CheckDurability(durable);
  if (s.ok()) return s;
  if (options_.verbose) {
    for (auto& [id, node] : nodes_) {
      Trace(absl::StrCat("node ", id, " up=", node->up(), " removed=", node->removed,
                         " durable log [", node->storage().FirstIndex(), ",",
                         node->storage().LastIndex(), "] applied ", node->state().applied_index));
    }
  }
  return s;
}

SimNode* Simulator::StableLeader() {
  SimNode* leader = Leader();
  if (leader == nullptr) return nullptr;
  for (uint64_t id : leader->conf().voters()) {
    SimNode* node = Node(id);
    if (node == nullptr || !node->up() || node->removed) continue;
    if (node->term() != leader->term() || node->leader_id() != leader->id()) return nullptr;
  }
  return leader;
}

absl::Status Simulator::RunLiveness() {
  // Faults stop: heal, restart everyone, make the network and disks reliable.
  network_.Heal();
  network_.set_faults(NetworkFaults{0, 0, 2});
  profile_.node.disk_latency_ticks_max =
      std::min<uint64_t>(profile_.node.disk_latency_ticks_max, 1);
  profile_.node.crash_after_send = 0;
  profile_.node.crash_after_persist = 0;
  if (options_.verbose) Trace("faults stop; network healed; all nodes restart");
  RETURN_IF_ERROR(RestartDueNodes(/*all=*/true));

  const uint64_t election_tick = base_config_.election_tick;
  const uint64_t leader_bound_ticks = 50 * election_tick;
  const uint64_t leader_deadline = now_ + leader_bound_ticks;
  SimNode* leader = nullptr;
  while ((leader = StableLeader()) == nullptr) {
    if (now_ >= leader_deadline) {
      return LivenessFailure(
          absl::StrCat("no stable leader within ", leader_bound_ticks, " ticks after healing"));
    }
    ++now_;
    RETURN_IF_ERROR(Step(false));
  }
  if (options_.verbose) Trace(absl::StrCat("stable leader ", leader->id()));

  std::vector<std::string> payloads;
  for (int i = 0; i < 3; ++i) payloads.push_back(absl::StrCat("live", i));
  for (const std::string& p : payloads) ClientPropose(p, true);
  // The new proposals queue behind the leader's uncommitted backlog. With one entry per
  // MsgApp the leader moves max_inflight_msgs entries per round trip (at most 2 network
  // delays plus 2 disk writes plus a tick each way).
  const uint64_t backlog_entries =
      leader->raw()->GetStatus().last_index - checker_.committed_index();
  const uint64_t round_trip_ticks =
      2 * (network_.faults().delay_ticks_max + profile_.node.disk_latency_ticks_max + 1);
  const uint64_t drain_ticks =
      base_config_.max_size_per_msg_bytes == 1
          ? backlog_entries * round_trip_ticks / base_config_.max_inflight_msgs + 1
          : 0;
  const uint64_t commit_bound_ticks = 50 * election_tick + drain_ticks;
  const uint64_t commit_deadline = now_ + commit_bound_ticks;
  const uint64_t retry_every_ticks = 5 * election_tick;
  for (uint64_t waited = 0;; ++waited) {
    uint64_t max_index = 0;
    std::string missing;
    for (const std::string& p : payloads) {
      auto index = checker_.IndexOfPayload(p);
      if (!index.has_value()) {
        missing = p;
        break;
      }
      max_index = std::max(max_index, *index);
    }
    std::string lagging;
    if (missing.empty()) {
      const raftpb::ConfState& conf = checker_.config();
      std::vector<uint64_t> members(conf.voters().begin(), conf.voters().end());
      members.insert(members.end(), conf.learners().begin(), conf.learners().end());
      for (uint64_t id : members) {
        SimNode* node = Node(id);
        if (node != nullptr && node->up() && node->state().applied_index < max_index) {
          lagging =
              absl::StrCat("node ", id, " applied ", node->state().applied_index, " < ", max_index);
        }
      }
      if (lagging.empty()) return absl::OkStatus();
    }
    if (now_ >= commit_deadline) {
      return LivenessFailure(absl::StrCat(
          "proposals not committed and applied everywhere within ", commit_bound_ticks,
          " ticks of a stable leader: ", missing.empty() ? lagging : "missing " + missing));
    }
    if (!missing.empty() && waited > 0 && waited % retry_every_ticks == 0) {
      ClientPropose(missing, true);
    }
    ++now_;
    RETURN_IF_ERROR(Step(false));
  }
}

SimResult RunSimulation(const SimOptions& options) {
  Simulator sim(options);
  return sim.Run();
}

}  // namespace keel::sim
