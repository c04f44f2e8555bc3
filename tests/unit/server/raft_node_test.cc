// RaftNode as a single-member cluster on a real Raft log and state machine (files in a
// temp dir): writes and read barriers, where read answers run (on the caller's thread
// when its own loop pass released them), and that Stop waits for answers a pass left.
#include "server/raft_node.h"

#include <atomic>
#include <chrono>
#include <future>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "raft/bootstrap.h"
#include "server/membership.h"
#include "server/peer_transport.h"
#include "storage/kv_store.h"
#include "storage/raft_log_store.h"
#include "tests/unit/storage/kv_test_util.h"

namespace keel::server {
namespace {

using storage::testing::PutReq;
using storage::testing::TempDir;

constexpr uint64_t kMember = 1;
constexpr auto kWait = std::chrono::seconds(20);

absl::Time Deadline() { return absl::Now() + absl::Seconds(20); }

// One member that leads its own cluster of one.
class SingleMember {
 public:
  SingleMember() {
    MemberInfo me;
    me.id = kMember;
    me.name = "m1";
    me.peer_urls = {"http://127.0.0.1:1"};
    const internalpb::MembershipRecord record = RecordFromMembers({me});
    auto log = storage::RaftLogStore::Open(dir_.path() + "/log", storage::RaftLogStoreOptions{});
    KEEL_CHECK(log.ok());
    log_ = *std::move(log);
    // What keeld writes for a new cluster (KeelServer::Open): the bootstrap conf change.
    const raftpb::HardState hs = raft::BootstrapHardState(1);
    std::vector<raftpb::Entry> entries = raft::BootstrapEntries({kMember});
    for (auto& e : entries) {
      raftpb::ConfChange change;
      KEEL_CHECK(change.ParseFromString(e.data()));
      internalpb::ConfChangeContext context;
      *context.mutable_member() = *FindMember(record, kMember);
      change.set_context(context.SerializeAsString());
      e.set_data(change.SerializeAsString());
    }
    KEEL_CHECK(log_->Save(&hs, entries, nullptr, /*sync=*/true).ok());
    storage::KvStoreOptions kv_options;
    kv_options.dir = dir_.path() + "/kv";
    kv_options.block_cache_bytes = 8 << 20;
    auto kv = storage::KvStore::Open(kv_options);
    KEEL_CHECK(kv.ok());
    kv_ = *std::move(kv);

    RaftNodeOptions options;
    options.member_id = kMember;
    options.tick_interval_ms = 10;
    options.election_timeout_ticks = 5;
    options.snapshot_dir = dir_.path() + "/snap";
    options.initial_membership = record;
    node_ = std::make_unique<RaftNode>(options, log_.get(), kv_.get());
    PeerTransportOptions transport_options;
    transport_options.cluster_id = 7;
    transport_options.member_id = kMember;
    transport_ = std::make_unique<PeerTransport>(transport_options, node_.get(), node_.get());
    node_->SetTransport(transport_.get());
    KEEL_CHECK(node_->Start().ok());
  }
  ~SingleMember() {
    node_->Stop();
    transport_->Stop();
  }

