// Linearizable reads under concurrency and across a leader that was paused and replaced:
// a read that starts after a write was acknowledged must see it, on every member.
#include <atomic>
#include <csignal>
#include <fstream>
#include <mutex>
#include <sstream>
#include <thread>

#include "tests/integration/cluster_test_base.h"

namespace keel::integration {
namespace {

using LinearizabilityTest = ClusterTest;

// True when an established TCP connection to local port `port` has bytes its process
// has not read yet (rx_queue in /proc/net/tcp{,6}).
bool HasUnreadBytes(int port) {
  for (const char* path : {"/proc/net/tcp", "/proc/net/tcp6"}) {
    std::ifstream in(path);
    std::string line;
    std::getline(in, line);  // Header.
    while (std::getline(in, line)) {
      std::istringstream fields(line);
      std::string slot, local, remote, state, queues;
      fields >> slot >> local >> remote >> state >> queues;
      const size_t colon = local.rfind(':');
      if (colon == std::string::npos || state != "01") continue;
      if (std::stoi(local.substr(colon + 1), nullptr, 16) != port) continue;
      const size_t q = queues.find(':');
      if (q != std::string::npos && std::stoul(queues.substr(q + 1), nullptr, 16) > 0) {
        return true;
      }
    }
  }
  return false;
}

// One writer per member bumps its own counter key; readers on every member check that a
// linearizable read returns, for each counter, at least the last value acknowledged
// before the read began.
TEST_F(LinearizabilityTest, ConcurrentReadsSeeEveryAcknowledgedWrite) {
  Cluster& c = StartCluster(ClusterOptions{});
  ASSERT_FALSE(HasFailure());
  const int n = c.size();
  std::vector<std::atomic<int64_t>> acked(n);
  for (auto& a : acked) a = 0;
  std::atomic<bool> stop{false};
  std::atomic<int> write_errors{0}, reads{0};
  std::vector<std::string> violations;
  std::mutex violations_mu;

  std::vector<std::thread> threads;
  for (int w = 0; w < n; ++w) {
    threads.emplace_back([&, w] {
      for (int64_t v = 1; !stop.load(); ++v) {
        if (!c.Put(w, "counter/" + std::to_string(w), std::to_string(v)).ok()) {
          ++write_errors;
          return;
        }
        acked[w] = v;
      }
    });
  }
  for (int r = 0; r < n; ++r) {
    threads.emplace_back([&, r] {
      while (!stop.load()) {
        std::vector<int64_t> floor(n);
        for (int w = 0; w < n; ++w) floor[w] = acked[w].load();
        grpc::ClientContext context;
        SetDeadline(&context, absl::Seconds(5));
        etcdserverpb::RangeRequest request;
        request.set_key("counter/");
        request.set_range_end("counter0");
        etcdserverpb::RangeResponse got;
        grpc::Status s = c.Kv(r)->Range(&context, request, &got);
        std::lock_guard<std::mutex> lock(violations_mu);
        if (!s.ok()) {
          violations.push_back(c.member(r).name + ": read failed: " + s.error_message());
          return;
        }
        ++reads;
        std::vector<int64_t> seen(n, 0);
        for (const auto& kv : got.kvs()) {
          const int w = std::stoi(kv.key().substr(8));
          seen[w] = std::stoll(kv.value());
        }
        for (int w = 0; w < n; ++w) {
          if (seen[w] < floor[w]) {
            violations.push_back(c.member(r).name + " read counter/" + std::to_string(w) + "=" +
                                 std::to_string(seen[w]) + " after " + std::to_string(floor[w]) +
                                 " was acknowledged");
          }
        }
      }
    });
  }
  WaitFor([&] { return reads.load() >= 600 || !violations.empty(); }, absl::Seconds(6));
  stop = true;
  for (auto& t : threads) t.join();
  EXPECT_EQ(write_errors.load(), 0);
  EXPECT_GT(reads.load(), 50);
  EXPECT_TRUE(violations.empty()) << violations.size()
                                  << " violations, first: " << violations.front();
  for (int w = 0; w < n; ++w) EXPECT_GT(acked[w].load(), 5) << "writer " << w;
}

// The leader is frozen (SIGSTOP) while the others elect a new leader and accept a write;
// when it wakes up it still believes it leads. A linearizable read on it must then
// either see the new write or fail — never return the old value.
TEST_F(LinearizabilityTest, FrozenOldLeaderNeverServesAStaleRead) {
  Cluster& c = StartCluster(ClusterOptions{});
  ASSERT_FALSE(HasFailure());
  auto old_leader = c.WaitForLeader();
  ASSERT_TRUE(old_leader.ok());
  ASSERT_TRUE(c.Put(*old_leader, "x", "old").ok());

  c.Signal(*old_leader, SIGSTOP);
  auto new_leader = c.WaitForLeader(absl::Seconds(10), /*exclude=*/*old_leader);
  if (!new_leader.ok()) c.Signal(*old_leader, SIGCONT);
  ASSERT_TRUE(new_leader.ok()) << new_leader.status();
  grpc::Status put = c.PutWithRetry(*new_leader, "x", "new");
  if (!put.ok()) c.Signal(*old_leader, SIGCONT);
  ASSERT_TRUE(put.ok()) << put.error_message();

  // Start the read before waking the old leader, so that it is served by a node that
  // has not yet heard of the new term.
  etcdserverpb::RangeResponse got;
  grpc::Status read;
  std::thread reader(
      [&] { read = c.Get(*old_leader, "x", /*serializable=*/false, &got, absl::Seconds(8)); });
  // The request bytes wait in the frozen process's socket: the kernel accepts them.
  EXPECT_TRUE(
      WaitFor([&] { return HasUnreadBytes(c.member(*old_leader).client_port); }, absl::Seconds(3)))
      << "the read never reached the frozen leader's socket";
  c.Signal(*old_leader, SIGCONT);
  reader.join();
  std::fprintf(stderr, "read on the woken old leader: %s\n",
               read.ok() ? ("value " + (got.kvs_size() ? got.kvs(0).value() : "<none>")).c_str()
                         : read.error_message().c_str());
  if (read.ok()) {
    ASSERT_EQ(got.kvs_size(), 1);
    EXPECT_EQ(got.kvs(0).value(), "new") << "stale linearizable read from the deposed leader";
  } else {
    EXPECT_TRUE(read.error_code() == grpc::StatusCode::UNAVAILABLE ||
                read.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED)
        << read.error_code() << " " << read.error_message();
  }
  // It rejoins as a follower and catches up.
  auto leader = c.WaitForLeader();
  ASSERT_TRUE(leader.ok()) << leader.status();
  EXPECT_TRUE(WaitFor(
      [&] {
        got.Clear();
        return c.Get(*old_leader, "x", true, &got).ok() && got.kvs_size() == 1 &&
               got.kvs(0).value() == "new";
      },
      absl::Seconds(10)));
}

}  // namespace
}  // namespace keel::integration
