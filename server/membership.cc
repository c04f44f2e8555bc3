#include "server/membership.h"

#include <algorithm>

#include "absl/strings/str_split.h"

namespace keel::server {
namespace {

// FNV-1a then a splitmix finaliser: stable across builds and platforms, unlike
// std::hash or absl::Hash, which is what ids persisted in data dirs need.
class StableHash {
 public:
  void Add(const std::string& s) {
    for (unsigned char c : s) h_ = (h_ ^ c) * 0x100000001b3ULL;
    h_ = (h_ ^ 0xff) * 0x100000001b3ULL;  // Separator: "ab","c" != "a","bc".
  }
  void Add(uint64_t v) {
    for (int i = 0; i < 8; ++i) h_ = (h_ ^ ((v >> (8 * i)) & 0xff)) * 0x100000001b3ULL;
  }
  uint64_t Finish() const {
    uint64_t z = h_;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    z ^= z >> 31;
    return z == 0 ? 1 : z;
  }

 private:
  uint64_t h_ = 0xcbf29ce484222325ULL;
};

}  // namespace

void MemberDirectory::SetClientUrls(uint64_t id, const std::string& client_urls) {
  std::vector<std::string> urls = absl::StrSplit(client_urls, ',', absl::SkipEmpty());
  std::lock_guard<std::mutex> lock(mu_);
  for (auto& m : members_) {
    if (m.id == id) m.client_urls = std::move(urls);
  }
}

std::vector<MemberInfo> MemberDirectory::List() const {
  std::lock_guard<std::mutex> lock(mu_);
  return members_;
}

uint64_t ComputeMemberId(const std::vector<std::string>& peer_urls,
                         const std::string& cluster_token) {
  std::vector<std::string> sorted = peer_urls;
  std::sort(sorted.begin(), sorted.end());
  StableHash h;
  for (const auto& url : sorted) h.Add(url);
  h.Add(cluster_token);
  return h.Finish();
}

uint64_t ComputeClusterId(std::vector<uint64_t> member_ids, const std::string& cluster_token) {
  std::sort(member_ids.begin(), member_ids.end());
  StableHash h;
  for (uint64_t id : member_ids) h.Add(id);
  h.Add(cluster_token);
  return h.Finish();
}

}  // namespace keel::server
