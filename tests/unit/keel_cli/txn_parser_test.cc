#include "tools/keel/txn_parser.h"

#include <sstream>

#include "gtest/gtest.h"

namespace keel::cli {
namespace {

using etcdserverpb::Compare;

TEST(SplitWordsTest, QuotesGroupAndEscapesDecode) {
  auto words = SplitWords(R"(  put "a key" 'it''s' v\x  "tab\there\x41\u00e9" )");
  ASSERT_TRUE(words.ok()) << words.status();
  EXPECT_EQ(*words, (std::vector<std::string>{"put", "a key", "its", "v\\x",
                                              "tab\there"
                                              "A\xc3\xa9"}));
  EXPECT_FALSE(SplitWords(R"(put "open)").ok());
  EXPECT_FALSE(SplitWords("put 'open").ok());
  EXPECT_FALSE(SplitWords(R"(put "bad \q escape")").ok());
}

TEST(ParseCompareTest, EveryTargetAndOperator) {
  auto value = ParseCompare(R"(value("k\"1") = "v 1")");
  ASSERT_TRUE(value.ok()) << value.status();
  EXPECT_EQ(value->proto().key(), "k\"1");
  EXPECT_EQ(value->proto().target(), Compare::VALUE);
  EXPECT_EQ(value->proto().result(), Compare::EQUAL);
  EXPECT_EQ(value->proto().value(), "v 1");

  auto version = ParseCompare(R"(ver("k") != "3")");
  ASSERT_TRUE(version.ok()) << version.status();
  EXPECT_EQ(version->proto().target(), Compare::VERSION);
  EXPECT_EQ(version->proto().result(), Compare::NOT_EQUAL);
  EXPECT_EQ(version->proto().version(), 3);

  auto create = ParseCompare(R"(create("k") < 7)");  // A bare number is fine too.
  ASSERT_TRUE(create.ok()) << create.status();
  EXPECT_EQ(create->proto().target(), Compare::CREATE);
  EXPECT_EQ(create->proto().result(), Compare::LESS);
  EXPECT_EQ(create->proto().create_revision(), 7);

  auto mod = ParseCompare(R"(m("k")>"9")");
  ASSERT_TRUE(mod.ok()) << mod.status();
  EXPECT_EQ(mod->proto().target(), Compare::MOD);
  EXPECT_EQ(mod->proto().result(), Compare::GREATER);
  EXPECT_EQ(mod->proto().mod_revision(), 9);

  auto lease = ParseCompare(R"(lease("k") = "0")");
  ASSERT_TRUE(lease.ok()) << lease.status();
  EXPECT_EQ(lease->proto().target(), Compare::LEASE);
}

TEST(ParseCompareTest, MalformedLinesSayWhy) {
  for (const char* bad : {R"(value("k") == "v")", R"(value(k) = "v")", R"(size("k") = "1")",
                          R"(version("k") = "x")", R"(value("k") = "v" extra)", "put k v"}) {
    auto c = ParseCompare(bad);
    ASSERT_FALSE(c.ok()) << bad;
    EXPECT_EQ(c.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(c.status().message().find("malformed compare"), std::string::npos) << c.status();
  }
}

TEST(ParseOpTest, PutGetDelWithTheCommandsFlags) {
  auto put = ParseOp(R"(put "a b" "c d" --prev-kv)");
  ASSERT_TRUE(put.ok()) << put.status();
  EXPECT_EQ(put->proto().request_put().key(), "a b");
  EXPECT_EQ(put->proto().request_put().value(), "c d");
  EXPECT_TRUE(put->proto().request_put().prev_kv());

  auto get = ParseOp("get k --prefix --limit 2");
  ASSERT_TRUE(get.ok()) << get.status();
  EXPECT_EQ(get->proto().request_range().key(), "k");
  EXPECT_EQ(get->proto().request_range().range_end(), "l");
  EXPECT_EQ(get->proto().request_range().limit(), 2);

  auto del = ParseOp("del a c");
  ASSERT_TRUE(del.ok()) << del.status();
  EXPECT_EQ(del->proto().request_delete_range().key(), "a");
  EXPECT_EQ(del->proto().request_delete_range().range_end(), "c");

  EXPECT_FALSE(ParseOp("put onlykey").ok());
  EXPECT_FALSE(ParseOp("get k --bogus").ok());
  EXPECT_FALSE(ParseOp("watch k").ok());
  EXPECT_FALSE(ParseOp("get k --prefix --from-key").ok());
}

TEST(ReadTxnTest, ThreeSectionsWithPrompts) {
  std::istringstream in(
      "value(\"tk\") = \"1\"\nmod(\"tk\") > \"0\"\n\nput tk 2\nput res yes\n\nget tk\n\n");
  std::ostringstream prompts;
  auto txn = ReadTxn(in, &prompts);
  ASSERT_TRUE(txn.ok()) << txn.status();
  auto request = txn->Build();
  ASSERT_TRUE(request.ok()) << request.status();
  EXPECT_EQ(request->compare_size(), 2);
  EXPECT_EQ(request->success_size(), 2);
  EXPECT_EQ(request->failure_size(), 1);
  EXPECT_EQ(prompts.str(),
            "compares:\nsuccess requests (get, put, del):\nfailure requests (get, put, del):\n");
}

TEST(ReadTxnTest, EndOfInputEndsSectionsAndErrorsNameTheLine) {
  std::istringstream only_success("\nput a 1");
  auto txn = ReadTxn(only_success, nullptr);
  ASSERT_TRUE(txn.ok()) << txn.status();
  EXPECT_EQ(txn->Build()->success_size(), 1);

  std::istringstream bad("value(\"a\") = \"1\"\n\nput a\n");
  auto failed = ReadTxn(bad, nullptr);
  ASSERT_FALSE(failed.ok());
  EXPECT_NE(failed.status().message().find("'put a'"), std::string::npos) << failed.status();
}

}  // namespace
}  // namespace keel::cli
