// WatchTracker: the client side of etcd's watch protocol for one watch, across every
// stream that serves it in turn. It builds each stream's create request (from the
// revision after the last one delivered, so a resumed watch has no gap and no
// duplicate), joins fragments into whole revisions, drops anything already delivered,
// and says what each response means. Pure: no I/O, no clock, no threads.
//
// Thread-safety: none (client/watch.cc calls it under its own lock).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "keel/watch.h"
#include "proto/etcdserverpb/rpc.pb.h"

namespace keel::client {

class WatchTracker {
 public:
  // kInvalidArgument for conflicting range options, or an empty key without prefix
  // or from_key (an empty key with either means every key).
  [[nodiscard]] static absl::StatusOr<WatchTracker> Make(std::string_view key,
                                                         const WatchOptions& options);

  // The create request for the next stream.
  [[nodiscard]] etcdserverpb::WatchRequest CreateRequest() const;

  struct Outcome {
    enum class Kind {
      kNothing,    // A fragment (more to come), or only events already delivered.
      kCreated,    // The stream's watch exists.
      kBatch,      // Deliver `batch`.
      kProgress,   // Deliver `batch` (a progress notification) if the caller wants it.
      kCompacted,  // The history needed is gone: the watch ends (compact_revision).
      kRefused,    // The server refused to create the watch: it ends (reason).
      kCanceled,   // The server ended this stream's watch otherwise: resume elsewhere.
    };
    Kind kind = Kind::kNothing;
    WatchBatch batch;
    int64_t compact_revision = 0;
    std::string reason;
  };
  [[nodiscard]] Outcome OnResponse(const etcdserverpb::WatchResponse& response);

  // The stream ended: a half-received fragmented revision is dropped (the next
  // stream sends that revision again, whole).
  void OnStreamEnd() { fragments_.clear(); }

  // The revision a new stream starts from; 0 while a watch "from now" has not yet been
  // created anywhere.
  [[nodiscard]] int64_t next_revision() const { return next_rev_; }

 private:
  WatchTracker() = default;

  etcdserverpb::WatchCreateRequest create_;  // start_revision filled per stream.
  int64_t next_rev_ = 0;
  std::vector<mvccpb::Event> fragments_;  // Of a revision whose last piece is due.
};

}  // namespace keel::client
