// EndpointPool: the client's endpoints, which one leads, and the routing of attempts.
//
// Routing: a leader-routed attempt goes to the leader if known and its breaker allows,
// else to any member (followers forward writes and serve linearizable reads through
// the leader); an "any" attempt goes round-robin over the members whose breaker
// allows, avoiding the endpoint the call's previous attempt failed on.
// Membership: ApplyMembers() replaces the set with the member list's members,
// keeping each member's existing endpoint (and its breaker and counters).
//
// Thread-safety: all methods may be called concurrently (internal mutex); endpoints
// are handed out as shared_ptr and stay valid after they leave the pool.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "client/endpoint.h"
#include "keel/client_options.h"
#include "proto/etcdserverpb/rpc.pb.h"

namespace keel::client {

struct Route {
  enum class Kind { kLeader, kAny, kFixed };
  Kind kind = Kind::kLeader;
  std::string address;  // kFixed only.

  static Route Leader() { return Route{Kind::kLeader, {}}; }
  static Route Any() { return Route{Kind::kAny, {}}; }
  static Route Fixed(std::string address) { return Route{Kind::kFixed, std::move(address)}; }
};

class EndpointPool {
 public:
  explicit EndpointPool(const CircuitBreakerOptions& breaker_options)
      : breaker_options_(breaker_options) {}

  // Adds an endpoint ("host:port", already normalized) unless present.
  void Add(const std::string& address);

  // The endpoint for the next attempt on `route`, with its breaker's permission
  // taken (the caller must report the attempt's outcome to the breaker). nullptr
  // when every breaker is open: then `retry_at` is when the first one half-opens.
  // kFixed routes ignore breakers and return the pool's endpoint for the address, or
  // a new one outside the pool.
  [[nodiscard]] std::shared_ptr<Endpoint> Pick(const Route& route, const Endpoint* avoid,
                                               absl::Time now, absl::Time* retry_at);

  [[nodiscard]] std::vector<std::shared_ptr<Endpoint>> All() const;
  [[nodiscard]] std::shared_ptr<Endpoint> leader() const;
  // The endpoint of member `member_id` becomes the leader (0 or unknown: none).
  void SetLeader(uint64_t member_id);
  // `endpoint` failed in a way that suggests it no longer leads: forget it as leader.
  void SuspectLeader(const Endpoint* endpoint);
  // Follows the member list (see above). An empty list changes nothing.
  void ApplyMembers(const etcdserverpb::MemberListResponse& members);

 private:
  std::shared_ptr<Endpoint> PickAnyLocked(const Endpoint* avoid, absl::Time now,
                                          absl::Time* retry_at) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const CircuitBreakerOptions breaker_options_;
  mutable absl::Mutex mu_;
  std::vector<std::shared_ptr<Endpoint>> endpoints_ ABSL_GUARDED_BY(mu_);  // By address.
  std::shared_ptr<Endpoint> leader_ ABSL_GUARDED_BY(mu_);
  uint64_t next_ ABSL_GUARDED_BY(mu_) = 0;  // Round-robin position.
};

}  // namespace keel::client
