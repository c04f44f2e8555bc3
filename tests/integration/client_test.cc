// keel::Client against a real 3-member cluster: every call of the API, sync and
// async, errors passed through unchanged, and the member list learnt from one
// endpoint.
#include "keel/client.h"

#include <atomic>

#include "absl/synchronization/notification.h"
#include "tests/integration/client_test_util.h"
#include "tests/integration/cluster_test_base.h"

namespace keel::integration {
namespace {

using ClientApiTest = ClusterTest;

TEST_F(ClientApiTest, KvCallsSyncAndAsync) {
  Cluster& c = StartCluster({});
  absl::StatusOr<std::unique_ptr<Client>> connected = Client::Connect(ClientOptionsFor(c));
  ASSERT_TRUE(connected.ok()) << connected.status();
  Client& client = **connected;

  // Put / Get with prev_kv.
  absl::StatusOr<PutResponse> put = client.Put("fruit/apple", "red");
  ASSERT_TRUE(put.ok()) << put.status();
  PutOptions with_prev;
  with_prev.prev_kv = true;
  put = client.Put("fruit/apple", "green", with_prev);
  ASSERT_TRUE(put.ok()) << put.status();
  EXPECT_EQ(put->prev_kv().value(), "red");
  ASSERT_TRUE(client.Put("fruit/banana", "yellow").ok());
  ASSERT_TRUE(client.Put("fruit/cherry", "dark red").ok());
  ASSERT_TRUE(client.Put("veg/leek", "green").ok());

  absl::StatusOr<RangeResponse> got = client.Get("fruit/apple");
  ASSERT_TRUE(got.ok()) << got.status();
  ASSERT_EQ(got->kvs_size(), 1);
  EXPECT_EQ(got->kvs(0).value(), "green");
  EXPECT_EQ(got->kvs(0).version(), 2);
  const int64_t apple_mod = got->kvs(0).mod_revision();

  // Range options: prefix, limit, sort, count, serializable, a historical revision.
  RangeOptions prefix;
  prefix.prefix = true;
  got = client.Get("fruit/", prefix);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->kvs_size(), 3);
  RangeOptions limited = prefix;
  limited.limit = 2;
  limited.sort_order = SortOrder::kDescend;
  got = client.Get("fruit/", limited);
  ASSERT_TRUE(got.ok()) << got.status();
  ASSERT_EQ(got->kvs_size(), 2);
  EXPECT_EQ(got->kvs(0).key(), "fruit/cherry");
  EXPECT_TRUE(got->more());
  EXPECT_EQ(got->count(), 3);
  RangeOptions serializable;
  serializable.consistency = Consistency::kSerializable;
  serializable.from_key = true;
  serializable.count_only = true;
  // A serializable read may lag: poll until every member has the writes.
  EXPECT_TRUE(WaitFor(
      [&] {
        for (int i = 0; i < 6; ++i) {  // Spread over the members.
          absl::StatusOr<RangeResponse> r = client.Get("a", serializable);
          if (!r.ok() || r->count() != 4) return false;
        }
        return true;
      },
      absl::Seconds(10)));
  RangeOptions old;
  old.revision = apple_mod - 1;
  got = client.Get("fruit/apple", old);
  ASSERT_TRUE(got.ok()) << got.status();
  ASSERT_EQ(got->kvs_size(), 1);
  EXPECT_EQ(got->kvs(0).value(), "red");
  got = client.Range("fruit/b", "fruit/d");
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->kvs_size(), 2);

  // Txn: compare-and-swap that succeeds, then one that fails and reads instead.
  Txn cas;
  cas.If(Compare::Value("fruit/apple", CompareOp::kEqual, "green"))
      .Then(Op::Put("fruit/apple", "yellow"))
      .Else(Op::Get("fruit/apple"));
  absl::StatusOr<TxnResponse> txn = client.Txn(cas);
  ASSERT_TRUE(txn.ok()) << txn.status();
  EXPECT_TRUE(txn->succeeded());
  txn = client.Txn(cas);
  ASSERT_TRUE(txn.ok()) << txn.status();
  EXPECT_FALSE(txn->succeeded());
  ASSERT_EQ(txn->responses_size(), 1);
  EXPECT_EQ(txn->responses(0).response_range().kvs(0).value(), "yellow");
  Txn by_version;
  by_version
      .If(Compare::Version("fruit/", CompareOp::kGreater, 0).WithPrefix(),
          Compare::CreateRevision("veg/leek", CompareOp::kNotEqual, 0),
          Compare::Lease("veg/leek", CompareOp::kEqual, 0))
      .Then(Op::Get("veg/leek"));
  txn = client.Txn(by_version);
  ASSERT_TRUE(txn.ok()) << txn.status();
  EXPECT_TRUE(txn->succeeded());

  // Delete a prefix with prev_kv.
  DeleteOptions del;
  del.prefix = true;
  del.prev_kv = true;
  absl::StatusOr<DeleteResponse> deleted = client.Delete("fruit/", del);
  ASSERT_TRUE(deleted.ok()) << deleted.status();
  EXPECT_EQ(deleted->deleted(), 3);
  EXPECT_EQ(deleted->prev_kvs_size(), 3);

