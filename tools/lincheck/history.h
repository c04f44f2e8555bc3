// A recorded client history for the linearizability checker, and its file format.
//
// Format: JSON lines, one operation per line (blank lines are skipped). Fields:
//   "id"            uint64, unique in the history
//   "process"       uint64, the client worker that issued the operation
//   "key"           string; every key is absent at the start of the history
//   "op"            "read" | "write" | "cas" | "delete"
//   "value"         string; write: the value written; cas: the new value
//   "expect"        string; cas: the value the key must currently have
//   "start_ns"      uint64, invocation time
//   "end_ns"        uint64, completion time; required when outcome is "ok"; absent or 0 when
//                   the outcome is unknown (an unknown operation may take effect at any time
//                   after start_ns, or never, whatever end_ns says)
//   "outcome"       "ok" | "fail" | "unknown"
//                   fail: definitely had no effect; unknown: timed out or lost the connection
//                   after sending, so it may or may not have taken effect
//   "found"         bool; read ok: whether the key existed
//   "result"        string; read ok with found=true: the value read
//   "cas_succeeded" bool; cas ok: whether the compare matched and the write happened (a cas ok
//                   with cas_succeeded=false is a read that saw a value != expect, or absent)
// Example:
//   {"id":7,"process":2,"key":"k1","op":"cas","expect":"v3","value":"v7","start_ns":1200,
//    "end_ns":1900,"outcome":"ok","cas_succeeded":true}
//
// uint64 fields may also be given as decimal strings ("12"), as protobuf's JSON mapping writes
// them. Fields that do not apply to an operation (e.g. "result" on a write) are ignored, and so
// are unknown fields, so a writer may add its own (e.g. "error"). Strings are JSON strings;
// bytes >= 0x80 pass through unchecked, \uXXXX escapes become UTF-8. Any other deviation is an
// error naming the line and column.
#pragma once

#include <cstdint>
#include <istream>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace keel::lincheck {

enum class OpType : uint8_t { kRead, kWrite, kCas, kDelete };
enum class Outcome : uint8_t { kOk, kFail, kUnknown };

struct Operation {
  uint64_t id = 0;
  uint64_t process = 0;
  std::string key;
  OpType type = OpType::kRead;
  std::string value;   // write: value written; cas: new value.
  std::string expect;  // cas: value the key must have for the swap.
  uint64_t start_ns = 0;
  uint64_t end_ns = 0;  // 0 when the outcome is unknown.
  Outcome outcome = Outcome::kOk;
  bool found = false;          // read ok.
  std::string result;          // read ok && found.
  bool cas_succeeded = false;  // cas ok.

  friend bool operator==(const Operation&, const Operation&) = default;
};

using History = std::vector<Operation>;

[[nodiscard]] const char* OpTypeName(OpType type);       // "read", "write", "cas", "delete"
[[nodiscard]] const char* OutcomeName(Outcome outcome);  // "ok", "fail", "unknown"

// Parses one line of the format above. `line_number` (1-based) only goes into error messages.
// Errors are kInvalidArgument: "line 12, column 30: ...".
[[nodiscard]] absl::StatusOr<Operation> ParseOperation(absl::string_view line, int line_number);

// Parses a whole history; also rejects duplicate ids (naming both lines).
[[nodiscard]] absl::StatusOr<History> ParseHistory(absl::string_view text);
[[nodiscard]] absl::StatusOr<History> ReadHistory(std::istream& in);
// kNotFound if the file cannot be opened.
[[nodiscard]] absl::StatusOr<History> ReadHistoryFile(const std::string& path);

// One line of the format (no trailing newline); ParseOperation reads it back unchanged. Only the
// fields that apply to the operation are written.
[[nodiscard]] std::string OperationToJson(const Operation& op);

}  // namespace keel::lincheck
