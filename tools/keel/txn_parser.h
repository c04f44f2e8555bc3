// etcdctl's txn language, parsed into a keel::Txn:
//
//   value("counter") = "41"        compares, one per line, ANDed:
//   mod("lock") < "100"              <target>("<key>") <op> "<value>"
//                                    target: value|val, version|ver, create|c, mod|m, lease
//   <blank line>                     op: = != < >  (numbers may go without quotes)
//   put counter 42                 success operations: put/get/del lines with the same
//   get counter                      arguments and flags as the commands themselves
//   <blank line>
//   get counter                    failure operations
//   <blank line or end of input>
//
// Keys and values are "Go-quoted" (\" \\ \n \t \xHH ...) or 'single-quoted' or bare words.
#pragma once

#include <iosfwd>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "keel/txn.h"

namespace keel::cli {

// Shell-like words: whitespace separates, quotes group (and are removed).
// kInvalidArgument for an unterminated quote or a bad escape.
[[nodiscard]] absl::StatusOr<std::vector<std::string>> SplitWords(absl::string_view line);

[[nodiscard]] absl::StatusOr<keel::Compare> ParseCompare(absl::string_view line);
[[nodiscard]] absl::StatusOr<keel::Op> ParseOp(absl::string_view line);

// Reads the three sections from `in`. With `prompts`, asks for each section there
// (interactive use); errors name the offending line.
[[nodiscard]] absl::StatusOr<keel::Txn> ReadTxn(std::istream& in, std::ostream* prompts);

}  // namespace keel::cli
