#include "tools/keel/lease_commands.h"

#include <algorithm>
#include <iostream>
#include <memory>
#include <thread>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "common/status_macros.h"
#include "tools/keel/commands.h"

namespace keel::cli {
namespace {

// `{"cluster_id":..,"member_id":..,"revision":..,"raft_term":..` + `fields` + `}`: a Go
// struct that embeds the header, as etcdctl prints its client's lease responses.
std::string WithEmbeddedHeader(const etcdserverpb::ResponseHeader& header,
                               const std::string& fields) {
  std::string json = GoJson(header);  // "{...}" with zero fields left out.
  json.pop_back();
  if (json.size() > 1 && !fields.empty()) json += ",";
  return json + fields + "}";
}

struct GrantArgs {
  int64_t ttl_s = 0;
  std::string id = "0";
};
struct IdArgs {
  std::string id;
  bool keys = false;  // timetolive
  bool once = false;  // keep-alive
};

absl::Status RunGrant(Context& ctx, const GrantArgs& args) {
  if (args.ttl_s <= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("the TTL must be > 0 seconds, not ", args.ttl_s));
  }
  keel::LeaseGrantOptions options;
  ASSIGN_OR_RETURN(options.id, ParseLeaseId(args.id));
  ASSIGN_OR_RETURN(keel::Client * client, ctx.client());
  ASSIGN_OR_RETURN(keel::LeaseGrantResponse r, client->LeaseGrant(args.ttl_s, options));
  PrintLeaseGrant(r, ctx.format(), ctx.out());
  return absl::OkStatus();
}

absl::Status RunRevoke(Context& ctx, const IdArgs& args) {
  ASSIGN_OR_RETURN(int64_t id, ParseLeaseId(args.id));
  ASSIGN_OR_RETURN(keel::Client * client, ctx.client());
  ASSIGN_OR_RETURN(keel::LeaseRevokeResponse r, client->LeaseRevoke(id));
  PrintLeaseRevoke(id, r, ctx.format(), ctx.out());
  return absl::OkStatus();
}

absl::Status RunTimeToLive(Context& ctx, const IdArgs& args) {
  ASSIGN_OR_RETURN(int64_t id, ParseLeaseId(args.id));
  ASSIGN_OR_RETURN(keel::Client * client, ctx.client());
  ASSIGN_OR_RETURN(keel::LeaseTimeToLiveResponse r, client->LeaseTimeToLive(id, args.keys));
  PrintLeaseTimeToLive(r, args.keys, ctx.format(), ctx.out());
  return absl::OkStatus();
}

absl::Status RunList(Context& ctx) {
  ASSIGN_OR_RETURN(keel::Client * client, ctx.client());
  ASSIGN_OR_RETURN(keel::LeaseLeasesResponse r, client->LeaseLeases());
  PrintLeaseList(r, ctx.format(), ctx.out());
  return absl::OkStatus();
}

// Renews every TTL/3 (as etcd's client does) and prints each answer, until the lease
// is gone (exit 1) or the process is stopped; --once renews once.
absl::Status RunKeepAlive(Context& ctx, const IdArgs& args) {
  ASSIGN_OR_RETURN(int64_t id, ParseLeaseId(args.id));
  ASSIGN_OR_RETURN(keel::Client * client, ctx.client());
  for (;;) {
    ASSIGN_OR_RETURN(keel::LeaseKeepAliveResponse r, client->LeaseKeepAliveOnce(id));
    if (r.ttl() <= 0) {
      return absl::NotFoundError(absl::StrCat("lease ", LeaseIdHex(id), " expired or revoked"));
    }
    PrintLeaseKeepAlive(r, ctx.format(), ctx.out());
    ctx.out().flush();
    if (args.once) return absl::OkStatus();
    std::this_thread::sleep_for(std::chrono::milliseconds(
        std::max<int64_t>(500, r.ttl() * 1000 / 3)));  // The renewal period, not a wait.
  }
}

}  // namespace

absl::StatusOr<int64_t> ParseLeaseId(const std::string& hex) {
  // Hex digits only (no "0x", no sign), so what one tool prints the other reads.
  uint64_t id = 0;
  const bool digits = std::all_of(hex.begin(), hex.end(), [](char ch) {
    return absl::ascii_isxdigit(static_cast<unsigned char>(ch));
  });
  if (hex.empty() || hex.size() > 16 || !digits || !absl::SimpleHexAtoi(hex, &id)) {
    return absl::InvalidArgumentError(
        absl::StrCat("'", hex, "' is not a lease id (hex, as `keel lease grant` prints it)"));
  }
  return static_cast<int64_t>(id);
}

std::string LeaseIdHex(int64_t id) { return absl::StrFormat("%016x", static_cast<uint64_t>(id)); }

void PrintLeaseGrant(const keel::LeaseGrantResponse& r, OutputFormat format, std::ostream& out) {
  if (format == OutputFormat::kJson) {
    out << WithEmbeddedHeader(r.header(), absl::StrCat("\"ID\":", r.id(), ",\"TTL\":", r.ttl(),
                                                       ",\"Error\":", JsonString(r.error())))
        << "\n";
    return;
  }
  out << "lease " << LeaseIdHex(r.id()) << " granted with TTL(" << r.ttl() << "s)\n";
}

void PrintLeaseRevoke(int64_t id, const keel::LeaseRevokeResponse& r, OutputFormat format,
                      std::ostream& out) {
  if (format == OutputFormat::kJson) {
    out << GoJson(r) << "\n";
    return;
  }
  out << "lease " << LeaseIdHex(id) << " revoked\n";
}

