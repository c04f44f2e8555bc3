#include "tools/keel/probe.h"

#include <algorithm>
#include <condition_variable>
#include <mutex>

#include "absl/strings/match.h"
#include "absl/strings/strip.h"

namespace keel::cli {

std::string NormalizeEndpoint(absl::string_view endpoint) {
  absl::ConsumePrefix(&endpoint, "http://");
  while (absl::ConsumeSuffix(&endpoint, "/")) {
  }
  return std::string(endpoint);
}

std::vector<std::string> AllMemberEndpoints(const GlobalFlags& flags, const keel::Client* client) {
  std::vector<std::string> out;
  auto add = [&out](const std::string& endpoint) {
    if (std::find(out.begin(), out.end(), endpoint) == out.end()) out.push_back(endpoint);
  };
  for (const std::string& e : flags.endpoints) add(NormalizeEndpoint(e));
  if (client != nullptr) {
    std::vector<std::string> known = client->Endpoints();
    std::sort(known.begin(), known.end());
    for (const std::string& e : known) add(NormalizeEndpoint(e));
  }
  return out;
}

std::vector<Probe> ProbeStatus(keel::Client& client, const std::vector<std::string>& endpoints,
                               absl::Duration timeout) {
  std::vector<Probe> probes(endpoints.size());
  std::mutex mu;
  std::condition_variable done_cv;
  size_t pending = endpoints.size();
  keel::CallOptions options;
  options.timeout = timeout;
  for (size_t i = 0; i < endpoints.size(); ++i) {
    probes[i].endpoint = endpoints[i];
    probes[i].status = absl::UnknownError("not asked");
    const absl::Time start = absl::Now();
    client.StatusAsync(endpoints[i], options,
                       [&, i, start](absl::StatusOr<keel::StatusResponse> status) {
                         std::lock_guard<std::mutex> lock(mu);
                         probes[i].status = std::move(status);
                         probes[i].took = absl::Now() - start;
                         if (--pending == 0) done_cv.notify_all();
                       });
  }
  std::unique_lock<std::mutex> lock(mu);
  done_cv.wait(lock, [&] { return pending == 0; });
  return probes;
}

}  // namespace keel::cli
