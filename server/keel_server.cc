#include "server/keel_server.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <future>
#include <thread>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/status_macros.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "grpcpp/security/server_credentials.h"
#include "grpcpp/server_builder.h"
#include "raft/bootstrap.h"
#include "server/peer_wire.h"

namespace keel::server {
namespace {

// Bytes gRPC may receive beyond --max-request-bytes, so that an oversized request
// reaches our check (and its etcd error text) instead of gRPC's generic one.
constexpr int kGrpcOverheadBytes = 512 * 1024;

struct Identity {
  std::string name;
  uint64_t member_id = 0;
  uint64_t cluster_id = 0;
};

absl::StatusOr<std::optional<Identity>> ReadIdentity(const std::string& path) {
  std::ifstream in(path);
  if (!in) return std::optional<Identity>();
  Identity id;
  std::string line;
  while (std::getline(in, line)) {
    std::vector<std::string> kv = absl::StrSplit(line, absl::MaxSplits('=', 1));
    if (kv.size() != 2) continue;
    if (kv[0] == "name") id.name = kv[1];
    if (kv[0] == "member_id") (void)absl::SimpleHexAtoi(kv[1], &id.member_id);
    if (kv[0] == "cluster_id") (void)absl::SimpleHexAtoi(kv[1], &id.cluster_id);
  }
  if (id.member_id == 0 || id.cluster_id == 0) {
    return absl::DataLossError(absl::StrCat(path, " is not a valid member identity file"));
  }
  return std::optional<Identity>(id);
}

// Written once, atomically (temp file, fsync via close+rename is enough for a file
// that is re-derivable from the flags if lost).
absl::Status WriteIdentity(const std::string& path, const ServerConfig& c) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << "name=" << c.name << "\n"
        << "member_id=" << absl::StrCat(absl::Hex(c.member_id)) << "\n"
        << "cluster_id=" << absl::StrCat(absl::Hex(c.cluster_id)) << "\n";
    if (!out.flush()) return absl::InternalError(absl::StrCat("cannot write ", tmp));
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) return absl::InternalError(absl::StrCat("cannot write ", path, ": ", ec.message()));
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::unique_ptr<KeelServer>> KeelServer::Start(const ServerConfig& config) {
  std::unique_ptr<KeelServer> server(new KeelServer(config));
  absl::Status status = server->Open();
  if (!status.ok()) {
    server->Shutdown(absl::ZeroDuration());
    return status;
  }
  return server;
}

KeelServer::~KeelServer() { Shutdown(absl::ZeroDuration()); }

absl::Status KeelServer::DiscoverJoin() {
  ServerConfig& c = config_;
  std::vector<std::string> mine = c.initial_advertise_peer_urls;
  std::sort(mine.begin(), mine.end());
  std::string last_error = "no other member in --initial-cluster";
  for (const auto& m : c.members) {
    if (m.name == c.name) continue;
    for (const auto& url : m.peer_urls) {
      auto address = UrlToAddress(url);
      if (!address.ok()) continue;
      auto stub = etcdserverpb::Cluster::NewStub(
          grpc::CreateChannel(*address, grpc::InsecureChannelCredentials()));
      grpc::ClientContext context;
      context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(3)));
      etcdserverpb::MemberListRequest req;
      etcdserverpb::MemberListResponse resp;
      grpc::Status status = stub->MemberList(&context, req, &resp);
      if (!status.ok()) {
        last_error = absl::StrCat(m.name, " at ", url, ": ", status.error_message());
        continue;
      }
      for (const auto& member : resp.members()) {
        std::vector<std::string> urls(member.peerurls().begin(), member.peerurls().end());
        std::sort(urls.begin(), urls.end());
        if (urls != mine) continue;
        c.member_id = member.id();
        c.cluster_id = resp.header().cluster_id();
        for (const auto& other : resp.members()) {
          auto* r = discovered_.add_members();
          r->set_id(other.id());
          r->set_name(other.name());
          for (const auto& u : other.peerurls()) r->add_peer_urls(u);
          r->set_is_learner(other.islearner());
        }
        return absl::OkStatus();
      }
      return absl::FailedPreconditionError(absl::StrCat(
          "--initial-cluster-state existing: the cluster ", absl::Hex(resp.header().cluster_id()),
          " (asked ", m.name, " at ", url, ") has no member with this member's peer URLs ",
          absl::StrJoin(mine, ","), ": add it first (keel member add ", c.name,
          " --peer-urls=", absl::StrJoin(mine, ","), ")"));
    }
  }
  return absl::UnavailableError(absl::StrCat(
      "--initial-cluster-state existing: cannot reach any member of the cluster to join (",
      last_error, ")"));
}

