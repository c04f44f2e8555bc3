#include "server/server_config.h"

#include <map>
#include <sstream>

#include "CLI/App.hpp"
#include "CLI/Config.hpp"
#include "CLI/Formatter.hpp"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/failpoint.h"

namespace keel::server {
namespace {

std::vector<std::string> SplitList(const std::vector<std::string>& values) {
  std::vector<std::string> out;
  for (const auto& v : values) {
    for (absl::string_view part : absl::StrSplit(v, ',', absl::SkipEmpty())) {
      out.emplace_back(part);
    }
  }
  return out;
}

}  // namespace

absl::StatusOr<std::string> UrlToAddress(const std::string& url) {
  constexpr absl::string_view kHttp = "http://";
  if (absl::StartsWith(url, "https://")) {
    return absl::InvalidArgumentError(
        absl::StrCat("URL ", url, ": TLS is not supported yet; use http://host:port"));
  }
  if (!absl::StartsWith(url, kHttp)) {
    return absl::InvalidArgumentError(
        absl::StrCat("URL ", url, " must look like http://host:port"));
  }
  std::string address = url.substr(kHttp.size());
  while (!address.empty() && address.back() == '/') address.pop_back();
  const size_t colon = address.rfind(':');
  int port = 0;
  if (colon == std::string::npos || colon == 0 ||
      !absl::SimpleAtoi(address.substr(colon + 1), &port) || port <= 0 || port > 65535 ||
      address.find('/') != std::string::npos) {
    return absl::InvalidArgumentError(
        absl::StrCat("URL ", url, " must look like http://host:port with a port in 1..65535"));
  }
  return address;
}

absl::StatusOr<ServerConfig> ParseServerConfig(int argc, char** argv) {
  ServerConfig c;
  CLI::App app{"keeld: a keel server (one member of a replicated key-value cluster)", "keeld"};
  app.set_config("--config-file", "", "Read settings from this file (key = value per line)");
  app.set_version_flag("--version", "keeld 0.1.0 (etcd v3 API 3.5)");
  // A misspelt key in a config file is an error, not a silently ignored setting.
  app.allow_config_extras(CLI::config_extras_mode::error);
  std::vector<std::string> listen_client, advertise_client, listen_peer, advertise_peer;
  app.add_option("--name", c.name, "Human-readable name of this member")->capture_default_str();
  app.add_option("--data-dir", c.data_dir, "Data directory (default: <name>.keel)");
  app.add_option("--listen-client-urls", listen_client,
                 "URLs to serve clients on (default http://127.0.0.1:2379)")
      ->delimiter(',');
  app.add_option("--advertise-client-urls", advertise_client,
                 "Client URLs to tell the cluster (default: the listen URLs)")
      ->delimiter(',');
  app.add_option("--listen-peer-urls", listen_peer,
                 "URLs to serve peers on (default http://127.0.0.1:2380)")
      ->delimiter(',');
  app.add_option("--initial-advertise-peer-urls", advertise_peer,
                 "Peer URLs to tell the cluster (default: the listen peer URLs)")
      ->delimiter(',');
  app.add_option("--initial-cluster", c.initial_cluster,
                 "Initial members as name=peer-url,... (default: this member alone)");
  app.add_option("--initial-cluster-state", c.initial_cluster_state,
                 "new (bootstrap a cluster) or existing (join one)")
      ->check(CLI::IsMember({"new", "existing"}))
      ->capture_default_str();
  app.add_option("--initial-cluster-token", c.initial_cluster_token,
                 "Token unique to this cluster; members of clusters with other tokens are "
                 "refused")
      ->capture_default_str();
  app.add_option("--heartbeat-interval", c.heartbeat_interval_ms, "Heartbeat interval, ms")
      ->check(CLI::Range(1, 60'000))
      ->capture_default_str();
  app.add_option("--election-timeout", c.election_timeout_ms, "Election timeout, ms")
      ->check(CLI::Range(1, 600'000))
      ->capture_default_str();
  app.add_option("--snapshot-count", c.snapshot_count,
                 "Applied entries between state-machine snapshots")
      ->check(CLI::Range(uint64_t{1}, uint64_t{1} << 40))
      ->capture_default_str();
  app.add_option("--snapshot-catchup-entries", c.snapshot_catchup_entries,
                 "Entries kept in the log after a snapshot for slow followers")
      ->capture_default_str();
  app.add_option("--max-request-bytes", c.max_request_bytes, "Largest client request, bytes")
      ->check(CLI::Range(uint64_t{1024}, uint64_t{64} << 20))
      ->capture_default_str();
  app.add_option("--max-txn-ops", c.max_txn_ops, "Most operations in one txn")
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 20))
      ->capture_default_str();
  app.add_option("--block-cache-bytes", c.block_cache_bytes,
                 "RocksDB block cache for the key-value store, bytes")
      ->capture_default_str();
  app.add_option("--quota-backend-bytes", c.quota_backend_bytes,
                 "Live data size past which a NOSPACE alarm makes the cluster "
                 "read-and-delete-only, bytes (0: no quota)")
      ->check(CLI::Range(int64_t{0}, int64_t{1} << 50))
      ->capture_default_str();
  std::string corrupt_check_time = "0";
  app.add_option("--corrupt-check-time,--experimental-corrupt-check-time", corrupt_check_time,
                 "How often the leader compares the members' data hashes and raises a CORRUPT "
                 "alarm on a mismatch, a duration like 5m or 30s (0: off)")
      ->capture_default_str();
#if KEEL_FAILPOINTS_COMPILED
  app.add_option("--failpoints-file", c.failpoints_file,
                 "TEST BUILD: fault injection settings, re-read when the file changes");
  app.add_option(
      "--UNSAFE-bug", c.unsafe_bugs,
      "TEST BUILD: break keel on purpose (stale-local-reads, watch-skip-event, diverge-state) "
      "to test the tests");
#endif
  app.add_option("--lease-checkpoint-interval", c.lease_checkpoint_interval_ms,
                 "How often the leader checkpoints remaining lease TTLs through raft, ms")
      ->check(CLI::Range(10, 3'600'000))
      ->capture_default_str();
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp&) {
    return absl::CancelledError(app.help());
  } catch (const CLI::CallForVersion&) {
    return absl::CancelledError(app.version());
  } catch (const CLI::ParseError& e) {
    return absl::InvalidArgumentError(e.what());
  }
  if (!listen_client.empty()) c.listen_client_urls = SplitList(listen_client);
  c.advertise_client_urls = SplitList(advertise_client);
  if (!listen_peer.empty()) c.listen_peer_urls = SplitList(listen_peer);
  c.initial_advertise_peer_urls = SplitList(advertise_peer);
  if (!absl::ParseDuration(corrupt_check_time, &c.corrupt_check_time) ||
      c.corrupt_check_time < absl::ZeroDuration()) {
    return absl::InvalidArgumentError(absl::StrCat("--corrupt-check-time: '", corrupt_check_time,
                                                   "' is not a duration like 5m, 30s or 0 (off)"));
  }
  absl::Status status = Resolve(&c);
  if (!status.ok()) return status;
  return c;
}

absl::Status Resolve(ServerConfig* c) {
  if (c->name.empty()) return absl::InvalidArgumentError("--name must not be empty");
  if (c->data_dir.empty()) c->data_dir = c->name + ".keel";
  if (c->advertise_client_urls.empty()) c->advertise_client_urls = c->listen_client_urls;
  if (c->initial_advertise_peer_urls.empty()) {
    c->initial_advertise_peer_urls = c->listen_peer_urls;
  }
  for (const auto* list : {&c->listen_client_urls, &c->advertise_client_urls, &c->listen_peer_urls,
                           &c->initial_advertise_peer_urls}) {
    if (list->empty()) return absl::InvalidArgumentError("a URL list must not be empty");
    for (const auto& url : *list) {
      auto address = UrlToAddress(url);
      if (!address.ok()) return address.status();
    }
  }
  if (c->election_timeout_ms < 5 * c->heartbeat_interval_ms) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--election-timeout (", c->election_timeout_ms,
        " ms) must be at least 5 times --heartbeat-interval (", c->heartbeat_interval_ms, " ms)"));
  }
  if (c->initial_cluster.empty()) {
    c->initial_cluster =
        absl::StrCat(c->name, "=", absl::StrJoin(c->initial_advertise_peer_urls, ","));
  }
  // name=url pairs; a name may repeat to list several URLs.
  std::map<std::string, std::vector<std::string>> by_name;
  for (absl::string_view pair : absl::StrSplit(c->initial_cluster, ',', absl::SkipEmpty())) {
    std::vector<std::string> kv = absl::StrSplit(pair, absl::MaxSplits('=', 1));
    if (kv.size() != 2 || kv[0].empty() || kv[1].empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("--initial-cluster: '", pair, "' is not name=http://host:port"));
    }
    auto address = UrlToAddress(kv[1]);
    if (!address.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("--initial-cluster: ", address.status().message()));
    }
    by_name[kv[0]].push_back(kv[1]);
  }
  auto self = by_name.find(c->name);
  if (self == by_name.end()) {
    return absl::InvalidArgumentError(
        absl::StrCat("--initial-cluster does not list this member's --name '", c->name, "'"));
  }
  std::vector<std::string> mine = self->second, advertised = c->initial_advertise_peer_urls;
  std::sort(mine.begin(), mine.end());
  std::sort(advertised.begin(), advertised.end());
  if (mine != advertised) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--initial-cluster gives '", c->name, "' the peer URLs ", absl::StrJoin(mine, ","),
        " but --initial-advertise-peer-urls is ", absl::StrJoin(advertised, ",")));
  }
  c->members.clear();
  std::vector<uint64_t> ids;
  for (const auto& [name, urls] : by_name) {
    MemberInfo m;
    m.name = name;
    m.peer_urls = urls;
    m.id = ComputeMemberId(urls, c->initial_cluster_token);
    if (name == c->name) {
      m.client_urls = c->advertise_client_urls;
      c->member_id = m.id;
    }
    for (const auto& other : c->members) {
      if (other.id == m.id) {
        return absl::InvalidArgumentError(absl::StrCat("--initial-cluster: members '", other.name,
                                                       "' and '", name,
                                                       "' have the same peer URLs"));
      }
    }
    ids.push_back(m.id);
    c->members.push_back(std::move(m));
  }
  std::sort(c->members.begin(), c->members.end(),
            [](const MemberInfo& a, const MemberInfo& b) { return a.id < b.id; });
  c->cluster_id = ComputeClusterId(ids, c->initial_cluster_token);
  return absl::OkStatus();
}

}  // namespace keel::server
