// Leases in keel::Client: the result types of the Lease calls and LeaseKeeper, the
// handle of a lease kept alive in the background (Client::LeaseKeepAlive).
//
// What the cluster promises (server/lessor.h): a lease lives until `TTL` seconds after
// its grant or its last acknowledged keep-alive, and then the leader revokes it — its
// keys are deleted on every member at one revision. A keep-alive may go to any
// member (followers forward it to the leader). After a leader change a lease is never
// expired earlier than that promise.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "proto/etcdserverpb/rpc.pb.h"

namespace keel {

using LeaseGrantResponse = etcdserverpb::LeaseGrantResponse;
using LeaseRevokeResponse = etcdserverpb::LeaseRevokeResponse;
using LeaseKeepAliveResponse = etcdserverpb::LeaseKeepAliveResponse;
// TTL: remaining seconds, -1 if the lease does not exist (or expired).
using LeaseTimeToLiveResponse = etcdserverpb::LeaseTimeToLiveResponse;
using LeaseLeasesResponse = etcdserverpb::LeaseLeasesResponse;

struct LeaseGrantOptions {
  // The lease's id; 0: the cluster picks one. A taken id fails with
  // FAILED_PRECONDITION "etcdserver: lease already exists".
  int64_t id = 0;
  absl::Duration timeout = absl::ZeroDuration();  // 0: ClientOptions::call_timeout.
};

namespace client {
struct KeepAliveState;
}  // namespace client

// A lease kept alive in the background: a keep-alive every TTL/3 on the client's
// scheduler (no thread of its own), retried on other members with backoff when one
// fails. The lease is LOST — status() turns non-OK and `on_lost` runs once — when the
// cluster answers that it no longer exists (kNotFound: expired or revoked), or when no
// keep-alive was acknowledged before the deadline the last one promised
// (kDeadlineExceeded: the cluster may have expired it). Then renewing stops.
// Thread-safety: all methods may be called from any thread.
class LeaseKeeper {
 public:
  // Stops renewing (the lease then expires after its TTL unless revoked). Waits for
  // nothing; safe to call after the Client is gone.
  ~LeaseKeeper();
  LeaseKeeper(const LeaseKeeper&) = delete;
  LeaseKeeper& operator=(const LeaseKeeper&) = delete;

  [[nodiscard]] int64_t id() const;
  [[nodiscard]] absl::Status status() const;
  // The latest moment up to which the cluster promised to keep the lease (from the
  // last acknowledged keep-alive: its send time + TTL).
  [[nodiscard]] absl::Time deadline() const;
  [[nodiscard]] int64_t renewals() const;  // Acknowledged keep-alives so far.

 private:
  friend class Client;
  explicit LeaseKeeper(std::shared_ptr<client::KeepAliveState> state) : state_(std::move(state)) {}
  std::shared_ptr<client::KeepAliveState> state_;
};

}  // namespace keel