absl::Status KeelServer::Open() {
  const ServerConfig& c = config_;
  std::error_code ec;
  std::filesystem::create_directories(c.data_dir, ec);
  if (ec) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot create data dir ", c.data_dir, ": ", ec.message()));
  }
  // One keeld per data dir: a second one would otherwise fail deep inside RocksDB.
  const std::string lock_path = c.data_dir + "/LOCK";
  data_dir_lock_fd_ = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (data_dir_lock_fd_ < 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot open ", lock_path, ": ", std::strerror(errno)));
  }
  if (::flock(data_dir_lock_fd_, LOCK_EX | LOCK_NB) != 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("data dir ", c.data_dir, " is in use by another keeld"));
  }
  const std::string identity_path = c.data_dir + "/member";
  ASSIGN_OR_RETURN(std::optional<Identity> identity, ReadIdentity(identity_path));
  const bool joining = c.initial_cluster_state == "existing";
  if (joining && identity) {
    // A member that joined earlier: its ids are in its data dir (an added member's id
    // is not derived from the flags).
    config_.member_id = identity->member_id;
    config_.cluster_id = identity->cluster_id;
  } else if (joining) {
    RETURN_IF_ERROR(DiscoverJoin());
  }
  if (identity && (identity->cluster_id != c.cluster_id || identity->member_id != c.member_id)) {
    return absl::FailedPreconditionError(absl::StrCat(
        "data dir ", c.data_dir, " belongs to member ", absl::Hex(identity->member_id), " ('",
        identity->name, "') of cluster ", absl::Hex(identity->cluster_id),
        ", but the flags describe member ", absl::Hex(c.member_id), " ('", c.name, "') of cluster ",
        absl::Hex(c.cluster_id),
        ": check --name, --initial-cluster and --initial-cluster-token, or use another "
        "--data-dir"));
  }

  storage::RaftLogStoreOptions log_options;
  log_options.group_id = 1;
  ASSIGN_OR_RETURN(log_, storage::RaftLogStore::Open(c.data_dir + "/log", log_options));
  ASSIGN_OR_RETURN(raft::InitialState initial, log_->GetInitialState());
  const bool empty_log = log_->LastIndex() == 0 && initial.hard_state.term() == 0;
  if (empty_log && c.initial_cluster_state == "new") {
    // A new cluster: every initial member writes the same membership entries.
    std::vector<uint64_t> voters;
    for (const auto& m : c.members) voters.push_back(m.id);
    const raftpb::HardState hs = raft::BootstrapHardState(voters.size());
    // Each entry carries its member (name, peer URLs), so a member that joins later and
    // replays the log from the start learns the initial members' addresses from it.
    std::vector<raftpb::Entry> entries = raft::BootstrapEntries(voters);
    const internalpb::MembershipRecord initial = RecordFromMembers(c.members);
    for (auto& e : entries) {
      raftpb::ConfChange change;
      if (!change.ParseFromString(e.data())) return absl::InternalError("bad bootstrap entry");
      internalpb::ConfChangeContext context;
      if (const auto* m = FindMember(initial, change.node_id())) *context.mutable_member() = *m;
      change.set_context(context.SerializeAsString());
      e.set_data(change.SerializeAsString());
    }
    RETURN_IF_ERROR(log_->Save(&hs, entries, nullptr, /*sync=*/true));
  }
  if (!identity) RETURN_IF_ERROR(WriteIdentity(identity_path, c));

  storage::KvStoreOptions kv_options;
  kv_options.dir = c.data_dir + "/kv";
  kv_options.block_cache_bytes = c.block_cache_bytes;
  kv_options.max_txn_ops = c.max_txn_ops;
  // The election-based minimum TTL is applied by the Lease service before proposing (so
  // it travels in the entry); the state machine's own floor must be the same constant
  // on every member.
  kv_options.min_lease_ttl_s = 1;
  ASSIGN_OR_RETURN(kv_, storage::KvStore::Open(kv_options));
  {
    // A member removed from the cluster must not come back with its old data: the
    // others refuse it, and it would only campaign and log refusals.
    ASSIGN_OR_RETURN(std::string stored, kv_->Members());
    internalpb::MembershipRecord record;
    if (!stored.empty() && record.ParseFromString(stored) &&
        std::find(record.removed().begin(), record.removed().end(), c.member_id) !=
            record.removed().end()) {
      return absl::FailedPreconditionError(absl::StrCat(
          "member ", absl::Hex(c.member_id), " ('", c.name, "') was removed from cluster ",
          absl::Hex(c.cluster_id), " and cannot rejoin with its old data: remove ", c.data_dir,
          ", add it again (keel member add) and start it with --initial-cluster-state existing"));
    }
  }

  RaftNodeOptions node_options;
  node_options.member_id = c.member_id;
  node_options.tick_interval_ms = c.heartbeat_interval_ms;
  node_options.election_timeout_ticks =
      std::max(2, c.election_timeout_ms / c.heartbeat_interval_ms);
  node_options.snapshot_count = c.snapshot_count;
  node_options.snapshot_catchup_entries = c.snapshot_catchup_entries;
  node_options.snapshot_dir = c.data_dir + "/snap";
  members_ = std::make_unique<MemberDirectory>(joining ? std::vector<MemberInfo>() : c.members);
  if (joining) members_->SetRecord(discovered_);
  members_->SetPeerInfo(c.member_id, absl::StrJoin(c.advertise_client_urls, ","), c.name);
  node_options.on_peer_client_urls =
      [members = members_.get()](uint64_t id, const std::string& urls, const std::string& name) {
        members->SetPeerInfo(id, urls, name);
      };
  node_options.on_removed_by_peer = [this](uint64_t peer) {
    if (removed_.exchange(true)) return;
    std::fprintf(stderr,
                 "keeld: peer %s refused this member (%s): it was removed from the cluster; "
                 "stopping\n",
                 FormatPeerId(peer).c_str(), FormatPeerId(config_.member_id).c_str());
  };
  if (!joining) node_options.initial_membership = RecordFromMembers(c.members);
  node_options.on_membership = [this](const internalpb::MembershipRecord& record) {
    OnMembership(record);
  };
  LeaseManagerOptions lease_options;
  lease_options.cluster_id = c.cluster_id;
  lease_options.member_id = c.member_id;
  lease_options.lessor.promotion_extension = absl::Milliseconds(c.election_timeout_ms);
  lease_options.lessor.checkpoint_interval = absl::Milliseconds(c.lease_checkpoint_interval_ms);
  lease_options.tick = absl::Milliseconds(std::clamp(c.heartbeat_interval_ms, 10, 50));
  lease_manager_ = std::make_unique<LeaseManager>(lease_options, kv_.get(), members_.get());
  node_options.on_applied = [leases = lease_manager_.get()](
                                const std::vector<raftpb::Entry>& entries,
                                const std::vector<storage::ApplyResult>& results) {
    leases->OnApplied(entries, results);
  };
  node_options.on_events = [this](std::vector<storage::ApplyResult>* results) {
    watch_hub_->Publish(results);
  };
  node_ = std::make_unique<RaftNode>(node_options, log_.get(), kv_.get());
  lease_manager_->Attach(node_.get());
  // Before the node starts applying, so the hub sees every applied batch.
  WatchHubOptions watch_options;
  watch_options.cluster_id = c.cluster_id;
  watch_options.member_id = c.member_id;
  watch_options.raft_term = [node = node_.get()] { return node->term(); };
  watch_options.has_leader = [node = node_.get()] { return node->leader_id() != 0; };
  watch_options.leader_check_interval = absl::Milliseconds(c.election_timeout_ms);
  watch_options.output.fragment_bytes = c.max_request_bytes;
  watch_hub_ = std::make_unique<WatchHub>(watch_options, kv_.get());

  PeerTransportOptions transport_options;
  transport_options.cluster_id = c.cluster_id;
  transport_options.member_id = c.member_id;
  transport_options.advertise_client_urls = absl::StrJoin(c.advertise_client_urls, ",");
  transport_options.member_name = c.name;
  transport_options.log = [](const std::string& line) {
    std::fprintf(stderr, "keeld: peer: %s\n", line.c_str());
  };
  transport_ = std::make_unique<PeerTransport>(transport_options, node_.get(), node_.get());
  node_->SetTransport(transport_.get());
  const internalpb::MembershipRecord initial_peers = members_->Record();
  for (const auto& m : initial_peers.members()) {
    if (m.id() == c.member_id || m.peer_urls().empty()) continue;
    ASSIGN_OR_RETURN(std::string address, UrlToAddress(m.peer_urls(0)));
    transport_->AddPeer(m.id(), address);
    transport_peers_[m.id()] = address;
  }
  membership_thread_ = std::thread([this] { MembershipLoop(); });

  // Filled before the peer port starts: forwarded lease calls use it.
  read_executor_ = std::make_unique<Executor>(2, 100'000);
  service_context_.cluster_id = c.cluster_id;
  service_context_.member_id = c.member_id;
  service_context_.node = node_.get();
  service_context_.kv = kv_.get();
  service_context_.read_executor = read_executor_.get();
  service_context_.members = members_.get();
  service_context_.leases = lease_manager_.get();
  // etcd's minimum: 1.5 election timeouts, rounded up to whole seconds.
  service_context_.min_lease_ttl_s = (3 * c.election_timeout_ms / 2 + 999) / 1000;
  service_context_.max_request_bytes = c.max_request_bytes;
  service_context_.max_txn_ops = c.max_txn_ops;
  service_context_.request_timeout =
      absl::Seconds(5) + absl::Milliseconds(2 * c.election_timeout_ms);
  service_context_.data_dirs = {c.data_dir + "/log", c.data_dir + "/kv"};
  space_quota_ =
      std::make_unique<SpaceQuota>(c.quota_backend_bytes, c.member_id, kv_.get(), node_.get());
  service_context_.quota = space_quota_.get();
  corruption_check_ = std::make_unique<CorruptionCheck>(c.corrupt_check_time, c.member_id,
                                                        kv_.get(), node_.get(), members_.get());
  service_context_.cluster_token = c.initial_cluster_token;
  service_context_.member_forwarder = &member_forwarder_;
  {
    grpc::ServerBuilder builder;
    std::vector<int> ports(c.listen_peer_urls.size(), 0);
    for (size_t i = 0; i < c.listen_peer_urls.size(); ++i) {
      ASSIGN_OR_RETURN(std::string address, UrlToAddress(c.listen_peer_urls[i]));
      builder.AddListeningPort(address, grpc::InsecureServerCredentials(), &ports[i]);
    }
    // A second keeld on the same port must fail, not share it (gRPC's default).
    builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
    transport_->ConfigureServerBuilder(builder);
    builder.RegisterService(transport_->service());
    // Followers forward keep-alives to the leader's peer port (lease_manager.h).
    lease_forward_service_ = std::make_unique<LeaseForwardService>(&service_context_);
    builder.RegisterService(lease_forward_service_.get());
    // Followers forward membership changes here; joining members ask for their id.
    cluster_peer_service_ = std::make_unique<ClusterService>(&service_context_);
    builder.RegisterService(cluster_peer_service_.get());
    peer_server_ = builder.BuildAndStart();
    for (size_t i = 0; i < ports.size(); ++i) {
      if (!peer_server_ || ports[i] == 0) {
        return absl::UnavailableError(absl::StrCat("cannot listen for peers on ",
                                                   c.listen_peer_urls[i],
                                                   " (port in use or address not available)"));
      }
    }
  }
  RETURN_IF_ERROR(node_->Start());
  lease_manager_->Start();
  space_quota_->Start();
  corruption_check_->Start();

  kv_service_ = std::make_unique<KvService>(&service_context_);
  lease_service_ = std::make_unique<LeaseService>(&service_context_);
  maintenance_service_ = std::make_unique<MaintenanceService>(&service_context_);
  cluster_service_ = std::make_unique<ClusterService>(&service_context_);
  watch_service_ = std::make_unique<WatchService>(watch_hub_.get(), node_.get());
  {
    grpc::ServerBuilder builder;
    std::vector<int> ports(c.listen_client_urls.size(), 0);
    for (size_t i = 0; i < c.listen_client_urls.size(); ++i) {
      ASSIGN_OR_RETURN(std::string address, UrlToAddress(c.listen_client_urls[i]));
      builder.AddListeningPort(address, grpc::InsecureServerCredentials(), &ports[i]);
    }
    builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
    builder.SetMaxReceiveMessageSize(static_cast<int>(c.max_request_bytes) + kGrpcOverheadBytes);
    builder.RegisterService(kv_service_.get());
    builder.RegisterService(lease_service_.get());
    builder.RegisterService(maintenance_service_.get());
    builder.RegisterService(cluster_service_.get());
    builder.RegisterService(watch_service_.get());
    client_server_ = builder.BuildAndStart();
    for (size_t i = 0; i < ports.size(); ++i) {
      if (!client_server_ || ports[i] == 0) {
        return absl::UnavailableError(absl::StrCat("cannot listen for clients on ",
                                                   c.listen_client_urls[i],
                                                   " (port in use or address not available)"));
      }
    }
  }
  return absl::OkStatus();
}

