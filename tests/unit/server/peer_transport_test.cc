// PeerTransport over real gRPC on 127.0.0.1: ordering and batching, reconnect after a
// peer restarts, identity refusals on both sides, bounded queues, snapshots streamed in
// checked chunks beside the message stream.
#include "server/peer_transport.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "proto/peer.grpc.pb.h"
#include "storage/crc32c.h"

namespace keel::server {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using ::testing::HasSubstr;

constexpr uint64_t kCluster = 0xc1;
constexpr auto kDeadline = seconds(15);

raftpb::Message Heartbeat(uint64_t from, uint64_t to, uint64_t commit) {
  raftpb::Message m;
  m.set_type(raftpb::MSG_HEARTBEAT);
  m.set_from(from);
  m.set_to(to);
  m.set_term(1);
  m.set_commit(commit);
  return m;
}

raftpb::Message Append(uint64_t from, uint64_t to, uint64_t index, size_t payload_bytes) {
  raftpb::Message m;
  m.set_type(raftpb::MSG_APP);
  m.set_from(from);
  m.set_to(to);
  m.set_term(1);
  m.set_index(index);
  raftpb::Entry* entry = m.add_entries();
  entry->set_term(1);
  entry->set_index(index + 1);
  entry->set_data(std::string(payload_bytes, 'x'));
  return m;
}

raftpb::Message SnapshotMessage(uint64_t from, uint64_t to) {
  raftpb::Message m;
  m.set_type(raftpb::MSG_SNAP);
  m.set_from(from);
  m.set_to(to);
  m.set_term(2);
  m.mutable_snapshot()->set_data("checkpoint-77");
  m.mutable_snapshot()->mutable_metadata()->set_index(77);
  m.mutable_snapshot()->mutable_metadata()->set_term(2);
  return m;
}

// Polls `pred` until it holds or the test deadline passes.
bool WaitUntil(const std::function<bool()>& pred) {
  const auto deadline = std::chrono::steady_clock::now() + kDeadline;
  while (!pred()) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(milliseconds(5));
  }
  return true;
}

// Deterministic snapshot bytes: byte i of the snapshot.
char SnapshotByte(size_t i) { return static_cast<char>((i * 131 + i / 7) & 0xff); }

// A sender-side snapshot of `size_bytes` in `piece_bytes` reader chunks. With a gate,
// it stops after `gate_after_bytes` until Open() (or fails after the test deadline).
class PatternReader final : public SnapshotChunkReader {
 public:
  struct Gate {
    std::mutex mu;
    std::condition_variable cv;
    bool reached = false;
    bool open = false;
    void Open() {
      std::lock_guard<std::mutex> lock(mu);
      open = true;
      cv.notify_all();
    }
    bool WaitReached() {
      std::unique_lock<std::mutex> lock(mu);
      return cv.wait_for(lock, kDeadline, [&] { return reached; });
    }
  };

  PatternReader(size_t size_bytes, size_t piece_bytes, size_t gate_after_bytes, Gate* gate)
      : size_bytes_(size_bytes),
        piece_bytes_(piece_bytes),
        gate_after_bytes_(gate_after_bytes),
        gate_(gate) {}

  absl::StatusOr<bool> Next(std::string* chunk) override {
    if (offset_ >= size_bytes_) return false;
    if (gate_ != nullptr && offset_ >= gate_after_bytes_) {
      std::unique_lock<std::mutex> lock(gate_->mu);
      gate_->reached = true;
      gate_->cv.notify_all();
      if (!gate_->cv.wait_for(lock, kDeadline, [&] { return gate_->open; })) {
        return absl::DeadlineExceededError("test gate never opened");
      }
    }
    const size_t n = std::min(piece_bytes_, size_bytes_ - offset_);
    chunk->resize(n);
    for (size_t i = 0; i < n; ++i) (*chunk)[i] = SnapshotByte(offset_ + i);
    offset_ += n;
    return true;
  }

 private:
  const size_t size_bytes_;
  const size_t piece_bytes_;
  const size_t gate_after_bytes_;
  Gate* const gate_;
  size_t offset_ = 0;
};

// Records everything the transport tells a member, in order.
class Recorder final : public PeerMessageHandler, public SnapshotHandler {
 public:
  // Events in arrival order: "msg:<type>:<commit|index>", "snap-chunk", "snap-installed".
  std::vector<std::string> events;
  std::vector<raftpb::Message> messages;
  std::vector<std::vector<raftpb::Message>> batches;
  std::map<uint64_t, int> unreachable;
  std::vector<uint64_t> removed_by;  // Peers that refused this member as removed.
  std::vector<std::pair<uint64_t, bool>> snapshots_sent;
  std::string snapshot_received;
  int snapshot_chunks = 0;  // Records handed out by the receiver's chunk reader.
  std::vector<size_t> snapshot_record_sizes;

