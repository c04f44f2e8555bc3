#include "tests/chaos/workload.h"

#include <map>
#include <random>
#include <set>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "proto/etcdserverpb/rpc.grpc.pb.h"

namespace keel::chaos {

namespace {

constexpr char kSetPrefix[] = "set/";
constexpr char kSetEnd[] = "set0";  // '/' + 1: the end of the "set/" prefix range.

void SetDeadline(grpc::ClientContext* context, absl::Duration timeout) {
  context->set_deadline(absl::ToChronoTime(absl::Now() + timeout));
}

// The member is down (killed): gRPC did not even connect.
bool IsDown(const grpc::Status& status) {
  return status.error_code() == grpc::StatusCode::UNAVAILABLE &&
         absl::StrContains(status.error_message(), "failed to connect to all addresses");
}

// A client would not hammer a dead member in a tight loop (nor should our workers eat
// the CPU the members need); the next call picks a member at random again.
void BackOff() { std::this_thread::sleep_for(std::chrono::milliseconds(20)); }

}  // namespace

Outcome ClassifyWrite(const grpc::Status& status) {
  if (status.ok()) return Outcome::kOk;
  const std::string& message = status.error_message();
  switch (status.error_code()) {
    case grpc::StatusCode::INVALID_ARGUMENT:
    case grpc::StatusCode::RESOURCE_EXHAUSTED:  // "too many requests": refused up front.
      return Outcome::kFail;
    case grpc::StatusCode::UNAVAILABLE:
      // keel refuses these before proposing (raft had no leader to take the entry).
      if (message == "etcdserver: no leader" || message == "etcdserver: leader changed") {
        return Outcome::kFail;
      }
      // gRPC found no connection to send on: the call never left this process.
      if (IsDown(status)) return Outcome::kFail;
      return Outcome::kUnknown;  // Timed out inside keel, stopped, or the connection broke.
    default:
      return Outcome::kUnknown;  // DEADLINE_EXCEEDED, CANCELLED, INTERNAL, ...
  }
}

struct Workload::Worker {
  int index = 0;
  uint64_t process = 0;
  std::mt19937_64 rng;
  std::vector<std::unique_ptr<etcdserverpb::KV::Stub>> stubs;  // One per member.
  std::map<std::string, std::string> last_seen;                // Key -> value.
  std::vector<OpRecord> ops;                                   // Register operations.
  std::set<std::string> acknowledged;                          // Set keys (ok).
  std::set<std::string> unknown;                               // Set keys (unknown).
  std::set<std::string> failed;                                // Set keys (fail).
};

Workload::Workload(WorkloadOptions options, std::vector<std::string> member_addresses)
    : options_(options),
      members_(std::move(member_addresses)),
      t0_(std::chrono::steady_clock::now()) {}

Workload::~Workload() { Stop(); }

std::shared_ptr<grpc::Channel> Workload::NewChannel(int member) const {
  grpc::ChannelArguments args;
  // A restarted member must be reachable again at once, not after gRPC's backoff.
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 50);
  args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 50);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 300);
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);  // A connection per worker.
  return grpc::CreateCustomChannel(members_[member], grpc::InsecureChannelCredentials(), args);
}

uint64_t Workload::NowNs() const {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() -
                                                              t0_)
      .count();
}

void Workload::Count(Outcome outcome) {
  (outcome == Outcome::kOk ? ok_ : outcome == Outcome::kFail ? fail_ : unknown_)++;
}

void Workload::Start() {
  const int total = options_.register_workers + options_.set_workers;
  for (int i = 0; i < total; ++i) {
    auto w = std::make_unique<Worker>();
    w->index = i;
    w->process = next_process_++;
    w->rng.seed(options_.seed * 1'000'003 + i);
    for (int m = 0; m < static_cast<int>(members_.size()); ++m) {
      w->stubs.push_back(etcdserverpb::KV::NewStub(NewChannel(m)));
    }
    workers_.push_back(std::move(w));
  }
  for (int i = 0; i < total; ++i) {
    Worker* w = workers_[i].get();
    threads_.emplace_back([this, w, i] {
      if (i < options_.register_workers) {
        RunRegisterWorker(w);
      } else {
        RunSetWorker(w);
      }
    });
  }
}

void Workload::Stop() {
  stop_ = true;
  for (auto& t : threads_) t.join();
  threads_.clear();
}

