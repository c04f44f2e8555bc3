// Client's Lease calls (Grant, Revoke, KeepAlive, TimeToLive, Leases) and LeaseKeeper,
// the background keep-alive (keel/lease.h).
//
// A keep-alive is one request and one answer on a LeaseKeepAlive stream opened for it
// (KeepAliveOnceReactor), so it goes through the ordinary call machinery — endpoint
// choice, attempt deadline, breakers, retries with backoff — like a unary call. One
// short stream per TTL/3 costs nothing next to a long-lived stream's reconnect logic.
#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "client/call.h"
#include "client/endpoint.h"
#include "keel/client.h"

namespace keel {
namespace client {
namespace {

using KeepAliveRequest = etcdserverpb::LeaseKeepAliveRequest;

// Writes the request, half-closes, reads the one answer; `done` gets the stream's
// status (UNAVAILABLE if it ended without an answer). Deletes itself.
class KeepAliveOnceReactor final
    : public grpc::ClientBidiReactor<KeepAliveRequest, LeaseKeepAliveResponse> {
 public:
  KeepAliveOnceReactor(Endpoint& endpoint, grpc::ClientContext* context,
                       const KeepAliveRequest* request, LeaseKeepAliveResponse* response,
                       std::function<void(grpc::Status)> done)
      : done_(std::move(done)) {
    endpoint.lease->async()->LeaseKeepAlive(context, this);
    StartWriteLast(request, grpc::WriteOptions());
    StartRead(response);
    StartCall();
  }

  void OnReadDone(bool ok) override { answered_ = ok; }

  void OnDone(const grpc::Status& status) override {
    grpc::Status result = status;
    if (result.ok() && !answered_) {
      result =
          grpc::Status(grpc::StatusCode::UNAVAILABLE, "keep-alive stream closed without an answer");
    }
    std::function<void(grpc::Status)> done = std::move(done_);
    delete this;
    done(result);
  }

 private:
  std::function<void(grpc::Status)> done_;
  bool answered_ = false;
};

CallSpec Spec(const char* method, CallKind kind, absl::Duration timeout) {
  return CallSpec{method, kind, Route::Leader(), timeout};
}

}  // namespace

// The shared state of one LeaseKeeper and its scheduled renewals.
struct KeepAliveState {
  KeepAliveState(ClientCore* core_in, int64_t id_in, std::function<void(absl::Status)> lost)
      : core(core_in), id(id_in), on_lost(std::move(lost)) {}

  ClientCore* const core;  // Used only by scheduled work, which the core outlives.
  const int64_t id;
  std::function<void(absl::Status)> on_lost;

