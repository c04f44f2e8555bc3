// WatchHub: streams and watches (create, cancel, progress), the periodic ticks and the
// publishing side. Dispatch and catch-up are in watch_hub_sync.cc.
#include "server/watch_hub.h"

#include <algorithm>
#include <utility>

#include "server/errors.h"
#include "server/watch_hub_internal.h"
#include "storage/mvcc_errors.h"

namespace keel::server {
namespace {

// etcd's texts (mvcc/watcher.go), which clients may show or match.
constexpr char kEmptyRange[] = "mvcc: watcher range is empty";
constexpr char kDuplicateId[] = "mvcc: duplicate watch ID provided on the WatchStream";
constexpr int kLeaderMissesBeforeAbort = 3;  // etcd's maxNoLeaderCnt.

}  // namespace

WatchHub::WatchHub(WatchHubOptions options, storage::KvStore* kv)
    : options_(std::move(options)), kv_(kv) {
  dispatched_rev_ = kv_->Revision();
  const absl::Time now = absl::Now();
  next_progress_ = now + options_.progress_interval;
  next_leader_check_ = now + options_.leader_check_interval;
  dispatch_thread_ = std::thread([this] { DispatchLoop(); });
  sync_thread_ = std::thread([this] { SyncLoop(); });
}

WatchHub::~WatchHub() { Stop(); }

void WatchHub::Stop() {
  {
    std::lock_guard<std::mutex> lock(inbox_mu_);
    inbox_closed_ = true;
    inbox_.clear();
    inbox_bytes_ = 0;
  }
  inbox_cv_.notify_all();
  stop_threads_ = true;
  Kick();
  if (dispatch_thread_.joinable()) dispatch_thread_.join();
  if (sync_thread_.joinable()) sync_thread_.join();
  std::vector<std::shared_ptr<WatchOutput>> outputs;
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopped_ = true;
    std::vector<WatchStream*> all;
    for (auto& [raw, stream] : streams_) all.push_back(raw);
    for (WatchStream* s : all) outputs.push_back(CloseLocked(s));
    ready_.clear();
    window_.clear();
  }
  for (auto& out : outputs) out->Close(ErrStopped());
}

void WatchHub::Publish(std::vector<storage::ApplyResult>* results) {
  InboxBatch batch;
  batch.store_revision = kv_->Revision();
  if (watch_count_.load() == 0 && AdvanceWithoutStreams(batch.store_revision)) return;
  // Without watchers the events are not needed: a watch created later reads storage.
  // (A watch registers itself before reading the revision; this reads the revision
  // before the count, so a watch that needs these events is always seen here.)
  if (watch_count_.load() > 0 && results != nullptr) {
    for (auto& r : *results) {
      if (r.events.empty()) continue;
      for (const auto& ev : r.events) batch.bytes += storage::mvcc::EventBytes(ev);
      batch.revisions.emplace_back(r.events.front().kv().mod_revision(), std::move(r.events));
    }
  }
  {
    std::lock_guard<std::mutex> lock(inbox_mu_);
    if (inbox_closed_) return;
    if (inbox_bytes_ + batch.bytes > options_.inbox_bytes) {
      // The dispatcher is far behind: drop the events; it sees the gap and the
      // watches replay it from storage.
      batch.revisions.clear();
      batch.bytes = 0;
    }
    if (batch.revisions.empty() && !inbox_.empty() && inbox_.back().revisions.empty()) {
      inbox_.back().store_revision = batch.store_revision;  // Merge markers.
      return;
    }
    inbox_bytes_ += batch.bytes;
    inbox_.push_back(std::move(batch));
  }
  inbox_cv_.notify_one();
}

bool WatchHub::AdvanceWithoutStreams(int64_t store_revision) {
  {
    std::lock_guard<std::mutex> lock(inbox_mu_);
    if (inbox_closed_ || !inbox_.empty()) return false;  // Keep the dispatcher's order.
  }
  std::lock_guard<std::mutex> lock(mu_);
  if (stopped_ || !streams_.empty()) return false;
  // No stream, so no watch and no progress request: the revisions are a gap for
  // nobody. Recorded here instead of waking the dispatcher for every applied batch
  // (a thread wake-up per write when nothing watches).
  if (store_revision > dispatched_rev_) Gap(store_revision);
  return true;
}

