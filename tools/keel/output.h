// Output building blocks of the keel CLI: the -w formats, etcdctl-style tables, and
// JSON in the shape etcdctl prints (Go's encoding/json of etcd's response structs), so
// scripts written against `etcdctl -w json` read keel's output unchanged.
// Pure functions of their input; no I/O.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "google/protobuf/message.h"

namespace keel::cli {

enum class OutputFormat { kSimple, kJson, kTable };

// "simple", "json" or "table"; anything else is kInvalidArgument naming the choices.
[[nodiscard]] absl::StatusOr<OutputFormat> ParseOutputFormat(absl::string_view name);

// A text table drawn like etcdctl's (olekukonko/tablewriter): +---+ borders, headers
// centred and upper-case, cells right-aligned.
class Table {
 public:
  explicit Table(std::vector<std::string> headers);
  void AddRow(std::vector<std::string> cells);  // Padded or cut to the header count.
  [[nodiscard]] std::string Render() const;

 private:
  std::vector<std::string> headers_;
  std::vector<std::vector<std::string>> rows_;
};

// A message as Go's encoding/json prints etcd's gogo-generated struct: fields in
// declaration order under their .proto names, zero values omitted (omitempty), 64-bit
// integers as JSON numbers, bytes as base64, enums as numbers, and a oneof as
// {"OneofName":{"FieldName":...}} in Go's CamelCase (e.g. txn responses print
// {"Response":{"ResponsePut":{...}}}).
[[nodiscard]] std::string GoJson(const google::protobuf::Message& message);

// `text` as a JSON string literal, escaped as Go does (also <, > and & as \u00XX).
[[nodiscard]] std::string JsonString(absl::string_view text);

// Bytes for a table cell or an error line: printable ASCII as is, everything else as
// \xHH (and \n, \t), so binary keys cannot break a table.
[[nodiscard]] std::string Printable(absl::string_view bytes);

// Sizes as etcdctl's humanize.Bytes prints them ("95 kB", "1.2 MB"; SI units).
[[nodiscard]] std::string HumanBytes(int64_t bytes);

// Durations as Go prints time.Duration ("4.8358ms", "1.5s", "350µs").
[[nodiscard]] std::string GoDuration(absl::Duration d);

// Member and cluster ids as etcdctl prints them in text: lower-case hex.
[[nodiscard]] std::string HexId(uint64_t id);

}  // namespace keel::cli
