// `keel lease grant|revoke|keep-alive|timetolive|list`: arguments and output. The text
// and JSON are etcdctl's (3.4), so scripts written for `etcdctl lease ...` read them
// unchanged: ids in 16-digit hex in text, decimal in JSON; in JSON the grant,
// keep-alive, list and time-to-live answers carry the header's fields at the top level
// (etcdctl prints its Go client's structs, which embed the header), revoke nests it.
#pragma once

#include <cstdint>
#include <iosfwd>
#include <string>

#include "absl/status/statusor.h"
#include "keel/client.h"
#include "tools/keel/output.h"

namespace keel::cli {

// A lease id as keel and etcdctl print it: hex, at most 16 digits ("694d77aa9e38260f").
[[nodiscard]] absl::StatusOr<int64_t> ParseLeaseId(const std::string& hex);
// "%016x".
[[nodiscard]] std::string LeaseIdHex(int64_t id);

void PrintLeaseGrant(const keel::LeaseGrantResponse& r, OutputFormat format, std::ostream& out);
void PrintLeaseRevoke(int64_t id, const keel::LeaseRevokeResponse& r, OutputFormat format,
                      std::ostream& out);
// One acknowledged keep-alive (TTL > 0).
void PrintLeaseKeepAlive(const keel::LeaseKeepAliveResponse& r, OutputFormat format,
                         std::ostream& out);
void PrintLeaseTimeToLive(const keel::LeaseTimeToLiveResponse& r, bool keys, OutputFormat format,
                          std::ostream& out);
void PrintLeaseList(const keel::LeaseLeasesResponse& r, OutputFormat format, std::ostream& out);

}  // namespace keel::cli
