#include "server/lease_manager.h"

#include <cstdio>

#include "absl/strings/str_cat.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "server/errors.h"
#include "server/server_config.h"

namespace keel::server {
namespace {

absl::Status FromGrpc(const grpc::Status& s) {
  return absl::Status(static_cast<absl::StatusCode>(s.error_code()), s.error_message());
}

// The status a proposal's outcome amounts to.
absl::Status Outcome(const absl::StatusOr<storage::ApplyResult>& result) {
  return result.ok() ? result->status : result.status();
}

}  // namespace

LeaseManager::LeaseManager(LeaseManagerOptions options, storage::KvStore* kv,
                           MemberDirectory* members)
    : options_(std::move(options)), kv_(kv), members_(members), lessor_(options_.lessor) {}

LeaseManager::~LeaseManager() { Stop(); }

void LeaseManager::Start() {
  thread_ = std::thread([this] { Loop(); });
}

void LeaseManager::Stop() {
  std::deque<Waiting> waiting;
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
    waiting.swap(waiting_);
    for (grpc::ClientContext* context : forwards_) context->TryCancel();
  }
  cv_.notify_all();
  for (auto& w : waiting) w.fail(ErrStopped());
  if (thread_.joinable()) thread_.join();
  // Continuations posted too late for the thread still answer their callers (the node
  // is stopped, so they fail fast).
  std::deque<std::function<void()>> posted;
  {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [this] { return forwards_.empty(); });
    posted.swap(posted_);
  }
  for (auto& fn : posted) fn();
  lessor_.Demote();
}

void LeaseManager::Post(std::function<void()> fn) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    posted_.push_back(std::move(fn));
  }
  cv_.notify_all();
}

absl::Status LeaseManager::Wait(Waiting w) {
  std::lock_guard<std::mutex> lock(mu_);
  if (stopping_) return ErrStopped();
  if (waiting_.size() >= options_.waiting_max) return ErrTooManyRequests();
  waiting_.push_back(std::move(w));
  return absl::OkStatus();
}

void LeaseManager::Loop() {
  absl::Time next_tick = absl::Now();
  for (;;) {
    std::deque<std::function<void()>> posted;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait_until(lock, absl::ToChronoTime(next_tick),
                     [this] { return stopping_ || !posted_.empty(); });
      if (stopping_) return;
      posted.swap(posted_);
    }
    for (auto& fn : posted) fn();
    const absl::Time now = absl::Now();
    if (now >= next_tick) {
      next_tick = now + options_.tick;
      Tick();
    }
  }
}

void LeaseManager::Tick() {
  const NodeStatus status = node_->Status();
  if (status.is_leader) {
    if (lessor_.primary_term() != status.term) MaybePromote(status);
  } else if (lessor_.primary()) {
    lessor_.Demote();
  }
  if (lessor_.primary()) {
    ProposeRevokes();
    ProposeCheckpoints();
  }
  std::deque<Waiting> waiting;
  {
    std::lock_guard<std::mutex> lock(mu_);
    waiting.swap(waiting_);
  }
  const absl::Time now = absl::Now();
  for (auto& w : waiting) {
    if (now < w.deadline) {
      w.retry();
    } else {
      w.fail(node_->leader_id() == 0 ? ErrNoLeader() : ErrTimeout());
    }
  }
}

void LeaseManager::MaybePromote(const NodeStatus& status) {
  const uint64_t term = status.term;
  bool ready = false, ask = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (barrier_done_term_ == term) {
      ready = true;
    } else if (barrier_term_ != term) {
      barrier_term_ = term;
      ask = true;
    }
  }
  if (ready) {
    absl::Status promoted = lessor_.Promote(term, [this] { return kv_->ListLeases(); });
    if (!promoted.ok()) {
      std::fprintf(stderr, "keeld: lessor: cannot load leases: %s\n", promoted.ToString().c_str());
    }
    return;
  }
  if (lessor_.primary()) lessor_.Demote();  // Primary of an older term.
  if (!ask) return;                         // Barrier in flight.
  // Everything committed before this term must be applied (and so seen by OnApplied or
  // by the load) before the lessor counts down.
  node_->ReadBarrier(absl::Now() + options_.request_timeout, [this, term](absl::Status s) {
    std::lock_guard<std::mutex> lock(mu_);
    if (s.ok()) {
      barrier_done_term_ = term;
    } else if (barrier_term_ == term) {
      barrier_term_ = 0;  // Ask again at the next tick.
    }
  });
}

