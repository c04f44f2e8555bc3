// The client side of a chaos run: worker threads that call the members over raw gRPC
// (the etcd v3 KV API) with a deadline per call, and record every operation.
//
// Register workers: random linearizable reads, writes (Put), compare-and-swaps (a Txn
// comparing the value) and deletes on a few keys, each written value unique, each
// operation sent to a random member. Raw gRPC, no retries: an answer keel gives before
// it proposes anything, or a call that never reached a member, is "fail"; a call that
// timed out or broke after it was sent is "unknown" (it may still take effect). After
// an unknown operation the worker continues under a fresh process id, as Jepsen does,
// since the old operation may still be in flight.
//
// Set workers: Puts of fresh keys under "set/"; every acknowledged one must be present
// at the end (CheckSet).
//
// Thread-safety: Start, Stop and the methods after it from one thread.
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
#include "grpcpp/grpcpp.h"
#include "tests/chaos/history.h"
#include "tests/chaos/watch_check.h"

namespace keel::chaos {

struct WorkloadOptions {
  int register_workers = 4;
  int set_workers = 1;
  int keys = 8;
  absl::Duration op_timeout = absl::Seconds(1);
  uint64_t seed = 1;
};

struct OpCounts {
  uint64_t ops = 0;
  uint64_t ok = 0;
  uint64_t fail = 0;
  uint64_t unknown = 0;
};

struct SetCheckResult {
  uint64_t acknowledged = 0;
  uint64_t unknown_present = 0;   // Unknown-outcome writes that did take effect.
  std::vector<std::string> lost;  // Acknowledged, but missing at the end.
};

// How a write's gRPC status maps to an outcome (see the file comment).
Outcome ClassifyWrite(const grpc::Status& status);

class Workload {
 public:
  // `member_addresses`: "host:port" of every member's client port.
  Workload(WorkloadOptions options, std::vector<std::string> member_addresses);
  ~Workload();  // Stop()s.
  Workload(const Workload&) = delete;
  Workload& operator=(const Workload&) = delete;

  void Start();
  void Stop();  // Joins the workers; every operation in flight completes or times out.

  // After Stop: a linearizable read of every register key (recorded like any other
  // operation), each retried on the members in turn until one answers or `timeout`.
  [[nodiscard]] absl::Status ReadEveryKey(absl::Duration timeout);
  // After Stop: reads every "set/" key and compares with the acknowledged writes.
  [[nodiscard]] absl::StatusOr<SetCheckResult> CheckSet(absl::Duration timeout);

  // After Stop: every register operation, by id.
  [[nodiscard]] std::vector<OpRecord> RegisterHistory() const;
  // After Stop: every put a client sent (register writes and compare-and-swaps, set
  // writes), with what its outcome says about its effect.
  [[nodiscard]] std::vector<WriteRecord> Writes() const;
  // All operations so far (register and set).
  [[nodiscard]] OpCounts Counts() const;

 private:
  struct Worker;
  void RunRegisterWorker(Worker* w);
  void RunSetWorker(Worker* w);
  OpRecord Call(Worker* w, OpRecord op, int member);
  uint64_t NowNs() const;
  std::shared_ptr<grpc::Channel> NewChannel(int member) const;
  void Count(Outcome outcome);

  const WorkloadOptions options_;
  const std::vector<std::string> members_;
  const std::chrono::steady_clock::time_point t0_;
  std::atomic<bool> stop_{false};
  std::atomic<uint64_t> next_op_id_{1};
  std::atomic<uint64_t> next_process_{1};
  std::vector<std::unique_ptr<Worker>> workers_;
  std::vector<std::thread> threads_;

  std::atomic<uint64_t> ok_{0}, fail_{0}, unknown_{0};
  // After Stop (or own thread only): the final reads.
  std::vector<OpRecord> final_ops_;
};

}  // namespace keel::chaos
