// The command groups of the `keel` CLI. Each Add*Commands registers its subcommands
// on the top-level app; a subcommand's callback hands the context the action to run
// (see keel_main.cc for the pattern).
#pragma once

#include "CLI/App.hpp"
#include "tools/keel/context.h"

namespace keel::cli {

void AddKvCommands(CLI::App& app, Context& ctx);           // put, get, del
void AddTxnCommand(CLI::App& app, Context& ctx);           // txn
void AddCompactionCommand(CLI::App& app, Context& ctx);    // compaction
void AddLeaseCommands(CLI::App& app, Context& ctx);        // lease grant|revoke|keep-alive|...
void AddMemberCommands(CLI::App& app, Context& ctx);       // member *, move-leader
void AddEndpointCommands(CLI::App& app, Context& ctx);     // endpoint status|health
void AddCheckCommands(CLI::App& app, Context& ctx);        // check perf
void AddWatchCommand(CLI::App& app, Context& ctx);         // watch
void AddMaintenanceCommands(CLI::App& app, Context& ctx);  // alarm, defrag, snapshot

}  // namespace keel::cli
