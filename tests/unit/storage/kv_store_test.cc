// Unit tests of KvStore: every operation and option, etcd's error texts, apply
// semantics (batches, skipping, dedup) and persistence across reopen.
#include "storage/kv_store.h"

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "rocksdb/db.h"
#include "storage/mvcc_encoding.h"
#include "tests/unit/storage/kv_test_util.h"

namespace keel::storage {
namespace {

using testing::CompactReq;
using testing::DelReq;
using testing::GrantReq;
using testing::KvHarness;
using testing::PutReq;
using testing::RangeReq;
using testing::RevokeReq;
using testing::TempDir;

class KvStoreTest : public ::testing::Test {
 protected:
  etcdserverpb::RangeResponse Get(const etcdserverpb::RangeRequest& r) {
    auto resp = h_.store().Range(r);
    EXPECT_TRUE(resp.ok()) << resp.status();
    return resp.ok() ? *resp : etcdserverpb::RangeResponse();
  }
  std::vector<std::string> Keys(const etcdserverpb::RangeResponse& r) {
    std::vector<std::string> out;
    for (const auto& kv : r.kvs()) out.push_back(kv.key());
    return out;
  }
  void PutOk(const std::string& k, const std::string& v, int64_t lease = 0) {
    auto r = h_.Apply(PutReq(k, v, lease));
    ASSERT_TRUE(r.status.ok()) << r.status;
  }

