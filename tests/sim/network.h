// Network: the simulated transport between the nodes of one simulation.
//
// Every message gets a random delivery tick (so messages are delayed and reordered), may
// be dropped or duplicated, and is checked against the current partition when it is due
// (a message in flight when a partition starts is lost, like a packet on a cut link).
// Partitions are expressed as groups plus "bridge" nodes that reach every group, which
// makes non-transitive connectivity (a sees b, b sees c, a does not see c) possible.
//
// Thread-safety: none. Ownership: messages are copied in and moved out.
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "proto/raft.pb.h"
#include "tests/sim/rng.h"

namespace keel::sim {

struct NetworkFaults {
  double drop_probability = 0;
  double duplicate_probability = 0;
  // Delivery happens 1..delay_ticks_max ticks after sending.
  uint64_t delay_ticks_max = 1;
};

// A message leaving the network: either delivered, or lost (dropped at random or cut by a
// partition), which the sender's transport learns about (for ReportSnapshot).
struct Delivery {
  raftpb::Message message;
  uint64_t sender_incarnation = 0;
  bool lost = false;
};

class Network {
 public:
  explicit Network(Rng* rng) : rng_(rng) {}

  void set_faults(const NetworkFaults& faults) { faults_ = faults; }
  const NetworkFaults& faults() const { return faults_; }

  // Queues `message` for delivery at a random later tick.
  void Send(const raftpb::Message& message, uint64_t sender_incarnation, uint64_t now_tick);

  // Removes and returns every message due at or before `now_tick`, in delivery order.
  std::vector<Delivery> TakeDue(uint64_t now_tick);

  // Partitions. Nodes not named in any group are in group 0.
  void SetGroups(const std::map<uint64_t, int>& group_of, const std::set<uint64_t>& bridges);
  void Heal();
  bool partitioned() const { return !group_of_.empty() || !bridges_.empty(); }
  bool CanReach(uint64_t from, uint64_t to) const;
  std::string DescribePartition() const;

  size_t in_flight() const { return queue_.size(); }

 private:
  struct Envelope {
    raftpb::Message message;
    uint64_t sender_incarnation = 0;
    bool dropped = false;
  };
  void Enqueue(const raftpb::Message& message, uint64_t sender_incarnation, uint64_t now_tick,
               bool dropped);

  Rng* rng_;
  NetworkFaults faults_;
  // Keyed by (delivery tick, sequence number): a deterministic total order.
  std::map<std::pair<uint64_t, uint64_t>, Envelope> queue_;
  uint64_t next_seq_ = 0;
  std::map<uint64_t, int> group_of_;
  std::set<uint64_t> bridges_;
};

}  // namespace keel::sim
