// keel-lock-example: a distributed lock and a leader election on keel::Client
// (client/examples/concurrency.h), as a program that checks its own guarantees.
//
//   keel-lock-example lock  --endpoints=H:P,... --name=/locks/demo --counter=/demo/n
//                           --rounds=10 --hold-ms=100 --id=worker-1 [--ttl=5]
//   keel-lock-example elect --endpoints=H:P,... --name=/election/demo --counter=/demo/e
//                           --rounds=5 --hold-ms=100 --id=candidate-1 [--ttl=5]
//
// lock: `rounds` times, takes the lock, reads the counter, waits `hold-ms`, writes the
// counter + 1 — a blind write, guarded only by the lock's fencing compare (IsOwner),
// and releases. If two processes ever held the lock at once, one increment overwrites
// the other and the final counter falls short of processes x rounds; if the fence ever
// refuses a write, the process exits 2 ("VIOLATION").
// elect: campaigns, and while leading does `rounds` such increments guarded by
// IsLeader (checking that Leader() names itself), then resigns.
// Prints one line per step; exits 0 on success, 1 on an error, 2 on a violation.
#include <cstdio>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "client/examples/concurrency.h"

namespace {

struct Flags {
  std::string mode;
  std::vector<std::string> endpoints;
  std::string name, counter, id;
  int rounds = 10;
  int hold_ms = 100;
  int64_t ttl_s = 5;
};

bool ParseFlags(int argc, char** argv, Flags* f, std::string* error) {
  if (argc < 2) {
    *error =
        "usage: keel-lock-example lock|elect --endpoints=... --name=... --counter=... --id=...";
    return false;
  }
  f->mode = argv[1];
  if (f->mode != "lock" && f->mode != "elect") {
    *error = absl::StrCat("unknown mode '", f->mode, "' (lock or elect)");
    return false;
  }
  for (int i = 2; i < argc; ++i) {
    std::vector<std::string> kv = absl::StrSplit(argv[i], absl::MaxSplits('=', 1));
    const std::string& key = kv[0];
    const std::string value = kv.size() > 1 ? kv[1] : "";
    bool ok = true;
    if (key == "--endpoints") {
      f->endpoints = absl::StrSplit(value, ',', absl::SkipEmpty());
    } else if (key == "--name") {
      f->name = value;
    } else if (key == "--counter") {
      f->counter = value;
    } else if (key == "--id") {
      f->id = value;
    } else if (key == "--rounds") {
      ok = absl::SimpleAtoi(value, &f->rounds) && f->rounds > 0;
    } else if (key == "--hold-ms") {
      ok = absl::SimpleAtoi(value, &f->hold_ms) && f->hold_ms >= 0;
    } else if (key == "--ttl") {
      ok = absl::SimpleAtoi(value, &f->ttl_s) && f->ttl_s > 0;
    } else {
      ok = false;
    }
    if (!ok) {
      *error = absl::StrCat("bad flag '", argv[i], "'");
      return false;
    }
  }
  if (f->endpoints.empty() || f->name.empty() || f->counter.empty() || f->id.empty()) {
    *error = "--endpoints, --name, --counter and --id are required";
    return false;
  }
  return true;
}

void Say(const Flags& f, const std::string& line) {
  std::printf("%s %s\n", f.id.c_str(), line.c_str());
  std::fflush(stdout);
}

int Fail(const Flags& f, const std::string& what, const absl::Status& s) {
  Say(f, absl::StrCat("ERROR ", what, ": ", s.ToString()));
  return 1;
}

// One guarded read-modify-write of the counter; 2 if the guard refused it.
int Increment(const Flags& f, keel::Client* client, const keel::Compare& guard) {
  absl::StatusOr<keel::RangeResponse> got = client->Get(f.counter);
  if (!got.ok()) return Fail(f, "read counter", got.status());
  int64_t n = 0;
  if (got->kvs_size() == 1 && !absl::SimpleAtoi(got->kvs(0).value(), &n)) {
    return Fail(f, "read counter", absl::DataLossError(got->kvs(0).value()));
  }
  absl::SleepFor(absl::Milliseconds(f.hold_ms));  // The critical section's work.
  keel::Txn txn;
  txn.If(guard).Then(keel::Op::Put(f.counter, absl::StrCat(n + 1)));
  absl::StatusOr<keel::TxnResponse> wrote = client->Txn(txn);
  if (!wrote.ok()) return Fail(f, "write counter", wrote.status());
  if (!wrote->succeeded()) {
    Say(f, absl::StrCat("VIOLATION: the fence refused the write of ", n + 1,
                        " (no longer the holder)"));
    return 2;
  }
  Say(f, absl::StrCat("counter ", n, " -> ", n + 1));
  return 0;
}

int RunLock(const Flags& f, keel::examples::Session* session) {
  keel::examples::Mutex mutex(session, f.name);
  for (int round = 1; round <= f.rounds; ++round) {
    absl::Status locked = mutex.Lock(absl::Seconds(60));
    if (!locked.ok()) return Fail(f, "lock", locked);
    Say(f, absl::StrCat("acquired ", mutex.key(), " rev ", mutex.revision(), " round ", round));
    if (int rc = Increment(f, session->client(), mutex.IsOwner()); rc != 0) return rc;
    absl::Status unlocked = mutex.Unlock();
    if (!unlocked.ok()) return Fail(f, "unlock", unlocked);
    Say(f, absl::StrCat("released round ", round));
  }
  return 0;
}

int RunElect(const Flags& f, keel::examples::Session* session) {
  keel::examples::Election election(session, f.name);
  absl::Status won = election.Campaign(f.id, absl::Seconds(60));
  if (!won.ok()) return Fail(f, "campaign", won);
  Say(f, absl::StrCat("leads rev ", election.revision()));
  for (int round = 1; round <= f.rounds; ++round) {
    absl::StatusOr<keel::KeyValue> leader = election.Leader();
    if (!leader.ok()) return Fail(f, "leader", leader.status());
    if (leader->value() != f.id && leader->value() != absl::StrCat(f.id, " round ", round - 1)) {
      Say(f, absl::StrCat("VIOLATION: Leader() names '", leader->value(), "'"));
      return 2;
    }
    absl::Status proclaimed = election.Proclaim(absl::StrCat(f.id, " round ", round));
    if (!proclaimed.ok()) return Fail(f, "proclaim", proclaimed);
    if (int rc = Increment(f, session->client(), election.IsLeader()); rc != 0) return rc;
  }
  absl::Status resigned = election.Resign();
  if (!resigned.ok()) return Fail(f, "resign", resigned);
  Say(f, "resigned");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Flags f;
  std::string error;
  if (!ParseFlags(argc, argv, &f, &error)) {
    std::fprintf(stderr, "keel-lock-example: %s\n", error.c_str());
    return 1;
  }
  keel::ClientOptions options;
  options.endpoints = f.endpoints;
  absl::StatusOr<std::unique_ptr<keel::Client>> client = keel::Client::Connect(options);
  if (!client.ok()) return Fail(f, "connect", client.status());
  absl::StatusOr<std::unique_ptr<keel::examples::Session>> session =
      keel::examples::Session::Create(client->get(), f.ttl_s);
  if (!session.ok()) return Fail(f, "session", session.status());
  const int rc = f.mode == "lock" ? RunLock(f, session->get()) : RunElect(f, session->get());
  if (absl::Status s = (*session)->status(); rc == 0 && !s.ok()) return Fail(f, "session", s);
  return rc;
}