  // Sender side: what OpenSnapshot returns.
  std::function<std::unique_ptr<SnapshotChunkReader>()> make_reader;

  void OnMessages(std::vector<raftpb::Message> batch) override {
    std::lock_guard<std::mutex> lock(mu_);
    for (const raftpb::Message& m : batch) {
      events.push_back(absl::StrCat("msg:", raftpb::MessageType_Name(m.type()), ":",
                                    m.type() == raftpb::MSG_HEARTBEAT ? m.commit() : m.index()));
      messages.push_back(m);
    }
    batches.push_back(std::move(batch));
    cv_.notify_all();
  }
  void OnUnreachable(uint64_t peer_id) override {
    std::lock_guard<std::mutex> lock(mu_);
    ++unreachable[peer_id];
    cv_.notify_all();
  }
  void OnRemovedByPeer(uint64_t peer_id) override {
    std::lock_guard<std::mutex> lock(mu_);
    removed_by.push_back(peer_id);
    cv_.notify_all();
  }
  void OnSnapshotSent(uint64_t peer_id, bool ok) override {
    std::lock_guard<std::mutex> lock(mu_);
    snapshots_sent.emplace_back(peer_id, ok);
    cv_.notify_all();
  }
  absl::StatusOr<std::unique_ptr<SnapshotChunkReader>> OpenSnapshot(
      const raftpb::Message& msg_snap) override {
    if (!make_reader) return absl::NotFoundError("no snapshot in this test");
    return make_reader();
  }
  absl::Status ReceiveSnapshot(const raftpb::Message& msg_snap,
                               SnapshotChunkReader& chunks) override {
    std::string data;
    while (true) {
      absl::StatusOr<bool> more = chunks.Next(&data);
      if (!more.ok()) return more.status();
      if (!*more) break;
      std::lock_guard<std::mutex> lock(mu_);
      snapshot_received += data;
      snapshot_record_sizes.push_back(data.size());
      ++snapshot_chunks;
      events.push_back("snap-chunk");
      cv_.notify_all();
    }
    std::lock_guard<std::mutex> lock(mu_);
    events.push_back("snap-installed");
    cv_.notify_all();
    return absl::OkStatus();
  }

  // Waits until `pred` (called under the lock) holds, up to the test deadline.
  bool WaitFor(const std::function<bool()>& pred, std::chrono::milliseconds timeout = kDeadline) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, timeout, pred);
  }
  template <typename F>
  auto Locked(F f) {
    std::lock_guard<std::mutex> lock(mu_);
    return f();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
};

// One member: a transport and the gRPC server that serves its receiving side.
class Member {
 public:
  Member(uint64_t id, uint64_t cluster_id,
         const std::function<void(PeerTransportOptions&)>& configure = nullptr)
      : id_(id) {
    PeerTransportOptions options;
    options.cluster_id = cluster_id;
    options.member_id = id;
    options.reconnect_backoff_initial_ms = 20;
    options.reconnect_backoff_max_ms = 300;
    options.connect_timeout_ms = 1000;
    options.random_seed = 1000 + id;
    options.log = [this](const std::string& line) {
      std::lock_guard<std::mutex> lock(log_mu_);
      logs_.push_back(line);
      log_cv_.notify_all();
    };
    if (configure) configure(options);
    transport_ = std::make_unique<PeerTransport>(std::move(options), &recorder_, &recorder_);
  }
  ~Member() {
    transport_->Stop();
    StopServer();
  }

  // Serves on 127.0.0.1:`port` (0: any free port).
  void StartServer(int port = 0) {
    grpc::ServerBuilder builder;
    builder.AddListeningPort(absl::StrCat("127.0.0.1:", port), grpc::InsecureServerCredentials(),
                             &port_);
    builder.RegisterService(transport_->service());
    transport_->ConfigureServerBuilder(builder);
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    ASSERT_GT(port_, 0);
    if (port != 0) {
      ASSERT_EQ(port_, port);
    }
  }
  // Kills the server at once, as a crashed process would vanish.
  void StopServer() {
    if (server_ == nullptr) return;
    server_->Shutdown(std::chrono::system_clock::now());
    server_->Wait();
    server_.reset();
  }

  bool WaitForLog(const std::string& needle) {
    std::unique_lock<std::mutex> lock(log_mu_);
    return log_cv_.wait_for(lock, kDeadline, [&] { return FindLogLocked(needle) != nullptr; });
  }
  std::string FindLog(const std::string& needle) {
    std::lock_guard<std::mutex> lock(log_mu_);
    const std::string* line = FindLogLocked(needle);
    return line == nullptr ? "" : *line;
  }
  std::string AllLogs() {
    std::lock_guard<std::mutex> lock(log_mu_);
    std::string all;
    for (const std::string& line : logs_) absl::StrAppend(&all, line, "\n");
    return all;
  }

