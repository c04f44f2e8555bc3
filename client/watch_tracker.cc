#include "client/watch_tracker.h"

#include "absl/strings/str_cat.h"
#include "keel/kv.h"

namespace keel::client {

absl::StatusOr<WatchTracker> WatchTracker::Make(std::string_view key, const WatchOptions& options) {
  const int ways = static_cast<int>(!options.range_end.empty()) + static_cast<int>(options.prefix) +
                   static_cast<int>(options.from_key);
  if (ways > 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        "watch \"", std::string(key), "\": set at most one of range_end, prefix and from_key"));
  }
  if (key.empty() && !options.prefix && !options.from_key) {
    return absl::InvalidArgumentError(
        "watch: empty key (use prefix or from_key with an empty key to watch every key)");
  }
  if (options.start_revision < 0) {
    return absl::InvalidArgumentError("watch: start_revision must be >= 0");
  }
  WatchTracker t;
  etcdserverpb::WatchCreateRequest& c = t.create_;
  c.set_key(std::string(key));
  if (options.prefix) {
    c.set_range_end(PrefixEnd(key));
  } else if (options.from_key) {
    c.set_range_end(std::string(1, '\0'));
  } else {
    c.set_range_end(options.range_end);
  }
  c.set_prev_kv(options.prev_kv);
  c.set_progress_notify(options.progress_notify);
  if (options.no_put) c.add_filters(etcdserverpb::WatchCreateRequest::NOPUT);
  if (options.no_delete) c.add_filters(etcdserverpb::WatchCreateRequest::NODELETE);
  // Revisions of any size arrive in pieces this tracker joins again.
  c.set_fragment(true);
  t.next_rev_ = options.start_revision;
  return t;
}

etcdserverpb::WatchRequest WatchTracker::CreateRequest() const {
  etcdserverpb::WatchRequest r;
  *r.mutable_create_request() = create_;
  r.mutable_create_request()->set_start_revision(next_rev_);
  return r;
}

WatchTracker::Outcome WatchTracker::OnResponse(const etcdserverpb::WatchResponse& r) {
  using Kind = Outcome::Kind;
  Outcome out;
  if (r.created()) {
    if (r.canceled()) {
      out.kind = Kind::kRefused;
      out.reason = r.cancel_reason();
      return out;
    }
    // A watch "from now" covers what follows the revision it was created at; a resumed
    // one must not skip that, so this is fixed once, at the first creation.
    if (next_rev_ == 0) next_rev_ = r.header().revision() + 1;
    out.kind = Kind::kCreated;
    return out;
  }
  if (r.compact_revision() != 0) {
    out.kind = Kind::kCompacted;
    out.compact_revision = r.compact_revision();
    return out;
  }
  if (r.canceled()) {
    out.kind = Kind::kCanceled;
    out.reason = r.cancel_reason();
    return out;
  }
  if (r.events_size() == 0) {
    // A progress notification: every event up to its revision has been sent.
    out.kind = Kind::kProgress;
    out.batch.progress_notify = true;
    out.batch.revision = r.header().revision();
    if (r.header().revision() >= next_rev_) next_rev_ = r.header().revision() + 1;
    return out;
  }
  for (const auto& ev : r.events()) fragments_.push_back(ev);
  if (r.fragment()) return out;  // More pieces of this revision follow.
  std::vector<mvccpb::Event> events;
  events.swap(fragments_);
  for (auto& ev : events) {
    // Already delivered (a server that resent them): drop, never deliver twice.
    if (ev.kv().mod_revision() < next_rev_) continue;
    out.batch.events.push_back(std::move(ev));
  }
  if (out.batch.events.empty()) return out;
  out.kind = Kind::kBatch;
  out.batch.revision = out.batch.events.back().kv().mod_revision();
  next_rev_ = out.batch.revision + 1;
  return out;
}

}  // namespace keel::client
