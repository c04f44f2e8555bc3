// Client's KV calls (Range, Put, DeleteRange, Txn, Compact) and the request builders
// of keel/kv.h.
#include "absl/strings/str_cat.h"
#include "client/call.h"
#include "keel/client.h"

namespace keel {
namespace {

using client::CallKind;
using client::CallSpec;
using client::Endpoint;
using client::Route;

// [key, range_end) from the three ways to say it.
absl::StatusOr<std::string> RangeEnd(std::string_view key, const std::string& range_end,
                                     bool prefix, bool from_key) {
  if (key.empty()) return absl::InvalidArgumentError("etcdserver: key is not provided");
  if (static_cast<int>(!range_end.empty()) + static_cast<int>(prefix) + static_cast<int>(from_key) >
      1) {
    return absl::InvalidArgumentError(absl::StrCat(
        "key \"", std::string(key), "\": set at most one of range_end, prefix and from_key"));
  }
  if (prefix) return PrefixEnd(key);
  if (from_key) return std::string(1, '\0');
  return range_end;
}

etcdserverpb::RangeRequest::SortOrder ToProto(SortOrder o) {
  switch (o) {
    case SortOrder::kNone:
      return etcdserverpb::RangeRequest::NONE;
    case SortOrder::kAscend:
      return etcdserverpb::RangeRequest::ASCEND;
    case SortOrder::kDescend:
      return etcdserverpb::RangeRequest::DESCEND;
  }
  return etcdserverpb::RangeRequest::NONE;
}

etcdserverpb::RangeRequest::SortTarget ToProto(SortTarget t) {
  switch (t) {
    case SortTarget::kKey:
      return etcdserverpb::RangeRequest::KEY;
    case SortTarget::kVersion:
      return etcdserverpb::RangeRequest::VERSION;
    case SortTarget::kCreateRevision:
      return etcdserverpb::RangeRequest::CREATE;
    case SortTarget::kModRevision:
      return etcdserverpb::RangeRequest::MOD;
    case SortTarget::kValue:
      return etcdserverpb::RangeRequest::VALUE;
  }
  return etcdserverpb::RangeRequest::KEY;
}

CallSpec WriteSpec(const char* method, absl::Duration timeout) {
  return CallSpec{method, CallKind::kWrite, Route::Leader(), timeout};
}

}  // namespace

std::string PrefixEnd(std::string_view prefix) {
  std::string end(prefix);
  while (!end.empty()) {
    if (static_cast<unsigned char>(end.back()) < 0xff) {
      end.back() = static_cast<char>(static_cast<unsigned char>(end.back()) + 1);
      return end;
    }
    end.pop_back();
  }
  return std::string(1, '\0');  // Every byte was 0xff: every key >= prefix.
}

absl::StatusOr<etcdserverpb::RangeRequest> MakeRangeRequest(std::string_view key,
                                                            const RangeOptions& o) {
  absl::StatusOr<std::string> end = RangeEnd(key, o.range_end, o.prefix, o.from_key);
  if (!end.ok()) return end.status();
  if (o.limit < 0) return absl::InvalidArgumentError("limit must be >= 0");
  etcdserverpb::RangeRequest r;
  r.set_key(std::string(key));
  r.set_range_end(*std::move(end));
  r.set_limit(o.limit);
  r.set_revision(o.revision);
  r.set_sort_order(ToProto(o.sort_order));
  r.set_sort_target(ToProto(o.sort_target));
  r.set_serializable(o.consistency == Consistency::kSerializable);
  r.set_keys_only(o.keys_only);
  r.set_count_only(o.count_only);
  r.set_min_mod_revision(o.min_mod_revision);
  r.set_max_mod_revision(o.max_mod_revision);
  r.set_min_create_revision(o.min_create_revision);
  r.set_max_create_revision(o.max_create_revision);
  return r;
}

absl::StatusOr<etcdserverpb::PutRequest> MakePutRequest(std::string_view key,
                                                        std::string_view value,
                                                        const PutOptions& o) {
  if (key.empty()) return absl::InvalidArgumentError("etcdserver: key is not provided");
  etcdserverpb::PutRequest r;
  r.set_key(std::string(key));
  r.set_value(std::string(value));
  r.set_lease(o.lease);
  r.set_prev_kv(o.prev_kv);
  r.set_ignore_value(o.ignore_value);
  r.set_ignore_lease(o.ignore_lease);
  return r;
}

absl::StatusOr<etcdserverpb::DeleteRangeRequest> MakeDeleteRequest(std::string_view key,
                                                                   const DeleteOptions& o) {
  absl::StatusOr<std::string> end = RangeEnd(key, o.range_end, o.prefix, o.from_key);
  if (!end.ok()) return end.status();
  etcdserverpb::DeleteRangeRequest r;
  r.set_key(std::string(key));
  r.set_range_end(*std::move(end));
  r.set_prev_kv(o.prev_kv);
  return r;
}

void Client::GetAsync(std::string_view key, const RangeOptions& options,
                      Callback<RangeResponse> done) {
  absl::StatusOr<etcdserverpb::RangeRequest> request = MakeRangeRequest(key, options);
  if (!request.ok()) return client::FailNow(done, request.status());
  // Serializable reads may be served by any member: spread them.
  const Route route =
      options.consistency == Consistency::kSerializable ? Route::Any() : Route::Leader();
  client::StartCall<etcdserverpb::RangeRequest, RangeResponse>(
      core_.get(), CallSpec{"Range", CallKind::kRead, route, options.timeout}, *std::move(request),
      [](Endpoint& e, grpc::ClientContext* c, const etcdserverpb::RangeRequest* req,
         RangeResponse* resp,
         std::function<void(grpc::Status)> d) { e.kv->async()->Range(c, req, resp, std::move(d)); },
      std::move(done));
}

void Client::PutAsync(std::string_view key, std::string_view value, const PutOptions& options,
                      Callback<PutResponse> done) {
  absl::StatusOr<etcdserverpb::PutRequest> request = MakePutRequest(key, value, options);
  if (!request.ok()) return client::FailNow(done, request.status());
  client::StartCall<etcdserverpb::PutRequest, PutResponse>(
      core_.get(), WriteSpec("Put", options.timeout), *std::move(request),
      [](Endpoint& e, grpc::ClientContext* c, const etcdserverpb::PutRequest* req,
         PutResponse* resp,
         std::function<void(grpc::Status)> d) { e.kv->async()->Put(c, req, resp, std::move(d)); },
      std::move(done));
}

void Client::DeleteAsync(std::string_view key, const DeleteOptions& options,
                         Callback<DeleteResponse> done) {
  absl::StatusOr<etcdserverpb::DeleteRangeRequest> request = MakeDeleteRequest(key, options);
  if (!request.ok()) return client::FailNow(done, request.status());
  client::StartCall<etcdserverpb::DeleteRangeRequest, DeleteResponse>(
      core_.get(), WriteSpec("DeleteRange", options.timeout), *std::move(request),
      [](Endpoint& e, grpc::ClientContext* c, const etcdserverpb::DeleteRangeRequest* req,
         DeleteResponse* resp, std::function<void(grpc::Status)> d) {
        e.kv->async()->DeleteRange(c, req, resp, std::move(d));
      },
      std::move(done));
}

void Client::TxnAsync(const keel::Txn& txn, const CallOptions& options,
                      Callback<TxnResponse> done) {
  absl::StatusOr<etcdserverpb::TxnRequest> request = txn.Build();
  if (!request.ok()) return client::FailNow(done, request.status());
  CallSpec spec = WriteSpec("Txn", options.timeout);
  // A read-only txn changes nothing: it needs no request id and is retried freely.
  if (!txn.HasWrites()) spec.kind = CallKind::kRead;
  client::StartCall<etcdserverpb::TxnRequest, TxnResponse>(
      core_.get(), spec, *std::move(request),
      [](Endpoint& e, grpc::ClientContext* c, const etcdserverpb::TxnRequest* req,
         TxnResponse* resp,
         std::function<void(grpc::Status)> d) { e.kv->async()->Txn(c, req, resp, std::move(d)); },
      std::move(done));
}

void Client::CompactAsync(int64_t revision, bool physical, const CallOptions& options,
                          Callback<CompactResponse> done) {
  etcdserverpb::CompactionRequest request;
  request.set_revision(revision);
  request.set_physical(physical);
  // No request id on the server side for compaction: retried only when surely not
  // applied (a retry of an applied one would answer "compacted").
  client::StartCall<etcdserverpb::CompactionRequest, CompactResponse>(
      core_.get(), CallSpec{"Compact", CallKind::kUnsafeWrite, Route::Leader(), options.timeout},
      std::move(request),
      [](Endpoint& e, grpc::ClientContext* c, const etcdserverpb::CompactionRequest* req,
         CompactResponse* resp, std::function<void(grpc::Status)> d) {
        e.kv->async()->Compact(c, req, resp, std::move(d));
      },
      std::move(done));
}

absl::StatusOr<RangeResponse> Client::Get(std::string_view key, const RangeOptions& options) {
  return client::Await<RangeResponse>(
      [&](Callback<RangeResponse> d) { GetAsync(key, options, std::move(d)); });
}

absl::StatusOr<RangeResponse> Client::Range(std::string_view key, std::string_view range_end,
                                            RangeOptions options) {
  if (range_end.empty()) {
    return absl::InvalidArgumentError("Range: range_end is empty (use Get for one key)");
  }
  options.range_end = std::string(range_end);
  return Get(key, options);
}

absl::StatusOr<PutResponse> Client::Put(std::string_view key, std::string_view value,
                                        const PutOptions& options) {
  return client::Await<PutResponse>(
      [&](Callback<PutResponse> d) { PutAsync(key, value, options, std::move(d)); });
}

absl::StatusOr<DeleteResponse> Client::Delete(std::string_view key, const DeleteOptions& options) {
  return client::Await<DeleteResponse>(
      [&](Callback<DeleteResponse> d) { DeleteAsync(key, options, std::move(d)); });
}

absl::StatusOr<TxnResponse> Client::Txn(const keel::Txn& txn, const CallOptions& options) {
  return client::Await<TxnResponse>(
      [&](Callback<TxnResponse> d) { TxnAsync(txn, options, std::move(d)); });
}

absl::StatusOr<CompactResponse> Client::Compact(int64_t revision, bool physical,
                                                const CallOptions& options) {
  return client::Await<CompactResponse>([&](Callback<CompactResponse> d) {
    CompactAsync(revision, physical, options, std::move(d));
  });
}

}  // namespace keel