  uint64_t id() const { return id_; }
  int port() const { return port_; }
  std::string address() const { return absl::StrCat("127.0.0.1:", port_); }
  PeerTransport& transport() { return *transport_; }
  Recorder& recorder() { return recorder_; }

 private:
  const std::string* FindLogLocked(const std::string& needle) {
    for (const std::string& line : logs_) {
      if (absl::StrContains(line, needle)) return &line;
    }
    return nullptr;
  }

  const uint64_t id_;
  Recorder recorder_;
  std::mutex log_mu_;
  std::condition_variable log_cv_;
  std::vector<std::string> logs_;
  std::unique_ptr<PeerTransport> transport_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
};

TEST(PeerTransportTest, DeliversInOrderInBatches) {
  Member a(1, kCluster), b(2, kCluster);
  b.StartServer();
  a.transport().AddPeer(2, b.address());

  constexpr int kCount = 2000;
  std::vector<raftpb::Message> burst;
  for (int i = 0; i < kCount; ++i) burst.push_back(Append(1, 2, i, 16));
  a.transport().Send(std::move(burst));

  Recorder& rb = b.recorder();
  ASSERT_TRUE(rb.WaitFor([&] { return rb.messages.size() >= kCount; }));
  rb.Locked([&] {
    ASSERT_EQ(rb.messages.size(), size_t{kCount});
    for (int i = 0; i < kCount; ++i) ASSERT_EQ(rb.messages[i].index(), uint64_t(i));
    // Queued together, written together: far fewer writes than messages.
    EXPECT_LE(rb.batches.size(), size_t{kCount / 10});
  });
  // The sender counts a write once it returns, which may be after the receiver got it.
  ASSERT_TRUE(
      WaitUntil([&] { return a.transport().GetPeerSendStats(2)->messages_sent >= kCount; }));
  const PeerSendStats stats = *a.transport().GetPeerSendStats(2);
  EXPECT_EQ(stats.messages_sent, uint64_t{kCount});
  EXPECT_EQ(stats.messages_dropped, 0u);
  EXPECT_EQ(stats.connects, 1u);
  EXPECT_EQ(a.recorder().Locked([&] { return a.recorder().unreachable.size(); }), 0u);
}

TEST(PeerTransportTest, BatchesRespectTheByteLimit) {
  constexpr size_t kBatchBytes = 256 << 10;
  Member a(1, kCluster, [](PeerTransportOptions& o) { o.batch_bytes_max = kBatchBytes; });
  Member b(2, kCluster);
  b.StartServer();
  a.transport().AddPeer(2, b.address());

  // 40 messages of ~60 KiB: at most 4 fit in one write.
  std::vector<raftpb::Message> burst;
  for (int i = 0; i < 40; ++i) burst.push_back(Append(1, 2, i, 60 << 10));
  a.transport().Send(std::move(burst));
  Recorder& rb = b.recorder();
  ASSERT_TRUE(rb.WaitFor([&] { return rb.messages.size() >= 40; }));
  rb.Locked([&] {
    EXPECT_GE(rb.batches.size(), 10u);
    for (const auto& batch : rb.batches) {
      size_t bytes = 0;
      for (const raftpb::Message& m : batch) bytes += m.ByteSizeLong();
      EXPECT_LE(bytes, kBatchBytes);
    }
    for (int i = 0; i < 40; ++i) EXPECT_EQ(rb.messages[i].index(), uint64_t(i));
  });
}

TEST(PeerTransportTest, UnreachablePeerIsReportedAndReconnectedAfterRestart) {
  Member a(1, kCluster), b(2, kCluster);
  b.StartServer();
  const int port = b.port();
  b.StopServer();  // B is down, its port known.
  a.transport().AddPeer(2, b.address());

  a.transport().Send({Heartbeat(1, 2, 1)});
  Recorder& ra = a.recorder();
  ASSERT_TRUE(ra.WaitFor([&] { return ra.unreachable[2] >= 1; }));
  EXPECT_GE(a.transport().GetPeerSendStats(2)->connect_failures, 1u);
  EXPECT_TRUE(a.WaitForLog("cannot reach peer 2 at 127.0.0.1:")) << a.AllLogs();

  b.StartServer(port);  // B comes back on the same port.
  Recorder& rb = b.recorder();
  bool delivered = false;
  const auto deadline = std::chrono::steady_clock::now() + kDeadline;
  for (uint64_t commit = 2; !delivered && std::chrono::steady_clock::now() < deadline; ++commit) {
    a.transport().Send({Heartbeat(1, 2, commit)});  // As raft keeps sending heartbeats.
    delivered = rb.WaitFor([&] { return !rb.messages.empty(); }, milliseconds(100));
  }
  ASSERT_TRUE(delivered) << a.AllLogs();
  EXPECT_TRUE(a.WaitForLog("connected to peer 2")) << a.AllLogs();
}

