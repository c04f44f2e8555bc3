// RequestIdPool: exactly-once request ids (client id, sequence) for writes.
//
// The server keeps, per client id, only the latest answered sequence and rejects an
// older one (storage/kv_store.h, "Dedup"). Writes of one Client run concurrently on
// many threads, so they cannot share one id with one counter: a later sequence could
// overtake an earlier one in flight. Instead the pool hands out sessions: a session
// is a random 64-bit client id with its next sequence, used by one write at a time
// (all that write's attempts resend the same pair), and returned when the write is
// over; its next write uses the next sequence. Sessions are created on demand, so
// their number is the peak number of concurrent writes.
// A write that gave up with an unknown outcome (deadline) returns its session too:
// if its last attempt still reaches the state machine after the session's next write,
// the server refuses it as an older sequence, so it applies before that write or
// never — at most once either way.
//
// Thread-safety: all methods may be called concurrently (internal mutex).
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "absl/synchronization/mutex.h"

namespace keel::client {

struct RequestId {
  uint64_t client_id = 0;
  uint64_t sequence = 0;
};

class RequestIdPool {
 public:
  // `random` draws new client ids (never 0: the server treats 0 as "no id").
  explicit RequestIdPool(std::function<uint64_t()> random) : random_(std::move(random)) {}

  // A session for one write; Release it when the write is finished (whatever the
  // outcome).
  [[nodiscard]] RequestId Acquire();
  void Release(RequestId id);
  [[nodiscard]] uint64_t sessions_created();

 private:
  std::function<uint64_t()> random_;
  absl::Mutex mu_;
  std::vector<RequestId> idle_ ABSL_GUARDED_BY(mu_);  // Each holds its NEXT sequence.
  uint64_t created_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace keel::client
