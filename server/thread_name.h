// Names the calling thread (Linux: at most 15 characters shown), so that top -H,
// /proc/<pid>/task/*/comm and perf tell keeld's threads apart.
#pragma once

#include <pthread.h>

namespace keel::server {

inline void SetThreadName(const char* name) { pthread_setname_np(pthread_self(), name); }

}  // namespace keel::server
