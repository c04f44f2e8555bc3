// Test harness for integration tests: real keeld processes on 127.0.0.1.
//
// A Cluster owns N keeld child processes (fork+exec of the built binary), one temp
// root holding every member's data dir and stderr log, and one gRPC channel per member.
// Ports are ephemeral (bind port 0, read it, release); a start that loses a port race
// is retried with fresh ports. The destructor SIGKILLs every live member and removes the
// temp root (set KEEL_IT_KEEP=1 to keep it for debugging).
//
// Every wait is a poll with a deadline; nothing sleeps a fixed time to "let things
// settle". Thread-safety: a Cluster is used from the test's main thread; the stubs it
// hands out are gRPC stubs and may be used from any thread.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "grpcpp/grpcpp.h"
#include "proto/etcdserverpb/rpc.grpc.pb.h"

namespace keel::integration {

// Path of the keeld under test and of etcdctl ("" when absent), from CMake.
const char* KeeldPath();
const char* EtcdctlPath();

// A new empty directory under $TMPDIR (default /tmp) named prefix + random suffix.
std::string MakeTempDir(const std::string& prefix);
// The whole file ("" when it cannot be read).
std::string ReadFile(const std::string& path);

// Result of a child process run to completion.
struct CommandResult {
  int exit_code = -1;  // -1: killed by a signal or timed out.
  bool timed_out = false;
  std::string out;
  std::string err;
};

// Runs argv[0] with argv, stdin from `input`, extra environment `env` ("K=V"), and
// waits at most `timeout` (then SIGKILL). Output is captured through temp files.
CommandResult RunCommand(const std::vector<std::string>& argv, const std::string& input,
                         const std::vector<std::string>& env, absl::Duration timeout);

// A child process left running (e.g. `etcdctl watch`, which never exits on its own):
// its output so far can be read at any time; the destructor SIGKILLs it and removes
// its files.
class BackgroundCommand {
 public:
  BackgroundCommand(const std::vector<std::string>& argv, const std::vector<std::string>& env);
  ~BackgroundCommand();
  BackgroundCommand(const BackgroundCommand&) = delete;
  BackgroundCommand& operator=(const BackgroundCommand&) = delete;

  bool started() const { return pid_ > 0; }
  std::string Out() const;
  std::string Err() const;
  // Polls stdout until `done(stdout)` or `timeout`.
  bool WaitForOut(const std::function<bool(const std::string&)>& done, absl::Duration timeout);
  // Waits for the process to exit by itself; its exit code, or nullopt on timeout.
  std::optional<int> WaitExited(absl::Duration timeout);

 private:
  pid_t pid_ = -1;
  std::string dir_;
};

// Returns a TCP port on 127.0.0.1 that was free a moment ago (bound with port 0, then
// released). Another process may take it before we do: callers retry on a port race.
int PickFreePort();

// Polls `done` every few ms until it returns true or `timeout` passes.
bool WaitFor(const std::function<bool()>& done, absl::Duration timeout);

struct ClusterOptions {
  int size = 3;
  int heartbeat_interval_ms = 50;
  int election_timeout_ms = 500;
  std::string token = "keel-it";
  // Extra keeld flags for every member, e.g. {"--snapshot-count", "50"}.
  std::vector<std::string> extra_flags;
  // Extra flags for member i alone (e.g. its own failpoints file); may be empty.
  std::function<std::vector<std::string>(int)> member_flags;
  // Member i's own address (e.g. 10.211.0.11, in its own network namespace); empty:
  // every member on 127.0.0.1 with ephemeral ports. With own addresses the ports are
  // fixed (clients 2379, peers 2380): nothing else listens there.
  std::vector<std::string> member_hosts;
  // Member i runs in this network namespace (a /var/run/netns/ path); empty: ours.
  std::vector<std::string> member_netns;
  // Directory for data dirs and logs, created if missing and kept afterwards; empty:
  // a fresh temp dir that the destructor removes (unless KEEL_IT_KEEP=1).
  std::string root;
  // The keeld to run; empty: the one built with the tests (KeeldPath()).
  std::string keeld_path;
};

class Cluster {
 public:
  struct Member {
    std::string name;
    int client_port = 0;
    int peer_port = 0;
    std::string data_dir;
    std::string log_path;
    std::vector<std::string> flags;  // Everything after argv[0].
    pid_t pid = -1;                  // -1 when not running.
    uint64_t member_id = 0;          // Learnt from Maintenance.Status.
    std::shared_ptr<grpc::Channel> channel;
  };

  explicit Cluster(ClusterOptions options);
  ~Cluster();
  Cluster(const Cluster&) = delete;
  Cluster& operator=(const Cluster&) = delete;

