// Asking every member of the cluster for its status, one endpoint at a time (all in
// parallel, each with its own deadline), for `keel endpoint status|health` and for
// explaining an unavailable cluster ("2 of 3 members unreachable (...)").
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "keel/client.h"
#include "tools/keel/context.h"

namespace keel::cli {

struct Probe {
  std::string endpoint;  // "host:port"
  absl::StatusOr<keel::StatusResponse> status;
  absl::Duration took;
};

// "http://host:port/" -> "host:port"; "host:port" stays.
[[nodiscard]] std::string NormalizeEndpoint(absl::string_view endpoint);

// The endpoints the user gave, in their order, then every other member the client
// knows of (it learns them from the member list), sorted; no duplicates. Without a
// client: the given endpoints only.
[[nodiscard]] std::vector<std::string> AllMemberEndpoints(const GlobalFlags& flags,
                                                          const keel::Client* client);

// Maintenance.Status on each endpoint at once; one attempt each, `timeout` each.
// Results in the order of `endpoints`.
[[nodiscard]] std::vector<Probe> ProbeStatus(keel::Client& client,
                                             const std::vector<std::string>& endpoints,
                                             absl::Duration timeout);

}  // namespace keel::cli
