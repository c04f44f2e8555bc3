#include "tests/chaos/history.h"

#include <cstdio>
#include <fstream>

#include "absl/strings/str_cat.h"

namespace keel::chaos {
namespace {

// A JSON string literal for the error text, which may hold anything.
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

}  // namespace

lincheck::Operation ToOperation(const OpRecord& op) {
  lincheck::Operation o;
  o.id = op.id;
  o.process = op.process;
  o.key = op.key;
  o.type = op.type;
  o.value = op.value;
  o.expect = op.expect;
  o.start_ns = op.start_ns;
  o.end_ns = op.end_ns;
  o.outcome = op.outcome;
  o.found = op.found;
  o.result = op.result;
  o.cas_succeeded = op.cas_succeeded;
  return o;
}

std::string ToJsonLine(const OpRecord& op) {
  std::string line = lincheck::OperationToJson(ToOperation(op));
  line.pop_back();  // The closing brace: our own fields follow (the checker skips them).
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
