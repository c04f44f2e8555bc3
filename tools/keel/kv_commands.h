// `keel put|get|del`: their arguments, flags and output. The flag sets are shared
// with `keel txn`, whose success/failure lines are put/get/del commands too.
#pragma once

#include <cstdint>
#include <iosfwd>
#include <string>

#include "CLI/App.hpp"
#include "absl/status/statusor.h"
#include "keel/client.h"
#include "tools/keel/output.h"

namespace keel::cli {

struct GetArgs {
  std::string key;
  std::string range_end;
  bool prefix = false;
  bool from_key = false;
  int64_t limit = 0;
  int64_t rev = 0;
  std::string consistency = "l";
  std::string sort_by;
  std::string order;
  bool keys_only = false;
  bool count_only = false;
  bool print_value_only = false;
  int64_t min_mod_rev = 0, max_mod_rev = 0, min_create_rev = 0, max_create_rev = 0;
};

struct PutArgs {
  std::string key;
  std::string value;
  bool value_given = false;  // Else the value comes from stdin.
  std::string lease = "0";   // Hex, as etcdctl prints lease ids.
  bool prev_kv = false;
  bool ignore_value = false;
  bool ignore_lease = false;
};

struct DelArgs {
  std::string key;
  std::string range_end;
  bool prefix = false;
  bool from_key = false;
  bool prev_kv = false;
};

// Positionals and flags of each command on `cmd` (a subcommand already created).
void AddGetFlags(CLI::App* cmd, GetArgs* args);
void AddPutFlags(CLI::App* cmd, PutArgs* args);
void AddDelFlags(CLI::App* cmd, DelArgs* args);

// The key to send: the key itself, or "\0" for "" (with --prefix / --from-key: every key).
[[nodiscard]] std::string RequestKey(const std::string& key);

// The client options the flags select (kInvalidArgument for contradictions such as
// --prefix with a range_end, or an unknown --sort-by).
[[nodiscard]] absl::StatusOr<keel::RangeOptions> ToRangeOptions(const GetArgs& args);
[[nodiscard]] absl::StatusOr<keel::PutOptions> ToPutOptions(const PutArgs& args);
[[nodiscard]] absl::StatusOr<keel::DeleteOptions> ToDeleteOptions(const DelArgs& args);

// Output in each format. Simple is etcdctl's (key, value lines; "OK"; deleted count).
void PrintRange(const keel::RangeResponse& r, const GetArgs& args, OutputFormat format,
                std::ostream& out);
void PrintPut(const keel::PutResponse& r, OutputFormat format, std::ostream& out);
void PrintDelete(const keel::DeleteResponse& r, OutputFormat format, std::ostream& out);

}  // namespace keel::cli
