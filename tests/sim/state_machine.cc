#include "tests/sim/state_machine.h"

#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace keel::sim {
namespace {

constexpr uint64_t kFnvOffset = 14695981039346656037ULL;
constexpr uint64_t kFnvPrime = 1099511628211ULL;

uint64_t Fnv(uint64_t h, absl::string_view bytes) {
  for (unsigned char c : bytes) {
    h ^= c;
    h *= kFnvPrime;
  }
  return h;
}

uint64_t FnvU64(uint64_t h, uint64_t v) {
  for (int i = 0; i < 8; ++i) {
    h ^= (v >> (8 * i)) & 0xff;
    h *= kFnvPrime;
  }
  return h;
}

}  // namespace

uint64_t EntryHash(const raftpb::Entry& entry) {
  uint64_t h = FnvU64(kFnvOffset, entry.term());
  h = FnvU64(h, static_cast<uint64_t>(entry.type()));
  return Fnv(h, entry.data());
}

uint64_t ChainHash(uint64_t previous, uint64_t index, uint64_t entry_hash) {
  return FnvU64(FnvU64(FnvU64(kFnvOffset, previous), index), entry_hash);
}

std::string StateMachine::Encode() const {
  return absl::StrCat("sm:", applied_index, ":", applied_term, ":", hash);
}

absl::StatusOr<StateMachine> StateMachine::Decode(absl::string_view data) {
  StateMachine sm;
  if (data.empty()) return sm;
  std::vector<absl::string_view> parts = absl::StrSplit(data, ':');
  if (parts.size() != 4 || parts[0] != "sm" || !absl::SimpleAtoi(parts[1], &sm.applied_index) ||
      !absl::SimpleAtoi(parts[2], &sm.applied_term) || !absl::SimpleAtoi(parts[3], &sm.hash)) {
    return absl::DataLossError(absl::StrCat("bad state machine snapshot: ", data));
  }
  return sm;
}

}  // namespace keel::sim
