// Any member accepts writes (followers forward them) and a linearizable read on any
// member sees every write that returned before it started.
#include "tests/integration/cluster_test_base.h"

namespace keel::integration {
namespace {

using ReplicationTest = ClusterTest;

TEST_F(ReplicationTest, WriteOnAnyMemberIsReadableLinearizablyFromEveryMember) {
  Cluster& c = StartCluster(ClusterOptions{});
  ASSERT_FALSE(HasFailure());
  int64_t last_revision = 0;
  for (int round = 0; round < 5; ++round) {
    for (int writer = 0; writer < c.size(); ++writer) {
      const std::string key = "ryw/" + std::to_string(round) + "/" + c.member(writer).name;
      const std::string value = "v" + std::to_string(round * 10 + writer);
      etcdserverpb::PutResponse put;
      grpc::Status s = c.Put(writer, key, value, absl::Seconds(5), &put);
      ASSERT_TRUE(s.ok()) << "put on " << c.member(writer).name << ": " << s.error_message();
      EXPECT_GT(put.header().revision(), last_revision) << "revisions must increase";
      last_revision = put.header().revision();
      for (int reader = 0; reader < c.size(); ++reader) {
        etcdserverpb::RangeResponse got;
        s = c.Get(reader, key, /*serializable=*/false, &got);
        ASSERT_TRUE(s.ok()) << "get on " << c.member(reader).name << ": " << s.error_message();
        ASSERT_EQ(got.kvs_size(), 1) << key << " written on " << c.member(writer).name
                                     << " not visible on " << c.member(reader).name;
        EXPECT_EQ(got.kvs(0).value(), value);
        EXPECT_EQ(got.kvs(0).mod_revision(), put.header().revision());
        EXPECT_GE(got.header().revision(), put.header().revision())
            << "a linearizable read must not return an older revision than a finished write";
      }
    }
  }
}

TEST_F(ReplicationTest, SerializableReadsConverge) {
  Cluster& c = StartCluster(ClusterOptions{});
  ASSERT_FALSE(HasFailure());
  constexpr int kKeys = 50;
  for (int i = 0; i < kKeys; ++i) {
    grpc::Status s = c.Put(i % c.size(), KeyOf("conv/", i), ValueOf(i));
    ASSERT_TRUE(s.ok()) << s.error_message();
  }
  for (int member = 0; member < c.size(); ++member) {
    etcdserverpb::RangeResponse got;
    const bool converged = WaitFor(
        [&] {
          grpc::ClientContext context;
          SetDeadline(&context, absl::Seconds(2));
          etcdserverpb::RangeRequest request;
          request.set_key("conv/");
          request.set_range_end("conv0");  // Prefix "conv/".
          request.set_serializable(true);
          got.Clear();
          return c.Kv(member)->Range(&context, request, &got).ok() && got.count() == kKeys;
        },
        absl::Seconds(10));
    ASSERT_TRUE(converged) << c.member(member).name << " has " << got.count() << " keys";
    for (int i = 0; i < kKeys; ++i) {
      EXPECT_EQ(got.kvs(i).key(), KeyOf("conv/", i));
      EXPECT_EQ(got.kvs(i).value(), ValueOf(i));
    }
  }
}

}  // namespace
}  // namespace keel::integration
