#include "bench/keel_bench_runner.h"

#include <grpcpp/alarm.h>
#include <grpcpp/grpcpp.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <memory>
#include <mutex>
#include <random>
#include <unordered_map>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "bench/keel_bench_cpu.h"
#include "bench/keel_bench_watch.h"
#include "common/check.h"
#include "common/status_macros.h"
#include "proto/etcdserverpb/rpc.grpc.pb.h"

namespace keel::bench {
namespace {

using Clock = std::chrono::steady_clock;
namespace pb = ::etcdserverpb;

// What all requesters of one phase share. Counters are atomics; the rest is set before
// the first request and read-only afterwards.
struct Phase {
  Options options;
  Clock::time_point start;
  Clock::time_point count_from;                      // start + warmup.
  Clock::time_point end = Clock::time_point::max();  // No request is issued after it.
  std::string value;
  std::atomic<int64_t> issued{0};
  std::atomic<int64_t> completed{0};
  std::atomic<int64_t> errors{0};
  std::atomic<int64_t> ok_all{0};  // Warmup included (what every watcher must see).

  std::mutex mu;
  std::condition_variable done_cv;
  int active = 0;  // Requesters still running; guarded by mu.
};

// One closed-loop requester. Its fields are touched only by its own chain of callbacks
// (each callback issues the next request), so they need no lock.
class Requester {
 public:
  // `index` places this requester's first intended send time in the open loop.
  Requester(Phase* phase, pb::KV::Stub* stub, uint64_t seed, int index)
      : phase_(phase), stub_(stub), rng_(seed) {
    const Options& o = phase_->options;
    if (o.rate > 0) {
      interval_ = std::chrono::duration_cast<Clock::duration>(
          std::chrono::duration<double>(o.clients / o.rate));
      next_intended_ = phase_->start + std::chrono::duration_cast<Clock::duration>(
                                           std::chrono::duration<double>(index / o.rate));
    }
  }

  void Start() { Next(); }

  int64_t ok = 0;
  int64_t counted = 0;
  std::array<int64_t, kNumGrpcCodes> errors_by_code{};
  int64_t txn_succeeded = 0;
  int64_t txn_failed = 0;
  LatencyHistogram latency;
  Clock::time_point last_done{};

 private:
  enum class Op { kPut, kRange, kTxn };

  int64_t PickKey(int64_t seq, int64_t span) {
    const Options& o = phase_->options;
    const int64_t n = o.key_space - span + 1;  // Valid first keys.
    if (o.sequential_keys) return seq % n;
    return std::uniform_int_distribution<int64_t>(0, n - 1)(rng_);
  }

  void Next() {
    const Options& o = phase_->options;
    const Clock::time_point now = Clock::now();
    // Open loop: the next slot of this requester's schedule, even if it is already past
    // (then the request goes at once and its latency includes the time it waited).
    Clock::time_point intended = now;
    if (o.rate > 0) {
      intended = next_intended_;
      next_intended_ += interval_;
    }
    if (intended >= phase_->end) {
      Finish();
      return;
    }
    const int64_t seq = phase_->issued.fetch_add(1, std::memory_order_relaxed);
    if (o.total > 0 && seq >= o.total) {
      Finish();
      return;
    }
    started_ = intended;
    if (intended > now) {
      // The previous alarm fired already (it led here), but its callback may still be
      // unwinding: keep it alive until the one after.
      spent_alarm_ = std::move(alarm_);
      alarm_ = std::make_unique<grpc::Alarm>();
      alarm_->Set(std::chrono::system_clock::now() + (intended - now),
                  [this, seq](bool) { Send(seq); });
      return;
    }
    Send(seq);
  }