std::shared_ptr<WatchStream> WatchHub::OpenStream(WatchSink* sink, bool require_leader) {
  auto stream = std::make_shared<WatchStream>();
  std::weak_ptr<WatchStream> weak = stream;
  stream->require_leader_ = require_leader;
  stream->output_ = std::make_shared<WatchOutput>(
      sink, options_.output, [this](etcdserverpb::ResponseHeader* h) { FillHeader(h); },
      &global_output_bytes_, [this, weak] { Kick(weak); });
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!stopped_) {
      streams_[stream.get()] = stream;
      return stream;
    }
    stream->closed_ = true;
  }
  stream->output_->Close(ErrStopped());
  return stream;
}

void WatchHub::Handle(WatchStream* stream, const etcdserverpb::WatchRequest& request) {
  std::lock_guard<std::mutex> lock(mu_);
  if (stopped_ || stream->closed_) return;
  switch (request.request_union_case()) {
    case etcdserverpb::WatchRequest::kCreateRequest:
      Create(stream, request.create_request());
      break;
    case etcdserverpb::WatchRequest::kCancelRequest:
      Cancel(stream, request.cancel_request().watch_id());
      break;
    case etcdserverpb::WatchRequest::kProgressRequest:
      RequestProgress(stream);
      break;
    case etcdserverpb::WatchRequest::REQUEST_UNION_NOT_SET:
      break;  // etcd ignores it too.
  }
}

void WatchHub::CloseStream(WatchStream* stream, const absl::Status& status) {
  std::shared_ptr<WatchOutput> out;
  {
    std::lock_guard<std::mutex> lock(mu_);
    out = CloseLocked(stream);
  }
  if (out) out->Close(status);
}

std::shared_ptr<WatchOutput> WatchHub::CloseLocked(WatchStream* stream) {
  if (stream->closed_) return stream->output_;
  stream->closed_ = true;
  progress_waiting_.erase(stream);
  std::vector<Watcher*> all;
  for (auto& [id, w] : stream->watches_) all.push_back(w.get());
  for (Watcher* w : all) Remove(w);
  std::shared_ptr<WatchOutput> out = stream->output_;
  streams_.erase(stream);  // May free the stream if the transport already let go.
  return out;
}

void WatchHub::Create(WatchStream* s, const etcdserverpb::WatchCreateRequest& req) {
  WatchOutput& out = *s->output_;
  // etcd's normalization: an empty key is "\0"; range_end "\0" means every key >= key.
  const std::string key = req.key().empty() ? std::string(1, '\0') : req.key();
  const std::string& end = req.range_end();
  auto refuse = [&](const char* reason) {
    etcdserverpb::WatchResponse r = Response(-1, kv_->Revision());
    r.set_created(true);
    r.set_canceled(true);
    r.set_cancel_reason(reason);
    out.AppendControl(std::move(r));
  };
  if (!end.empty() && end != std::string(1, '\0') && key >= end) return refuse(kEmptyRange);
  int64_t id = req.watch_id();
  if (id != 0) {
    if (s->watches_.contains(id)) return refuse(kDuplicateId);
  } else {
    while (s->watches_.contains(s->next_auto_id_)) ++s->next_auto_id_;
    id = s->next_auto_id_++;
  }
  auto w = std::make_shared<Watcher>();
  w->id = id;
  w->stream = s;
  w->iv = storage::mvcc::KeyInterval::From(key, end);
  for (int f : req.filters()) {
    if (f == etcdserverpb::WatchCreateRequest::NOPUT) w->no_put = true;
    if (f == etcdserverpb::WatchCreateRequest::NODELETE) w->no_delete = true;
  }
  w->prev_kv = req.prev_kv();
  w->progress_notify = req.progress_notify();
  w->fragment = req.fragment();
  w->synced = true;  // Until MarkUnsynced below: "unsynced" is counted per transition.
  s->watches_[id] = w;
  watchers_.insert(w.get());
  if (w->iv.single) {
    key_watchers_[key].push_back(w.get());
  } else {
    range_watchers_.push_back(w.get());
  }
  // Registered (counted) before the revision is read: see Publish.
  watch_count_.fetch_add(1);
  const int64_t current = kv_->Revision();
  // etcd: 0 is "from the next revision"; a negative start replays all there is.
  const int64_t start = req.start_revision() > 0 ? req.start_revision()
                                                 : (req.start_revision() == 0 ? current + 1 : 1);
  w->next_rev = start;
  etcdserverpb::WatchResponse created = Response(id, current);
  created.set_created(true);
  out.AppendControl(std::move(created));
  if (start < kv_->OldestWatchableRevision()) return SendCompacted(w.get());
  // Later than what was dispatched: the dispatcher delivers from `start` on. Otherwise
  // the sync thread replays first.
  if (start <= dispatched_rev_) {
    MarkUnsynced(w.get(), start);
    Enqueue(w.get());
  }
}

