#include "tools/lincheck/history.h"

#include <fstream>
#include <optional>
#include <sstream>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/status_macros.h"

namespace keel::lincheck {
namespace {

// One JSON value of a field; objects and arrays are only skipped (no field of the format has
// one), so kComposite carries nothing.
struct JsonValue {
  enum class Kind { kString, kNumber, kBool, kNull, kComposite };
  Kind kind = Kind::kNull;
  std::string text;  // kString: the decoded string; kNumber: the number as written.
  bool boolean = false;
  size_t column = 0;  // 1-based, where the value starts.
};

// A parser for one line holding one flat JSON object. Hand-written rather than protobuf's
// JsonStringToMessage: it is several times faster on 100k-line histories and its errors name
// the line and column.
class JsonLineParser {
 public:
  JsonLineParser(absl::string_view text, int line_number) : s_(text), line_(line_number) {}

  // Calls on_field(name, value) for each field in order; stops at the first error.
  template <typename OnField>
  absl::Status ParseObject(OnField on_field) {
    SkipSpace();
    RETURN_IF_ERROR(Consume('{', "expected '{' at the start of the operation"));
    SkipSpace();
    if (Peek() == '}') {
      ++pos_;
    } else {
      while (true) {
        SkipSpace();
        if (Peek() != '"') return Error("expected a field name in double quotes");
        ASSIGN_OR_RETURN(std::string name, ParseString());
        SkipSpace();
        RETURN_IF_ERROR(Consume(':', "expected ':' after the field name"));
        SkipSpace();
        ASSIGN_OR_RETURN(JsonValue value, ParseValue(0));
        RETURN_IF_ERROR(on_field(name, value));
        SkipSpace();
        if (Peek() == ',') {
          ++pos_;
          continue;
        }
        RETURN_IF_ERROR(Consume('}', "expected ',' or '}' after a field"));
        break;
      }
    }
    SkipSpace();
    if (pos_ != s_.size()) return Error("unexpected text after the closing '}'");
    return absl::OkStatus();
  }

  absl::Status ErrorAt(size_t column, absl::string_view what) const {
    return absl::InvalidArgumentError(
        absl::StrCat("line ", line_, ", column ", column, ": ", what));
  }

 private:
  static constexpr int kMaxDepth = 32;

  char Peek() const { return pos_ < s_.size() ? s_[pos_] : '\0'; }
  bool AtEnd() const { return pos_ >= s_.size(); }
  absl::Status Error(absl::string_view what) const {
    if (AtEnd()) return ErrorAt(pos_ + 1, absl::StrCat(what, " (found end of line)"));
    return ErrorAt(pos_ + 1, what);
  }
  void SkipSpace() {
    while (!AtEnd() && (s_[pos_] == ' ' || s_[pos_] == '\t' || s_[pos_] == '\r')) ++pos_;
  }
  absl::Status Consume(char c, absl::string_view what) {
    if (Peek() != c || AtEnd()) return Error(what);
    ++pos_;
    return absl::OkStatus();
  }

  absl::StatusOr<JsonValue> ParseValue(int depth) {
    JsonValue v;
    v.column = pos_ + 1;
    const char c = Peek();
    if (AtEnd()) return Error("expected a value");
    if (c == '"') {
      v.kind = JsonValue::Kind::kString;
      ASSIGN_OR_RETURN(v.text, ParseString());
    } else if (c == '-' || (c >= '0' && c <= '9')) {
      v.kind = JsonValue::Kind::kNumber;
      RETURN_IF_ERROR(ParseNumber(&v.text));
    } else if (s_.substr(pos_, 4) == "true") {
      v.kind = JsonValue::Kind::kBool;
      v.boolean = true;
      pos_ += 4;
    } else if (s_.substr(pos_, 5) == "false") {
      v.kind = JsonValue::Kind::kBool;
      pos_ += 5;
    } else if (s_.substr(pos_, 4) == "null") {
      v.kind = JsonValue::Kind::kNull;
      pos_ += 4;
    } else if (c == '{' || c == '[') {
      v.kind = JsonValue::Kind::kComposite;
      RETURN_IF_ERROR(SkipComposite(depth));
    } else {
      return Error("expected a value (string, number, true, false, null, object or array)");
    }
    return v;
  }

