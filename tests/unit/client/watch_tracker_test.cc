// WatchTracker: create requests per stream (resume after the last delivered revision),
// fragments joined into whole revisions, duplicates dropped, and the meaning of every
// kind of response. Deterministic, no network.
#include "client/watch_tracker.h"

#include "gtest/gtest.h"

namespace keel::client {
namespace {

using Kind = WatchTracker::Outcome::Kind;

etcdserverpb::WatchResponse Created(int64_t revision) {
  etcdserverpb::WatchResponse r;
  r.set_created(true);
  r.mutable_header()->set_revision(revision);
  return r;
}

etcdserverpb::WatchResponse Events(std::initializer_list<int64_t> revisions,
                                   bool fragment = false) {
  etcdserverpb::WatchResponse r;
  for (int64_t rev : revisions) {
    auto* e = r.add_events();
    e->mutable_kv()->set_key("k" + std::to_string(rev));
    e->mutable_kv()->set_mod_revision(rev);
  }
  r.set_fragment(fragment);
  if (revisions.size() > 0) r.mutable_header()->set_revision(*(revisions.end() - 1));
  return r;
}

std::vector<int64_t> Revisions(const WatchBatch& b) {
  std::vector<int64_t> out;
  for (const auto& e : b.events) out.push_back(e.kv().mod_revision());
  return out;
}

TEST(WatchTrackerTest, CreateRequestCarriesTheOptions) {
  WatchOptions o;
  o.prefix = true;
  o.prev_kv = true;
  o.no_delete = true;
  o.progress_notify = true;
  o.start_revision = 7;
  auto t = WatchTracker::Make("jobs/", o);
  ASSERT_TRUE(t.ok()) << t.status();
  const auto c = t->CreateRequest().create_request();
  EXPECT_EQ(c.key(), "jobs/");
  EXPECT_EQ(c.range_end(), "jobs0");
  EXPECT_EQ(c.start_revision(), 7);
  EXPECT_TRUE(c.prev_kv() && c.progress_notify() && c.fragment());
  ASSERT_EQ(c.filters_size(), 1);
  EXPECT_EQ(c.filters(0), etcdserverpb::WatchCreateRequest::NODELETE);

  o = WatchOptions();
  o.from_key = true;
  t = WatchTracker::Make("", o);  // Every key.
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->CreateRequest().create_request().range_end(), std::string(1, '\0'));
}

TEST(WatchTrackerTest, BadOptionsAreRefused) {
  WatchOptions o;
  EXPECT_EQ(WatchTracker::Make("", o).status().code(), absl::StatusCode::kInvalidArgument);
  o.prefix = true;
  o.range_end = "z";
  EXPECT_EQ(WatchTracker::Make("a", o).status().code(), absl::StatusCode::kInvalidArgument);
  o = WatchOptions();
  o.start_revision = -1;
  EXPECT_EQ(WatchTracker::Make("a", o).status().code(), absl::StatusCode::kInvalidArgument);
}

// A watch "from now" is pinned at its first creation, so a resume does not skip what
// happened while it was reconnecting; later streams resume after the last revision.
TEST(WatchTrackerTest, ResumesAfterTheLastDeliveredRevision) {
  auto t = WatchTracker::Make("k", WatchOptions());
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->CreateRequest().create_request().start_revision(), 0);
  EXPECT_EQ(t->OnResponse(Created(10)).kind, Kind::kCreated);
  EXPECT_EQ(t->next_revision(), 11);
  auto b = t->OnResponse(Events({11, 12, 12}));
  ASSERT_EQ(b.kind, Kind::kBatch);
  EXPECT_EQ(Revisions(b.batch), (std::vector<int64_t>{11, 12, 12}));
  EXPECT_EQ(b.batch.revision, 12);
  t->OnStreamEnd();
  EXPECT_EQ(t->CreateRequest().create_request().start_revision(), 13);
  // The next stream's created response (at a later revision) does not move it.
  EXPECT_EQ(t->OnResponse(Created(20)).kind, Kind::kCreated);
  EXPECT_EQ(t->next_revision(), 13);
  // Anything already delivered that a server sends again is dropped.
  b = t->OnResponse(Events({12, 13}));
  ASSERT_EQ(b.kind, Kind::kBatch);
  EXPECT_EQ(Revisions(b.batch), (std::vector<int64_t>{13}));
  EXPECT_EQ(t->OnResponse(Events({13})).kind, Kind::kNothing);
}

TEST(WatchTrackerTest, FragmentsBecomeOneBatchAndAHalfRevisionIsDropped) {
  WatchOptions o;
  o.start_revision = 5;
  auto t = WatchTracker::Make("k", o);
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->OnResponse(Events({5, 5}, /*fragment=*/true)).kind, Kind::kNothing);
  auto b = t->OnResponse(Events({5}));
  ASSERT_EQ(b.kind, Kind::kBatch);
  EXPECT_EQ(Revisions(b.batch), (std::vector<int64_t>{5, 5, 5}));
  // A stream that dies between the pieces of revision 6: the next one resends it whole.
  EXPECT_EQ(t->OnResponse(Events({6}, true)).kind, Kind::kNothing);
  t->OnStreamEnd();
  EXPECT_EQ(t->CreateRequest().create_request().start_revision(), 6);
  b = t->OnResponse(Events({6, 6}));
  ASSERT_EQ(b.kind, Kind::kBatch);
  EXPECT_EQ(Revisions(b.batch), (std::vector<int64_t>{6, 6}));
}

TEST(WatchTrackerTest, ProgressCompactedRefusedAndCanceled) {
  WatchOptions o;
  o.start_revision = 3;
  auto t = WatchTracker::Make("k", o);
  ASSERT_TRUE(t.ok());
  etcdserverpb::WatchResponse progress;
  progress.set_watch_id(0);
  progress.mutable_header()->set_revision(40);
  auto p = t->OnResponse(progress);
  EXPECT_EQ(p.kind, Kind::kProgress);
  EXPECT_TRUE(p.batch.progress_notify);
  EXPECT_EQ(p.batch.revision, 40);
  EXPECT_EQ(t->next_revision(), 41);  // Nothing up to 40 is missing.

  etcdserverpb::WatchResponse compacted;
  compacted.set_compact_revision(50);
  compacted.set_canceled(true);
  auto c = t->OnResponse(compacted);
  EXPECT_EQ(c.kind, Kind::kCompacted);
  EXPECT_EQ(c.compact_revision, 50);

  etcdserverpb::WatchResponse refused = Created(1);
  refused.set_canceled(true);
  refused.set_cancel_reason("mvcc: watcher range is empty");
  auto r = t->OnResponse(refused);
  EXPECT_EQ(r.kind, Kind::kRefused);
  EXPECT_EQ(r.reason, "mvcc: watcher range is empty");

  etcdserverpb::WatchResponse canceled;
  canceled.set_canceled(true);
  canceled.set_cancel_reason("storage failure");
  EXPECT_EQ(t->OnResponse(canceled).kind, Kind::kCanceled);
}

}  // namespace
}  // namespace keel::client
