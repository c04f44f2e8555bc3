// Shared by the client integration tests: ClientOptions for a harness cluster.
#pragma once

#include "keel/client.h"
#include "tests/integration/cluster.h"

namespace keel::integration {

// Every member as an endpoint; short attempt timeouts so faults are noticed fast in
// tests (the harness's elections take ~0.5 s).
inline ClientOptions ClientOptionsFor(Cluster& c) {
  ClientOptions options;
  for (int i = 0; i < c.size(); ++i) options.endpoints.push_back(c.client_address(i));
  options.call_timeout = absl::Seconds(20);
  options.attempt_timeout = absl::Seconds(1);
  options.random_seed = 1;
  return options;
}

}  // namespace keel::integration
