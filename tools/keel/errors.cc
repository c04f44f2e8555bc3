#include "tools/keel/errors.h"

#include <algorithm>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/strip.h"

namespace keel::cli {
namespace {

// What to do about the errors etcd clients know by their text (ETCD_API_NOTES.md).
constexpr std::pair<const char*, const char*> kHints[] = {
    {"required revision has been compacted",
     "read at a newer --rev (keel get <key> -w json shows the current revision)"},
    {"required revision is a future revision", "--rev is newer than the cluster's revision"},
    {"too many requests", "the cluster is overloaded; retry later"},
    {"database space exceeded", "free space: keel compaction <revision>"},
    {"request is too large", "the limit is keeld's --max-request-bytes"},
    {"too many operations in txn request", "the limit is keeld's --max-txn-ops"},
    {"duplicate key given in txn request", "a txn branch may write each key once"},
    {"key is not provided", "give a non-empty key"},
};

std::string WithHint(std::string message) {
  for (const auto& [text, hint] : kHints) {
    if (absl::StrContains(message, text)) return absl::StrCat(message, ": ", hint);
  }
  return message;
}

// "a, b, c" with at most three names, then "…".
std::string ShortList(const std::vector<std::string>& names) {
  if (names.size() <= 3) return absl::StrJoin(names, ", ");
  return absl::StrCat(absl::StrJoin(names.begin(), names.begin() + 3, ", "), ", …");
}

Failure ExplainUnreachable(const absl::Status& status, const GlobalFlags& flags,
                           const std::vector<Probe>& probes) {
  const std::string message = OneLine(status.message());
  if (probes.empty()) {
    // Connect() failed: no member answered within --dial-timeout. (The client's own
    // message names its internal state, e.g. open circuit breakers; the user needs
    // the endpoints and the deadline.)
    return {kExitUnavailable,
            absl::StrCat("cannot reach any member at ", ShortList(flags.endpoints), " within ",
                         absl::FormatDuration(flags.dial_timeout),
                         " (--dial-timeout); is the cluster up? Check --endpoints or "
                         "KEEL_ENDPOINTS")};
  }
  std::vector<std::string> down;
  uint64_t leader_id = 0;
  for (const Probe& p : probes) {
    if (!p.status.ok()) {
      down.push_back(p.endpoint);
    } else if (p.status->leader() != 0) {
      leader_id = p.status->leader();
    }
  }
  const size_t n = probes.size();
  const size_t quorum = n / 2 + 1;
  const size_t reachable = n - down.size();
  if (reachable < quorum) {
    return {kExitUnavailable,
            absl::StrCat("no leader: ", down.size(), " of ", n, " members unreachable (",
                         ShortList(down), "); start them: ", quorum, " of ", n, " must run")};
  }
  if (leader_id == 0) {
    return {kExitUnavailable,
            absl::StrCat("no leader: none of the ", reachable, " reachable members has one (",
                         message, "); an election may be under way: retry in a moment")};
  }
  std::string leader = absl::StrCat("member ", absl::Hex(leader_id));
  for (const Probe& p : probes) {
    if (p.status.ok() && p.status->header().member_id() == leader_id) leader = p.endpoint;
  }
  const std::string unreachable =
      down.empty() ? "" : absl::StrCat("; unreachable: ", ShortList(down));
  if (status.code() == absl::StatusCode::kDeadlineExceeded) {
    return {kExitTimeout,
            absl::StrCat("timed out after ", absl::FormatDuration(flags.command_timeout),
                         " (--command-timeout): ", message, unreachable, "; the leader is ", leader,
                         ": retry, or raise --command-timeout")};
  }
  return {kExitUnavailable,
          absl::StrCat(message, unreachable, "; the leader is now ", leader, ": retry")};
}

}  // namespace

std::string OneLine(absl::string_view text) {
  // keel::Client starts its own messages with "keel: "; the CLI adds its prefix once.
  absl::ConsumePrefix(&text, "keel: ");
  std::string line = absl::StrReplaceAll(text, {{"\r\n", "; "}, {"\n", "; "}, {"\r", " "}});
  constexpr size_t kMax = 300;
  if (line.size() > kMax) line = line.substr(0, kMax) + "…";
  return line;
}

Failure ExplainFailure(const absl::Status& status, const GlobalFlags& flags,
                       const std::vector<Probe>& probes) {
  switch (status.code()) {
    case absl::StatusCode::kInvalidArgument:
      return {kExitUsage, WithHint(OneLine(status.message()))};
    case absl::StatusCode::kUnavailable:
    case absl::StatusCode::kDeadlineExceeded:
      return ExplainUnreachable(status, flags, probes);
    default:
      return {kExitFailed, WithHint(OneLine(status.message()))};
  }
}

Failure Explain(const absl::Status& status, Context& context) {
  std::vector<Probe> probes;
  keel::Client* client = context.connected_client();
  const bool about_reachability = status.code() == absl::StatusCode::kUnavailable ||
                                  status.code() == absl::StatusCode::kDeadlineExceeded;
  if (about_reachability && client != nullptr) {
    probes = ProbeStatus(*client, AllMemberEndpoints(context.flags(), client),
                         std::min(context.flags().dial_timeout, absl::Seconds(2)));
  }
  return ExplainFailure(status, context.flags(), probes);
}

}  // namespace keel::cli
