#include "keel/txn.h"

#include "gtest/gtest.h"
#include "keel/kv.h"

namespace keel {
namespace {

TEST(PrefixEndTest, IncrementsTheLastByteBelow0xff) {
  EXPECT_EQ(PrefixEnd("abc"), "abd");
  EXPECT_EQ(PrefixEnd(std::string("a\xff", 2)), "b");
  EXPECT_EQ(PrefixEnd(std::string("\xff\xff", 2)), std::string(1, '\0'));
  EXPECT_EQ(PrefixEnd(""), std::string(1, '\0'));
}

TEST(RangeRequestTest, MapsEveryOption) {
  RangeOptions o;
  o.prefix = true;
  o.limit = 10;
  o.revision = 5;
  o.sort_order = SortOrder::kDescend;
  o.sort_target = SortTarget::kModRevision;
  o.consistency = Consistency::kSerializable;
  o.keys_only = true;
  o.count_only = true;
  o.min_mod_revision = 1;
  o.max_mod_revision = 2;
  o.min_create_revision = 3;
  o.max_create_revision = 4;
  absl::StatusOr<etcdserverpb::RangeRequest> r = MakeRangeRequest("k/", o);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->key(), "k/");
  EXPECT_EQ(r->range_end(), "k0");
  EXPECT_EQ(r->limit(), 10);
  EXPECT_EQ(r->revision(), 5);
  EXPECT_EQ(r->sort_order(), etcdserverpb::RangeRequest::DESCEND);
  EXPECT_EQ(r->sort_target(), etcdserverpb::RangeRequest::MOD);
  EXPECT_TRUE(r->serializable());
  EXPECT_TRUE(r->keys_only());
  EXPECT_TRUE(r->count_only());
  EXPECT_EQ(r->min_mod_revision(), 1);
  EXPECT_EQ(r->max_mod_revision(), 2);
  EXPECT_EQ(r->min_create_revision(), 3);
  EXPECT_EQ(r->max_create_revision(), 4);
}

TEST(RangeRequestTest, RejectsBadInput) {
  EXPECT_EQ(MakeRangeRequest("", {}).status().code(), absl::StatusCode::kInvalidArgument);
  RangeOptions both;
  both.prefix = true;
  both.from_key = true;
  EXPECT_EQ(MakeRangeRequest("a", both).status().code(), absl::StatusCode::kInvalidArgument);
  RangeOptions negative;
  negative.limit = -1;
  EXPECT_EQ(MakeRangeRequest("a", negative).status().code(), absl::StatusCode::kInvalidArgument);
  DeleteOptions from_key;
  from_key.from_key = true;
  absl::StatusOr<etcdserverpb::DeleteRangeRequest> d = MakeDeleteRequest("a", from_key);
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->range_end(), std::string(1, '\0'));
}

TEST(TxnTest, BuildsIfThenElse) {
  DeleteOptions prefix;
  prefix.prefix = true;
  Txn txn;
  txn.If(Compare::Value("a", CompareOp::kEqual, "1"),
         Compare::Version("b", CompareOp::kGreater, 2).WithPrefix())
      .Then(Op::Put("a", "2"), Op::Delete("c", prefix))
      .Else(Op::Get("a"));
  absl::StatusOr<etcdserverpb::TxnRequest> r = txn.Build();
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->compare_size(), 2);
  EXPECT_EQ(r->compare(0).target(), etcdserverpb::Compare::VALUE);
  EXPECT_EQ(r->compare(0).value(), "1");
  EXPECT_EQ(r->compare(1).target(), etcdserverpb::Compare::VERSION);
  EXPECT_EQ(r->compare(1).result(), etcdserverpb::Compare::GREATER);
  EXPECT_EQ(r->compare(1).range_end(), "c");
  ASSERT_EQ(r->success_size(), 2);
  EXPECT_EQ(r->success(0).request_put().value(), "2");
  EXPECT_EQ(r->success(1).request_delete_range().range_end(), "d");
  ASSERT_EQ(r->failure_size(), 1);
  EXPECT_TRUE(r->failure(0).has_request_range());
  EXPECT_TRUE(txn.HasWrites());
}

TEST(TxnTest, ReadOnlyAndNestedWrites) {
  Txn reads;
  reads.If(Compare::ModRevision("a", CompareOp::kLess, 9)).Then(Op::Get("a")).Else(Op::Get("b"));
  EXPECT_FALSE(reads.HasWrites());
  Txn inner;
  inner.Then(Op::Put("x", "y"));
  Txn outer;
  outer.Then(Op::Nested(inner));
  EXPECT_TRUE(outer.HasWrites());
}

TEST(TxnTest, InvalidOpIsReportedByBuild) {
  Txn txn;
  txn.Then(Op::Put("", "v"));
  EXPECT_EQ(txn.Build().status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace keel
