#include "storage/mvcc_validate.h"

#include <algorithm>
#include <set>
#include <string>
#include <vector>

#include "common/status_macros.h"
#include "storage/mvcc_errors.h"

namespace keel::storage::mvcc {
namespace {

using etcdserverpb::RequestOp;

// A half-open key interval; `to_end` means it reaches every key >= begin.
struct Interval {
  std::string begin;
  std::string end;  // Exclusive; empty with !to_end: the single key `begin`.
  bool to_end = false;

  bool Contains(const std::string& key) const {
    if (end.empty() && !to_end) return key == begin;
    return key >= begin && (to_end || key < end);
  }
};

bool AnyContains(const std::vector<Interval>& dels, const std::string& key) {
  for (const auto& d : dels) {
    if (d.Contains(key)) return true;
  }
  return false;
}

absl::Status CheckTxnOps(const etcdserverpb::TxnRequest& r, int64_t max_txn_ops);

absl::Status CheckOps(const google::protobuf::RepeatedPtrField<RequestOp>& ops,
                      int64_t max_txn_ops) {
  for (const auto& op : ops) {
    switch (op.request_case()) {
      case RequestOp::kRequestRange:
        RETURN_IF_ERROR(ValidateRange(op.request_range()));
        break;
      case RequestOp::kRequestPut:
        RETURN_IF_ERROR(ValidatePut(op.request_put()));
        break;
      case RequestOp::kRequestDeleteRange:
        RETURN_IF_ERROR(ValidateDeleteRange(op.request_delete_range()));
        break;
      case RequestOp::kRequestTxn:
        RETURN_IF_ERROR(CheckTxnOps(op.request_txn(), max_txn_ops));
        break;
      case RequestOp::REQUEST_NOT_SET:
        break;  // etcd ignores an empty op.
    }
  }
  return absl::OkStatus();
}

// etcd's checkIntervals: collects the puts and deletes of `ops` (and of nested txns),
// failing on a key that is put twice or both put and deleted. Then/else branches of a
// nested txn are exclusive, so the same put in both is fine.
absl::Status CheckIntervals(const google::protobuf::RepeatedPtrField<RequestOp>& ops,
                            std::set<std::string>* puts, std::vector<Interval>* dels) {
  for (const auto& op : ops) {
    if (!op.has_request_delete_range()) continue;
    const auto& d = op.request_delete_range();
    Interval iv{d.key(), d.range_end(), false};
    if (d.range_end() == std::string(1, '\0')) {
      iv.end.clear();
      iv.to_end = true;
    }
    dels->push_back(std::move(iv));
  }
  for (const auto& op : ops) {
    if (!op.has_request_txn()) continue;
    std::set<std::string> puts_then, puts_else;
    std::vector<Interval> dels_then, dels_else;
    RETURN_IF_ERROR(CheckIntervals(op.request_txn().success(), &puts_then, &dels_then));
    RETURN_IF_ERROR(CheckIntervals(op.request_txn().failure(), &puts_else, &dels_else));
    for (const auto& k : puts_then) {
      if (puts->count(k) != 0 || AnyContains(*dels, k)) return ErrDuplicateKey();
      puts->insert(k);
    }
    for (const auto& k : puts_else) {
      if (puts->count(k) != 0 && puts_then.count(k) == 0) return ErrDuplicateKey();
      if (AnyContains(*dels, k)) return ErrDuplicateKey();
      puts->insert(k);
    }
    dels->insert(dels->end(), dels_then.begin(), dels_then.end());
    dels->insert(dels->end(), dels_else.begin(), dels_else.end());
  }
  for (const auto& op : ops) {
    if (!op.has_request_put()) continue;
    const std::string& k = op.request_put().key();
    if (puts->count(k) != 0 || AnyContains(*dels, k)) return ErrDuplicateKey();
    puts->insert(k);
  }
  return absl::OkStatus();
}

// etcd's checkTxnRequest: a nested txn gets the budget its parent left over.
absl::Status CheckTxnOps(const etcdserverpb::TxnRequest& r, int64_t max_txn_ops) {
  int64_t ops = r.compare_size();
  ops = std::max<int64_t>(ops, r.success_size());
  ops = std::max<int64_t>(ops, r.failure_size());
  if (ops > max_txn_ops) return ErrTooManyOps();
  for (const auto& c : r.compare()) {
    if (c.key().empty()) return ErrEmptyKey();
  }
  RETURN_IF_ERROR(CheckOps(r.success(), max_txn_ops - ops));
  return CheckOps(r.failure(), max_txn_ops - ops);
}

}  // namespace

absl::Status ValidateRange(const etcdserverpb::RangeRequest& r) {
  if (r.key().empty()) return ErrEmptyKey();
  if (!etcdserverpb::RangeRequest::SortOrder_IsValid(r.sort_order()) ||
      !etcdserverpb::RangeRequest::SortTarget_IsValid(r.sort_target())) {
    return ErrInvalidSortOption();
  }
  return absl::OkStatus();
}

absl::Status ValidatePut(const etcdserverpb::PutRequest& r) {
  if (r.key().empty()) return ErrEmptyKey();
  if (r.ignore_value() && !r.value().empty()) return ErrValueProvided();
  if (r.ignore_lease() && r.lease() != 0) return ErrLeaseProvided();
  return absl::OkStatus();
}

absl::Status ValidateDeleteRange(const etcdserverpb::DeleteRangeRequest& r) {
  if (r.key().empty()) return ErrEmptyKey();
  return absl::OkStatus();
}

absl::Status ValidateTxn(const etcdserverpb::TxnRequest& r, int64_t max_txn_ops) {
  RETURN_IF_ERROR(CheckTxnOps(r, max_txn_ops));
  // Overlaps are checked after the sizes, so the quadratic check sees bounded input.
  {
    std::set<std::string> puts;
    std::vector<Interval> dels;
    RETURN_IF_ERROR(CheckIntervals(r.success(), &puts, &dels));
  }
  std::set<std::string> puts;
  std::vector<Interval> dels;
  return CheckIntervals(r.failure(), &puts, &dels);
}

}  // namespace keel::storage::mvcc
