// Client::Watch: one watch, served by one Watch stream at a time. When a stream ends
// for any reason but the caller's cancel or an answer that ends the watch (compacted,
// refused), the watch resumes on another member after a backoff, from the revision
// after the last one delivered (WatchTracker). The endpoint is chosen like any call's
// (EndpointPool, circuit breakers); streams ask for hasleader so a member that lost
// its leader ends them and the watch moves to a member that has one.
#include <deque>
#include <memory>
#include <mutex>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "client/backoff.h"
#include "client/client_core.h"
#include "client/watch_tracker.h"
#include "keel/client.h"

namespace keel {
namespace {

using client::ClientCore;
using client::Endpoint;
using client::Route;
using client::WatchTracker;

// Pull mode: batches waiting for Next() before the watch stops reading.
constexpr size_t kPullQueueMax = 64;

// What a stream does after handing a response to the watch.
enum class AfterResponse {
  kReadOn,  // Read the next response.
  kPaused,  // Pull mode, queue full: the watch restarts the read (ReadMore) or, if it
            // stops meanwhile, releases the stream's hold (ReleaseHold).
  kStop,    // The watch has ended or moves elsewhere: no more reads.
};

class WatchState;

// One Watch stream. Owns itself: deleted in OnDone, after the state detached it.
//
// It keeps one gRPC hold while reads may still be started from outside a reaction (a
// paused pull-mode watch restarts its read from Next()): without the hold, the call
// could finish between the pause and that StartRead, and the read would start on a
// destroyed call (gRPC then aborts on a reference released twice).
class WatchStream final
    : public grpc::ClientBidiReactor<etcdserverpb::WatchRequest, etcdserverpb::WatchResponse> {
 public:
  WatchStream(std::shared_ptr<WatchState> state, std::shared_ptr<Endpoint> endpoint,
              etcdserverpb::WatchRequest create)
      : state_(std::move(state)), endpoint_(std::move(endpoint)), create_(std::move(create)) {}

  void Start() {
    // A member without a leader ends the stream ("etcdserver: no leader"), so the watch
    // moves to one that has a leader (and is not partitioned away).
    context_.AddMetadata("hasleader", "true");
    endpoint_->watch->async()->Watch(&context_, this);
    AddHold();
    StartWrite(&create_);
    StartRead(&response_);
    StartCall();
  }
  void Cancel() { context_.TryCancel(); }
  // Only while paused (the hold is still held); called under the state's lock.
  void ReadMore() { StartRead(&response_); }
  void ReleaseHold() { RemoveHold(); }
  Endpoint& endpoint() { return *endpoint_; }

  void OnWriteDone(bool /*ok*/) override {}
  void OnReadDone(bool ok) override;
  void OnDone(const grpc::Status& status) override;

 private:
  std::shared_ptr<WatchState> state_;
  std::shared_ptr<Endpoint> endpoint_;
  grpc::ClientContext context_;
  etcdserverpb::WatchRequest create_;
  etcdserverpb::WatchResponse response_;
};

class WatchState final : public std::enable_shared_from_this<WatchState> {
 public:
  WatchState(ClientCore* core, WatchTracker tracker, WatchCallback callback, bool progress_notify)
      : core_(core),
        tracker_(std::move(tracker)),
        callback_(std::move(callback)),
        progress_notify_(progress_notify) {}

  // Holds a client op until the watch ends, so destroying the Client waits for it (and
  // ends it first, through the closer).
  void Start() {
    if (!core_->BeginOp()) return End(absl::CancelledError("keel: the client is shutting down"));
    holds_op_ = true;
    std::weak_ptr<WatchState> weak = weak_from_this();
    closer_ = core_->AddCloser([weak] {
      if (auto self = weak.lock()) self->Stop();
    });
    if (closer_ == 0) return End(absl::CancelledError("keel: the client is shutting down"));
    Connect();
  }

  // A watch that cannot start (bad arguments): it ends at once with `status`.
  void Fail(absl::Status status) { End(std::move(status)); }

  // The caller's cancel: no callback starts after it (not even the final CANCELLED).
  void Cancel() {
    {
      absl::MutexLock lock(&mu_);
      user_canceled_ = true;
    }
    Stop();
  }

