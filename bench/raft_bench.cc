// Benchmarks of the consensus core alone: a 3-node cluster in one thread, MemoryStorage,
// messages handed straight from one RawNode to the next (no network, no fsync, no
// serialization). What is measured is the cost of raft/ itself plus the minimal driver
// every caller needs (Ready handling, MemoryStorage appends).
//
//   BM_CommitProposals/<batch>: proposals committed per second when `batch` proposals
//     are made between two Ready cycles (1 = no batching).
//   Counters msgs_per_entry / readies_per_entry: messages delivered and Ready cycles
//     (all nodes) per committed entry, to show what batching saves.
//   Counter allocs_per_entry: calls to operator new per committed entry, counted by the
//     global replacement below, across all three nodes and the driver (including the
//     proposal's own std::string); periodic log compaction is excluded.
//
// Run: build-*/bench/keel-raft-bench --benchmark_min_time=2
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <new>
#include <string>
#include <vector>

#include "benchmark/benchmark.h"
#include "common/check.h"
#include "raft/memory_storage.h"
#include "raft/raw_node.h"

namespace {
// Single-threaded benchmark: a plain counter is enough (and cheaper than an atomic).
uint64_t g_allocations = 0;
}  // namespace

// GCC flags free() in a replaced operator delete as a mismatch; it is not: every
// replaced operator new below allocates with malloc.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
void* operator new(std::size_t size) {
  ++g_allocations;
  void* p = std::malloc(size == 0 ? 1 : size);
  if (p == nullptr) std::abort();  // No exceptions in keel; out of memory is fatal.
  return p;
}
void* operator new[](std::size_t size) {
  ++g_allocations;
  void* p = std::malloc(size == 0 ? 1 : size);
  if (p == nullptr) std::abort();  // No exceptions in keel; out of memory is fatal.
  return p;
}
void* operator new(std::size_t size, const std::nothrow_t&) noexcept {
  ++g_allocations;
  return std::malloc(size == 0 ? 1 : size);
}
void* operator new[](std::size_t size, const std::nothrow_t&) noexcept {
  ++g_allocations;
  return std::malloc(size == 0 ? 1 : size);
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }
#pragma GCC diagnostic pop

namespace keel::raft {
namespace {

constexpr uint64_t kGroupId = 1;
constexpr size_t kPayloadBytes = 128;
// Compact every node's log once this many entries are applied beyond the last snapshot,
// so that a long run does not grow memory without bound.
constexpr uint64_t kCompactEvery = 8192;

class Cluster {
 public:
  explicit Cluster(int size) {
    raftpb::ConfState cs;
    for (int i = 1; i <= size; ++i) cs.add_voters(i);
    for (int i = 1; i <= size; ++i) {
      auto storage = std::make_unique<MemoryStorage>();
      storage->SetConfState(cs);
      Config c;
      c.id = i;
      c.group_id = kGroupId;
      c.storage = storage.get();
      c.random_seed = 42;
      auto node = RawNode::Create(c);
      KEEL_CHECK(node.ok());
      storages_.push_back(std::move(storage));
      nodes_.push_back(std::move(node).value());
      applied_.push_back(0);
      compacted_.push_back(0);
    }
    KEEL_CHECK(nodes_[0]->Campaign().ok());
    RunUntilIdle();
    KEEL_CHECK(nodes_[0]->GetStatus().soft_state.role == Role::kLeader);
  }

  RawNode& leader() { return *nodes_[0]; }
  uint64_t leader_applied_entries() const { return leader_applied_entries_; }

  // Handles Readys and delivers messages until nothing moves.
  void RunUntilIdle() {
    bool progress = true;
    while (progress) {
      progress = false;
      for (size_t i = 0; i < nodes_.size(); ++i) {
        if (nodes_[i]->HasReady()) {
          HandleReady(i);
          progress = true;
        }
      }
      if (!inbox_.empty()) {
        in_flight_.swap(inbox_);
        for (const auto& m : in_flight_) {
          KEEL_CHECK(nodes_[m.to() - 1]->Step(m).ok());
        }
        messages_ += in_flight_.size();
        in_flight_.clear();
        progress = true;
      }
    }
  }

