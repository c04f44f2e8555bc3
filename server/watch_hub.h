// WatchHub: etcd's watch semantics on top of the applied state machine, for every
// Watch stream of one member (leader or follower: each serves from its own applied
// state).
//
// Guarantees, per watch: events in revision order, each exactly once, all events of a
// revision in one response (several revisions may share one); a watch from an old
// revision replays history from storage, then continues live with no gap and no
// duplicate; below the oldest replayable revision it gets etcd's compacted response.
//
// How events flow:
//   - The apply thread calls Publish after each applied batch: O(1) per revision (it
//     moves the batch's events into an inbox and signals). It never waits for a
//     watcher. If the inbox is over its byte bound the events are dropped and the gap
//     is replayed from storage instead.
//   - The dispatcher thread encodes each revision's events once (etcd wire bytes, with
//     and without prev_kv), keeps the newest ones in a bounded in-memory window, and
//     appends them to every synced watch that matches (a hash lookup for single-key
//     watches, a scan of the interval watches).
//   - A watch whose stream is full (WatchOutput's bounds) falls behind: it becomes
//     unsynced, remembering the first revision it lacks. The sync thread catches
//     unsynced watches up, when their stream has room, from the window, or from
//     storage (KvStore::ReadEvents) in bounded pieces when the window no longer
//     reaches back; once a watch has everything up to the dispatcher's revision it is
//     synced again, atomically with respect to dispatching (both under mu_).
//   Memory is bounded by the inbox, the window, the streams' output bounds and one
//   storage piece per sync step.
//
// etcd wire behaviour kept: auto watch ids start at 0 per stream; client-chosen ids
// (watch_id != 0); the created response (header revision = current revision) precedes
// any event; an empty range or a duplicate id is answered created + canceled with
// watch_id -1 and etcd's reason; compacted: watch_id, compact_revision, canceled, header
// revision 0; cancel answers canceled (nothing for an unknown id); a progress request is
// answered with watch_id -1 at a revision every watch of the stream has fully received
// (deferred until the stream's watches are synced); progress_notify watches get an empty
// response every progress interval in which they received nothing; streams opened with
// metadata hasleader=true end with "etcdserver: no leader" after 3 leader checks find
// no leader.
//
// Thread-safety: all public methods are thread-safe.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/time/time.h"
#include "proto/etcdserverpb/rpc.pb.h"
#include "server/watch_output.h"
#include "storage/kv_store.h"

namespace keel::server {

struct WatchHubOptions {
  uint64_t cluster_id = 0;
  uint64_t member_id = 0;
  std::function<uint64_t()> raft_term;  // For response headers.
  std::function<bool()> has_leader;     // For hasleader streams.
  // Applied events waiting for the dispatcher; past it they are replayed from storage.
  size_t inbox_bytes = 64 << 20;
  // Recent events kept in memory, so watches that fell a little behind catch up
  // without reading storage.
  size_t window_bytes = 32 << 20;
  WatchOutputLimits output;
  storage::mvcc::EventReadLimits read_limits;
  // etcd's --experimental-watch-progress-notify-interval (default 10 minutes).
  absl::Duration progress_interval = absl::Minutes(10);
  // How often hasleader streams check for a leader (etcd: the election timeout).
  absl::Duration leader_check_interval = absl::Seconds(1);
};

class WatchHub;

// One Watch call's state. Created by WatchHub::OpenStream; the transport keeps it until
// the call is done.
class WatchStream {
 public:
  WatchOutput& output() { return *output_; }

 private:
  friend class WatchHub;
  struct Watcher;
  std::shared_ptr<WatchOutput> output_;
  bool require_leader_ = false;
  // Guarded by WatchHub::mu_.
  absl::flat_hash_map<int64_t, std::shared_ptr<Watcher>> watches_;
  int64_t next_auto_id_ = 0;
  int unsynced_ = 0;
  uint64_t dirty_stamp_ = 0;  // == WatchHub's dispatch stamp: already in dirty_.
  bool progress_pending_ = false;
  bool closed_ = false;
};

class WatchHub {
 public:
  // `kv` must outlive the hub.
  WatchHub(WatchHubOptions options, storage::KvStore* kv);
  ~WatchHub();  // Stops.
  WatchHub(const WatchHub&) = delete;
  WatchHub& operator=(const WatchHub&) = delete;

  // Apply thread, after each applied batch (and after a snapshot install, with no
  // results): takes the results' events. O(number of results); never blocks on
  // watchers.
  void Publish(std::vector<storage::ApplyResult>* results);

  // A new stream writing to `sink` (which must stay valid until its Finish is called).
  // require_leader: the client sent hasleader=true.
  std::shared_ptr<WatchStream> OpenStream(WatchSink* sink, bool require_leader);
  // One request of the stream (create, cancel or progress).
  void Handle(WatchStream* stream, const etcdserverpb::WatchRequest& request);
  // The client is gone or half-closed: removes its watches and finishes the sink with
  // `status` once no write is outstanding.
  void CloseStream(WatchStream* stream, const absl::Status& status);

