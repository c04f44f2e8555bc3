// Test harness for the Raft rules tests: a Network of RawNodes, each with its own
// MemoryStorage, driven in one thread through the public API only (raft/raw_node.h).
//
// Every Ready is carried out in the order raw_node.h documents (send `messages`, persist
// snapshot / entries / hard state, send `messages_after_persist`, apply, release read
// states, Advance), and the harness checks the parts of that contract it can see while
// doing so (acks never travel before persistence, committed entries are durable, applied
// indices are contiguous).
//
// Messages go into one FIFO queue and are delivered in rounds; tests can drop them by
// type, by peer or by any predicate, isolate nodes, crash and restart them (a restart
// keeps exactly what the storage holds). CheckInvariants() checks Raft's safety
// properties over everything observed; the RaftTest fixture calls it in TearDown, so
// every unit test is also an invariant test (LogCabin's style).
//
// Thread-safety: none; single-threaded tests only.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "proto/raft.pb.h"
#include "raft/config.h"
#include "raft/memory_storage.h"
#include "raft/raw_node.h"

namespace keel::raft::testing {

// The group id every test node uses (non-zero, so that stamping it is observable).
inline constexpr uint64_t kGroupId = 7;

// Per-node options; each maps onto the Config field of the same name.
struct NodeOptions {
  int election_tick = 10;
  int heartbeat_tick = 1;
  bool pre_vote = true;
  bool check_quorum = true;
  uint64_t max_size_per_msg_bytes = 1 << 20;
  uint64_t max_committed_size_per_ready_bytes = 64 << 20;
  int max_inflight_msgs = 256;
  uint64_t max_inflight_bytes = 0;
  uint64_t max_uncommitted_entries_bytes = 0;
  // Node `id` gets random_seed = seed_base * 1000 + id.
  uint64_t seed_base = 1;
  // false: each storage starts with SetConfState(voters = ids) (membership in the
  // snapshot metadata, log empty). true: the etcd way of raft/bootstrap.h (one committed
  // ENTRY_CONF_CHANGE per voter at indices 1..n, term 1); a node added later then
  // starts from an empty storage and learns the membership from the log.
  bool bootstrap_in_log = false;
  UnsafeInjectedBugs unsafe_injected_bugs;
};

// Builds entries with indices first, first+1, ... and the given terms. Each entry's data
// names its index and term, so entries of different terms never look alike.
std::vector<raftpb::Entry> MakeEntries(uint64_t first, const std::vector<uint64_t>& terms);

raftpb::Message MakeMessage(raftpb::MessageType type, uint64_t from, uint64_t to, uint64_t term);

raftpb::ConfChange MakeConfChange(raftpb::ConfChangeType type, uint64_t node_id);

// Collects both message lists of a Ready.
std::vector<raftpb::Message> AllMessages(const Ready& rd);

// The messages of `type` in `msgs`.
std::vector<raftpb::Message> OfType(const std::vector<raftpb::Message>& msgs,
                                    raftpb::MessageType type);

class Network {
 public:
  // Creates one node per id; each storage is bootstrapped with voters = ids.
  explicit Network(std::vector<uint64_t> ids, NodeOptions options = {});
  ~Network();
  Network(const Network&) = delete;
  Network& operator=(const Network&) = delete;

  // --- Access --------------------------------------------------------------------------
  RawNode& node(uint64_t id);
  MemoryStorage& storage(uint64_t id);
  bool alive(uint64_t id) const;
  std::vector<uint64_t> ids() const;  // All nodes ever added, alive or not (sorted).
  Status status(uint64_t id);
  Role role(uint64_t id) { return status(id).soft_state.role; }
  uint64_t term(uint64_t id) { return status(id).hard_state.term(); }
  uint64_t commit(uint64_t id) { return status(id).hard_state.commit(); }
  // The live leader with the highest term, 0 if there is none.
  uint64_t Leader();

  // --- Driving -------------------------------------------------------------------------
  // Carries out one Ready of `id` (if it has one) in the documented order. Returns
  // whether there was one.
  bool HandleReady(uint64_t id);
  // The parts of HandleReady, for tests that drive a Ready by hand (then call
  // node(id).Advance() themselves).
  void Send(uint64_t from, const std::vector<raftpb::Message>& msgs);
  void Persist(uint64_t id, const Ready& rd);
  void Apply(uint64_t id, const Ready& rd);

  // Delivers every message queued now (not the ones this produces). Returns how many
  // were taken off the queue (delivered or dropped).
  size_t DeliverPending();
  // Alternates HandleReady on all live nodes and DeliverPending until nothing is left.
  // Fails the test if that takes more than max_rounds.
  void Stabilize(int max_rounds = 1000);
  void Tick(uint64_t id, int n = 1);
  void TickAll(int n = 1);
  // n times: tick every live node once, then Stabilize.
  void TickAndStabilize(int n);

  // Campaign(id) and Stabilize; expects `id` to end up leader.
  void ElectLeader(uint64_t id);
  // Proposes on `id`, stabilizes, expects the entry to be applied on every live node
  // that can be reached (checked on `id`). Returns the entry's index.
  uint64_t ProposeAndCommit(uint64_t id, const std::string& data);

