#include "server/peer_transport.h"

#include <algorithm>
#include <cstdio>
#include <random>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/check.h"
#include "server/peer_receiver.h"
#include "server/peer_sender.h"
#include "server/peer_wire.h"

namespace keel::server {
namespace {

// The receiver's slack over the largest payload for message framing.
constexpr int kReceiveOverheadBytes = 1 << 20;
// Peers ping at most every 10 s (peer_sender.cc); allow somewhat more often.
constexpr int kMinPeerPingIntervalMs = 5'000;

PeerTransportOptions WithDefaults(PeerTransportOptions options) {
  KEEL_CHECK_MSG(options.cluster_id != 0, "PeerTransportOptions.cluster_id must be set");
  KEEL_CHECK_MSG(options.member_id != 0, "PeerTransportOptions.member_id must be set");
  KEEL_CHECK(options.queue_messages_max > 0 && options.queue_bytes_max > 0);
  KEEL_CHECK(options.batch_bytes_max > 0 && options.snapshot_chunk_bytes > 0);
  KEEL_CHECK(options.reconnect_backoff_initial_ms > 0 &&
             options.reconnect_backoff_max_ms >= options.reconnect_backoff_initial_ms);
  KEEL_CHECK(options.connect_timeout_ms > 0);
  if (!options.log) {
    options.log = [](const std::string& line) {
      std::fprintf(stderr, "keel peer transport: %s\n", line.c_str());
    };
  }
  if (options.random_seed == 0) options.random_seed = std::random_device()();
  return options;
}

}  // namespace

PeerTransport::PeerTransport(PeerTransportOptions options, PeerMessageHandler* handler,
                             SnapshotHandler* snapshots)
    : options_(WithDefaults(std::move(options))), handler_(handler), snapshots_(snapshots) {
  KEEL_CHECK(handler_ != nullptr && snapshots_ != nullptr);
  receiver_ = std::make_unique<PeerReceiver>(options_, handler_, snapshots_);
  next_seed_ = options_.random_seed;
}

PeerTransport::~PeerTransport() { Stop(); }

grpc::Service* PeerTransport::service() { return receiver_.get(); }

void PeerTransport::ConfigureServerBuilder(grpc::ServerBuilder& builder) const {
  const size_t largest =
      std::max({options_.batch_bytes_max, options_.queue_bytes_max, options_.snapshot_chunk_bytes});
  builder.SetMaxReceiveMessageSize(
      static_cast<int>(std::min<size_t>(largest + kReceiveOverheadBytes, INT32_MAX)));
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS,
                             kMinPeerPingIntervalMs);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
}

void PeerTransport::Log(const std::string& line) const { options_.log(line); }

std::shared_ptr<PeerSender> PeerTransport::FindPeer(uint64_t id) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = peers_.find(id);
  return it == peers_.end() ? nullptr : it->second;
}

void PeerTransport::AddPeer(uint64_t id, const std::string& address) {
  KEEL_CHECK_MSG(id != 0 && id != options_.member_id, "a peer needs its own non-zero id");
  std::lock_guard<std::mutex> lock(mu_);
  if (stopped_) return;
  receiver_->UnmarkRemoved(id);
  removed_.erase(id);
  auto it = peers_.find(id);
  if (it != peers_.end()) {
    it->second->SetAddress(address);
    return;
  }
  // Each peer's jitter gets its own stream of the one seeded source.
  const uint64_t seed = next_seed_;
  next_seed_ = std::mt19937_64(next_seed_)();
  peers_.emplace(
      id, std::make_shared<PeerSender>(options_, handler_, snapshots_, id, address, seed ^ id));
}

void PeerTransport::UpdatePeer(uint64_t id, const std::string& address) { AddPeer(id, address); }

void PeerTransport::RemovePeer(uint64_t id) {
  std::shared_ptr<PeerSender> sender;
  {
    std::lock_guard<std::mutex> lock(mu_);
    receiver_->MarkRemoved(id);
    removed_.insert(id);
    auto it = peers_.find(id);
    if (it == peers_.end()) return;
    sender = std::move(it->second);
    peers_.erase(it);
  }
  sender->Stop();  // Outside mu_: it joins threads that may call into the handler.
}

void PeerTransport::Send(std::vector<raftpb::Message> messages) {
  // Group by destination, keeping each peer's order; one enqueue (one lock) per peer.
  std::map<uint64_t, std::vector<raftpb::Message>> by_peer;
  for (raftpb::Message& message : messages) {
    by_peer[message.to()].push_back(std::move(message));
  }
  for (auto& [to, group] : by_peer) {
    std::shared_ptr<PeerSender> sender = FindPeer(to);
    if (sender == nullptr) {
      bool stopped;
      {
        std::lock_guard<std::mutex> lock(mu_);
        // Answers to a removed leader that still leads until it handed over: expected.
        stopped = stopped_ || removed_.count(to) > 0;
      }
      if (!stopped) {
        Log(absl::StrCat("dropped ", group.size(), " message(s) to unknown peer ",
                         FormatPeerId(to)));
      }
      continue;
    }
    std::vector<raftpb::Message> ordinary;
    ordinary.reserve(group.size());
    for (raftpb::Message& message : group) {
      if (message.type() != raftpb::MSG_SNAP) {
        ordinary.push_back(std::move(message));
        continue;
      }
      if (!sender->StartSnapshot(std::move(message))) {
        Log(absl::StrCat("dropped a MsgSnap to peer ", FormatPeerId(to),
                         ": a snapshot transfer to it is in flight or the transport is stopping"));
      }
    }
    if (!ordinary.empty()) sender->Enqueue(std::move(ordinary));
  }
}

void PeerTransport::Stop() {
  std::map<uint64_t, std::shared_ptr<PeerSender>> peers;
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopped_ = true;
    peers = std::move(peers_);
    peers_.clear();
  }
  receiver_->Stop();
  for (auto& [id, sender] : peers) sender->Stop();
}

std::optional<PeerSendStats> PeerTransport::GetPeerSendStats(uint64_t id) const {
  std::shared_ptr<PeerSender> sender = FindPeer(id);
  if (sender == nullptr) return std::nullopt;
  return sender->stats();
}

}  // namespace keel::server
