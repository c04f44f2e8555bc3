// Overload: a burst of large concurrent writes must be answered — accepted, or refused
// with RESOURCE_EXHAUSTED ("etcdserver: too many requests") / UNAVAILABLE — before the
// client's deadline. A call still pending at its deadline (DEADLINE_EXCEEDED) is the
// hang the server must never produce.
#include <map>

#include "tests/integration/cluster_test_base.h"

namespace keel::integration {
namespace {

using OverloadTest = ClusterTest;

struct BurstResult {
  std::map<grpc::StatusCode, int> codes;
  std::map<std::string, int> messages;
  absl::Duration slowest;
};

// Fires `calls` concurrent async Puts of `value_bytes` each at member `target`.
BurstResult Burst(Cluster& c, int target, int calls, size_t value_bytes, absl::Duration deadline) {
  auto stub = c.Kv(target);
  grpc::CompletionQueue cq;
  struct Call {
    grpc::ClientContext context;
    etcdserverpb::PutResponse response;
    grpc::Status status;
    std::unique_ptr<grpc::ClientAsyncResponseReader<etcdserverpb::PutResponse>> reader;
    absl::Time started;
  };
  std::vector<std::unique_ptr<Call>> all;
  etcdserverpb::PutRequest request;
  request.set_value(std::string(value_bytes, 'x'));
  for (int i = 0; i < calls; ++i) {
    auto call = std::make_unique<Call>();
    SetDeadline(&call->context, deadline);
    request.set_key(KeyOf("burst/", i));
    call->started = absl::Now();
    // The request is serialized here, so one request object serves every call.
    call->reader = stub->AsyncPut(&call->context, request, &cq);
    call->reader->Finish(&call->response, &call->status, call.get());
    all.push_back(std::move(call));
  }
  BurstResult result;
  for (int done = 0; done < calls; ++done) {
    void* tag = nullptr;
    bool ok = false;
    if (!cq.Next(&tag, &ok)) break;
    Call* call = static_cast<Call*>(tag);
    result.slowest = std::max(result.slowest, absl::Now() - call->started);
    ++result.codes[call->status.error_code()];
    ++result.messages[call->status.error_message()];
  }
  cq.Shutdown();
  void* tag;
  bool ok;
  while (cq.Next(&tag, &ok)) {
  }
  return result;
}

std::string Describe(const BurstResult& r) {
  std::string out;
  for (const auto& [message, n] : r.messages) {
    out += "  " + std::to_string(n) + " x '" + (message.empty() ? "OK" : message) + "'\n";
  }
  out += "  slowest " + std::to_string(absl::ToInt64Milliseconds(r.slowest)) + " ms\n";
  return out;
}

void ExpectNoHang(const BurstResult& r, int calls) {
  int answered = 0;
  for (const auto& [code, n] : r.codes) {
    answered += n;
    EXPECT_TRUE(code == grpc::StatusCode::OK || code == grpc::StatusCode::RESOURCE_EXHAUSTED ||
                code == grpc::StatusCode::UNAVAILABLE)
        << n << " calls ended with code " << code << ":\n"
        << Describe(r);
  }
  EXPECT_EQ(answered, calls);
  for (const auto& [message, n] : r.messages) {
    if (message.find("too many") != std::string::npos) {
      EXPECT_EQ(message, "etcdserver: too many requests");
    }
  }
}

// 1 MiB values, many at once, at the leader and at a follower (which forwards).
// The server answers within its request timeout (5 s + 2 election timeouts), well
// inside the 15 s client deadline, or the burst counts as a hang.
TEST_F(OverloadTest, BurstOfLargePutsIsAnsweredBeforeTheDeadline) {
  Cluster& c = StartCluster(ClusterOptions{});
  ASSERT_FALSE(HasFailure());
  auto leader = c.WaitForLeader();
  ASSERT_TRUE(leader.ok());
  constexpr int kCalls = 96;
  for (int target : {*leader, (*leader + 1) % c.size()}) {
    BurstResult r = Burst(c, target, kCalls, 1 << 20, absl::Seconds(15));
    std::fprintf(stderr, "burst of %d x 1 MiB at %s:\n%s", kCalls, c.member(target).name.c_str(),
                 Describe(r).c_str());
    ExpectNoHang(r, kCalls);
  }
  // The cluster still works afterwards.
  EXPECT_TRUE(c.PutWithRetry(*leader, "after-burst", "ok").ok());
}

// Many small writes at once: more than the server's proposal queue can hold must be
// shed with RESOURCE_EXHAUSTED, never queued without bound.
// More than the leader's proposal byte bound (256 MiB) at once. Whether any call is
// refused with RESOURCE_EXHAUSTED depends on how much commits while the burst arrives
// (observed: 0 to 124 of 384), so only the no-hang property is asserted. Heavy (1.1 GB
// written across the members): label `long`.
using OverloadLongTest = ClusterTest;
TEST_F(OverloadLongTest, BurstBeyondTheQueueBoundIsAnsweredBeforeTheDeadline) {
  Cluster& c = StartCluster(ClusterOptions{});
  ASSERT_FALSE(HasFailure());
  auto leader = c.WaitForLeader();
  ASSERT_TRUE(leader.ok());
  constexpr int kCalls = 384;
  BurstResult r = Burst(c, *leader, kCalls, 1 << 20, absl::Seconds(20));
  std::fprintf(stderr, "burst of %d x 1 MiB at the leader:\n%s", kCalls, Describe(r).c_str());
  ExpectNoHang(r, kCalls);
  RecordProperty("resource_exhausted", r.codes[grpc::StatusCode::RESOURCE_EXHAUSTED]);
  EXPECT_TRUE(c.PutWithRetry(*leader, "after-burst", "ok").ok());
}

TEST_F(OverloadTest, BurstOfSmallPutsIsAnsweredBeforeTheDeadline) {
  Cluster& c = StartCluster(ClusterOptions{});
  ASSERT_FALSE(HasFailure());
  auto leader = c.WaitForLeader();
  ASSERT_TRUE(leader.ok());
  constexpr int kCalls = 5000;
  BurstResult r = Burst(c, *leader, kCalls, 100, absl::Seconds(15));
  std::fprintf(stderr, "burst of %d x 100 B at the leader:\n%s", kCalls, Describe(r).c_str());
  ExpectNoHang(r, kCalls);
  EXPECT_TRUE(c.PutWithRetry(*leader, "after-burst", "ok").ok());
}

}  // namespace
}  // namespace keel::integration
