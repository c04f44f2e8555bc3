// WatchHub's internal types, shared by watch_hub.cc and watch_hub_sync.cc.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "server/watch_hub.h"
#include "storage/mvcc_range.h"

namespace keel::server {

struct WatchStream::Watcher {
  int64_t id = 0;
  WatchStream* stream = nullptr;  // Outlives the watcher's registration.
  storage::mvcc::KeyInterval iv;
  bool no_put = false;
  bool no_delete = false;
  bool prev_kv = false;
  bool progress_notify = false;
  bool fragment = false;
  // Guarded by WatchHub::mu_.
  bool synced = true;
  bool canceled = false;
  bool syncing = false;   // The sync thread reads storage for it (without mu_).
  bool in_ready = false;  // Queued on WatchHub::ready_.
  // Unsynced: the first revision it still needs. Synced: events below it are skipped
  // (a watch that starts in the future, or caught up past the dispatcher).
  int64_t next_rev = 0;
  bool sent_since_progress = false;
  int64_t last_sent_rev = 0;  // Newest revision appended to the stream for it.
  // Scratch for collecting matching events (the dispatcher: those of one dispatch, up
  // to max_response_bytes; the sync thread: one revision), whole revisions only.
  uint64_t stamp = 0;
  std::string scratch;
  std::vector<uint32_t> scratch_ends;
  int64_t scratch_first_rev = 0;  // 0: scratch empty.
  int64_t scratch_last_rev = 0;
};

// One event, encoded once for every watch.
struct WatchHub::EncodedEvent {
  std::string key;
  bool is_put = true;
  std::string bytes;          // mvccpb.Event wire bytes, prev_kv (field 3) last.
  uint32_t no_prev_size = 0;  // The prefix of `bytes` without prev_kv.
};

struct WatchHub::Revision {
  int64_t revision = 0;
  std::vector<EncodedEvent> events;
  size_t bytes = 0;
};

struct WatchHub::InboxBatch {
  std::vector<std::pair<int64_t, std::vector<mvccpb::Event>>> revisions;  // Ascending.
  int64_t store_revision = 0;  // The store's revision after the batch.
  size_t bytes = 0;
};

}  // namespace keel::server
