// keel::Txn: a builder for etcd's transactions — If(compares...) Then(ops...)
// Else(ops...) — applied atomically at one revision by Client::Txn.
//
//   keel::Txn txn;
//   txn.If(keel::Compare::Value("counter", keel::CompareOp::kEqual, "41"))
//       .Then(keel::Op::Put("counter", "42"))
//       .Else(keel::Op::Get("counter"));
//   absl::StatusOr<keel::TxnResponse> r = client->Txn(txn);  // r->succeeded()
//
// If() with no compares always takes the Then branch. Invalid op options (say, both
// prefix and from_key) are remembered and reported by Build() and Client::Txn.
// A Txn is a value: copy it, reuse it; not thread-safe while being built.
#pragma once

#include <cstdint>
#include <string_view>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "keel/kv.h"
#include "proto/etcdserverpb/rpc.pb.h"

namespace keel {

enum class CompareOp { kEqual, kNotEqual, kGreater, kLess };

// One condition on a key (or, WithRangeEnd/WithPrefix, on every key of a range).
// A missing key has value "", version 0, create/mod revision 0 and lease 0.
class Compare {
 public:
  static Compare Value(std::string_view key, CompareOp op, std::string_view value);
  static Compare Version(std::string_view key, CompareOp op, int64_t version);
  static Compare CreateRevision(std::string_view key, CompareOp op, int64_t revision);
  static Compare ModRevision(std::string_view key, CompareOp op, int64_t revision);
  static Compare Lease(std::string_view key, CompareOp op, int64_t lease_id);

  // Compares every key in [key, range_end) ("\0": every key >= key).
  Compare& WithRangeEnd(std::string_view range_end);
  // Compares every key that starts with the key.
  Compare& WithPrefix();

  [[nodiscard]] const etcdserverpb::Compare& proto() const { return compare_; }

 private:
  Compare(std::string_view key, CompareOp op, etcdserverpb::Compare::CompareTarget target);
  etcdserverpb::Compare compare_;
};

class Txn;

// One operation of a Then or Else branch.
class Op {
 public:
  static Op Get(std::string_view key, const RangeOptions& options = {});
  static Op Put(std::string_view key, std::string_view value, const PutOptions& options = {});
  static Op Delete(std::string_view key, const DeleteOptions& options = {});
  // A nested transaction (its own If/Then/Else), evaluated within this one.
  static Op Nested(const Txn& txn);

  [[nodiscard]] const etcdserverpb::RequestOp& proto() const { return op_; }
  // Not OK if the options given to the factory were invalid.
  [[nodiscard]] const absl::Status& status() const { return status_; }

 private:
  Op() = default;
  etcdserverpb::RequestOp op_;
  absl::Status status_;
};

class Txn {
 public:
  template <typename... C>
  Txn& If(C&&... compares) {
    (AddCompare(std::forward<C>(compares)), ...);
    return *this;
  }
  template <typename... O>
  Txn& Then(O&&... ops) {
    (AddOp(std::forward<O>(ops), /*success=*/true), ...);
    return *this;
  }
  template <typename... O>
  Txn& Else(O&&... ops) {
    (AddOp(std::forward<O>(ops), /*success=*/false), ...);
    return *this;
  }

  void AddCompare(const Compare& compare);
  void AddOp(const Op& op, bool success);

  // The etcd request, or the first invalid op's error.
  [[nodiscard]] absl::StatusOr<etcdserverpb::TxnRequest> Build() const;
  // Whether a branch (or a nested txn) writes: such a txn gets an exactly-once
  // request id; a read-only one is retried freely.
  [[nodiscard]] bool HasWrites() const;

 private:
  etcdserverpb::TxnRequest request_;
  absl::Status status_;
};

}  // namespace keel
