// WatchHub against a real KvStore, with in-memory sinks standing in for gRPC streams:
// every watch must receive exactly the events the store applied (filtered by its key
// range, start revision and filters), in order, once, one revision per response at
// most once — live, replayed from history, while falling behind (unsynced) and catching
// up from the window or from storage, across dropped inbox batches and snapshot-like
// gaps — plus etcd's created / canceled / compacted / progress / fragment responses.
#include "server/watch_hub.h"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "google/protobuf/util/message_differencer.h"
#include "gtest/gtest.h"
#include "server/errors.h"
#include "tests/unit/storage/kv_test_util.h"

namespace keel::server {
namespace {

using google::protobuf::util::MessageDifferencer;
using storage::testing::CompactReq;
using storage::testing::DelReq;
using storage::testing::KvHarness;
using storage::testing::PutReq;
using storage::testing::TempDir;

constexpr auto kWait = std::chrono::seconds(20);

// A stream's client side: records every response; writes complete when acked (by
// hand, or by a background acker that plays a fast client).
class TestStream final : public WatchSink {
 public:
  TestStream(WatchHub* hub, bool auto_ack, bool require_leader = false)
      : hub_(hub), auto_ack_(auto_ack) {
    stream_ = hub_->OpenStream(this, require_leader);
    acker_ = std::thread([this] { AckLoop(); });
  }
  ~TestStream() override {
    hub_->CloseStream(stream_.get(), absl::OkStatus());
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    acker_.join();
  }

  void Send(std::string message) override {
    etcdserverpb::WatchResponse r;
    EXPECT_TRUE(r.ParseFromString(message));
    std::lock_guard<std::mutex> lock(mu_);
    EXPECT_FALSE(outstanding_) << "two writes outstanding";
    EXPECT_FALSE(ended_) << "write after end";
    responses_.push_back(std::move(r));
    outstanding_ = true;
    cv_.notify_all();
  }
  void End(const absl::Status& status) override {
    std::lock_guard<std::mutex> lock(mu_);
    EXPECT_FALSE(ended_) << "ended twice";
    EXPECT_FALSE(outstanding_) << "ended with a write outstanding";
    ended_ = true;
    end_status_ = status;
    cv_.notify_all();
  }

  void Request(const etcdserverpb::WatchRequest& r) { hub_->Handle(stream_.get(), r); }
  void Create(const std::string& key, const std::string& end = "", int64_t start = 0,
              bool prev_kv = false, int64_t id = 0) {
    etcdserverpb::WatchRequest r;
    auto* c = r.mutable_create_request();
    c->set_key(key);
    c->set_range_end(end);
    c->set_start_revision(start);
    c->set_prev_kv(prev_kv);
    c->set_watch_id(id);
    Request(r);
  }
  void Cancel(int64_t id) {
    etcdserverpb::WatchRequest r;
    r.mutable_cancel_request()->set_watch_id(id);
    Request(r);
  }

  void SetAutoAck(bool on) {
    std::lock_guard<std::mutex> lock(mu_);
    auto_ack_ = on;
    cv_.notify_all();
  }
  // Completes the outstanding write (if any) once.
  void AckOne() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (!outstanding_) return;
      outstanding_ = false;
    }
    stream_->output().WriteDone(true);
  }

  template <typename Pred>
  bool WaitFor(Pred pred) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, kWait, [&] { return pred(responses_); });
  }
  bool WaitEnded() {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, kWait, [&] { return ended_; });
  }
  std::vector<etcdserverpb::WatchResponse> Responses() {
    std::lock_guard<std::mutex> lock(mu_);
    return responses_;
  }
  absl::Status end_status() {
    std::lock_guard<std::mutex> lock(mu_);
    return end_status_;
  }
  WatchStream* stream() { return stream_.get(); }

 private:
  void AckLoop() {
    std::unique_lock<std::mutex> lock(mu_);
    for (;;) {
      cv_.wait(lock, [&] { return stop_ || (auto_ack_ && outstanding_); });
      if (stop_) return;
      outstanding_ = false;
      lock.unlock();
      stream_->output().WriteDone(true);
      lock.lock();
    }
  }

  WatchHub* const hub_;
  std::shared_ptr<WatchStream> stream_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<etcdserverpb::WatchResponse> responses_;
  bool outstanding_ = false;
  bool auto_ack_;
  bool ended_ = false;
  bool stop_ = false;
  absl::Status end_status_;
  std::thread acker_;
};

