// The watch checker on hand-made histories: a correct watcher passes, and each way a
// watch can fail a user (gap, duplicate, disorder, split revision, invented event,
// ended watch, lost or failed or repeated write, a history with holes) is counted.
#include "tests/chaos/watch_check.h"

#include "gtest/gtest.h"

namespace keel::chaos {
namespace {

using Effect = WriteRecord::Effect;

WatchEvent Put(int64_t revision, const std::string& key, const std::string& value) {
  return {revision, key, true, value};
}
WatchEvent Del(int64_t revision, const std::string& key) { return {revision, key, false, ""}; }

// Revision 4 is a transaction that wrote two keys.
std::vector<WatchEvent> History() {
  return {Put(2, "k0", "a"), Put(3, "k1", "b"), Put(4, "k0", "c"),
          Put(4, "k1", "d"), Del(5, "k0"),      Put(6, "k1", "e")};
}

std::vector<WriteRecord> Writes() {
  return {{"k0", "a", Effect::kApplied}, {"k1", "b", Effect::kApplied},
          {"k0", "c", Effect::kMaybe},   {"k1", "d", Effect::kMaybe},
          {"k1", "e", Effect::kApplied}, {"k1", "never", Effect::kNotApplied}};
}

WatcherLog Everything(std::vector<std::vector<WatchEvent>> batches) {
  WatcherLog w;
  w.name = "all";
  w.range = {std::string(1, '\0'), std::string(1, '\0')};
  w.start_revision = 1;
  w.batches = std::move(batches);
  return w;
}

WatchCheckResult Check(const WatcherLog& w, const std::vector<WatchEvent>& history = History(),
                       const std::vector<WriteRecord>& writes = Writes()) {
  return CheckWatch(history, 1, 6, {w}, writes);
}

TEST(WatchCheckTest, EveryEventOnceInOrderIsValid) {
  const auto h = History();
  // Revisions grouped freely, as long as each revision is in one response.
  const WatchCheckResult r = Check(Everything({{h[0]}, {h[1], h[2], h[3]}, {h[4], h[5]}}));
  EXPECT_TRUE(r.ok()) << r.Summary() << "\n" << (r.examples.empty() ? "" : r.examples[0]);
  EXPECT_EQ(r.events, 6u);
  EXPECT_EQ(r.history_events, 6u);
}

TEST(WatchCheckTest, RangesAndStartRevisionsSelectTheExpectedEvents) {
  const auto h = History();
  WatcherLog one_key;
  one_key.name = "k1";
  one_key.range = {"k1", ""};
  one_key.start_revision = 4;
  one_key.batches = {{h[3]}, {h[5]}};
  WatcherLog prefix;
  prefix.name = "prefix";
  prefix.range = {"k", "l"};
  prefix.start_revision = 5;
  prefix.batches = {{h[4]}, {h[5]}};
  const WatchCheckResult r = CheckWatch(h, 1, 6, {one_key, prefix}, Writes());
  EXPECT_TRUE(r.ok()) << r.examples.front();
  EXPECT_EQ(r.events, 4u);
}

TEST(WatchCheckTest, MissingEventIsAGap) {
  const auto h = History();
  const WatchCheckResult r = Check(Everything({{h[0]}, {h[2], h[3]}, {h[4], h[5]}}));
  EXPECT_EQ(r.gaps, 1u);
  EXPECT_FALSE(r.ok());
  ASSERT_FALSE(r.examples.empty());
  EXPECT_NE(r.examples[0].find("never received revision 3 put k1=b"), std::string::npos)
      << r.examples[0];
}

TEST(WatchCheckTest, WatcherThatStoppedEarlyHasGaps) {
  const auto h = History();
  WatcherLog w = Everything({{h[0]}, {h[1]}});
  w.ended = "OUT_OF_RANGE: compacted";
  const WatchCheckResult r = Check(w);
  EXPECT_EQ(r.gaps, 4u);
  EXPECT_EQ(r.ended, 1u);
}

TEST(WatchCheckTest, RepeatedEventIsADuplicate) {
  const auto h = History();
  // A resume from the last revision instead of the one after it.
  const WatchCheckResult r = Check(Everything({{h[0], h[1]}, {h[1]}, {h[2], h[3]}, {h[4], h[5]}}));
  EXPECT_EQ(r.duplicates, 1u);
  EXPECT_EQ(r.gaps, 0u);
  EXPECT_EQ(r.disorder, 0u);
  EXPECT_FALSE(r.ok());
}

TEST(WatchCheckTest, EarlierRevisionAfterALaterOneIsDisorder) {
  const auto h = History();
  const WatchCheckResult r = Check(Everything({{h[0]}, {h[2], h[3]}, {h[1]}, {h[4], h[5]}}));
  EXPECT_EQ(r.disorder, 1u);
  EXPECT_EQ(r.gaps, 0u);
  // Within a revision, too.
  EXPECT_EQ(Check(Everything({{h[0], h[1]}, {h[3], h[2]}, {h[4], h[5]}})).disorder, 1u);
}

TEST(WatchCheckTest, RevisionInTwoResponsesIsSplit) {
  const auto h = History();
  const WatchCheckResult r = Check(Everything({{h[0], h[1], h[2]}, {h[3]}, {h[4], h[5]}}));
  EXPECT_EQ(r.split, 1u);
  EXPECT_EQ(r.gaps + r.duplicates + r.disorder, 0u);
  EXPECT_FALSE(r.ok());
}

TEST(WatchCheckTest, EventNotInTheHistoryIsAPhantom) {
  const auto h = History();
  // A value the history does not have at that revision, and a revision it has not.
  const WatchCheckResult r = Check(Everything(
      {{h[0]}, {h[1]}, {h[2], h[3]}, {Put(5, "k0", "stale")}, {h[5]}, {Put(6, "k2", "x")}}));
  EXPECT_EQ(r.phantom, 2u);
  EXPECT_EQ(r.gaps, 1u);  // The delete at 5.
}

TEST(WatchCheckTest, EventsAfterTheHistoryEndAreNotCompared) {
  const auto h = History();
  const WatchCheckResult r =
      Check(Everything({{h[0]}, {h[1]}, {h[2], h[3]}, {h[4], h[5]}, {Put(7, "k0", "late")}}));
  EXPECT_TRUE(r.ok());
  EXPECT_EQ(r.events, 6u);
}

TEST(WatchCheckTest, CompactedStartComparesFromTheCompactionPoint) {
  const auto h = History();
  const std::vector<WatchEvent> tail(h.begin() + 2, h.end());  // From revision 4.
  const WatchCheckResult r =
      CheckWatch(tail, 4, 6, {Everything({{h[0]}, {h[1]}, {h[2], h[3]}, {h[4], h[5]}})}, Writes());
  EXPECT_TRUE(r.ok()) << r.Summary();
  EXPECT_EQ(r.events, 4u);
}

TEST(WatchCheckTest, AcknowledgedWriteWithoutEvent) {
  auto writes = Writes();
  writes.push_back({"set/0/1", "1", Effect::kApplied});
  const auto h = History();
  const WatchCheckResult r =
      Check(Everything({{h[0]}, {h[1]}, {h[2], h[3]}, {h[4], h[5]}}), History(), writes);
  EXPECT_EQ(r.acked_no_event, 1u);
  EXPECT_EQ(r.failed_applied + r.applied_twice, 0u);
}

TEST(WatchCheckTest, FailedUnknownAndRepeatedWritesInTheHistory) {
  auto h = History();
  h.push_back(Put(7, "k1", "never"));   // Certainly failed.
  h.push_back(Put(8, "k0", "nobody"));  // Nobody wrote it.
  h.push_back(Put(9, "k1", "e"));       // Applied a second time.
  const WatchCheckResult r = CheckWatch(h, 1, 9, {}, Writes());
  EXPECT_EQ(r.failed_applied, 2u);
  EXPECT_EQ(r.applied_twice, 1u);
  EXPECT_EQ(r.gaps, 0u);
}

TEST(WatchCheckTest, HistoryWithoutEventsAtSomeRevisions) {
  auto h = History();
  h.push_back(Put(9, "k0", "c"));
  const WatchCheckResult r = CheckWatch(h, 1, 9, {}, {});
  EXPECT_EQ(r.history_gaps, 2u);  // 7 and 8.
  EXPECT_FALSE(r.ok());
}

TEST(WatchCheckTest, SummaryNamesEveryFigure) {
  WatchCheckResult r;
  r.events = 12;
  r.gaps = 1;
  EXPECT_EQ(r.Summary(),
            "watch_events=12 watch_gaps=1 watch_dups=0 watch_disorder=0 watch_split=0 "
            "watch_phantom=0 watch_ended=0 history_events=0 history_gaps=0 acked_no_event=0 "
            "failed_applied=0 applied_twice=0 diverged=0");
}

}  // namespace
}  // namespace keel::chaos