  void Send(int64_t seq) {
    const Options& o = phase_->options;
    Op op = Op::kPut;
    switch (o.workload) {
      case Workload::kPut:
        op = Op::kPut;
        break;
      case Workload::kRange:
        op = Op::kRange;
        break;
      case Workload::kTxn:
        op = Op::kTxn;
        break;
      case Workload::kMixed:
        op = std::uniform_real_distribution<double>(0, 1)(rng_) < o.read_ratio ? Op::kRange
                                                                               : Op::kPut;
        break;
      case Workload::kWatch:
        op = Op::kPut;
        break;
    }
    ctx_ = std::make_unique<grpc::ClientContext>();
    // gRPC deadlines take system_clock; latency uses steady_clock.
    ctx_->set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(o.timeout_ms));
    switch (op) {
      case Op::kPut: {
        put_req_.set_key(MakeKey(PickKey(seq, 1), o.key_size));
        put_req_.set_value(phase_->value);
        if (o.workload == Workload::kWatch) StampSendTime(put_req_.mutable_value(), Clock::now());
        stub_->async()->Put(ctx_.get(), &put_req_, &put_resp_,
                            [this](grpc::Status s) { Done(s, Op::kPut); });
        break;
      }
      case Op::kRange: {
        const int64_t first = PickKey(seq, o.range_keys);
        range_req_.set_key(MakeKey(first, o.key_size));
        if (o.range_keys > 1) range_req_.set_range_end(MakeKey(first + o.range_keys, o.key_size));
        range_req_.set_serializable(o.serializable);
        stub_->async()->Range(ctx_.get(), &range_req_, &range_resp_,
                              [this](grpc::Status s) { Done(s, Op::kRange); });
        break;
      }
      case Op::kTxn: {
        txn_key_ = MakeKey(PickKey(seq, 1), o.key_size);
        txn_req_.Clear();
        pb::Compare* cmp = txn_req_.add_compare();
        cmp->set_result(pb::Compare::EQUAL);
        cmp->set_target(pb::Compare::MOD);
        cmp->set_key(txn_key_);
        auto it = seen_mod_revision_.find(txn_key_);
        cmp->set_mod_revision(it == seen_mod_revision_.end() ? 0 : it->second);
        pb::PutRequest* put = txn_req_.add_success()->mutable_request_put();
        put->set_key(txn_key_);
        put->set_value(phase_->value);
        txn_req_.add_failure()->mutable_request_range()->set_key(txn_key_);
        stub_->async()->Txn(ctx_.get(), &txn_req_, &txn_resp_,
                            [this](grpc::Status s) { Done(s, Op::kTxn); });
        break;
      }
    }
  }

  void Done(const grpc::Status& status, Op op) {
    const Clock::time_point now = Clock::now();
    if (status.ok() && op == Op::kTxn) LearnRevision();
    phase_->completed.fetch_add(1, std::memory_order_relaxed);
    if (!status.ok()) phase_->errors.fetch_add(1, std::memory_order_relaxed);
    if (status.ok()) phase_->ok_all.fetch_add(1, std::memory_order_relaxed);
    if (now >= phase_->count_from) {
      ++counted;
      last_done = now;
      if (status.ok()) {
        ++ok;
        latency.Record(static_cast<uint64_t>(
            std::chrono::duration_cast<std::chrono::nanoseconds>(now - started_).count()));
        if (op == Op::kTxn) ++(txn_resp_.succeeded() ? txn_succeeded : txn_failed);
      } else {
        const int code = static_cast<int>(status.error_code());
        ++errors_by_code[code >= 0 && code < kNumGrpcCodes ? code : 2 /* UNKNOWN */];
      }
    }
    Next();
  }

  // The success branch's revision is the key's new mod_revision; the failure branch read
  // the key, so its mod_revision (0 if absent) is what to compare against next time.
  void LearnRevision() {
    int64_t rev = txn_resp_.header().revision();
    if (!txn_resp_.succeeded()) {
      rev = 0;
      if (txn_resp_.responses_size() > 0 &&
          txn_resp_.responses(0).response_range().kvs_size() > 0) {
        rev = txn_resp_.responses(0).response_range().kvs(0).mod_revision();
      }
    }
    seen_mod_revision_[txn_key_] = rev;
  }

  // Must be the last thing this requester does: Run() may destroy it once active is 0.
  void Finish() {
    std::lock_guard<std::mutex> lock(phase_->mu);
    if (--phase_->active == 0) phase_->done_cv.notify_all();
  }

