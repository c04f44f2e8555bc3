#include "tests/chaos/watchers.h"

#include <random>

#include "absl/strings/str_cat.h"
#include "grpcpp/grpcpp.h"
#include "proto/etcdserverpb/rpc.grpc.pb.h"

namespace keel::chaos {
namespace {

const std::string kEveryKey(1, '\0');

WatchEvent FromProto(const mvccpb::Event& e) {
  WatchEvent w;
  w.revision = e.kv().mod_revision();
  w.key = e.kv().key();
  w.is_put = e.type() == mvccpb::Event::PUT;
  if (w.is_put) w.value = e.kv().value();
  return w;
}

}  // namespace

struct Watchers::State {
  int index = 0;
  bool restarts = false;
  std::unique_ptr<Client> client;
  std::unique_ptr<Watcher> watcher;
  std::mt19937_64 rng;
  absl::Time restart_at;

  mutable std::mutex mu;  // Guards the rest (the callback runs on a gRPC thread).
  WatcherLog log;
  int64_t next_revision = 1;  // The revision after the last one received.
  int resumes_before = 0;     // Resumes of the watchers replaced by restarts.
};

Watchers::Watchers(WatchersOptions options, std::vector<std::string> member_addresses)
    : options_(options), members_(std::move(member_addresses)) {}

Watchers::~Watchers() { Stop(); }

absl::Status Watchers::Start() {
  for (int i = 0; i < options_.watchers; ++i) {
    auto s = std::make_unique<State>();
    s->index = i;
    s->rng.seed(options_.seed * 7'919 + i);
    ClientOptions client_options;
    client_options.endpoints = members_;
    client_options.random_seed = options_.seed * 104'729 + i;
    auto client = Client::Connect(client_options);
    if (!client.ok()) return client.status();
    s->client = std::move(*client);
    s->log.name = absl::StrCat("w", i);
    switch (i % 3) {
      case 0:
        s->log.range = {kEveryKey, kEveryKey};
        break;
      case 1: {
        s->log.range = {"k", "l"};
        s->restarts = true;
        auto rev = s->client->Get("k0");
        if (!rev.ok()) return rev.status();
        s->log.start_revision = rev->header().revision() + 1;
        break;
      }
      default:
        s->log.range = {absl::StrCat("k", i % options_.keys), ""};
        s->restarts = true;
        break;
    }
    s->next_revision = s->log.start_revision;
    states_.push_back(std::move(s));
  }
  for (auto& s : states_) Create(s.get());
  restarter_ = std::thread([this] { RestartLoop(); });
  return absl::OkStatus();
}

void Watchers::Create(State* s) {
  WatchOptions options;
  int64_t start;
  {
    std::lock_guard<std::mutex> lock(s->mu);
    start = s->next_revision;
    if (s->log.range.end == kEveryKey) {
      options.from_key = true;
    } else {
      options.range_end = s->log.range.end;
    }
  }
  options.start_revision = start;
  s->watcher = s->client->Watch(s->log.range.begin, options, [s](absl::StatusOr<WatchBatch> b) {
    std::lock_guard<std::mutex> lock(s->mu);
    if (!b.ok()) {
      s->log.ended = b.status().ToString();
      return;
    }
    if (b->events.empty()) return;  // Progress.
    std::vector<WatchEvent>& batch = s->log.batches.emplace_back();
    for (const mvccpb::Event& e : b->events) batch.push_back(FromProto(e));
    s->next_revision = std::max(s->next_revision, batch.back().revision + 1);
  });
  std::uniform_int_distribution<int> hold_ms(1000, 4000);
  s->restart_at = absl::Now() + absl::Milliseconds(hold_ms(s->rng));
}

void Watchers::RestartLoop() {
  while (!stop_) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    for (auto& s : states_) {
      if (stop_) return;
      if (!s->restarts || absl::Now() < s->restart_at) continue;
      {
        std::lock_guard<std::mutex> lock(s->mu);
        if (!s->log.ended.empty()) continue;  // Reported as such; not papered over.
      }
      // Destroying waits for a running callback: next_revision is final after it.
      const int resumes = s->watcher->resumes();
      s->watcher.reset();
      {
        std::lock_guard<std::mutex> lock(s->mu);
        s->resumes_before += resumes;
      }
      ++restarts_;
      Create(s.get());
    }
  }
}

absl::StatusOr<int64_t> Watchers::CurrentRevision(absl::Duration timeout) {
  if (states_.empty()) return absl::FailedPreconditionError("no watchers");
  const absl::Time deadline = absl::Now() + timeout;
  absl::Status last;
  while (absl::Now() < deadline) {
    auto r = states_.front()->client->Get("k0");
    if (r.ok()) return r->header().revision();
    last = r.status();
  }
  return absl::DeadlineExceededError(
      absl::StrCat("the current revision could not be read: ", last.message()));
}

absl::Status Watchers::WaitCaughtUp(const std::vector<WatchEvent>& history,
                                    absl::Duration timeout) {
  // No more restarts: the watches stay as they are (and s->watcher may be read here).
  stop_ = true;
  if (restarter_.joinable()) restarter_.join();
  const absl::Time deadline = absl::Now() + timeout;
  for (auto& s : states_) {
    int64_t want = 0;
    for (auto it = history.rbegin(); it != history.rend(); ++it) {
      if (s->log.range.Contains(it->key)) {
        want = it->revision;
        break;
      }
    }
    for (;;) {
      int64_t have;
      {
        std::lock_guard<std::mutex> lock(s->mu);
        if (!s->log.ended.empty()) break;  // The checker reports it.
        have = s->next_revision - 1;
      }
      if (have >= want) break;
      if (absl::Now() >= deadline) {
        return absl::DeadlineExceededError(absl::StrCat(
            "watcher ", s->log.name, " is stuck at revision ", have, " (its last event is at ",
            want, ", serving member '", s->watcher ? s->watcher->endpoint() : "", "')"));
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }
  return absl::OkStatus();
}

void Watchers::Stop() {
  stop_ = true;
  if (restarter_.joinable()) restarter_.join();
  for (auto& s : states_) {
    if (!s->watcher) continue;
    const int resumes = s->watcher->resumes();
    s->watcher.reset();
    std::lock_guard<std::mutex> lock(s->mu);
    s->resumes_before += resumes;
  }
}

std::vector<WatcherLog> Watchers::Logs() const {
  std::vector<WatcherLog> logs;
  for (const auto& s : states_) {
    std::lock_guard<std::mutex> lock(s->mu);
    logs.push_back(s->log);
  }
  return logs;
}

int Watchers::resumes() const {
  int total = 0;
  for (const auto& s : states_) {
    std::lock_guard<std::mutex> lock(s->mu);
    total += s->resumes_before + (s->watcher ? s->watcher->resumes() : 0);
  }
  return total;
}

absl::StatusOr<std::vector<WatchEvent>> ReadEventHistory(const std::string& address, int64_t from,
                                                         int64_t last, absl::Duration timeout,
                                                         int64_t* first) {
  *first = from;
  std::vector<WatchEvent> events;
  if (last < from) return events;
  auto stub = etcdserverpb::Watch::NewStub(
      grpc::CreateChannel(address, grpc::InsecureChannelCredentials()));
  const absl::Time deadline = absl::Now() + timeout;
  for (int attempt = 0;; ++attempt) {
    grpc::ClientContext context;
    context.set_deadline(absl::ToChronoTime(deadline));
    context.set_wait_for_ready(true);
    auto stream = stub->Watch(&context);
    etcdserverpb::WatchRequest request;
    etcdserverpb::WatchCreateRequest* create = request.mutable_create_request();
    create->set_key(kEveryKey);
    create->set_range_end(kEveryKey);
    create->set_start_revision(*first);
    stream->Write(request);
    etcdserverpb::WatchResponse response;
    int64_t compacted = 0;
    bool done = false;
    while (!done && stream->Read(&response)) {
      if (response.compact_revision() != 0) {
        compacted = response.compact_revision();
        break;
      }
      if (response.canceled()) break;
      for (const mvccpb::Event& e : response.events()) {
        events.push_back(FromProto(e));
        if (e.kv().mod_revision() >= last) done = true;
      }
    }
    context.TryCancel();
    const grpc::Status status = stream->Finish();
    if (done) {
      // Events of later revisions (writes whose outcome was unknown, applied after
      // `last` was read) are not part of this history.
      while (!events.empty() && events.back().revision > last) events.pop_back();
      return events;
    }
    if (compacted != 0 && attempt == 0) {
      *first = compacted;
      events.clear();
      continue;
    }
    return absl::DeadlineExceededError(
        absl::StrCat("the event history of ", address, " could not be read up to revision ", last,
                     " (got to ", events.empty() ? *first - 1 : events.back().revision,
                     "): ", response.cancel_reason(), status.error_message()));
  }
}

}  // namespace keel::chaos
