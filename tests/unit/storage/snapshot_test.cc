// State-machine snapshot round trip: checkpoint -> checksummed chunks -> install on
// another store; corruption -> kDataLoss with the target untouched; interrupted
// installs leave the old state.
#include "storage/snapshot.h"

#include <filesystem>

#include "gtest/gtest.h"
#include "tests/unit/storage/kv_test_util.h"

namespace keel::storage {
namespace {

using testing::KvHarness;
using testing::PutReq;
using testing::RangeReq;
using testing::TempDir;

etcdserverpb::RangeRequest All() { return RangeReq(std::string(1, '\0'), std::string(1, '\0')); }

raftpb::SnapshotMetadata Meta(uint64_t index) {
  raftpb::SnapshotMetadata md;
  md.set_index(index);
  md.set_term(3);
  md.mutable_conf_state()->add_voters(1);
  md.mutable_conf_state()->add_voters(2);
  md.mutable_conf_state()->add_learners(9);
  return md;
}

class SnapshotTest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (int i = 0; i < 500; ++i) {
      ASSERT_TRUE(src_.Apply(PutReq("key" + std::to_string(i), std::string(300, 'a' + i % 26)))
                      .status.ok());
    }
    ASSERT_TRUE(src_.Apply(testing::DelReq("key1", "key2")).status.ok());
    ASSERT_TRUE(src_.Apply(testing::GrantReq(5, 100)).status.ok());
    ASSERT_TRUE(src_.Apply(PutReq("leased", "x", 5)).status.ok());
    for (int i = 0; i < 3; ++i)
      ASSERT_TRUE(dst_.Apply(PutReq("old" + std::to_string(i), "o")).status.ok());
  }

  std::vector<internalpb::SnapshotChunk> Stream(uint64_t chunk_bytes) {
    auto reader = SnapshotReader::Create(src_.store(), Meta(src_.store().AppliedIndex()),
                                         scratch_.path() + "/cp", chunk_bytes);
    EXPECT_TRUE(reader.ok()) << reader.status();
    std::vector<internalpb::SnapshotChunk> chunks;
    internalpb::SnapshotChunk c;
    while (true) {
      auto more = (*reader)->Next(&c);
      EXPECT_TRUE(more.ok());
      if (!more.ok() || !*more) break;
      chunks.push_back(c);
    }
    return chunks;
  }

  TempDir src_dir_, dst_dir_, scratch_;
  KvHarness src_{src_dir_.path()};
  KvHarness dst_{dst_dir_.path()};
};

TEST_F(SnapshotTest, RoundTripReplacesState) {
  auto chunks = Stream(16 << 10);
  ASSERT_GT(chunks.size(), 3u);
  EXPECT_TRUE(chunks.back().done());
  auto inst = SnapshotInstaller::Begin(dst_.store().dir());
  ASSERT_TRUE(inst.ok());
  for (const auto& c : chunks) ASSERT_TRUE((*inst)->Add(c).ok());
  auto manifest = (*inst)->Finish(dst_.store());
  ASSERT_TRUE(manifest.ok()) << manifest.status();
  EXPECT_EQ(manifest->metadata().term(), 3u);
  EXPECT_EQ(manifest->metadata().conf_state().learners(0), 9u);
  EXPECT_EQ(dst_.store().AppliedIndex(), src_.store().AppliedIndex());
  EXPECT_EQ(dst_.store().Revision(), src_.store().Revision());
  auto a = src_.store().Range(All());
  auto b = dst_.store().Range(All());
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(a->SerializeAsString(), b->SerializeAsString());
  EXPECT_EQ(b->count(), 390);  // 500 - 111 deleted (key1, key1x, key1xx) + leased.
  // History came along too.
  EXPECT_EQ(dst_.store().Range(RangeReq("key1", "", 5))->kvs_size(), 1);
  etcdserverpb::LeaseTimeToLiveRequest ttl;
  ttl.set_id(5);
  EXPECT_TRUE(dst_.store().LeaseTimeToLive(ttl).ok());
  // The installed store keeps applying and survives a reopen.
  dst_.set_next_index(dst_.store().AppliedIndex() + 1);
  ASSERT_TRUE(dst_.Apply(PutReq("after", "1")).status.ok());
  dst_.Reopen();
  EXPECT_EQ(dst_.store().Range(RangeReq("after"))->kvs_size(), 1);
  EXPECT_EQ(dst_.store().Range(RangeReq("old0"))->kvs_size(), 0);
  // Only the live database remains in the store directory.
  int dbs = 0;
  for (const auto& e : std::filesystem::directory_iterator(dst_.store().dir())) {
    if (e.path().filename().string().rfind("db-", 0) == 0) ++dbs;
  }
  EXPECT_EQ(dbs, 1);
}