void LeaseManager::ProposeRevokes() {
  const uint64_t term = lessor_.primary_term();
  if (term == 0) return;
  for (int64_t id : lessor_.TakeExpired(options_.revokes_per_tick)) {
    internalpb::Request request;
    request.mutable_lease_revoke()->set_id(id);
    node_->Propose(
        std::move(request), absl::Now() + options_.request_timeout,
        [this, id](absl::StatusOr<storage::ApplyResult> result) {
          const absl::Status s = Outcome(result);
          if (s.ok() || absl::IsNotFound(s)) {
            lessor_.OnRevoked(id);  // NotFound: a client revoked it first.
          } else {
            lessor_.RevokeFailed(id);
          }
        },
        term);
  }
}

void LeaseManager::ProposeCheckpoints() {
  std::lock_guard<std::mutex> order(propose_mu_);
  const uint64_t term = lessor_.primary_term();
  if (term == 0) return;
  std::vector<etcdserverpb::LeaseCheckpoint> checkpoints = lessor_.TakeCheckpoints();
  for (size_t i = 0; i < checkpoints.size(); i += options_.checkpoints_per_entry) {
    internalpb::Request request;
    const size_t end = std::min(checkpoints.size(), i + options_.checkpoints_per_entry);
    for (size_t j = i; j < end; ++j) {
      *request.mutable_lease_checkpoint()->add_checkpoints() = std::move(checkpoints[j]);
    }
    // A lost checkpoint only leaves an older (longer) remaining TTL recorded.
    node_->Propose(
        std::move(request), absl::Now() + options_.request_timeout,
        [](absl::StatusOr<storage::ApplyResult>) {}, term);
  }
}

void LeaseManager::OnApplied(const std::vector<raftpb::Entry>& entries,
                             const std::vector<storage::ApplyResult>& results) {
  if (!lessor_.primary()) return;
  size_t e = 0;
  for (const storage::ApplyResult& r : results) {
    if (r.duplicate || !r.status.ok()) continue;
    switch (r.response.response_case()) {
      case internalpb::Response::kLeaseGrant:
        lessor_.OnGranted(r.response.lease_grant().id(), r.response.lease_grant().ttl());
        break;
      case internalpb::Response::kLeaseRevoke: {
        // The response does not name the lease: read it from the entry.
        while (e < entries.size() && entries[e].index() < r.index) ++e;
        internalpb::Request request;
        if (e < entries.size() && entries[e].index() == r.index &&
            request.ParseFromString(entries[e].data())) {
          lessor_.OnRevoked(request.lease_revoke().id());
        }
        break;
      }
      default:
        break;
    }
  }
}

LeaseManager::Route LeaseManager::RouteCall(bool forwarded, std::string* leader_address) {
  if (lessor_.primary()) return Route::kLocal;
  const uint64_t leader = node_->leader_id();
  // No leader yet, or this member leads but its lessor is not promoted yet.
  if (leader == 0 || leader == options_.member_id) return Route::kWait;
  if (forwarded) return Route::kRefuse;
  for (const MemberInfo& m : members_->List()) {
    if (m.id != leader || m.peer_urls.empty()) continue;
    absl::StatusOr<std::string> address = UrlToAddress(m.peer_urls.front());
    if (!address.ok()) return Route::kWait;
    *leader_address = *address;
    return Route::kForward;
  }
  return Route::kWait;  // A leader this member does not know yet.
}

internalpb::LeaseForward::Stub* LeaseManager::ForwardStub(const std::string& address) {
  std::lock_guard<std::mutex> lock(mu_);
  auto& stub = stubs_[address];
  if (!stub) {
    grpc::ChannelArguments args;
    // A restarted leader must be reachable again quickly.
    args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 50);
    args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 50);
    args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1000);
    stub = internalpb::LeaseForward::NewStub(
        grpc::CreateCustomChannel(address, grpc::InsecureChannelCredentials(), args));
  }
  return stub.get();
}