void KeelServer::OnMembership(const internalpb::MembershipRecord& record) {
  // A joining member lists what it was told until its own record catches up.
  members_->SetRecord(record.members_size() > 0 ? record : discovered_);
  {
    std::lock_guard<std::mutex> lock(membership_mu_);
    membership_pending_ = record;
  }
  membership_cv_.notify_one();
}

void KeelServer::MembershipLoop() {
  bool announced_removal = false;
  absl::Time give_up = absl::InfiniteFuture();
  for (;;) {
    internalpb::MembershipRecord record;
    {
      std::unique_lock<std::mutex> lock(membership_mu_);
      membership_cv_.wait_for(lock, std::chrono::milliseconds(200), [this] {
        return membership_stopping_ || membership_pending_.has_value();
      });
      if (membership_stopping_) return;
      if (membership_pending_) {
        record = std::move(*membership_pending_);
        membership_pending_.reset();
      } else if (!announced_removal) {
        continue;
      }
    }
    // Peers follow the record; only an explicit removal drops one (a member replaying
    // the log passes through records that do not list later members yet).
    for (const auto& m : record.members()) {
      if (m.id() == config_.member_id || m.peer_urls().empty()) continue;
      auto address = UrlToAddress(m.peer_urls(0));
      if (!address.ok()) continue;
      auto it = transport_peers_.find(m.id());
      if (it == transport_peers_.end()) {
        transport_->AddPeer(m.id(), *address);
        transport_peers_[m.id()] = *address;
      } else if (it->second != *address) {
        transport_->UpdatePeer(m.id(), *address);
        it->second = *address;
      }
    }
    bool self_removed = false;
    for (uint64_t id : record.removed()) {
      if (id == config_.member_id) {
        self_removed = true;
        continue;
      }
      if (transport_peers_.erase(id) > 0) {
        transport_->RemovePeer(id);
        std::fprintf(stderr, "keeld: member %s was removed from the cluster\n",
                     FormatPeerId(id).c_str());
      }
    }
    if (self_removed && !announced_removal) {
      announced_removal = true;
      give_up = absl::Now() + absl::Milliseconds(5 * config_.election_timeout_ms);
      std::fprintf(stderr,
                   "keeld: this member (%s) was removed from the cluster; it stops serving once "
                   "another member leads\n",
                   FormatPeerId(config_.member_id).c_str());
    }
    if (announced_removal && !removed_.load()) {
      // A removed leader hands over first (raft/design.md); give it a few election
      // timeouts, then stop regardless.
      const uint64_t leader = node_->leader_id();
      if ((leader != 0 && leader != config_.member_id) || absl::Now() >= give_up) {
        std::fprintf(stderr, "keeld: this member was removed from the cluster; stopping\n");
        removed_ = true;
      }
    }
  }
}