  // Ends the watch (the caller's cancel, or the client shutting down).
  void Stop() {
    {
      absl::MutexLock lock(&mu_);
      if (ended_) return;
      canceled_ = true;
      // Under mu_: the stream is deleted only after Detach took mu_. Its OnDone then
      // ends the watch.
      if (stream_ != nullptr) {
        stream_->Cancel();
        if (read_paused_) {  // No read will be restarted: let the call finish.
          read_paused_ = false;
          stream_->ReleaseHold();
        }
        return;
      }
    }
    End(absl::CancelledError("keel: watch cancelled"));
  }

  // Pull mode.
  absl::StatusOr<WatchBatch> Next(absl::Duration timeout) {
    absl::MutexLock lock(&mu_);
    auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return !queue_.empty() || ended_ || user_canceled_;
    };
    mu_.AwaitWithTimeout(absl::Condition(&ready), timeout);
    if (user_canceled_) return absl::CancelledError("keel: watch cancelled");
    if (queue_.empty()) {
      if (ended_) return final_status_;
      return absl::DeadlineExceededError("keel: no watch event within the timeout");
    }
    absl::StatusOr<WatchBatch> out = std::move(queue_.front());
    queue_.pop_front();
    if (read_paused_ && queue_.size() < kPullQueueMax / 2 && stream_ != nullptr) {
      read_paused_ = false;
      stream_->ReadMore();  // Under mu_, as in Cancel.
    }
    return out;
  }

  // Stream side: what the stream does next.
  AfterResponse OnResponse(WatchStream* stream, const etcdserverpb::WatchResponse& response) {
    WatchTracker::Outcome outcome;
    {
      absl::MutexLock lock(&mu_);
      if (canceled_ || ended_) return AfterResponse::kStop;
      outcome = tracker_.OnResponse(response);
    }
    using Kind = WatchTracker::Outcome::Kind;
    switch (outcome.kind) {
      case Kind::kNothing:
        return AfterResponse::kReadOn;
      case Kind::kCreated: {
        stream->endpoint().breaker.OnSuccess();
        absl::MutexLock lock(&mu_);
        retry_ = 0;  // The member serves the watch: the next failure starts afresh.
        endpoint_ = stream->endpoint().address;
        return AfterResponse::kReadOn;
      }
      case Kind::kProgress:
        if (!progress_notify_) return AfterResponse::kReadOn;
        return Deliver(std::move(outcome.batch));
      case Kind::kBatch:
        return Deliver(std::move(outcome.batch));
      case Kind::kCompacted: {
        absl::MutexLock lock(&mu_);
        compact_revision_ = outcome.compact_revision;
        terminal_ = absl::OutOfRangeError(absl::StrCat(
            "etcdserver: mvcc: required revision has been compacted (watch from ",
            tracker_.next_revision(), ", compacted at ", outcome.compact_revision, ")"));
        break;
      }
      case Kind::kRefused: {
        absl::MutexLock lock(&mu_);
        terminal_ = absl::InvalidArgumentError(absl::StrCat("watch refused: ", outcome.reason));
        break;
      }
      case Kind::kCanceled:
        break;  // Resume on another member.
    }
    stream->Cancel();
    return AfterResponse::kStop;
  }

  // The stream is done and about to be deleted: Stop and Next no longer reach it.
  void Detach(WatchStream* stream) {
    absl::MutexLock lock(&mu_);
    if (stream_ == stream) stream_ = nullptr;
    endpoint_.clear();
    read_paused_ = false;
    tracker_.OnStreamEnd();
  }

  // After the stream was deleted: ends the watch or resumes it elsewhere. The endpoint
  // is released before the watch ends, so the client's channels are not destroyed on
  // this (gRPC) thread after the client is gone.
  void OnStreamDone(std::shared_ptr<Endpoint> endpoint, const grpc::Status& status) {
    bool canceled = false;
    absl::Status terminal;
    {
      absl::MutexLock lock(&mu_);
      canceled = canceled_;
      terminal = terminal_;
    }
    if (canceled || !terminal.ok()) {
      endpoint.reset();
      return End(canceled ? absl::CancelledError("keel: watch cancelled") : terminal);
    }
    // Codes that say the request itself is wrong end the watch; everything else (the
    // member died, stopped, lost its leader, the connection broke) resumes elsewhere.
    switch (status.error_code()) {
      case grpc::StatusCode::INVALID_ARGUMENT:
      case grpc::StatusCode::PERMISSION_DENIED:
      case grpc::StatusCode::UNAUTHENTICATED:
      case grpc::StatusCode::UNIMPLEMENTED:
      case grpc::StatusCode::FAILED_PRECONDITION:
      case grpc::StatusCode::OUT_OF_RANGE:
        endpoint.reset();
        return End(absl::Status(static_cast<absl::StatusCode>(status.error_code()),
                                status.error_message()));
      default:
        break;
    }
    endpoint->breaker.OnFailure(absl::Now());
    ScheduleConnect(endpoint);
  }