  Phase* const phase_;
  pb::KV::Stub* const stub_;
  std::mt19937_64 rng_;
  std::unique_ptr<grpc::ClientContext> ctx_;
  // Latency counts from here: the send time (closed loop) or the intended one (open).
  Clock::time_point started_;
  Clock::duration interval_{};
  Clock::time_point next_intended_;
  std::unique_ptr<grpc::Alarm> alarm_;
  std::unique_ptr<grpc::Alarm> spent_alarm_;
  pb::PutRequest put_req_;
  pb::PutResponse put_resp_;
  pb::RangeRequest range_req_;
  pb::RangeResponse range_resp_;
  pb::TxnRequest txn_req_;
  pb::TxnResponse txn_resp_;
  std::string txn_key_;
  std::unordered_map<std::string, int64_t> seen_mod_revision_;
};

std::shared_ptr<grpc::Channel> NewChannel(const std::string& endpoint, int id) {
  grpc::ChannelArguments args;
  // A private subchannel pool (and a distinct argument) keeps gRPC from sharing one TCP
  // connection between channels to the same address.
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  args.SetInt("keel_bench.channel_id", id);
  args.SetMaxReceiveMessageSize(-1);
  return grpc::CreateCustomChannel(endpoint, grpc::InsecureChannelCredentials(), args);
}

absl::StatusOr<std::vector<std::string>> FindLeader(const Options& o) {
  std::vector<std::string> leaders;
  std::vector<std::string> seen;
  for (size_t i = 0; i < o.endpoints.size(); ++i) {
    auto stub = pb::Maintenance::NewStub(NewChannel(o.endpoints[i], -1 - static_cast<int>(i)));
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(o.timeout_ms));
    pb::StatusResponse resp;
    const grpc::Status s = stub->Status(&ctx, pb::StatusRequest(), &resp);
    if (!s.ok()) {
      seen.push_back(
          absl::StrCat(o.endpoints[i], ": ", GrpcCodeName(s.error_code()), " ", s.error_message()));
      continue;
    }
    seen.push_back(absl::StrCat(o.endpoints[i], ": member ", resp.header().member_id(), " leader ",
                                resp.leader()));
    if (resp.leader() != 0 && resp.leader() == resp.header().member_id()) {
      leaders.push_back(o.endpoints[i]);
    }
  }
  if (leaders.size() != 1) {
    return absl::UnavailableError(absl::StrCat("--target-leader: expected one leader, found ",
                                               leaders.size(), " (", absl::StrJoin(seen, "; "),
                                               ")"));
  }
  return leaders;
}

// Runs one phase with `o` on `channels` and folds the requesters into a Result.
Result RunPhase(const Options& o, const std::vector<std::shared_ptr<grpc::Channel>>& channels,
                const char* label) {
  Phase phase;
  phase.options = o;
  phase.value.resize(static_cast<size_t>(o.val_size));
  std::mt19937_64 value_rng(o.seed);
  for (char& c : phase.value) c = static_cast<char>('a' + value_rng() % 26);

  std::vector<std::unique_ptr<pb::KV::Stub>> stubs;
  for (const auto& ch : channels) stubs.push_back(pb::KV::NewStub(ch));
  phase.start = Clock::now();
  std::vector<std::unique_ptr<Requester>> requesters;
  for (int i = 0; i < o.clients; ++i) {
    requesters.push_back(
        std::make_unique<Requester>(&phase, stubs[static_cast<size_t>(i) % stubs.size()].get(),
                                    o.seed * 1000003 + static_cast<uint64_t>(i), i));
  }
  phase.active = o.clients;
  phase.count_from = phase.start + std::chrono::duration_cast<Clock::duration>(
                                       std::chrono::duration<double>(o.warmup_s));
  if (o.duration_s > 0) {
    phase.end = phase.start + std::chrono::duration_cast<Clock::duration>(
                                  std::chrono::duration<double>(o.duration_s));
  }
  for (auto& r : requesters) r->Start();

  // CPU is sampled at the end of warmup and once every requester finished.
  auto sample_cpu = [&o](double* server_s, double* client_s) {
    *client_s = SelfCpuSeconds();
    *server_s = -1;
    if (o.server_pids.empty()) return;
    auto cpu = ProcessesCpuSeconds(o.server_pids);
    if (cpu.ok()) {
      *server_s = *cpu;
    } else {
      std::fprintf(stderr, "keel-bench: %s\n", std::string(cpu.status().message()).c_str());
    }
  };
  double server_cpu_start = -1, client_cpu_start = -1;
  bool cpu_sampled = false;
  {
    std::unique_lock<std::mutex> lock(phase.mu);
    int64_t last_completed = 0;
    Clock::time_point last_tick = phase.start;
    Clock::time_point next_progress = phase.start + std::chrono::seconds(1);
    for (;;) {
      const Clock::time_point wake =
          cpu_sampled ? next_progress : std::min(next_progress, phase.count_from);
      if (phase.done_cv.wait_until(lock, wake, [&] { return phase.active == 0; })) break;
      const Clock::time_point now = Clock::now();
      if (!cpu_sampled && now >= phase.count_from) {
        sample_cpu(&server_cpu_start, &client_cpu_start);
        cpu_sampled = true;
      }
      if (now < next_progress) continue;
      next_progress += std::chrono::seconds(1);
      if (!o.progress) continue;
      const int64_t done = phase.completed.load(std::memory_order_relaxed);
      const double dt = std::chrono::duration<double>(now - last_tick).count();
      std::fprintf(stderr, "[%s] %6.1f s %10lld req %9.0f req/s %6lld errors\n", label,
                   std::chrono::duration<double>(now - phase.start).count(),
                   static_cast<long long>(done),
                   dt > 0 ? static_cast<double>(done - last_completed) / dt : 0.0,
                   static_cast<long long>(phase.errors.load(std::memory_order_relaxed)));
      last_completed = done;
      last_tick = now;
    }
  }

  Result result;
  // Ended within the warmup: nothing counted, so an empty window.
  if (!cpu_sampled) sample_cpu(&server_cpu_start, &client_cpu_start);
  double server_cpu_end = -1, client_cpu_end = -1;
  sample_cpu(&server_cpu_end, &client_cpu_end);
  if (server_cpu_start >= 0 && server_cpu_end >= 0) {
    result.server_cpu_s = server_cpu_end - server_cpu_start;
  }
  result.client_cpu_s = client_cpu_end - client_cpu_start;
  Clock::time_point last = phase.count_from;
  for (const auto& r : requesters) {
    result.requests += r->counted;
    result.ok += r->ok;
    for (int c = 0; c < kNumGrpcCodes; ++c) result.errors_by_code[c] += r->errors_by_code[c];
    result.txn_succeeded += r->txn_succeeded;
    result.txn_failed += r->txn_failed;
    result.latency.Merge(r->latency);
    if (r->counted > 0 && r->last_done > last) last = r->last_done;
  }
  result.elapsed_s = std::chrono::duration<double>(last - phase.count_from).count();
  result.ok_all = phase.ok_all.load();
  return result;
}

}  // namespace

