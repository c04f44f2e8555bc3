// WatchOutput: the outgoing responses of one Watch stream, in order, bounded.
//
// The watch hub appends responses (events already encoded as mvccpb.Event wire bytes,
// or complete control responses: created, canceled, progress); a WatchSink (the gRPC
// reactor, or a test) writes them one at a time. Event responses of the same watch that
// queue up behind a write in flight are merged into one response (up to
// max_response_bytes, at revision boundaries), so a busy stream sends fewer, larger
// messages instead of falling behind. A watch that asked for `fragment` has a response
// larger than fragment_bytes split as etcd does (every piece but the last has
// fragment = true; a single event is never split).
//
// Bounds: AppendEvents refuses (returns false) once the stream holds stream_bytes of
// unsent responses, or all streams together hold global_bytes; the hub then lets that
// watch fall behind and catch up later. An append that is accepted may pass the bound
// by its own size (at most max_response_bytes plus one revision). Control responses are always
// accepted (the reactor stops reading requests while the output is full, which bounds them).
//
// Thread-safety: all methods are thread-safe. The sink's Send and End are called
// with no lock held, one at a time (Send only when no write is outstanding; End once,
// when none is).
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "proto/etcdserverpb/rpc.pb.h"

namespace keel::server {

// Where a stream's responses go.
class WatchSink {
 public:
  virtual ~WatchSink() = default;
  // Sends one serialized WatchResponse; the sink calls WatchOutput::WriteDone when done.
  // At most one write is outstanding.
  virtual void Send(std::string message) = 0;
  // Ends the stream; called once, with no write outstanding. No call follows it.
  virtual void End(const absl::Status& status) = 0;
};

struct WatchOutputLimits {
  size_t stream_bytes = 256 << 10;
  size_t global_bytes = 256 << 20;
  size_t max_response_bytes = 1 << 20;
  size_t fragment_bytes = 1536 * 1024;  // etcd's --max-request-bytes.
};

class WatchOutput {
 public:
  // `fill_header` sets cluster id, member id and raft term (not the revision).
  // `global_bytes` counts the unsent bytes of every stream; `on_room` is called (from
  // WriteDone, no lock held) once room returns after WantRoom().
  WatchOutput(WatchSink* sink, WatchOutputLimits limits,
              std::function<void(etcdserverpb::ResponseHeader*)> fill_header,
              std::atomic<size_t>* global_bytes, std::function<void()> on_room);
  ~WatchOutput();
  WatchOutput(const WatchOutput&) = delete;
  WatchOutput& operator=(const WatchOutput&) = delete;

  // Room for more events: nothing queued yet, or less than stream_bytes here and
  // global_bytes over all streams (so a stuck stream cannot starve the others of the
  // global budget: every stream may always hold one response).
  [[nodiscard]] bool HasRoom() const;
  // Appends the events of one revision of watch `watch_id`: `framed` holds them as
  // repeated field 11 of WatchResponse; `event_ends` the end offset of each event in
  // `framed` (used for fragmenting). False, with nothing appended, when full.
  // With `hold`, no write starts until Flush(), so that what else arrives in the
  // meantime (the rest of an applied batch) goes into the same response.
  [[nodiscard]] bool AppendEvents(int64_t watch_id, int64_t revision, bool fragment,
                                  std::string_view framed, const std::vector<uint32_t>& event_ends,
                                  bool hold = false);
  // Starts a write of what is queued, if none is outstanding.
  void Flush();
  // Appends a complete response (its header filled here, revision kept as given).
  void AppendControl(etcdserverpb::WatchResponse response);
  // Asks for on_room once HasRoom() turns true again.
  void WantRoom();
  // No further output: what is queued is dropped, the sink is ended with `status`
  // as soon as no write is outstanding. Idempotent (the first status wins).
  void Close(const absl::Status& status);
  [[nodiscard]] bool closed() const;

  // Sink side: the outstanding write completed (ok = false: the stream broke).
  void WriteDone(bool ok);

  // Unsent bytes queued (for tests and metrics).
  [[nodiscard]] size_t queued_bytes() const;

 private:
  struct Pending {
    int64_t watch_id = 0;
    bool is_events = false;
    etcdserverpb::WatchResponse control;  // When !is_events.
    std::string events;                   // Framed events, when is_events.
    std::vector<uint32_t> event_ends;
    int64_t revision = 0;  // Newest revision in `events`.
    bool fragment = false;
  };

  // With mu_ held: turns the front of queue_ into wire messages in ready_.
  void PrepareLocked();
  // With mu_ held: the next action for the sink, performed by Flush after unlocking.
  struct Action {
    bool write = false;
    std::string message;
    bool finish = false;
    absl::Status status;
    bool room = false;
  };
  Action NextActionLocked();
  bool HasRoomLocked() const;
  void Perform(Action action);
  std::string Serialize(etcdserverpb::WatchResponse& r, std::string_view events) const;
  void Account(ptrdiff_t delta);

  WatchSink* const sink_;
  const WatchOutputLimits limits_;
  const std::function<void(etcdserverpb::ResponseHeader*)> fill_header_;
  std::atomic<size_t>* const global_bytes_;
  const std::function<void()> on_room_;

  mutable std::mutex mu_;
  std::deque<Pending> queue_;
  std::deque<std::string> ready_;  // Serialized, next to write (fragments of one Pending).
  size_t queued_bytes_ = 0;        // Bytes in queue_ and ready_.
  bool write_in_flight_ = false;
  bool want_room_ = false;
  bool closed_ = false;
  bool finished_ = false;
  absl::Status close_status_;
};

// Appends one event as WatchResponse field 11 (tag, length, the event's wire bytes).
void AppendFramedEvent(std::string* out, std::string_view event_bytes);

}  // namespace keel::server
