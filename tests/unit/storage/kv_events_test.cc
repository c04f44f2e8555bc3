// Unit tests of KvStore::ReadEvents, the replay of past events for watchers: the
// replay equals the events Apply reported live (order within a revision included),
// single-key and interval reads agree, reads come in bounded whole-revision pieces,
// and compaction gives etcd's compacted error below the compaction point only.
#include <random>
#include <string>
#include <vector>

#include "google/protobuf/util/message_differencer.h"
#include "gtest/gtest.h"
#include "storage/kv_store.h"
#include "storage/mvcc_errors.h"
#include "tests/unit/storage/kv_test_util.h"

namespace keel::storage {
namespace {

using google::protobuf::util::MessageDifferencer;
using mvcc::EventReadLimits;
using mvcc::KeyInterval;
using testing::CompactReq;
using testing::DelReq;
using testing::KvHarness;
using testing::PutReq;
using testing::TempDir;

internalpb::Request TxnPuts(const std::vector<std::string>& keys, const std::string& value) {
  internalpb::Request r;
  for (const auto& k : keys) {
    auto* put = r.mutable_txn()->add_success()->mutable_request_put();
    put->set_key(k);
    put->set_value(value);
  }
  return r;
}

// Reads every event of `iv` from `from_rev` in pieces of at most `limits`, checking
// that each piece ends on a revision boundary and makes progress.
std::vector<mvccpb::Event> ReadAll(const KvStore& store, const KeyInterval& iv, int64_t from_rev,
                                   bool prev_kv, EventReadLimits limits = {}) {
  std::vector<mvccpb::Event> out;
  int64_t next = from_rev;
  for (int guard = 0; next <= store.Revision(); ++guard) {
    EXPECT_LT(guard, 100000) << "no progress";
    if (guard >= 100000) break;
    auto chunk = store.ReadEvents(iv, next, prev_kv, limits);
    EXPECT_TRUE(chunk.ok()) << chunk.status();
    if (!chunk.ok()) break;
    EXPECT_GT(chunk->next_rev, next);
    for (auto& ev : chunk->events) {
      EXPECT_GE(ev.kv().mod_revision(), next);
      EXPECT_LT(ev.kv().mod_revision(), chunk->next_rev);
      out.push_back(std::move(ev));
    }
    next = chunk->next_rev;
  }
  return out;
}

std::string Describe(const std::vector<mvccpb::Event>& evs) {
  std::string s;
  for (const auto& e : evs) {
    s += (e.type() == mvccpb::Event::PUT ? "PUT " : "DEL ") + e.kv().key() + "@" +
         std::to_string(e.kv().mod_revision()) +
         (e.has_prev_kv() ? "(prev@" + std::to_string(e.prev_kv().mod_revision()) + ")" : "") +
         "\n";
  }
  return s;
}

void ExpectSameEvents(const std::vector<mvccpb::Event>& got,
                      const std::vector<mvccpb::Event>& want) {
  ASSERT_EQ(got.size(), want.size()) << "got:\n" << Describe(got) << "want:\n" << Describe(want);
  for (size_t i = 0; i < got.size(); ++i) {
    EXPECT_TRUE(MessageDifferencer::Equals(got[i], want[i]))
        << "event " << i << "\ngot:  " << got[i].ShortDebugString()
        << "\nwant: " << want[i].ShortDebugString();
  }
}

std::vector<mvccpb::Event> Without(std::vector<mvccpb::Event> evs, bool strip_prev,
                                   const KeyInterval& iv, int64_t from_rev) {
  std::vector<mvccpb::Event> out;
  for (auto& e : evs) {
    if (e.kv().mod_revision() < from_rev || !iv.Contains(e.kv().key())) continue;
    if (strip_prev) e.clear_prev_kv();
    out.push_back(std::move(e));
  }
  return out;
}

class KvEventsTest : public ::testing::Test {
 protected:
  // Applies `req` and records its live events.
  void Apply(const internalpb::Request& req) {
    auto r = h_.Apply(req);
    ASSERT_TRUE(r.status.ok()) << r.status;
    for (auto& e : r.events) live_.push_back(std::move(e));
  }

