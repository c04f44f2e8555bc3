// How a failed `keel` command ends: ONE line on stderr that says what happened and what
// to do, and an exit code from ExitCode (context.h).
//
// When the cluster is unavailable or a call timed out, every known member is asked for
// its status first, so the line can say why: "no leader: 2 of 3 members unreachable
// (127.0.0.1:22379, 127.0.0.1:32379); start them: 2 of 3 must run".
#pragma once

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "tools/keel/context.h"
#include "tools/keel/probe.h"

namespace keel::cli {

struct Failure {
  int exit_code = kExitFailed;
  std::string message;  // One line, without the "keel: " prefix.
};

// The exit code and line for `status`, given what the members said (`probes`: empty
// when no client could connect). Pure: unit-tested without a cluster.
[[nodiscard]] Failure ExplainFailure(const absl::Status& status, const GlobalFlags& flags,
                                     const std::vector<Probe>& probes);

// ExplainFailure after probing the members when the error is about reachability.
[[nodiscard]] Failure Explain(const absl::Status& status, Context& context);

// `text` on one line: newlines become "; ", at most ~300 characters, without the
// client library's own "keel: " prefix.
[[nodiscard]] std::string OneLine(absl::string_view text);

}  // namespace keel::cli