bool LeaseManager::BeginForward(grpc::ClientContext* context) {
  std::lock_guard<std::mutex> lock(mu_);
  if (stopping_) return false;
  forwards_.insert(context);
  return true;
}

void LeaseManager::EndForward(grpc::ClientContext* context) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    forwards_.erase(context);
  }
  cv_.notify_all();
}

// ---------------------------------------------------------------- routing

template <typename Callback>
void LeaseManager::WaitThen(absl::Time deadline, std::function<void()> retry, Callback done) {
  absl::Status queued =
      Wait(Waiting{deadline, std::move(retry), [done](absl::Status s) { done(s); }});
  if (!queued.ok()) done(queued);
}

template <typename Req, typename Resp>
void LeaseManager::Forward(const std::string& address, const Req& request, absl::Time deadline,
                           ForwardMethod<Req, Resp> method,
                           std::function<void(absl::StatusOr<Resp>)> done,
                           std::function<void()> retry) {
  struct Call {
    grpc::ClientContext context;
    Req request;
    Resp response;
  };
  auto* call = new Call;
  call->context.set_deadline(absl::ToChronoTime(deadline));
  call->context.AddMetadata("keel-cluster-id", absl::StrCat(options_.cluster_id));
  call->request = request;
  if (!BeginForward(&call->context)) {
    delete call;
    done(ErrStopped());
    return;
  }
  method(
      ForwardStub(address), &call->context, &call->request, &call->response,
      [this, call, deadline, done, retry](grpc::Status s) {
        if (s.ok()) {
          done(std::move(call->response));
        } else if (s.error_code() == grpc::StatusCode::UNAVAILABLE && absl::Now() < deadline) {
          // The leader changed or is down: ask again once there is a (new) leader.
          WaitThen(deadline, retry, done);
        } else {
          done(s.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED ? ErrTimeout() : FromGrpc(s));
        }
        EndForward(&call->context);  // Last use of `this`: Stop may return after it.
        delete call;
      });
}

// ---------------------------------------------------------------- keep-alive

void LeaseManager::Renew(int64_t id, absl::Time deadline, bool forwarded, RenewCallback done) {
  std::string address;
  switch (RouteCall(forwarded, &address)) {
    case Route::kLocal:
      RenewLocal(id, deadline, /*after_barrier=*/false, std::move(done));
      return;
    case Route::kRefuse:
      done(ErrNotLeader());
      return;
    case Route::kWait:
      WaitThen(
          deadline, [this, id, deadline, forwarded, done] { Renew(id, deadline, forwarded, done); },
          done);
      return;
    case Route::kForward:
      break;
  }
  etcdserverpb::LeaseKeepAliveRequest request;
  request.set_id(id);
  Forward<etcdserverpb::LeaseKeepAliveRequest, etcdserverpb::LeaseKeepAliveResponse>(
      address, request, deadline,
      [](internalpb::LeaseForward::Stub* stub, grpc::ClientContext* context,
         const etcdserverpb::LeaseKeepAliveRequest* req, etcdserverpb::LeaseKeepAliveResponse* resp,
         std::function<void(grpc::Status)> cb) {
        stub->async()->Renew(context, req, resp, std::move(cb));
      },
      [done](absl::StatusOr<etcdserverpb::LeaseKeepAliveResponse> resp) {
        if (!resp.ok()) return done(resp.status());
        done(resp->ttl());
      },
      [this, id, deadline, done] { Renew(id, deadline, false, done); });
}