// Every event the store applied, for computing what each watch must receive.
struct Expectation {
  Expectation(std::string k, std::string e, int64_t f)
      : key(std::move(k)), end(std::move(e)), from(f) {}
  Expectation& Prev() {
    prev_kv = true;
    return *this;
  }
  Expectation& NoPut() {
    no_put = true;
    return *this;
  }
  Expectation& NoDelete() {
    no_delete = true;
    return *this;
  }
  std::string key;
  std::string end;
  int64_t from = 0;
  bool prev_kv = false;
  bool no_put = false;
  bool no_delete = false;
};

class WatchHubTest : public ::testing::Test {
 protected:
  void SetUp() override { StartHub(); }

  void StartHub() {
    options_.cluster_id = 7;
    options_.member_id = 9;
    options_.raft_term = [] { return uint64_t{3}; };
    options_.has_leader = [this] { return has_leader_.load(); };
    hub_ = std::make_unique<WatchHub>(options_, &h_.store());
  }

  // Applies `req` as the apply thread does: store first, then Publish.
  void Write(const internalpb::Request& req) {
    std::vector<storage::ApplyResult> results;
    results.push_back(h_.Apply(req));
    ASSERT_TRUE(results.back().status.ok()) << results.back().status;
    for (const auto& e : results.back().events) live_.push_back(e);
    hub_->Publish(&results);
  }
  // Several requests in one apply batch.
  void WriteBatch(const std::vector<internalpb::Request>& reqs) {
    std::vector<std::string> data;
    std::vector<storage::ApplyEntry> entries;
    for (const auto& r : reqs) data.push_back(r.SerializeAsString());
    for (auto& d : data) {
      entries.push_back({h_.next_index(), d});
      h_.set_next_index(h_.next_index() + 1);
    }
    auto results = h_.store().Apply(entries);
    ASSERT_TRUE(results.ok()) << results.status();
    for (const auto& r : *results) {
      for (const auto& e : r.events) live_.push_back(e);
    }
    hub_->Publish(&*results);
  }

  std::vector<mvccpb::Event> Expected(const Expectation& x) const {
    const auto iv =
        storage::mvcc::KeyInterval::From(x.key.empty() ? std::string(1, '\0') : x.key, x.end);
    std::vector<mvccpb::Event> out;
    for (auto e : live_) {
      if (e.kv().mod_revision() < x.from || !iv.Contains(e.kv().key())) continue;
      if (e.type() == mvccpb::Event::PUT ? x.no_put : x.no_delete) continue;
      if (!x.prev_kv) e.clear_prev_kv();
      out.push_back(std::move(e));
    }
    return out;
  }

  // The events watch `id` received, checking etcd's framing rules on the way: created
  // first, no revision split over two responses, header revision = newest event.
  static std::vector<mvccpb::Event> Received(const std::vector<etcdserverpb::WatchResponse>& rs,
                                             int64_t id) {
    std::vector<mvccpb::Event> out;
    bool created = false;
    bool continues_fragment = false;
    int64_t last_rev = 0;
    for (const auto& r : rs) {
      if (r.watch_id() != id) continue;
      if (r.created()) {
        EXPECT_FALSE(created) << "created twice";
        EXPECT_TRUE(out.empty()) << "events before created";
        created = true;
        continue;
      }
      if (r.events_size() == 0) continue;
      EXPECT_TRUE(created) << "events before created";
      if (continues_fragment) {
        EXPECT_EQ(r.events(0).kv().mod_revision(), last_rev) << "a fragment of another revision";
      } else {
        EXPECT_GT(r.events(0).kv().mod_revision(), last_rev) << "a revision split or repeated";
      }
      continues_fragment = r.fragment();
      EXPECT_EQ(r.header().revision(), r.events(r.events_size() - 1).kv().mod_revision());
      EXPECT_EQ(r.header().cluster_id(), 7u);
      EXPECT_EQ(r.header().member_id(), 9u);
      EXPECT_EQ(r.header().raft_term(), 3u);
      for (const auto& e : r.events()) out.push_back(e);
      last_rev = r.events(r.events_size() - 1).kv().mod_revision();
    }
    return out;
  }

