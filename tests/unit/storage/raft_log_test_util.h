// Helpers shared by the Raft log tests and the crash-test child: a scratch directory and
// entries whose content is a function of (index, term), so any entry read back can be
// checked without remembering what was written.
#pragma once

#include <stdlib.h>

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "proto/raft.pb.h"

namespace keel::storage::testing {

// A fresh directory under $TMPDIR (or /tmp), removed with everything in it on destruction.
class ScratchDir {
 public:
  ScratchDir() {
    const char* tmp = getenv("TMPDIR");
    std::string tmpl =
        std::string(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp") + "/keel-raft-log-XXXXXX";
    char* made = mkdtemp(tmpl.data());
    if (made == nullptr) abort();
    path_ = made;
  }
  ~ScratchDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;

  const std::string& path() const { return path_; }
  // A path inside the directory.
  std::string Sub(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

inline uint64_t SplitMix64(uint64_t* state) {
  uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

// The data of the entry at (index, term): 8..263 pseudo-random bytes.
inline std::string Payload(uint64_t index, uint64_t term) {
  uint64_t state = index * 0x100000001b3ULL ^ (term << 40) ^ 0x6b65656cULL;
  const size_t size = 8 + SplitMix64(&state) % 256;
  std::string out;
  out.reserve(size + 8);
  while (out.size() < size) {
    const uint64_t word = SplitMix64(&state);
    out.append(reinterpret_cast<const char*>(&word), sizeof(word));
  }
  out.resize(size);
  return out;
}

inline raftpb::Entry MakeEntry(uint64_t index, uint64_t term) {
  raftpb::Entry e;
  e.set_index(index);
  e.set_term(term);
  e.set_type(raftpb::ENTRY_NORMAL);
  e.set_data(Payload(index, term));
  return e;
}

// Entries [lo, hi] all of `term`.
inline std::vector<raftpb::Entry> MakeEntries(uint64_t lo, uint64_t hi, uint64_t term) {
  std::vector<raftpb::Entry> out;
  for (uint64_t i = lo; i <= hi; ++i) out.push_back(MakeEntry(i, term));
  return out;
}

// True if `e` is exactly what MakeEntry(e.index(), e.term()) produces.
inline bool IsGenuine(const raftpb::Entry& e) {
  return e.type() == raftpb::ENTRY_NORMAL && e.data() == Payload(e.index(), e.term());
}

}  // namespace keel::storage::testing
