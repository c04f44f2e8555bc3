#include "server/watch_output.h"

#include <utility>

namespace keel::server {

void AppendFramedEvent(std::string* out, std::string_view event_bytes) {
  out->push_back(static_cast<char>((11 << 3) | 2));  // WatchResponse.events, length-delimited.
  uint64_t n = event_bytes.size();
  while (n >= 0x80) {
    out->push_back(static_cast<char>((n & 0x7f) | 0x80));
    n >>= 7;
  }
  out->push_back(static_cast<char>(n));
  out->append(event_bytes);
}

WatchOutput::WatchOutput(WatchSink* sink, WatchOutputLimits limits,
                         std::function<void(etcdserverpb::ResponseHeader*)> fill_header,
                         std::atomic<size_t>* global_bytes, std::function<void()> on_room)
    : sink_(sink),
      limits_(limits),
      fill_header_(std::move(fill_header)),
      global_bytes_(global_bytes),
      on_room_(std::move(on_room)) {}

WatchOutput::~WatchOutput() { Account(-static_cast<ptrdiff_t>(queued_bytes_)); }

void WatchOutput::Account(ptrdiff_t delta) {
  queued_bytes_ += delta;
  if (delta >= 0) {
    global_bytes_->fetch_add(static_cast<size_t>(delta));
  } else {
    global_bytes_->fetch_sub(static_cast<size_t>(-delta));
  }
}

bool WatchOutput::HasRoom() const {
  std::lock_guard<std::mutex> lock(mu_);
  return HasRoomLocked();
}

bool WatchOutput::HasRoomLocked() const {
  if (queued_bytes_ == 0) return true;
  return queued_bytes_ < limits_.stream_bytes && global_bytes_->load() < limits_.global_bytes;
}

bool WatchOutput::closed() const {
  std::lock_guard<std::mutex> lock(mu_);
  return closed_;
}

size_t WatchOutput::queued_bytes() const {
  std::lock_guard<std::mutex> lock(mu_);
  return queued_bytes_;
}

bool WatchOutput::AppendEvents(int64_t watch_id, int64_t revision, bool fragment,
                               std::string_view framed, const std::vector<uint32_t>& event_ends,
                               bool hold) {
  Action action;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (closed_) return true;  // Dropped: the watch is being torn down with its stream.
    if (!HasRoomLocked()) return false;
    Pending* p = queue_.empty() ? nullptr : &queue_.back();
    if (p == nullptr || !p->is_events || p->watch_id != watch_id || p->fragment != fragment ||
        p->events.size() + framed.size() > limits_.max_response_bytes) {
      p = &queue_.emplace_back();
      p->watch_id = watch_id;
      p->is_events = true;
      p->fragment = fragment;
    }
    const auto base = static_cast<uint32_t>(p->events.size());
    p->events.append(framed);
    if (fragment) {
      for (uint32_t end : event_ends) p->event_ends.push_back(base + end);
    }
    p->revision = revision;
    Account(static_cast<ptrdiff_t>(framed.size()));
    if (hold) return true;
    action = NextActionLocked();
  }
  Perform(std::move(action));
  return true;
}

void WatchOutput::Flush() {
  Action action;
  {
    std::lock_guard<std::mutex> lock(mu_);
    action = NextActionLocked();
  }
  Perform(std::move(action));
}

void WatchOutput::AppendControl(etcdserverpb::WatchResponse response) {
  Action action;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (closed_) return;
    Pending& p = queue_.emplace_back();
    p.watch_id = response.watch_id();
    Account(static_cast<ptrdiff_t>(response.ByteSizeLong()));
    p.control = std::move(response);
    action = NextActionLocked();
  }
  Perform(std::move(action));
}

void WatchOutput::WantRoom() {
  Action action;
  {
    std::lock_guard<std::mutex> lock(mu_);
    want_room_ = true;
    action = NextActionLocked();  // Room may already be back.
  }
  Perform(std::move(action));
}

