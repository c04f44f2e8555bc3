// `keel member ...`: the cluster's membership. Today `member list`; add, remove,
// promote and update join here when the server has them.
#include <iostream>
#include <memory>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/status_macros.h"
#include "tools/keel/commands.h"

namespace keel::cli {
namespace {

void PrintMemberList(const keel::MemberListResponse& r, OutputFormat format, std::ostream& out) {
  if (format == OutputFormat::kJson) {
    out << GoJson(r) << "\n";
    return;
  }
  Table table({"id", "status", "name", "peer addrs", "client addrs", "is learner"});
  for (const etcdserverpb::Member& m : r.members()) {
    // A member added but not yet started has no name (etcd's convention).
    std::vector<std::string> row = {HexId(m.id()),
                                    m.name().empty() ? "unstarted" : "started",
                                    m.name(),
                                    absl::StrJoin(m.peerurls(), ","),
                                    absl::StrJoin(m.clienturls(), ","),
                                    m.islearner() ? "true" : "false"};
    if (format == OutputFormat::kTable) {
      table.AddRow(std::move(row));
    } else {
      out << absl::StrJoin(row, ", ") << "\n";
    }
  }
  if (format == OutputFormat::kTable) out << table.Render();
}

absl::Status RunMemberList(Context& ctx) {
  ASSIGN_OR_RETURN(keel::Client * client, ctx.client());
  ASSIGN_OR_RETURN(keel::MemberListResponse r, client->MemberList());
  PrintMemberList(r, ctx.format(), ctx.out());
  return absl::OkStatus();
}

}  // namespace

void AddMemberCommands(CLI::App& app, Context& ctx) {
  CLI::App* member = app.add_subcommand("member", "The cluster's members");
  member->require_subcommand(1);
  CLI::App* list = member->add_subcommand("list", "List the members");
  list->footer(
      "Columns: ID (hex), STATUS (started, or unstarted for a member added but not yet "
      "running), NAME, PEER ADDRS, CLIENT ADDRS, IS LEARNER.");
  list->callback([&ctx] { ctx.set_action([&ctx] { return RunMemberList(ctx); }); });
}

}  // namespace keel::cli
