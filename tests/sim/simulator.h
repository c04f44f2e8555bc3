// Simulator: runs one seeded simulation of a keel Raft group and checks it.
//
// One thread, one Rng, discrete time (one step = one tick). Each step: deliver due
// messages, finish due disk writes, tick every node, inject faults (crashes, partitions,
// membership changes, leader transfers) and client requests (proposals, ReadIndex), then
// carry out every node's Ready, and check the safety properties (checker.h). After the
// fault phase the network heals and every node restarts, and the simulator checks
// liveness: a stable leader within a bounded number of ticks, then new proposals
// committed within a bound.
//
// Every random choice comes from the seed, in a fixed order, and every container whose
// order reaches a decision is ordered: `keel-sim --seed N` replays a run step for step.
//
// Thread-safety: none; a Simulator is used by one thread and run once.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "raft/config.h"
#include "tests/sim/checker.h"
#include "tests/sim/network.h"
#include "tests/sim/rng.h"
#include "tests/sim/sim_node.h"

namespace keel::sim {

struct SimOptions {
  uint64_t seed = 1;
  int nodes = 0;             // Initial voters, 1..7; 0 picks 1..7 from the seed.
  uint64_t fault_steps = 0;  // Length of the fault phase; 0 picks it from the seed.
  bool verbose = false;      // Trace every event (for replaying one seed).
  raft::UnsafeInjectedBugs bugs;
};

// The per-seed fault schedule: rates drawn once from the seed, so that different seeds
// stress different things (message loss, crash storms, partitions, churn, slow disks).
struct FaultProfile {
  NetworkFaults network;
  NodeFaults node;
  double crash_per_step = 0;
  uint64_t down_ticks_max = 50;
  double partition_per_step = 0;
  double membership_per_step = 0;
  double transfer_per_step = 0;
  double propose_per_step = 0;
  double read_per_step = 0;
  double tick_skip = 0;  // A node misses a tick (clock drift).
  // A new leader crashes within a few ticks of its election, often before its entries
  // reach everyone: the Figure 8 scenario of the Raft paper needs a run of these.
  double crash_new_leader = 0;
  // Membership changes only add learners (with one voter: a single voter that commits
  // alone and replicates to learners).
  bool learners_only = false;
  // A leader is cut off (and crashes soon after) right after it applied new entries,
  // before its next messages arrive: leaves followers one entry behind its commit.
  double cut_leader_after_commit = 0;
  double report_unreachable = 0;
  std::string Describe() const;
};

struct SimStats {
  uint64_t steps = 0;
  uint64_t committed = 0;
  uint64_t leaders = 0;
  uint64_t crashes = 0;
  uint64_t partitions = 0;
  uint64_t conf_changes_proposed = 0;
  uint64_t transfers = 0;
  uint64_t proposals = 0;
  uint64_t reads_started = 0;
  uint64_t snapshots_sent = 0;
};

struct SimResult {
  bool ok = true;
  uint64_t step = 0;    // Step of the failure.
  std::string failure;  // What was violated.
  SimStats stats;
  std::string profile;
};

class Simulator final : public NodeEnv {
 public:
  explicit Simulator(const SimOptions& options);
  ~Simulator() override;

  SimResult Run();

  // NodeEnv.
  void Send(uint64_t sender_incarnation, const raftpb::Message& message) override;
  Checker& checker() override { return checker_; }
  Rng& rng() override { return rng_; }
  uint64_t now_tick() const override { return now_; }
  const NodeFaults& node_faults() const override { return profile_.node; }
  bool verbose() const override { return options_.verbose; }
  void Trace(const std::string& line) override;

 private:
  static constexpr size_t kMaxNodes = 7;

  void DrawProfile();
  raft::Config BaseConfig();
  [[nodiscard]] absl::Status StartNode(SimNode& node);
  [[nodiscard]] absl::Status Step(bool faults_on);
  [[nodiscard]] absl::Status Deliver();
  [[nodiscard]] absl::Status ProcessReadies();
  [[nodiscard]] absl::Status CheckAfterStep();
  void TickNodes(bool faults_on);

  // Faults and clients (faults.cc).
  [[nodiscard]] absl::Status InjectFaults();
  [[nodiscard]] absl::Status RestartDueNodes(bool all);
  void CrashRandomNode();
  void ScheduleNewLeaderCrashes();
  void ChangePartition();
  [[nodiscard]] absl::Status ChangeMembership();
  void TransferLeadership();
  void ClientPropose(const std::string& payload, bool to_leader);
  void ClientRead();
  void RetireRemovedNodes();

  // Liveness phase.
  [[nodiscard]] absl::Status RunLiveness();
  SimNode* StableLeader();

  SimNode* Leader();                // The up leader with the highest term, if any.
  std::vector<SimNode*> UpNodes();  // In id order.
  SimNode* Node(uint64_t id);

  SimOptions options_;
  Rng rng_;
  Network network_;
  Checker checker_;
  FaultProfile profile_;
  raft::Config base_config_;
  std::map<uint64_t, std::unique_ptr<SimNode>> nodes_;
  uint64_t next_node_id_ = 1;
  uint64_t now_ = 0;
  uint64_t partition_until_ = 0;
  uint64_t next_payload_ = 1;
  uint64_t next_read_ = 1;
  SimStats stats_;
};

// Runs one seed.
SimResult RunSimulation(const SimOptions& options);

}  // namespace keel::sim