void WatchHub::Cancel(WatchStream* s, int64_t watch_id) {
  auto it = s->watches_.find(watch_id);
  if (it == s->watches_.end()) return;  // etcd answers nothing for an unknown id.
  Remove(it->second.get());
  etcdserverpb::WatchResponse r = Response(watch_id, kv_->Revision());
  r.set_canceled(true);
  s->output_->AppendControl(std::move(r));
}

void WatchHub::Remove(Watcher* w) {
  WatchStream* s = w->stream;
  w->canceled = true;
  watchers_.erase(w);
  if (w->iv.single) {
    auto it = key_watchers_.find(w->iv.begin);
    if (it != key_watchers_.end()) {
      std::erase(it->second, w);
      if (it->second.empty()) key_watchers_.erase(it);
    }
  } else {
    std::erase(range_watchers_, w);
  }
  if (!w->synced) {
    --s->unsynced_;
    --unsynced_count_;
  }
  watch_count_.fetch_sub(1);
  s->watches_.erase(w->id);  // May free w.
  SendProgressIfReady(s);
}

void WatchHub::RequestProgress(WatchStream* s) {
  s->progress_pending_ = true;
  progress_waiting_.insert(s);
  SendProgressIfReady(s);
}

// A progress response at R says: every event up to R of every watch of the stream came
// before it, and none after R did. With every watch synced the first holds for R =
// dispatched_rev_; the second needs the dispatcher to have reached whatever a catch-up
// from storage sent ahead of it. Until both hold the response waits (it is retried
// after each dispatch).
void WatchHub::SendProgressIfReady(WatchStream* s) {
  if (!s->progress_pending_ || s->closed_ || s->unsynced_ > 0) return;
  for (const auto& [id, w] : s->watches_) {
    if (w->last_sent_rev > dispatched_rev_) return;
  }
  s->progress_pending_ = false;
  progress_waiting_.erase(s);
  s->output_->AppendControl(Response(-1, dispatched_rev_));
}

void WatchHub::SendCompacted(Watcher* w) {
  // As etcd: header revision 0, the compaction point, canceled.
  etcdserverpb::WatchResponse r = Response(w->id, 0);
  r.set_compact_revision(kv_->OldestWatchableRevision());
  r.set_canceled(true);
  WatchStream* s = w->stream;
  Remove(w);
  s->output_->AppendControl(std::move(r));
}

std::vector<std::shared_ptr<WatchOutput>> WatchHub::Tick(absl::Time now) {
  std::vector<std::shared_ptr<WatchOutput>> to_close;
  if (now >= next_progress_) {
    next_progress_ = now + options_.progress_interval;
    for (auto& [raw, s] : streams_) {
      for (auto& [id, w] : s->watches_) {
        if (!w->progress_notify) continue;
        if (w->synced && !w->sent_since_progress) {
          // Everything up to here reached this watch, and nothing later.
          s->output_->AppendControl(Response(id, std::max(dispatched_rev_, w->last_sent_rev)));
        }
        w->sent_since_progress = false;
      }
    }
  }
  if (now >= next_leader_check_ && options_.has_leader) {
    next_leader_check_ = now + options_.leader_check_interval;
    leader_misses_ = options_.has_leader() ? 0 : leader_misses_ + 1;
    if (leader_misses_ >= kLeaderMissesBeforeAbort) {
      std::vector<WatchStream*> lost;
      for (auto& [raw, s] : streams_) {
        if (s->require_leader_) lost.push_back(raw);
      }
      for (WatchStream* s : lost) to_close.push_back(CloseLocked(s));
    }
  }
  return to_close;
}

void WatchHub::FillHeader(etcdserverpb::ResponseHeader* h) const {
  h->set_cluster_id(options_.cluster_id);
  h->set_member_id(options_.member_id);
  h->set_raft_term(options_.raft_term ? options_.raft_term() : 0);
}

etcdserverpb::WatchResponse WatchHub::Response(int64_t watch_id, int64_t revision) {
  etcdserverpb::WatchResponse r;
  r.set_watch_id(watch_id);
  r.mutable_header()->set_revision(revision);
  return r;
}

int64_t WatchHub::dispatched_revision() const {
  std::lock_guard<std::mutex> lock(mu_);
  return dispatched_rev_;
}

size_t WatchHub::unsynced_watches() const {
  std::lock_guard<std::mutex> lock(mu_);
  return unsynced_count_;
}

size_t WatchHub::watch_count() const { return watch_count_.load(); }

}  // namespace keel::server