  // Skips an object or array (only in fields the checker ignores).
  absl::Status SkipComposite(int depth) {
    if (depth >= kMaxDepth) return Error("nested too deeply");
    const char close = Peek() == '{' ? '}' : ']';
    ++pos_;
    SkipSpace();
    if (Peek() == close) {
      ++pos_;
      return absl::OkStatus();
    }
    while (true) {
      SkipSpace();
      if (close == '}') {
        if (Peek() != '"') return Error("expected a field name in double quotes");
        RETURN_IF_ERROR(ParseString().status());
        SkipSpace();
        RETURN_IF_ERROR(Consume(':', "expected ':' after the field name"));
        SkipSpace();
      }
      RETURN_IF_ERROR(ParseValue(depth + 1).status());
      SkipSpace();
      if (Peek() == ',') {
        ++pos_;
        continue;
      }
      return Consume(close, close == '}' ? "expected ',' or '}'" : "expected ',' or ']'");
    }
  }

  // JSON number grammar: -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?
  absl::Status ParseNumber(std::string* out) {
    const size_t begin = pos_;
    auto digits = [this] {
      size_t n = 0;
      while (!AtEnd() && s_[pos_] >= '0' && s_[pos_] <= '9') ++pos_, ++n;
      return n;
    };
    if (Peek() == '-') ++pos_;
    if (Peek() == '0') {
      ++pos_;
    } else if (digits() == 0) {
      return Error("expected a digit");
    }
    if (Peek() == '.') {
      ++pos_;
      if (digits() == 0) return Error("expected a digit after '.'");
    }
    if (Peek() == 'e' || Peek() == 'E') {
      ++pos_;
      if (Peek() == '+' || Peek() == '-') ++pos_;
      if (digits() == 0) return Error("expected a digit in the exponent");
    }
    *out = std::string(s_.substr(begin, pos_ - begin));
    return absl::OkStatus();
  }

  absl::StatusOr<uint32_t> ParseHex4() {
    if (pos_ + 4 > s_.size()) return Error("expected 4 hex digits after \\u");
    uint32_t code = 0;
    for (int i = 0; i < 4; ++i) {
      const char h = s_[pos_];
      code <<= 4;
      if (h >= '0' && h <= '9') {
        code |= h - '0';
      } else if (h >= 'a' && h <= 'f') {
        code |= h - 'a' + 10;
      } else if (h >= 'A' && h <= 'F') {
        code |= h - 'A' + 10;
      } else {
        return Error("expected a hex digit in \\u escape");
      }
      ++pos_;
    }
    return code;
  }

  static void AppendUtf8(uint32_t code, std::string* out) {
    if (code < 0x80) {
      out->push_back(static_cast<char>(code));
    } else if (code < 0x800) {
      out->push_back(static_cast<char>(0xC0 | (code >> 6)));
      out->push_back(static_cast<char>(0x80 | (code & 0x3F)));
    } else if (code < 0x10000) {
      out->push_back(static_cast<char>(0xE0 | (code >> 12)));
      out->push_back(static_cast<char>(0x80 | ((code >> 6) & 0x3F)));
      out->push_back(static_cast<char>(0x80 | (code & 0x3F)));
    } else {
      out->push_back(static_cast<char>(0xF0 | (code >> 18)));
      out->push_back(static_cast<char>(0x80 | ((code >> 12) & 0x3F)));
      out->push_back(static_cast<char>(0x80 | ((code >> 6) & 0x3F)));
      out->push_back(static_cast<char>(0x80 | (code & 0x3F)));
    }
  }