absl::StatusOr<Result> Run(const Options& options) {
  std::vector<std::string> endpoints = options.endpoints;
  if (options.target_leader) {
    auto leaders = FindLeader(options);
    if (!leaders.ok()) return leaders.status();
    endpoints = *std::move(leaders);
  }
  std::vector<std::shared_ptr<grpc::Channel>> channels;
  for (int i = 0; i < options.conns; ++i) {
    channels.push_back(NewChannel(endpoints[static_cast<size_t>(i) % endpoints.size()], i));
    // Connect before the clock starts, so the first requests do not pay for it.
    if (!channels.back()->WaitForConnected(std::chrono::system_clock::now() +
                                           std::chrono::milliseconds(options.timeout_ms))) {
      return absl::UnavailableError(
          absl::StrCat("cannot connect to ", endpoints[i % endpoints.size()]));
    }
  }

  if (options.preload) {
    Options load = options;
    load.workload = Workload::kPut;
    load.sequential_keys = true;
    load.total = options.key_space;
    load.duration_s = 0;
    load.warmup_s = 0;
    const Result loaded = RunPhase(load, channels, "preload");
    if (loaded.ok != options.key_space) {
      return absl::FailedPreconditionError(
          absl::StrCat("--preload: ", loaded.ok, " of ", options.key_space, " puts succeeded"));
    }
  }
  // watch: the watchers go to every endpoint (also with --target-leader, which only
  // steers the writers), on their own channels.
  std::unique_ptr<WatchFleet> fleet;
  if (options.workload == Workload::kWatch) {
    std::vector<std::shared_ptr<grpc::Channel>> watch_channels;
    for (int i = 0; i < options.watch_conns; ++i) {
      watch_channels.push_back(NewChannel(
          options.endpoints[static_cast<size_t>(i) % options.endpoints.size()], 100000 + i));
    }
    fleet = std::make_unique<WatchFleet>(options, std::move(watch_channels));
    RETURN_IF_ERROR(fleet->Start(std::chrono::seconds(60)));
    fleet->CountFrom(Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                        std::chrono::duration<double>(options.warmup_s)));
  }
  Result result = RunPhase(options, channels, WorkloadName(options.workload));
  result.endpoints = endpoints;
  if (fleet) fleet->Finish(result.ok_all, std::chrono::seconds(60), &result);
  return result;
}

}  // namespace keel::bench
