// The lock and election example (client/examples/, keel-lock-example) against a real
// cluster: three processes contend, and the leader — the member every holder's
// requests go to — is killed while one of them holds the lock / leads. Mutual
// exclusion is checked by the example itself (fenced writes; exit 2 on a refused one)
// and by its blind read-modify-write counter: any overlap of two holders loses an
// increment.
#include <memory>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "tests/integration/cluster_test_base.h"

namespace keel::integration {
namespace {

class LockExampleTest : public ClusterTest {
 protected:
  // Starts `n` example processes in `mode`; each does `rounds` increments of `counter`.
  void StartWorkers(const std::string& mode, const std::string& name, const std::string& counter,
                    int n, int rounds) {
    std::vector<std::string> endpoints;
    for (int i = 0; i < cluster_->size(); ++i) endpoints.push_back(cluster_->client_address(i));
    for (int w = 0; w < n; ++w) {
      workers_.push_back(std::make_unique<BackgroundCommand>(
          std::vector<std::string>{KEEL_LOCK_EXAMPLE_PATH, mode,
                                   "--endpoints=" + absl::StrJoin(endpoints, ","), "--name=" + name,
                                   "--counter=" + counter, absl::StrCat("--rounds=", rounds),
                                   "--hold-ms=150", absl::StrCat("--id=w", w), "--ttl=5"},
          std::vector<std::string>{}));
      ASSERT_TRUE(workers_.back()->started());
    }
  }

  // Index of a worker whose last line says it holds the lock / leads right now.
  int WaitForHolder(const std::string& holding_word, const std::string& done_word) {
    int holder = -1;
    WaitFor(
        [&] {
          for (size_t w = 0; w < workers_.size(); ++w) {
            std::vector<std::string> lines =
                absl::StrSplit(workers_[w]->Out(), '\n', absl::SkipEmpty());
            if (lines.empty()) continue;
            // Holding: the last "acquired"/"leads" line comes after the last release.
            for (auto it = lines.rbegin(); it != lines.rend(); ++it) {
              if (absl::StrContains(*it, done_word)) break;
              if (absl::StrContains(*it, holding_word)) {
                holder = static_cast<int>(w);
                return true;
              }
            }
          }
          return false;
        },
        absl::Seconds(30));
    return holder;
  }

  void ExpectAllSucceed() {
    for (size_t w = 0; w < workers_.size(); ++w) {
      std::optional<int> code = workers_[w]->WaitExited(absl::Seconds(90));
      ASSERT_TRUE(code.has_value()) << "worker " << w << " still running:\n" << workers_[w]->Out();
      EXPECT_EQ(*code, 0) << "worker " << w << ":\n" << workers_[w]->Out() << workers_[w]->Err();
    }
  }

  int64_t Counter(const std::string& key) {
    etcdserverpb::RangeResponse got;
    for (int i = 0; i < cluster_->size(); ++i) {
      if (!cluster_->running(i)) continue;
      grpc::Status s = cluster_->Get(i, key, /*serializable=*/false, &got);
      EXPECT_TRUE(s.ok()) << s.error_message();
      if (got.kvs_size() != 1) return -1;
      return std::stoll(got.kvs(0).value());
    }
    return -1;
  }

  std::vector<std::unique_ptr<BackgroundCommand>> workers_;
};

TEST_F(LockExampleTest, MutualExclusionWhileTheLeaderIsKilled) {
  Cluster& c = StartCluster(ClusterOptions{});
  ASSERT_FALSE(HasFailure());
  auto leader = c.WaitForLeader();
  ASSERT_TRUE(leader.ok());
  constexpr int kWorkers = 3, kRounds = 6;
  StartWorkers("lock", "/locks/it", "/it/counter", kWorkers, kRounds);
  ASSERT_FALSE(HasFailure());

  const int holder = WaitForHolder("acquired", "released");
  ASSERT_GE(holder, 0) << "nobody took the lock";
  const size_t holder_lines = workers_[holder]->Out().size();
  c.Kill(*leader);  // Every holder's writes and keep-alives went to it.
  ASSERT_TRUE(c.WaitForLeader(absl::Seconds(15)).ok());

  ExpectAllSucceed();
  EXPECT_EQ(Counter("/it/counter"), kWorkers * kRounds) << "an increment was lost: two holders";
  // The holder at the kill finished its critical section under the same lock.
  const std::string after = workers_[holder]->Out().substr(holder_lines);
  EXPECT_TRUE(absl::StrContains(after, "counter ")) << after;
}

TEST_F(LockExampleTest, OneLeaderAtATimeWhileTheLeaderIsKilled) {
  Cluster& c = StartCluster(ClusterOptions{});
  ASSERT_FALSE(HasFailure());
  auto leader = c.WaitForLeader();
  ASSERT_TRUE(leader.ok());
  constexpr int kWorkers = 3, kRounds = 4;
  StartWorkers("elect", "/election/it", "/it/terms", kWorkers, kRounds);
  ASSERT_FALSE(HasFailure());

  ASSERT_GE(WaitForHolder("leads", "resigned"), 0) << "nobody was elected";
  c.Kill(*leader);
  ASSERT_TRUE(c.WaitForLeader(absl::Seconds(15)).ok());

  ExpectAllSucceed();
  EXPECT_EQ(Counter("/it/terms"), kWorkers * kRounds) << "two leaders at once lost an increment";
  for (const auto& w : workers_) {
    std::vector<std::string> lines = absl::StrSplit(w->Out(), '\n', absl::SkipEmpty());
    EXPECT_EQ(std::count_if(lines.begin(), lines.end(),
                            [](const std::string& l) { return absl::StrContains(l, " leads "); }),
              1)
        << w->Out();
  }
}

}  // namespace
}  // namespace keel::integration