OpRecord Workload::Call(Worker* w, OpRecord op, int member) {
  op.id = next_op_id_++;
  op.process = w->process;
  op.member = member;
  etcdserverpb::KV::Stub& kv = *w->stubs[member];
  grpc::ClientContext context;
  SetDeadline(&context, options_.op_timeout);
  grpc::Status status;
  op.start_ns = NowNs();
  switch (op.type) {
    case OpType::kRead: {
      etcdserverpb::RangeRequest request;
      request.set_key(op.key);
      etcdserverpb::RangeResponse response;
      status = kv.Range(&context, request, &response);
      if (status.ok()) {
        op.found = response.kvs_size() > 0;
        if (op.found) op.result = response.kvs(0).value();
      }
      break;
    }
    case OpType::kWrite: {
      etcdserverpb::PutRequest request;
      request.set_key(op.key);
      request.set_value(op.value);
      etcdserverpb::PutResponse response;
      status = kv.Put(&context, request, &response);
      break;
    }
    case OpType::kCas: {
      etcdserverpb::TxnRequest request;
      etcdserverpb::Compare* compare = request.add_compare();
      compare->set_result(etcdserverpb::Compare::EQUAL);
      compare->set_target(etcdserverpb::Compare::VALUE);
      compare->set_key(op.key);
      compare->set_value(op.expect);
      etcdserverpb::PutRequest* put = request.add_success()->mutable_request_put();
      put->set_key(op.key);
      put->set_value(op.value);
      etcdserverpb::TxnResponse response;
      status = kv.Txn(&context, request, &response);
      if (status.ok()) op.cas_succeeded = response.succeeded();
      break;
    }
    case OpType::kDelete: {
      etcdserverpb::DeleteRangeRequest request;
      request.set_key(op.key);
      etcdserverpb::DeleteRangeResponse response;
      status = kv.DeleteRange(&context, request, &response);
      break;
    }
  }
  const uint64_t end = NowNs();
  // A read changes nothing: whatever went wrong, it is simply not an observation.
  op.outcome = op.type == OpType::kRead ? (status.ok() ? Outcome::kOk : Outcome::kFail)
                                        : ClassifyWrite(status);
  if (op.outcome != Outcome::kUnknown) op.end_ns = end;
  if (!status.ok()) {
    op.error = absl::StrCat(status.error_code(), ": ", status.error_message());
  }
  Count(op.outcome);
  // The unknown operation may still take effect later: continue as a new process.
  if (op.outcome == Outcome::kUnknown) w->process = next_process_++;
  if (IsDown(status)) BackOff();
  return op;
}

void Workload::RunRegisterWorker(Worker* w) {
  std::uniform_int_distribution<int> pick_key(0, options_.keys - 1);
  std::uniform_int_distribution<int> pick_member(0, static_cast<int>(members_.size()) - 1);
  std::uniform_int_distribution<int> pick_op(0, 99);
  uint64_t seq = 0;
  while (!stop_) {
    OpRecord op;
    op.key = absl::StrCat("k", pick_key(w->rng));
    const int dice = pick_op(w->rng);
    // Mostly reads and writes; a cas needs a value seen before to have a chance.
    op.type = dice < 40   ? OpType::kRead
              : dice < 70 ? OpType::kWrite
              : dice < 95 ? OpType::kCas
                          : OpType::kDelete;
    if (op.type == OpType::kWrite || op.type == OpType::kCas) {
      op.value = absl::StrCat("w", w->index, "-", ++seq);
    }
    if (op.type == OpType::kCas) {
      auto it = w->last_seen.find(op.key);
      op.expect = it != w->last_seen.end() ? it->second : "none";
    }
    OpRecord done = Call(w, std::move(op), pick_member(w->rng));
    if (done.outcome == Outcome::kOk) {
      if (done.type == OpType::kRead) {
        if (done.found) w->last_seen[done.key] = done.result;
      } else if (done.type == OpType::kWrite || (done.type == OpType::kCas && done.cas_succeeded)) {
        w->last_seen[done.key] = done.value;
      }
    }
    w->ops.push_back(std::move(done));
  }
}

void Workload::RunSetWorker(Worker* w) {
  std::uniform_int_distribution<int> pick_member(0, static_cast<int>(members_.size()) - 1);
  uint64_t seq = 0;
  while (!stop_) {
    const std::string key = absl::StrCat(kSetPrefix, w->index, "/", ++seq);
    const int member = pick_member(w->rng);
    grpc::ClientContext context;
    SetDeadline(&context, options_.op_timeout);
    etcdserverpb::PutRequest request;
    request.set_key(key);
    request.set_value("1");
    etcdserverpb::PutResponse response;
    const grpc::Status status = w->stubs[member]->Put(&context, request, &response);
    const Outcome outcome = ClassifyWrite(status);
    Count(outcome);
    if (IsDown(status)) BackOff();
    if (outcome == Outcome::kOk) w->acknowledged.insert(key);
    if (outcome == Outcome::kUnknown) w->unknown.insert(key);
    if (outcome == Outcome::kFail) w->failed.insert(key);
  }
}