  // Starts every member and waits until each one serves (prints "serving as") and a
  // leader is agreed on. Retries with fresh ports when a member could not listen.
  [[nodiscard]] absl::Status Start(absl::Duration timeout = absl::Seconds(20));

  int size() const { return static_cast<int>(members_.size()); }
  Member& member(int i) { return members_[i]; }
  const std::string& root() const { return root_; }
  bool running(int i) const { return members_[i].pid > 0; }
  std::string client_address(int i) const;
  std::string host(int i) const;
  // "n1=http://127.0.0.1:P1,..." as passed to every member.
  std::string initial_cluster() const;

  // A new member (not started) named "n<size+1>" with fresh ports, whose flags join
  // the cluster: --initial-cluster-state existing and `initial_cluster` (as `member
  // add` prints it; "" means the running members plus this one). Returns its index.
  int AddMember(const std::string& initial_cluster = "");
  // Replaces member i's --initial-cluster flag (e.g. with what `member add` printed).
  void SetInitialCluster(int i, const std::string& initial_cluster);
  // "http://127.0.0.1:<peer port>" of member i.
  std::string peer_url(int i) const;
  // Member i (stopped, removed from the cluster and added again with MemberAdd under a
  // new id) joins again in its slot: same name, addresses and ports, its data dir wiped
  // and --initial-cluster-state existing, so it learns its new id from the others.
  [[nodiscard]] absl::Status PrepareRejoin(int i);

  // Launches member i with its flags (no wait). Appends to its log.
  [[nodiscard]] absl::Status Spawn(int i);
  // Waits until member i prints "serving as" in its log after its latest spawn; fails
  // early (with the log tail) if the process exits.
  [[nodiscard]] absl::Status WaitServing(int i, absl::Duration timeout);
  // SIGKILL and reap.
  void Kill(int i);
  // SIGTERM and wait for the exit; returns the exit code (or -1 and SIGKILLs on timeout).
  int Stop(int i, absl::Duration timeout = absl::Seconds(10));
  // Same flags, same data dir; waits until it serves.
  [[nodiscard]] absl::Status Restart(int i, absl::Duration timeout = absl::Seconds(15));
  // Sends `signal` to member i without waiting.
  void Signal(int i, int signal);
  // Waits for member i to exit; returns its exit code, or nullopt on timeout.
  std::optional<int> WaitExited(int i, absl::Duration timeout);
  // Non-blocking check whether member i has exited; returns its exit code if so.
  std::optional<int> Exited(int i);

  // Client stubs for member i (fresh stubs over the member's channel).
  std::unique_ptr<etcdserverpb::KV::Stub> Kv(int i);
  std::unique_ptr<etcdserverpb::Maintenance::Stub> Maintenance(int i);
  std::unique_ptr<etcdserverpb::Cluster::Stub> ClusterApi(int i);

  // One Status call with a deadline.
  absl::StatusOr<etcdserverpb::StatusResponse> Status(int i,
                                                      absl::Duration timeout = absl::Seconds(2));
  // Polls Status on every running member until all of them name the same leader and
  // that leader reports itself as leader. Returns the leader's index. Member `exclude`
  // (e.g. one that is shutting down) is neither asked nor accepted as leader.
  absl::StatusOr<int> WaitForLeader(absl::Duration timeout = absl::Seconds(15), int exclude = -1);
  int IndexOfMemberId(uint64_t member_id) const;

  // Single calls with a per-call deadline.
  grpc::Status Put(int i, const std::string& key, const std::string& value,
                   absl::Duration timeout = absl::Seconds(5),
                   etcdserverpb::PutResponse* response = nullptr);
  grpc::Status Get(int i, const std::string& key, bool serializable,
                   etcdserverpb::RangeResponse* response,
                   absl::Duration timeout = absl::Seconds(5));
  // Retries Put on UNAVAILABLE / DEADLINE_EXCEEDED (leader change, election) until
  // `timeout`; returns the last status.
  grpc::Status PutWithRetry(int i, const std::string& key, const std::string& value,
                            absl::Duration timeout = absl::Seconds(15));

  // Last `lines` lines of member i's log.
  std::string LogTail(int i, int lines = 30) const;
  std::string Log(int i) const;
  // What member i logged since its latest spawn.
  std::string LogSinceSpawn(int i) const;
  // Every member's log tail, for a failure message.
  std::string AllLogTails(int lines = 30) const;

 private:
  void AssignPorts();
  void BuildFlags(int i);
  void ResetChannel(int i);

  ClusterOptions options_;
  std::string root_;
  std::vector<Member> members_;
  std::vector<size_t> log_offset_at_spawn_;
  bool own_root_ = true;  // The root is a temp dir of ours, removed at the end.
};

// The deadline for a client context, `timeout` from now.
void SetDeadline(grpc::ClientContext* context, absl::Duration timeout);

}  // namespace keel::integration
