// The history format: every field, round trips through OperationToJson, and clear errors
// (with line and column) for malformed input.
#include "tools/lincheck/history.h"

#include <sstream>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace keel::lincheck {
namespace {

using ::testing::HasSubstr;

TEST(HistoryTest, ParsesEveryField) {
  auto op =
      ParseOperation(R"({"id":7,"process":2,"key":"k1","op":"cas","expect":"v3","value":"v7",)"
                     R"("start_ns":1200,"end_ns":1900,"outcome":"ok","cas_succeeded":true})",
                     1);
  ASSERT_TRUE(op.ok()) << op.status();
  EXPECT_EQ(op->id, 7u);
  EXPECT_EQ(op->process, 2u);
  EXPECT_EQ(op->key, "k1");
  EXPECT_EQ(op->type, OpType::kCas);
  EXPECT_EQ(op->expect, "v3");
  EXPECT_EQ(op->value, "v7");
  EXPECT_EQ(op->start_ns, 1200u);
  EXPECT_EQ(op->end_ns, 1900u);
  EXPECT_EQ(op->outcome, Outcome::kOk);
  EXPECT_TRUE(op->cas_succeeded);

  auto read = ParseOperation(
      R"( { "id" : 8 , "process":"3", "key":"k1", "op":"read", "start_ns":1, "end_ns":2,)"
      R"( "outcome":"ok", "found":true, "result":"v7" } )",
      2);
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_EQ(read->process, 3u);  // uint64 as a decimal string, as protobuf's JSON writes it.
  EXPECT_TRUE(read->found);
  EXPECT_EQ(read->result, "v7");
}

TEST(HistoryTest, UnknownOutcomeHasNoEndAndIgnoresExtraFields) {
  auto op = ParseOperation(
      R"({"id":1,"process":1,"key":"k","op":"write","value":"x","start_ns":5,"end_ns":9,)"
      R"("outcome":"unknown","error":"deadline exceeded","attempts":[1,{"a":null}],"found":null})",
      1);
  ASSERT_TRUE(op.ok()) << op.status();
  EXPECT_EQ(op->outcome, Outcome::kUnknown);
  EXPECT_EQ(op->end_ns, 0u);  // Whatever the client wrote: it may take effect later.
}

TEST(HistoryTest, DecodesEscapes) {
  auto op =
      ParseOperation(R"({"id":1,"process":1,"key":"a\"b\\c\/\n\t\u00e9\ud83d\ude00","op":"delete",)"
                     R"("start_ns":1,"end_ns":1,"outcome":"ok"})",
                     1);
  ASSERT_TRUE(op.ok()) << op.status();
  EXPECT_EQ(op->key, "a\"b\\c/\n\t\xC3\xA9\xF0\x9F\x98\x80");
}

TEST(HistoryTest, RoundTripsThroughJson) {
  auto make = [](uint64_t id, std::string key, OpType type, uint64_t start, uint64_t end,
                 Outcome outcome) {
    Operation op;
    op.id = id;
    op.process = id % 3;
    op.key = std::move(key);
    op.type = type;
    op.start_ns = start;
    op.end_ns = end;
    op.outcome = outcome;
    return op;
  };
  std::vector<Operation> ops;
  ops.push_back(make(1, std::string("k\x01\"\\\xFF", 5), OpType::kWrite, 10, 20, Outcome::kOk));
  ops.back().value = "line\nbreak";
  ops.push_back(make(2, "k", OpType::kRead, 30, 40, Outcome::kOk));
  ops.back().found = true;  // The empty value, which is not absence.
  ops.push_back(make(3, "k", OpType::kRead, 30, 40, Outcome::kOk));
  ops.push_back(make(4, "k", OpType::kCas, 50, 0, Outcome::kUnknown));
  ops.back().value = "n";
  ops.back().expect = "e";
  ops.push_back(make(5, "k", OpType::kCas, 50, 55, Outcome::kOk));
  ops.back().value = "n2";
  ops.back().expect = "e2";
  ops.back().cas_succeeded = true;
  ops.push_back(make(UINT64_MAX, "k", OpType::kDelete, 60, 61, Outcome::kFail));
  std::string text;
  for (const Operation& op : ops) text += OperationToJson(op) + "\n";
  std::istringstream in(text);
  auto history = ReadHistory(in);
  ASSERT_TRUE(history.ok()) << history.status();
  EXPECT_EQ(*history, ops);
}