void LeaseManager::RenewLocal(int64_t id, absl::Time deadline, bool after_barrier,
                              RenewCallback done) {
  Lessor::RenewResult r;
  {
    std::lock_guard<std::mutex> order(propose_mu_);
    const uint64_t term = lessor_.primary_term();
    r = lessor_.Renew(id);
    if (r.outcome == Lessor::RenewOutcome::kRenewed && r.clear_checkpoint) {
      if (term == 0) {
        r.outcome = Lessor::RenewOutcome::kNotPrimary;  // Demoted in between.
      } else {
        // The recorded remaining TTL would let a new leader expire the lease before the
        // deadline this renewal promises: clear it first (see lessor.h).
        internalpb::Request request;
        auto* cp = request.mutable_lease_checkpoint()->add_checkpoints();
        cp->set_id(id);
        cp->set_remaining_ttl(0);
        const int64_t ttl_s = r.ttl_s;
        node_->Propose(
            std::move(request), deadline,
            [this, id, ttl_s, deadline, done](absl::StatusOr<storage::ApplyResult> result) {
              const absl::Status s = Outcome(result);
              if (s.ok()) return done(ttl_s);
              lessor_.RestoreCheckpointed(id);
              if (!absl::IsUnavailable(s)) return done(s);
              WaitThen(
                  deadline, [this, id, deadline, done] { Renew(id, deadline, false, done); }, done);
            },
            term);
        return;
      }
    }
  }
  switch (r.outcome) {
    case Lessor::RenewOutcome::kRenewed:
      done(r.ttl_s);
      return;
    case Lessor::RenewOutcome::kExpired:
      done(int64_t{0});
      return;
    case Lessor::RenewOutcome::kUnknown:
      if (after_barrier) {
        done(int64_t{0});
        return;
      }
      // Perhaps granted through another member and not applied here yet: once a read
      // barrier passed, every grant acknowledged before this call is applied.
      node_->ReadBarrier(deadline, [this, id, deadline, done](absl::Status s) {
        if (!s.ok()) return done(s);
        Post([this, id, deadline, done] { RenewLocal(id, deadline, true, done); });
      });
      return;
    case Lessor::RenewOutcome::kNotPrimary:  // Demoted meanwhile: route again.
      WaitThen(
          deadline, [this, id, deadline, done] { Renew(id, deadline, false, done); }, done);
      return;
  }
}

// ---------------------------------------------------------------- time-to-live

void LeaseManager::TimeToLive(const etcdserverpb::LeaseTimeToLiveRequest& request,
                              absl::Time deadline, bool forwarded, TimeToLiveCallback done) {
  std::string address;
  switch (RouteCall(forwarded, &address)) {
    case Route::kLocal:
      TimeToLiveLocal(request, deadline, std::move(done));
      return;
    case Route::kRefuse:
      done(ErrNotLeader());
      return;
    case Route::kWait:
      WaitThen(
          deadline,
          [this, request, deadline, forwarded, done] {
            TimeToLive(request, deadline, forwarded, done);
          },
          done);
      return;
    case Route::kForward:
      break;
  }
  Forward<etcdserverpb::LeaseTimeToLiveRequest, etcdserverpb::LeaseTimeToLiveResponse>(
      address, request, deadline,
      [](internalpb::LeaseForward::Stub* stub, grpc::ClientContext* context,
         const etcdserverpb::LeaseTimeToLiveRequest* req,
         etcdserverpb::LeaseTimeToLiveResponse* resp, std::function<void(grpc::Status)> cb) {
        stub->async()->TimeToLive(context, req, resp, std::move(cb));
      },
      done, [this, request, deadline, done] { TimeToLive(request, deadline, false, done); });
}

void LeaseManager::TimeToLiveLocal(const etcdserverpb::LeaseTimeToLiveRequest& request,
                                   absl::Time deadline, TimeToLiveCallback done) {
  // The barrier makes the answer linearizable: a lease granted or revoked before this
  // call is applied (and known to the lessor) once it passes.
  node_->ReadBarrier(deadline, [this, request, deadline, done](absl::Status s) {
    if (!s.ok()) return done(s);
    Post([this, request, deadline, done] {
      absl::StatusOr<Lessor::TimeToLiveResult> live = lessor_.TimeToLive(request.id());
      if (!live.ok()) {  // Demoted meanwhile: route again.
        TimeToLive(request, deadline, /*forwarded=*/false, done);
        return;
      }
      etcdserverpb::LeaseTimeToLiveResponse response;
      response.set_id(request.id());
      response.set_ttl(-1);
      if (live->found) {
        absl::StatusOr<etcdserverpb::LeaseTimeToLiveResponse> stored =
            kv_->LeaseTimeToLive(request);
        if (stored.ok()) {
          response = std::move(*stored);
          response.set_ttl(live->remaining_s);
          response.set_grantedttl(live->granted_s);
        } else if (!absl::IsNotFound(stored.status())) {
          done(stored.status());
          return;
        }
      }
      done(std::move(response));
    });
  });
}

}  // namespace keel::server
