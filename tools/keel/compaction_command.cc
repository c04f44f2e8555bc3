// `keel compaction <revision>`: drop the history below a revision.
#include <iostream>
#include <memory>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "tools/keel/commands.h"

namespace keel::cli {
namespace {

struct CompactionArgs {
  int64_t revision = 0;
  bool physical = false;
};

absl::Status RunCompaction(Context& ctx, const CompactionArgs& args) {
  if (args.revision <= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("the revision must be > 0, not ", args.revision));
  }
  ASSIGN_OR_RETURN(keel::Client * client, ctx.client());
  ASSIGN_OR_RETURN(keel::CompactResponse r, client->Compact(args.revision, args.physical));
  if (ctx.format() == OutputFormat::kJson) {
    ctx.out() << GoJson(r) << "\n";
  } else {
    ctx.out() << "compacted revision " << args.revision << "\n";
  }
  return absl::OkStatus();
}

}  // namespace

void AddCompactionCommand(CLI::App& app, Context& ctx) {
  auto args = std::make_shared<CompactionArgs>();
  CLI::App* cmd = app.add_subcommand(
      "compaction", "Drop the history below a revision (reads at older revisions then fail)");
  cmd->footer(
      "Prints 'compacted revision N'. The current revision is in every -w json output "
      "(header.revision).\nExample:\n  keel compaction 1000 --physical");
  cmd->add_option("revision", args->revision, "Keep the history from this revision on")->required();
  cmd->add_flag("--physical", args->physical,
                "Wait until the space of the dropped history is reclaimed");
  cmd->callback(
      [&ctx, args] { ctx.set_action([&ctx, args] { return RunCompaction(ctx, *args); }); });
}

}  // namespace keel::cli