  // Compact, then the old revision is gone (OUT_OF_RANGE, etcd's text, not retried).
  absl::StatusOr<CompactResponse> compacted = client.Compact(apple_mod);
  ASSERT_TRUE(compacted.ok()) << compacted.status();
  got = client.Get("fruit/apple", old);
  EXPECT_EQ(got.status().code(), absl::StatusCode::kOutOfRange);
  EXPECT_EQ(got.status().message(), "etcdserver: mvcc: required revision has been compacted");

  // Async: many puts in flight, every callback called once.
  constexpr int kAsync = 300;
  std::atomic<int> ok{0}, failed{0}, pending{kAsync};
  absl::Notification all_done;
  for (int i = 0; i < kAsync; ++i) {
    client.PutAsync(KeyOf("async/", i), ValueOf(i), {}, [&](absl::StatusOr<PutResponse> r) {
      (r.ok() ? ok : failed)++;
      if (--pending == 0) all_done.Notify();
    });
  }
  ASSERT_TRUE(all_done.WaitForNotificationWithTimeout(absl::Seconds(30)));
  EXPECT_EQ(ok.load(), kAsync);
  EXPECT_EQ(failed.load(), 0);
  RangeOptions count;
  count.prefix = true;
  count.count_only = true;
  absl::Notification got_count;
  int64_t async_count = -1;
  client.GetAsync("async/", count, [&](absl::StatusOr<RangeResponse> r) {
    if (r.ok()) async_count = r->count();
    got_count.Notify();
  });
  ASSERT_TRUE(got_count.WaitForNotificationWithTimeout(absl::Seconds(10)));
  EXPECT_EQ(async_count, kAsync);
}

TEST_F(ClientApiTest, BadRequestsFailAtOnceWithTheServersText) {
  Cluster& c = StartCluster({});
  absl::StatusOr<std::unique_ptr<Client>> client = Client::Connect(ClientOptionsFor(c));
  ASSERT_TRUE(client.ok()) << client.status();
  const uint64_t retries_before = (*client)->Stats().retries;
  absl::StatusOr<PutResponse> put = (*client)->Put("", "v");
  EXPECT_EQ(put.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(put.status().message(), "etcdserver: key is not provided");
  // ignore_value on a missing key: the server's own error, unchanged, not retried.
  PutOptions ignore;
  ignore.ignore_value = true;
  put = (*client)->Put("missing", "", ignore);
  EXPECT_EQ(put.status().code(), absl::StatusCode::kInvalidArgument) << put.status();
  EXPECT_EQ((*client)->Stats().retries, retries_before);
  RangeOptions future;
  future.revision = 1'000'000;
  EXPECT_EQ((*client)->Get("k", future).status().code(), absl::StatusCode::kOutOfRange);

  ClientOptions bad;
  EXPECT_EQ(Client::Connect(bad).status().code(), absl::StatusCode::kInvalidArgument);
  bad.endpoints = {"https://127.0.0.1:1"};
  EXPECT_EQ(Client::Connect(bad).status().code(), absl::StatusCode::kInvalidArgument);
  // Nothing listens there: a clear UNAVAILABLE after connect_timeout.
  bad.endpoints = {absl::StrCat("127.0.0.1:", PickFreePort())};
  bad.connect_timeout = absl::Seconds(1);
  absl::StatusOr<std::unique_ptr<Client>> none = Client::Connect(bad);
  EXPECT_EQ(none.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_NE(none.status().message().find("cannot reach any of"), absl::string_view::npos)
      << none.status();
}

TEST_F(ClientApiTest, LearnsMembersAndLeaderFromOneEndpoint) {
  Cluster& c = StartCluster({});
  absl::StatusOr<int> leader = c.WaitForLeader();
  ASSERT_TRUE(leader.ok()) << leader.status();
  ClientOptions options = ClientOptionsFor(c);
  options.endpoints = {"http://" + c.client_address((*leader + 1) % 3)};  // A follower.
  absl::StatusOr<std::unique_ptr<Client>> client = Client::Connect(options);
  ASSERT_TRUE(client.ok()) << client.status();
  std::vector<std::string> expected;
  for (int i = 0; i < 3; ++i) expected.push_back(c.client_address(i));
  std::sort(expected.begin(), expected.end());
  EXPECT_EQ((*client)->Endpoints(), expected);
  EXPECT_EQ((*client)->Leader(), c.client_address(*leader));

  absl::StatusOr<MemberListResponse> members = (*client)->MemberList();
  ASSERT_TRUE(members.ok()) << members.status();
  EXPECT_EQ(members->members_size(), 3);
  for (int i = 0; i < 3; ++i) {
    absl::StatusOr<StatusResponse> status = (*client)->Status(c.client_address(i));
    ASSERT_TRUE(status.ok()) << status.status();
    EXPECT_EQ(status->leader(), c.member(*leader).member_id);
  }
  const ClientStats stats = (*client)->Stats();
  ASSERT_EQ(stats.endpoints.size(), 3u);
  for (const auto& e : stats.endpoints) {
    EXPECT_NE(e.member_id, 0u) << e.address;
    EXPECT_EQ(e.is_leader, e.address == c.client_address(*leader));
  }
}

}  // namespace
}  // namespace keel::integration