  // At an opening '"'; returns the decoded string and leaves pos_ after the closing '"'.
  absl::StatusOr<std::string> ParseString() {
    const size_t open_column = pos_ + 1;
    ++pos_;
    std::string out;
    while (true) {
      if (AtEnd()) return ErrorAt(open_column, "string is not closed");
      const char c = s_[pos_];
      if (c == '"') {
        ++pos_;
        return out;
      }
      if (static_cast<unsigned char>(c) < 0x20) {
        return Error("control character in a string (escape it)");
      }
      if (c != '\\') {
        out.push_back(c);
        ++pos_;
        continue;
      }
      ++pos_;
      if (AtEnd()) return ErrorAt(open_column, "string is not closed");
      const char e = s_[pos_++];
      switch (e) {
        case '"':
        case '\\':
        case '/':
          out.push_back(e);
          break;
        case 'b':
          out.push_back('\b');
          break;
        case 'f':
          out.push_back('\f');
          break;
        case 'n':
          out.push_back('\n');
          break;
        case 'r':
          out.push_back('\r');
          break;
        case 't':
          out.push_back('\t');
          break;
        case 'u': {
          ASSIGN_OR_RETURN(uint32_t code, ParseHex4());
          if (code >= 0xD800 && code <= 0xDBFF) {  // High surrogate: a low one must follow.
            if (s_.substr(pos_, 2) != "\\u") return Error("expected a low surrogate \\uDC00..");
            pos_ += 2;
            ASSIGN_OR_RETURN(uint32_t low, ParseHex4());
            if (low < 0xDC00 || low > 0xDFFF) return Error("invalid low surrogate");
            code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00);
          } else if (code >= 0xDC00 && code <= 0xDFFF) {
            return Error("unpaired low surrogate");
          }
          AppendUtf8(code, &out);
          break;
        }
        default:
          --pos_;
          return Error(absl::StrCat("unknown escape '\\", std::string(1, e), "'"));
      }
    }
  }

  absl::string_view s_;
  size_t pos_ = 0;
  int line_;
};

// The fields of the format, each accepted once per line.
enum Field : uint32_t {
  kId = 1 << 0,
  kProcess = 1 << 1,
  kKey = 1 << 2,
  kOp = 1 << 3,
  kValue = 1 << 4,
  kExpect = 1 << 5,
  kStart = 1 << 6,
  kEnd = 1 << 7,
  kOutcome = 1 << 8,
  kFound = 1 << 9,
  kResult = 1 << 10,
  kCasSucceeded = 1 << 11,
};

const absl::flat_hash_map<absl::string_view, Field>& FieldsByName() {
  static const auto* fields = new absl::flat_hash_map<absl::string_view, Field>{
      {"id", kId},          {"process", kProcess}, {"key", kKey},
      {"op", kOp},          {"value", kValue},     {"expect", kExpect},
      {"start_ns", kStart}, {"end_ns", kEnd},      {"outcome", kOutcome},
      {"found", kFound},    {"result", kResult},   {"cas_succeeded", kCasSucceeded},
  };
  return *fields;
}

}  // namespace