std::string KeelServer::Describe() const {
  return absl::StrCat("member ", absl::Hex(config_.member_id), " ('", config_.name,
                      "') of cluster ", absl::Hex(config_.cluster_id), ": clients on ",
                      absl::StrJoin(config_.listen_client_urls, ","), ", peers on ",
                      absl::StrJoin(config_.listen_peer_urls, ","), ", data in ", config_.data_dir);
}

void KeelServer::Shutdown(absl::Duration grace) {
  if (shut_down_) return;
  shut_down_ = true;
  if (node_ && grace > absl::ZeroDuration()) {
    node_->TransferLeadershipAway(absl::Milliseconds(2 * config_.election_timeout_ms));
  }
  // Watch streams never end on their own: end them now ("server stopped"), so their
  // clients move to another member and the server's Shutdown need not wait for them.
  if (watch_hub_) watch_hub_->Stop();
  // Refuse new client calls; in-flight ones get `grace`, then the node fails the rest
  // (which lets the server's Shutdown return).
  std::thread client_stop;
  if (client_server_) {
    std::promise<void> stopped;
    std::future<void> done = stopped.get_future();
    client_stop = std::thread([this, grace, stopped = std::move(stopped)]() mutable {
      client_server_->Shutdown(absl::ToChronoTime(absl::Now() + grace));
      stopped.set_value();
    });
    done.wait_for(std::chrono::milliseconds(absl::ToInt64Milliseconds(grace)));
  }
  if (space_quota_) space_quota_->Stop();
  if (corruption_check_) corruption_check_->Stop();
  if (node_) node_->Stop();
  if (membership_thread_.joinable()) {
    {
      std::lock_guard<std::mutex> lock(membership_mu_);
      membership_stopping_ = true;
    }
    membership_cv_.notify_all();
    membership_thread_.join();
  }
  // Answers the lease calls still waiting (so the client port's shutdown can finish).
  if (lease_manager_) lease_manager_->Stop();
  if (client_stop.joinable()) client_stop.join();
  if (read_executor_) read_executor_->Stop();
  if (peer_server_) peer_server_->Shutdown(absl::ToChronoTime(absl::Now()));
  if (transport_) transport_->Stop();
  client_server_.reset();
  peer_server_.reset();
  kv_service_.reset();
  lease_service_.reset();
  lease_forward_service_.reset();
  maintenance_service_.reset();
  cluster_service_.reset();
  cluster_peer_service_.reset();
  watch_service_.reset();
  read_executor_.reset();
  transport_.reset();
  node_.reset();
  space_quota_.reset();       // After the node: it fails the quota's pending proposal.
  corruption_check_.reset();  // The same.
  lease_manager_.reset();
  watch_hub_.reset();  // After the node: its apply thread publishes to the hub.
  kv_.reset();
  log_.reset();
  members_.reset();
  if (data_dir_lock_fd_ >= 0) {
    ::close(data_dir_lock_fd_);  // Releases the flock.
    data_dir_lock_fd_ = -1;
  }
}

}  // namespace keel::server
