// The checker on hand-made histories of one register: what a linearizable store may answer
// and what it may not. Times are small integers; each op's interval is [start, end].
#include "tools/lincheck/checker.h"

#include <algorithm>
#include <optional>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace keel::lincheck {
namespace {

using ::testing::Contains;
using ::testing::Field;

// Builds histories; ids count up from 1, the process is the id unless given.
class HistoryBuilder {
 public:
  HistoryBuilder& Write(std::string value, uint64_t start, uint64_t end) {
    Operation& op = Add(OpType::kWrite, start, end);
    op.value = std::move(value);
    return *this;
  }
  HistoryBuilder& Read(std::optional<std::string> result, uint64_t start, uint64_t end) {
    Operation& op = Add(OpType::kRead, start, end);
    op.found = result.has_value();
    op.result = result.value_or("");
    return *this;
  }
  HistoryBuilder& Cas(std::string expect, std::string value, bool succeeded, uint64_t start,
                      uint64_t end) {
    Operation& op = Add(OpType::kCas, start, end);
    op.expect = std::move(expect);
    op.value = std::move(value);
    op.cas_succeeded = succeeded;
    return *this;
  }
  HistoryBuilder& Delete(uint64_t start, uint64_t end) {
    Add(OpType::kDelete, start, end);
    return *this;
  }
  // Marks the last operation's outcome unknown (it never completed) or failed.
  HistoryBuilder& Unknown() {
    history_.back().outcome = Outcome::kUnknown;
    history_.back().end_ns = 0;
    history_.back().found = false;
    history_.back().result.clear();
    history_.back().cas_succeeded = false;
    return *this;
  }
  HistoryBuilder& Failed() {
    history_.back().outcome = Outcome::kFail;
    return *this;
  }
  HistoryBuilder& Key(std::string key) {
    key_ = std::move(key);
    return *this;
  }
  const History& history() const { return history_; }

