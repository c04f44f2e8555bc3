// Unit tests of KvStore's Txn, lease table, batch apply and client dedup.
#include <string>

#include "gtest/gtest.h"
#include "storage/kv_store.h"
#include "tests/unit/storage/kv_test_util.h"

namespace keel::storage {
namespace {

using etcdserverpb::Compare;
using etcdserverpb::TxnRequest;
using testing::CompactReq;
using testing::DelReq;
using testing::GrantReq;
using testing::KvHarness;
using testing::PutReq;
using testing::RangeReq;
using testing::RevokeReq;
using testing::TempDir;

Compare Cmp(const std::string& key, Compare::CompareTarget target, Compare::CompareResult result,
            int64_t n, const std::string& value = "", const std::string& end = "") {
  Compare c;
  c.set_key(key);
  c.set_target(target);
  c.set_result(result);
  c.set_range_end(end);
  switch (target) {
    case Compare::VERSION:
      c.set_version(n);
      break;
    case Compare::CREATE:
      c.set_create_revision(n);
      break;
    case Compare::MOD:
      c.set_mod_revision(n);
      break;
    case Compare::LEASE:
      c.set_lease(n);
      break;
    default:
      c.set_value(value);
  }
  return c;
}

void AddPut(google::protobuf::RepeatedPtrField<etcdserverpb::RequestOp>* ops, const std::string& k,
            const std::string& v) {
  auto* p = ops->Add()->mutable_request_put();
  p->set_key(k);
  p->set_value(v);
}

internalpb::Request Txn(const TxnRequest& t) {
  internalpb::Request r;
  *r.mutable_txn() = t;
  return r;
}

class KvTxnTest : public ::testing::Test {
 protected:
  bool Succeeds(const Compare& c) {
    TxnRequest t;
    *t.add_compare() = c;
    auto r = h_.Apply(Txn(t));
    EXPECT_TRUE(r.status.ok()) << r.status;
    return r.response.txn().succeeded();
  }