  absl::Mutex mu;
  absl::Status status ABSL_GUARDED_BY(mu);
  absl::Time deadline ABSL_GUARDED_BY(mu);
  int64_t renewals ABSL_GUARDED_BY(mu) = 0;
  bool stopped ABSL_GUARDED_BY(mu) = false;  // The handle is gone, or the lease is lost.
};

namespace {

void ScheduleRenewal(std::shared_ptr<KeepAliveState> st, absl::Time when);

void Lose(const std::shared_ptr<KeepAliveState>& st, absl::Status why) {
  std::function<void(absl::Status)> on_lost;
  {
    absl::MutexLock lock(&st->mu);
    if (st->stopped) return;
    st->stopped = true;
    st->status = why;
    on_lost = std::move(st->on_lost);
  }
  if (on_lost) on_lost(std::move(why));
}

void OnRenewed(const std::shared_ptr<KeepAliveState>& st, absl::Time sent,
               const absl::StatusOr<LeaseKeepAliveResponse>& answer) {
  const absl::Time now = absl::Now();
  absl::Time next;
  {
    absl::MutexLock lock(&st->mu);
    if (st->stopped) return;
    if (answer.ok() && answer->ttl() > 0) {
      // The cluster counts the TTL from when it renewed, which is after `sent`.
      st->deadline = std::max(st->deadline, sent + absl::Seconds(answer->ttl()));
      ++st->renewals;
      next = now + std::max(absl::Seconds(answer->ttl()) / 3, absl::Milliseconds(100));
    } else if (!answer.ok() && now < st->deadline) {
      // The call already retried on other members; try again soon, well before the
      // deadline (a new leader keeps the lease at least until then).
      next = now + std::clamp((st->deadline - now) / 4, absl::Milliseconds(50), absl::Seconds(1));
    } else {
      next = absl::InfinitePast();  // Lost.
    }
  }
  if (next != absl::InfinitePast()) return ScheduleRenewal(st, next);
  if (answer.ok()) {
    return Lose(st, absl::NotFoundError(
                        absl::StrCat("lease ", absl::Hex(st->id), " expired or was revoked")));
  }
  Lose(st, absl::DeadlineExceededError(
               absl::StrCat("lease ", absl::Hex(st->id),
                            " not renewed before its deadline: ", answer.status().ToString())));
}

void Renew(const std::shared_ptr<KeepAliveState>& st) {
  absl::Duration timeout;
  {
    absl::MutexLock lock(&st->mu);
    if (st->stopped) return;
    // Give up by the deadline: after it the cluster may have expired the lease.
    timeout = std::min(st->core->options().call_timeout, st->deadline - absl::Now());
  }
  if (timeout <= absl::ZeroDuration()) {
    OnRenewed(st, absl::Now(), absl::DeadlineExceededError("no time left"));
    return;
  }
  KeepAliveRequest request;
  request.set_id(st->id);
  const absl::Time sent = absl::Now();
  StartCall<KeepAliveRequest, LeaseKeepAliveResponse>(
      st->core, Spec("LeaseKeepAlive", CallKind::kRead, timeout), std::move(request),
      [](Endpoint& e, grpc::ClientContext* c, const KeepAliveRequest* req,
         LeaseKeepAliveResponse* resp, std::function<void(grpc::Status)> d) {
        new KeepAliveOnceReactor(e, c, req, resp, std::move(d));
      },
      [st, sent](absl::StatusOr<LeaseKeepAliveResponse> answer) { OnRenewed(st, sent, answer); });
}

void ScheduleRenewal(std::shared_ptr<KeepAliveState> st, absl::Time when) {
  ClientCore* core = st->core;
  if (!core->BeginOp()) {  // The client is closing: renewals end with it.
    absl::MutexLock lock(&st->mu);
    if (!st->stopped) st->status = absl::CancelledError("keel client closed");
    st->stopped = true;
    return;
  }
  core->scheduler().RunAt(when, [st = std::move(st), core](bool cancelled) {
    if (!cancelled) Renew(st);
    core->EndOp();
  });
}

}  // namespace
}  // namespace client

// ---------------------------------------------------------------- LeaseKeeper

LeaseKeeper::~LeaseKeeper() {
  absl::MutexLock lock(&state_->mu);
  state_->stopped = true;
  state_->on_lost = nullptr;
}

int64_t LeaseKeeper::id() const { return state_->id; }

absl::Status LeaseKeeper::status() const {
  absl::MutexLock lock(&state_->mu);
  return state_->status;
}

absl::Time LeaseKeeper::deadline() const {
  absl::MutexLock lock(&state_->mu);
  return state_->deadline;
}

int64_t LeaseKeeper::renewals() const {
  absl::MutexLock lock(&state_->mu);
  return state_->renewals;
}

// ---------------------------------------------------------------- calls

void Client::LeaseGrantAsync(int64_t ttl_s, const LeaseGrantOptions& options,
                             Callback<LeaseGrantResponse> done) {
  etcdserverpb::LeaseGrantRequest request;
  request.set_ttl(ttl_s);
  request.set_id(options.id);
  // The server dedups grants by request id: a retry returns the first grant.
  client::StartCall<etcdserverpb::LeaseGrantRequest, LeaseGrantResponse>(
      core_.get(), client::Spec("LeaseGrant", client::CallKind::kWrite, options.timeout),
      std::move(request),
      [](client::Endpoint& e, grpc::ClientContext* c, const etcdserverpb::LeaseGrantRequest* req,
         LeaseGrantResponse* resp, std::function<void(grpc::Status)> d) {
        e.lease->async()->LeaseGrant(c, req, resp, std::move(d));
      },
      std::move(done));
}

void Client::LeaseRevokeAsync(int64_t id, const CallOptions& options,
                              Callback<LeaseRevokeResponse> done) {
  etcdserverpb::LeaseRevokeRequest request;
  request.set_id(id);
  client::StartCall<etcdserverpb::LeaseRevokeRequest, LeaseRevokeResponse>(
      core_.get(), client::Spec("LeaseRevoke", client::CallKind::kWrite, options.timeout),
      std::move(request),
      [](client::Endpoint& e, grpc::ClientContext* c, const etcdserverpb::LeaseRevokeRequest* req,
         LeaseRevokeResponse* resp, std::function<void(grpc::Status)> d) {
        e.lease->async()->LeaseRevoke(c, req, resp, std::move(d));
      },
      std::move(done));
}

void Client::LeaseKeepAliveOnceAsync(int64_t id, const CallOptions& options,
                                     Callback<LeaseKeepAliveResponse> done) {
  client::KeepAliveRequest request;
  request.set_id(id);
  // Renewing twice is harmless: retried freely.
  client::StartCall<client::KeepAliveRequest, LeaseKeepAliveResponse>(
      core_.get(), client::Spec("LeaseKeepAlive", client::CallKind::kRead, options.timeout),
      std::move(request),
      [](client::Endpoint& e, grpc::ClientContext* c, const client::KeepAliveRequest* req,
         LeaseKeepAliveResponse* resp, std::function<void(grpc::Status)> d) {
        new client::KeepAliveOnceReactor(e, c, req, resp, std::move(d));
      },
      std::move(done));
}

void Client::LeaseTimeToLiveAsync(int64_t id, bool keys, const CallOptions& options,
                                  Callback<LeaseTimeToLiveResponse> done) {
  etcdserverpb::LeaseTimeToLiveRequest request;
  request.set_id(id);
  request.set_keys(keys);
  client::StartCall<etcdserverpb::LeaseTimeToLiveRequest, LeaseTimeToLiveResponse>(
      core_.get(), client::Spec("LeaseTimeToLive", client::CallKind::kRead, options.timeout),
      std::move(request),
      [](client::Endpoint& e, grpc::ClientContext* c,
         const etcdserverpb::LeaseTimeToLiveRequest* req, LeaseTimeToLiveResponse* resp,
         std::function<void(grpc::Status)> d) {
        e.lease->async()->LeaseTimeToLive(c, req, resp, std::move(d));
      },
      std::move(done));
}

void Client::LeaseLeasesAsync(const CallOptions& options, Callback<LeaseLeasesResponse> done) {
  client::StartCall<etcdserverpb::LeaseLeasesRequest, LeaseLeasesResponse>(
      core_.get(), client::Spec("LeaseLeases", client::CallKind::kRead, options.timeout),
      etcdserverpb::LeaseLeasesRequest(),
      [](client::Endpoint& e, grpc::ClientContext* c, const etcdserverpb::LeaseLeasesRequest* req,
         LeaseLeasesResponse* resp, std::function<void(grpc::Status)> d) {
        e.lease->async()->LeaseLeases(c, req, resp, std::move(d));
      },
      std::move(done));
}

absl::StatusOr<LeaseGrantResponse> Client::LeaseGrant(int64_t ttl_s,
                                                      const LeaseGrantOptions& options) {
  return client::Await<LeaseGrantResponse>(
      [&](Callback<LeaseGrantResponse> d) { LeaseGrantAsync(ttl_s, options, std::move(d)); });
}

absl::StatusOr<LeaseRevokeResponse> Client::LeaseRevoke(int64_t id, const CallOptions& options) {
  return client::Await<LeaseRevokeResponse>(
      [&](Callback<LeaseRevokeResponse> d) { LeaseRevokeAsync(id, options, std::move(d)); });
}

absl::StatusOr<LeaseKeepAliveResponse> Client::LeaseKeepAliveOnce(int64_t id,
                                                                  const CallOptions& options) {
  return client::Await<LeaseKeepAliveResponse>([&](Callback<LeaseKeepAliveResponse> d) {
    LeaseKeepAliveOnceAsync(id, options, std::move(d));
  });
}

absl::StatusOr<LeaseTimeToLiveResponse> Client::LeaseTimeToLive(int64_t id, bool keys,
                                                                const CallOptions& options) {
  return client::Await<LeaseTimeToLiveResponse>([&](Callback<LeaseTimeToLiveResponse> d) {
    LeaseTimeToLiveAsync(id, keys, options, std::move(d));
  });
}

absl::StatusOr<LeaseLeasesResponse> Client::LeaseLeases(const CallOptions& options) {
  return client::Await<LeaseLeasesResponse>(
      [&](Callback<LeaseLeasesResponse> d) { LeaseLeasesAsync(options, std::move(d)); });
}

absl::StatusOr<std::unique_ptr<LeaseKeeper>> Client::LeaseKeepAlive(
    int64_t id, std::function<void(absl::Status)> on_lost) {
  const absl::Time sent = absl::Now();
  absl::StatusOr<LeaseKeepAliveResponse> first = LeaseKeepAliveOnce(id);
  if (!first.ok()) return first.status();
  if (first->ttl() <= 0) {
    return absl::NotFoundError(absl::StrCat("lease ", absl::Hex(id), " expired or was revoked"));
  }
  auto state = std::make_shared<client::KeepAliveState>(core_.get(), id, std::move(on_lost));
  {
    absl::MutexLock lock(&state->mu);
    state->deadline = sent + absl::Seconds(first->ttl());
    state->renewals = 1;
  }
  client::ScheduleRenewal(
      state, absl::Now() + std::max(absl::Seconds(first->ttl()) / 3, absl::Milliseconds(100)));
  return std::unique_ptr<LeaseKeeper>(new LeaseKeeper(std::move(state)));
}

}  // namespace keel
