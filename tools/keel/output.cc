#include "tools/keel/output.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "google/protobuf/descriptor.h"

namespace keel::cli {

absl::StatusOr<OutputFormat> ParseOutputFormat(absl::string_view name) {
  if (name == "simple") return OutputFormat::kSimple;
  if (name == "json") return OutputFormat::kJson;
  if (name == "table") return OutputFormat::kTable;
  return absl::InvalidArgumentError(
      absl::StrCat("unknown output format '", name, "' (use simple, json or table)"));
}

Table::Table(std::vector<std::string> headers) : headers_(std::move(headers)) {}

void Table::AddRow(std::vector<std::string> cells) {
  cells.resize(headers_.size());
  rows_.push_back(std::move(cells));
}

std::string Table::Render() const {
  std::vector<size_t> width(headers_.size());
  for (size_t c = 0; c < headers_.size(); ++c) {
    width[c] = headers_[c].size();
    for (const auto& row : rows_) width[c] = std::max(width[c], row[c].size());
  }
  std::string border = "+";
  for (size_t w : width) absl::StrAppend(&border, std::string(w + 2, '-'), "+");
  border += "\n";

  std::string out = border + "|";
  for (size_t c = 0; c < headers_.size(); ++c) {
    const size_t gap = width[c] - headers_[c].size();
    absl::StrAppend(&out, std::string(gap / 2 + 1, ' '), absl::AsciiStrToUpper(headers_[c]),
                    std::string(gap - gap / 2 + 1, ' '), "|");
  }
  absl::StrAppend(&out, "\n", border);
  for (const auto& row : rows_) {
    out += "|";
    for (size_t c = 0; c < row.size(); ++c) {
      absl::StrAppend(&out, std::string(width[c] - row[c].size() + 1, ' '), row[c], " |");
    }
    out += "\n";
  }
  return out + border;
}

namespace {

namespace pb = google::protobuf;

// Go's name for a generated struct field: snake_case to CamelCase.
std::string GoName(const std::string& proto_name) {
  std::string out;
  bool upper = true;
  for (char c : proto_name) {
    if (c == '_') {
      upper = true;
      continue;
    }
    out += upper ? absl::ascii_toupper(c) : c;
    upper = false;
  }
  return out;
}

void AppendMessage(const pb::Message& message, std::string* out);

void AppendValue(const pb::Message& message, const pb::FieldDescriptor* field, int index,
                 std::string* out) {
  const pb::Reflection* r = message.GetReflection();
  const bool repeated = field->is_repeated();
  using FD = pb::FieldDescriptor;
  switch (field->cpp_type()) {
    case FD::CPPTYPE_INT32:
      absl::StrAppend(
          out, repeated ? r->GetRepeatedInt32(message, field, index) : r->GetInt32(message, field));
      break;
    case FD::CPPTYPE_INT64:
      absl::StrAppend(
          out, repeated ? r->GetRepeatedInt64(message, field, index) : r->GetInt64(message, field));
      break;
    case FD::CPPTYPE_UINT32:
      absl::StrAppend(out, repeated ? r->GetRepeatedUInt32(message, field, index)
                                    : r->GetUInt32(message, field));
      break;
    case FD::CPPTYPE_UINT64:
      absl::StrAppend(out, repeated ? r->GetRepeatedUInt64(message, field, index)
                                    : r->GetUInt64(message, field));
      break;
    case FD::CPPTYPE_DOUBLE:
      absl::StrAppend(out, repeated ? r->GetRepeatedDouble(message, field, index)
                                    : r->GetDouble(message, field));
      break;
    case FD::CPPTYPE_FLOAT:
      absl::StrAppend(
          out, repeated ? r->GetRepeatedFloat(message, field, index) : r->GetFloat(message, field));
      break;
    case FD::CPPTYPE_BOOL: {
      const bool v =
          repeated ? r->GetRepeatedBool(message, field, index) : r->GetBool(message, field);
      *out += v ? "true" : "false";
      break;
    }
    case FD::CPPTYPE_ENUM:
      absl::StrAppend(out, repeated ? r->GetRepeatedEnumValue(message, field, index)
                                    : r->GetEnumValue(message, field));
      break;
    case FD::CPPTYPE_STRING: {
      std::string scratch;
      const std::string& v = repeated
                                 ? r->GetRepeatedStringReference(message, field, index, &scratch)
                                 : r->GetStringReference(message, field, &scratch);
      *out += field->type() == FD::TYPE_BYTES ? absl::StrCat("\"", absl::Base64Escape(v), "\"")
                                              : JsonString(v);
      break;
    }
    case FD::CPPTYPE_MESSAGE:
      AppendMessage(
          repeated ? r->GetRepeatedMessage(message, field, index) : r->GetMessage(message, field),
          out);
      break;
  }
}

void AppendMessage(const pb::Message& message, std::string* out) {
  std::vector<const pb::FieldDescriptor*> fields;
  // Set fields only, in field-number order: proto3 zero values are not "set", which is
  // exactly Go's omitempty.
  message.GetReflection()->ListFields(message, &fields);
  *out += "{";
  bool first = true;
  for (const pb::FieldDescriptor* field : fields) {
    if (!first) *out += ",";
    first = false;
    const pb::OneofDescriptor* oneof = field->real_containing_oneof();
    if (oneof != nullptr) {
      absl::StrAppend(out, JsonString(GoName(oneof->name())), ":{",
                      JsonString(GoName(field->name())), ":");
    } else {
      absl::StrAppend(out, JsonString(field->name()), ":");
    }
    if (field->is_repeated()) {
      *out += "[";
      const int n = message.GetReflection()->FieldSize(message, field);
      for (int i = 0; i < n; ++i) {
        if (i > 0) *out += ",";
        AppendValue(message, field, i, out);
      }
      *out += "]";
    } else {
      AppendValue(message, field, 0, out);
    }
    if (oneof != nullptr) *out += "}";
  }
  *out += "}";
}

}  // namespace

std::string GoJson(const google::protobuf::Message& message) {
  std::string out;
  AppendMessage(message, &out);
  return out;
}

std::string JsonString(absl::string_view text) {
  std::string out = "\"";
  for (unsigned char c : text) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      case '<':
      case '>':
      case '&':
        absl::StrAppendFormat(&out, "\\u%04x", c);
        break;
      default:
        if (c < 0x20) {
          absl::StrAppendFormat(&out, "\\u%04x", c);
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  return out + "\"";
}

std::string Printable(absl::string_view bytes) {
  std::string out;
  for (unsigned char c : bytes) {
    if (c == '\n') {
      out += "\\n";
    } else if (c == '\t') {
      out += "\\t";
    } else if (c == '\\') {
      out += "\\\\";
    } else if (c < 0x20 || c >= 0x7f) {
      absl::StrAppendFormat(&out, "\\x%02x", c);
    } else {
      out += static_cast<char>(c);
    }
  }
  return out;
}

std::string HumanBytes(int64_t bytes) {
  if (bytes < 10) return absl::StrCat(bytes, " B");
  static constexpr const char* kUnits[] = {"B", "kB", "MB", "GB", "TB", "PB", "EB"};
  const double size = static_cast<double>(bytes);
  const int e = std::min(6, static_cast<int>(std::floor(std::log(size) / std::log(1000.0))));
  const double value = std::floor(size / std::pow(1000.0, e) * 10 + 0.5) / 10;
  return value < 10 ? absl::StrFormat("%.1f %s", value, kUnits[e])
                    : absl::StrFormat("%.0f %s", value, kUnits[e]);
}

std::string GoDuration(absl::Duration d) {
  if (d == absl::ZeroDuration()) return "0s";
  const std::string sign = d < absl::ZeroDuration() ? "-" : "";
  d = absl::AbsDuration(d);
  // Trims trailing zeros (and a trailing dot) of a fixed-point number.
  auto trim = [](std::string s) {
    if (s.find('.') == std::string::npos) return s;
    while (s.back() == '0') s.pop_back();
    if (s.back() == '.') s.pop_back();
    return s;
  };
  const int64_t ns = absl::ToInt64Nanoseconds(d);
  if (ns < 1000) return absl::StrCat(sign, ns, "ns");
  if (ns < 1'000'000) return sign + trim(absl::StrFormat("%.3f", ns / 1e3)) + "µs";
  if (ns < 1'000'000'000) return sign + trim(absl::StrFormat("%.6f", ns / 1e6)) + "ms";
  const int64_t hours = ns / 3'600'000'000'000;
  const int64_t minutes = ns / 60'000'000'000 % 60;
  const std::string seconds =
      trim(absl::StrFormat("%.9f", static_cast<double>(ns % 60'000'000'000) / 1e9)) + "s";
  if (hours > 0) return absl::StrCat(sign, hours, "h", minutes, "m", seconds);
  if (minutes > 0) return absl::StrCat(sign, minutes, "m", seconds);
  return sign + seconds;
}

std::string HexId(uint64_t id) { return absl::StrFormat("%x", id); }

}  // namespace keel::cli
