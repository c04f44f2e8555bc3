// `keel member list|add|remove|promote|update` and `keel move-leader`, with
// etcdctl's output.
#include <algorithm>
#include <iostream>
#include <memory>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
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

absl::StatusOr<uint64_t> ParseMemberId(const std::string& hex) {
  uint64_t id = 0;
  const bool digits = std::all_of(hex.begin(), hex.end(), [](char ch) {
    return absl::ascii_isxdigit(static_cast<unsigned char>(ch));
  });
  if (hex.empty() || hex.size() > 16 || !digits || !absl::SimpleHexAtoi(hex, &id) || id == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("'", hex, "' is not a member id (hex, as `keel member list` prints it)"));
  }
  return id;
}

struct MemberArgs {
  std::string name_or_id;
  std::string peer_urls;
  bool learner = false;
};

std::vector<std::string> SplitUrls(const std::string& urls) {
  return absl::StrSplit(urls, ',', absl::SkipEmpty());
}

absl::Status RunMemberAdd(Context& ctx, const MemberArgs& a) {
  const std::vector<std::string> urls = SplitUrls(a.peer_urls);
  if (urls.empty()) return absl::InvalidArgumentError("member add needs --peer-urls");
  ASSIGN_OR_RETURN(keel::Client * client, ctx.client());
  ASSIGN_OR_RETURN(keel::MemberAddResponse r, client->MemberAdd(urls, a.learner));
  if (ctx.format() == OutputFormat::kJson) {
    ctx.out() << GoJson(r) << "\n";
    return absl::OkStatus();
  }
  // etcdctl's text: the environment the new member starts with.
  std::vector<std::string> cluster;
  for (const etcdserverpb::Member& m : r.members()) {
    for (const auto& u : m.peerurls()) {
      cluster.push_back(absl::StrCat(m.id() == r.member().id() ? a.name_or_id : m.name(), "=", u));
    }
  }
  const std::string initial_cluster = absl::StrJoin(cluster, ",");
  const std::string peers = absl::StrJoin(urls, ",");
  ctx.out() << "Member " << HexId(r.member().id()) << " added to cluster "
            << HexId(r.header().cluster_id()) << "\n\n"
            << "ETCD_NAME=\"" << a.name_or_id << "\"\n"
            << "ETCD_INITIAL_CLUSTER=\"" << initial_cluster << "\"\n"
            << "ETCD_INITIAL_ADVERTISE_PEER_URLS=\"" << peers << "\"\n"
            << "ETCD_INITIAL_CLUSTER_STATE=\"existing\"\n\n"
            << "Start it with an empty data dir:\n"
            << "keeld --name " << a.name_or_id << " --initial-advertise-peer-urls " << peers
            << " --listen-peer-urls " << peers << " --initial-cluster " << initial_cluster
            << " --initial-cluster-state existing\n";
  return absl::OkStatus();
}

template <typename Resp>
void PrintChange(Context& ctx, const Resp& r, uint64_t id, const char* verb) {
  if (ctx.format() == OutputFormat::kJson) {
    ctx.out() << GoJson(r) << "\n";
    return;
  }
  ctx.out() << "Member " << HexId(id) << " " << verb << " cluster "
            << HexId(r.header().cluster_id()) << "\n";
}

absl::Status RunMemberRemove(Context& ctx, const MemberArgs& a) {
  ASSIGN_OR_RETURN(uint64_t id, ParseMemberId(a.name_or_id));
  ASSIGN_OR_RETURN(keel::Client * client, ctx.client());
  ASSIGN_OR_RETURN(keel::MemberRemoveResponse r, client->MemberRemove(id));
  PrintChange(ctx, r, id, "removed from");
  return absl::OkStatus();
}

absl::Status RunMemberPromote(Context& ctx, const MemberArgs& a) {
  ASSIGN_OR_RETURN(uint64_t id, ParseMemberId(a.name_or_id));
  ASSIGN_OR_RETURN(keel::Client * client, ctx.client());
  ASSIGN_OR_RETURN(keel::MemberPromoteResponse r, client->MemberPromote(id));
  PrintChange(ctx, r, id, "promoted in");
  return absl::OkStatus();
}

absl::Status RunMemberUpdate(Context& ctx, const MemberArgs& a) {
  ASSIGN_OR_RETURN(uint64_t id, ParseMemberId(a.name_or_id));
  const std::vector<std::string> urls = SplitUrls(a.peer_urls);
  if (urls.empty()) return absl::InvalidArgumentError("member update needs --peer-urls");
  ASSIGN_OR_RETURN(keel::Client * client, ctx.client());
  ASSIGN_OR_RETURN(keel::MemberUpdateResponse r, client->MemberUpdate(id, urls));
  PrintChange(ctx, r, id, "updated in");
  return absl::OkStatus();
}

absl::Status RunMoveLeader(Context& ctx, const MemberArgs& a) {
  ASSIGN_OR_RETURN(uint64_t id, ParseMemberId(a.name_or_id));
  ASSIGN_OR_RETURN(keel::Client * client, ctx.client());
  ASSIGN_OR_RETURN(keel::MoveLeaderResponse r, client->MoveLeader(id));
  if (ctx.format() == OutputFormat::kJson) {
    ctx.out() << GoJson(r) << "\n";
    return absl::OkStatus();
  }
  // The answer comes from the leader that handed over.
  ctx.out() << "Leadership transferred from " << HexId(r.header().member_id()) << " to "
            << HexId(id) << "\n";
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

  auto args = std::make_shared<MemberArgs>();
  CLI::App* add = member->add_subcommand("add", "Add a member (then start it as printed)");
  add->add_option("name", args->name_or_id, "The new member's --name")->required();
  add->add_option("--peer-urls", args->peer_urls, "Its peer URLs, comma-separated")->required();
  add->add_flag("--learner", args->learner, "Add it as a learner (promote it once caught up)");
  add->callback(
      [&ctx, args] { ctx.set_action([&ctx, args] { return RunMemberAdd(ctx, *args); }); });
  CLI::App* remove = member->add_subcommand("remove", "Remove a member (the leader too)");
  remove->add_option("id", args->name_or_id, "Member id (hex)")->required();
  remove->callback(
      [&ctx, args] { ctx.set_action([&ctx, args] { return RunMemberRemove(ctx, *args); }); });
  CLI::App* promote = member->add_subcommand("promote", "Promote a learner that has caught up");
  promote->add_option("id", args->name_or_id, "Member id (hex)")->required();
  promote->callback(
      [&ctx, args] { ctx.set_action([&ctx, args] { return RunMemberPromote(ctx, *args); }); });
  CLI::App* update = member->add_subcommand("update", "Change a member's peer URLs");
  update->add_option("id", args->name_or_id, "Member id (hex)")->required();
  update->add_option("--peer-urls", args->peer_urls, "New peer URLs, comma-separated")->required();
  update->callback(
      [&ctx, args] { ctx.set_action([&ctx, args] { return RunMemberUpdate(ctx, *args); }); });

  CLI::App* move = app.add_subcommand("move-leader", "Hand leadership to a voter");
  move->add_option("id", args->name_or_id, "Target member id (hex)")->required();
  move->callback(
      [&ctx, args] { ctx.set_action([&ctx, args] { return RunMoveLeader(ctx, *args); }); });
}

}  // namespace keel::cli
