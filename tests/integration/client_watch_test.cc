// keel::Client::Watch against real clusters:
//  - a watch from a past revision, served by the leader, which is SIGKILLed while
//    writes go on: the watch resumes on another member and delivers every event
//    exactly once, in order (compared with a fresh watch of the same history);
//  - pull mode, bad options, a compacted start, and the client's destruction;
//  - pull mode's back-pressure: a reader that falls behind pauses the stream, Next()
//    restarts it, and cancelling or destroying a paused watch ends it.
#include <algorithm>
#include <atomic>
#include <mutex>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "google/protobuf/util/message_differencer.h"
#include "keel/client.h"
#include "tests/integration/client_test_util.h"
#include "tests/integration/cluster_test_base.h"

namespace keel::integration {
namespace {

using google::protobuf::util::MessageDifferencer;

// Collects what a callback watch delivers and checks the order as it goes.
struct Collector {
  std::mutex mu;
  std::vector<mvccpb::Event> events;
  std::vector<absl::Status> errors;
  std::string violation;
  int64_t last_batch_rev = 0;

  WatchCallback Callback() {
    return [this](absl::StatusOr<WatchBatch> b) {
      std::lock_guard<std::mutex> lock(mu);
      if (!b.ok()) {
        errors.push_back(b.status());
        return;
      }
      if (b->events.empty()) return;
      // Whole revisions per batch: the first revision is new, the rest never go back.
      if (b->events.front().kv().mod_revision() <= last_batch_rev) {
        violation += absl::StrCat("batch starts at ", b->events.front().kv().mod_revision(),
                                  " after ", last_batch_rev, "; ");
      }
      int64_t prev = 0;
      for (const auto& e : b->events) {
        if (e.kv().mod_revision() < prev) violation += "revisions go back in a batch; ";
        prev = e.kv().mod_revision();
        events.push_back(e);
      }
      if (b->revision != prev) violation += "batch revision is not its last event's; ";
      last_batch_rev = prev;
    };
  }
  int64_t last() {
    std::lock_guard<std::mutex> lock(mu);
    return last_batch_rev;
  }
};

// Writes on "w/" (puts, and a delete every 7th) until `stop`; records acknowledged
// revisions.
void Writer(Client& client, std::atomic<bool>* stop, std::atomic<int>* acked,
            std::vector<int64_t>* revisions, std::mutex* mu) {
  for (int i = 0; !stop->load(); ++i) {
    const std::string key = absl::StrCat("w/", i % 11);
    int64_t rev = 0;
    if (i % 7 == 6) {
      absl::StatusOr<DeleteResponse> d = client.Delete(key);
      if (d.ok() && d->deleted() > 0) rev = d->header().revision();
    } else {
      absl::StatusOr<PutResponse> p = client.Put(key, absl::StrCat("v", i));
      if (p.ok()) rev = p->header().revision();
    }
    if (rev != 0) {
      std::lock_guard<std::mutex> lock(*mu);
      revisions->push_back(rev);
      acked->fetch_add(1);
    }
  }
}

class ClientWatchTest : public ClusterTest {};

TEST_F(ClientWatchTest, PastRevisionAcrossLeaderKillEveryEventExactlyOnceInOrder) {
  Cluster& c = StartCluster({});
  absl::StatusOr<int> leader = c.WaitForLeader();
  ASSERT_TRUE(leader.ok()) << leader.status();
  auto writer_client = Client::Connect(ClientOptionsFor(c));
  auto watch_client = Client::Connect(ClientOptionsFor(c));
  ASSERT_TRUE(writer_client.ok() && watch_client.ok());

  // History before the watch exists.
  absl::StatusOr<PutResponse> first = (*writer_client)->Put("w/first", "0");
  ASSERT_TRUE(first.ok()) << first.status();
  const int64_t from = first->header().revision();
  for (int i = 0; i < 100; ++i)
    ASSERT_TRUE((*writer_client)->Put(absl::StrCat("w/", i % 11), "h").ok());

  // A watch from the past, on the leader (the client spreads watches over members
  // round-robin: make new ones until one lands there).
  WatchOptions options;
  options.prefix = true;
  options.prev_kv = true;
  options.start_revision = from;
  Collector got;
  std::unique_ptr<Watcher> watch;
  for (int tries = 0; tries < 10; ++tries) {
    watch = (*watch_client)->Watch("w/", options, got.Callback());
    ASSERT_TRUE(WaitFor([&] { return !watch->endpoint().empty(); }, absl::Seconds(10)));
    if (watch->endpoint() == c.client_address(*leader)) break;
    watch.reset();
    std::lock_guard<std::mutex> lock(got.mu);
    got.events.clear();
    got.last_batch_rev = 0;
  }
  ASSERT_NE(watch, nullptr);
  ASSERT_EQ(watch->endpoint(), c.client_address(*leader));

  std::atomic<bool> stop{false};
  std::atomic<int> acked{0};
  std::vector<int64_t> revisions;
  std::mutex revisions_mu;
  std::thread writer([&] { Writer(**writer_client, &stop, &acked, &revisions, &revisions_mu); });
  ASSERT_TRUE(WaitFor([&] { return acked.load() >= 100; }, absl::Seconds(30)));
  c.Kill(*leader);
  const int acked_at_kill = acked.load();
  const bool more = WaitFor([&] { return acked.load() >= acked_at_kill + 150; }, absl::Seconds(40));
  stop = true;
  writer.join();
  ASSERT_TRUE(more) << "writes stalled after the kill: " << acked.load();

  int64_t end = 0;
  {
    std::lock_guard<std::mutex> lock(revisions_mu);
    end = *std::max_element(revisions.begin(), revisions.end());
  }
  ASSERT_TRUE(WaitFor([&] { return got.last() >= end; }, absl::Seconds(30)))
      << "delivered up to " << got.last() << " of " << end;
  EXPECT_GE(watch->resumes(), 1);
  EXPECT_NE(watch->endpoint(), c.client_address(*leader));

  // The reference: the same history read by a fresh watch on a surviving member.
  std::vector<mvccpb::Event> want;
  {
    auto reference = (*watch_client)->Watch("w/", options);
    while (want.empty() || want.back().kv().mod_revision() < end) {
      absl::StatusOr<WatchBatch> b = reference->Next(absl::Seconds(20));
      ASSERT_TRUE(b.ok()) << b.status();
      for (auto& e : b->events) want.push_back(std::move(e));
    }
  }
  std::lock_guard<std::mutex> lock(got.mu);
  EXPECT_EQ(got.violation, "");
  EXPECT_TRUE(got.errors.empty()) << (got.errors.empty() ? "" : got.errors.front().ToString());
  std::vector<mvccpb::Event> delivered;
  for (const auto& e : got.events) {
    if (e.kv().mod_revision() <= end) delivered.push_back(e);
  }
  while (!want.empty() && want.back().kv().mod_revision() > end) want.pop_back();
  ASSERT_EQ(delivered.size(), want.size());
  for (size_t i = 0; i < want.size(); ++i) {
    ASSERT_TRUE(MessageDifferencer::Equals(delivered[i], want[i]))
        << i << ": " << delivered[i].ShortDebugString() << " vs " << want[i].ShortDebugString();
  }
  // And every acknowledged write is among them.
  std::vector<int64_t> seen;
  for (const auto& e : delivered) seen.push_back(e.kv().mod_revision());
  std::lock_guard<std::mutex> rlock(revisions_mu);
  for (int64_t r : revisions) {
    EXPECT_TRUE(std::binary_search(seen.begin(), seen.end(), r)) << "write at " << r << " missing";
  }
}

TEST_F(ClientWatchTest, PullModeBadOptionsCompactionAndShutdown) {
  Cluster& c = StartCluster({});
  ASSERT_TRUE(c.WaitForLeader().ok());
  auto client = Client::Connect(ClientOptionsFor(c));
  ASSERT_TRUE(client.ok()) << client.status();
  Client& cl = **client;
  int64_t second = 0;
  for (int i = 0; i < 10; ++i) {
    absl::StatusOr<PutResponse> p = cl.Put("p", std::to_string(i));
    ASSERT_TRUE(p.ok());
    if (i == 1) second = p->header().revision();
  }

  // Pull: history, then a live event.
  WatchOptions from_second;
  from_second.start_revision = second;
  auto pull = cl.Watch("p", from_second);
  std::vector<std::string> values;
  while (values.size() < 9) {
    absl::StatusOr<WatchBatch> b = pull->Next(absl::Seconds(10));
    ASSERT_TRUE(b.ok()) << b.status();
    for (const auto& e : b->events) values.push_back(e.kv().value());
  }
  EXPECT_EQ(values.front(), "1");
  EXPECT_EQ(values.back(), "9");
  EXPECT_EQ(pull->Next(absl::Milliseconds(50)).status().code(),
            absl::StatusCode::kDeadlineExceeded);
  ASSERT_TRUE(cl.Put("p", "live").ok());
  absl::StatusOr<WatchBatch> live = pull->Next(absl::Seconds(10));
  ASSERT_TRUE(live.ok()) << live.status();
  EXPECT_EQ(live->events.at(0).kv().value(), "live");

  // Bad options end the watch at once.
  WatchOptions both;
  both.prefix = true;
  both.from_key = true;
  absl::Status inline_error;
  auto bad = cl.Watch("p", both, [&](absl::StatusOr<WatchBatch> b) { inline_error = b.status(); });
  EXPECT_EQ(inline_error.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(cl.Watch("", WatchOptions())->Next(absl::Seconds(1)).status().code(),
            absl::StatusCode::kInvalidArgument);

  // From below the compaction point: etcd's compacted error and the compaction revision.
  // A member that has not applied the compaction yet still serves that history (as
  // etcd's do: each member compacts when it applies the request), so a watch that
  // lands on a lagging follower gets events; the next one is tried after it.
  ASSERT_TRUE(cl.Compact(second + 3, /*physical=*/true).ok());
  std::unique_ptr<Watcher> compacted;
  absl::StatusOr<WatchBatch> gone;
  const absl::Time compacted_deadline = absl::Now() + absl::Seconds(20);
  do {
    compacted = cl.Watch("p", from_second);
    gone = compacted->Next(absl::Seconds(10));
    if (!gone.ok()) break;
    EXPECT_EQ(gone->events.at(0).kv().value(), "1");  // From the start, whatever member.
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  } while (absl::Now() < compacted_deadline);
  EXPECT_EQ(gone.status().code(), absl::StatusCode::kOutOfRange) << gone.status();
  EXPECT_EQ(compacted->compact_revision(), second + 3);

  // Destroying the client ends its watches with CANCELLED.
  absl::Status ended;
  std::atomic<bool> done{false};
  auto watched = cl.Watch("q", WatchOptions(), [&](absl::StatusOr<WatchBatch> b) {
    if (!b.ok()) {
      ended = b.status();
      done = true;
    }
  });
  ASSERT_TRUE(WaitFor([&] { return !watched->endpoint().empty(); }, absl::Seconds(10)));
  client->reset();
  EXPECT_TRUE(done.load());
  EXPECT_EQ(ended.code(), absl::StatusCode::kCancelled);
}

// A pull watch that nobody reads stops reading from its stream once its queue is full
// (64 batches); Next() restarts the read from outside gRPC's callbacks. Every event
// arrives once, in order. A paused watch that is cancelled or whose client goes away
// ends at once (the stream's hold is released, the call finishes).
TEST_F(ClientWatchTest, PullModePausesWhenBehindAndResumesOrEnds) {
  Cluster& c = StartCluster({});
  ASSERT_TRUE(c.WaitForLeader().ok());
  auto client = Client::Connect(ClientOptionsFor(c));
  ASSERT_TRUE(client.ok()) << client.status();
  Client& cl = **client;

  auto reader = cl.Watch("bp", WatchOptions());
  auto abandoned = cl.Watch("bp", WatchOptions());
  auto dropped = cl.Watch("bp", WatchOptions());
  ASSERT_TRUE(WaitFor(
      [&] {
        return !reader->endpoint().empty() && !abandoned->endpoint().empty() &&
               !dropped->endpoint().empty();
      },
      absl::Seconds(10)));
  constexpr int kWrites = 300;  // One revision each: far more batches than the queue holds.
  for (int i = 0; i < kWrites; ++i) ASSERT_TRUE(cl.Put("bp", std::to_string(i)).ok());

  int next = 0;
  while (next < kWrites) {
    absl::StatusOr<WatchBatch> b = reader->Next(absl::Seconds(10));
    ASSERT_TRUE(b.ok()) << b.status() << " after " << next << " events";
    for (const auto& e : b->events) {
      ASSERT_EQ(e.kv().value(), std::to_string(next)) << "an event lost or repeated";
      ++next;
    }
  }
  EXPECT_EQ(reader->resumes(), 0);

  // `abandoned` is paused with a full queue: cancelling it ends it, and what it had
  // queued is no longer handed out.
  abandoned->Cancel();
  EXPECT_EQ(abandoned->Next(absl::Seconds(5)).status().code(), absl::StatusCode::kCancelled);
  abandoned.reset();

  // `dropped` is paused too: destroying the client ends it (Client's destructor waits
  // for every watch, so a hold left behind would hang here).
  client->reset();
  absl::Status end;
  do {
    absl::StatusOr<WatchBatch> b = dropped->Next(absl::Seconds(5));
    if (!b.ok()) end = b.status();
  } while (end.ok());
  EXPECT_EQ(end.code(), absl::StatusCode::kCancelled) << end;
}

}  // namespace
}  // namespace keel::integration
