// The errors of the MVCC state machine, with etcd's exact codes and texts: etcd's Go
// client (rpctypes) maps errors by message, so these strings are part of the wire API.
#pragma once

#include "absl/status/status.h"

namespace keel::storage::mvcc {

inline absl::Status ErrEmptyKey() {
  return absl::InvalidArgumentError("etcdserver: key is not provided");
}
inline absl::Status ErrKeyNotFound() {
  return absl::InvalidArgumentError("etcdserver: key not found");
}
inline absl::Status ErrValueProvided() {
  return absl::InvalidArgumentError("etcdserver: value is provided");
}
inline absl::Status ErrLeaseProvided() {
  return absl::InvalidArgumentError("etcdserver: lease is provided");
}
inline absl::Status ErrTooManyOps() {
  return absl::InvalidArgumentError("etcdserver: too many operations in txn request");
}
inline absl::Status ErrDuplicateKey() {
  return absl::InvalidArgumentError("etcdserver: duplicate key given in txn request");
}
inline absl::Status ErrInvalidSortOption() {
  return absl::InvalidArgumentError("etcdserver: invalid sort option");
}
inline absl::Status ErrCompacted() {
  return absl::OutOfRangeError("etcdserver: mvcc: required revision has been compacted");
}
inline absl::Status ErrFutureRev() {
  return absl::OutOfRangeError("etcdserver: mvcc: required revision is a future revision");
}
inline absl::Status ErrLeaseNotFound() {
  return absl::NotFoundError("etcdserver: requested lease not found");
}
inline absl::Status ErrLeaseExists() {
  return absl::FailedPreconditionError("etcdserver: lease already exists");
}
inline absl::Status ErrLeaseTTLTooLarge() {
  return absl::OutOfRangeError("etcdserver: too large lease TTL");
}
// A NOSPACE alarm is raised (etcd's ErrGRPCNoSpace: RESOURCE_EXHAUSTED, same text).
inline absl::Status ErrNoSpace() {
  return absl::ResourceExhaustedError("etcdserver: mvcc: database space exceeded");
}
// A CORRUPT alarm is raised: members' data diverged (etcd's ErrGRPCCorrupt: DATA_LOSS,
// same text).
inline absl::Status ErrCorrupt() { return absl::DataLossError("etcdserver: corrupt cluster"); }

}  // namespace keel::storage::mvcc