  // --- Faults --------------------------------------------------------------------------
  void Isolate(uint64_t id);         // Drops everything to and from id.
  void Cut(uint64_t a, uint64_t b);  // Drops everything between a and b.
  void Heal();                       // Undoes Isolate, Cut and every drop rule.
  // Drops messages for which pred is true (until Heal). Returns nothing; rules stack.
  void DropIf(std::function<bool(const raftpb::Message&)> pred);
  void DropType(raftpb::MessageType type);
  // Loses the volatile state of `id`; its storage (what it persisted) stays.
  void Crash(uint64_t id);
  // Recreates the RawNode from its storage and replays its state machine from the
  // snapshot (Config.applied = 0).
  void Restart(uint64_t id);
  // Replaces the storage of `id` with a log holding `terms` (entry i+1 has terms[i])
  // and the given hard state, then restarts it. For building Figure-7/8 style logs.
  void ResetNode(uint64_t id, const std::vector<uint64_t>& terms, uint64_t term, uint64_t vote,
                 uint64_t commit);
  // Adds a fresh node (empty log; membership bootstrapped as the initial voters, or
  // empty with bootstrap_in_log); it becomes a member once a conf change adding it is
  // applied.
  void AddNode(uint64_t id);

  // Whether a dropped MsgSnap / a delivered MsgSnap is reported to the sender with
  // ReportSnapshot(to, false / true), as a transport would. Default true.
  void set_auto_report_snapshot(bool v) { auto_report_snapshot_ = v; }
  // Called with every Ready HandleReady takes, before it is carried out.
  void set_on_ready(std::function<void(uint64_t, const Ready&)> fn) { on_ready_ = std::move(fn); }
  // Called after every Step the network delivers (after the recipient stepped it).
  void set_after_step(std::function<void(const raftpb::Message&)> fn) {
    after_step_ = std::move(fn);
  }

  // --- Observations --------------------------------------------------------------------
  // Every message any node handed to the network, in send order (including ones later
  // dropped).
  const std::vector<raftpb::Message>& sent() const { return sent_; }
  size_t CountSent(raftpb::MessageType type, uint64_t from = 0, uint64_t to = 0) const;
  void ClearSent() { sent_.clear(); }
  std::deque<raftpb::Message>& queue() { return queue_; }
  size_t CountQueued(raftpb::MessageType type, uint64_t from = 0, uint64_t to = 0) const;
  // Read states released by `id`, in release order.
  const std::vector<ReadState>& read_states(uint64_t id) { return nodes_[id].read_states; }
  // Entries applied by `id` since its last snapshot install / restart.
  const std::vector<raftpb::Entry>& applied(uint64_t id) { return nodes_[id].applied; }
  uint64_t applied_index(uint64_t id) { return nodes_[id].applied_index; }
  // Non-empty data of the normal entries `id` applied, in order.
  std::vector<std::string> AppliedData(uint64_t id);
  // Membership as of the last conf change (or snapshot) `id` applied.
  const raftpb::ConfState& conf_state(uint64_t id) { return nodes_[id].conf_state; }
  // The entries of id's storage in [FirstIndex, LastIndex].
  std::vector<raftpb::Entry> StoredLog(uint64_t id);

  // Checks Raft's safety properties over everything seen so far (gtest failures):
  // at most one leader per term, committed prefixes agree, applied sequences are
  // prefixes of one history, leader completeness.
  void CheckInvariants();

 private:
  struct NodeState {
    std::unique_ptr<MemoryStorage> storage;
    std::unique_ptr<RawNode> raw;
    std::vector<ReadState> read_states;
    std::vector<raftpb::Entry> applied;
    uint64_t applied_index = 0;
    raftpb::ConfState conf_state;
  };

  void CreateRawNode(uint64_t id);
  bool Dropped(const raftpb::Message& m) const;
  void ObserveLeader(uint64_t id);
  void RecordApplied(uint64_t id, const raftpb::Entry& e);

  NodeOptions options_;
  raftpb::ConfState initial_conf_;
  std::map<uint64_t, NodeState> nodes_;
  std::deque<raftpb::Message> queue_;
  std::vector<raftpb::Message> sent_;
  std::set<uint64_t> isolated_;
  std::set<std::pair<uint64_t, uint64_t>> cuts_;
  std::vector<std::function<bool(const raftpb::Message&)>> drop_rules_;
  bool auto_report_snapshot_ = true;
  std::function<void(const raftpb::Message&)> after_step_;
  std::function<void(uint64_t, const Ready&)> on_ready_;

  // Invariant bookkeeping.
  std::map<uint64_t, uint64_t> leader_of_term_;
  // index -> (term, data) of every entry any node applied (one history).
  std::map<uint64_t, std::pair<uint64_t, std::string>> history_;
};

// Fixture base: owns the Network and checks every invariant when the test ends.
class RaftTest : public ::testing::Test {
 protected:
  Network& MakeNetwork(std::vector<uint64_t> ids, NodeOptions options = {}) {
    net_ = std::make_unique<Network>(std::move(ids), options);
    return *net_;
  }
  void TearDown() override {
    if (net_ != nullptr) net_->CheckInvariants();
  }
  std::unique_ptr<Network> net_;
};

}  // namespace keel::raft::testing
