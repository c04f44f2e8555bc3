#include "bench/keel_bench_watch.h"

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "absl/strings/str_cat.h"
#include "common/check.h"
#include "proto/etcdserverpb/rpc.grpc.pb.h"

namespace keel::bench {

using Clock = std::chrono::steady_clock;

// One Watch stream with one watch. Reactions for one stream never run concurrently, so
// its counters need no lock while it runs; Finish reads them after the stream is done
// (done_ under mu_ orders the two).
class WatchFleet::Watcher final
    : public grpc::ClientBidiReactor<etcdserverpb::WatchRequest, etcdserverpb::WatchResponse> {
 public:
  Watcher(etcdserverpb::Watch::Stub* stub, const etcdserverpb::WatchCreateRequest& create,
          const std::atomic<int64_t>* count_from_ns)
      : count_from_ns_(count_from_ns) {
    stub->async()->Watch(&context_, this);
    *request_.mutable_create_request() = create;
    StartWrite(&request_);
    StartRead(&response_);
    StartCall();
  }

  void OnWriteDone(bool /*ok*/) override {}
  void OnReadDone(bool ok) override {
    if (!ok) return;  // OnDone follows.
    const Clock::time_point now = Clock::now();
    if (response_.created()) {
      std::lock_guard<std::mutex> lock(mu_);
      created_ = true;
      cv_.notify_all();
    }
    if (response_.canceled()) {
      std::lock_guard<std::mutex> lock(mu_);
      cancel_reason_ = response_.cancel_reason().empty()
                           ? absl::StrCat("compacted at ", response_.compact_revision())
                           : response_.cancel_reason();
    }
    if (response_.events_size() > 0) ++responses_;
    const Clock::time_point count_from{std::chrono::nanoseconds(count_from_ns_->load())};
    bool first = true;
    for (const auto& ev : response_.events()) {
      const int64_t rev = ev.kv().mod_revision();
      if (rev < last_rev_ || (first && rev == last_rev_ && !in_fragment_)) ++order_violations_;
      first = false;
      last_rev_ = rev;
      Clock::time_point sent;
      if (count_from.time_since_epoch().count() > 0 && ReadSendTime(ev.kv().value(), &sent) &&
          sent >= count_from) {
        latency_.Record(static_cast<uint64_t>(
            std::chrono::duration_cast<std::chrono::nanoseconds>(now - sent).count()));
      }
    }
    in_fragment_ = response_.fragment();
    events_.fetch_add(response_.events_size(), std::memory_order_release);
    StartRead(&response_);
  }
  void OnDone(const grpc::Status& status) override {
    std::lock_guard<std::mutex> lock(mu_);
    done_ = true;
    status_ = status;
    cv_.notify_all();
  }

  bool WaitCreated(Clock::time_point deadline) {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait_until(lock, deadline, [this] { return created_ || done_; });
    return created_ && !done_;
  }
  void CancelAndWait() {
    context_.TryCancel();
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [this] { return done_; });
  }
  int64_t events() const { return events_.load(std::memory_order_acquire); }
  std::string Failure() {
    std::lock_guard<std::mutex> lock(mu_);
    if (!cancel_reason_.empty()) return cancel_reason_;
    if (done_ && !status_.ok()) return status_.error_message();
    return "";
  }

  // Read after CancelAndWait.
  int64_t responses_ = 0;
  int64_t order_violations_ = 0;
  LatencyHistogram latency_;

 private:
  const std::atomic<int64_t>* const count_from_ns_;
  grpc::ClientContext context_;
  etcdserverpb::WatchRequest request_;
  etcdserverpb::WatchResponse response_;
  std::atomic<int64_t> events_{0};
  int64_t last_rev_ = 0;
  bool in_fragment_ = false;
  std::mutex mu_;
  std::condition_variable cv_;
  bool created_ = false;
  bool done_ = false;
  grpc::Status status_;
  std::string cancel_reason_;
};

WatchFleet::WatchFleet(const Options& options, std::vector<std::shared_ptr<grpc::Channel>> channels)
    : options_(options), channels_(std::move(channels)) {}

WatchFleet::~WatchFleet() {
  for (auto& w : watchers_) w->CancelAndWait();
}

absl::Status WatchFleet::Start(std::chrono::seconds timeout) {
  etcdserverpb::WatchCreateRequest create;
  create.set_key(MakeKey(0, options_.key_size));
  if (options_.key_space > 1) {
    // Every key of the key space; its end is the first key past it (one more digit
    // would not sort after it, so the interval ends at the key space's successor).
    std::string end = MakeKey(options_.key_space - 1, options_.key_size);
    end.push_back('\0');
    create.set_range_end(end);
  }
  std::vector<std::unique_ptr<etcdserverpb::Watch::Stub>> stubs;
  for (const auto& ch : channels_) stubs.push_back(etcdserverpb::Watch::NewStub(ch));
  // The stubs only start calls; the calls keep their channels alive.
  for (int i = 0; i < options_.watchers; ++i) {
    watchers_.push_back(std::make_unique<Watcher>(
        stubs[static_cast<size_t>(i) % stubs.size()].get(), create, &count_from_ns_));
  }
  const Clock::time_point deadline = Clock::now() + timeout;
  for (size_t i = 0; i < watchers_.size(); ++i) {
    if (!watchers_[i]->WaitCreated(deadline)) {
      return absl::UnavailableError(
          absl::StrCat("watcher ", i, " was not created: ", watchers_[i]->Failure()));
    }
  }
  return absl::OkStatus();
}

void WatchFleet::CountFrom(Clock::time_point from) {
  count_from_ns_.store(
      std::chrono::duration_cast<std::chrono::nanoseconds>(from.time_since_epoch()).count());
}

void WatchFleet::Finish(int64_t expected, std::chrono::seconds timeout, Result* result) {
  const Clock::time_point start = Clock::now(), deadline = start + timeout;
  Clock::time_point drained = start;
  for (auto& w : watchers_) {
    while (w->events() < expected && Clock::now() < deadline && w->Failure().empty()) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    drained = Clock::now();
  }
  WatchResult& r = result->watch;
  r.watchers = static_cast<int64_t>(watchers_.size());
  r.expected_per_watcher = expected;
  r.drain_s = std::chrono::duration<double>(drained - start).count();
  int64_t responses = 0;
  for (auto& w : watchers_) {
    const int64_t got = w->events();
    w->CancelAndWait();
    r.delivered += got;
    if (got != expected) ++r.wrong_count;
    const std::string failure = w->Failure();
    if (!failure.empty() && failure != "Cancelled" && r.first_failure.empty()) {
      r.first_failure = failure;
    }
    r.order_violations += w->order_violations_;
    responses += w->responses_;
    r.delivery.Merge(w->latency_);
  }
  r.events_per_response =
      responses > 0 ? static_cast<double>(r.delivered) / static_cast<double>(responses) : 0;
  watchers_.clear();
}

}  // namespace keel::bench