TEST_F(SnapshotTest, CorruptedChunkIsDataLossAndLeavesTargetIntact) {
  auto chunks = Stream(16 << 10);
  ASSERT_GT(chunks.size(), 3u);
  auto& victim = chunks[chunks.size() / 2];
  std::string data = victim.data();
  ASSERT_FALSE(data.empty());
  data[data.size() / 2] ^= 0x40;
  victim.set_data(data);
  auto inst = SnapshotInstaller::Begin(dst_.store().dir());
  ASSERT_TRUE(inst.ok());
  absl::Status st;
  for (const auto& c : chunks) {
    st = (*inst)->Add(c);
    if (!st.ok()) break;
  }
  EXPECT_EQ(st.code(), absl::StatusCode::kDataLoss) << st;
  EXPECT_FALSE((*inst)->Finish(dst_.store()).ok());
  EXPECT_EQ(dst_.store().Range(All())->count(), 3);
}

TEST_F(SnapshotTest, OutOfOrderAndTruncatedStreamsAreRejected) {
  auto chunks = Stream(16 << 10);
  {
    auto inst = std::move(SnapshotInstaller::Begin(dst_.store().dir())).value();
    ASSERT_TRUE(inst->Add(chunks[0]).ok());
    EXPECT_EQ(inst->Add(chunks[2]).code(), absl::StatusCode::kInvalidArgument);
  }
  {
    auto inst = std::move(SnapshotInstaller::Begin(dst_.store().dir())).value();
    for (size_t i = 0; i + 1 < chunks.size(); ++i) ASSERT_TRUE(inst->Add(chunks[i]).ok());
    EXPECT_EQ(inst->Finish(dst_.store()).status().code(), absl::StatusCode::kFailedPrecondition);
  }
  EXPECT_EQ(dst_.store().Range(All())->count(), 3);
}

TEST_F(SnapshotTest, SnapshotIndexMustBeTheAppliedIndex) {
  auto reader = SnapshotReader::Create(src_.store(), Meta(1), scratch_.path() + "/cp");
  EXPECT_EQ(reader.status().code(), absl::StatusCode::kFailedPrecondition);
}

TEST_F(SnapshotTest, InterruptedInstallLeavesOldStateAfterReopen) {
  auto chunks = Stream(64 << 10);
  // A crash after staging and even after moving the new db into place, but before the
  // CURRENT switch: simulate by leaving those directories behind.
  {
    auto inst = std::move(SnapshotInstaller::Begin(dst_.store().dir())).value();
    for (const auto& c : chunks) ASSERT_TRUE(inst->Add(c).ok());
    std::filesystem::copy(dst_.store().dir() + "/incoming.tmp", dst_.store().dir() + "/db-2");
  }
  // The installer was dropped without Finish (it removed incoming.tmp); put one back.
  std::filesystem::copy(dst_.store().dir() + "/db-2", dst_.store().dir() + "/incoming.tmp");
  dst_.Reopen();
  EXPECT_EQ(dst_.store().Range(All())->count(), 3);
  EXPECT_FALSE(std::filesystem::exists(dst_.store().dir() + "/db-2"));
  EXPECT_FALSE(std::filesystem::exists(dst_.store().dir() + "/incoming.tmp"));
}

}  // namespace
}  // namespace keel::storage