TEST(PeerTransportTest, UpdatePeerMovesToTheNewAddress) {
  Member a(1, kCluster), b(2, kCluster);
  b.StartServer();
  a.transport().AddPeer(2, b.address());
  a.transport().Send({Heartbeat(1, 2, 1)});
  Recorder& rb = b.recorder();
  ASSERT_TRUE(rb.WaitFor([&] { return rb.messages.size() == 1; }));

  b.StopServer();
  b.StartServer();  // A new port.
  a.transport().UpdatePeer(2, b.address());
  bool delivered = false;
  const auto deadline = std::chrono::steady_clock::now() + kDeadline;
  for (uint64_t commit = 2; !delivered && std::chrono::steady_clock::now() < deadline; ++commit) {
    a.transport().Send({Heartbeat(1, 2, commit)});
    delivered = rb.WaitFor([&] { return rb.messages.size() >= 2; }, milliseconds(100));
  }
  ASSERT_TRUE(delivered) << a.AllLogs();
}

TEST(PeerTransportTest, RefusesStreamFromAnotherClusterInBothLogs) {
  Member a(1, 0xc1), b(2, 0xc2);
  b.StartServer();
  a.transport().AddPeer(2, b.address());
  a.transport().Send({Heartbeat(1, 2, 1)});

  const std::string expected =
      "cluster id mismatch: member 1 is in cluster c1 but member 2 is in cluster c2";
  ASSERT_TRUE(b.WaitForLog(expected)) << b.AllLogs();
  ASSERT_TRUE(a.WaitForLog(expected)) << a.AllLogs();
  EXPECT_THAT(a.FindLog(expected), HasSubstr("refused by peer 2 at 127.0.0.1:"));
  EXPECT_THAT(a.FindLog(expected), HasSubstr("FAILED_PRECONDITION"));
  Recorder& ra = a.recorder();
  ASSERT_TRUE(ra.WaitFor([&] { return ra.unreachable[2] >= 1; }));

  // The sender keeps trying (with backoff) and keeps being refused.
  const auto deadline = std::chrono::steady_clock::now() + kDeadline;
  while (a.transport().GetPeerSendStats(2)->connect_failures < 3 &&
         std::chrono::steady_clock::now() < deadline) {
    a.transport().Send({Heartbeat(1, 2, 2)});
    ra.WaitFor([] { return false; }, milliseconds(20));
  }
  EXPECT_GE(a.transport().GetPeerSendStats(2)->connect_failures, 3u);
  EXPECT_EQ(a.transport().GetPeerSendStats(2)->connects, 0u);
  EXPECT_TRUE(b.recorder().Locked([&] { return b.recorder().messages.empty(); }));
}

TEST(PeerTransportTest, RefusesStreamAddressedToAnotherMember) {
  Member a(1, kCluster), b(2, kCluster);
  b.StartServer();
  a.transport().AddPeer(3, b.address());  // A believes member 3 lives at B's address.
  a.transport().Send({Heartbeat(1, 3, 1)});

  const std::string expected =
      "member id mismatch: member 1 addressed member 3 but this is member 2";
  ASSERT_TRUE(b.WaitForLog(expected)) << b.AllLogs();
  ASSERT_TRUE(a.WaitForLog(expected)) << a.AllLogs();
  Recorder& ra = a.recorder();
  ASSERT_TRUE(ra.WaitFor([&] { return ra.unreachable[3] >= 1; }));
  EXPECT_TRUE(b.recorder().Locked([&] { return b.recorder().messages.empty(); }));
}

TEST(PeerTransportTest, RefusesRemovedMember) {
  Member a(1, kCluster), b(2, kCluster);
  b.StartServer();
  b.transport().AddPeer(1, "127.0.0.1:1");
  b.transport().RemovePeer(1);
  a.transport().AddPeer(2, b.address());
  a.transport().Send({Heartbeat(1, 2, 1)});
  ASSERT_TRUE(b.WaitForLog("member 1 was removed from cluster c1")) << b.AllLogs();
  ASSERT_TRUE(a.WaitForLog("member 1 was removed from cluster c1")) << a.AllLogs();
  // The refused member is told: it was removed (it stops, as etcd's does on 410 Gone).
  EXPECT_TRUE(a.recorder().WaitFor([&] { return !a.recorder().removed_by.empty(); }));
  EXPECT_EQ(a.recorder().Locked([&] { return a.recorder().removed_by.front(); }), 2u);
}

