#include "client/call.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "client/backoff.h"

namespace keel::client {
namespace {

absl::Status FromGrpc(const grpc::Status& s) {
  return absl::Status(static_cast<absl::StatusCode>(s.error_code()), s.error_message());
}

}  // namespace

void CallBase::Start() {
  if (!core_->BeginOp()) {
    Complete(absl::CancelledError("keel client closed"));
    delete this;
    return;
  }
  core_->CountCall();
  start_ = absl::Now();
  core_->budget().OnCall(start_);
  const absl::Duration timeout =
      spec_.timeout > absl::ZeroDuration() ? spec_.timeout : core_->options().call_timeout;
  deadline_ = start_ + timeout;
  if (spec_.kind == CallKind::kWrite && spec_.with_request_id) {
    request_id_ = core_->request_ids().Acquire();
  }
  Attempt();
}

void CallBase::Attempt() {
  const absl::Time now = absl::Now();
  if (now >= deadline_) return GiveUp(last_error_, "deadline reached");
  absl::Time retry_at = absl::InfiniteFuture();
  std::shared_ptr<Endpoint> endpoint =
      core_->pool().Pick(spec_.route, avoid_.get(), now, &retry_at);
  if (endpoint == nullptr) {
    if (retry_at >= deadline_) {
      return GiveUp(last_error_, "every endpoint's circuit breaker is open");
    }
    // Wait for the first breaker to half-open; no request is sent, so no budget.
    core_->scheduler().RunAt(retry_at, [this](bool cancelled) {
      if (cancelled) return GiveUp(last_error_, "client closed");
      Attempt();
    });
    return;
  }
  ++attempts_;
  endpoint_ = std::move(endpoint);
  context_ = std::make_unique<grpc::ClientContext>();
  const bool single_attempt = spec_.route.kind == Route::Kind::kFixed;
  attempt_deadline_ =
      single_attempt ? deadline_ : std::min(deadline_, now + core_->options().attempt_timeout);
  context_->set_deadline(absl::ToChronoTime(attempt_deadline_));
  if (request_id_.has_value()) {
    context_->AddMetadata("keel-client-id", std::to_string(request_id_->client_id));
    context_->AddMetadata("keel-sequence", std::to_string(request_id_->sequence));
  }
  sent_ = now;
  core_->OnAttemptSent(*endpoint_);
  SendAttempt(*endpoint_, context_.get(), [this](grpc::Status status) { OnAttemptDone(status); });
}

void CallBase::OnAttemptDone(const grpc::Status& grpc_status) {
  const absl::Time now = absl::Now();
  const absl::Status status = FromGrpc(grpc_status);
  const bool attempt_timed_out = attempt_deadline_ < deadline_;
  const AttemptVerdict verdict =
      status.ok() ? AttemptVerdict{} : JudgeAttempt(spec_.kind, status, attempt_timed_out);
  core_->OnAttemptDone(*endpoint_, spec_.method, attempts_, status, now - sent_,
                       verdict.endpoint_failed);
  if (status.ok()) return Finish(absl::OkStatus());
  if (spec_.route.kind == Route::Kind::kFixed) return Finish(status);

  if (verdict.leader_suspect || verdict.endpoint_failed) {
    if (verdict.leader_suspect) core_->pool().SuspectLeader(endpoint_.get());
    core_->RefreshSoon();
  }
  last_error_ = status;
  avoid_ = std::move(endpoint_);
  // Not retryable: the server's answer, unchanged (etcd clients match on its text).
  if (!verdict.retry) return Finish(status);
  if (core_->closing()) return GiveUp(status, "client closed");
  const absl::Duration delay =
      BackoffDelay(core_->options().backoff, retries_, verdict.overloaded, core_->Random());
  if (now + delay >= deadline_) return GiveUp(status, "deadline reached");
  if (!core_->budget().TryRetry(now)) {
    core_->CountRetryDenied();
    return GiveUp(status, "retry budget exhausted");
  }
  core_->CountRetry();
  ++retries_;
  if (delay <= absl::ZeroDuration()) return Attempt();
  core_->scheduler().RunAt(now + delay, [this](bool cancelled) {
    if (cancelled) return GiveUp(last_error_, "client closed");
    Attempt();
  });
}

void CallBase::GiveUp(const absl::Status& last, absl::string_view why) {
  const std::string tried = absl::StrCat(
      "keel client: ", spec_.method, " gave up after ", attempts_, " attempt(s) in ",
      absl::FormatDuration(absl::Trunc(absl::Now() - start_, absl::Milliseconds(1))), ": ", why);
  if (why == "client closed") return Finish(absl::CancelledError(tried));
  if (last.ok()) {
    // No attempt got an answer (none sent, or the deadline passed while waiting).
    return Finish(why == "deadline reached" ? absl::DeadlineExceededError(tried)
                                            : absl::UnavailableError(tried));
  }
  Finish(absl::Status(last.code(), absl::StrCat(last.message(), " (", tried, ")")));
}

void CallBase::Finish(absl::Status status) {
  if (request_id_.has_value()) core_->request_ids().Release(*request_id_);
  context_.reset();
  endpoint_.reset();
  avoid_.reset();
  ClientCore* core = core_;
  Complete(std::move(status));
  delete this;
  core->EndOp();  // Last: once every op ended, the client may be destroyed.
}

}  // namespace keel::client