void PrintLeaseKeepAlive(const keel::LeaseKeepAliveResponse& r, OutputFormat format,
                         std::ostream& out) {
  if (format == OutputFormat::kJson) {
    out << WithEmbeddedHeader(r.header(), absl::StrCat("\"ID\":", r.id(), ",\"TTL\":", r.ttl()))
        << "\n";
    return;
  }
  out << "lease " << LeaseIdHex(r.id()) << " keepalived with TTL(" << r.ttl() << ")\n";
}

void PrintLeaseTimeToLive(const keel::LeaseTimeToLiveResponse& r, bool keys, OutputFormat format,
                          std::ostream& out) {
  if (format == OutputFormat::kJson) {
    std::vector<std::string> encoded;
    for (const std::string& k : r.keys())
      encoded.push_back(absl::StrCat("\"", absl::Base64Escape(k), "\""));
    const std::string key_list =
        r.keys().empty() ? "null" : absl::StrCat("[", absl::StrJoin(encoded, ","), "]");
    out << WithEmbeddedHeader(r.header(), absl::StrCat("\"id\":", r.id(), ",\"ttl\":", r.ttl(),
                                                       ",\"granted-ttl\":", r.grantedttl(),
                                                       ",\"keys\":", key_list))
        << "\n";
    return;
  }
  if (r.grantedttl() == 0 && r.ttl() == -1) {
    out << "lease " << LeaseIdHex(r.id()) << " already expired\n";
    return;
  }
  out << "lease " << LeaseIdHex(r.id()) << " granted with TTL(" << r.grantedttl()
      << "s), remaining(" << r.ttl() << "s)";
  if (keys) out << ", attached keys([" << absl::StrJoin(r.keys(), " ") << "])";
  out << "\n";
}

void PrintLeaseList(const keel::LeaseLeasesResponse& r, OutputFormat format, std::ostream& out) {
  if (format == OutputFormat::kJson) {
    std::vector<std::string> leases;
    for (const auto& l : r.leases()) leases.push_back(absl::StrCat("{\"id\":", l.id(), "}"));
    out << WithEmbeddedHeader(r.header(),
                              absl::StrCat("\"leases\":[", absl::StrJoin(leases, ","), "]"))
        << "\n";
    return;
  }
  out << "found " << r.leases_size() << " leases\n";
  for (const auto& l : r.leases()) out << LeaseIdHex(l.id()) << "\n";
}

void AddLeaseCommands(CLI::App& app, Context& ctx) {
  CLI::App* lease = app.add_subcommand("lease", "Leases: keys that expire unless kept alive");
  lease->require_subcommand(1);
  lease->footer(
      "A key put with --lease=<id> is deleted when the lease expires or is revoked. The "
      "leader counts leases down; a keep-alive may go to any member.\nExample:\n"
      "  id=$(keel lease grant 30 | cut -d' ' -f2)\n"
      "  keel put --lease=$id service/me up\n"
      "  keel lease keep-alive $id");

  auto grant = std::make_shared<GrantArgs>();
  CLI::App* cmd = lease->add_subcommand("grant", "Grant a lease of <ttl> seconds");
  cmd->footer(
      "Prints 'lease <id> granted with TTL(<ttl>s)'. A TTL below the cluster's "
      "minimum (1.5 election timeouts) is raised to it.");
  cmd->add_option("ttl", grant->ttl_s, "Time to live, seconds")->required();
  cmd->add_option("--id", grant->id, "Choose the lease id (hex; default: the cluster picks)");
  cmd->callback([&ctx, grant] { ctx.set_action([&ctx, grant] { return RunGrant(ctx, *grant); }); });

  auto revoke = std::make_shared<IdArgs>();
  cmd = lease->add_subcommand("revoke", "Revoke a lease and delete its keys");
  cmd->add_option("id", revoke->id, "Lease id (hex)")->required();
  cmd->callback(
      [&ctx, revoke] { ctx.set_action([&ctx, revoke] { return RunRevoke(ctx, *revoke); }); });

  auto ttl = std::make_shared<IdArgs>();
  cmd = lease->add_subcommand("timetolive", "A lease's granted and remaining TTL");
  cmd->footer(
      "Prints 'lease <id> granted with TTL(<g>s), remaining(<r>s)', or 'lease <id> "
      "already expired'.");
  cmd->add_option("id", ttl->id, "Lease id (hex)")->required();
  cmd->add_flag("--keys", ttl->keys, "Also list the keys attached to it");
  cmd->callback([&ctx, ttl] { ctx.set_action([&ctx, ttl] { return RunTimeToLive(ctx, *ttl); }); });

  cmd = lease->add_subcommand("list", "List every lease");
  cmd->callback([&ctx] { ctx.set_action([&ctx] { return RunList(ctx); }); });

  auto keep = std::make_shared<IdArgs>();
  cmd = lease->add_subcommand("keep-alive", "Keep a lease alive (until stopped or it is gone)");
  cmd->footer(
      "Renews every TTL/3 and prints 'lease <id> keepalived with TTL(<ttl>)' each "
      "time; exits 1 once the lease has expired or was revoked.");
  cmd->add_option("id", keep->id, "Lease id (hex)")->required();
  cmd->add_flag("--once", keep->once, "Renew once and exit");
  cmd->callback(
      [&ctx, keep] { ctx.set_action([&ctx, keep] { return RunKeepAlive(ctx, *keep); }); });
}

}  // namespace keel::cli