raftpb::Message PreVote(uint64_t from, uint64_t to) {
  raftpb::Message m;
  m.set_type(raftpb::MSG_PRE_VOTE);
  m.set_from(from);
  m.set_to(to);
  m.set_term(3);
  return m;
}

// A member removed while its stream is open, that never applied its removal (the leader
// stopped sending to it), only campaigns: its open stream is refused at the first vote
// request and it is told it was removed. Until then (e.g. a removed leader handing
// over) its messages still arrive.
TEST(PeerTransportTest, RemovedMemberThatCampaignsOnAnOpenStreamIsRefusedAndTold) {
  Member a(1, kCluster), b(2, kCluster);
  b.StartServer();
  b.transport().AddPeer(1, "127.0.0.1:1");
  a.transport().AddPeer(2, b.address());
  a.transport().Send({Heartbeat(1, 2, 1)});
  ASSERT_TRUE(b.recorder().WaitFor([&] { return b.recorder().messages.size() == 1; }));
  b.transport().RemovePeer(1);
  a.transport().Send({Heartbeat(1, 2, 2)});
  ASSERT_TRUE(b.recorder().WaitFor([&] { return b.recorder().messages.size() == 2; }));
  EXPECT_TRUE(a.recorder().Locked([&] { return a.recorder().removed_by.empty(); }));
  // The sender sees the refusal when it writes next: a candidate campaigns again every
  // election timeout.
  ASSERT_TRUE(WaitUntil([&] {
    a.transport().Send({PreVote(1, 2)});
    return a.recorder().WaitFor([&] { return !a.recorder().removed_by.empty(); },
                                milliseconds(100));
  })) << a.AllLogs()
      << b.AllLogs();
  EXPECT_EQ(a.recorder().Locked([&] { return a.recorder().removed_by.front(); }), 2u);
  EXPECT_TRUE(a.WaitForLog("member 1 was removed from cluster c1")) << a.AllLogs();
  EXPECT_EQ(b.recorder().Locked([&] { return b.recorder().messages.size(); }), 2u);
}

// Holds the sender thread inside the drop filter on a message with commit 1000.
struct Blocker {
  std::mutex mu;
  std::condition_variable cv;
  bool entered = false;
  bool released = false;
  bool Filter(const raftpb::Message& m) {
    if (m.commit() != 1000) return false;
    std::unique_lock<std::mutex> lock(mu);
    entered = true;
    cv.notify_all();
    cv.wait_for(lock, kDeadline, [&] { return released; });
    return false;
  }
  bool WaitEntered() {
    std::unique_lock<std::mutex> lock(mu);
    return cv.wait_for(lock, kDeadline, [&] { return entered; });
  }
  void Release() {
    std::lock_guard<std::mutex> lock(mu);
    released = true;
    cv.notify_all();
  }
};

TEST(PeerTransportTest, FullQueueDropsAndReportsUnreachable) {
  Blocker blocker;
  Member a(1, kCluster, [&](PeerTransportOptions& o) {
    o.queue_messages_max = 4;
    o.drop_filter = [&](const raftpb::Message& m) { return blocker.Filter(m); };
  });
  Member b(2, kCluster);
  b.StartServer();
  a.transport().AddPeer(2, b.address());

  a.transport().Send({Heartbeat(1, 2, 1000)});
  ASSERT_TRUE(blocker.WaitEntered());  // The sender holds it; the queue is empty.
  std::vector<raftpb::Message> burst;
  for (uint64_t i = 1; i <= 10; ++i) burst.push_back(Heartbeat(1, 2, i));
  a.transport().Send(std::move(burst));  // 4 fit, 6 are dropped at once.

  EXPECT_EQ(a.transport().GetPeerSendStats(2)->messages_dropped, 6u);
  Recorder& ra = a.recorder();
  EXPECT_TRUE(ra.Locked([&] { return ra.unreachable[2] >= 1; }));

  blocker.Release();
  Recorder& rb = b.recorder();
  ASSERT_TRUE(rb.WaitFor([&] { return rb.messages.size() >= 5; }));
  rb.Locked([&] {
    std::vector<uint64_t> commits;
    for (const raftpb::Message& m : rb.messages) commits.push_back(m.commit());
    EXPECT_THAT(commits, ::testing::ElementsAre(1000, 1, 2, 3, 4));
  });
}

