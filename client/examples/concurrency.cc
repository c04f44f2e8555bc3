#include "client/examples/concurrency.h"

#include <algorithm>

#include "absl/strings/str_cat.h"

namespace keel::examples {
namespace {

constexpr absl::Duration kPollMin = absl::Milliseconds(10);
constexpr absl::Duration kPollMax = absl::Milliseconds(250);

std::string WithSlash(std::string name) {
  if (name.empty() || name.back() != '/') name.push_back('/');
  return name;
}

// A call's timeout: what is left until `deadline` (at least 1 ms, so it fails fast).
absl::Duration Left(absl::Time deadline) {
  return std::max(deadline - absl::Now(), absl::Milliseconds(1));
}

}  // namespace

// ---------------------------------------------------------------- Session

absl::StatusOr<std::unique_ptr<Session>> Session::Create(Client* client, int64_t ttl_s) {
  absl::StatusOr<LeaseGrantResponse> granted = client->LeaseGrant(ttl_s);
  if (!granted.ok()) return granted.status();
  absl::StatusOr<std::unique_ptr<LeaseKeeper>> keep = client->LeaseKeepAlive(granted->id());
  if (!keep.ok()) {
    (void)client->LeaseRevoke(granted->id());
    return keep.status();
  }
  return std::unique_ptr<Session>(new Session(client, granted->id(), std::move(*keep)));
}

Session::~Session() {
  keep_alive_.reset();
  (void)client_->LeaseRevoke(lease_);  // If it fails, the lease simply expires.
}

// ---------------------------------------------------------------- QueueEntry

QueueEntry::QueueEntry(Session* session, std::string prefix)
    : session_(session),
      prefix_(WithSlash(std::move(prefix))),
      key_(absl::StrCat(prefix_, absl::Hex(session->lease(), absl::kZeroPad16))) {}

Compare QueueEntry::Held() const {
  return Compare::CreateRevision(key_, CompareOp::kEqual, revision_);
}

absl::Status QueueEntry::Enter(std::string_view value, absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  PutOptions put;
  put.lease = session_->lease();
  // Create the key unless it exists (a retried Enter, or a lock re-taken by the same
  // session): then its existing create revision is the place in the queue.
  Txn txn;
  txn.If(Compare::CreateRevision(key_, CompareOp::kEqual, 0))
      .Then(Op::Put(key_, value, put))
      .Else(Op::Get(key_));
  CallOptions call;
  call.timeout = Left(deadline);
  absl::StatusOr<TxnResponse> created = session_->client()->Txn(txn, call);
  if (!created.ok()) return created.status();
  if (created->succeeded()) {
    revision_ = created->header().revision();
  } else {
    const auto& kvs = created->responses(0).response_range().kvs();
    if (kvs.empty()) return absl::AbortedError(absl::StrCat(key_, " vanished; try again"));
    revision_ = kvs[0].create_revision();
  }
  absl::Status waited = WaitForPredecessors(deadline);
  if (!waited.ok()) {
    (void)Leave();
    return waited;
  }
  // Our key must still be there: had the lease expired while we waited, someone
  // behind us could hold the lock already.
  RangeOptions get;
  get.timeout = Left(deadline);
  absl::StatusOr<RangeResponse> mine = session_->client()->Get(key_, get);
  if (!mine.ok()) return mine.status();
  if (mine->kvs_size() != 1 || mine->kvs(0).create_revision() != revision_) {
    revision_ = 0;
    return absl::AbortedError(absl::StrCat("lost ", key_, " while waiting (lease expired)"));
  }
  return absl::OkStatus();
}

absl::Status QueueEntry::WaitForPredecessors(absl::Time deadline) {
  for (;;) {
    if (absl::Status s = session_->status(); !s.ok()) {
      return absl::AbortedError(absl::StrCat("session lost: ", s.message()));
    }
    // The newest key queued before ours.
    RangeOptions before;
    before.prefix = true;
    before.max_create_revision = revision_ - 1;
    before.sort_order = SortOrder::kDescend;
    before.sort_target = SortTarget::kCreateRevision;
    before.limit = 1;
    before.keys_only = true;
    before.timeout = Left(deadline);
    absl::StatusOr<RangeResponse> ahead = session_->client()->Get(prefix_, before);
    if (!ahead.ok()) return ahead.status();
    if (ahead->kvs_size() == 0) return absl::OkStatus();  // First in line.
    const std::string predecessor = ahead->kvs(0).key();
    const int64_t predecessor_revision = ahead->kvs(0).create_revision();
    // Poll it until it is deleted (with Watch: wait for its DELETE event instead).
    absl::Duration pause = kPollMin;
    for (;;) {
      if (absl::Now() + pause >= deadline) {
        return absl::DeadlineExceededError(absl::StrCat("still waiting behind ", predecessor));
      }
      absl::SleepFor(pause);
      pause = std::min(pause * 2, kPollMax);
      RangeOptions get;
      get.keys_only = true;
      get.timeout = Left(deadline);
      absl::StatusOr<RangeResponse> still = session_->client()->Get(predecessor, get);
      if (!still.ok()) return still.status();
      if (still->kvs_size() == 0 || still->kvs(0).create_revision() != predecessor_revision) {
        break;
      }
    }
  }
}

absl::Status QueueEntry::Leave() {
  if (revision_ == 0) return absl::OkStatus();
  absl::StatusOr<DeleteResponse> deleted = session_->client()->Delete(key_);
  if (!deleted.ok()) return deleted.status();
  revision_ = 0;
  return absl::OkStatus();
}

// ---------------------------------------------------------------- Election

Election::Election(Session* session, std::string name)
    : session_(session), prefix_(WithSlash(name)), entry_(session, std::move(name)) {}

absl::Status Election::Campaign(std::string_view value, absl::Duration timeout) {
  return entry_.Enter(value, timeout);
}

absl::Status Election::Proclaim(std::string_view value) {
  PutOptions put;
  put.lease = session_->lease();
  Txn txn;
  txn.If(entry_.Held()).Then(Op::Put(entry_.key(), value, put));
  absl::StatusOr<TxnResponse> r = session_->client()->Txn(txn);
  if (!r.ok()) return r.status();
  if (!r->succeeded()) return absl::FailedPreconditionError("not the leader");
  return absl::OkStatus();
}

absl::StatusOr<KeyValue> Election::Leader() const {
  RangeOptions first;
  first.prefix = true;
  first.sort_order = SortOrder::kAscend;
  first.sort_target = SortTarget::kCreateRevision;
  first.limit = 1;
  absl::StatusOr<RangeResponse> r = session_->client()->Get(prefix_, first);
  if (!r.ok()) return r.status();
  if (r->kvs_size() == 0) return absl::NotFoundError(absl::StrCat("no leader under ", prefix_));
  return r->kvs(0);
}

}  // namespace keel::examples
