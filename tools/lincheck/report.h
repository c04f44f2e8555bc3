// How keel-lincheck prints a CheckResult: a text report (first line VALID, INVALID key=<k> or
// UNKNOWN key=<k>), a JSON summary, and a text timeline of a counterexample's window.
#pragma once

#include <string>
#include <vector>

#include "tools/lincheck/checker.h"

namespace keel::lincheck {

struct ReportOptions {
  bool timeline = false;     // Render the counterexample's window as a timeline.
  int timeline_width = 100;  // Columns of the time axis.
};

// First line: "VALID", "INVALID key=<k>" (the first invalid key) or "UNKNOWN key=<k>" (the first
// key whose search timed out); then, for INVALID, the counterexample (and the timeline if asked).
// Keys are printed as JSON strings when they are not plain printable ASCII.
[[nodiscard]] std::string FormatText(const CheckResult& result, const ReportOptions& options);

// One JSON object: verdict, counts, per-key results and, for an invalid key, the window's ops.
[[nodiscard]] std::string FormatJson(const CheckResult& result);

// One line per operation: `id=7 p=2 cas "v3" -> "v7" succeeded`.
[[nodiscard]] std::string DescribeOperation(const Operation& op);

// A timeline of `ops` (numbered 1.. in the given order): one row per process (more when an
// unknown op overlaps the process's later ops), each op a bar [n----] over its interval, an
// unknown op running to the right edge (>); then a legend line per op.
[[nodiscard]] std::string RenderTimeline(const std::vector<Operation>& ops, int width);

}  // namespace keel::lincheck