TEST(PeerTransportTest, QueueIsBoundedInBytes) {
  Blocker blocker;
  Member a(1, kCluster, [&](PeerTransportOptions& o) {
    o.queue_bytes_max = 10 << 10;
    o.drop_filter = [&](const raftpb::Message& m) { return blocker.Filter(m); };
  });
  Member b(2, kCluster);
  b.StartServer();
  a.transport().AddPeer(2, b.address());
  a.transport().Send({Heartbeat(1, 2, 1000)});
  ASSERT_TRUE(blocker.WaitEntered());
  std::vector<raftpb::Message> burst;
  for (uint64_t i = 0; i < 5; ++i) burst.push_back(Append(1, 2, i, 3 << 10));
  a.transport().Send(std::move(burst));  // 3 x ~3 KiB fit in 10 KiB.
  EXPECT_EQ(a.transport().GetPeerSendStats(2)->messages_dropped, 2u);
  EXPECT_TRUE(a.recorder().Locked([&] { return a.recorder().unreachable[2] >= 1; }));
  blocker.Release();
  Recorder& rb = b.recorder();
  ASSERT_TRUE(rb.WaitFor([&] { return rb.messages.size() >= 4; }));
}

TEST(PeerTransportTest, DropFilterDropsSelectedMessages) {
  Member a(1, kCluster, [](PeerTransportOptions& o) {
    o.drop_filter = [](const raftpb::Message& m) { return m.commit() == 2; };
  });
  Member b(2, kCluster);
  b.StartServer();
  a.transport().AddPeer(2, b.address());
  a.transport().Send({Heartbeat(1, 2, 1), Heartbeat(1, 2, 2), Heartbeat(1, 2, 3)});
  Recorder& rb = b.recorder();
  ASSERT_TRUE(rb.WaitFor([&] { return rb.messages.size() >= 2; }));
  rb.Locked([&] {
    ASSERT_EQ(rb.messages.size(), 2u);
    EXPECT_EQ(rb.messages[0].commit(), 1u);
    EXPECT_EQ(rb.messages[1].commit(), 3u);
  });
}

TEST(PeerTransportTest, SnapshotStreamsInChunksWhileHeartbeatsFlow) {
  constexpr size_t kSnapshotBytes = 8 << 20;
  constexpr size_t kChunkBytes = 256 << 10;
  constexpr size_t kRecordBytes = (1 << 20) + 1000;  // Not a multiple of the chunk size.
  PatternReader::Gate gate;
  std::atomic<int> wire_chunks{0};
  Member a(1, kCluster, [&](PeerTransportOptions& o) {
    o.snapshot_chunk_bytes = kChunkBytes;
    o.snapshot_chunk_filter = [&](raftpb::SnapshotChunk& chunk) {
      EXPECT_LE(chunk.data().size(), kChunkBytes);
      ++wire_chunks;
    };
  });
  Member b(2, kCluster);
  // Reader records of ~1 MiB travel as 256 KiB chunks and are rejoined; the reader
  // stalls at half way until the test has seen a heartbeat overtake the snapshot.
  a.recorder().make_reader = [&] {
    return std::make_unique<PatternReader>(kSnapshotBytes, kRecordBytes, kSnapshotBytes / 2, &gate);
  };
  std::vector<size_t> expected_records;
  int expected_wire_chunks = 0;
  for (size_t offset = 0; offset < kSnapshotBytes; offset += kRecordBytes) {
    expected_records.push_back(std::min(kRecordBytes, kSnapshotBytes - offset));
    expected_wire_chunks += int((expected_records.back() + kChunkBytes - 1) / kChunkBytes);
  }
  b.StartServer();
  a.transport().AddPeer(2, b.address());

  a.transport().Send({SnapshotMessage(1, 2)});
  ASSERT_TRUE(gate.WaitReached());
  Recorder& rb = b.recorder();
  ASSERT_TRUE(rb.WaitFor([&] { return rb.snapshot_chunks > 0; }));
  a.transport().Send({Heartbeat(1, 2, 5)});  // Sent after the snapshot started.
  ASSERT_TRUE(rb.WaitFor([&] { return !rb.messages.empty(); }));
  rb.Locked([&] {
    EXPECT_EQ(rb.messages[0].type(), raftpb::MSG_HEARTBEAT);
    // Still in transfer: the reader is stalled at the first record boundary past half
    // way (records before it may still be on the wire), and nothing was installed.
    constexpr size_t kStallBytes =
        (kSnapshotBytes / 2 + kRecordBytes - 1) / kRecordBytes * kRecordBytes;
    EXPECT_LE(rb.snapshot_received.size(), kStallBytes);
    EXPECT_EQ(std::count(rb.events.begin(), rb.events.end(), "snap-installed"), 0);
  });

  gate.Open();
  Recorder& ra = a.recorder();
  ASSERT_TRUE(ra.WaitFor([&] { return !ra.snapshots_sent.empty(); }));
  ra.Locked([&] { EXPECT_EQ(ra.snapshots_sent[0], std::make_pair(uint64_t{2}, true)); });
  ASSERT_TRUE(rb.WaitFor([&] { return rb.messages.size() == 2; }));
  rb.Locked([&] {
    // Raft sees the MsgSnap only after the data is installed.
    const raftpb::Message& snap = rb.messages[1];
    EXPECT_EQ(snap.type(), raftpb::MSG_SNAP);
    EXPECT_EQ(snap.snapshot().data(), "checkpoint-77");
    EXPECT_EQ(snap.snapshot().metadata().index(), 77u);
    const auto installed = std::find(rb.events.begin(), rb.events.end(), "snap-installed");
    const auto heartbeat = std::find(rb.events.begin(), rb.events.end(), "msg:MSG_HEARTBEAT:5");
    const auto delivered = std::find(rb.events.begin(), rb.events.end(), "msg:MSG_SNAP:0");
    ASSERT_NE(delivered, rb.events.end());
    EXPECT_LT(heartbeat, installed);
    EXPECT_LT(installed, delivered);
    // The receiver's records are exactly the sender's, though they crossed in pieces.
    EXPECT_EQ(rb.snapshot_record_sizes, expected_records);
    EXPECT_EQ(wire_chunks.load(), expected_wire_chunks);
    ASSERT_EQ(rb.snapshot_received.size(), kSnapshotBytes);
    for (size_t i = 0; i < kSnapshotBytes; ++i) {
      if (rb.snapshot_received[i] != SnapshotByte(i)) {
        ADD_FAILURE() << "snapshot byte " << i << " differs";
        break;
      }
    }
  });
  EXPECT_EQ(a.transport().GetPeerSendStats(2)->snapshots_sent, 1u);
}

