// What every `keel` command gets: the global flags, the output streams, and one
// keel::Client connected on first use (so `keel --help` and usage errors never touch
// the network). Single-threaded use from main; the Client itself is thread-safe.
#pragma once

#include <functional>
#include <iosfwd>
#include <memory>
#include <string>
#include <vector>

#include "CLI/App.hpp"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "keel/client.h"
#include "tools/keel/output.h"

namespace keel::cli {

// Exit codes that scripts can rely on (also in `keel --help` and the README).
enum ExitCode : int {
  kExitOk = 0,           // Done (a txn that took its failure branch is done too, as in etcdctl).
  kExitFailed = 1,       // The cluster refused or the check failed (compacted revision,
                         // unhealthy endpoint, check perf FAIL, ...).
  kExitUsage = 2,        // Bad flags, arguments or input; nothing was changed.
  kExitUnavailable = 3,  // No member reachable, or no leader (no quorum).
  kExitTimeout = 4,      // --command-timeout passed before the cluster answered.
};

struct GlobalFlags {
  std::vector<std::string> endpoints;  // "host:port" or "http://host:port".
  absl::Duration dial_timeout = absl::Seconds(2);
  absl::Duration command_timeout = absl::Seconds(5);
  std::string write_out = "simple";
  OutputFormat format = OutputFormat::kSimple;  // Parsed from write_out.
};

class Context {
 public:
  Context(std::ostream& out, std::ostream& err) : out_(out), err_(err) {}

  GlobalFlags& flags() { return flags_; }
  OutputFormat format() const { return flags_.format; }
  std::ostream& out() { return out_; }
  std::ostream& err() { return err_; }

  // The client, connected on the first call (within --dial-timeout; every call then
  // has --command-timeout as its deadline). Errors are Connect()'s.
  [[nodiscard]] absl::StatusOr<keel::Client*> client();
  // The client if a command connected one, else nullptr (for error diagnosis).
  keel::Client* connected_client() { return client_.get(); }
  // Options for a client of exactly `endpoints` (no member-list following), for
  // commands that must talk to one member at a time.
  [[nodiscard]] keel::ClientOptions ClientOptionsFor(std::vector<std::string> endpoints) const;

  // The command chosen on the command line; main runs it after parsing succeeded.
  void set_action(std::function<absl::Status()> action) { action_ = std::move(action); }
  const std::function<absl::Status()>& action() const { return action_; }

 private:
  GlobalFlags flags_;
  std::ostream& out_;
  std::ostream& err_;
  std::unique_ptr<keel::Client> client_;
  std::function<absl::Status()> action_;
};

// CLI11 option for a duration: "5s", "500ms", "1m", or a bare number of seconds.
CLI::Option* AddDurationOption(CLI::App* app, const std::string& name, absl::Duration* value,
                               const std::string& description);

// Reads all of stdin (for `put` without a value and `txn`).
[[nodiscard]] std::string ReadAll(std::istream& in);

}  // namespace keel::cli
