// keel::Client — the embedded C++ client of a keel cluster (etcd v3 API).
//
//   keel::ClientOptions options;
//   options.endpoints = {"127.0.0.1:2379", "127.0.0.1:22379", "127.0.0.1:32379"};
//   absl::StatusOr<std::unique_ptr<keel::Client>> client = keel::Client::Connect(options);
//   (*client)->Put("greeting", "hello");
//   absl::StatusOr<keel::RangeResponse> r = (*client)->Get("greeting");
//
// Routing. The client keeps the member list (refreshed in the background and after
// errors) and the current leader (from Maintenance.Status). Writes, linearizable reads
// and txns go to the leader; serializable reads are spread over all members. If the
// leader is unknown or unreachable, any member takes the call (followers forward to
// the leader).
//
// Deadlines and retries. Every call has a deadline (CallOptions / the op options'
// `timeout`, default ClientOptions::call_timeout) covering all its attempts; each
// attempt has its own, shorter attempt_timeout. Retries back off exponentially with
// full jitter, within a retry budget, and skip endpoints whose circuit breaker is
// open (client_options.h). Which errors are retried:
//   UNAVAILABLE         yes (another member, after backoff; the leader is refreshed);
//   RESOURCE_EXHAUSTED  yes after a longer backoff, except "database space exceeded";
//   DEADLINE_EXCEEDED   of an attempt: reads yes; writes yes, with the same request id;
//   anything else       never (INVALID_ARGUMENT, FAILED_PRECONDITION, OUT_OF_RANGE...):
//                       the error is returned exactly as the server sent it.
// A call that gives up returns its last error with what was tried appended.
//
// Exactly-once writes. Every Put, Delete and writing Txn carries a request id
// (client id, sequence) as gRPC metadata (`keel-client-id`, `keel-sequence`); a retry
// — after a timeout, a lost connection or a leader failover — resends the SAME id,
// and the server's state machine answers a duplicate with its first result instead
// of applying it again. So a write that timed out can be retried safely: it applies
// at most once, and once if any attempt reached a quorum. etcd's own clients cannot
// do this: they either do not retry a write whose outcome is unknown or retry it
// and may apply it twice.
// The server keeps one session per client id and answers only its latest sequence,
// so ids come from a pool of sessions: each session (its own random 64-bit client
// id) carries at most one write at a time, with increasing sequences; concurrent
// writes use different sessions. The pool grows to the peak number of concurrent
// writes (ClientStats::request_id_sessions).
// Compact carries no id (it is idempotent in effect); it is retried only when the
// server surely did not apply it ("no leader", "not leader", "too many requests").
//
// Threads. A Client is thread-safe; share one between all threads. Synchronous
// calls block the calling thread; the *Async calls return at once and call `done`
// later (keel/kv.h, Callback), using gRPC's callback API — no thread per call.
// Destroying the Client fails calls still waiting for a retry with CANCELLED and
// waits until every callback has returned.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "keel/client_options.h"
#include "keel/kv.h"
#include "keel/lease.h"
#include "keel/stats.h"
#include "keel/txn.h"
#include "keel/watch.h"

namespace keel {
namespace client {
class ClientCore;
}  // namespace client

class Client {
 public:
  // Connects to `options.endpoints`: waits (up to connect_timeout) until at least one
  // member answers, learns the member list and the leader. Errors: kInvalidArgument
  // for bad options, kUnavailable if no member answered (with each one's error).
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<Client>> Connect(ClientOptions options);
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // --- KV (client/kv.cc) ---
  // The key, or the range the options select (RangeOptions: prefix, from_key, ...).
  [[nodiscard]] absl::StatusOr<RangeResponse> Get(std::string_view key,
                                                  const RangeOptions& options = {});
  // [key, range_end).
  [[nodiscard]] absl::StatusOr<RangeResponse> Range(std::string_view key,
                                                    std::string_view range_end,
                                                    RangeOptions options = {});
  [[nodiscard]] absl::StatusOr<PutResponse> Put(std::string_view key, std::string_view value,
                                                const PutOptions& options = {});
  // Deletes the key, or the range the options select.
  [[nodiscard]] absl::StatusOr<DeleteResponse> Delete(std::string_view key,
                                                      const DeleteOptions& options = {});
  [[nodiscard]] absl::StatusOr<TxnResponse> Txn(const keel::Txn& txn,
                                                const CallOptions& options = {});
  // Drops history below `revision` (etcd's compaction). `physical`: wait until the
  // space is reclaimed.
  [[nodiscard]] absl::StatusOr<CompactResponse> Compact(int64_t revision, bool physical = false,
                                                        const CallOptions& options = {});

