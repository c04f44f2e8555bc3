// The retrying call: one client call = a series of attempts, each on one endpoint
// with its own deadline, under the call's deadline; between attempts a full-jitter
// backoff, paid for by the retry budget; each attempt's result feeds the endpoint's
// circuit breaker. All of it is asynchronous (gRPC's callback API; the backoff waits
// on the client's scheduler), so a call holds no thread while it waits.
//
// Adding an RPC (e.g. a Lease call): write a StartRpc for it — a captureless lambda
// that calls the stub's async() method on the given endpoint — choose the CallSpec
// (kind and route), and call StartCall. kv.cc is the model. Streams (Watch,
// KeepAlive) need their own reactor but can reuse the pool, breakers and backoff.
#pragma once

#include <memory>
#include <optional>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "client/client_core.h"
#include "client/endpoint.h"
#include "client/endpoint_pool.h"
#include "client/request_ids.h"
#include "client/retry_policy.h"
#include "grpcpp/grpcpp.h"
#include "keel/kv.h"

namespace keel::client {

// Starts one attempt of an RPC on `endpoint` (e.g. endpoint.kv->async()->Put(...)).
template <typename Req, typename Resp>
using StartRpc = void (*)(Endpoint& endpoint, grpc::ClientContext* context, const Req* request,
                          Resp* response, std::function<void(grpc::Status)> done);

struct CallSpec {
  const char* method = "";  // For errors, stats and on_attempt.
  CallKind kind = CallKind::kRead;
  Route route;
  absl::Duration timeout = absl::ZeroDuration();  // 0: ClientOptions::call_timeout.
  // kWrite calls get an exactly-once request id unless this is false (a read-only
  // Txn: retried freely without one).
  bool with_request_id = true;
};

// The untyped part of a call (call.cc). Deletes itself when finished.
class CallBase {
 public:
  // Runs the call; `done` (via Complete) is called exactly once.
  void Start();

 protected:
  CallBase(ClientCore* core, CallSpec spec) : core_(core), spec_(std::move(spec)) {}
  virtual ~CallBase() = default;

  virtual void SendAttempt(Endpoint& endpoint, grpc::ClientContext* context,
                           std::function<void(grpc::Status)> done) = 0;
  // Hands the result to the caller: OK means the response is valid.
  virtual void Complete(absl::Status status) = 0;

 private:
  void Attempt();
  void OnAttemptDone(const grpc::Status& status);
  // Fails the call with `last` and what was tried (the deadline, the budget, ...).
  void GiveUp(const absl::Status& last, absl::string_view why);
  void Finish(absl::Status status);

  ClientCore* const core_;
  const CallSpec spec_;
  absl::Time start_;
  absl::Time deadline_;
  absl::Time attempt_deadline_;
  absl::Time sent_;
  int attempts_ = 0;
  int retries_ = 0;
  std::optional<RequestId> request_id_;
  std::unique_ptr<grpc::ClientContext> context_;
  std::shared_ptr<Endpoint> endpoint_;  // Of the attempt in flight.
  std::shared_ptr<Endpoint> avoid_;     // The previous attempt failed here.
  absl::Status last_error_;
};

template <typename Req, typename Resp>
class Call final : public CallBase {
 public:
  Call(ClientCore* core, CallSpec spec, Req request, StartRpc<Req, Resp> start, Callback<Resp> done)
      : CallBase(core, std::move(spec)),
        request_(std::move(request)),
        start_(start),
        done_(std::move(done)) {}

 private:
  void SendAttempt(Endpoint& endpoint, grpc::ClientContext* context,
                   std::function<void(grpc::Status)> done) override {
    response_.Clear();
    start_(endpoint, context, &request_, &response_, std::move(done));
  }
  void Complete(absl::Status status) override {
    Callback<Resp> done = std::move(done_);
    if (status.ok()) {
      done(std::move(response_));
    } else {
      done(std::move(status));
    }
  }

  Req request_;
  Resp response_;
  StartRpc<Req, Resp> start_;
  Callback<Resp> done_;
};

template <typename Req, typename Resp>
void StartCall(ClientCore* core, CallSpec spec, Req request, StartRpc<Req, Resp> start,
               Callback<Resp> done) {
  (new Call<Req, Resp>(core, std::move(spec), std::move(request), start, std::move(done)))->Start();
}

// Runs an asynchronous call and waits for it: `start(callback)` must start it.
template <typename Resp, typename Start>
absl::StatusOr<Resp> Await(Start start) {
  absl::Notification finished;
  absl::StatusOr<Resp> result;
  start([&](absl::StatusOr<Resp> r) {
    result = std::move(r);
    finished.Notify();
  });
  finished.WaitForNotification();
  return result;
}

// Completes `done` with `status` at once (bad arguments found before any attempt).
template <typename Resp>
void FailNow(const Callback<Resp>& done, absl::Status status) {
  done(std::move(status));
}

}  // namespace keel::client