  TempDir dir_;
  KvHarness h_{dir_.path()};
};

TEST_F(KvTxnTest, CompareTargetsAndResults) {
  ASSERT_TRUE(h_.Apply(GrantReq(5, 60)).status.ok());
  ASSERT_TRUE(h_.Apply(PutReq("k", "m", 5)).status.ok());  // rev 2
  ASSERT_TRUE(h_.Apply(PutReq("k", "n", 5)).status.ok());  // rev 3, version 2
  EXPECT_TRUE(Succeeds(Cmp("k", Compare::VALUE, Compare::EQUAL, 0, "n")));
  EXPECT_TRUE(Succeeds(Cmp("k", Compare::VALUE, Compare::GREATER, 0, "m")));
  EXPECT_TRUE(Succeeds(Cmp("k", Compare::VALUE, Compare::LESS, 0, "o")));
  EXPECT_TRUE(Succeeds(Cmp("k", Compare::VALUE, Compare::NOT_EQUAL, 0, "x")));
  EXPECT_FALSE(Succeeds(Cmp("k", Compare::VALUE, Compare::EQUAL, 0, "m")));
  EXPECT_TRUE(Succeeds(Cmp("k", Compare::VERSION, Compare::EQUAL, 2)));
  EXPECT_TRUE(Succeeds(Cmp("k", Compare::CREATE, Compare::EQUAL, 2)));
  EXPECT_TRUE(Succeeds(Cmp("k", Compare::MOD, Compare::EQUAL, 3)));
  EXPECT_TRUE(Succeeds(Cmp("k", Compare::MOD, Compare::GREATER, 2)));
  EXPECT_TRUE(Succeeds(Cmp("k", Compare::LEASE, Compare::EQUAL, 5)));
  EXPECT_FALSE(Succeeds(Cmp("k", Compare::LEASE, Compare::LESS, 5)));
}

TEST_F(KvTxnTest, CompareOnMissingKey) {
  // A missing key compares as all zeros; a value compare always fails.
  EXPECT_TRUE(Succeeds(Cmp("nope", Compare::VERSION, Compare::EQUAL, 0)));
  EXPECT_TRUE(Succeeds(Cmp("nope", Compare::CREATE, Compare::EQUAL, 0)));
  EXPECT_FALSE(Succeeds(Cmp("nope", Compare::VALUE, Compare::EQUAL, 0, "")));
  EXPECT_FALSE(Succeeds(Cmp("nope", Compare::VALUE, Compare::NOT_EQUAL, 0, "x")));
}

TEST_F(KvTxnTest, CompareOverRange) {
  ASSERT_TRUE(h_.Apply(PutReq("p/a", "1")).status.ok());
  ASSERT_TRUE(h_.Apply(PutReq("p/b", "1")).status.ok());
  EXPECT_TRUE(Succeeds(Cmp("p/", Compare::VALUE, Compare::EQUAL, 0, "1", "p0")));
  EXPECT_TRUE(Succeeds(Cmp("p/", Compare::VERSION, Compare::EQUAL, 1, "", std::string(1, '\0'))));
  ASSERT_TRUE(h_.Apply(PutReq("p/b", "2")).status.ok());
  EXPECT_FALSE(Succeeds(Cmp("p/", Compare::VALUE, Compare::EQUAL, 0, "1", "p0")));
}

TEST_F(KvTxnTest, SuccessAndFailureBranchesOneRevision) {
  TxnRequest t;
  *t.add_compare() = Cmp("k", Compare::VERSION, Compare::EQUAL, 0);
  AddPut(t.mutable_success(), "k", "created");
  AddPut(t.mutable_success(), "k2", "also");
  t.add_success()->mutable_request_range()->set_key("k");
  AddPut(t.mutable_failure(), "k", "exists");
  auto r = h_.Apply(Txn(t));
  ASSERT_TRUE(r.status.ok()) << r.status;
  EXPECT_TRUE(r.response.txn().succeeded());
  EXPECT_EQ(r.response.txn().header().revision(), 2);
  ASSERT_EQ(r.response.txn().responses_size(), 3);
  EXPECT_EQ(r.response.txn().responses(0).response_put().header().revision(), 2);
  // The range inside the txn sees the txn's own write.
  EXPECT_EQ(r.response.txn().responses(2).response_range().kvs(0).value(), "created");
  EXPECT_EQ(r.events.size(), 2u);
  auto g = h_.store().Range(RangeReq("k2"));
  EXPECT_EQ(g->kvs(0).mod_revision(), 2);
  r = h_.Apply(Txn(t));
  EXPECT_FALSE(r.response.txn().succeeded());
  EXPECT_EQ(h_.store().Range(RangeReq("k"))->kvs(0).value(), "exists");
  EXPECT_EQ(h_.store().Revision(), 3);
}

TEST_F(KvTxnTest, ReadOnlyTxnDoesNotBumpRevision) {
  TxnRequest t;
  t.add_success()->mutable_request_range()->set_key("x");
  auto r = h_.Apply(Txn(t));
  ASSERT_TRUE(r.status.ok());
  EXPECT_EQ(r.response.txn().header().revision(), 1);
  EXPECT_EQ(h_.store().Revision(), 1);
}

TEST_F(KvTxnTest, NestedTxn) {
  TxnRequest inner;
  *inner.add_compare() = Cmp("a", Compare::VERSION, Compare::EQUAL, 0);  // Before the txn.
  AddPut(inner.mutable_success(), "b", "inner-success");
  AddPut(inner.mutable_failure(), "b", "inner-failure");
  TxnRequest outer;
  AddPut(outer.mutable_success(), "a", "outer");
  *outer.add_success()->mutable_request_txn() = inner;
  auto r = h_.Apply(Txn(outer));
  ASSERT_TRUE(r.status.ok()) << r.status;
  // Nested compares see the state before the outer txn (etcd's compareToPath).
  EXPECT_TRUE(r.response.txn().responses(1).response_txn().succeeded());
  EXPECT_EQ(h_.store().Range(RangeReq("b"))->kvs(0).value(), "inner-success");
  EXPECT_EQ(h_.store().Revision(), 2);
}

TEST_F(KvTxnTest, DuplicateKeysAndTooManyOps) {
  TxnRequest t;
  AddPut(t.mutable_success(), "k", "1");
  AddPut(t.mutable_success(), "k", "2");
  auto r = h_.Apply(Txn(t));
  EXPECT_EQ(r.status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(r.status.message(), "etcdserver: duplicate key given in txn request");
  // Put inside a deleted range.
  t.Clear();
  AddPut(t.mutable_success(), "k", "1");
  t.add_success()->mutable_request_delete_range()->set_key("a");
  t.mutable_success(1)->mutable_request_delete_range()->set_range_end("z");
  EXPECT_EQ(h_.Apply(Txn(t)).status.message(), "etcdserver: duplicate key given in txn request");
  // Put in a nested txn and outside.
  t.Clear();
  AddPut(t.mutable_success(), "k", "1");
  TxnRequest inner;
  AddPut(inner.mutable_success(), "k", "2");
  *t.add_success()->mutable_request_txn() = inner;
  EXPECT_EQ(h_.Apply(Txn(t)).status.message(), "etcdserver: duplicate key given in txn request");
  // The same key in a nested then and else is fine.
  t.Clear();
  inner.Clear();
  AddPut(inner.mutable_success(), "k", "2");
  AddPut(inner.mutable_failure(), "k", "3");
  *t.add_success()->mutable_request_txn() = inner;
  EXPECT_TRUE(h_.Apply(Txn(t)).status.ok());
  // Overlapping deletes are fine.
  t.Clear();
  t.add_success()->mutable_request_delete_range()->set_key("k");
  t.add_success()->mutable_request_delete_range()->set_key("k");
  EXPECT_TRUE(h_.Apply(Txn(t)).status.ok());

  t.Clear();
  for (int i = 0; i < 129; ++i) AddPut(t.mutable_success(), "k" + std::to_string(i), "v");
  r = h_.Apply(Txn(t));
  EXPECT_EQ(r.status.message(), "etcdserver: too many operations in txn request");
  EXPECT_EQ(h_.store().Revision(), 3);  // The nested put (2) and the deletes (3) only.
}

TEST_F(KvTxnTest, TxnWithManyOps) {
  TxnRequest t;
  for (int i = 0; i < 128; ++i) AddPut(t.mutable_success(), "k" + std::to_string(1000 + i), "v");
  auto r = h_.Apply(Txn(t));
  ASSERT_TRUE(r.status.ok()) << r.status;
  EXPECT_EQ(r.events.size(), 128u);
  auto g = h_.store().Range(RangeReq("k", "l"));
  EXPECT_EQ(g->count(), 128);
  EXPECT_EQ(g->kvs(127).mod_revision(), 2);
}

TEST_F(KvTxnTest, FailedTxnChangesNothing) {
  ASSERT_TRUE(h_.Apply(PutReq("a", "1")).status.ok());
  TxnRequest t;
  AddPut(t.mutable_success(), "a", "2");
  auto* p = t.add_success()->mutable_request_put();
  p->set_key("b");
  p->set_lease(99);  // No such lease.
  auto r = h_.Apply(Txn(t));
  EXPECT_EQ(r.status.message(), "etcdserver: requested lease not found");
  EXPECT_EQ(h_.store().Range(RangeReq("a"))->kvs(0).value(), "1");
  EXPECT_EQ(h_.store().Revision(), 2);
  // A range at a compacted / future revision inside a txn.
  ASSERT_TRUE(h_.Apply(PutReq("a", "3")).status.ok());
  ASSERT_TRUE(h_.Apply(CompactReq(3)).status.ok());
  t.Clear();
  AddPut(t.mutable_success(), "z", "1");
  t.add_success()->mutable_request_range()->set_key("a");
  t.mutable_success(1)->mutable_request_range()->set_revision(2);
  EXPECT_EQ(h_.Apply(Txn(t)).status.message(),
            "etcdserver: mvcc: required revision has been compacted");
  t.mutable_success(1)->mutable_request_range()->set_revision(4);
  EXPECT_EQ(h_.Apply(Txn(t)).status.message(),
            "etcdserver: mvcc: required revision is a future revision");
  EXPECT_EQ(h_.store().Range(RangeReq("z"))->kvs_size(), 0);
}

TEST_F(KvTxnTest, LeaseGrantAttachRevoke) {
  auto g = h_.Apply(GrantReq(0, 1));  // id chosen by the store; TTL raised to the minimum.
  ASSERT_TRUE(g.status.ok()) << g.status;
  const int64_t id = g.response.lease_grant().id();
  EXPECT_NE(id, 0);
  EXPECT_EQ(g.response.lease_grant().ttl(), 2);
  auto dup = h_.Apply(GrantReq(id, 10));
  EXPECT_EQ(dup.status.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(dup.status.message(), "etcdserver: lease already exists");
  ASSERT_TRUE(h_.Apply(PutReq("a", "1", id)).status.ok());
  ASSERT_TRUE(h_.Apply(PutReq("b", "1", id)).status.ok());
  ASSERT_TRUE(h_.Apply(PutReq("c", "1", id)).status.ok());
  ASSERT_TRUE(h_.Apply(PutReq("c", "2")).status.ok());  // Detached from the lease.
  ASSERT_TRUE(h_.Apply(PutReq("d", "1")).status.ok());
  etcdserverpb::LeaseTimeToLiveRequest ttl;
  ttl.set_id(id);
  ttl.set_keys(true);
  auto info = h_.store().LeaseTimeToLive(ttl);
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->keys_size(), 2);
  EXPECT_EQ(info->grantedttl(), 2);
  EXPECT_EQ(h_.store().LeaseLeases()->leases_size(), 1);

  const int64_t before = h_.store().Revision();
  auto r = h_.Apply(RevokeReq(id));
  ASSERT_TRUE(r.status.ok()) << r.status;
  EXPECT_EQ(h_.store().Revision(), before + 1);  // All attached keys in one revision.
  EXPECT_EQ(r.response.lease_revoke().header().revision(), before + 1);
  ASSERT_EQ(r.events.size(), 2u);
  EXPECT_EQ(r.events[0].kv().key(), "a");
  EXPECT_EQ(r.events[1].kv().key(), "b");
  EXPECT_EQ(r.events[1].type(), mvccpb::Event::DELETE);
  auto rest = h_.store().Range(RangeReq("a", "z"));
  EXPECT_EQ(rest->count(), 2);  // c and d.
  auto again = h_.Apply(RevokeReq(id));
  EXPECT_EQ(again.status.code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(again.status.message(), "etcdserver: requested lease not found");
  EXPECT_EQ(h_.store().LeaseTimeToLive(ttl).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(h_.store().LeaseLeases()->leases_size(), 0);
}

TEST_F(KvTxnTest, BatchApplySkipsAppliedEntries) {
  std::vector<std::string> data;
  for (int i = 0; i < 5; ++i)
    data.push_back(PutReq("k" + std::to_string(i), "v").SerializeAsString());
  std::vector<ApplyEntry> entries;
  for (int i = 0; i < 5; ++i) entries.push_back({static_cast<uint64_t>(10 + i), data[i]});
  auto r = h_.store().Apply(entries);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->size(), 5u);
  EXPECT_EQ(h_.store().AppliedIndex(), 14u);
  EXPECT_EQ(h_.store().Revision(), 6);
  // Re-applying the same entries (as after a crash) is a no-op.
  r = h_.store().Apply(entries);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->empty());
  EXPECT_EQ(h_.store().Revision(), 6);
  // A partial overlap applies only the new ones.
  const std::string more = PutReq("k9", "v").SerializeAsString();
  std::vector<ApplyEntry> overlap{{14, data[4]}, {15, more}, {16, ""}};
  r = h_.store().Apply(overlap);
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->size(), 2u);
  EXPECT_EQ((*r)[0].index, 15u);
  EXPECT_EQ(h_.store().Revision(), 7);
  EXPECT_EQ(h_.store().AppliedIndex(), 16u);
  h_.Reopen();
  EXPECT_EQ(h_.store().AppliedIndex(), 16u);
  EXPECT_EQ(h_.store().Revision(), 7);
}

TEST_F(KvTxnTest, FailedEntryInBatchRollsBackOnlyItself) {
  std::vector<std::string> data = {
      PutReq("a", "1").SerializeAsString(),
      PutReq("b", "1", /*lease=*/42).SerializeAsString(),  // Fails: no lease.
      PutReq("c", "1").SerializeAsString(),
      "\xff\xff garbage",
  };
  std::vector<ApplyEntry> entries;
  for (size_t i = 0; i < data.size(); ++i) entries.push_back({i + 1, data[i]});
  auto r = h_.store().Apply(entries);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE((*r)[0].status.ok());
  EXPECT_EQ((*r)[1].status.code(), absl::StatusCode::kNotFound);
  EXPECT_TRUE((*r)[2].status.ok());
  EXPECT_EQ((*r)[2].response.put().header().revision(), 3);
  EXPECT_EQ((*r)[3].status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(h_.store().Range(RangeReq("a", "z"))->count(), 2);
}

TEST_F(KvTxnTest, ClientDedupAppliesOnceAndReturnsFirstAnswer) {
  auto req = PutReq("k", "v1");
  req.set_client_id(77);
  req.set_sequence(1);
  auto first = h_.Apply(req);
  ASSERT_TRUE(first.status.ok());
  EXPECT_FALSE(first.duplicate);
  auto retry = h_.Apply(req);  // Same (client, sequence): answered from the table.
  EXPECT_TRUE(retry.duplicate);
  EXPECT_EQ(retry.response.put().header().revision(), first.response.put().header().revision());
  EXPECT_EQ(h_.store().Revision(), 2);
  EXPECT_TRUE(retry.events.empty());
  // Survives a restart.
  h_.Reopen();
  EXPECT_TRUE(h_.Apply(req).duplicate);
  EXPECT_EQ(h_.store().Revision(), 2);
  // A failed request's answer is remembered too.
  auto bad = PutReq("k", "v", 999);
  bad.set_client_id(77);
  bad.set_sequence(2);
  EXPECT_EQ(h_.Apply(bad).status.code(), absl::StatusCode::kNotFound);
  ASSERT_TRUE(h_.Apply(GrantReq(999, 60)).status.ok());
  auto bad_retry = h_.Apply(bad);
  EXPECT_TRUE(bad_retry.duplicate);
  EXPECT_EQ(bad_retry.status.code(), absl::StatusCode::kNotFound);
  // An older sequence is refused.
  EXPECT_EQ(h_.Apply(req).status.code(), absl::StatusCode::kFailedPrecondition);
  // Other clients are independent.
  auto other = PutReq("k", "v2");
  other.set_client_id(78);
  other.set_sequence(1);
  EXPECT_FALSE(h_.Apply(other).duplicate);
  EXPECT_EQ(h_.store().Revision(), 3);
}

TEST(KvDedupExpiry, SessionExpiresAfterConfiguredEntries) {
  TempDir dir;
  KvStoreOptions opts;
  opts.session_expiry_entries = 5;
  KvHarness h(dir.path(), opts);
  auto req = PutReq("k", "v");
  req.set_client_id(1);
  req.set_sequence(1);
  ASSERT_TRUE(h.Apply(req).status.ok());
  EXPECT_TRUE(h.Apply(req).duplicate);
  for (int i = 0; i < 6; ++i) ASSERT_TRUE(h.Apply(PutReq("x", "y")).status.ok());
  // Expired: the retry applies again (at-least-once beyond the window).
  auto late = h.Apply(req);
  EXPECT_FALSE(late.duplicate);
  EXPECT_TRUE(late.status.ok());
}

}  // namespace
}  // namespace keel::storage
