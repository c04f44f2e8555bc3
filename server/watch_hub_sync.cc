// WatchHub's event flow: the dispatcher (applied events -> window -> synced watches)
// and the sync thread (unsynced watches -> window or storage -> synced again).
#include <algorithm>
#include <utility>

#include "common/check.h"
#include "common/failpoint.h"
#include "server/errors.h"
#include "server/watch_hub.h"
#include "server/watch_hub_internal.h"

namespace keel::server {
namespace {

constexpr absl::Duration kTickPeriod = absl::Milliseconds(100);
// The sync thread also looks at every unsynced watch this often, in case a wake-up
// (room in a stream) was missed.
constexpr absl::Duration kSyncRescanPeriod = absl::Seconds(1);
// Events a window catch-up looks at per step (mu_ is held meanwhile).
constexpr size_t kWindowEventsPerStep = 20'000;

size_t VarintSize(uint64_t n) {
  size_t size = 1;
  while (n >= 0x80) {
    n >>= 7;
    ++size;
  }
  return size;
}

}  // namespace

// ---------------------------------------------------------------- dispatcher

void WatchHub::DispatchLoop() {
  absl::Time next_tick = absl::Now() + kTickPeriod;
  for (;;) {
    std::vector<InboxBatch> batches;
    {
      std::unique_lock<std::mutex> lock(inbox_mu_);
      inbox_cv_.wait_until(lock, absl::ToChronoTime(next_tick),
                           [this] { return inbox_closed_ || !inbox_.empty(); });
      if (inbox_closed_) return;
      // Everything waiting (bounded by the inbox): one response per stream for all of
      // it, instead of one per applied batch, when the dispatcher is behind.
      while (!inbox_.empty()) {
        inbox_bytes_ -= inbox_.front().bytes;
        batches.push_back(std::move(inbox_.front()));
        inbox_.pop_front();
      }
    }
    if (!batches.empty()) Dispatch(std::move(batches));
    const absl::Time now = absl::Now();
    if (now >= next_tick) {
      next_tick = now + kTickPeriod;
      std::vector<std::shared_ptr<WatchOutput>> to_close;
      {
        std::lock_guard<std::mutex> lock(mu_);
        to_close = Tick(now);
      }
      for (auto& out : to_close) out->Close(ErrNoLeader());
    }
  }
}

void WatchHub::Dispatch(std::vector<InboxBatch> batches) {
  // Encode outside mu_: once per event, whatever the number of watches.
  std::vector<std::shared_ptr<const Revision>> revs;
  int64_t store_revision = 0;
  for (InboxBatch& batch : batches) {
    store_revision = std::max(store_revision, batch.store_revision);
    for (auto& [revision, events] : batch.revisions) {
      auto rev = std::make_shared<Revision>();
      rev->revision = revision;
      rev->events.reserve(events.size());
      for (const mvccpb::Event& ev : events) {
        EncodedEvent& e = rev->events.emplace_back();
        e.key = ev.kv().key();
        e.is_put = ev.type() == mvccpb::Event::PUT;
        ev.SerializeToString(&e.bytes);
        e.no_prev_size = static_cast<uint32_t>(e.bytes.size());
        if (ev.has_prev_kv()) {
          // Fields serialize in number order, so prev_kv (3) is the suffix.
          const size_t prev = ev.prev_kv().ByteSizeLong();
          e.no_prev_size -= static_cast<uint32_t>(1 + VarintSize(prev) + prev);
          KEEL_DCHECK(e.bytes[e.no_prev_size] == static_cast<char>((3 << 3) | 2));
        }
        rev->bytes += e.bytes.size() + e.key.size() + 64;
      }
      revs.push_back(std::move(rev));
    }
  }
  std::lock_guard<std::mutex> lock(mu_);
  if (stopped_) return;
  ++dispatch_stamp_;
  ++deliver_stamp_;
  for (auto& rev : revs) {
    if (rev->revision <= dispatched_rev_) continue;  // Already replayed from storage.
    if (rev->revision != dispatched_rev_ + 1) Gap(rev->revision - 1);
    window_bytes_ += rev->bytes;
    window_.push_back(rev);
    while (window_bytes_ > options_.window_bytes && window_.size() > 1) {
      window_bytes_ -= window_.front()->bytes;
      window_.pop_front();
    }
    Deliver(*rev);
    dispatched_rev_ = rev->revision;
  }
  if (store_revision > dispatched_rev_) Gap(store_revision);
  EmitTouched();
  if (!progress_waiting_.empty()) {
    std::vector<WatchStream*> waiting(progress_waiting_.begin(), progress_waiting_.end());
    for (WatchStream* s : waiting) SendProgressIfReady(s);
  }
  for (WatchStream* s : dirty_) s->output_->Flush();
  dirty_.clear();
}

// Revisions up to `revision` will never come through the dispatcher (dropped from a
// full inbox, published while nobody watched, or installed by a snapshot): every synced
// watch replays them instead.
void WatchHub::Gap(int64_t revision) {
  EmitTouched();  // What was collected before the gap still goes out, in order.
  for (Watcher* w : watchers_) {
    if (!w->synced) continue;
    MarkUnsynced(w, std::max(w->next_rev, dispatched_rev_ + 1));
    Enqueue(w);
  }
  window_.clear();
  window_bytes_ = 0;
  dispatched_rev_ = revision;
}

// Collects each matching synced watch's events into its scratch; they go out in
// Emit, once per watch per dispatch (or per max_response_bytes), not per revision:
// with many watches that is what keeps the dispatcher cheap.
void WatchHub::Deliver(const Revision& rev) {
  const size_t max_bytes = options_.output.max_response_bytes;
  auto offer = [&](Watcher* w, const EncodedEvent& ev) {
    if (!w->synced || rev.revision < w->next_rev) return;
    if (ev.is_put ? w->no_put : w->no_delete) return;
    if (KEEL_UNSAFE_BUG(kWatchSkipEvent) &&
        ++unsafe_offered_ % failpoint::kWatchSkipEventEvery == 0) {
      return;  // Test builds only: the chaos tests must catch this.
    }
    if (w->stamp != deliver_stamp_) {
      w->stamp = deliver_stamp_;
      w->scratch.clear();
      w->scratch_ends.clear();
      w->scratch_first_rev = 0;
      touched_.push_back(w);
    } else if (w->scratch_last_rev != rev.revision && w->scratch.size() >= max_bytes) {
      Emit(w);  // At a revision boundary.
      if (!w->synced) return;
    }
    if (w->scratch_first_rev == 0) w->scratch_first_rev = rev.revision;
    w->scratch_last_rev = rev.revision;
    AppendFramedEvent(&w->scratch, std::string_view(ev.bytes).substr(
                                       0, w->prev_kv ? ev.bytes.size() : ev.no_prev_size));
    w->scratch_ends.push_back(static_cast<uint32_t>(w->scratch.size()));
  };
  for (const EncodedEvent& ev : rev.events) {
    auto it = key_watchers_.find(ev.key);
    if (it != key_watchers_.end()) {
      for (Watcher* w : it->second) offer(w, ev);
    }
    for (Watcher* w : range_watchers_) {
      if (w->iv.Contains(ev.key)) offer(w, ev);
    }
  }
}

void WatchHub::Emit(Watcher* w) {
  if (w->scratch_first_rev == 0) return;
  const int64_t first = w->scratch_first_rev;
  w->scratch_first_rev = 0;
  if (!w->synced || w->canceled) return;
  WatchStream* s = w->stream;
  if (!s->output_->AppendEvents(w->id, w->scratch_last_rev, w->fragment, w->scratch,
                                w->scratch_ends, /*hold=*/true)) {
    FallBehind(w, first);  // Everything collected is read again from `first`.
    return;
  }
  w->sent_since_progress = true;
  w->last_sent_rev = w->scratch_last_rev;
  w->scratch.clear();
  w->scratch_ends.clear();
  if (s->dirty_stamp_ != dispatch_stamp_) {
    s->dirty_stamp_ = dispatch_stamp_;
    dirty_.push_back(s);
  }
}

void WatchHub::EmitTouched() {
  for (Watcher* w : touched_) Emit(w);
  touched_.clear();
  ++deliver_stamp_;
}

// Its stream is full: it waits for room (WantRoom wakes the sync thread).
void WatchHub::FallBehind(Watcher* w, int64_t revision) {
  MarkUnsynced(w, revision);
  w->stream->output_->WantRoom();
}

void WatchHub::MarkUnsynced(Watcher* w, int64_t next_rev) {
  if (w->synced) {
    w->synced = false;
    ++w->stream->unsynced_;
    ++unsynced_count_;
  }
  w->next_rev = next_rev;
}

void WatchHub::MarkSynced(Watcher* w) {
  if (w->synced) return;
  w->synced = true;
  --w->stream->unsynced_;
  --unsynced_count_;
  SendProgressIfReady(w->stream);
}

void WatchHub::Enqueue(Watcher* w) {
  if (w->in_ready || w->canceled) return;
  auto it = w->stream->watches_.find(w->id);
  if (it == w->stream->watches_.end()) return;
  w->in_ready = true;
  ready_.push_back(it->second);
  Kick();
}

// ---------------------------------------------------------------- sync thread

void WatchHub::Kick(std::weak_ptr<WatchStream> stream) {
  {
    std::lock_guard<std::mutex> lock(sync_mu_);
    sync_kicked_ = true;
    if (!stream.expired()) room_streams_.push_back(std::move(stream));
  }
  sync_cv_.notify_one();
}

void WatchHub::SyncLoop() {
  absl::Time next_rescan = absl::Now() + kSyncRescanPeriod;
  while (!stop_threads_) {
    std::vector<std::weak_ptr<WatchStream>> roomy;
    {
      std::unique_lock<std::mutex> lock(sync_mu_);
      sync_cv_.wait_until(lock, absl::ToChronoTime(next_rescan),
                          [this] { return sync_kicked_ || stop_threads_.load(); });
      sync_kicked_ = false;
      roomy.swap(room_streams_);
    }
    if (stop_threads_) return;
    std::unique_lock<std::mutex> lock(mu_);
    if (stopped_) return;
    // Streams with room again: their unsynced watches may progress.
    for (auto& weak : roomy) {
      std::shared_ptr<WatchStream> s = weak.lock();
      if (!s || s->closed_ || s->unsynced_ == 0) continue;
      for (auto& [id, w] : s->watches_) {
        if (!w->synced) Enqueue(w.get());
      }
    }
    if (absl::Now() >= next_rescan) {
      next_rescan = absl::Now() + kSyncRescanPeriod;
      for (Watcher* w : watchers_) {
        if (!w->synced && !w->syncing) Enqueue(w);
      }
    }
    // One step per ready watch per round, so one far-behind watch cannot starve others.
    std::deque<std::shared_ptr<Watcher>> round;
    round.swap(ready_);
    for (auto& w : round) w->in_ready = false;
    for (auto& w : round) {
      if (stop_threads_ || stopped_) return;
      SyncStep(w, lock);
    }
  }
}

void WatchHub::SyncStep(const std::shared_ptr<Watcher>& w, std::unique_lock<std::mutex>& lock) {
  if (w->canceled || w->synced || w->syncing) return;
  WatchOutput& out = *w->stream->output_;
  if (!out.HasRoom()) {
    out.WantRoom();
    return;
  }
  if (w->next_rev > dispatched_rev_) {
    MarkSynced(w.get());
    return;
  }
  if (!window_.empty() && w->next_rev >= window_.front()->revision) {
    if (CatchUpFromWindow(w.get())) MarkSynced(w.get());
    return;
  }
  // The window does not reach back far enough: read a piece from storage.
  const int64_t from = w->next_rev;
  w->syncing = true;
  lock.unlock();
  // A piece the size of what the stream may hold: a bigger one would mostly be read
  // again after the stream refused it.
  storage::mvcc::EventReadLimits limits = options_.read_limits;
  limits.max_bytes = std::min(limits.max_bytes, options_.output.stream_bytes);
  auto chunk = kv_->ReadEvents(w->iv, from, w->prev_kv, limits);
  // Encode outside the lock, as one response (whole revisions: the read returns them).
  std::string framed, bytes;
  std::vector<uint32_t> ends;
  int64_t last_rev = 0;
  if (chunk.ok()) {
    for (const mvccpb::Event& ev : chunk->events) {
      if (ev.type() == mvccpb::Event::PUT ? w->no_put : w->no_delete) continue;
      ev.SerializeToString(&bytes);
      AppendFramedEvent(&framed, bytes);
      ends.push_back(static_cast<uint32_t>(framed.size()));
      last_rev = ev.kv().mod_revision();
    }
  }
  lock.lock();
  w->syncing = false;
  if (w->canceled) return;
  if (!chunk.ok()) {
    if (chunk.status().code() == absl::StatusCode::kOutOfRange) return SendCompacted(w.get());
    // A storage failure: end this watch with the reason rather than skip events.
    etcdserverpb::WatchResponse r = Response(w->id, kv_->Revision());
    r.set_canceled(true);
    r.set_cancel_reason(std::string(chunk.status().message()));
    WatchStream* s = w->stream;
    Remove(w.get());
    s->output_->AppendControl(std::move(r));
    return;
  }
  if (!ends.empty()) {
    if (!out.AppendEvents(w->id, last_rev, w->fragment, framed, ends)) {
      out.WantRoom();  // Full meanwhile: read again from `from` once there is room.
      return;
    }
    w->sent_since_progress = true;
    w->last_sent_rev = last_rev;
  }
  w->next_rev = chunk->next_rev;
  if (w->next_rev > dispatched_rev_) {
    MarkSynced(w.get());
  } else {
    Enqueue(w.get());
  }
}

bool WatchHub::Collect(Watcher* w, const Revision& rev) {
  w->scratch.clear();
  w->scratch_ends.clear();
  for (const EncodedEvent& ev : rev.events) {
    if (!w->iv.Contains(ev.key) || (ev.is_put ? w->no_put : w->no_delete)) continue;
    AppendFramedEvent(&w->scratch, std::string_view(ev.bytes).substr(
                                       0, w->prev_kv ? ev.bytes.size() : ev.no_prev_size));
    w->scratch_ends.push_back(static_cast<uint32_t>(w->scratch.size()));
  }
  return !w->scratch_ends.empty();
}

bool WatchHub::CatchUpFromWindow(Watcher* w) {
  WatchOutput& out = *w->stream->output_;
  const int64_t first = window_.front()->revision;
  size_t looked_at = 0;
  for (auto i = static_cast<size_t>(w->next_rev - first); i < window_.size(); ++i) {
    const Revision& rev = *window_[i];
    KEEL_DCHECK(rev.revision == first + static_cast<int64_t>(i));
    if (Collect(w, rev)) {
      if (!out.AppendEvents(w->id, rev.revision, w->fragment, w->scratch, w->scratch_ends)) {
        w->next_rev = rev.revision;
        out.WantRoom();
        return false;
      }
      w->sent_since_progress = true;
      w->last_sent_rev = rev.revision;
    }
    looked_at += rev.events.size();
    if (looked_at >= kWindowEventsPerStep && i + 1 < window_.size()) {
      w->next_rev = rev.revision + 1;
      Enqueue(w);  // Continue next round; let the dispatcher in meanwhile.
      return false;
    }
  }
  w->next_rev = dispatched_rev_ + 1;
  return true;
}

}  // namespace keel::server
