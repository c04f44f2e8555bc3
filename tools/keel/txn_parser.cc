#include "tools/keel/txn_parser.h"

#include <istream>
#include <ostream>

#include "CLI/App.hpp"
#include "CLI/Config.hpp"  // CLI11 is header-only: every TU that makes an App needs these.
#include "CLI/Formatter.hpp"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "common/status_macros.h"
#include "tools/keel/kv_commands.h"

namespace keel::cli {
namespace {

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  c = absl::ascii_tolower(c);
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

// Appends code point `cp` as UTF-8.
void AppendUtf8(uint32_t cp, std::string* out) {
  if (cp < 0x80) {
    *out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    *out += static_cast<char>(0xc0 | (cp >> 6));
    *out += static_cast<char>(0x80 | (cp & 0x3f));
  } else if (cp < 0x10000) {
    *out += static_cast<char>(0xe0 | (cp >> 12));
    *out += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
    *out += static_cast<char>(0x80 | (cp & 0x3f));
  } else {
    *out += static_cast<char>(0xf0 | (cp >> 18));
    *out += static_cast<char>(0x80 | ((cp >> 12) & 0x3f));
    *out += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
    *out += static_cast<char>(0x80 | (cp & 0x3f));
  }
}

// A double-quoted string at the front of `*in` (which starts with '"'), Go escapes
// decoded; consumes it.
absl::StatusOr<std::string> ConsumeQuoted(absl::string_view* in) {
  std::string out;
  size_t i = 1;
  while (i < in->size() && (*in)[i] != '"') {
    char c = (*in)[i++];
    if (c != '\\') {
      out += c;
      continue;
    }
    if (i >= in->size()) break;
    c = (*in)[i++];
    switch (c) {
      case 'n':
        out += '\n';
        break;
      case 't':
        out += '\t';
        break;
      case 'r':
        out += '\r';
        break;
      case 'a':
        out += '\a';
        break;
      case 'b':
        out += '\b';
        break;
      case 'f':
        out += '\f';
        break;
      case 'v':
        out += '\v';
        break;
      case '\\':
      case '"':
      case '\'':
        out += c;
        break;
      case 'x':
      case 'u':
      case 'U': {
        const size_t digits = c == 'x' ? 2 : c == 'u' ? 4 : 8;
        uint32_t value = 0;
        for (size_t d = 0; d < digits; ++d) {
          const int h = i < in->size() ? HexValue((*in)[i]) : -1;
          if (h < 0)
            return absl::InvalidArgumentError(absl::StrCat("bad \\", std::string(1, c), " escape"));
          value = value * 16 + h;
          ++i;
        }
        if (c == 'x') {
          out += static_cast<char>(value);
        } else {
          AppendUtf8(value, &out);
        }
        break;
      }
      default:
        return absl::InvalidArgumentError(absl::StrCat("unknown escape \\", std::string(1, c)));
    }
  }
  if (i >= in->size()) return absl::InvalidArgumentError("unterminated \"quoted string\"");
  in->remove_prefix(i + 1);
  return out;
}

void SkipSpaces(absl::string_view* in) {
  while (!in->empty() && absl::ascii_isspace(in->front())) in->remove_prefix(1);
}

// One word at the front of `*in`: quoted parts and bare characters up to whitespace.
absl::StatusOr<std::string> ConsumeWord(absl::string_view* in) {
  std::string word;
  while (!in->empty() && !absl::ascii_isspace(in->front())) {
    if (in->front() == '"') {
      ASSIGN_OR_RETURN(std::string part, ConsumeQuoted(in));
      word += part;
    } else if (in->front() == '\'') {
      const size_t end = in->find('\'', 1);
      if (end == absl::string_view::npos) {
        return absl::InvalidArgumentError("unterminated 'quoted string'");
      }
      absl::StrAppend(&word, in->substr(1, end - 1));
      in->remove_prefix(end + 1);
    } else {
      word += in->front();
      in->remove_prefix(1);
    }
  }
  return word;
}

absl::Status Malformed(absl::string_view what, absl::string_view line, absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat("malformed ", what, " '", line, "': ", why));
}

}  // namespace

absl::StatusOr<std::vector<std::string>> SplitWords(absl::string_view line) {
  std::vector<std::string> words;
  SkipSpaces(&line);
  while (!line.empty()) {
    ASSIGN_OR_RETURN(std::string word, ConsumeWord(&line));
    words.push_back(std::move(word));
    SkipSpaces(&line);
  }
  return words;
}

