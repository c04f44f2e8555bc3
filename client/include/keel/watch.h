// keel::Client's watches: a stream of a key's (or range's) changes, from a revision on.
//
//   keel::WatchOptions options;
//   options.prefix = true;
//   options.start_revision = 42;  // Replay history from revision 42, then go on live.
//   std::unique_ptr<keel::Watcher> w = client->Watch("jobs/", options);
//   for (;;) {
//     absl::StatusOr<keel::WatchBatch> batch = w->Next(absl::Seconds(10));
//     if (!batch.ok()) break;  // Compacted, refused, cancelled (or a Next timeout).
//     for (const mvccpb::Event& e : batch->events) ...
//   }
//
// Or with a callback: client->Watch("jobs/", options, [](absl::StatusOr<WatchBatch> b) {...}).
//
// Guarantees. Events arrive in revision order, each exactly once, all events of one
// revision in one batch. When the member serving the watch fails (killed, partitioned,
// restarted, it lost its leader, it shuts down) the watch resumes on another member
// from the revision after the last one delivered: no gap, no duplicate, without the
// caller doing anything. A watch ends only when the caller cancels it, the client is
// destroyed, or it cannot go on without a gap: the history it needs was compacted
// (OUT_OF_RANGE, etcd's "required revision has been compacted", the compaction
// revision in Watcher::compact_revision()), or the server refused it
// (INVALID_ARGUMENT, e.g. an empty range).
//
// Threads. The callback runs on a gRPC thread, one batch at a time, in order; it must
// not block and must not call the client's synchronous methods. A Watcher may be used
// from any thread; destroying it cancels the watch and waits until the callback is no
// longer running (so never destroy it from inside its own callback). Destroying the
// Client ends every watch first (CANCELLED); its Watchers may be destroyed after it.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "proto/mvccpb/kv.pb.h"

namespace keel {

struct WatchOptions {
  // Which keys, as in RangeOptions (at most one): the key alone, [key, range_end),
  // every key starting with the key, or every key >= key.
  std::string range_end;
  bool prefix = false;
  bool from_key = false;
  // The first revision to deliver; 0: changes after the watch is created.
  int64_t start_revision = 0;
  bool prev_kv = false;    // Each event carries the key's previous value.
  bool no_put = false;     // Filter out PUT events.
  bool no_delete = false;  // Filter out DELETE events.
  // Deliver the server's periodic progress notifications (empty batches).
  bool progress_notify = false;
};

// Consecutive whole revisions of events, or a progress notification.
struct WatchBatch {
  std::vector<mvccpb::Event> events;  // Ascending revisions; empty for progress.
  // Every event up to this revision has been delivered (the last event's revision,
  // or the notification's revision).
  int64_t revision = 0;
  bool progress_notify = false;
};

// Receives the batches in order; an error is the last call (the watch has ended).
using WatchCallback = std::function<void(absl::StatusOr<WatchBatch>)>;

class Watcher {
 public:
  virtual ~Watcher() = default;
  // Pull mode (a Watcher made without a callback): the next batch, waiting up to
  // `timeout` (DEADLINE_EXCEEDED, and the watch goes on). After the watch ended, its
  // final error. While nobody pulls, the watcher stops reading after a bounded number
  // of batches, and the server holds the rest back.
  [[nodiscard]] virtual absl::StatusOr<WatchBatch> Next(absl::Duration timeout) = 0;
  // Ends the watch: no callback starts afterwards (not even a final error); Next
  // returns CANCELLED.
  virtual void Cancel() = 0;
  // Where a watch that picks up from here would start: the revision after the last
  // one delivered (0 while a watch "from now" has not been created yet).
  [[nodiscard]] virtual int64_t next_revision() const = 0;
  // The compaction revision, once the watch ended because its history was compacted.
  [[nodiscard]] virtual int64_t compact_revision() const = 0;
  // Times the watch moved to another member (or reconnected).
  [[nodiscard]] virtual int resumes() const = 0;
  // The member serving the watch now ("host:port"; "" while reconnecting).
  [[nodiscard]] virtual std::string endpoint() const = 0;
};

}  // namespace keel