  // Waits until this member leads (it elects itself after an election timeout).
  [[nodiscard]] bool WaitForLeadership() {
    const auto give_up = std::chrono::steady_clock::now() + kWait;
    while (std::chrono::steady_clock::now() < give_up) {
      if (node_->Status().is_leader) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return false;
  }

  absl::StatusOr<storage::ApplyResult> Put(const std::string& key, const std::string& value) {
    std::promise<absl::StatusOr<storage::ApplyResult>> done;
    auto result = done.get_future();
    node_->Propose(
        PutReq(key, value), Deadline(),
        [&done](absl::StatusOr<storage::ApplyResult> r) { done.set_value(std::move(r)); },
        /*leader_term=*/0, LoopPass::kCallerIfIdle);
    if (result.wait_for(kWait) != std::future_status::ready) {
      return absl::DeadlineExceededError("no answer");
    }
    return result.get();
  }

  RaftNode* node() { return node_.get(); }
  storage::KvStore* kv() { return kv_.get(); }

 private:
  TempDir dir_;
  std::unique_ptr<storage::RaftLogStore> log_;
  std::unique_ptr<storage::KvStore> kv_;
  std::unique_ptr<RaftNode> node_;
  std::unique_ptr<PeerTransport> transport_;
};

TEST(RaftNodeTest, ReadBarrierAfterAnAnsweredWriteSeesIt) {
  SingleMember m;
  ASSERT_TRUE(m.WaitForLeadership());
  for (int i = 0; i < 20; ++i) {
    const std::string value = "v" + std::to_string(i);
    auto put = m.Put("k", value);
    ASSERT_TRUE(put.ok()) << put.status();
    ASSERT_TRUE(put->status.ok()) << put->status;
    std::promise<std::string> seen;
    m.node()->ReadBarrier(
        Deadline(),
        [&](absl::Status barrier) {
          if (!barrier.ok()) return seen.set_value("barrier: " + barrier.ToString());
          etcdserverpb::RangeRequest req;
          req.set_key("k");
          auto range = m.kv()->Range(req);
          if (!range.ok() || range->kvs_size() != 1) return seen.set_value("no key");
          seen.set_value(range->kvs(0).value());
        },
        i % 2 == 0 ? LoopPass::kCallerIfIdle : LoopPass::kRaftThread);
    auto f = seen.get_future();
    ASSERT_EQ(f.wait_for(kWait), std::future_status::ready);
    EXPECT_EQ(f.get(), value);
  }
}

// A barrier whose pass runs on the caller's thread is answered there, after the pass
// (the read executor hand-off is skipped for small reads on that basis).
TEST(RaftNodeTest, ReadReleasedByTheCallersPassIsAnsweredOnItsThread) {
  SingleMember m;
  ASSERT_TRUE(m.WaitForLeadership());
  ASSERT_TRUE(m.Put("k", "v").ok());
  // The raft thread's tick pass may hold the loop at the moment of a call (then that
  // thread answers): a few tries, at least one of which finds the loop idle.
  int on_caller = 0;
  for (int i = 0; i < 20 && on_caller == 0; ++i) {
    std::promise<std::thread::id> answered;
    m.node()->ReadBarrier(
        Deadline(),
        [&answered](absl::Status barrier) {
          EXPECT_TRUE(barrier.ok()) << barrier;
          answered.set_value(std::this_thread::get_id());
        },
        LoopPass::kCallerIfIdle);
    auto f = answered.get_future();
    ASSERT_EQ(f.wait_for(kWait), std::future_status::ready);
    if (f.get() == std::this_thread::get_id()) ++on_caller;
  }
  EXPECT_EQ(on_caller, 1);
}

// Answers run after the pass let go of the loop, but Stop still returns only once they
// are given: nothing may call into a stopped node's users afterwards.
TEST(RaftNodeTest, StopWaitsForAnAnswerAPassLeft) {
  SingleMember m;
  ASSERT_TRUE(m.WaitForLeadership());
  ASSERT_TRUE(m.Put("k", "v").ok());
  std::atomic<bool> in_answer{false};
  std::atomic<bool> answer_done{false};
  std::atomic<bool> on_reader_thread{false};
  std::thread reader([&] {
    // Retried until a barrier's answer runs on this thread (see the test above).
    for (int i = 0; i < 20 && !on_reader_thread.load(); ++i) {
      std::promise<void> answered;
      const auto me = std::this_thread::get_id();
      m.node()->ReadBarrier(
          Deadline(),
          [&, me](absl::Status barrier) {
            if (barrier.ok() && std::this_thread::get_id() == me) {
              on_reader_thread = true;
              in_answer = true;
              std::this_thread::sleep_for(std::chrono::milliseconds(300));
              answer_done = true;
            }
            answered.set_value();
          },
          LoopPass::kCallerIfIdle);
      answered.get_future().wait();
    }
  });
  const auto give_up = std::chrono::steady_clock::now() + kWait;
  while (!in_answer.load() && std::chrono::steady_clock::now() < give_up) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  if (!in_answer.load()) {
    reader.join();
    FAIL() << "no barrier was answered on the reader's thread";
  }
  m.node()->Stop();
  EXPECT_TRUE(answer_done.load()) << "Stop returned while an answer was still running";
  reader.join();
}

}  // namespace
}  // namespace keel::server