  int64_t next_revision() const {
    absl::MutexLock lock(&mu_);
    return tracker_.next_revision();
  }
  int64_t compact_revision() const {
    absl::MutexLock lock(&mu_);
    return compact_revision_;
  }
  int resumes() const {
    absl::MutexLock lock(&mu_);
    return resumes_;
  }
  std::string endpoint() const {
    absl::MutexLock lock(&mu_);
    return endpoint_;
  }
  // Waits until no callback runs and none will start.
  void WaitQuiet() {
    absl::MutexLock lock(&mu_);
    auto quiet = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return !in_callback_; };
    mu_.Await(absl::Condition(&quiet));
  }

 private:
  void Connect() {
    absl::Time retry_at;
    std::shared_ptr<Endpoint> endpoint;
    etcdserverpb::WatchRequest create;
    {
      absl::MutexLock lock(&mu_);
      if (canceled_ || ended_) return;
      endpoint = core_->pool().Pick(Route::Any(), avoid_.get(), absl::Now(), &retry_at);
      create = tracker_.CreateRequest();
    }
    if (endpoint == nullptr) {  // Every breaker is open: wait for the first to half-open.
      RunAt(retry_at);
      return;
    }
    auto* stream = new WatchStream(shared_from_this(), endpoint, std::move(create));
    absl::MutexLock lock(&mu_);
    if (canceled_) {
      delete stream;  // Cancel() found no stream and ended the watch.
      return;
    }
    stream_ = stream;
    core_->OnAttemptSent(*endpoint);
    stream->Start();  // Under mu_, so a Cancel() cannot slip in before the call starts.
  }

  void ScheduleConnect(const std::shared_ptr<Endpoint>& failed) {
    int retry = 0;
    {
      absl::MutexLock lock(&mu_);
      retry = retry_++;
      ++resumes_;
      avoid_ = failed;
    }
    core_->RefreshSoon();  // The member may be gone or no longer lead.
    RunAt(absl::Now() +
          client::BackoffDelay(core_->options().backoff, retry, false, core_->Random()));
  }

  void RunAt(absl::Time when) {
    std::shared_ptr<WatchState> self = shared_from_this();
    core_->scheduler().RunAt(when, [self](bool cancelled) {
      if (cancelled) return self->End(absl::CancelledError("keel: the client is shutting down"));
      self->Connect();
      // A cancel while waiting found no stream and ended the watch itself.
    });
  }

  // Hands a batch or the final error to the caller.
  AfterResponse Deliver(absl::StatusOr<WatchBatch> item) {
    if (callback_) {
      {
        absl::MutexLock lock(&mu_);
        if (ended_delivered_ || user_canceled_) return AfterResponse::kStop;
        if (!item.ok()) ended_delivered_ = true;
        in_callback_ = true;
      }
      callback_(std::move(item));
      absl::MutexLock lock(&mu_);
      in_callback_ = false;
      return canceled_ ? AfterResponse::kStop : AfterResponse::kReadOn;
    }
    absl::MutexLock lock(&mu_);
    if (!item.ok()) return AfterResponse::kStop;  // Pull mode: Next reports final_status_.
    queue_.push_back(std::move(item));
    if (queue_.size() >= kPullQueueMax) {
      read_paused_ = true;  // Next() resumes the read.
      return AfterResponse::kPaused;
    }
    return AfterResponse::kReadOn;
  }

  void End(absl::Status status) {
    std::shared_ptr<Endpoint> avoid;  // Released before EndOp, like the stream's.
    {
      absl::MutexLock lock(&mu_);
      if (ended_) return;
      ended_ = true;
      final_status_ = status;
      avoid = std::move(avoid_);
    }
    avoid.reset();
    Deliver(std::move(status));
    if (holds_op_) {
      core_->RemoveCloser(closer_);
      core_->EndOp();
    }
  }