TEST(PeerTransportTest, CorruptChunkIsRejectedAndReportedToTheSender) {
  Member a(1, kCluster, [](PeerTransportOptions& o) {
    o.snapshot_chunk_bytes = 64 << 10;
    o.snapshot_chunk_filter = [](raftpb::SnapshotChunk& chunk) {
      if (chunk.offset() == 128 << 10) (*chunk.mutable_data())[10] ^= 0x20;  // After the CRC.
    };
  });
  Member b(2, kCluster);
  a.recorder().make_reader = [] {
    return std::make_unique<PatternReader>(1 << 20, 64 << 10, 0, nullptr);
  };
  b.StartServer();
  a.transport().AddPeer(2, b.address());
  a.transport().Send({SnapshotMessage(1, 2)});

  Recorder& ra = a.recorder();
  ASSERT_TRUE(ra.WaitFor([&] { return !ra.snapshots_sent.empty(); }));
  ra.Locked([&] { EXPECT_EQ(ra.snapshots_sent[0], std::make_pair(uint64_t{2}, false)); });
  EXPECT_TRUE(b.WaitForLog("fails its CRC32C check")) << b.AllLogs();
  EXPECT_TRUE(a.WaitForLog("DATA_LOSS")) << a.AllLogs();
  Recorder& rb = b.recorder();
  rb.Locked([&] {
    EXPECT_TRUE(rb.messages.empty());  // The MsgSnap never reaches raft.
    EXPECT_EQ(rb.snapshot_received.size(), size_t{128 << 10});
  });
  EXPECT_EQ(a.transport().GetPeerSendStats(2)->snapshots_failed, 1u);

  // The message stream is unaffected.
  a.transport().Send({Heartbeat(1, 2, 9)});
  ASSERT_TRUE(rb.WaitFor([&] { return !rb.messages.empty(); }));
}

// Speaks the wire protocol directly to check what the receiver refuses.
class RawPeer {
 public:
  explicit RawPeer(const std::string& address)
      : stub_(raftpb::RaftTransport::NewStub(
            grpc::CreateChannel(address, grpc::InsecureChannelCredentials()))) {}

  // Sends `chunks` on one SendSnapshot call (with valid identity) and returns the status.
  grpc::Status SendSnapshot(const std::vector<raftpb::SnapshotChunk>& chunks) {
    grpc::ClientContext context;
    context.AddMetadata("keel-cluster-id", absl::StrCat(kCluster));
    context.AddMetadata("keel-from-member", "1");
    context.AddMetadata("keel-to-member", "2");
    raftpb::SnapshotAck ack;
    auto writer = stub_->SendSnapshot(&context, &ack);
    for (const raftpb::SnapshotChunk& chunk : chunks) {
      if (!writer->Write(chunk)) break;
    }
    writer->WritesDone();
    return writer->Finish();
  }
  grpc::Status StreamWithoutIdentity() {
    grpc::ClientContext context;
    raftpb::StreamAck ack;
    auto writer = stub_->Stream(&context, &ack);
    writer->Write(raftpb::MessageBatch());
    writer->WritesDone();
    return writer->Finish();
  }

