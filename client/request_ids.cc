#include "client/request_ids.h"

namespace keel::client {

RequestId RequestIdPool::Acquire() {
  absl::MutexLock lock(&mu_);
  if (!idle_.empty()) {
    RequestId id = idle_.back();
    idle_.pop_back();
    return id;
  }
  ++created_;
  uint64_t client_id = 0;
  while (client_id == 0) client_id = random_();
  return RequestId{client_id, 1};
}

void RequestIdPool::Release(RequestId id) {
  absl::MutexLock lock(&mu_);
  idle_.push_back(RequestId{id.client_id, id.sequence + 1});
}

uint64_t RequestIdPool::sessions_created() {
  absl::MutexLock lock(&mu_);
  return created_;
}

}  // namespace keel::client