  // Ends every stream with "etcdserver: server stopped" and joins the threads. Publish
  // becomes a no-op. Idempotent.
  void Stop();

  // Introspection for tests and metrics.
  [[nodiscard]] int64_t dispatched_revision() const;
  [[nodiscard]] size_t unsynced_watches() const;
  [[nodiscard]] size_t watch_count() const;

 private:
  using Watcher = WatchStream::Watcher;
  struct EncodedEvent;
  struct Revision;
  struct InboxBatch;

  void DispatchLoop();
  void SyncLoop();
  void Dispatch(std::vector<InboxBatch> batches);
  // The rest run with mu_ held.
  void Create(WatchStream* stream, const etcdserverpb::WatchCreateRequest& req);
  void Cancel(WatchStream* stream, int64_t watch_id);
  void RequestProgress(WatchStream* stream);
  // Unregisters `w` (which must not be used afterwards: its stream drops it).
  void Remove(Watcher* w);
  // Closes `stream` in the hub; returns its output, to be closed once mu_ is released.
  std::shared_ptr<WatchOutput> CloseLocked(WatchStream* stream);
  void Gap(int64_t revision);
  void Deliver(const Revision& rev);
  // Appends w's collected events (whole revisions) to its stream, or lets it fall behind.
  void Emit(Watcher* w);
  void EmitTouched();
  void FallBehind(Watcher* w, int64_t revision);
  void MarkSynced(Watcher* w);
  void MarkUnsynced(Watcher* w, int64_t next_rev);
  void SendProgressIfReady(WatchStream* stream);
  void SendCompacted(Watcher* w);
  std::vector<std::shared_ptr<WatchOutput>> Tick(absl::Time now);
  // Sync thread: one step of catching `w` up. Called with mu_ held through `lock`;
  // releases it around storage reads.
  void SyncStep(const std::shared_ptr<Watcher>& w, std::unique_lock<std::mutex>& lock);
  // Appends `w`'s events from the window; true once `w` has everything dispatched.
  bool CatchUpFromWindow(Watcher* w);
  // Puts `w`'s matching events of `rev` in w->scratch; false when none match.
  bool Collect(Watcher* w, const Revision& rev);
  void Enqueue(Watcher* w);  // Onto ready_, once.
  void FillHeader(etcdserverpb::ResponseHeader* h) const;
  static etcdserverpb::WatchResponse Response(int64_t watch_id, int64_t revision);

  // Publish without watches: with no stream open either, records the revision as
  // dispatched right here (no dispatcher wake-up) and returns true.
  bool AdvanceWithoutStreams(int64_t store_revision);
  // Outside mu_: wakes the sync thread; `stream` (if any) has room again.
  void Kick(std::weak_ptr<WatchStream> stream = {});

  const WatchHubOptions options_;
  storage::KvStore* const kv_;
  std::atomic<size_t> global_output_bytes_{0};
  std::atomic<size_t> watch_count_{0};  // Read by Publish without mu_.
  std::atomic<bool> stop_threads_{false};

  // Inbox: guarded by inbox_mu_.
  std::mutex inbox_mu_;
  std::condition_variable inbox_cv_;
  std::deque<InboxBatch> inbox_;
  size_t inbox_bytes_ = 0;
  bool inbox_closed_ = false;

  // Watch state: guarded by mu_.
  mutable std::mutex mu_;
  absl::flat_hash_map<WatchStream*, std::shared_ptr<WatchStream>> streams_;
  absl::flat_hash_set<Watcher*> watchers_;
  absl::flat_hash_map<std::string, std::vector<Watcher*>> key_watchers_;
  std::vector<Watcher*> range_watchers_;
  size_t unsynced_count_ = 0;
  std::deque<std::shared_ptr<Watcher>> ready_;          // Unsynced watches that may progress.
  std::deque<std::shared_ptr<const Revision>> window_;  // Consecutive, up to dispatched_rev_.
  size_t window_bytes_ = 0;
  int64_t dispatched_rev_ = 0;  // Every revision up to here went to the synced watches.
  uint64_t deliver_stamp_ = 0;
  uint64_t dispatch_stamp_ = 0;
  std::vector<Watcher*> touched_;
  std::vector<WatchStream*> dirty_;  // Streams with held output, flushed after a dispatch.
  absl::flat_hash_set<WatchStream*> progress_waiting_;  // Progress requested, not yet sent.
  absl::Time next_progress_;
  absl::Time next_leader_check_;
  int leader_misses_ = 0;
  bool stopped_ = false;
  uint64_t unsafe_offered_ = 0;  // Test builds: --UNSAFE-bug watch-skip-event counts here.

  // Sync thread wake-ups: guarded by sync_mu_ (may be taken under mu_, never before it).
  std::mutex sync_mu_;
  std::condition_variable sync_cv_;
  bool sync_kicked_ = false;
  std::vector<std::weak_ptr<WatchStream>> room_streams_;

  std::thread dispatch_thread_;
  std::thread sync_thread_;
};

}  // namespace keel::server