absl::StatusOr<keel::Compare> ParseCompare(absl::string_view line) {
  constexpr absl::string_view kForm = R"(expected <target>("<key>") <op> "<value>")";
  absl::string_view rest = line;
  const size_t paren = rest.find('(');
  if (paren == absl::string_view::npos) return Malformed("compare", line, kForm);
  const std::string target(absl::StripAsciiWhitespace(rest.substr(0, paren)));
  rest.remove_prefix(paren + 1);
  SkipSpaces(&rest);
  if (rest.empty() || rest.front() != '"') return Malformed("compare", line, kForm);
  absl::StatusOr<std::string> key = ConsumeQuoted(&rest);
  if (!key.ok()) return Malformed("compare", line, key.status().message());
  SkipSpaces(&rest);
  if (rest.empty() || rest.front() != ')') return Malformed("compare", line, kForm);
  rest.remove_prefix(1);
  SkipSpaces(&rest);
  keel::CompareOp op;
  if (absl::ConsumePrefix(&rest, "!=")) {
    op = keel::CompareOp::kNotEqual;
  } else if (absl::ConsumePrefix(&rest, "=")) {
    op = keel::CompareOp::kEqual;
  } else if (absl::ConsumePrefix(&rest, "<")) {
    op = keel::CompareOp::kLess;
  } else if (absl::ConsumePrefix(&rest, ">")) {
    op = keel::CompareOp::kGreater;
  } else {
    return Malformed("compare", line, "the operator is one of = != < >");
  }
  SkipSpaces(&rest);
  absl::StatusOr<std::string> value = ConsumeWord(&rest);
  if (!value.ok()) return Malformed("compare", line, value.status().message());
  SkipSpaces(&rest);
  if (!rest.empty()) return Malformed("compare", line, "unexpected text after the value");

  if (target == "value" || target == "val") return keel::Compare::Value(*key, op, *value);
  int64_t number = 0;
  if (!absl::SimpleAtoi(*value, &number)) {
    return Malformed("compare", line, absl::StrCat(target, " compares with a number"));
  }
  if (target == "version" || target == "ver") return keel::Compare::Version(*key, op, number);
  if (target == "create" || target == "c") return keel::Compare::CreateRevision(*key, op, number);
  if (target == "mod" || target == "m") return keel::Compare::ModRevision(*key, op, number);
  if (target == "lease") return keel::Compare::Lease(*key, op, number);
  return Malformed(
      "compare", line,
      absl::StrCat("unknown target '", target, "' (value, version, create, mod or lease)"));
}

absl::StatusOr<keel::Op> ParseOp(absl::string_view line) {
  absl::StatusOr<std::vector<std::string>> words = SplitWords(line);
  if (!words.ok()) return Malformed("operation", line, words.status().message());
  if (words->empty()) return Malformed("operation", line, "empty");
  // The same flag sets as the put/get/del commands, on a throwaway app.
  CLI::App app;
  GetArgs get_args;
  PutArgs put_args;
  DelArgs del_args;
  CLI::App* get = app.add_subcommand("get");
  CLI::App* put = app.add_subcommand("put");
  CLI::App* del = app.add_subcommand("del");
  AddGetFlags(get, &get_args);
  AddPutFlags(put, &put_args);
  AddDelFlags(del, &del_args);
  app.require_subcommand(1, 1);
  std::vector<std::string> reversed(words->rbegin(), words->rend());  // CLI11 wants it so.
  try {
    app.parse(reversed);
  } catch (const CLI::ParseError& e) {
    return Malformed("operation", line,
                     absl::StrCat(e.what(), " (an operation is a put, get or del command)"));
  }
  if (get->parsed()) {
    ASSIGN_OR_RETURN(keel::RangeOptions options, ToRangeOptions(get_args));
    return keel::Op::Get(RequestKey(get_args.key), options);
  }
  if (put->parsed()) {
    ASSIGN_OR_RETURN(keel::PutOptions options, ToPutOptions(put_args));
    if (!put_args.value_given && !put_args.ignore_value) {
      return Malformed("operation", line, "put needs a key and a value");
    }
    return keel::Op::Put(put_args.key, put_args.value, options);
  }
  ASSIGN_OR_RETURN(keel::DeleteOptions options, ToDeleteOptions(del_args));
  return keel::Op::Delete(RequestKey(del_args.key), options);
}

absl::StatusOr<keel::Txn> ReadTxn(std::istream& in, std::ostream* prompts) {
  // Lines until a blank one or the end of the input.
  auto section = [&in, prompts](const char* prompt) {
    if (prompts != nullptr) *prompts << prompt << "\n" << std::flush;
    std::vector<std::string> lines;
    std::string line;
    while (std::getline(in, line)) {
      if (absl::StripAsciiWhitespace(line).empty()) break;
      lines.push_back(line);
    }
    return lines;
  };
  keel::Txn txn;
  for (const std::string& line : section("compares:")) {
    ASSIGN_OR_RETURN(keel::Compare compare, ParseCompare(line));
    txn.AddCompare(compare);
  }
  for (bool success : {true, false}) {
    for (const std::string& line : section(success ? "success requests (get, put, del):"
                                                   : "failure requests (get, put, del):")) {
      ASSIGN_OR_RETURN(keel::Op op, ParseOp(line));
      if (!op.status().ok()) return op.status();
      txn.AddOp(op, success);
    }
  }
  return txn;
}

}  // namespace keel::cli
