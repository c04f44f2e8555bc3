// A distributed lock and a leader election on keel::Client, built the way etcd's Go
// `concurrency` package builds them — an example of the client's lease, txn and range
// calls, not part of the library.
//
// The recipe (both primitives share it):
//  1. A Session grants a lease and keeps it alive in the background. Everything a
//     process holds is a key attached to that lease: if the process dies or loses the
//     cluster, the lease expires and the keys go, which releases what it held.
//  2. To queue, a process creates `<prefix>/<lease id hex>` (a txn: create only if
//     absent). The key's create revision is its place in the queue: the cluster gives
//     every key a unique one, in commit order.
//  3. It holds the lock / leads when no key under the prefix has a lower create
//     revision. Until then it waits for its predecessor (the key with the highest
//     create revision below its own) to be deleted — not for the holder — so a release
//     wakes exactly one waiter (no thundering herd). Waiting polls the predecessor with
//     backoff (keel::Client has no Watch yet; with Watch it would wait for the delete
//     event instead).
//  4. Fencing: the holder's writes are txns guarded by IsOwner() (its key's create
//     revision is unchanged), so a holder whose lease was lost — and whose lock may
//     now be someone else's — cannot write under the lock.
//
// Thread-safety: a Session may be shared; a Mutex or an Election is used by one thread.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "keel/client.h"
#include "keel/txn.h"

namespace keel::examples {

class Session {
 public:
  // Grants a lease of `ttl_s` seconds and keeps it alive.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<Session>> Create(Client* client,
                                                                       int64_t ttl_s);
  // Stops the keep-alive and revokes the lease (which deletes every key held on it).
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  [[nodiscard]] Client* client() const { return client_; }
  [[nodiscard]] int64_t lease() const { return lease_; }
  // OK while the lease is kept alive; once not, what was held may be someone else's.
  [[nodiscard]] absl::Status status() const { return keep_alive_->status(); }

 private:
  Session(Client* client, int64_t lease, std::unique_ptr<LeaseKeeper> keep_alive)
      : client_(client), lease_(lease), keep_alive_(std::move(keep_alive)) {}
  Client* const client_;
  const int64_t lease_;
  std::unique_ptr<LeaseKeeper> keep_alive_;
};

// A place in the queue under `prefix` (steps 2 and 3 above).
class QueueEntry {
 public:
  QueueEntry(Session* session, std::string prefix);
  // Creates the key (or finds it, after a retry) with `value`, then waits until no key
  // under the prefix is older. kDeadlineExceeded after `timeout` (the key is removed);
  // kAborted if the session's lease is lost meanwhile.
  [[nodiscard]] absl::Status Enter(std::string_view value, absl::Duration timeout);
  // Deletes the key (whoever waits behind it goes next).
  [[nodiscard]] absl::Status Leave();
  // True in a txn only while this entry's key exists with the create revision it got.
  [[nodiscard]] Compare Held() const;
  [[nodiscard]] const std::string& key() const { return key_; }
  [[nodiscard]] int64_t revision() const { return revision_; }

 private:
  [[nodiscard]] absl::Status WaitForPredecessors(absl::Time deadline);
  Session* const session_;
  const std::string prefix_;  // Ends with '/'.
  const std::string key_;
  int64_t revision_ = 0;  // 0: not entered.
};

class Mutex {
 public:
  Mutex(Session* session, std::string name) : entry_(session, std::move(name)) {}
  [[nodiscard]] absl::Status Lock(absl::Duration timeout) { return entry_.Enter("", timeout); }
  [[nodiscard]] absl::Status Unlock() { return entry_.Leave(); }
  // The fencing condition for writes under the lock.
  [[nodiscard]] Compare IsOwner() const { return entry_.Held(); }
  [[nodiscard]] const std::string& key() const { return entry_.key(); }
  [[nodiscard]] int64_t revision() const { return entry_.revision(); }

 private:
  QueueEntry entry_;
};

class Election {
 public:
  Election(Session* session, std::string name);
  // Blocks until this process leads, announcing `value`.
  [[nodiscard]] absl::Status Campaign(std::string_view value, absl::Duration timeout);
  // Changes the announced value while leading (kFailedPrecondition if not leading).
  [[nodiscard]] absl::Status Proclaim(std::string_view value);
  [[nodiscard]] absl::Status Resign() { return entry_.Leave(); }
  // The current leader's key and value; kNotFound if nobody leads.
  [[nodiscard]] absl::StatusOr<KeyValue> Leader() const;
  [[nodiscard]] Compare IsLeader() const { return entry_.Held(); }
  [[nodiscard]] int64_t revision() const { return entry_.revision(); }

 private:
  Session* const session_;
  const std::string prefix_;
  QueueEntry entry_;
};

}  // namespace keel::examples