  TempDir dir_;
  KvHarness h_{dir_.path()};
  std::vector<mvccpb::Event> live_;
};

TEST_F(KvEventsTest, ReplayEqualsLiveEventsInRequestOrder) {
  Apply(PutReq("b", "1"));               // rev 2
  Apply(TxnPuts({"c", "a", "b"}, "2"));  // rev 3: request order c, a, b (not key order)
  Apply(DelReq("a", "c"));               // rev 4: deletes a and b
  Apply(PutReq("a", "3"));               // rev 5
  const auto all = KeyInterval::From("", std::string(1, '\0'));
  ExpectSameEvents(ReadAll(h_.store(), all, 1, /*prev_kv=*/true), live_);
  ExpectSameEvents(ReadAll(h_.store(), all, 1, /*prev_kv=*/false), Without(live_, true, all, 1));
  const auto rev3 = ReadAll(h_.store(), all, 3, false);
  ASSERT_GE(rev3.size(), 3u);
  EXPECT_EQ(rev3[0].kv().key(), "c");
  EXPECT_EQ(rev3[1].kv().key(), "a");
  EXPECT_EQ(rev3[2].kv().key(), "b");
  // A delete event carries only the key and the revision, and the deleted value as prev.
  const auto dels = ReadAll(h_.store(), KeyInterval::From("a", "c"), 4, true);
  ASSERT_GE(dels.size(), 2u);
  EXPECT_EQ(dels[0].type(), mvccpb::Event::DELETE);
  EXPECT_EQ(dels[0].kv().value(), "");
  EXPECT_EQ(dels[0].kv().create_revision(), 0);
  EXPECT_EQ(dels[0].prev_kv().value(), "2");
}

// etcd accepts a txn that puts a key in one nested txn and deletes it in a later sibling
// (its duplicate-key check only looks back at earlier deletes): both events share one
// revision, and the delete's previous version is that put. History holds one record per
// key and revision (the tombstone), so the put's value must come from the event log.
TEST_F(KvEventsTest, PutThenDeleteInOneRevisionReplays) {
  Apply(PutReq("k", "old"));  // rev 2
  internalpb::Request txn;
  auto* first = txn.mutable_txn()->add_success()->mutable_request_txn();
  auto* put = first->add_success()->mutable_request_put();
  put->set_key("k");
  put->set_value("new");
  auto* second = txn.mutable_txn()->add_success()->mutable_request_txn();
  second->add_success()->mutable_request_delete_range()->set_key("k");
  Apply(txn);                  // rev 3: PUT k=new, then DELETE k (prev: new)
  Apply(PutReq("k", "last"));  // rev 4
  ASSERT_EQ(live_.size(), 4u);
  ASSERT_EQ(live_[2].type(), mvccpb::Event::DELETE);
  ASSERT_EQ(live_[2].prev_kv().value(), "new");
  for (const auto& iv : {KeyInterval::From("k", ""), KeyInterval::From("a", "z")}) {
    SCOPED_TRACE(iv.single ? "single key" : "interval");
    for (int64_t from : {1, 3}) {
      ExpectSameEvents(ReadAll(h_.store(), iv, from, /*prev_kv=*/true),
                       Without(live_, false, iv, from));
      ExpectSameEvents(ReadAll(h_.store(), iv, from, /*prev_kv=*/false),
                       Without(live_, true, iv, from));
    }
  }
  // At revision 3 the key is deleted (etcd: the tombstone is the revision's last word).
  etcdserverpb::RangeRequest at3;
  at3.set_key("k");
  at3.set_revision(3);
  auto got = h_.store().Range(at3);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->kvs_size(), 0);
}

TEST_F(KvEventsTest, FromTheFutureIsEmpty) {
  Apply(PutReq("k", "v"));
  auto chunk = h_.store().ReadEvents(KeyInterval::From("k", ""), 10, false, {});
  ASSERT_TRUE(chunk.ok()) << chunk.status();
  EXPECT_TRUE(chunk->events.empty());
  EXPECT_EQ(chunk->next_rev, 10);
}

TEST_F(KvEventsTest, PiecesEndOnRevisionBoundaries) {
  for (int i = 0; i < 20; ++i) {
    Apply(
        TxnPuts({"p/" + std::to_string(i), "p/x" + std::to_string(i), "q"}, std::string(50, 'v')));
  }
  const auto iv = KeyInterval::From("p/", "p0");
  EventReadLimits tiny;
  tiny.max_bytes = 1;  // Every piece: exactly one revision.
  auto first = h_.store().ReadEvents(iv, 2, false, tiny);
  ASSERT_TRUE(first.ok());
  ASSERT_EQ(first->events.size(), 2u);
  EXPECT_EQ(first->next_rev, 3);
  ExpectSameEvents(ReadAll(h_.store(), iv, 2, true, tiny), Without(live_, false, iv, 2));
  EventReadLimits scan;
  scan.max_scanned = 4;  // Two revisions' log entries (3 each) at most past the limit.
  ExpectSameEvents(ReadAll(h_.store(), iv, 5, false, scan), Without(live_, true, iv, 5));
  const auto q = KeyInterval::From("q", "");
  ExpectSameEvents(ReadAll(h_.store(), q, 7, true, tiny), Without(live_, false, q, 7));
}

TEST_F(KvEventsTest, CompactedBelowTheCompactionPointOnly) {
  Apply(PutReq("k", "1"));  // 2
  Apply(PutReq("k", "2"));  // 3
  Apply(DelReq("k"));       // 4
  Apply(PutReq("j", "1"));  // 5
  Apply(PutReq("k", "3"));  // 6
  ASSERT_TRUE(h_.Apply(CompactReq(4)).status.ok());
  EXPECT_EQ(h_.store().OldestWatchableRevision(), 4);
  for (const auto& iv : {KeyInterval::From("k", ""), KeyInterval::From("a", "z")}) {
    auto below = h_.store().ReadEvents(iv, 3, false, {});
    ASSERT_FALSE(below.ok());
    EXPECT_EQ(below.status(), mvcc::ErrCompacted());
  }
  // From the compaction point itself: the delete at 4 is still replayed (its tombstone
  // is kept), without prev_kv (the version before it is compacted away), by both paths.
  for (const auto& iv : {KeyInterval::From("k", ""), KeyInterval::From("a", "z")}) {
    auto evs = ReadAll(h_.store(), iv, 4, true);
    ASSERT_GE(evs.size(), 2u) << Describe(evs);
    EXPECT_EQ(evs[0].type(), mvccpb::Event::DELETE);
    EXPECT_EQ(evs[0].kv().mod_revision(), 4);
    EXPECT_FALSE(evs[0].has_prev_kv());
    EXPECT_EQ(evs.back().kv().value(), "3");
  }
  // Survives a reopen (physical compaction is redone or already done at Open).
  h_.Reopen();
  EXPECT_EQ(ReadAll(h_.store(), KeyInterval::From("a", "z"), 4, false).size(), 3u);
  EXPECT_FALSE(h_.store().ReadEvents(KeyInterval::From("a", "z"), 3, false, {}).ok());
}

// Random writes: for random starting revisions, every key's single-key replay and every
// interval's replay equal the live events filtered the same way.
TEST_F(KvEventsTest, RandomHistoryReplaysExactly) {
  std::mt19937_64 rng(7);
  auto pick = [&](int n) { return static_cast<int>(rng() % static_cast<uint64_t>(n)); };
  const std::vector<std::string> keys = {"a", "ab", "b", std::string("b\0x", 3), "c", "d"};
  for (int i = 0; i < 300; ++i) {
    const std::string& k = keys[static_cast<size_t>(pick(static_cast<int>(keys.size())))];
    switch (pick(4)) {
      case 0:
        Apply(DelReq(k, pick(2) == 0 ? "" : "c"));
        break;
      case 1:
        Apply(TxnPuts({k, k + "/t"}, std::to_string(i)));
        break;
      default:
        Apply(PutReq(k, std::to_string(i)));
    }
  }
  const int64_t top = h_.store().Revision();
  for (int round = 0; round < 20; ++round) {
    const int64_t from = 1 + pick(static_cast<int>(top));
    const bool prev = pick(2) == 0;
    EventReadLimits limits;
    limits.max_bytes = static_cast<size_t>(1 + pick(400));
    for (const auto& k : keys) {
      const auto iv = KeyInterval::From(k, "");
      ExpectSameEvents(ReadAll(h_.store(), iv, from, prev, limits),
                       Without(live_, !prev, iv, from));
    }
    const auto iv = KeyInterval::From(keys[static_cast<size_t>(pick(3))], "c");
    ExpectSameEvents(ReadAll(h_.store(), iv, from, prev, limits), Without(live_, !prev, iv, from));
  }
}

}  // namespace
}  // namespace keel::storage