  void GetAsync(std::string_view key, const RangeOptions& options, Callback<RangeResponse> done);
  void PutAsync(std::string_view key, std::string_view value, const PutOptions& options,
                Callback<PutResponse> done);
  void DeleteAsync(std::string_view key, const DeleteOptions& options,
                   Callback<DeleteResponse> done);
  void TxnAsync(const keel::Txn& txn, const CallOptions& options, Callback<TxnResponse> done);
  void CompactAsync(int64_t revision, bool physical, const CallOptions& options,
                    Callback<CompactResponse> done);

  // --- Lease (client/lease.cc; keel/lease.h) ---
  // Grants a lease of `ttl_s` seconds (raised to the cluster's minimum, 1.5 election
  // timeouts). Exactly-once like a Put: a retried grant cannot create two leases.
  [[nodiscard]] absl::StatusOr<LeaseGrantResponse> LeaseGrant(
      int64_t ttl_s, const LeaseGrantOptions& options = {});
  // Revokes the lease and deletes its keys (one revision). kNotFound if it is gone.
  [[nodiscard]] absl::StatusOr<LeaseRevokeResponse> LeaseRevoke(int64_t id,
                                                                const CallOptions& options = {});
  // One keep-alive: the answer's TTL is the granted TTL, or 0 if the lease is gone.
  [[nodiscard]] absl::StatusOr<LeaseKeepAliveResponse> LeaseKeepAliveOnce(
      int64_t id, const CallOptions& options = {});
  // The leader's live remaining TTL (-1: gone), and the attached keys if `keys`.
  [[nodiscard]] absl::StatusOr<LeaseTimeToLiveResponse> LeaseTimeToLive(
      int64_t id, bool keys = false, const CallOptions& options = {});
  [[nodiscard]] absl::StatusOr<LeaseLeasesResponse> LeaseLeases(const CallOptions& options = {});
  // Keeps lease `id` alive in the background until the handle is destroyed or the
  // lease is lost (keel/lease.h); `on_lost` (optional) is called once, on a client
  // thread, with the reason. The first keep-alive is sent before this returns: an
  // error (or kNotFound for a lease that is gone) means nothing is kept alive.
  [[nodiscard]] absl::StatusOr<std::unique_ptr<LeaseKeeper>> LeaseKeepAlive(
      int64_t id, std::function<void(absl::Status)> on_lost = nullptr);

  void LeaseGrantAsync(int64_t ttl_s, const LeaseGrantOptions& options,
                       Callback<LeaseGrantResponse> done);
  void LeaseRevokeAsync(int64_t id, const CallOptions& options, Callback<LeaseRevokeResponse> done);
  void LeaseKeepAliveOnceAsync(int64_t id, const CallOptions& options,
                               Callback<LeaseKeepAliveResponse> done);
  void LeaseTimeToLiveAsync(int64_t id, bool keys, const CallOptions& options,
                            Callback<LeaseTimeToLiveResponse> done);
  void LeaseLeasesAsync(const CallOptions& options, Callback<LeaseLeasesResponse> done);

  // --- Watch (client/watch.cc; keel/watch.h) ---
  // Watches `key` (or the range `options` selects): `callback` gets every batch of
  // events in order, exactly once, across failovers, and finally the error that ended
  // the watch. The second form is pulled with Watcher::Next. Bad options end the watch
  // at once (the callback is called inline with INVALID_ARGUMENT).
  [[nodiscard]] std::unique_ptr<Watcher> Watch(std::string_view key, const WatchOptions& options,
                                               WatchCallback callback);
  [[nodiscard]] std::unique_ptr<Watcher> Watch(std::string_view key,
                                               const WatchOptions& options = {});

