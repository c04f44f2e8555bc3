#include "tests/chaos/history.h"

#include <cstdio>
#include <fstream>

#include "absl/strings/str_cat.h"

namespace keel::chaos {
namespace {

// A JSON string literal; our keys and values are ASCII, errors may hold anything.
std::string Quote(const std::string& s) {
  std::string out = "\"";
  for (const unsigned char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof(buf), "\\u%04x", c);
      out += buf;
    } else {
      out += static_cast<char>(c);
    }
  }
  return out + "\"";
}

const char* TypeName(OpType type) {
  switch (type) {
    case OpType::kRead:
      return "read";
    case OpType::kWrite:
      return "write";
    case OpType::kCas:
      return "cas";
    case OpType::kDelete:
      return "delete";
  }
  return "?";
}

const char* OutcomeName(Outcome outcome) {
  switch (outcome) {
    case Outcome::kOk:
      return "ok";
    case Outcome::kFail:
      return "fail";
    case Outcome::kUnknown:
      return "unknown";
  }
  return "?";
}

}  // namespace

std::string ToJsonLine(const OpRecord& op) {
  std::string line =
      absl::StrCat("{\"id\":", op.id, ",\"process\":", op.process, ",\"key\":", Quote(op.key),
                   ",\"op\":\"", TypeName(op.type), "\"");
  if (op.type == OpType::kWrite || op.type == OpType::kCas) {
    absl::StrAppend(&line, ",\"value\":", Quote(op.value));
  }
  if (op.type == OpType::kCas) absl::StrAppend(&line, ",\"expect\":", Quote(op.expect));
  absl::StrAppend(&line, ",\"start_ns\":", op.start_ns);
  if (op.outcome != Outcome::kUnknown) absl::StrAppend(&line, ",\"end_ns\":", op.end_ns);
  absl::StrAppend(&line, ",\"outcome\":\"", OutcomeName(op.outcome), "\"");
  if (op.outcome == Outcome::kOk && op.type == OpType::kRead) {
    absl::StrAppend(&line, ",\"found\":", op.found ? "true" : "false");
    if (op.found) absl::StrAppend(&line, ",\"result\":", Quote(op.result));
  }
  if (op.outcome == Outcome::kOk && op.type == OpType::kCas) {
    absl::StrAppend(&line, ",\"cas_succeeded\":", op.cas_succeeded ? "true" : "false");
  }
  if (op.member >= 0) absl::StrAppend(&line, ",\"member\":", op.member);
  if (!op.error.empty()) absl::StrAppend(&line, ",\"error\":", Quote(op.error));
  return line + "}";
}

absl::Status WriteHistory(const std::vector<OpRecord>& ops, const std::string& path) {
  std::ofstream out(path, std::ios::trunc);
  for (const OpRecord& op : ops) out << ToJsonLine(op) << '\n';
  out.flush();
  if (!out) return absl::InternalError(absl::StrCat("cannot write ", path));
  return absl::OkStatus();
}

}  // namespace keel::chaos
