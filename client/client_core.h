// ClientCore: what every call of a keel::Client shares — options, endpoints and
// leader, the scheduler, the retry budget, request ids, the random source, counters —
// and the background refresh of the member list and leader (client/refresh.cc).
// Service areas (kv.cc, cluster.cc, maintenance.cc; later watch, lease) start their
// calls through StartCall (client/call.h) with the core.
//
// Lifetime: every call and refresh in flight holds an "op" (BeginOp/EndOp).
// Shutdown() refuses new ops, cancels scheduled work and waits for the ops to end,
// so no callback runs after it returns. Thread-safety: all methods may be called
// concurrently, except Shutdown (once, not from a client callback).
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <random>

#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "client/endpoint_pool.h"
#include "client/request_ids.h"
#include "client/retry_budget.h"
#include "client/scheduler.h"
#include "keel/client_options.h"
#include "keel/stats.h"

namespace keel::client {

class ClientCore {
 public:
  // `options.endpoints` must already be normalized ("host:port").
  explicit ClientCore(ClientOptions options);
  ~ClientCore();  // Shutdown().
  ClientCore(const ClientCore&) = delete;
  ClientCore& operator=(const ClientCore&) = delete;

  [[nodiscard]] const ClientOptions& options() const { return options_; }
  EndpointPool& pool() { return pool_; }
  Scheduler& scheduler() { return scheduler_; }
  RetryBudget& budget() { return budget_; }
  RequestIdPool& request_ids() { return request_ids_; }
  // A uniform 64-bit draw from the client's one seeded random source.
  [[nodiscard]] uint64_t Random();

  // False once shutting down (then the caller must not start anything).
  [[nodiscard]] bool BeginOp();
  void EndOp();
  [[nodiscard]] bool closing() const { return closing_.load(); }
  void Shutdown();
  // Long-lived streams (watches) hold an op for their whole life; Shutdown runs their
  // closers (which must make them end soon) before it waits for the ops. AddCloser
  // returns an id for RemoveCloser, or 0 (closer not kept) once shutting down.
  [[nodiscard]] uint64_t AddCloser(std::function<void()> closer);
  void RemoveCloser(uint64_t id);

  // Accounting of one attempt on `endpoint`: OnAttemptSent before sending;
  // OnAttemptDone with its result feeds the breaker, the counters and on_attempt.
  void OnAttemptSent(Endpoint& endpoint);
  void OnAttemptDone(Endpoint& endpoint, const char* method, int attempt,
                     const absl::Status& status, absl::Duration latency, bool endpoint_failed);
  void CountCall() { calls_.fetch_add(1, std::memory_order_relaxed); }
  void CountRetry() { retries_.fetch_add(1, std::memory_order_relaxed); }
  void CountRetryDenied() { retries_denied_.fetch_add(1, std::memory_order_relaxed); }
  [[nodiscard]] ClientStats Stats();

  // --- Member list and leader (client/refresh.cc) ---
  // One refresh: Status from every endpoint whose breaker allows (member ids, the
  // leader of the highest term), then MemberList from the leader (or any member that
  // answered) when following membership. `done(OK)` if any member answered. The
  // caller holds an op for it.
  void RunRefresh(std::function<void(absl::Status)> done);
  // Blocking RunRefresh, retried until one succeeds or `timeout` passes.
  [[nodiscard]] absl::Status RefreshBlocking(absl::Duration timeout);
  // A background refresh soon: at most one runs at a time and they start at least
  // kRefreshMinInterval apart, so a burst of errors causes one or two refreshes.
  void RefreshSoon();
  // Refreshes every member_refresh_interval until shutdown.
  void StartPeriodicRefresh();

  static constexpr absl::Duration kRefreshMinInterval = absl::Milliseconds(200);

 private:
  void StartRefreshAt(absl::Time when);
  void SchedulePeriodicRefresh();

  const ClientOptions options_;
  EndpointPool pool_;
  RetryBudget budget_;
  RequestIdPool request_ids_;

  absl::Mutex random_mu_;
  std::mt19937_64 random_ ABSL_GUARDED_BY(random_mu_);

  absl::Mutex closers_mu_;
  std::map<uint64_t, std::function<void()>> closers_ ABSL_GUARDED_BY(closers_mu_);
  uint64_t next_closer_ ABSL_GUARDED_BY(closers_mu_) = 1;
  bool closers_run_ ABSL_GUARDED_BY(closers_mu_) = false;

  absl::Mutex ops_mu_;
  int64_t ops_ ABSL_GUARDED_BY(ops_mu_) = 0;
  std::atomic<bool> closing_{false};

  absl::Mutex refresh_mu_;
  bool refresh_busy_ ABSL_GUARDED_BY(refresh_mu_) = false;
  bool refresh_again_ ABSL_GUARDED_BY(refresh_mu_) = false;
  absl::Time last_refresh_start_ ABSL_GUARDED_BY(refresh_mu_) = absl::InfinitePast();

  std::atomic<uint64_t> calls_{0};
  std::atomic<uint64_t> retries_{0};
  std::atomic<uint64_t> retries_denied_{0};
  std::atomic<uint64_t> refreshes_{0};

  // Last: its thread must stop before the rest is destroyed.
  Scheduler scheduler_;
};

}  // namespace keel::client
