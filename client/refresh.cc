// ClientCore's refresh of the member list and the leader.
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/notification.h"
#include "client/client_core.h"
#include "client/retry_policy.h"

namespace keel::client {
namespace {

absl::Status FromGrpc(const grpc::Status& s) {
  return absl::Status(static_cast<absl::StatusCode>(s.error_code()), s.error_message());
}

// One refresh in flight: the Status fan-out's answers, then the MemberList call.
struct Refresh {
  ClientCore* core;
  std::function<void(absl::Status)> done;
  absl::Mutex mu;
  int pending ABSL_GUARDED_BY(mu) = 0;
  uint64_t leader_id ABSL_GUARDED_BY(mu) = 0;
  uint64_t leader_term ABSL_GUARDED_BY(mu) = 0;
  std::vector<std::shared_ptr<Endpoint>> answered ABSL_GUARDED_BY(mu);
  std::vector<std::string> errors ABSL_GUARDED_BY(mu);
};

struct StatusProbe {
  std::shared_ptr<Refresh> refresh;
  std::shared_ptr<Endpoint> endpoint;
  grpc::ClientContext context;
  etcdserverpb::StatusRequest request;
  etcdserverpb::StatusResponse response;
  absl::Time sent;
};

struct MemberListCall {
  std::shared_ptr<Refresh> refresh;
  std::shared_ptr<Endpoint> endpoint;
  grpc::ClientContext context;
  etcdserverpb::MemberListRequest request;
  etcdserverpb::MemberListResponse response;
  absl::Time sent;
};

void FinishRefresh(const std::shared_ptr<Refresh>& r, uint64_t leader_id, absl::Status status) {
  r->core->pool().SetLeader(leader_id);
  r->done(std::move(status));
}

// Phase 2: all Status answers are in.
void AskMembers(const std::shared_ptr<Refresh>& r) {
  uint64_t leader_id = 0;
  std::shared_ptr<Endpoint> target;
  std::string errors;
  {
    absl::MutexLock lock(&r->mu);
    leader_id = r->leader_id;
    errors = absl::StrJoin(r->errors, "; ");
    for (const auto& e : r->answered) {
      if (target == nullptr || (leader_id != 0 && e->member_id.load() == leader_id)) target = e;
    }
  }
  if (target == nullptr) {
    r->done(absl::UnavailableError(absl::StrCat("no member answered: ", errors)));
    return;
  }
  ClientCore* core = r->core;
  if (!core->options().follow_membership) return FinishRefresh(r, leader_id, absl::OkStatus());
  auto* call = new MemberListCall;
  call->refresh = r;
  call->endpoint = target;
  call->sent = absl::Now();
  call->context.set_deadline(absl::ToChronoTime(call->sent + core->options().attempt_timeout));
  core->OnAttemptSent(*target);
  target->cluster->async()->MemberList(
      &call->context, &call->request, &call->response, [call, leader_id](grpc::Status gs) {
        std::unique_ptr<MemberListCall> owned(call);
        ClientCore* core = call->refresh->core;
        const absl::Status s = FromGrpc(gs);
        core->OnAttemptDone(*call->endpoint, "MemberList", 1, s, absl::Now() - call->sent,
                            !s.ok() && JudgeAttempt(CallKind::kRead, s, true).endpoint_failed);
        // The member list is an improvement, not a requirement: the Status answers
        // already tell the leader.
        if (s.ok()) core->pool().ApplyMembers(call->response);
        FinishRefresh(call->refresh, leader_id, absl::OkStatus());
      });
}

}  // namespace

void ClientCore::RunRefresh(std::function<void(absl::Status)> done) {
  refreshes_.fetch_add(1, std::memory_order_relaxed);
  auto r = std::make_shared<Refresh>();
  r->core = this;
  r->done = std::move(done);
  const absl::Time now = absl::Now();
  std::vector<std::shared_ptr<Endpoint>> targets;
  for (const auto& e : pool_.All()) {
    if (e->breaker.Allow(now)) targets.push_back(e);
  }
  if (targets.empty()) {
    r->done(absl::UnavailableError("every endpoint's circuit breaker is open"));
    return;
  }
  {
    absl::MutexLock lock(&r->mu);
    r->pending = static_cast<int>(targets.size());
  }
  for (const auto& e : targets) {
    auto* probe = new StatusProbe;
    probe->refresh = r;
    probe->endpoint = e;
    probe->sent = now;
    probe->context.set_deadline(absl::ToChronoTime(now + options_.attempt_timeout));
    OnAttemptSent(*e);
    e->maintenance->async()->Status(
        &probe->context, &probe->request, &probe->response, [probe](grpc::Status gs) {
          std::unique_ptr<StatusProbe> owned(probe);
          Refresh& r = *probe->refresh;
          const absl::Status s = FromGrpc(gs);
          r.core->OnAttemptDone(*probe->endpoint, "Status", 1, s, absl::Now() - probe->sent,
                                !s.ok() && JudgeAttempt(CallKind::kRead, s, true).endpoint_failed);
          bool last = false;
          {
            absl::MutexLock lock(&r.mu);
            if (s.ok()) {
              probe->endpoint->member_id.store(probe->response.header().member_id());
              r.answered.push_back(probe->endpoint);
              const uint64_t term = probe->response.raftterm();
              if (probe->response.leader() != 0 && term >= r.leader_term) {
                r.leader_term = term;
                r.leader_id = probe->response.leader();
              }
            } else {
              r.errors.push_back(absl::StrCat(probe->endpoint->address, ": ", s.message()));
            }
            last = --r.pending == 0;
          }
          if (last) AskMembers(probe->refresh);
        });
  }
}

absl::Status ClientCore::RefreshBlocking(absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  absl::Status last;
  while (true) {
    if (!BeginOp()) return absl::CancelledError("keel client closed");
    absl::Notification finished;
    RunRefresh([&](absl::Status s) {
      last = std::move(s);
      finished.Notify();
    });
    finished.WaitForNotification();
    EndOp();
    if (last.ok() || absl::Now() + kRefreshMinInterval >= deadline) return last;
    // Members may still be starting: try again shortly (breakers pace the probes).
    absl::SleepFor(kRefreshMinInterval);
  }
}

void ClientCore::RefreshSoon() {
  absl::Time at;
  {
    absl::MutexLock lock(&refresh_mu_);
    if (refresh_busy_) {
      refresh_again_ = true;
      return;
    }
    refresh_busy_ = true;
    at = std::max(absl::Now(), last_refresh_start_ + kRefreshMinInterval);
  }
  StartRefreshAt(at);
}

void ClientCore::StartRefreshAt(absl::Time when) {
  auto not_busy = [this] {
    absl::MutexLock lock(&refresh_mu_);
    refresh_busy_ = false;
    refresh_again_ = false;
  };
  if (!BeginOp()) return not_busy();
  scheduler_.RunAt(when, [this, not_busy](bool cancelled) {
    if (cancelled) {
      not_busy();
      return EndOp();
    }
    {
      absl::MutexLock lock(&refresh_mu_);
      last_refresh_start_ = absl::Now();
    }
    RunRefresh([this](absl::Status) {
      bool again = false;
      {
        absl::MutexLock lock(&refresh_mu_);
        again = refresh_again_;
        refresh_again_ = false;
        if (!again) refresh_busy_ = false;
      }
      if (again) StartRefreshAt(absl::Now() + kRefreshMinInterval);
      EndOp();
    });
  });
}

void ClientCore::StartPeriodicRefresh() { SchedulePeriodicRefresh(); }

void ClientCore::SchedulePeriodicRefresh() {
  if (options_.member_refresh_interval <= absl::ZeroDuration() || !BeginOp()) return;
  scheduler_.RunAt(absl::Now() + options_.member_refresh_interval, [this](bool cancelled) {
    if (!cancelled) {
      RefreshSoon();
      SchedulePeriodicRefresh();
    }
    EndOp();
  });
}

}  // namespace keel::client