absl::Status Workload::ReadEveryKey(absl::Duration timeout) {
  if (workers_.empty()) return absl::FailedPreconditionError("the workload never started");
  Worker* w = workers_.front().get();  // Its thread has ended.
  w->process = next_process_++;
  const absl::Time deadline = absl::Now() + timeout;
  int member = 0;
  for (int k = 0; k < options_.keys; ++k) {
    for (;;) {
      OpRecord op;
      op.key = absl::StrCat("k", k);
      op.type = OpType::kRead;
      OpRecord done = Call(w, std::move(op), member);
      const bool ok = done.outcome == Outcome::kOk;
      final_ops_.push_back(std::move(done));
      if (ok) break;
      if (absl::Now() >= deadline) {
        return absl::DeadlineExceededError(
            absl::StrCat("no member answered a read of k", k, ": ", final_ops_.back().error));
      }
      member = (member + 1) % static_cast<int>(members_.size());
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<SetCheckResult> Workload::CheckSet(absl::Duration timeout) {
  SetCheckResult result;
  std::set<std::string> acknowledged, unknown;
  for (const auto& w : workers_) {
    acknowledged.insert(w->acknowledged.begin(), w->acknowledged.end());
    unknown.insert(w->unknown.begin(), w->unknown.end());
  }
  result.acknowledged = acknowledged.size();
  const absl::Time deadline = absl::Now() + timeout;
  grpc::Status status;
  for (int member = 0;; member = (member + 1) % static_cast<int>(members_.size())) {
    auto stub = etcdserverpb::KV::NewStub(NewChannel(member));
    grpc::ClientContext context;
    SetDeadline(&context, absl::Seconds(10));
    context.set_wait_for_ready(true);
    etcdserverpb::RangeRequest request;
    request.set_key(kSetPrefix);
    request.set_range_end(kSetEnd);
    request.set_keys_only(true);
    etcdserverpb::RangeResponse response;
    grpc::ClientContext* c = &context;
    status = stub->Range(c, request, &response);
    if (status.ok()) {
      std::set<std::string> present;
      for (const auto& kv : response.kvs()) present.insert(kv.key());
      for (const auto& key : acknowledged) {
        if (!present.count(key)) result.lost.push_back(key);
      }
      for (const auto& key : unknown) result.unknown_present += present.count(key);
      return result;
    }
    if (absl::Now() >= deadline) break;
  }
  return absl::DeadlineExceededError(
      absl::StrCat("the set could not be read: ", status.error_message()));
}

std::vector<OpRecord> Workload::RegisterHistory() const {
  std::vector<OpRecord> all;
  for (const auto& w : workers_) all.insert(all.end(), w->ops.begin(), w->ops.end());
  all.insert(all.end(), final_ops_.begin(), final_ops_.end());
  std::sort(all.begin(), all.end(),
            [](const OpRecord& a, const OpRecord& b) { return a.id < b.id; });
  return all;
}

std::vector<WriteRecord> Workload::Writes() const {
  using Effect = WriteRecord::Effect;
  std::vector<WriteRecord> writes;
  for (const OpRecord& op : RegisterHistory()) {
    if (op.type != OpType::kWrite && op.type != OpType::kCas) continue;
    Effect effect = Effect::kMaybe;
    if (op.outcome == Outcome::kFail) effect = Effect::kNotApplied;
    if (op.outcome == Outcome::kOk) {
      effect =
          op.type == OpType::kWrite || op.cas_succeeded ? Effect::kApplied : Effect::kNotApplied;
    }
    writes.push_back({op.key, op.value, effect});
  }
  for (const auto& w : workers_) {
    for (const auto& key : w->acknowledged) writes.push_back({key, "1", Effect::kApplied});
    for (const auto& key : w->unknown) writes.push_back({key, "1", Effect::kMaybe});
    for (const auto& key : w->failed) writes.push_back({key, "1", Effect::kNotApplied});
  }
  return writes;
}

OpCounts Workload::Counts() const {
  OpCounts c;
  c.ok = ok_;
  c.fail = fail_;
  c.unknown = unknown_;
  c.ops = c.ok + c.fail + c.unknown;
  return c;
}

}  // namespace keel::chaos