const char* OpTypeName(OpType type) {
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

absl::StatusOr<Operation> ParseOperation(absl::string_view line, int line_number) {
  Operation op;
  uint32_t seen = 0;
  JsonLineParser parser(line, line_number);
  auto on_field = [&](const std::string& name, const JsonValue& v) -> absl::Status {
    const auto it = FieldsByName().find(name);
    if (it == FieldsByName().end()) return absl::OkStatus();  // A writer's own field.
    const Field field = it->second;
    if (seen & field)
      return parser.ErrorAt(v.column, absl::StrCat("duplicate field \"", name, "\""));
    if (v.kind == JsonValue::Kind::kNull) return absl::OkStatus();  // null = absent.
    seen |= field;
    auto want = [&](JsonValue::Kind kind, const char* what) -> absl::Status {
      if (v.kind == kind) return absl::OkStatus();
      return parser.ErrorAt(v.column, absl::StrCat("field \"", name, "\" must be ", what));
    };
    auto uint64 = [&](uint64_t* out) -> absl::Status {
      const bool digits_only =
          !v.text.empty() && v.text.find_first_not_of("0123456789") == std::string::npos;
      if ((v.kind != JsonValue::Kind::kNumber && v.kind != JsonValue::Kind::kString) ||
          !digits_only || !absl::SimpleAtoi(v.text, out)) {
        return parser.ErrorAt(
            v.column, absl::StrCat("field \"", name, "\" must be an unsigned 64-bit integer"));
      }
      return absl::OkStatus();
    };
    switch (field) {
      case kId:
        return uint64(&op.id);
      case kProcess:
        return uint64(&op.process);
      case kStart:
        return uint64(&op.start_ns);
      case kEnd:
        return uint64(&op.end_ns);
      case kKey:
        RETURN_IF_ERROR(want(JsonValue::Kind::kString, "a string"));
        op.key = v.text;
        return absl::OkStatus();
      case kValue:
        RETURN_IF_ERROR(want(JsonValue::Kind::kString, "a string"));
        op.value = v.text;
        return absl::OkStatus();
      case kExpect:
        RETURN_IF_ERROR(want(JsonValue::Kind::kString, "a string"));
        op.expect = v.text;
        return absl::OkStatus();
      case kResult:
        RETURN_IF_ERROR(want(JsonValue::Kind::kString, "a string"));
        op.result = v.text;
        return absl::OkStatus();
      case kFound:
        RETURN_IF_ERROR(want(JsonValue::Kind::kBool, "true or false"));
        op.found = v.boolean;
        return absl::OkStatus();
      case kCasSucceeded:
        RETURN_IF_ERROR(want(JsonValue::Kind::kBool, "true or false"));
        op.cas_succeeded = v.boolean;
        return absl::OkStatus();
      case kOp:
        RETURN_IF_ERROR(want(JsonValue::Kind::kString, "a string"));
        if (v.text == "read") {
          op.type = OpType::kRead;
        } else if (v.text == "write") {
          op.type = OpType::kWrite;
        } else if (v.text == "cas") {
          op.type = OpType::kCas;
        } else if (v.text == "delete") {
          op.type = OpType::kDelete;
        } else {
          return parser.ErrorAt(v.column, absl::StrCat("\"op\" must be read, write, cas or "
                                                       "delete, not \"",
                                                       v.text, "\""));
        }
        return absl::OkStatus();
      case kOutcome:
        RETURN_IF_ERROR(want(JsonValue::Kind::kString, "a string"));
        if (v.text == "ok") {
          op.outcome = Outcome::kOk;
        } else if (v.text == "fail") {
          op.outcome = Outcome::kFail;
        } else if (v.text == "unknown") {
          op.outcome = Outcome::kUnknown;
        } else {
          return parser.ErrorAt(
              v.column,
              absl::StrCat("\"outcome\" must be ok, fail or unknown, not \"", v.text, "\""));
        }
        return absl::OkStatus();
    }
    return absl::OkStatus();
  };
  RETURN_IF_ERROR(parser.ParseObject(on_field));

  // Whole-operation rules.
  auto missing = [&](absl::string_view what) {
    return absl::InvalidArgumentError(absl::StrCat("line ", line_number, ": ", what));
  };
  for (const auto& [name, field] : {std::pair{"id", kId},
                                    {"process", kProcess},
                                    {"key", kKey},
                                    {"op", kOp},
                                    {"start_ns", kStart},
                                    {"outcome", kOutcome}}) {
    if (!(seen & field)) return missing(absl::StrCat("missing field \"", name, "\""));
  }
  if ((op.type == OpType::kWrite || op.type == OpType::kCas) && !(seen & kValue)) {
    return missing("a write or cas needs \"value\"");
  }
  if (op.type == OpType::kCas && !(seen & kExpect)) return missing("a cas needs \"expect\"");
  if (op.outcome == Outcome::kOk) {
    if (!(seen & kEnd) || op.end_ns == 0) return missing("an ok operation needs \"end_ns\"");
    if (op.type == OpType::kRead && !(seen & kFound)) return missing("a read ok needs \"found\"");
    if (op.type == OpType::kRead && op.found && !(seen & kResult)) {
      return missing("a read ok with found=true needs \"result\"");
    }
    if (op.type == OpType::kCas && !(seen & kCasSucceeded)) {
      return missing("a cas ok needs \"cas_succeeded\"");
    }
  }
  if (op.outcome == Outcome::kUnknown) op.end_ns = 0;  // It may take effect at any later time.
  if (op.end_ns != 0 && op.end_ns < op.start_ns) return missing("end_ns is before start_ns");
  // Clear what does not apply, so equal operations compare equal whatever extra fields they had.
  if (op.type != OpType::kWrite && op.type != OpType::kCas) op.value.clear();
  if (op.type != OpType::kCas) op.expect.clear();
  if (op.type != OpType::kRead || op.outcome != Outcome::kOk) op.found = false;
  if (!op.found) op.result.clear();
  if (op.type != OpType::kCas || op.outcome != Outcome::kOk) op.cas_succeeded = false;
  return op;
}

absl::StatusOr<History> ParseHistory(absl::string_view text) {
  History history;
  absl::flat_hash_map<uint64_t, int> line_of_id;
  int line_number = 0;
  while (!text.empty()) {
    ++line_number;
    const size_t eol = text.find('\n');
    const absl::string_view line = text.substr(0, eol);
    text = eol == absl::string_view::npos ? absl::string_view() : text.substr(eol + 1);
    if (line.find_first_not_of(" \t\r") == absl::string_view::npos) continue;
    ASSIGN_OR_RETURN(Operation op, ParseOperation(line, line_number));
    const auto [it, inserted] = line_of_id.emplace(op.id, line_number);
    if (!inserted) {
      return absl::InvalidArgumentError(absl::StrCat("line ", line_number, ": id ", op.id,
                                                     " was already used on line ", it->second));
    }
    history.push_back(std::move(op));
  }
  return history;
}

absl::StatusOr<History> ReadHistory(std::istream& in) {
  std::ostringstream buffer;
  buffer << in.rdbuf();
  if (in.bad()) return absl::DataLossError("reading the history failed");
  return ParseHistory(buffer.str());
}

absl::StatusOr<History> ReadHistoryFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot open history file ", path));
  auto history = ReadHistory(in);
  if (!history.ok()) {
    return absl::Status(history.status().code(),
                        absl::StrCat(path, ": ", history.status().message()));
  }
  return history;
}

