#include "client/endpoint_pool.h"

#include <set>

#include "gtest/gtest.h"

namespace keel::client {
namespace {

const absl::Time kT0 = absl::FromUnixSeconds(1000);

TEST(NormalizeEndpointTest, AcceptsHostPortAndHttpUrls) {
  EXPECT_EQ(*NormalizeEndpoint("127.0.0.1:2379"), "127.0.0.1:2379");
  EXPECT_EQ(*NormalizeEndpoint("http://localhost:2379/"), "localhost:2379");
  EXPECT_EQ(NormalizeEndpoint("https://a:1").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(NormalizeEndpoint("nohost").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(NormalizeEndpoint("a:0").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(NormalizeEndpoint("").status().code(), absl::StatusCode::kInvalidArgument);
}

std::unique_ptr<EndpointPool> ThreeEndpoints() {
  CircuitBreakerOptions o;
  o.failure_threshold = 1;
  auto pool = std::make_unique<EndpointPool>(o);
  for (const char* a : {"127.0.0.1:1", "127.0.0.1:2", "127.0.0.1:3"}) pool->Add(a);
  uint64_t id = 1;
  for (const auto& e : pool->All()) e->member_id.store(id++);
  return pool;
}

TEST(EndpointPoolTest, AnyRouteSpreadsAndAvoidsOpenBreakers) {
  std::unique_ptr<EndpointPool> owned = ThreeEndpoints();
  EndpointPool& pool = *owned;
  absl::Time retry_at;
  std::multiset<std::string> picked;
  for (int i = 0; i < 30; ++i)
    picked.insert(pool.Pick(Route::Any(), nullptr, kT0, &retry_at)->address);
  EXPECT_EQ(picked.count("127.0.0.1:1"), 10u);
  EXPECT_EQ(picked.count("127.0.0.1:3"), 10u);
  pool.All()[1]->breaker.OnFailure(kT0);  // Opens (threshold 1).
  for (int i = 0; i < 10; ++i) {
    EXPECT_NE(pool.Pick(Route::Any(), nullptr, kT0, &retry_at)->address, "127.0.0.1:2");
  }
}

TEST(EndpointPoolTest, LeaderRouteFallsBackWhenTheLeaderIsOut) {
  std::unique_ptr<EndpointPool> owned = ThreeEndpoints();
  EndpointPool& pool = *owned;
  absl::Time retry_at;
  pool.SetLeader(2);
  EXPECT_EQ(pool.Pick(Route::Leader(), nullptr, kT0, &retry_at)->address, "127.0.0.1:2");
  // The call's previous attempt failed on the leader: go elsewhere.
  const Endpoint* leader = pool.leader().get();
  EXPECT_NE(pool.Pick(Route::Leader(), leader, kT0, &retry_at)->address, "127.0.0.1:2");
  pool.SuspectLeader(leader);
  EXPECT_EQ(pool.leader(), nullptr);
}

TEST(EndpointPoolTest, AllOpenTellsWhenToRetry) {
  std::unique_ptr<EndpointPool> owned = ThreeEndpoints();
  EndpointPool& pool = *owned;
  for (const auto& e : pool.All()) e->breaker.OnFailure(kT0);
  absl::Time retry_at = absl::InfinitePast();
  EXPECT_EQ(pool.Pick(Route::Any(), nullptr, kT0, &retry_at), nullptr);
  EXPECT_EQ(retry_at, kT0 + CircuitBreakerOptions().open_initial);
  // Then exactly one probe goes through.
  EXPECT_NE(pool.Pick(Route::Any(), nullptr, retry_at, &retry_at), nullptr);
}

TEST(EndpointPoolTest, FollowsTheMemberList) {
  std::unique_ptr<EndpointPool> owned = ThreeEndpoints();
  EndpointPool& pool = *owned;
  const std::shared_ptr<Endpoint> kept = pool.All()[0];  // member 1
  pool.SetLeader(3);
  etcdserverpb::MemberListResponse list;
  auto* m1 = list.add_members();  // Known member: keeps its endpoint even if its URL differs.
  m1->set_id(1);
  m1->add_clienturls("http://localhost:1");
  auto* m4 = list.add_members();  // A new member.
  m4->set_id(4);
  m4->add_clienturls("http://127.0.0.1:4");
  auto* m5 = list.add_members();  // Not started yet: no client URL.
  m5->set_id(5);
  pool.ApplyMembers(list);
  const auto all = pool.All();
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(all[0], kept);
  EXPECT_EQ(all[1]->address, "127.0.0.1:4");
  EXPECT_EQ(all[1]->member_id.load(), 4u);
  EXPECT_EQ(pool.leader(), nullptr) << "member 3 left";
  pool.ApplyMembers(etcdserverpb::MemberListResponse());  // Empty: ignored.
  EXPECT_EQ(pool.All().size(), 2u);
}

}  // namespace
}  // namespace keel::client