  // --- Cluster (client/cluster.cc) ---
  [[nodiscard]] absl::StatusOr<MemberListResponse> MemberList(const CallOptions& options = {});
  void MemberListAsync(const CallOptions& options, Callback<MemberListResponse> done);
  // Membership changes, decided by the leader (etcd's errors, e.g. FAILED_PRECONDITION
  // "etcdserver: can only promote a learner member which is in sync with leader").
  // Not retried once they may have reached the leader (a change is not deduplicated);
  // after a success the client refreshes its member list.
  [[nodiscard]] absl::StatusOr<MemberAddResponse> MemberAdd(
      const std::vector<std::string>& peer_urls, bool is_learner, const CallOptions& options = {});
  void MemberAddAsync(const std::vector<std::string>& peer_urls, bool is_learner,
                      const CallOptions& options, Callback<MemberAddResponse> done);
  [[nodiscard]] absl::StatusOr<MemberRemoveResponse> MemberRemove(uint64_t id,
                                                                  const CallOptions& options = {});
  void MemberRemoveAsync(uint64_t id, const CallOptions& options,
                         Callback<MemberRemoveResponse> done);
  [[nodiscard]] absl::StatusOr<MemberUpdateResponse> MemberUpdate(
      uint64_t id, const std::vector<std::string>& peer_urls, const CallOptions& options = {});
  void MemberUpdateAsync(uint64_t id, const std::vector<std::string>& peer_urls,
                         const CallOptions& options, Callback<MemberUpdateResponse> done);
  [[nodiscard]] absl::StatusOr<MemberPromoteResponse> MemberPromote(
      uint64_t id, const CallOptions& options = {});
  void MemberPromoteAsync(uint64_t id, const CallOptions& options,
                          Callback<MemberPromoteResponse> done);
  // Maintenance.MoveLeader: asks the leader to hand over to voter `target_id`; answers
  // once it has (or etcd's error: not leader, bad leader transferee, timed out).
  [[nodiscard]] absl::StatusOr<MoveLeaderResponse> MoveLeader(uint64_t target_id,
                                                              const CallOptions& options = {});
  void MoveLeaderAsync(uint64_t target_id, const CallOptions& options,
                       Callback<MoveLeaderResponse> done);

  // --- Maintenance (client/maintenance.cc) ---
  // Status of one member, asked at `endpoint` ("host:port", need not be one of
  // Endpoints()). One attempt, no retries: it reports on that endpoint.
  [[nodiscard]] absl::StatusOr<StatusResponse> Status(std::string_view endpoint,
                                                      const CallOptions& options = {});
  void StatusAsync(std::string_view endpoint, const CallOptions& options,
                   Callback<StatusResponse> done);
  // Active alarms (any member answers: they are replicated).
  [[nodiscard]] absl::StatusOr<AlarmResponse> AlarmList(const CallOptions& options = {});
  // Clears the alarm `type` of member `member_id` (0: of every member; NONE: every
  // type) through raft. Answers with the alarms it cleared. A NOSPACE alarm comes back
  // within a second if the data is still over the quota.
  [[nodiscard]] absl::StatusOr<AlarmResponse> AlarmDisarm(uint64_t member_id,
                                                          etcdserverpb::AlarmType type,
                                                          const CallOptions& options = {});
  // Hash of the MVCC key space of the member at `endpoint` up to `revision` (0: its
  // newest); equal on every member for the same revision and compaction point.
  [[nodiscard]] absl::StatusOr<HashKVResponse> HashKV(std::string_view endpoint,
                                                      int64_t revision = 0,
                                                      const CallOptions& options = {});
  // Flushes and compacts the storage of the member at `endpoint` (etcd's defrag).
  [[nodiscard]] absl::StatusOr<DefragmentResponse> Defragment(std::string_view endpoint,
                                                              const CallOptions& options = {});
  // Streams a consistent snapshot of one member's state machine (keel's snapshot file
  // format) into `sink`, piece by piece; `endpoint` "" picks any member. One attempt:
  // a failed stream is reported, not resumed. A sink error cancels the stream.
  [[nodiscard]] absl::Status Snapshot(std::string_view endpoint,
                                      const std::function<absl::Status(std::string_view)>& sink,
                                      const CallOptions& options = {});
  // Snapshot into `path` (written to "<path>.part", fsynced, then renamed: a failed
  // save leaves no file at `path`). Returns the bytes written.
  [[nodiscard]] absl::StatusOr<uint64_t> SnapshotToFile(std::string_view endpoint,
                                                        const std::string& path,
                                                        const CallOptions& options = {});

  // --- The client itself (client/client.cc) ---
  // Current endpoints ("host:port"), sorted.
  [[nodiscard]] std::vector<std::string> Endpoints() const;
  // The leader's endpoint as last learnt; "" if unknown.
  [[nodiscard]] std::string Leader() const;
  // Refreshes the member list and the leader now; kUnavailable if no member answered.
  [[nodiscard]] absl::Status Refresh(const CallOptions& options = {});
  [[nodiscard]] ClientStats Stats() const;

 private:
  explicit Client(std::unique_ptr<client::ClientCore> core);
  std::unique_ptr<client::ClientCore> core_;
};

}  // namespace keel
