// One client operation of a chaos run, as the linearizability checker reads it
// (tools/lincheck: JSON lines, one operation per line), plus two fields of our own for
// the post-mortem ("member": the member asked; "error": the gRPC error, if any).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "tools/lincheck/history.h"

namespace keel::chaos {

using OpType = lincheck::OpType;
// kFail: certainly had no effect. kUnknown: may or may not have taken effect (timed out
// or lost the connection after sending).
using Outcome = lincheck::Outcome;

struct OpRecord {
  uint64_t id = 0;
  uint64_t process = 0;
  std::string key;
  OpType type = OpType::kRead;
  std::string value;   // write: value written; cas: new value.
  std::string expect;  // cas: value the key must have.
  uint64_t start_ns = 0;
  uint64_t end_ns = 0;  // 0 when unknown.
  Outcome outcome = Outcome::kUnknown;
  bool found = false;          // read ok.
  std::string result;          // read ok && found.
  bool cas_succeeded = false;  // cas ok.
  int member = -1;
  std::string error;
};

// The operation as the checker sees it.
[[nodiscard]] lincheck::Operation ToOperation(const OpRecord& op);

// One JSON line (no newline): lincheck's, plus "member" and "error".
std::string ToJsonLine(const OpRecord& op);

// Writes `ops` as JSON lines to `path`.
[[nodiscard]] absl::Status WriteHistory(const std::vector<OpRecord>& ops, const std::string& path);

}  // namespace keel::chaos
