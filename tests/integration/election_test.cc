// A fresh cluster elects exactly one leader, and every member agrees on it.
#include <set>

#include "tests/integration/cluster_test_base.h"

namespace keel::integration {
namespace {

class ElectionTest : public ClusterTest {
 protected:
  void ExpectOneAgreedLeader(int size) {
    ClusterOptions options;
    options.size = size;
    Cluster& c = StartCluster(options);
    ASSERT_FALSE(HasFailure());
    auto leader = c.WaitForLeader();
    ASSERT_TRUE(leader.ok()) << leader.status();

    std::set<uint64_t> member_ids, leaders, cluster_ids;
    int self_leaders = 0;
    uint64_t leader_term = 0;
    for (int i = 0; i < size; ++i) {
      auto status = c.Status(i);
      ASSERT_TRUE(status.ok()) << status.status();
      const uint64_t id = status->header().member_id();
      EXPECT_NE(id, 0u);
      member_ids.insert(id);
      cluster_ids.insert(status->header().cluster_id());
      leaders.insert(status->leader());
      if (status->leader() == id) {
        ++self_leaders;
        leader_term = status->raftterm();
      }
    }
    EXPECT_EQ(member_ids.size(), static_cast<size_t>(size)) << "member ids must be distinct";
    EXPECT_EQ(cluster_ids.size(), 1u) << "every member must report the same cluster id";
    EXPECT_NE(*cluster_ids.begin(), 0u);
    EXPECT_EQ(leaders.size(), 1u) << "members disagree on the leader";
    EXPECT_EQ(self_leaders, 1) << "exactly one member must think it leads";
    EXPECT_EQ(*leaders.begin(), c.member(*leader).member_id);
    // No member may be in a later term than the leader it follows.
    for (int i = 0; i < size; ++i) {
      auto status = c.Status(i);
      ASSERT_TRUE(status.ok()) << status.status();
      EXPECT_LE(status->raftterm(), leader_term) << c.member(i).name;
      EXPECT_GE(status->raftterm(), 1u);
    }
  }
};

TEST_F(ElectionTest, ThreeMembersElectOneLeader) { ExpectOneAgreedLeader(3); }

TEST_F(ElectionTest, FiveMembersElectOneLeader) { ExpectOneAgreedLeader(5); }

TEST_F(ElectionTest, MemberListNamesEveryMember) {
  Cluster& c = StartCluster(ClusterOptions{});
  ASSERT_FALSE(HasFailure());
  for (int i = 0; i < c.size(); ++i) {
    grpc::ClientContext context;
    SetDeadline(&context, absl::Seconds(5));
    etcdserverpb::MemberListResponse response;
    grpc::Status s =
        c.ClusterApi(i)->MemberList(&context, etcdserverpb::MemberListRequest(), &response);
    ASSERT_TRUE(s.ok()) << s.error_message();
    ASSERT_EQ(response.members_size(), c.size());
    std::set<std::string> names;
    for (const auto& m : response.members()) {
      names.insert(m.name());
      const int index = c.IndexOfMemberId(m.id());
      ASSERT_GE(index, 0) << "unknown member id " << m.id();
      EXPECT_EQ(m.name(), c.member(index).name);
      ASSERT_EQ(m.peerurls_size(), 1);
      EXPECT_EQ(m.peerurls(0), "http://127.0.0.1:" + std::to_string(c.member(index).peer_port));
      // Every started member's client URLs, as etcd publishes them (clients use them to
      // discover endpoints), not only those of the member answering.
      ASSERT_EQ(m.clienturls_size(), 1)
          << c.member(i).name << " lists no client URL for " << m.name();
      EXPECT_EQ(m.clienturls(0), "http://" + c.client_address(index));
    }
    EXPECT_EQ(names, (std::set<std::string>{"n1", "n2", "n3"}));
  }
}

}  // namespace
}  // namespace keel::integration
