// Counters of a keel::Client, for metrics, debugging and tests (Client::Stats()).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace keel {

enum class BreakerState { kClosed, kOpen, kHalfOpen };

struct EndpointStats {
  std::string address;     // "host:port"
  uint64_t member_id = 0;  // 0 until the member answered Status (or the member list).
  bool is_leader = false;  // The client's current belief.
  BreakerState breaker = BreakerState::kClosed;
  uint64_t attempts = 0;        // RPCs sent to it (calls, probes and refreshes).
  uint64_t failures = 0;        // Of those, connection errors and attempt timeouts.
  uint64_t breaker_opened = 0;  // Times its breaker opened.
};

struct ClientStats {
  std::vector<EndpointStats> endpoints;  // Current endpoints, in address order.
  uint64_t calls = 0;                    // Calls started.
  uint64_t retries = 0;                  // Attempts after a call's first.
  uint64_t retries_denied = 0;           // Retries the retry budget refused.
  uint64_t refreshes = 0;                // Member list / leader refreshes run.
  uint64_t request_id_sessions = 0;      // Exactly-once sessions created (see client.h).
};

}  // namespace keel