namespace {

void AppendJsonString(absl::string_view s, std::string* out) {
  out->push_back('"');
  for (const char c : s) {
    switch (c) {
      case '"':
        out->append("\\\"");
        break;
      case '\\':
        out->append("\\\\");
        break;
      case '\n':
        out->append("\\n");
        break;
      case '\r':
        out->append("\\r");
        break;
      case '\t':
        out->append("\\t");
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          static constexpr char kHex[] = "0123456789abcdef";
          out->append("\\u00");
          out->push_back(kHex[(c >> 4) & 0xF]);
          out->push_back(kHex[c & 0xF]);
        } else {
          out->push_back(c);
        }
    }
  }
  out->push_back('"');
}

}  // namespace

std::string OperationToJson(const Operation& op) {
  std::string out = absl::StrCat("{\"id\":", op.id, ",\"process\":", op.process, ",\"key\":");
  AppendJsonString(op.key, &out);
  absl::StrAppend(&out, ",\"op\":\"", OpTypeName(op.type), "\"");
  if (op.type == OpType::kCas) {
    out.append(",\"expect\":");
    AppendJsonString(op.expect, &out);
  }
  if (op.type == OpType::kWrite || op.type == OpType::kCas) {
    out.append(",\"value\":");
    AppendJsonString(op.value, &out);
  }
  absl::StrAppend(&out, ",\"start_ns\":", op.start_ns);
  if (op.end_ns != 0) absl::StrAppend(&out, ",\"end_ns\":", op.end_ns);
  absl::StrAppend(&out, ",\"outcome\":\"", OutcomeName(op.outcome), "\"");
  if (op.outcome == Outcome::kOk && op.type == OpType::kRead) {
    absl::StrAppend(&out, ",\"found\":", op.found ? "true" : "false");
    if (op.found) {
      out.append(",\"result\":");
      AppendJsonString(op.result, &out);
    }
  }
  if (op.outcome == Outcome::kOk && op.type == OpType::kCas) {
    absl::StrAppend(&out, ",\"cas_succeeded\":", op.cas_succeeded ? "true" : "false");
  }
  out.push_back('}');
  return out;
}

}  // namespace keel::lincheck
