// What keel-lincheck prints: the verdict line, the counterexample window and its timeline.
#include "tools/lincheck/report.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace keel::lincheck {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

Operation Op(uint64_t id, uint64_t process, OpType type, uint64_t start, uint64_t end) {
  Operation op;
  op.id = id;
  op.process = process;
  op.key = "k";
  op.type = type;
  op.start_ns = start;
  op.end_ns = end;
  return op;
}

// a written, b written, then a read of a: stale.
History StaleRead() {
  History h = {Op(1, 1, OpType::kWrite, 0, 1000), Op(2, 2, OpType::kWrite, 2000, 3000),
               Op(3, 1, OpType::kRead, 4000, 5000), Op(4, 3, OpType::kWrite, 500, 0)};
  h[0].value = "a";
  h[1].value = "b";
  h[2].found = true;
  h[2].result = "a";
  h[3].value = "never-read";
  h[3].outcome = Outcome::kUnknown;
  return h;
}

TEST(ReportTest, ValidIsOneLinePlusCounts) {
  History h = StaleRead();
  h[2].result = "b";
  const std::string text = FormatText(CheckHistory(h), {});
  EXPECT_THAT(text, StartsWith("VALID\nchecked 4 operations on 1 keys"));
}

TEST(ReportTest, InvalidNamesTheKeyAndTheWindow) {
  const std::string text = FormatText(CheckHistory(StaleRead()), {.timeline = true});
  EXPECT_THAT(text, StartsWith("INVALID key=k\n"));
  EXPECT_THAT(text, HasSubstr("\n  why: it needs a state that every writer of it left, and id=2 "
                              "changed it for certain afterwards"));
  EXPECT_THAT(text, HasSubstr("the register then: \"b\", set by id=2 p=2 write"));
  EXPECT_THAT(text, HasSubstr("the impossible read:\n    id=3 p=1 read -> \"a\""));
  EXPECT_THAT(text, HasSubstr("could have produced what it needs:\n    id=1 p=1 write \"a\""));
  // Timeline: a row per process, the unknown write running off to the right.
  EXPECT_THAT(text, HasSubstr("\np1      |[1"));
  EXPECT_THAT(text, HasSubstr("\np2      |"));
  EXPECT_THAT(text, HasSubstr("1 invalid"));
}

TEST(ReportTest, TimelineDrawsUnknownOpsToTheEdge) {
  History h = StaleRead();
  const std::string timeline = RenderTimeline(h, 40);
  EXPECT_THAT(timeline, HasSubstr("p3      |   [4---------------------------------->|"));
  EXPECT_THAT(timeline,
              HasSubstr("   4  id=4 p=3 write \"never-read\" (unknown)  [+0.500us .. ?]"));
}

TEST(ReportTest, UnknownSaysToRaiseTheTimeout) {
  CheckResult r;
  r.verdict = Verdict::kUnknown;
  KeyResult key;
  key.key = "a b";
  key.verdict = Verdict::kUnknown;
  r.keys.push_back(key);
  EXPECT_THAT(FormatText(r, {}), StartsWith("UNKNOWN key=\"a b\"\n"));
  EXPECT_THAT(FormatText(r, {}), HasSubstr("raise --timeout"));
}

TEST(ReportTest, JsonSummary) {
  const std::string json = FormatJson(CheckHistory(StaleRead()));
  EXPECT_THAT(json, StartsWith("{\"verdict\":\"INVALID\",\"ops\":4,\"keys\":1,"));
  EXPECT_THAT(json, HasSubstr("\"invalid\":{\"key\":\"k\",\"reason\":\"it needs a state"));
  EXPECT_THAT(json, HasSubstr("\"found_by_search\":false,\"linearized\":0,\"state\":\"b\""));
  EXPECT_THAT(json, HasSubstr("\"stuck\":[{\"id\":3,"));
}

}  // namespace
}  // namespace keel::lincheck