void WatchOutput::Close(const absl::Status& status) {
  Action action;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (closed_) return;
    closed_ = true;
    close_status_ = status;
    queue_.clear();
    ready_.clear();
    Account(-static_cast<ptrdiff_t>(queued_bytes_));
    action = NextActionLocked();
  }
  Perform(std::move(action));
}

void WatchOutput::WriteDone(bool ok) {
  Action action;
  {
    std::lock_guard<std::mutex> lock(mu_);
    write_in_flight_ = false;
    if (!ok && !closed_) {
      closed_ = true;
      close_status_ = absl::CancelledError("watch stream broken");
      queue_.clear();
      ready_.clear();
      Account(-static_cast<ptrdiff_t>(queued_bytes_));
    }
    action = NextActionLocked();
  }
  Perform(std::move(action));
}

WatchOutput::Action WatchOutput::NextActionLocked() {
  Action a;
  if (finished_) return a;
  if (closed_) {
    if (!write_in_flight_) {
      finished_ = true;
      a.finish = true;
      a.status = close_status_;
    }
    return a;
  }
  if (!write_in_flight_) {
    if (ready_.empty()) PrepareLocked();
    if (!ready_.empty()) {
      a.write = true;
      a.message = std::move(ready_.front());
      ready_.pop_front();
      Account(-static_cast<ptrdiff_t>(a.message.size()));
      write_in_flight_ = true;
    }
  }
  if (want_room_ && HasRoomLocked()) {
    want_room_ = false;
    a.room = true;
  }
  return a;
}

void WatchOutput::Perform(Action action) {
  if (action.write) sink_->Send(std::move(action.message));
  if (action.finish) sink_->End(action.status);
  if (action.room && on_room_) on_room_();
}

std::string WatchOutput::Serialize(etcdserverpb::WatchResponse& r, std::string_view events) const {
  fill_header_(r.mutable_header());
  std::string out;
  out.reserve(r.ByteSizeLong() + events.size());
  r.AppendToString(&out);
  out.append(events);
  return out;
}

void WatchOutput::PrepareLocked() {
  if (queue_.empty()) return;
  Pending p = std::move(queue_.front());
  queue_.pop_front();
  const size_t before = ready_.size();
  ptrdiff_t pending_bytes = 0;
  if (!p.is_events) {
    pending_bytes = static_cast<ptrdiff_t>(p.control.ByteSizeLong());
    ready_.push_back(Serialize(p.control, ""));
  } else {
    pending_bytes = static_cast<ptrdiff_t>(p.events.size());
    etcdserverpb::WatchResponse r;
    r.set_watch_id(p.watch_id);
    r.mutable_header()->set_revision(p.revision);
    std::string whole = Serialize(r, p.events);
    if (!p.fragment || whole.size() < limits_.fragment_bytes || p.event_ends.size() < 2) {
      ready_.push_back(std::move(whole));
    } else {
      // etcd's sendFragments: pieces stay under fragment_bytes unless a piece is one
      // event; every piece but the last says fragment = true.
      r.set_fragment(true);
      const size_t head = Serialize(r, "").size();
      uint32_t begin = 0;
      size_t i = 0;
      while (i < p.event_ends.size()) {
        size_t j = i + 1;  // At least one event per piece.
        while (j < p.event_ends.size() &&
               head + (p.event_ends[j] - begin) < limits_.fragment_bytes) {
          ++j;
        }
        const uint32_t end = p.event_ends[j - 1];
        r.set_fragment(j < p.event_ends.size());
        ready_.push_back(Serialize(r, std::string_view(p.events).substr(begin, end - begin)));
        begin = end;
        i = j;
      }
    }
  }
  ptrdiff_t ready_bytes = 0;
  for (size_t k = before; k < ready_.size(); ++k) {
    ready_bytes += static_cast<ptrdiff_t>(ready_[k].size());
  }
  Account(ready_bytes - pending_bytes);
}

}  // namespace keel::server
