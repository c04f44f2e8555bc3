// The watch workload of a chaos run: watchers on the keys the writers write, through
// keel::Client::Watch (which moves a watch to another member when its member fails,
// from the revision after the last one delivered), recording every response; and the
// authoritative event history, read back from each member with a raw gRPC watch once
// the cluster is healed. tests/chaos/watch_check.h compares them.
//
// Watcher i (of --watchers):
//   i % 3 == 0  every key, from revision 1 (a replay from storage, then live)
//   i % 3 == 1  the register keys (prefix "k"), from the revision when it starts;
//               cancelled and created again from the revision after the last one it
//               received every 1-4 s (the resume a user writes)
//   i % 3 == 2  one register key, from revision 1, restarted like the previous kind
//
// Thread-safety: Start, Stop and the other methods from one thread; the callbacks and
// the restart thread are internal.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "keel/client.h"
#include "tests/chaos/watch_check.h"

namespace keel::chaos {

struct WatchersOptions {
  int watchers = 3;
  int keys = 8;  // The register keys k0..k<keys-1>.
  uint64_t seed = 1;
};

class Watchers {
 public:
  Watchers(WatchersOptions options, std::vector<std::string> member_addresses);
  ~Watchers();  // Stop()s.
  Watchers(const Watchers&) = delete;
  Watchers& operator=(const Watchers&) = delete;

  // Connects a client per watcher and creates the watches (every member is up).
  [[nodiscard]] absl::Status Start();
  // The cluster's current revision (a linearizable read), retried until `timeout`.
  [[nodiscard]] absl::StatusOr<int64_t> CurrentRevision(absl::Duration timeout);
  // Ends the restarts, then waits until every watcher received the last event of
  // `history` in its range (the client still moves watches between members).
  [[nodiscard]] absl::Status WaitCaughtUp(const std::vector<WatchEvent>& history,
                                          absl::Duration timeout);
  void Stop();  // Cancels the watches; their logs stay.

  [[nodiscard]] std::vector<WatcherLog> Logs() const;
  // Times the watches moved to another member (the client's resumes), and the
  // restarts this workload made.
  [[nodiscard]] int resumes() const;
  [[nodiscard]] int restarts() const { return restarts_.load(); }

 private:
  struct State;
  void Create(State* s);
  void RestartLoop();

  const WatchersOptions options_;
  const std::vector<std::string> members_;
  std::vector<std::unique_ptr<State>> states_;
  std::atomic<bool> stop_{false};
  std::atomic<int> restarts_{0};
  std::thread restarter_;
};

// Every event of the cluster up to revision `last`, as member `address` serves them
// (a raw gRPC watch of every key from `from`). If the member compacted below `from`
// it reads from the compaction point and sets `*first` to it (else to `from`).
[[nodiscard]] absl::StatusOr<std::vector<WatchEvent>> ReadEventHistory(const std::string& address,
                                                                       int64_t from, int64_t last,
                                                                       absl::Duration timeout,
                                                                       int64_t* first);

}  // namespace keel::chaos