TEST(HistoryTest, SkipsBlankLinesAndCountsThem) {
  auto history = ParseHistory(
      "\n{\"id\":1,\"process\":1,\"key\":\"k\",\"op\":\"delete\",\"start_ns\":1,\"end_ns\":2,"
      "\"outcome\":\"ok\"}\n  \n{\"id\":2}\n");
  ASSERT_FALSE(history.ok());
  EXPECT_THAT(history.status().message(), HasSubstr("line 4"));
}

TEST(HistoryTest, RejectsDuplicateIdsNamingBothLines) {
  const std::string line =
      R"({"id":5,"process":1,"key":"k","op":"delete","start_ns":1,"end_ns":2,"outcome":"ok"})";
  auto history = ParseHistory(line + "\n" + line + "\n");
  ASSERT_FALSE(history.ok());
  EXPECT_EQ(history.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(history.status().message(), HasSubstr("line 2: id 5 was already used on line 1"));
}

TEST(HistoryTest, MissingFileIsNotFound) {
  auto history = ReadHistoryFile("/nonexistent/history.jsonl");
  EXPECT_EQ(history.status().code(), absl::StatusCode::kNotFound);
}

struct BadLine {
  const char* line;
  const char* error;
};

class HistoryErrorTest : public ::testing::TestWithParam<BadLine> {};

TEST_P(HistoryErrorTest, NamesTheProblem) {
  auto op = ParseOperation(GetParam().line, 17);
  ASSERT_FALSE(op.ok()) << "accepted: " << GetParam().line;
  EXPECT_EQ(op.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(op.status().message(), HasSubstr("line 17"));
  EXPECT_THAT(op.status().message(), HasSubstr(GetParam().error));
}

#define OK_TAIL R"("start_ns":1,"end_ns":2,"outcome":"ok")"
INSTANTIATE_TEST_SUITE_P(
    Malformed, HistoryErrorTest,
    ::testing::Values(
        BadLine{"not json", "column 1: expected '{'"},
        BadLine{R"({"id":1,)", "expected a field name"},
        BadLine{R"({"id":1 "process":2})", "column 9: expected ',' or '}'"},
        BadLine{R"({"id":1}} )", "unexpected text after the closing '}'"},
        BadLine{R"({"key":"abc)", "column 8: string is not closed"},
        BadLine{R"({"key":"a\qb"})", "unknown escape '\\q'"},
        BadLine{"{\"key\":\"a\tb\"}", "control character"},
        BadLine{R"({"key":"\ud800x"})", "low surrogate"},
        BadLine{R"({"id":-1})", "\"id\" must be an unsigned 64-bit integer"},
        BadLine{R"({"id":1.5})", "\"id\" must be an unsigned 64-bit integer"},
        BadLine{R"({"id":18446744073709551616})", "\"id\" must be an unsigned 64-bit integer"},
        BadLine{R"({"id":01})", "column 8: expected ',' or '}'"},
        BadLine{R"({"key":5})", "\"key\" must be a string"},
        BadLine{R"({"found":"yes"})", "\"found\" must be true or false"},
        BadLine{R"({"id":1,"id":2})", "column 14: duplicate field \"id\""},
        BadLine{R"({"x":tru})", "expected a value"},
        BadLine{R"({"op":"get"})", "\"op\" must be read, write, cas or delete, not \"get\""},
        BadLine{R"({"outcome":"maybe"})", "\"outcome\" must be ok, fail or unknown"},
        BadLine{R"({"process":1,"key":"k","op":"delete",)" OK_TAIL "}", "missing field \"id\""},
        BadLine{R"({"id":1,"process":1,"key":"k","op":"write",)" OK_TAIL "}",
                "a write or cas needs \"value\""},
        BadLine{R"({"id":1,"process":1,"key":"k","op":"cas","value":"v",)" OK_TAIL
                R"(,"cas_succeeded":true})",
                "a cas needs \"expect\""},
        BadLine{R"({"id":1,"process":1,"key":"k","op":"cas","value":"v","expect":"e",)" OK_TAIL "}",
                "a cas ok needs \"cas_succeeded\""},
        BadLine{R"({"id":1,"process":1,"key":"k","op":"read",)" OK_TAIL "}",
                "a read ok needs \"found\""},
        BadLine{R"({"id":1,"process":1,"key":"k","op":"read","found":true,)" OK_TAIL "}",
                "found=true needs \"result\""},
        BadLine{R"({"id":1,"process":1,"key":"k","op":"delete","start_ns":1,"outcome":"ok"})",
                "an ok operation needs \"end_ns\""},
        BadLine{R"({"id":1,"process":1,"key":"k","op":"delete","start_ns":5,"end_ns":4,)"
                R"("outcome":"ok"})",
                "end_ns is before start_ns"}));

}  // namespace
}  // namespace keel::lincheck
