// Client errors carry etcd's gRPC codes and exact texts (etcd clients match on them),
// and every response carries a complete ResponseHeader.
#include "tests/integration/cluster_test_base.h"

namespace keel::integration {
namespace {

class ErrorsTest : public ClusterTest {
 protected:
  Cluster& Start() {
    ClusterOptions options;
    options.extra_flags = {"--max-request-bytes", "4096"};
    return StartCluster(options);
  }
};

TEST_F(ErrorsTest, EmptyKeyIsInvalidArgument) {
  Cluster& c = Start();
  ASSERT_FALSE(HasFailure());
  grpc::Status s = c.Put(0, "", "v");
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(s.error_message(), "etcdserver: key is not provided");
  etcdserverpb::RangeResponse got;
  s = c.Get(1, "", false, &got);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(s.error_message(), "etcdserver: key is not provided");
  grpc::ClientContext context;
  SetDeadline(&context, absl::Seconds(5));
  etcdserverpb::DeleteRangeResponse deleted;
  s = c.Kv(2)->DeleteRange(&context, etcdserverpb::DeleteRangeRequest(), &deleted);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(s.error_message(), "etcdserver: key is not provided");
}

TEST_F(ErrorsTest, RequestLargerThanMaxRequestBytesIsInvalidArgument) {
  Cluster& c = Start();
  ASSERT_FALSE(HasFailure());
  for (int member = 0; member < c.size(); ++member) {
    grpc::Status s = c.Put(member, "big", std::string(8192, 'x'));
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << s.error_message();
    EXPECT_EQ(s.error_message(), "etcdserver: request is too large");
  }
  // Just under the limit is fine.
  grpc::Status s = c.Put(0, "small", std::string(3000, 'x'));
  EXPECT_TRUE(s.ok()) << s.error_message();
  etcdserverpb::RangeResponse got;
  ASSERT_TRUE(c.Get(1, "big", false, &got).ok());
  EXPECT_EQ(got.kvs_size(), 0) << "a refused request must not be applied";
}

TEST_F(ErrorsTest, CompactedAndFutureRevisionsAreOutOfRange) {
  Cluster& c = Start();
  ASSERT_FALSE(HasFailure());
  std::vector<int64_t> revisions;
  for (int i = 0; i < 4; ++i) {
    etcdserverpb::PutResponse put;
    ASSERT_TRUE(c.Put(i % c.size(), "k", "v" + std::to_string(i), absl::Seconds(5), &put).ok());
    revisions.push_back(put.header().revision());
  }
  {
    grpc::ClientContext context;
    SetDeadline(&context, absl::Seconds(5));
    etcdserverpb::CompactionRequest request;
    request.set_revision(revisions[2]);
    request.set_physical(true);
    etcdserverpb::CompactionResponse response;
    grpc::Status s = c.Kv(1)->Compact(&context, request, &response);
    ASSERT_TRUE(s.ok()) << s.error_message();
    EXPECT_GE(response.header().revision(), revisions[3]);
  }
  for (int member = 0; member < c.size(); ++member) {
    grpc::ClientContext context;
    SetDeadline(&context, absl::Seconds(5));
    etcdserverpb::RangeRequest request;
    request.set_key("k");
    request.set_revision(revisions[0]);
    etcdserverpb::RangeResponse got;
    grpc::Status s = c.Kv(member)->Range(&context, request, &got);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::OUT_OF_RANGE) << c.member(member).name;
    EXPECT_EQ(s.error_message(), "etcdserver: mvcc: required revision has been compacted");
  }
  {  // The compaction revision itself is still readable.
    grpc::ClientContext context;
    SetDeadline(&context, absl::Seconds(5));
    etcdserverpb::RangeRequest request;
    request.set_key("k");
    request.set_revision(revisions[2]);
    etcdserverpb::RangeResponse got;
    ASSERT_TRUE(c.Kv(0)->Range(&context, request, &got).ok());
    ASSERT_EQ(got.kvs_size(), 1);
    EXPECT_EQ(got.kvs(0).value(), "v2");
  }
  {  // Compacting again at an older revision.
    grpc::ClientContext context;
    SetDeadline(&context, absl::Seconds(5));
    etcdserverpb::CompactionRequest request;
    request.set_revision(revisions[1]);
    etcdserverpb::CompactionResponse response;
    grpc::Status s = c.Kv(0)->Compact(&context, request, &response);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::OUT_OF_RANGE);
    EXPECT_EQ(s.error_message(), "etcdserver: mvcc: required revision has been compacted");
  }
  {  // A revision that does not exist yet.
    grpc::ClientContext context;
    SetDeadline(&context, absl::Seconds(5));
    etcdserverpb::RangeRequest request;
    request.set_key("k");
    request.set_revision(revisions[3] + 1000);
    etcdserverpb::RangeResponse got;
    grpc::Status s = c.Kv(2)->Range(&context, request, &got);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::OUT_OF_RANGE);
    EXPECT_EQ(s.error_message(), "etcdserver: mvcc: required revision is a future revision");
  }
}

