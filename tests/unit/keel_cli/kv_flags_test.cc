#include "gtest/gtest.h"
#include "tools/keel/kv_commands.h"

namespace keel::cli {
namespace {

TEST(KvFlagsTest, RangeOptionsFromFlags) {
  GetArgs args;
  args.key = "k";
  args.prefix = true;
  args.consistency = "s";
  args.sort_by = "modify";
  args.limit = 3;
  auto o = ToRangeOptions(args);
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_TRUE(o->prefix);
  EXPECT_EQ(o->consistency, keel::Consistency::kSerializable);
  EXPECT_EQ(o->sort_target, keel::SortTarget::kModRevision);
  EXPECT_EQ(o->sort_order, keel::SortOrder::kAscend);
  EXPECT_EQ(o->limit, 3);
}

TEST(KvFlagsTest, EmptyKeyWithPrefixMeansEveryKey) {
  GetArgs args;
  args.prefix = true;
  auto o = ToRangeOptions(args);
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(RequestKey(""), std::string("\0", 1));
  EXPECT_EQ(o->range_end, std::string("\0", 1));
  EXPECT_FALSE(o->prefix);
}

TEST(KvFlagsTest, ContradictionsAreInvalidArguments) {
  auto bad = [](GetArgs a) {
    auto o = ToRangeOptions(a);
    return !o.ok() && o.status().code() == absl::StatusCode::kInvalidArgument;
  };
  GetArgs both;
  both.key = "k";
  both.prefix = both.from_key = true;
  EXPECT_TRUE(bad(both));
  GetArgs range_and_prefix;
  range_and_prefix.key = "a";
  range_and_prefix.range_end = "b";
  range_and_prefix.prefix = true;
  EXPECT_TRUE(bad(range_and_prefix));
  GetArgs empty;
  EXPECT_TRUE(bad(empty));
  GetArgs sort;
  sort.key = "k";
  sort.sort_by = "size";
  EXPECT_TRUE(bad(sort));
  GetArgs order;
  order.key = "k";
  order.order = "up";
  EXPECT_TRUE(bad(order));

  PutArgs lease;
  lease.key = "k";
  lease.lease = "xyz";
  EXPECT_FALSE(ToPutOptions(lease).ok());
  lease.lease = "1a";
  ASSERT_TRUE(ToPutOptions(lease).ok());
  EXPECT_EQ(ToPutOptions(lease)->lease, 0x1a);
}

}  // namespace
}  // namespace keel::cli