 private:
  std::unique_ptr<raftpb::RaftTransport::Stub> stub_;
};

raftpb::SnapshotChunk DataChunk(uint64_t offset, const std::string& data, bool continued) {
  raftpb::SnapshotChunk chunk;
  chunk.set_offset(offset);
  chunk.set_data(data);
  chunk.set_crc32c(storage::Crc32c(data));
  chunk.set_continued(continued);
  return chunk;
}

raftpb::SnapshotChunk LastChunk(uint64_t offset) {
  raftpb::SnapshotChunk chunk;
  chunk.set_offset(offset);
  chunk.set_last(true);
  return chunk;
}

TEST(PeerTransportTest, ReceiverRefusesMalformedStreams) {
  Member b(2, kCluster);
  b.StartServer();
  RawPeer raw(b.address());

  grpc::Status status = raw.StreamWithoutIdentity();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_THAT(status.error_message(), HasSubstr("not a keel peer"));

  raftpb::SnapshotChunk first;
  *first.mutable_message() = SnapshotMessage(1, 2);
  // Ends without the `last` chunk.
  status = raw.SendSnapshot({first, DataChunk(0, "abc", false)});
  EXPECT_EQ(status.error_code(), grpc::StatusCode::ABORTED) << status.error_message();
  // Ends inside a record split across chunks.
  status = raw.SendSnapshot({first, DataChunk(0, "abc", true), LastChunk(3)});
  EXPECT_EQ(status.error_code(), grpc::StatusCode::DATA_LOSS) << status.error_message();
  // A gap in the offsets.
  status = raw.SendSnapshot({first, DataChunk(0, "abc", false), DataChunk(4, "d", false)});
  EXPECT_EQ(status.error_code(), grpc::StatusCode::DATA_LOSS) << status.error_message();
  // A first chunk that is not a MsgSnap.
  raftpb::SnapshotChunk not_snap;
  *not_snap.mutable_message() = Heartbeat(1, 2, 1);
  status = raw.SendSnapshot({not_snap, LastChunk(0)});
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << status.error_message();
  // A well-formed one is accepted and its MsgSnap delivered.
  status =
      raw.SendSnapshot({first, DataChunk(0, "ab", true), DataChunk(2, "c", false), LastChunk(3)});
  EXPECT_TRUE(status.ok()) << status.error_message();
  Recorder& rb = b.recorder();
  rb.Locked([&] {
    EXPECT_EQ(rb.snapshot_record_sizes, std::vector<size_t>({3, 3, 3}));  // "abc" x3.
    ASSERT_EQ(rb.messages.size(), 1u);
    EXPECT_EQ(rb.messages[0].type(), raftpb::MSG_SNAP);
  });
}

TEST(PeerTransportTest, StopEndsStreamsAndCallbacks) {
  Member a(1, kCluster), b(2, kCluster);
  b.StartServer();
  a.StartServer();
  a.transport().AddPeer(2, b.address());
  b.transport().AddPeer(1, a.address());
  a.transport().Send({Heartbeat(1, 2, 1)});
  b.transport().Send({Heartbeat(2, 1, 1)});
  ASSERT_TRUE(b.recorder().WaitFor([&] { return !b.recorder().messages.empty(); }));
  ASSERT_TRUE(a.recorder().WaitFor([&] { return !a.recorder().messages.empty(); }));

  const auto start = std::chrono::steady_clock::now();
  b.transport().Stop();  // Cancels A's open stream into B, and B's stream to A.
  EXPECT_LT(std::chrono::steady_clock::now() - start, seconds(5));
  const size_t received = b.recorder().Locked([&] { return b.recorder().messages.size(); });
  a.transport().Send({Heartbeat(1, 2, 2)});
  b.transport().Send({Heartbeat(2, 1, 2)});  // Dropped silently.
  // A's stream to B was refused/cancelled: A reports B unreachable and B hears nothing.
  Recorder& ra = a.recorder();
  const auto deadline = std::chrono::steady_clock::now() + kDeadline;
  uint64_t commit = 3;
  while (!ra.WaitFor([&] { return ra.unreachable[2] >= 1; }, milliseconds(50)) &&
         std::chrono::steady_clock::now() < deadline) {
    a.transport().Send({Heartbeat(1, 2, commit++)});
  }
  EXPECT_GE(ra.Locked([&] { return ra.unreachable[2]; }), 1);
  EXPECT_EQ(b.recorder().Locked([&] { return b.recorder().messages.size(); }), received);
}

}  // namespace
}  // namespace keel::server
