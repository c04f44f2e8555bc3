// The membership record (server/membership.h): etcd's refusals, the changes applied
// from conf-change entries, the quorum rule, and that the state machine stores the
// record with its applied index.
#include "server/membership.h"

#include <filesystem>

#include "gtest/gtest.h"
#include "storage/kv_store.h"

namespace keel::server {
namespace {

internalpb::MembershipRecord ThreeMembers() {
  std::vector<MemberInfo> members;
  for (uint64_t id : {1, 2, 3}) {
    MemberInfo m;
    m.id = id;
    m.name = "n" + std::to_string(id);
    m.peer_urls = {"http://127.0.0.1:" + std::to_string(2380 + id)};
    members.push_back(m);
  }
  return RecordFromMembers(members);
}

raftpb::ConfChange Change(raftpb::ConfChangeType type, uint64_t id) {
  raftpb::ConfChange c;
  c.set_type(type);
  c.set_node_id(id);
  return c;
}

internalpb::ConfChangeContext WithUrl(const std::string& url) {
  internalpb::ConfChangeContext ctx;
  ctx.mutable_member()->add_peer_urls(url);
  return ctx;
}

TEST(MembershipRecordTest, ChecksGiveEtcdErrors) {
  const auto r = ThreeMembers();
  EXPECT_EQ(CheckAdd(r, {"http://127.0.0.1:2382"}, false), ErrPeerUrlExists());
  EXPECT_EQ(CheckAdd(r, {"nonsense"}, false), ErrMemberBadUrls());
  EXPECT_EQ(CheckAdd(r, {}, false), ErrMemberBadUrls());
  EXPECT_TRUE(CheckAdd(r, {"http://127.0.0.1:9999"}, true).ok());
  EXPECT_EQ(CheckRemove(r, 7).message(), "etcdserver: member not found");
  EXPECT_EQ(CheckPromote(r, 2), ErrMemberNotLearner());
  EXPECT_EQ(CheckUpdate(r, 1, {"http://127.0.0.1:2382"}), ErrPeerUrlExists());
  EXPECT_TRUE(CheckUpdate(r, 1, {"http://127.0.0.1:2381"}).ok());  // Its own URL.
}

TEST(MembershipRecordTest, LearnerAddedPromotedRemovedAndNeverBack) {
  auto r = ThreeMembers();
  ASSERT_TRUE(
      ApplyChange(Change(raftpb::CONF_CHANGE_ADD_LEARNER, 9), WithUrl("http://127.0.0.1:2389"), &r)
          .ok());
  ASSERT_NE(FindMember(r, 9), nullptr);
  EXPECT_TRUE(FindMember(r, 9)->is_learner());
  EXPECT_EQ(FindMember(r, 9)->peer_urls(0), "http://127.0.0.1:2389");
  // etcd allows one learner.
  EXPECT_EQ(CheckAdd(r, {"http://127.0.0.1:2390"}, true), ErrTooManyLearners());
  EXPECT_EQ(ApplyChange(Change(raftpb::CONF_CHANGE_ADD_LEARNER, 10),
                        WithUrl("http://127.0.0.1:2390"), &r),
            ErrTooManyLearners());
  ASSERT_TRUE(
      ApplyChange(Change(raftpb::CONF_CHANGE_ADD_NODE, 9), internalpb::ConfChangeContext(), &r)
          .ok());
  EXPECT_FALSE(FindMember(r, 9)->is_learner());
  ASSERT_TRUE(
      ApplyChange(Change(raftpb::CONF_CHANGE_REMOVE_NODE, 9), internalpb::ConfChangeContext(), &r)
          .ok());
  EXPECT_EQ(FindMember(r, 9), nullptr);
  EXPECT_EQ(r.removed_size(), 1);
  // A removed id never comes back; its URL is free again for a new id.
  EXPECT_EQ(
      ApplyChange(Change(raftpb::CONF_CHANGE_ADD_NODE, 9), WithUrl("http://127.0.0.1:2389"), &r),
      ErrMemberIdExists());
  EXPECT_TRUE(
      ApplyChange(Change(raftpb::CONF_CHANGE_ADD_NODE, 11), WithUrl("http://127.0.0.1:2389"), &r)
          .ok());
  EXPECT_EQ(r.members_size(), 4);
  // Sorted by id, so every member's record is byte-identical.
  for (int i = 1; i < r.members_size(); ++i) EXPECT_LT(r.members(i - 1).id(), r.members(i).id());
}

TEST(MembershipRecordTest, UpdateChangesOnlyPeerUrls) {
  auto r = ThreeMembers();
  ASSERT_TRUE(
      ApplyChange(Change(raftpb::CONF_CHANGE_UPDATE_NODE, 2), WithUrl("http://127.0.0.1:7002"), &r)
          .ok());
  EXPECT_EQ(FindMember(r, 2)->peer_urls(0), "http://127.0.0.1:7002");
  EXPECT_EQ(FindMember(r, 2)->name(), "n2");
  EXPECT_EQ(
      ApplyChange(Change(raftpb::CONF_CHANGE_UPDATE_NODE, 3), WithUrl("http://127.0.0.1:7002"), &r),
      ErrPeerUrlExists());
  EXPECT_EQ(
      ApplyChange(Change(raftpb::CONF_CHANGE_UPDATE_NODE, 8), WithUrl("http://127.0.0.1:7008"), &r)
          .message(),
      "etcdserver: member not found");
}

TEST(MembershipRecordTest, QuorumOfStartedVoters) {
  const std::vector<uint64_t> voters = {1, 2, 3};
  // All up: anything goes.
  EXPECT_TRUE(CheckQuorumAfter(voters, {1, 2, 3}, Change(raftpb::CONF_CHANGE_ADD_NODE, 4)).ok());
  EXPECT_TRUE(CheckQuorumAfter(voters, {1, 2, 3}, Change(raftpb::CONF_CHANGE_REMOVE_NODE, 1)).ok());
  // 3 down to 1 down: a 4th voter needs 3 started; only 2 are.
  EXPECT_EQ(CheckQuorumAfter(voters, {1, 2}, Change(raftpb::CONF_CHANGE_ADD_NODE, 4)),
            ErrNotEnoughStartedMembers());
  // Removing a running member while another is down leaves 1 of 2 started.
  EXPECT_EQ(CheckQuorumAfter(voters, {1, 2}, Change(raftpb::CONF_CHANGE_REMOVE_NODE, 2)),
            ErrNotEnoughStartedMembers());
  // Removing the member that is down is fine: 2 of 2 started.
  EXPECT_TRUE(CheckQuorumAfter(voters, {1, 2}, Change(raftpb::CONF_CHANGE_REMOVE_NODE, 3)).ok());
  // A learner changes no quorum; promoting a started learner counts it.
  EXPECT_TRUE(CheckQuorumAfter(voters, {1}, Change(raftpb::CONF_CHANGE_ADD_LEARNER, 4)).ok());
  EXPECT_TRUE(CheckQuorumAfter(voters, {1, 2, 4}, Change(raftpb::CONF_CHANGE_ADD_NODE, 4)).ok());
}

TEST(MembershipRecordTest, StoredWithTheAppliedIndexAndReadBackAfterReopen) {
  const std::string dir = ::testing::TempDir() + "/membership_kv";
  std::filesystem::remove_all(dir);
  auto r = ThreeMembers();
  const std::string bytes = r.SerializeAsString();
  storage::KvStoreOptions options;
  options.dir = dir;
  {
    auto kv = storage::KvStore::Open(options);
    ASSERT_TRUE(kv.ok()) << kv.status();
    EXPECT_EQ(*(*kv)->Members(), "");
    std::vector<storage::ApplyEntry> batch = {storage::ApplyEntry{1, {}, bytes}};
    ASSERT_TRUE((*kv)->Apply(batch).ok());
    EXPECT_EQ((*kv)->AppliedIndex(), 1u);
  }
  auto kv = storage::KvStore::Open(options);
  ASSERT_TRUE(kv.ok());
  EXPECT_EQ(*(*kv)->Members(), bytes);
  // A replayed entry (index already applied) does not overwrite it.
  std::vector<storage::ApplyEntry> replay = {storage::ApplyEntry{1, {}, "junk"}};
  ASSERT_TRUE((*kv)->Apply(replay).ok());
  EXPECT_EQ(*(*kv)->Members(), bytes);
  std::filesystem::remove_all(dir);
}

TEST(MembershipRecordTest, AddedMemberIdsDependOnTheSalt) {
  const std::vector<std::string> urls = {"http://127.0.0.1:2390"};
  EXPECT_EQ(ComputeMemberId(urls, "t"), ComputeMemberId(urls, "t", 0));
  EXPECT_NE(ComputeMemberId(urls, "t", 1), ComputeMemberId(urls, "t", 2));
  EXPECT_NE(ComputeMemberId(urls, "t", 1), 0u);
}

}  // namespace
}  // namespace keel::server