 private:
  Operation& Add(OpType type, uint64_t start, uint64_t end) {
    Operation op;
    op.id = history_.size() + 1;
    op.process = op.id;
    op.key = key_;
    op.type = type;
    op.start_ns = start;
    op.end_ns = end;
    op.outcome = Outcome::kOk;
    history_.push_back(op);
    return history_.back();
  }
  std::string key_ = "k";
  History history_;
};

// The verdict, which the search alone must agree with.
Verdict Check(const HistoryBuilder& b) {
  const Verdict verdict = CheckHistory(b.history()).verdict;
  CheckOptions search_only;
  search_only.fast_check = false;
  EXPECT_EQ(CheckHistory(b.history(), search_only).verdict, verdict) << "the search alone differs";
  return verdict;
}

TEST(CheckerTest, EmptyHistoryIsValid) {
  const CheckResult r = CheckHistory({});
  EXPECT_EQ(r.verdict, Verdict::kValid);
  EXPECT_TRUE(r.keys.empty());
}

TEST(CheckerTest, SequentialHistoryIsValid) {
  HistoryBuilder b;
  b.Read(std::nullopt, 0, 1).Write("a", 2, 3).Read("a", 4, 5).Cas("a", "b", true, 6, 7);
  b.Cas("a", "c", false, 8, 9).Read("b", 10, 11).Delete(12, 13).Read(std::nullopt, 14, 15);
  b.Cas("b", "d", false, 16, 17);  // A compare against an absent key fails.
  EXPECT_EQ(Check(b), Verdict::kValid);
}

TEST(CheckerTest, StaleReadIsInvalid) {
  HistoryBuilder b;
  b.Write("a", 0, 10).Write("b", 20, 30).Read("a", 40, 50);
  EXPECT_EQ(Check(b), Verdict::kInvalid);
  // The fast check proves it: write 2 certainly came between write 1 and the read.
  const CheckResult r = CheckHistory(b.history());
  const KeyResult* bad = r.FirstInvalid();
  ASSERT_NE(bad, nullptr);
  EXPECT_EQ(bad->key, "k");
  ASSERT_TRUE(bad->counterexample.has_value());
  const Counterexample& cx = *bad->counterexample;
  EXPECT_FALSE(cx.found_by_search);
  EXPECT_EQ(cx.state, "b");
  ASSERT_TRUE(cx.state_set_by.has_value());
  EXPECT_EQ(cx.state_set_by->id, 2u);
  ASSERT_EQ(cx.stuck.size(), 1u);
  EXPECT_EQ(cx.stuck[0].id, 3u);
  ASSERT_EQ(cx.sources.size(), 1u);
  EXPECT_EQ(cx.sources[0].id, 1u);
  // The search alone finds the same read stuck after the two writes.
  CheckOptions search_only;
  search_only.fast_check = false;
  const CheckResult searched_result = CheckHistory(b.history(), search_only);
  const Counterexample& searched = *searched_result.FirstInvalid()->counterexample;
  EXPECT_TRUE(searched.found_by_search);
  EXPECT_EQ(searched.linearized_count, 2u);
  EXPECT_EQ(searched.state, "b");
  ASSERT_EQ(searched.stuck.size(), 1u);
  EXPECT_EQ(searched.stuck[0].id, 3u);
}

TEST(CheckerTest, LostWriteIsInvalid) {
  HistoryBuilder b;
  b.Write("a", 0, 10).Read(std::nullopt, 20, 30);
  EXPECT_EQ(Check(b), Verdict::kInvalid);
}

TEST(CheckerTest, ReadOfValueNeverWrittenIsInvalid) {
  HistoryBuilder b;
  b.Write("a", 0, 10).Read("x", 5, 15);
  EXPECT_EQ(Check(b), Verdict::kInvalid);
}

TEST(CheckerTest, FailedWriteNeverTakesEffect) {
  HistoryBuilder b;
  b.Write("a", 0, 10).Failed().Read("a", 20, 30);
  EXPECT_EQ(Check(b), Verdict::kInvalid);
}

TEST(CheckerTest, CasThatSucceededTwiceIsInvalid) {
  HistoryBuilder b;
  b.Write("a", 0, 10).Cas("a", "b", true, 20, 40).Cas("a", "c", true, 25, 35);
  EXPECT_EQ(Check(b), Verdict::kInvalid);
}

TEST(CheckerTest, ConcurrentCasOneWinsIsValid) {
  HistoryBuilder b;
  b.Write("a", 0, 10).Cas("a", "b", false, 20, 40).Cas("a", "c", true, 25, 35).Read("c", 50, 60);
  EXPECT_EQ(Check(b), Verdict::kValid);
}

TEST(CheckerTest, FailedCompareAgainstTheCurrentValueIsInvalid) {
  HistoryBuilder b;
  b.Write("a", 0, 10).Cas("a", "b", false, 20, 30);
  EXPECT_EQ(Check(b), Verdict::kInvalid);
}

TEST(CheckerTest, DeleteThenStaleReadIsInvalid) {
  HistoryBuilder b;
  b.Write("a", 0, 10).Delete(20, 30).Read("a", 40, 50);
  EXPECT_EQ(Check(b), Verdict::kInvalid);
  HistoryBuilder ok;
  ok.Write("a", 0, 10).Delete(20, 30).Read(std::nullopt, 40, 50);
  EXPECT_EQ(Check(ok), Verdict::kValid);
}

TEST(CheckerTest, ConcurrentWritesValidOnlyInOneOrder) {
  // The search first tries a then b (call order), which the reads refute; b then a works.
  HistoryBuilder b;
  b.Write("a", 0, 100).Write("b", 1, 100).Read("a", 110, 120).Read("a", 130, 140);
  EXPECT_EQ(Check(b), Verdict::kValid);
  // But once both writes completed, the register cannot change any more.
  HistoryBuilder bad;
  bad.Write("a", 0, 100).Write("b", 1, 100).Read("a", 110, 120).Read("b", 130, 140);
  EXPECT_EQ(Check(bad), Verdict::kInvalid);
}

TEST(CheckerTest, ReadsThatOverlapAWriteMaySeeEitherValue) {
  HistoryBuilder b;
  b.Write("a", 0, 10).Write("b", 20, 100).Read("b", 30, 40).Read("b", 50, 60);
  EXPECT_EQ(Check(b), Verdict::kValid);
  // Once a read saw the new value, a later read cannot see the old one.
  HistoryBuilder bad;
  bad.Write("a", 0, 10).Write("b", 20, 100).Read("b", 30, 40).Read("a", 50, 60);
  EXPECT_EQ(Check(bad), Verdict::kInvalid);
  // Touching intervals count as concurrent.
  HistoryBuilder touching;
  touching.Write("a", 0, 10).Write("b", 10, 20).Read("a", 20, 30);
  EXPECT_EQ(Check(touching), Verdict::kValid);
}

TEST(CheckerTest, UnknownWriteThatAppearsLaterIsValid) {
  HistoryBuilder b;
  b.Write("a", 0, 10).Write("b", 15, 0).Unknown().Read("a", 20, 30).Read("b", 1000, 1010);
  b.Read("b", 2000, 2010);
  EXPECT_EQ(Check(b), Verdict::kValid);
}

TEST(CheckerTest, UnknownWriteNeverVisibleIsValid) {
  HistoryBuilder b;
  b.Write("a", 0, 10).Write("b", 15, 0).Unknown().Read("a", 20, 30).Read("a", 1000, 1010);
  EXPECT_EQ(Check(b), Verdict::kValid);
}

TEST(CheckerTest, UnknownWriteCannotTakeEffectBeforeItsCall) {
  HistoryBuilder b;
  b.Read("b", 0, 10).Write("b", 15, 0).Unknown();
  EXPECT_EQ(Check(b), Verdict::kInvalid);
}

TEST(CheckerTest, UnknownWriteSeenThenUnseenIsInvalid) {
  HistoryBuilder b;
  b.Write("a", 0, 10).Write("b", 15, 0).Unknown().Read("b", 50, 60).Read("a", 70, 80);
  EXPECT_EQ(Check(b), Verdict::kInvalid);
}

TEST(CheckerTest, UnknownWriteTakesEffectAtMostOnce) {
  HistoryBuilder b;
  b.Write("b", 0, 0).Unknown().Read("b", 10, 20).Write("c", 30, 40).Read("b", 50, 60);
  EXPECT_EQ(Check(b), Verdict::kInvalid);
}

TEST(CheckerTest, UnknownReadsConstrainNothing) {
  HistoryBuilder b;
  b.Write("a", 0, 10).Read("zzz", 20, 0).Unknown();
  EXPECT_EQ(Check(b), Verdict::kValid);
}

TEST(CheckerTest, UnknownCasTakesEffectOnlyIfItMatches) {
  HistoryBuilder b;
  b.Write("a", 0, 10).Cas("a", "b", false, 15, 0).Unknown().Read("b", 100, 110);
  EXPECT_EQ(Check(b), Verdict::kValid);
  HistoryBuilder bad;
  bad.Write("a", 0, 10).Cas("x", "b", false, 15, 0).Unknown().Read("b", 100, 110);
  EXPECT_EQ(Check(bad), Verdict::kInvalid);
}

TEST(CheckerTest, UnseenUnknownWriteCanExplainAFailedCompare) {
  // Nothing reads "j", but the write may have happened: that is the only way the compare
  // against "a" can have failed.
  HistoryBuilder b;
  b.Write("a", 0, 10).Write("j", 12, 0).Unknown().Cas("a", "c", false, 20, 30);
  EXPECT_EQ(Check(b), Verdict::kValid);
  // ...and then "a" is gone for good.
  HistoryBuilder bad = b;
  bad.Read("a", 40, 50);
  EXPECT_EQ(Check(bad), Verdict::kInvalid);
  // Two unseen writes explain two failed compares separated by a rewrite of "a"; one cannot.
  HistoryBuilder two;
  two.Write("a", 0, 10).Write("j1", 12, 0).Unknown().Write("j2", 13, 0).Unknown();
  two.Cas("a", "c", false, 20, 30).Write("a", 40, 50).Cas("a", "d", false, 60, 70);
  EXPECT_EQ(Check(two), Verdict::kValid);
  HistoryBuilder one;
  one.Write("a", 0, 10).Write("j1", 12, 0).Unknown();
  one.Cas("a", "c", false, 20, 30).Write("a", 40, 50).Cas("a", "d", false, 60, 70);
  EXPECT_EQ(Check(one), Verdict::kInvalid);
  // An unseen write called after the compare returned cannot explain it.
  HistoryBuilder late;
  late.Write("a", 0, 10).Cas("a", "c", false, 20, 30).Write("j", 31, 0).Unknown();
  EXPECT_EQ(Check(late), Verdict::kInvalid);
}

TEST(CheckerTest, UnknownDeleteMayOrMayNotHappen) {
  HistoryBuilder b;
  b.Write("a", 0, 10).Delete(15, 0).Unknown().Read("a", 20, 30).Read(std::nullopt, 40, 50);
  EXPECT_EQ(Check(b), Verdict::kValid);
  HistoryBuilder bad = b;
  bad.Read("a", 60, 70);
  EXPECT_EQ(Check(bad), Verdict::kInvalid);
  // Unseen (no read finds the key absent), it can still explain a failed compare.
  HistoryBuilder cas;
  cas.Write("a", 0, 10).Delete(15, 0).Unknown().Cas("a", "b", false, 20, 30);
  EXPECT_EQ(Check(cas), Verdict::kValid);
}

TEST(CheckerTest, KeysAreCheckedIndependently) {
  HistoryBuilder b;
  b.Key("x").Write("a", 0, 10).Key("y").Write("b", 0, 10).Key("x").Read("a", 20, 30);
  b.Key("y").Read("a", 20, 30);  // "a" was written to x, not y.
  const CheckResult r = CheckHistory(b.history());
  EXPECT_EQ(r.verdict, Verdict::kInvalid);
  ASSERT_EQ(r.keys.size(), 2u);
  EXPECT_EQ(r.keys[0].key, "x");
  EXPECT_EQ(r.keys[0].verdict, Verdict::kValid);
  EXPECT_EQ(r.keys[1].key, "y");
  EXPECT_EQ(r.keys[1].verdict, Verdict::kInvalid);
  EXPECT_EQ(r.FirstInvalid(), &r.keys[1]);
  EXPECT_EQ(r.ops, 4u);
}

TEST(CheckerTest, SearchCounterexampleShowsTheWindow) {
  // No single read is impossible on its own, so the fast check passes and the search decides:
  // whichever of the concurrent writes came last, one of the two late reads is wrong.
  HistoryBuilder b;
  b.Write("a", 0, 100).Write("b", 1, 100).Read("a", 110, 120).Read("b", 130, 140);
  const CheckResult r = CheckHistory(b.history());
  ASSERT_EQ(r.verdict, Verdict::kInvalid);
  const Counterexample& cx = *r.FirstInvalid()->counterexample;
  EXPECT_TRUE(cx.found_by_search);
  EXPECT_EQ(cx.linearized_count, 3u);  // b, a, read a.
  EXPECT_EQ(cx.state, "a");
  EXPECT_EQ(cx.state_set_by->id, 1u);
  ASSERT_EQ(cx.stuck.size(), 1u);
  EXPECT_EQ(cx.stuck[0].id, 4u);
  EXPECT_THAT(cx.context, Contains(Field(&Operation::id, 3u)));
  EXPECT_THAT(cx.sources, Contains(Field(&Operation::id, 2u)));
}

TEST(CheckerTest, FastCheckPointsAtTheFirstImpossibleRead) {
  // Writes interleaved with reads; the read of "a" after "c" was acknowledged is stale.
  HistoryBuilder b;
  b.Write("a", 0, 10).Write("b", 20, 30).Read("b", 25, 35).Write("c", 40, 50);
  b.Read("c", 45, 60).Read("a", 70, 80).Read("c", 75, 85);
  EXPECT_EQ(Check(b), Verdict::kInvalid);
  const CheckResult r = CheckHistory(b.history());
  const Counterexample& cx = *r.FirstInvalid()->counterexample;
  EXPECT_FALSE(cx.found_by_search);
  ASSERT_EQ(cx.stuck.size(), 1u);
  EXPECT_EQ(cx.stuck[0].id, 6u);
  EXPECT_EQ(cx.context.size(), 1u);  // "b" or "c": either rules "a" out.
  EXPECT_EQ(cx.sources[0].id, 1u);
}

TEST(CheckerTest, FastCheckLeavesUnknownWritesAlone) {
  // The write of "a" never completed, so it may have taken effect after "b".
  HistoryBuilder b;
  b.Write("a", 0, 0).Unknown().Write("b", 20, 30).Read("a", 40, 50);
  EXPECT_EQ(Check(b), Verdict::kValid);
  // Absence after an acknowledged write: the unknown delete may explain it...
  HistoryBuilder deleted;
  deleted.Write("a", 0, 10).Delete(5, 0).Unknown().Read(std::nullopt, 20, 30);
  EXPECT_EQ(Check(deleted), Verdict::kValid);
  // ...but only once.
  deleted.Write("c", 40, 50).Read(std::nullopt, 60, 70);
  EXPECT_EQ(Check(deleted), Verdict::kInvalid);
}

TEST(CheckerTest, StateLimitGivesUnknown) {
  HistoryBuilder b;
  for (uint64_t i = 0; i < 10; ++i) b.Write("v" + std::to_string(i), 0, 1000);
  b.Read("v3", 2000, 2010).Read("v4", 2020, 2030);  // Impossible, but only the search knows.
  CheckOptions options;
  options.max_memory_bytes_per_key = 1;
  const CheckResult r = CheckHistory(b.history(), options);
  EXPECT_EQ(r.verdict, Verdict::kUnknown);
  EXPECT_THAT(r.keys[0].unknown_reason, ::testing::HasSubstr("memo outgrew 0 MiB"));
  EXPECT_EQ(CheckHistory(b.history()).verdict, Verdict::kInvalid);
}

}  // namespace
}  // namespace keel::lincheck
