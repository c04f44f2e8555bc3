// The Txn builder of keel/txn.h.
#include "keel/txn.h"

namespace keel {
namespace {

etcdserverpb::Compare::CompareResult ToProto(CompareOp op) {
  switch (op) {
    case CompareOp::kEqual:
      return etcdserverpb::Compare::EQUAL;
    case CompareOp::kNotEqual:
      return etcdserverpb::Compare::NOT_EQUAL;
    case CompareOp::kGreater:
      return etcdserverpb::Compare::GREATER;
    case CompareOp::kLess:
      return etcdserverpb::Compare::LESS;
  }
  return etcdserverpb::Compare::EQUAL;
}

bool Writes(const etcdserverpb::RequestOp& op);

bool BranchWrites(const google::protobuf::RepeatedPtrField<etcdserverpb::RequestOp>& ops) {
  for (const auto& op : ops) {
    if (Writes(op)) return true;
  }
  return false;
}

bool Writes(const etcdserverpb::RequestOp& op) {
  switch (op.request_case()) {
    case etcdserverpb::RequestOp::kRequestPut:
    case etcdserverpb::RequestOp::kRequestDeleteRange:
      return true;
    case etcdserverpb::RequestOp::kRequestTxn:
      return BranchWrites(op.request_txn().success()) || BranchWrites(op.request_txn().failure());
    default:
      return false;
  }
}

}  // namespace

Compare::Compare(std::string_view key, CompareOp op, etcdserverpb::Compare::CompareTarget target) {
  compare_.set_key(std::string(key));
  compare_.set_result(ToProto(op));
  compare_.set_target(target);
}

Compare Compare::Value(std::string_view key, CompareOp op, std::string_view value) {
  Compare c(key, op, etcdserverpb::Compare::VALUE);
  c.compare_.set_value(std::string(value));
  return c;
}

Compare Compare::Version(std::string_view key, CompareOp op, int64_t version) {
  Compare c(key, op, etcdserverpb::Compare::VERSION);
  c.compare_.set_version(version);
  return c;
}

Compare Compare::CreateRevision(std::string_view key, CompareOp op, int64_t revision) {
  Compare c(key, op, etcdserverpb::Compare::CREATE);
  c.compare_.set_create_revision(revision);
  return c;
}

Compare Compare::ModRevision(std::string_view key, CompareOp op, int64_t revision) {
  Compare c(key, op, etcdserverpb::Compare::MOD);
  c.compare_.set_mod_revision(revision);
  return c;
}

Compare Compare::Lease(std::string_view key, CompareOp op, int64_t lease_id) {
  Compare c(key, op, etcdserverpb::Compare::LEASE);
  c.compare_.set_lease(lease_id);
  return c;
}

Compare& Compare::WithRangeEnd(std::string_view range_end) {
  compare_.set_range_end(std::string(range_end));
  return *this;
}

Compare& Compare::WithPrefix() {
  compare_.set_range_end(PrefixEnd(compare_.key()));
  return *this;
}

Op Op::Get(std::string_view key, const RangeOptions& options) {
  Op op;
  absl::StatusOr<etcdserverpb::RangeRequest> r = MakeRangeRequest(key, options);
  if (r.ok()) {
    *op.op_.mutable_request_range() = *std::move(r);
  } else {
    op.status_ = r.status();
  }
  return op;
}

Op Op::Put(std::string_view key, std::string_view value, const PutOptions& options) {
  Op op;
  absl::StatusOr<etcdserverpb::PutRequest> r = MakePutRequest(key, value, options);
  if (r.ok()) {
    *op.op_.mutable_request_put() = *std::move(r);
  } else {
    op.status_ = r.status();
  }
  return op;
}

Op Op::Delete(std::string_view key, const DeleteOptions& options) {
  Op op;
  absl::StatusOr<etcdserverpb::DeleteRangeRequest> r = MakeDeleteRequest(key, options);
  if (r.ok()) {
    *op.op_.mutable_request_delete_range() = *std::move(r);
  } else {
    op.status_ = r.status();
  }
  return op;
}

Op Op::Nested(const Txn& txn) {
  Op op;
  absl::StatusOr<etcdserverpb::TxnRequest> r = txn.Build();
  if (r.ok()) {
    *op.op_.mutable_request_txn() = *std::move(r);
  } else {
    op.status_ = r.status();
  }
  return op;
}

void Txn::AddCompare(const Compare& compare) { *request_.add_compare() = compare.proto(); }

void Txn::AddOp(const Op& op, bool success) {
  if (!op.status().ok()) {
    if (status_.ok()) status_ = op.status();
    return;
  }
  *(success ? request_.add_success() : request_.add_failure()) = op.proto();
}

absl::StatusOr<etcdserverpb::TxnRequest> Txn::Build() const {
  if (!status_.ok()) return status_;
  return request_;
}

bool Txn::HasWrites() const {
  return BranchWrites(request_.success()) || BranchWrites(request_.failure());
}

}  // namespace keel