  static bool Same(const std::vector<mvccpb::Event>& got, const std::vector<mvccpb::Event>& want,
                   std::string* why) {
    if (got.size() != want.size()) {
      *why = "got " + std::to_string(got.size()) + " events, want " + std::to_string(want.size());
      return false;
    }
    for (size_t i = 0; i < got.size(); ++i) {
      if (!MessageDifferencer::Equals(got[i], want[i])) {
        *why = "event " + std::to_string(i) + ": got " + got[i].ShortDebugString() + " want " +
               want[i].ShortDebugString();
        return false;
      }
    }
    return true;
  }

  static bool WaitFor(const std::function<bool()>& done) {
    const auto deadline = std::chrono::steady_clock::now() + kWait;
    while (std::chrono::steady_clock::now() < deadline) {
      if (done()) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return false;
  }
  bool WaitUntilSynced() {
    return WaitFor([this] { return hub_->unsynced_watches() == 0; });
  }

  // Waits until watch `id` on `s` received exactly what `x` describes.
  void ExpectDelivered(TestStream& s, int64_t id, const Expectation& x) {
    const auto want = Expected(x);
    std::string why;
    const bool ok = s.WaitFor([&](const std::vector<etcdserverpb::WatchResponse>& rs) {
      return Received(rs, id).size() >= want.size();
    });
    EXPECT_TRUE(ok) << "timed out: watch " << id << " has " << Received(s.Responses(), id).size()
                    << " of " << want.size() << " events";
    EXPECT_TRUE(Same(Received(s.Responses(), id), want, &why)) << why;
  }

  TempDir dir_;
  KvHarness h_{dir_.path()};
  WatchHubOptions options_;
  std::atomic<bool> has_leader_{true};
  std::unique_ptr<WatchHub> hub_;
  std::vector<mvccpb::Event> live_;
};

TEST_F(WatchHubTest, CreatedFirstThenLiveEventsWithAutoIds) {
  Write(PutReq("before", "x"));  // rev 2: not seen by a watch from "now".
  TestStream s(hub_.get(), /*auto_ack=*/true);
  s.Create("k");
  s.Create("a", "c");
  ASSERT_TRUE(s.WaitFor([](const auto& rs) { return rs.size() >= 2; }));
  const auto rs = s.Responses();
  EXPECT_TRUE(rs[0].created());
  EXPECT_EQ(rs[0].watch_id(), 0);  // etcd: auto ids start at 0 per stream.
  EXPECT_EQ(rs[0].header().revision(), 2);
  EXPECT_TRUE(rs[1].created());
  EXPECT_EQ(rs[1].watch_id(), 1);
  Write(PutReq("k", "1"));
  Write(PutReq("b", "2"));
  Write(PutReq("k", "3"));
  Write(DelReq("a", "z"));
  ExpectDelivered(s, 0, Expectation("k", "", 3));
  ExpectDelivered(s, 1, Expectation("a", "c", 3));
  EXPECT_EQ(hub_->watch_count(), 2u);
}

TEST_F(WatchHubTest, PrevKvFiltersAndWholeKeyspace) {
  for (int i = 0; i < 5; ++i) Write(PutReq("p/" + std::to_string(i), "v"));
  TestStream s(hub_.get(), true);
  etcdserverpb::WatchRequest r;
  auto* c = r.mutable_create_request();
  c->set_key("p/");
  c->set_range_end("p0");
  c->set_prev_kv(true);
  c->add_filters(etcdserverpb::WatchCreateRequest::NODELETE);
  s.Request(r);
  c->clear_filters();
  c->add_filters(etcdserverpb::WatchCreateRequest::NOPUT);
  c->set_prev_kv(false);
  s.Request(r);
  s.Create("", std::string(1, '\0'), 1, true);  // Everything, from the beginning.
  Write(PutReq("p/1", "w"));
  Write(DelReq("p/", "p0"));
  Write(PutReq("q", "v"));
  ExpectDelivered(s, 0, Expectation("p/", "p0", 7).Prev().NoDelete());
  ExpectDelivered(s, 1, Expectation("p/", "p0", 7).NoPut());
  ExpectDelivered(s, 2, Expectation("", std::string(1, '\0'), 1).Prev());
}

TEST_F(WatchHubTest, PastRevisionReplaysThenContinuesLiveWhileWriting) {
  for (int i = 0; i < 300; ++i) Write(PutReq("k" + std::to_string(i % 7), std::to_string(i)));
  TestStream s(hub_.get(), true);
  std::thread writer([&] {
    for (int i = 0; i < 300; ++i) Write(PutReq("k" + std::to_string(i % 7), "live"));
  });
  s.Create("k", "l", 2);
  s.Create("k3", "", 100, true);
  writer.join();
  ExpectDelivered(s, 0, Expectation("k", "l", 2));
  ExpectDelivered(s, 1, Expectation("k3", "", 100).Prev());
}

// A client that stops reading: its watch falls behind (unsynced, bounded buffer), the
// writer is never blocked, and once the client reads again it catches up from the
// window — or from storage when the window no longer reaches back.
class WatchHubSlowTest : public WatchHubTest, public ::testing::WithParamInterface<size_t> {
 protected:
  void SetUp() override {
    options_.output.stream_bytes = 2048;
    options_.output.max_response_bytes = 8192;
    options_.window_bytes = GetParam();
    StartHub();
  }
};

TEST_P(WatchHubSlowTest, SlowWatcherFallsBehindAndCatchesUp) {
  TestStream slow(hub_.get(), /*auto_ack=*/false);
  TestStream fast(hub_.get(), /*auto_ack=*/true);
  slow.Create("k", "l", 0, true);
  fast.Create("k", "l", 0, true);
  ASSERT_TRUE(slow.WaitFor([](const auto& rs) { return !rs.empty(); }));  // created
  for (int i = 0; i < 2000; ++i) {
    Write(PutReq("k" + std::to_string(i % 5), std::string(100, 'a' + i % 26)));
  }
  ExpectDelivered(fast, 0, Expectation("k", "l", 2).Prev());
  EXPECT_EQ(hub_->unsynced_watches(), 1u);
  // Bounded: the stream's budget, plus at most one response (and its last revision).
  EXPECT_LE(slow.stream()->output().queued_bytes(), 2048u + 8192u + 1024u);
  slow.SetAutoAck(true);
  slow.AckOne();
  ExpectDelivered(slow, 0, Expectation("k", "l", 2).Prev());
  // Synced again: new events flow live.
  Write(PutReq("k1", "after"));
  ExpectDelivered(slow, 0, Expectation("k", "l", 2).Prev());
  EXPECT_TRUE(WaitUntilSynced());
}

INSTANTIATE_TEST_SUITE_P(Window, WatchHubSlowTest,
                         ::testing::Values(size_t{64} << 20,  // Catch up from memory.
                                           size_t{4096}));    // Mostly from storage.

TEST_F(WatchHubTest, CompactedStartGetsCompactedResponse) {
  for (int i = 0; i < 10; ++i) Write(PutReq("k", std::to_string(i)));
  Write(CompactReq(6));
  TestStream s(hub_.get(), true);
  s.Create("k", "", 3);
  s.Create("k", "", 6);  // The compaction point itself is still watchable.
  ASSERT_TRUE(s.WaitFor([](const auto& rs) { return rs.size() >= 3; }));
  const auto rs = s.Responses();
  EXPECT_TRUE(rs[0].created());
  EXPECT_FALSE(rs[0].canceled());
  EXPECT_EQ(rs[1].watch_id(), 0);
  EXPECT_TRUE(rs[1].canceled());
  EXPECT_EQ(rs[1].compact_revision(), 6);
  EXPECT_EQ(rs[1].header().revision(), 0);  // As etcd.
  ExpectDelivered(s, 1, Expectation("k", "", 6));
  EXPECT_EQ(hub_->watch_count(), 1u);
}

TEST_F(WatchHubTest, RefusalsCancelAndDuplicateIds) {
  TestStream s(hub_.get(), true);
  s.Create("b", "a");               // Empty range.
  s.Create("k", "", 0, false, 42);  // Client-chosen id.
  s.Create("j", "", 0, false, 42);  // Duplicate.
  ASSERT_TRUE(s.WaitFor([](const auto& rs) { return rs.size() >= 3; }));
  auto rs = s.Responses();
  EXPECT_TRUE(rs[0].created() && rs[0].canceled());
  EXPECT_EQ(rs[0].watch_id(), -1);
  EXPECT_EQ(rs[0].cancel_reason(), "mvcc: watcher range is empty");
  EXPECT_TRUE(rs[1].created() && !rs[1].canceled());
  EXPECT_EQ(rs[1].watch_id(), 42);
  EXPECT_EQ(rs[2].watch_id(), -1);
  EXPECT_EQ(rs[2].cancel_reason(), "mvcc: duplicate watch ID provided on the WatchStream");
  Write(PutReq("k", "1"));
  ExpectDelivered(s, 42, Expectation("k", "", 2));
  s.Cancel(42);
  s.Cancel(1000);  // Unknown: no answer, as etcd.
  ASSERT_TRUE(s.WaitFor([](const auto& rs) { return rs.back().canceled(); }));
  EXPECT_EQ(s.Responses().back().watch_id(), 42);
  const size_t n = s.Responses().size();
  Write(PutReq("k", "2"));
  s.Create("z");  // Its created response proves the put was dispatched meanwhile.
  ASSERT_TRUE(s.WaitFor([&](const auto& rs) { return rs.size() >= n + 1; }));
  EXPECT_EQ(s.Responses().size(), n + 1);
  EXPECT_TRUE(s.Responses().back().created());
  EXPECT_EQ(hub_->watch_count(), 1u);
}

// A progress response at revision R (watch_id -1) promises that every event up to R of
// every watch of the stream came before it.
TEST_F(WatchHubTest, ProgressResponseFollowsEverythingUpToItsRevision) {
  for (int i = 0; i < 50; ++i) Write(PutReq("k", std::to_string(i)));
  TestStream s(hub_.get(), true);
  s.Create("k", "", 2);
  etcdserverpb::WatchRequest progress;
  progress.mutable_progress_request();
  auto check = [&](size_t nth) {
    std::vector<etcdserverpb::WatchResponse> before;
    size_t seen = 0;
    for (const auto& r : s.Responses()) {
      if (r.watch_id() == -1 && ++seen == nth) {
        EXPECT_EQ(r.events_size(), 0);
        EXPECT_FALSE(r.created() || r.canceled());
        size_t due = 0;
        for (const auto& e : live_) due += e.kv().mod_revision() <= r.header().revision() ? 1 : 0;
        EXPECT_EQ(Received(before, 0).size(), due) << "progress at " << r.header().revision();
        return r.header().revision();
      }
      before.push_back(r);
    }
    ADD_FAILURE() << "no progress response";
    return int64_t{0};
  };
  auto progress_count = [](const std::vector<etcdserverpb::WatchResponse>& rs) {
    size_t n = 0;
    for (const auto& r : rs) n += r.watch_id() == -1 ? 1 : 0;
    return n;
  };
  s.Request(progress);
  ASSERT_TRUE(s.WaitFor([&](const auto& rs) { return progress_count(rs) >= 1; }));
  check(1);
  ExpectDelivered(s, 0, Expectation("k", "", 2));
  // Once the dispatcher is through, a progress response names the newest revision.
  ASSERT_TRUE(WaitFor([&] { return hub_->dispatched_revision() == 51; }));
  s.Request(progress);
  ASSERT_TRUE(s.WaitFor([&](const auto& rs) { return progress_count(rs) >= 2; }));
  EXPECT_EQ(check(2), 51);
}

TEST_F(WatchHubTest, FragmentSplitsABigRevision) {
  TestStream s(hub_.get(), true);
  etcdserverpb::WatchRequest r;
  r.mutable_create_request()->set_key("f/");
  r.mutable_create_request()->set_range_end("f0");
  r.mutable_create_request()->set_fragment(true);
  s.Request(r);
  s.Create("f/", "f0");
  ASSERT_TRUE(s.WaitFor([](const auto& rs) { return rs.size() >= 2; }));
  internalpb::Request txn;
  for (int i = 0; i < 10; ++i) {
    auto* put = txn.mutable_txn()->add_success()->mutable_request_put();
    put->set_key("f/" + std::to_string(i));
    put->set_value(std::string(400 << 10, 'x'));  // 4 MB in one revision.
  }
  Write(txn);
  ExpectDelivered(s, 0, Expectation("f/", "f0", 2));
  ExpectDelivered(s, 1, Expectation("f/", "f0", 2));
  int fragmented = 0, whole = 0;
  for (const auto& resp : s.Responses()) {
    if (resp.events_size() == 0) continue;
    if (resp.watch_id() == 0) {
      EXPECT_LT(resp.ByteSizeLong(), 1536u * 1024 + 1024);
      fragmented += resp.fragment() ? 1 : 0;
    } else {
      ++whole;
    }
  }
  EXPECT_GE(fragmented, 2);  // 4 MB in pieces under 1.5 MiB: at least 3, all but one marked.
  EXPECT_EQ(whole, 1);
}

TEST_F(WatchHubTest, DroppedInboxAndStoreJumpsAreReplayedFromStorage) {
  TestStream s(hub_.get(), true);
  s.Create("", std::string(1, '\0'), 0, true);
  ASSERT_TRUE(s.WaitFor([](const auto& rs) { return !rs.empty(); }));
  // Applied without being published (as a snapshot install would), then a bare Publish.
  for (int i = 0; i < 20; ++i) {
    auto r = h_.Apply(PutReq("s" + std::to_string(i), "v"));
    for (const auto& e : r.events) live_.push_back(e);
  }
  hub_->Publish(nullptr);
  Write(PutReq("after", "1"));
  ExpectDelivered(s, 0, Expectation("", std::string(1, '\0'), 2).Prev());
}

TEST_F(WatchHubTest, TinyInboxDropsEventsButNoWatchMissesOne) {
  options_.inbox_bytes = 1;  // Every batch with events overflows.
  hub_.reset();
  StartHub();
  TestStream s(hub_.get(), true);
  s.Create("a", "z", 0, true);
  for (int i = 0; i < 100; ++i) {
    WriteBatch({PutReq("b" + std::to_string(i), "1"), DelReq("b" + std::to_string(i))});
  }
  ExpectDelivered(s, 0, Expectation("a", "z", 2).Prev());
}

TEST_F(WatchHubTest, ManyWatchersOnOneKeyEachGetEveryEvent) {
  std::vector<std::unique_ptr<TestStream>> streams;
  for (int i = 0; i < 50; ++i) {
    streams.push_back(std::make_unique<TestStream>(hub_.get(), true));
    for (int j = 0; j < 4; ++j) streams.back()->Create("hot");
  }
  for (auto& s : streams) {
    ASSERT_TRUE(s->WaitFor([](const auto& rs) { return rs.size() >= 4; }));
  }
  for (int i = 0; i < 500; ++i) Write(PutReq("hot", std::to_string(i)));
  for (auto& s : streams) {
    for (int j = 0; j < 4; ++j) ExpectDelivered(*s, j, Expectation("hot", "", 2));
  }
}

TEST_F(WatchHubTest, ProgressNotifyWhenIdle) {
  options_.progress_interval = absl::Milliseconds(200);
  hub_.reset();
  StartHub();
  TestStream s(hub_.get(), true);
  etcdserverpb::WatchRequest r;
  r.mutable_create_request()->set_key("k");
  r.mutable_create_request()->set_progress_notify(true);
  s.Request(r);
  Write(PutReq("k", "1"));
  ASSERT_TRUE(s.WaitFor([](const auto& rs) {
    return rs.size() >= 3 && rs.back().events_size() == 0 && rs.back().watch_id() == 0;
  }));
  EXPECT_EQ(s.Responses().back().header().revision(), 2);
}

TEST_F(WatchHubTest, RequireLeaderStreamsEndWhenTheLeaderIsGone) {
  options_.leader_check_interval = absl::Milliseconds(50);
  hub_.reset();
  StartHub();
  TestStream needs(hub_.get(), true, /*require_leader=*/true);
  TestStream plain(hub_.get(), true);
  needs.Create("k");
  plain.Create("k");
  has_leader_ = false;
  ASSERT_TRUE(needs.WaitEnded());
  EXPECT_EQ(needs.end_status(), ErrNoLeader());
  EXPECT_EQ(hub_->watch_count(), 1u);
}

TEST_F(WatchHubTest, StopEndsEveryStream) {
  TestStream s(hub_.get(), true);
  s.Create("k");
  hub_->Stop();
  ASSERT_TRUE(s.WaitEnded());
  EXPECT_EQ(s.end_status(), ErrStopped());
  Write(PutReq("k", "after stop"));  // Publish is a no-op now.
}

}  // namespace
}  // namespace keel::server