  // Messages delivered between nodes so far.
  uint64_t messages() const { return messages_; }
  // Ready cycles (GetReady/Advance pairs) so far, all nodes together.
  uint64_t readies() const { return readies_; }

  // Allocations made by log compaction (excluded from the per-entry figure).
  uint64_t compaction_allocations() const { return compaction_allocations_; }

 private:
  void HandleReady(size_t i) {
    Ready rd = nodes_[i]->GetReady();
    ++readies_;
    for (auto& m : rd.messages) inbox_.push_back(std::move(m));
    MemoryStorage& s = *storages_[i];
    if (rd.snapshot.has_value()) KEEL_CHECK(s.ApplySnapshot(*rd.snapshot).ok());
    KEEL_CHECK(s.Append(rd.entries).ok());
    if (rd.hard_state.has_value()) s.SetHardState(*rd.hard_state);
    for (auto& m : rd.messages_after_persist) inbox_.push_back(std::move(m));
    for (const auto& e : rd.committed_entries) {
      applied_[i] = e.index();
      if (i == 0 && !e.data().empty()) ++leader_applied_entries_;
    }
    nodes_[i]->Advance();
    if (applied_[i] >= compacted_[i] + kCompactEvery) {
      const uint64_t before = g_allocations;
      KEEL_CHECK(s.Compact(applied_[i]).ok());
      compacted_[i] = applied_[i];
      compaction_allocations_ += g_allocations - before;
    }
  }

  std::vector<std::unique_ptr<MemoryStorage>> storages_;
  std::vector<std::unique_ptr<RawNode>> nodes_;
  std::vector<uint64_t> applied_;
  std::vector<uint64_t> compacted_;
  std::vector<raftpb::Message> inbox_;
  std::vector<raftpb::Message> in_flight_;
  uint64_t leader_applied_entries_ = 0;
  uint64_t compaction_allocations_ = 0;
  uint64_t messages_ = 0;
  uint64_t readies_ = 0;
};

// One iteration: `batch` proposals on the leader, then Ready cycles until every one of
// them is applied on the leader (so committed by a quorum and durable there).
void BM_CommitProposals(benchmark::State& state) {
  const int batch = static_cast<int>(state.range(0));
  Cluster cluster(3);
  const std::string payload(kPayloadBytes, 'v');
  uint64_t committed = 0;
  const uint64_t allocations_before = g_allocations;
  const uint64_t compaction_before = cluster.compaction_allocations();
  const uint64_t messages_before = cluster.messages();
  const uint64_t readies_before = cluster.readies();
  for (auto _ : state) {
    for (int i = 0; i < batch; ++i) {
      if (!cluster.leader().Propose(payload).ok()) state.SkipWithError("proposal refused");
    }
    cluster.RunUntilIdle();
    committed += batch;
    if (cluster.leader_applied_entries() < committed) {
      state.SkipWithError("proposals not committed");
      break;
    }
  }
  const uint64_t allocations =
      g_allocations - allocations_before - (cluster.compaction_allocations() - compaction_before);
  state.SetItemsProcessed(static_cast<int64_t>(committed));
  state.counters["entries_per_s"] =
      benchmark::Counter(static_cast<double>(committed), benchmark::Counter::kIsRate);
  const auto per_entry = [committed](uint64_t n) {
    return committed == 0 ? 0.0 : static_cast<double>(n) / static_cast<double>(committed);
  };
  state.counters["allocs_per_entry"] = per_entry(allocations);
  state.counters["msgs_per_entry"] = per_entry(cluster.messages() - messages_before);
  state.counters["readies_per_entry"] = per_entry(cluster.readies() - readies_before);
}
BENCHMARK(BM_CommitProposals)->Arg(1)->Arg(8)->Arg(64)->Arg(256);

}  // namespace
}  // namespace keel::raft

BENCHMARK_MAIN();