  TempDir dir_;
  KvHarness h_{dir_.path()};
};

TEST_F(KvStoreTest, FreshStoreStartsAtRevisionOne) {
  EXPECT_EQ(h_.store().Revision(), 1);
  EXPECT_EQ(h_.store().AppliedIndex(), 0u);
  auto r = Get(RangeReq("a"));
  EXPECT_EQ(r.header().revision(), 1);
  EXPECT_EQ(r.kvs_size(), 0);
  EXPECT_EQ(r.count(), 0);
}

TEST_F(KvStoreTest, PutSetsRevisionsAndVersion) {
  auto r1 = h_.Apply(PutReq("k", "v1"));
  ASSERT_TRUE(r1.status.ok());
  EXPECT_EQ(r1.response.put().header().revision(), 2);
  auto r2 = h_.Apply(PutReq("k", "v2", 0, /*prev_kv=*/true));
  EXPECT_EQ(r2.response.put().header().revision(), 3);
  EXPECT_EQ(r2.response.put().prev_kv().value(), "v1");
  EXPECT_EQ(r2.response.put().prev_kv().mod_revision(), 2);
  auto g = Get(RangeReq("k"));
  ASSERT_EQ(g.kvs_size(), 1);
  EXPECT_EQ(g.kvs(0).value(), "v2");
  EXPECT_EQ(g.kvs(0).create_revision(), 2);
  EXPECT_EQ(g.kvs(0).mod_revision(), 3);
  EXPECT_EQ(g.kvs(0).version(), 2);
  // Events: PUT with prev_kv.
  ASSERT_EQ(r2.events.size(), 1u);
  EXPECT_EQ(r2.events[0].type(), mvccpb::Event::PUT);
  EXPECT_EQ(r2.events[0].kv().version(), 2);
  EXPECT_EQ(r2.events[0].prev_kv().value(), "v1");
}

TEST_F(KvStoreTest, DeleteThenPutStartsNewGeneration) {
  PutOk("k", "a");
  auto d = h_.Apply(DelReq("k", "", true));
  ASSERT_TRUE(d.status.ok());
  EXPECT_EQ(d.response.delete_range().deleted(), 1);
  EXPECT_EQ(d.response.delete_range().prev_kvs(0).value(), "a");
  ASSERT_EQ(d.events.size(), 1u);
  EXPECT_EQ(d.events[0].type(), mvccpb::Event::DELETE);
  EXPECT_EQ(d.events[0].kv().mod_revision(), 3);
  EXPECT_EQ(d.events[0].kv().key(), "k");
  PutOk("k", "b");
  auto g = Get(RangeReq("k"));
  EXPECT_EQ(g.kvs(0).create_revision(), 4);
  EXPECT_EQ(g.kvs(0).version(), 1);
}

TEST_F(KvStoreTest, DeleteOfNothingDoesNotBumpRevision) {
  auto d = h_.Apply(DelReq("missing"));
  ASSERT_TRUE(d.status.ok());
  EXPECT_EQ(d.response.delete_range().deleted(), 0);
  EXPECT_EQ(d.response.delete_range().header().revision(), 1);
  EXPECT_EQ(h_.store().Revision(), 1);
  EXPECT_TRUE(d.events.empty());
}

TEST_F(KvStoreTest, EmptyKeyIsRejectedEverywhere) {
  auto p = h_.Apply(PutReq("", "v"));
  EXPECT_EQ(p.status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(p.status.message(), "etcdserver: key is not provided");
  EXPECT_EQ(h_.Apply(DelReq("")).status.message(), "etcdserver: key is not provided");
  auto g = h_.store().Range(RangeReq(""));
  EXPECT_EQ(g.status().message(), "etcdserver: key is not provided");
  EXPECT_EQ(h_.store().Revision(), 1);
  // The failed entries still advance the applied index.
  EXPECT_EQ(h_.store().AppliedIndex(), 2u);
}

TEST_F(KvStoreTest, RangeIntervals) {
  for (const char* k : {"a", "ab", "abc", "b", "c", "\xff"}) PutOk(k, "v");
  EXPECT_EQ(Keys(Get(RangeReq("a", "b"))), (std::vector<std::string>{"a", "ab", "abc"}));
  // Prefix "ab": range_end = "ac".
  EXPECT_EQ(Keys(Get(RangeReq("ab", "ac"))), (std::vector<std::string>{"ab", "abc"}));
  // range_end "\0": every key >= key.
  EXPECT_EQ(Keys(Get(RangeReq("b", std::string(1, '\0')))),
            (std::vector<std::string>{"b", "c", "\xff"}));
  // key "\0", range_end "\0": all keys.
  EXPECT_EQ(Get(RangeReq(std::string(1, '\0'), std::string(1, '\0'))).count(), 6);
  // range_end before key: nothing.
  auto r = Get(RangeReq("c", "a"));
  EXPECT_EQ(r.kvs_size(), 0);
  EXPECT_EQ(r.count(), 0);
  // Single key that is a prefix of others.
  EXPECT_EQ(Keys(Get(RangeReq("ab"))), (std::vector<std::string>{"ab"}));
}

TEST_F(KvStoreTest, RangeLimitCountKeysOnly) {
  for (int i = 0; i < 10; ++i) PutOk("k" + std::to_string(i), "value");
  auto req = RangeReq("k", "l");
  req.set_limit(0);  // 0: no limit.
  EXPECT_EQ(Get(req).kvs_size(), 10);
  EXPECT_FALSE(Get(req).more());
  req.set_limit(3);
  auto r = Get(req);
  EXPECT_EQ(Keys(r), (std::vector<std::string>{"k0", "k1", "k2"}));
  EXPECT_TRUE(r.more());
  EXPECT_EQ(r.count(), 10);
  req.set_limit(10);
  EXPECT_FALSE(Get(req).more());
  req.set_limit(0);
  req.set_keys_only(true);
  r = Get(req);
  EXPECT_EQ(r.kvs(0).value(), "");
  EXPECT_EQ(r.kvs(0).mod_revision(), 2);
  req.set_keys_only(false);
  req.set_count_only(true);
  r = Get(req);
  EXPECT_EQ(r.kvs_size(), 0);
  EXPECT_EQ(r.count(), 10);
  EXPECT_FALSE(r.more());
}

TEST_F(KvStoreTest, RangeSortAndFilters) {
  PutOk("a", "3");  // rev 2
  PutOk("b", "1");  // rev 3
  PutOk("c", "2");  // rev 4
  PutOk("a", "4");  // rev 5, version 2
  auto req = RangeReq("a", "z");
  req.set_sort_order(etcdserverpb::RangeRequest::DESCEND);
  EXPECT_EQ(Keys(Get(req)), (std::vector<std::string>{"c", "b", "a"}));
  req.set_sort_target(etcdserverpb::RangeRequest::VALUE);
  req.set_sort_order(etcdserverpb::RangeRequest::ASCEND);
  EXPECT_EQ(Keys(Get(req)), (std::vector<std::string>{"b", "c", "a"}));
  req.set_sort_target(etcdserverpb::RangeRequest::MOD);
  req.set_sort_order(etcdserverpb::RangeRequest::NONE);  // Non-key target: ascending.
  EXPECT_EQ(Keys(Get(req)), (std::vector<std::string>{"b", "c", "a"}));
  req.set_sort_target(etcdserverpb::RangeRequest::CREATE);
  req.set_sort_order(etcdserverpb::RangeRequest::DESCEND);
  req.set_limit(1);
  auto r = Get(req);
  EXPECT_EQ(Keys(r), (std::vector<std::string>{"c"}));
  EXPECT_TRUE(r.more());
  req.set_sort_target(etcdserverpb::RangeRequest::VERSION);
  req.set_limit(0);
  EXPECT_EQ(Keys(Get(req)).front(), "a");

  auto f = RangeReq("a", "z");
  f.set_min_mod_revision(3);
  f.set_max_mod_revision(4);
  EXPECT_EQ(Keys(Get(f)), (std::vector<std::string>{"b", "c"}));
  EXPECT_EQ(Get(f).count(), 3);  // count is before the filters, as in etcd.
  f = RangeReq("a", "z");
  f.set_min_create_revision(3);
  EXPECT_EQ(Keys(Get(f)), (std::vector<std::string>{"b", "c"}));
  f = RangeReq("a", "z");
  f.set_max_create_revision(2);
  EXPECT_EQ(Keys(Get(f)), (std::vector<std::string>{"a"}));
}

TEST_F(KvStoreTest, HistoricalReadsAndCompaction) {
  PutOk("a", "1");        // 2
  PutOk("b", "1");        // 3
  PutOk("a", "2");        // 4
  h_.Apply(DelReq("b"));  // 5
  PutOk("c", "1");        // 6
  auto at = [&](int64_t rev) { return Get(RangeReq("a", "z", rev)); };
  EXPECT_EQ(Keys(at(3)), (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(at(3).kvs(0).value(), "1");
  EXPECT_EQ(at(3).header().revision(), 6);  // Header: the newest revision.
  EXPECT_EQ(Keys(at(5)), (std::vector<std::string>{"a"}));
  EXPECT_EQ(at(4).kvs(0).value(), "2");
  EXPECT_EQ(Get(RangeReq("b", "", 4)).kvs(0).value(), "1");
  EXPECT_EQ(Get(RangeReq("b", "", 5)).kvs_size(), 0);
  EXPECT_EQ(at(1).kvs_size(), 0);

  auto future = h_.store().Range(RangeReq("a", "", 7));
  EXPECT_EQ(future.status().code(), absl::StatusCode::kOutOfRange);
  EXPECT_EQ(future.status().message(), "etcdserver: mvcc: required revision is a future revision");

  auto c = h_.Apply(CompactReq(4));
  ASSERT_TRUE(c.status.ok()) << c.status;
  EXPECT_EQ(c.response.compaction().header().revision(), 6);
  EXPECT_EQ(h_.store().Revision(), 6);  // Compaction is not a new revision.
  auto old = h_.store().Range(RangeReq("a", "", 3));
  EXPECT_EQ(old.status().code(), absl::StatusCode::kOutOfRange);
  EXPECT_EQ(old.status().message(), "etcdserver: mvcc: required revision has been compacted");
  // At and above the compaction point everything is still there.
  EXPECT_EQ(Keys(at(4)), (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(Keys(at(5)), (std::vector<std::string>{"a"}));
  EXPECT_EQ(at(4).kvs(1).value(), "1");
  // Compacting again at or below is an error; above the newest too.
  EXPECT_EQ(h_.Apply(CompactReq(4)).status.message(),
            "etcdserver: mvcc: required revision has been compacted");
  EXPECT_EQ(h_.Apply(CompactReq(99)).status.message(),
            "etcdserver: mvcc: required revision is a future revision");
  ASSERT_TRUE(h_.Apply(CompactReq(6)).status.ok());
  EXPECT_EQ(Keys(at(6)), (std::vector<std::string>{"a", "c"}));
  h_.Reopen();
  EXPECT_EQ(h_.store().CompactRevision(), 6);
  EXPECT_EQ(h_.store().Range(RangeReq("a", "", 5)).status().code(), absl::StatusCode::kOutOfRange);
  EXPECT_EQ(Keys(at(6)), (std::vector<std::string>{"a", "c"}));
}

TEST_F(KvStoreTest, PutIgnoreValueAndLease) {
  auto miss = h_.Apply([] {
    auto r = PutReq("k", "");
    r.mutable_put()->set_ignore_value(true);
    return r;
  }());
  EXPECT_EQ(miss.status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(miss.status.message(), "etcdserver: key not found");
  ASSERT_TRUE(h_.Apply(GrantReq(7, 60)).status.ok());
  PutOk("k", "v", 7);
  auto r = PutReq("k", "");
  r.mutable_put()->set_ignore_value(true);
  ASSERT_TRUE(h_.Apply(r).status.ok());
  auto g = Get(RangeReq("k"));
  EXPECT_EQ(g.kvs(0).value(), "v");
  EXPECT_EQ(g.kvs(0).lease(), 0);  // lease not ignored: replaced by 0.
  PutOk("k", "v2", 7);
  r = PutReq("k", "v3");
  r.mutable_put()->set_ignore_lease(true);
  ASSERT_TRUE(h_.Apply(r).status.ok());
  g = Get(RangeReq("k"));
  EXPECT_EQ(g.kvs(0).value(), "v3");
  EXPECT_EQ(g.kvs(0).lease(), 7);
  // Misuse.
  r = PutReq("k", "x");
  r.mutable_put()->set_ignore_value(true);
  EXPECT_EQ(h_.Apply(r).status.message(), "etcdserver: value is provided");
  r = PutReq("k", "x", 7);
  r.mutable_put()->set_ignore_lease(true);
  EXPECT_EQ(h_.Apply(r).status.message(), "etcdserver: lease is provided");
  auto nolease = h_.Apply(PutReq("k", "x", 12345));
  EXPECT_EQ(nolease.status.code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(nolease.status.message(), "etcdserver: requested lease not found");
}

TEST_F(KvStoreTest, ValueSizes) {
  PutOk("empty", "");
  const std::string big((3u << 20) / 2, 'x');  // 1.5 MiB.
  PutOk("big", big);
  auto g = Get(RangeReq("empty"));
  ASSERT_EQ(g.kvs_size(), 1);
  EXPECT_EQ(g.kvs(0).value(), "");
  h_.Reopen();
  g = Get(RangeReq("big"));
  ASSERT_EQ(g.kvs_size(), 1);
  EXPECT_EQ(g.kvs(0).value(), big);
}

TEST_F(KvStoreTest, KeysWithZeroBytesKeepOrderInHistory) {
  const std::string a = "a", a0 = std::string("a\0", 2), a00 = std::string("a\0\0", 3);
  PutOk(a0, "1");
  PutOk(a, "2");
  PutOk(a00, "3");
  PutOk("a\x01", "4");
  const auto cur = Keys(Get(RangeReq(a, "b")));
  const auto hist = Keys(Get(RangeReq(a, "b", 5)));
  EXPECT_EQ(cur, (std::vector<std::string>{a, a0, a00, "a\x01"}));
  EXPECT_EQ(hist, cur);
  EXPECT_EQ(Keys(Get(RangeReq(a0, "", 3))), (std::vector<std::string>{a0}));
}

// Opens the store's live RocksDB directly (every column family), to change records
// behind KvStore's back.
class RawDb {
 public:
  explicit RawDb(const std::string& store_dir) {
    const std::string path = store_dir + "/db-1";
    std::vector<std::string> names;
    KEEL_CHECK(rocksdb::DB::ListColumnFamilies(rocksdb::DBOptions(), path, &names).ok());
    std::vector<rocksdb::ColumnFamilyDescriptor> descs;
    for (const auto& n : names) descs.emplace_back(n, rocksdb::ColumnFamilyOptions());
    rocksdb::DB* raw = nullptr;
    KEEL_CHECK(rocksdb::DB::Open(rocksdb::DBOptions(), path, descs, &handles_, &raw).ok());
    db_.reset(raw);
    for (size_t i = 0; i < names.size(); ++i) by_name_[names[i]] = handles_[i];
  }
  ~RawDb() {
    for (auto* h : handles_) (void)db_->DestroyColumnFamilyHandle(h);
  }
  rocksdb::DB* db() { return db_.get(); }
  rocksdb::ColumnFamilyHandle* cf(const std::string& name) { return by_name_.at(name); }

 private:
  std::unique_ptr<rocksdb::DB> db_;
  std::vector<rocksdb::ColumnFamilyHandle*> handles_;
  std::map<std::string, rocksdb::ColumnFamilyHandle*> by_name_;
};

// Each value is stored once: a live key's history record is a marker, which a read at
// a past revision resolves from "kv" and checks — a mismatch is kDataLoss, never a
// wrong value.
TEST(KvStoreFormatTest, HistoryMarkerMustMatchTheCurrentVersion) {
  TempDir dir;
  {
    KvHarness h(dir.path());
    ASSERT_TRUE(h.Apply(PutReq("k", "v1")).status.ok());     // rev 2
    ASSERT_TRUE(h.Apply(PutReq("other", "x")).status.ok());  // rev 3
    auto old = h.store().Range(RangeReq("k", "", 2));
    ASSERT_TRUE(old.ok()) << old.status();
    ASSERT_EQ(old->kvs_size(), 1);
    EXPECT_EQ(old->kvs(0).value(), "v1");
  }
  {
    RawDb raw(dir.path());
    mvccpb::KeyValue forged;
    forged.set_create_revision(2);
    forged.set_mod_revision(99);
    forged.set_version(1);
    forged.set_value("forged");
    std::string record;
    mvcc::EncodePutRecord(forged, &record);
    ASSERT_TRUE(raw.db()->Put(rocksdb::WriteOptions(), raw.cf("kv"), "k", record).ok());
  }
  KvHarness h(dir.path());
  auto old = h.store().Range(RangeReq("k", "", 2));
  EXPECT_EQ(old.status().code(), absl::StatusCode::kDataLoss) << old.status();
}

// A data dir of the old format (values in both kv and history, no format record) is
// refused at open with both versions named.
TEST(KvStoreFormatTest, OldFormatDataDirIsRefused) {
  TempDir dir;
  {
    KvHarness h(dir.path());
    ASSERT_TRUE(h.Apply(PutReq("k", "v")).status.ok());
  }
  {
    RawDb raw(dir.path());
    ASSERT_TRUE(raw.db()->Delete(rocksdb::WriteOptions(), raw.cf("default"), "m/format").ok());
  }
  KvStoreOptions o;
  o.dir = dir.path();
  auto s = KvStore::Open(o);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(s.status().message().find("format 1"), std::string::npos) << s.status();
  EXPECT_NE(s.status().message().find("format 2"), std::string::npos) << s.status();
  {
    RawDb raw(dir.path());  // A newer format is refused likewise.
    ASSERT_TRUE(
        raw.db()
            ->Put(rocksdb::WriteOptions(), raw.cf("default"), "m/format", mvcc::BigEndian64(3))
            .ok());
  }
  s = KvStore::Open(o);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.status().message().find("format 3"), std::string::npos) << s.status();
}

}  // namespace
}  // namespace keel::storage