  ClientCore* const core_;
  mutable absl::Mutex mu_;
  WatchTracker tracker_ ABSL_GUARDED_BY(mu_);
  const WatchCallback callback_;  // Empty in pull mode.
  const bool progress_notify_;
  bool holds_op_ = false;  // Set once in Start.
  uint64_t closer_ = 0;
  WatchStream* stream_ ABSL_GUARDED_BY(mu_) = nullptr;
  std::shared_ptr<Endpoint> avoid_ ABSL_GUARDED_BY(mu_);
  std::string endpoint_ ABSL_GUARDED_BY(mu_);
  int retry_ ABSL_GUARDED_BY(mu_) = 0;
  int resumes_ ABSL_GUARDED_BY(mu_) = 0;
  bool canceled_ ABSL_GUARDED_BY(mu_) = false;       // Stopping: by the caller or shutdown.
  bool user_canceled_ ABSL_GUARDED_BY(mu_) = false;  // By the caller: no more callbacks.
  bool ended_ ABSL_GUARDED_BY(mu_) = false;
  bool ended_delivered_ ABSL_GUARDED_BY(mu_) = false;
  bool in_callback_ ABSL_GUARDED_BY(mu_) = false;
  absl::Status terminal_ ABSL_GUARDED_BY(mu_);  // Set: end when the stream is done.
  absl::Status final_status_ ABSL_GUARDED_BY(mu_);
  int64_t compact_revision_ ABSL_GUARDED_BY(mu_) = 0;
  std::deque<absl::StatusOr<WatchBatch>> queue_ ABSL_GUARDED_BY(mu_);
  bool read_paused_ ABSL_GUARDED_BY(mu_) = false;
};

void WatchStream::OnReadDone(bool ok) {
  if (!ok) return RemoveHold();  // No more reads; OnDone follows.
  switch (state_->OnResponse(this, response_)) {
    case AfterResponse::kReadOn:
      return StartRead(&response_);
    case AfterResponse::kStop:
      return RemoveHold();
    case AfterResponse::kPaused:
      return;
  }
}

void WatchStream::OnDone(const grpc::Status& status) {
  std::shared_ptr<WatchState> state = std::move(state_);
  std::shared_ptr<Endpoint> endpoint = std::move(endpoint_);
  state->Detach(this);
  // The context and the call go before the watch may end (End releases the client op,
  // after which the Client may be destroyed): nothing of gRPC's outlives the client.
  delete this;
  state->OnStreamDone(std::move(endpoint), status);
}

class WatcherImpl final : public Watcher {
 public:
  explicit WatcherImpl(std::shared_ptr<WatchState> state) : state_(std::move(state)) {}
  ~WatcherImpl() override {
    state_->Cancel();
    state_->WaitQuiet();
  }
  absl::StatusOr<WatchBatch> Next(absl::Duration timeout) override { return state_->Next(timeout); }
  void Cancel() override { state_->Cancel(); }
  int64_t next_revision() const override { return state_->next_revision(); }
  int64_t compact_revision() const override { return state_->compact_revision(); }
  int resumes() const override { return state_->resumes(); }
  std::string endpoint() const override { return state_->endpoint(); }

 private:
  std::shared_ptr<WatchState> state_;
};

}  // namespace

std::unique_ptr<Watcher> Client::Watch(std::string_view key, const WatchOptions& options,
                                       WatchCallback callback) {
  absl::StatusOr<WatchTracker> tracker = WatchTracker::Make(key, options);
  if (!tracker.ok()) {
    // Ends at once: the callback (inline) or Next reports why.
    auto state = std::make_shared<WatchState>(core_.get(), *WatchTracker::Make("-", WatchOptions()),
                                              std::move(callback), false);
    state->Fail(tracker.status());
    return std::make_unique<WatcherImpl>(std::move(state));
  }
  auto state = std::make_shared<WatchState>(core_.get(), *std::move(tracker), std::move(callback),
                                            options.progress_notify);
  state->Start();
  return std::make_unique<WatcherImpl>(std::move(state));
}

std::unique_ptr<Watcher> Client::Watch(std::string_view key, const WatchOptions& options) {
  return Watch(key, options, nullptr);
}

}  // namespace keel
