// keel: the command-line client of a keel cluster (etcdctl's commands and habits).
//
// How the CLI is put together, and how to add a command:
//   - One file per command group (kv_commands.cc: put/get/del, txn_command.cc,
//     member_commands.cc, endpoint_commands.cc, compaction_command.cc,
//     check_commands.cc). Each exposes one Add*Commands(app, ctx) in commands.h that
//     creates its CLI11 subcommands, their flags, help text and a footer with examples.
//   - A subcommand's callback only hands `ctx` the action to run
//     (ctx.set_action(...)); main runs it after parsing succeeded, so parsing never
//     touches the network.
//   - An action returns absl::Status. It prints its result to ctx.out() in
//     ctx.format() (simple, json or table; output.h has the table and etcdctl-shaped
//     JSON), and uses ctx.client() — one keel::Client, connected on first use, with
//     --dial-timeout and --command-timeout — for leader finding, retries and deadlines.
//   - Errors are not printed by commands: main turns the Status into one line and an
//     exit code (errors.h); kInvalidArgument means bad input (exit 2).
//   So a new group (watch, lease, member add, snapshot, ...) is a new file, one line in
//   commands.h, one line below and one in CMakeLists.txt.
#include <iostream>

#include "CLI/App.hpp"
#include "CLI/Config.hpp"
#include "CLI/Formatter.hpp"
#include "absl/strings/str_cat.h"
#include "tools/keel/commands.h"
#include "tools/keel/context.h"
#include "tools/keel/errors.h"

namespace {

constexpr const char* kFooter =
    R"(Endpoints: --endpoints, else $KEEL_ENDPOINTS (comma-separated host:port), else
127.0.0.1:2379. One reachable member is enough: keel learns the others from the member
list, sends writes and linearizable reads to the leader, and retries with backoff
within --command-timeout.

Exit codes:
  0  done (a txn that took its failure branch is done too, as in etcdctl)
  1  the cluster refused or the check failed (compacted revision, unhealthy or
     unreachable member in endpoint status/health, check perf FAIL, ...)
  2  bad flags, arguments or input; nothing was changed
  3  unavailable: no member reachable, or no leader (no quorum)
  4  timed out (--command-timeout) while the cluster had a leader

Errors are one line on stderr that says what to do, e.g.
  keel: no leader: 2 of 3 members unreachable (127.0.0.1:22379, 127.0.0.1:32379); start them: 2 of 3 must run

Run 'keel <command> --help' for a command's flags and examples.)";

}  // namespace

int main(int argc, char** argv) {
  keel::cli::Context ctx(std::cout, std::cerr);
  keel::cli::GlobalFlags& flags = ctx.flags();

  CLI::App app{"keel: the command-line client of a keel cluster (etcd v3 API)", "keel"};
  app.set_version_flag("--version", "keel 0.1.0 (etcd v3 API 3.5)");
  app.footer(kFooter);
  app.require_subcommand(1);
  // Global flags may also follow the command: `keel get k -w json`.
  app.fallthrough();
  app.add_option("--endpoints", flags.endpoints, "Members to connect to: host:port,...")
      ->delimiter(',')
      ->envname("KEEL_ENDPOINTS")
      ->default_str("127.0.0.1:2379");
  keel::cli::AddDurationOption(&app, "--dial-timeout", &flags.dial_timeout,
                               "How long to wait for the first member to answer");
  keel::cli::AddDurationOption(&app, "--command-timeout", &flags.command_timeout,
                               "Deadline of each request, retries included");
  app.add_option("-w,--write-out", flags.write_out, "Output format: simple, json or table")
      ->check(CLI::IsMember({"simple", "json", "table"}))
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeLast)
      ->capture_default_str();

  keel::cli::AddKvCommands(app, ctx);
  keel::cli::AddTxnCommand(app, ctx);
  keel::cli::AddCompactionCommand(app, ctx);
  keel::cli::AddLeaseCommands(app, ctx);
  keel::cli::AddMemberCommands(app, ctx);
  keel::cli::AddEndpointCommands(app, ctx);
  keel::cli::AddCheckCommands(app, ctx);
  keel::cli::AddWatchCommand(app, ctx);
  keel::cli::AddMaintenanceCommands(app, ctx);

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    if (argc == 1) {  // Plain `keel`: the help, as a usage error.
      std::cerr << app.help();
      return keel::cli::kExitUsage;
    }
    // Name the command the error is about: "keel get: key is required".
    std::string command = "keel";
    CLI::App* deepest = &app;
    while (!deepest->get_subcommands().empty()) {
      deepest = deepest->get_subcommands().front();
      absl::StrAppend(&command, " ", deepest->get_name());
    }
    std::string message = e.what();
    // With fallthrough, an unknown word may end up left over at any level.
    for (CLI::App* level : {deepest, &app}) {
      if (deepest->get_require_subcommand_min() > 0 && !level->remaining().empty()) {
        message = absl::StrCat("unknown command '", level->remaining().front(), "'");
        break;
      }
    }
    std::cerr << command << ": " << message << " (see " << command << " --help)\n";
    return keel::cli::kExitUsage;
  }

  if (flags.endpoints.empty()) flags.endpoints = {"127.0.0.1:2379"};
  flags.format = *keel::cli::ParseOutputFormat(flags.write_out);  // Checked by CLI11 above.
  if (!ctx.action()) {
    std::cerr << "keel: no command given (see keel --help)\n";
    return keel::cli::kExitUsage;
  }
  const absl::Status status = ctx.action()();
  std::cout.flush();
  if (status.ok()) return keel::cli::kExitOk;
  const keel::cli::Failure failure = keel::cli::Explain(status, ctx);
  std::cerr << "keel: " << failure.message << "\n";
  return failure.exit_code;
}