TEST_F(ErrorsTest, EveryResponseCarriesAFullHeader) {
  Cluster& c = Start();
  ASSERT_FALSE(HasFailure());
  auto leader = c.WaitForLeader();
  ASSERT_TRUE(leader.ok());
  auto leader_status = c.Status(*leader);
  ASSERT_TRUE(leader_status.ok());
  const uint64_t cluster_id = leader_status->header().cluster_id();
  const uint64_t term = leader_status->raftterm();
  ASSERT_NE(cluster_id, 0u);
  for (int member = 0; member < c.size(); ++member) {
    const uint64_t member_id = c.member(member).member_id;
    etcdserverpb::PutResponse put;
    ASSERT_TRUE(c.Put(member, "h", std::to_string(member), absl::Seconds(5), &put).ok());
    EXPECT_EQ(put.header().cluster_id(), cluster_id);
    EXPECT_EQ(put.header().member_id(), member_id) << "header names the member that answered";
    EXPECT_GE(put.header().raft_term(), term);  // A spurious election may raise it.
    EXPECT_GT(put.header().revision(), 1);

    etcdserverpb::RangeResponse got;
    ASSERT_TRUE(c.Get(member, "h", false, &got).ok());
    EXPECT_EQ(got.header().cluster_id(), cluster_id);
    EXPECT_EQ(got.header().member_id(), member_id);
    EXPECT_GE(got.header().raft_term(), term);  // A spurious election may raise it.
    EXPECT_GE(got.header().revision(), put.header().revision());
    ASSERT_EQ(got.kvs_size(), 1);
    EXPECT_EQ(got.kvs(0).mod_revision(), put.header().revision());

    grpc::ClientContext context;
    SetDeadline(&context, absl::Seconds(5));
    etcdserverpb::TxnRequest txn;
    auto* cmp = txn.add_compare();
    cmp->set_key("h");
    cmp->set_target(etcdserverpb::Compare::VALUE);
    cmp->set_result(etcdserverpb::Compare::EQUAL);
    cmp->set_value(std::to_string(member));
    txn.add_success()->mutable_request_put()->set_key("txn-ok");
    etcdserverpb::TxnResponse txn_response;
    ASSERT_TRUE(c.Kv(member)->Txn(&context, txn, &txn_response).ok());
    EXPECT_TRUE(txn_response.succeeded());
    EXPECT_EQ(txn_response.header().cluster_id(), cluster_id);
    EXPECT_EQ(txn_response.header().member_id(), member_id);
    EXPECT_GE(txn_response.header().raft_term(), term);  // A spurious election may raise it.
    EXPECT_EQ(txn_response.header().revision(), put.header().revision() + 1);

    auto status = c.Status(member);
    ASSERT_TRUE(status.ok());
    EXPECT_EQ(status->header().cluster_id(), cluster_id);
    EXPECT_EQ(status->header().member_id(), member_id);
    EXPECT_GE(status->header().raft_term(), term);  // A spurious election may raise it.
    EXPECT_GE(status->header().revision(), txn_response.header().revision());
  }
}

}  // namespace
}  // namespace keel::integration
