// Reading past events for watchers: the events of a key interval from a revision on,
// in revision order and, within a revision, in the order the request made them.
//
// Sources (kv_store.h): a single key reads its own versions in the "history" family;
// an interval scans the "events" family (the revision-ordered event log) and looks each
// matching event up in "history" (the event log holds only the type and the key).
//
// Thread-safety: functions; they use the given view from the calling thread only.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "proto/mvccpb/kv.pb.h"
#include "storage/mvcc_range.h"
#include "storage/mvcc_view.h"

namespace keel::storage::mvcc {

// Bounds on one read, so a watcher far behind catches up in pieces of bounded memory
// and time. A read always returns whole revisions and always makes progress (at least
// one revision when there is one), so a single huge revision may exceed max_bytes.
struct EventReadLimits {
  size_t max_bytes = 1 << 20;    // Stop at the first revision boundary past this.
  size_t max_scanned = 100'000;  // Event log entries looked at (interval reads).
};

struct EventsChunk {
  std::vector<mvccpb::Event> events;
  // Every revision in [from_rev, next_rev) was read; continue from next_rev.
  int64_t next_rev = 0;
};

// The events of `iv` with from_rev <= revision <= to_rev. With prev_kv, each event
// carries the key's previous version if history still holds it (a version older than
// the compaction point may be gone, as in etcd). The caller checks from_rev against
// the compaction point.
[[nodiscard]] absl::StatusOr<EventsChunk> ReadEvents(MvccView& view, const KeyInterval& iv,
                                                     int64_t from_rev, int64_t to_rev, bool prev_kv,
                                                     const EventReadLimits& limits);

// Approximate bytes an event takes in a response (for the limits above).
[[nodiscard]] size_t EventBytes(const mvccpb::Event& event);

}  // namespace keel::storage::mvcc
