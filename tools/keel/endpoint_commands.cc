// `keel endpoint status|health`: every member of the cluster, asked one by one (all at
// once, each with its own deadline); a member that does not answer is a row that says
// so, not a failed command with nothing printed.
#include <iostream>
#include <memory>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/status_macros.h"
#include "tools/keel/commands.h"
#include "tools/keel/errors.h"
#include "tools/keel/probe.h"

namespace keel::cli {
namespace {

// The endpoints to report on: every member the cluster knows of plus the given ones.
// `client` is null (and the status says why) when no member could be reached.
std::vector<std::string> Targets(Context& ctx, absl::Status* connect_status) {
  absl::StatusOr<keel::Client*> client = ctx.client();
  *connect_status = client.status();
  return AllMemberEndpoints(ctx.flags(), client.ok() ? *client : nullptr);
}

// Fails the command when some members did not answer: exit 3 when none did, else 1.
absl::Status SummarizeUnreachable(const std::vector<std::string>& down, size_t total,
                                  const char* what) {
  if (down.empty()) return absl::OkStatus();
  const std::string line = absl::StrCat(down.size(), " of ", total, " members ", what, " (",
                                        absl::StrJoin(down, ", "), ")");
  if (down.size() == total) return absl::UnavailableError(line);
  return absl::FailedPreconditionError(line);
}

void PrintStatusTable(const std::vector<Probe>& probes, OutputFormat format, std::ostream& out) {
  if (format == OutputFormat::kJson) {
    std::vector<std::string> items;
    for (const Probe& p : probes) {
      items.push_back(p.status.ok()
                          ? absl::StrCat("{\"Endpoint\":", JsonString(p.endpoint),
                                         ",\"Status\":", GoJson(*p.status), "}")
                          : absl::StrCat("{\"Endpoint\":", JsonString(p.endpoint), ",\"Error\":",
                                         JsonString(p.status.status().message()), "}"));
    }
    out << "[" << absl::StrJoin(items, ",") << "]\n";
    return;
  }
  Table table({"endpoint", "id", "version", "db size", "is leader", "is learner", "raft term",
               "raft index", "raft applied index", "errors"});
  for (const Probe& p : probes) {
    std::vector<std::string> row;
    if (p.status.ok()) {
      const keel::StatusResponse& s = *p.status;
      row = {p.endpoint,
             HexId(s.header().member_id()),
             s.version(),
             HumanBytes(s.dbsize()),
             s.leader() != 0 && s.leader() == s.header().member_id() ? "true" : "false",
             s.islearner() ? "true" : "false",
             absl::StrCat(s.raftterm()),
             absl::StrCat(s.raftindex()),
             absl::StrCat(s.raftappliedindex()),
             absl::StrJoin(s.errors(), ", ")};
    } else {
      row = {p.endpoint, "",
             "",         "",
             "",         "",
             "",         "",
             "",         absl::StrCat("unreachable: ", OneLine(p.status.status().message()))};
    }
    if (format == OutputFormat::kTable) {
      table.AddRow(std::move(row));
    } else {
      out << absl::StrJoin(row, ", ") << "\n";
    }
  }
  if (format == OutputFormat::kTable) out << table.Render();
}

absl::Status RunEndpointStatus(Context& ctx) {
  absl::Status connected;
  const std::vector<std::string> endpoints = Targets(ctx, &connected);
  std::vector<Probe> probes;
  if (connected.ok()) {
    probes = ProbeStatus(**ctx.client(), endpoints, ctx.flags().command_timeout);
  } else {
    for (const std::string& e : endpoints) probes.push_back({e, connected, absl::ZeroDuration()});
  }
  PrintStatusTable(probes, ctx.format(), ctx.out());
  std::vector<std::string> down;
  for (const Probe& p : probes) {
    if (!p.status.ok()) down.push_back(p.endpoint);
  }
  return SummarizeUnreachable(down, probes.size(), "unreachable");
}

struct Health {
  std::string endpoint;
  bool healthy = false;
  absl::Duration took;
  std::string error;
};

// etcd's health check: a linearizable read of the key "health" through this member
// alone, which needs a leader and a quorum. Permission denied still means healthy.
Health CheckHealth(Context& ctx, const std::string& endpoint) {
  Health h;
  h.endpoint = endpoint;
  const absl::Time start = absl::Now();
  keel::ClientOptions options = ctx.ClientOptionsFor({endpoint});
  options.follow_membership = false;
  absl::StatusOr<std::unique_ptr<keel::Client>> client = keel::Client::Connect(options);
  absl::Status status = client.status();
  if (client.ok()) status = (*client)->Get("health").status();
  h.took = absl::Now() - start;
  h.healthy = status.ok() || absl::IsPermissionDenied(status);
  if (!h.healthy) h.error = OneLine(status.message());
  return h;
}

void PrintHealth(const std::vector<Health>& results, OutputFormat format, std::ostream& out) {
  if (format == OutputFormat::kJson) {
    std::vector<std::string> items;
    for (const Health& h : results) {
      std::string item = absl::StrCat("{\"endpoint\":", JsonString(h.endpoint),
                                      ",\"health\":", h.healthy ? "true" : "false",
                                      ",\"took\":", JsonString(GoDuration(h.took)));
      if (!h.error.empty()) absl::StrAppend(&item, ",\"error\":", JsonString(h.error));
      items.push_back(item + "}");
    }
    out << "[" << absl::StrJoin(items, ",") << "]\n";
    return;
  }
  Table table({"endpoint", "health", "took", "error"});
  for (const Health& h : results) {
    if (format == OutputFormat::kTable) {
      table.AddRow({h.endpoint, h.healthy ? "true" : "false", GoDuration(h.took), h.error});
    } else if (h.healthy) {
      out << h.endpoint
          << " is healthy: successfully committed proposal: took = " << GoDuration(h.took) << "\n";
    } else {
      out << h.endpoint << " is unhealthy: failed to commit proposal: " << h.error << "\n";
    }
  }
  if (format == OutputFormat::kTable) out << table.Render();
}

absl::Status RunEndpointHealth(Context& ctx) {
  absl::Status connected;
  const std::vector<std::string> endpoints = Targets(ctx, &connected);
  std::vector<Health> results(endpoints.size());
  std::vector<std::thread> threads;
  for (size_t i = 0; i < endpoints.size(); ++i) {
    threads.emplace_back([&, i] { results[i] = CheckHealth(ctx, endpoints[i]); });
  }
  for (std::thread& t : threads) t.join();
  PrintHealth(results, ctx.format(), ctx.out());
  std::vector<std::string> down;
  for (const Health& h : results) {
    if (!h.healthy) down.push_back(h.endpoint);
  }
  return SummarizeUnreachable(down, results.size(), "unhealthy");
}

struct HashKvRow {
  std::string endpoint;
  absl::StatusOr<keel::HashKVResponse> hash;
};

absl::Status RunEndpointHashKv(Context& ctx, int64_t revision) {
  absl::Status connected;
  const std::vector<std::string> endpoints = Targets(ctx, &connected);
  std::vector<HashKvRow> rows(endpoints.size());
  std::vector<std::thread> threads;
  for (size_t i = 0; i < endpoints.size(); ++i) {
    rows[i].endpoint = endpoints[i];
    if (!connected.ok()) {
      rows[i].hash = connected;
      continue;
    }
    threads.emplace_back([&, i] {
      keel::CallOptions options;
      options.timeout = ctx.flags().command_timeout;
      rows[i].hash = (*ctx.client())->HashKV(endpoints[i], revision, options);
    });
  }
  for (std::thread& t : threads) t.join();
  std::vector<std::string> down;
  absl::Status refused;
  if (ctx.format() == OutputFormat::kJson) {
    std::vector<std::string> items;
    for (const HashKvRow& r : rows) {
      items.push_back(
          r.hash.ok() ? absl::StrCat("{\"Endpoint\":", JsonString(r.endpoint),
                                     ",\"HashKV\":", GoJson(*r.hash), "}")
                      : absl::StrCat("{\"Endpoint\":", JsonString(r.endpoint),
                                     ",\"Error\":", JsonString(r.hash.status().message()), "}"));
    }
    ctx.out() << "[" << absl::StrJoin(items, ",") << "]\n";
  }
  Table table({"endpoint", "hash"});
  for (const HashKvRow& r : rows) {
    if (!r.hash.ok()) {
      // A compacted or future revision is the cluster's answer, not a dead member.
      if (absl::IsOutOfRange(r.hash.status())) {
        refused = r.hash.status();
      } else {
        down.push_back(r.endpoint);
      }
      if (ctx.format() != OutputFormat::kJson) {
        ctx.err() << r.endpoint << ": " << OneLine(r.hash.status().message()) << "\n";
      }
      continue;
    }
    if (ctx.format() == OutputFormat::kTable) {
      table.AddRow({r.endpoint, absl::StrCat(r.hash->hash())});
    } else if (ctx.format() == OutputFormat::kSimple) {
      ctx.out() << r.endpoint << ", " << r.hash->hash() << "\n";
    }
  }
  if (ctx.format() == OutputFormat::kTable) ctx.out() << table.Render();
  if (!refused.ok()) return refused;
  return SummarizeUnreachable(down, rows.size(), "unreachable");
}

}  // namespace

void AddEndpointCommands(CLI::App& app, Context& ctx) {
  CLI::App* endpoint = app.add_subcommand("endpoint", "Status and health of every member");
  endpoint->require_subcommand(1);
  endpoint->footer(
      "Both report on every member of the cluster (learnt from the member list) and on "
      "every --endpoints entry, one row each; a member that does not answer within "
      "--command-timeout is a row saying so. Exit code 1 if any member is unreachable or "
      "unhealthy, 3 if none answered.");

  CLI::App* status = endpoint->add_subcommand("status", "Each member's Raft and storage status");
  status->footer(
      "Columns: ENDPOINT, ID, VERSION, DB SIZE, IS LEADER, IS LEARNER, RAFT TERM, RAFT INDEX, "
      "RAFT APPLIED INDEX, ERRORS.");
  status->callback([&ctx] { ctx.set_action([&ctx] { return RunEndpointStatus(ctx); }); });

  CLI::App* health = endpoint->add_subcommand(
      "health", "Whether each member serves a linearizable read (needs a leader and a quorum)");
  health->callback([&ctx] { ctx.set_action([&ctx] { return RunEndpointHealth(ctx); }); });

  auto hash_revision = std::make_shared<int64_t>(0);
  CLI::App* hashkv = endpoint->add_subcommand(
      "hashkv", "Each member's hash of the key space (equal members have equal hashes)");
  hashkv->add_option("--rev", *hash_revision, "Hash up to this revision (0: each member's newest)")
      ->capture_default_str();
  hashkv->footer(
      "Columns: ENDPOINT, HASH. Members agree on the hash of the same revision (give --rev, "
      "or stop writes: without it each member hashes its own newest revision).");
  hashkv->callback([&ctx, hash_revision] {
    ctx.set_action([&ctx, hash_revision] { return RunEndpointHashKv(ctx, *hash_revision); });
  });
}

}  // namespace keel::cli
