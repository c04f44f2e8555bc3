// KvStore's maintenance side: alarms through the apply path (NOSPACE makes the store
// read-and-delete-only, CORRUPT refuses key and lease requests, deterministically, and
// both survive a reopen), HashKv, and the
// snapshot file format (round trip, corruption, etcdctl 3.4's size rule).
#include <fstream>

#include "gtest/gtest.h"
#include "storage/mvcc_errors.h"
#include "storage/snapshot.h"
#include "storage/snapshot_file.h"
#include "tests/unit/storage/kv_test_util.h"

namespace keel::storage {
namespace {
using testing::KvHarness;
using testing::TempDir;

internalpb::Request AlarmReq(etcdserverpb::AlarmRequest::AlarmAction action, uint64_t member,
                             etcdserverpb::AlarmType type) {
  internalpb::Request r;
  r.mutable_alarm()->set_action(action);
  r.mutable_alarm()->set_memberid(member);
  r.mutable_alarm()->set_alarm(type);
  return r;
}

TEST(KvMaintenanceTest, NoSpaceAlarmRefusesPutsTxnPutsAndGrantsUntilDisarmed) {
  TempDir dir;
  KvHarness h(dir.path());
  ASSERT_TRUE(h.Apply(testing::PutReq("a", "1")).status.ok());
  ApplyResult raised =
      h.Apply(AlarmReq(etcdserverpb::AlarmRequest::ACTIVATE, 7, etcdserverpb::NOSPACE));
  ASSERT_TRUE(raised.status.ok());
  EXPECT_EQ(raised.response.alarm().alarms_size(), 1);
  EXPECT_TRUE(h.store().NoSpace());
  const int64_t rev = h.store().Revision();

  EXPECT_EQ(h.Apply(testing::PutReq("b", "2")).status, mvcc::ErrNoSpace());
  internalpb::Request txn;
  txn.mutable_txn()->add_failure()->mutable_request_put()->set_key("c");
  EXPECT_EQ(h.Apply(txn).status, mvcc::ErrNoSpace());
  EXPECT_EQ(h.Apply(testing::GrantReq(5, 60)).status, mvcc::ErrNoSpace());
  EXPECT_EQ(h.store().Revision(), rev);
  // Deletes and compaction still work.
  EXPECT_TRUE(h.Apply(testing::DelReq("a")).status.ok());
  EXPECT_TRUE(h.Apply(testing::CompactReq(h.store().Revision())).status.ok());

  h.Reopen();  // Persisted with the state.
  ASSERT_EQ(h.store().Alarms().size(), 1u);
  EXPECT_EQ(h.store().Alarms()[0].memberid(), 7u);
  EXPECT_TRUE(h.store().NoSpace());

  ApplyResult cleared =
      h.Apply(AlarmReq(etcdserverpb::AlarmRequest::DEACTIVATE, 0, etcdserverpb::NOSPACE));
  EXPECT_EQ(cleared.response.alarm().alarms_size(), 1);
  EXPECT_FALSE(h.store().NoSpace());
  EXPECT_TRUE(h.Apply(testing::PutReq("b", "2")).status.ok());
}

// CORRUPT (raised by the leader's corruption check) refuses every request that reads
// or changes keys or leases, in the replicated state; alarms still apply, so it can be
// disarmed, and it survives a reopen.
TEST(KvMaintenanceTest, CorruptAlarmRefusesKeyAndLeaseRequestsUntilDisarmed) {
  TempDir dir;
  KvHarness h(dir.path());
  ASSERT_TRUE(h.Apply(testing::PutReq("a", "1")).status.ok());
  ASSERT_TRUE(h.Apply(testing::GrantReq(5, 60)).status.ok());
  ASSERT_TRUE(h.Apply(AlarmReq(etcdserverpb::AlarmRequest::ACTIVATE, 9, etcdserverpb::CORRUPT))
                  .status.ok());
  EXPECT_TRUE(h.store().Corrupt());
  EXPECT_FALSE(h.store().NoSpace());
  const int64_t rev = h.store().Revision();
  EXPECT_EQ(h.Apply(testing::PutReq("b", "2")).status, mvcc::ErrCorrupt());
  EXPECT_EQ(h.Apply(testing::DelReq("a")).status, mvcc::ErrCorrupt());
  internalpb::Request txn;
  txn.mutable_txn()->add_success()->mutable_request_range()->set_key("a");
  EXPECT_EQ(h.Apply(txn).status, mvcc::ErrCorrupt());
  EXPECT_EQ(h.Apply(testing::CompactReq(rev)).status, mvcc::ErrCorrupt());
  EXPECT_EQ(h.Apply(testing::GrantReq(6, 60)).status, mvcc::ErrCorrupt());
  EXPECT_EQ(h.Apply(testing::RevokeReq(5)).status, mvcc::ErrCorrupt());
  EXPECT_EQ(h.store().Revision(), rev);
  EXPECT_EQ(mvcc::ErrCorrupt().code(), absl::StatusCode::kDataLoss);  // etcd: DATA_LOSS.
  EXPECT_EQ(mvcc::ErrCorrupt().message(), "etcdserver: corrupt cluster");

  h.Reopen();
  EXPECT_TRUE(h.store().Corrupt());
  ASSERT_TRUE(h.Apply(AlarmReq(etcdserverpb::AlarmRequest::DEACTIVATE, 9, etcdserverpb::CORRUPT))
                  .status.ok());
  EXPECT_FALSE(h.store().Corrupt());
  EXPECT_TRUE(h.Apply(testing::PutReq("b", "2")).status.ok());
}

TEST(KvMaintenanceTest, HashKvCoversValuesAndHistoryAndRespectsCompaction) {
  TempDir d1, d2;
  KvHarness a(d1.path()), b(d2.path());
  for (int i = 0; i < 50; ++i) {
    a.Apply(testing::PutReq("k" + std::to_string(i % 7), std::to_string(i)));
    b.Apply(testing::PutReq("k" + std::to_string(i % 7), std::to_string(i)));
  }
  auto ha = a.store().HashKv(0), hb = b.store().HashKv(0);
  ASSERT_TRUE(ha.ok() && hb.ok());
  EXPECT_EQ(ha->hash, hb->hash);
  EXPECT_EQ(ha->revision, a.store().Revision());
  auto older = a.store().HashKv(20);
  ASSERT_TRUE(older.ok());
  EXPECT_NE(older->hash, ha->hash);
  b.Apply(testing::PutReq("k1", "different"));
  auto b_then = b.store().HashKv(ha->revision);
  ASSERT_TRUE(b_then.ok());
  EXPECT_EQ(b_then->hash, ha->hash) << "a later write must not change an older revision's hash";
  EXPECT_NE(b.store().HashKv(0)->hash, ha->hash);
  a.Apply(testing::CompactReq(30));
  EXPECT_EQ(a.store().HashKv(20).status(), mvcc::ErrCompacted());
  EXPECT_EQ(a.store().HashKv(1000).status(), mvcc::ErrFutureRev());
  EXPECT_EQ(a.store().HashKv(0)->compact_revision, 30);
}

TEST(KvMaintenanceTest, SnapshotFileRoundTripsAndRefusesDamage) {
  TempDir src_dir, dst_dir, files;
  KvHarness src(src_dir.path());
  for (int i = 0; i < 100; ++i) src.Apply(testing::PutReq("key" + std::to_string(i), "v"));
  raftpb::SnapshotMetadata meta;
  meta.set_index(src.store().AppliedIndex());
  auto reader = SnapshotReader::Create(src.store(), meta, files.path() + "/cp", 4096);
  ASSERT_TRUE(reader.ok()) << reader.status();
  SnapshotFileEncoder encoder;
  std::string bytes;
  internalpb::SnapshotChunk chunk;
  while (*(*reader)->Next(&chunk)) bytes += encoder.Record(chunk);
  bytes += encoder.End();
  EXPECT_EQ(bytes.size() % 512, 32u) << "etcdctl 3.4's snapshot save checks this";
  const std::string path = files.path() + "/s.snap";
  std::ofstream(path, std::ios::binary) << bytes;

  auto file = SnapshotFileReader::Open(path);
  ASSERT_TRUE(file.ok()) << file.status();
  KvHarness dst(dst_dir.path());
  auto installer = SnapshotInstaller::Begin(files.path() + "/staging");
  ASSERT_TRUE(installer.ok());
  for (;;) {
    auto more = (*file)->Next(&chunk);
    ASSERT_TRUE(more.ok()) << more.status();
    if (!*more) break;
    ASSERT_TRUE((*installer)->Add(chunk).ok());
  }
  ASSERT_TRUE((*installer)->Finish(dst.store()).ok());
  EXPECT_EQ(dst.store().Revision(), src.store().Revision());
  EXPECT_EQ(dst.store().HashKv(0)->hash, src.store().HashKv(0)->hash);
  ASSERT_TRUE(dst.store().ResetForNewCluster().ok());
  EXPECT_EQ(dst.store().AppliedIndex(), 0u);
  EXPECT_EQ(dst.store().Revision(), src.store().Revision());

  for (size_t at : {size_t{3}, bytes.size() / 2, bytes.size() - 10}) {
    std::string bad = bytes;
    bad[at] ^= 0x40;
    std::ofstream(path, std::ios::binary | std::ios::trunc) << bad;
    EXPECT_EQ(SnapshotFileReader::Open(path).status().code(), absl::StatusCode::kDataLoss) << at;
  }
  std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes.substr(0, bytes.size() - 100);
  EXPECT_EQ(SnapshotFileReader::Open(path).status().code(), absl::StatusCode::kDataLoss);
}

}  // namespace
}  // namespace keel::storage
