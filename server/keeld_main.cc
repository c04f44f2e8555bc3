// keeld: one member of a keel cluster.
//   keeld --name n1 --initial-cluster n1=http://127.0.0.1:2380,... [flags]
// SIGTERM / SIGINT: graceful stop (leadership handed over, requests finished);
// a second signal exits at once.
#include <atomic>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>

#include "absl/synchronization/mutex.h"
#include "common/failpoint.h"
#include "grpc/support/log.h"
#include "server/keel_server.h"
#include "server/server_config.h"

namespace {

// gRPC's own log lines. Before keeld is up they are dropped: keeld reports what went wrong
// in one line of its own (e.g. "cannot listen on ..."). Once it serves, gRPC's errors go
// to stderr with a prefix. GRPC_VERBOSITY=DEBUG|INFO still shows everything.
std::atomic<bool> grpc_errors_visible{false};

void RouteGrpcLog(gpr_log_func_args* args) {
  if (!grpc_errors_visible.load() || args->severity != GPR_LOG_SEVERITY_ERROR) return;
  std::fprintf(stderr, "keeld: grpc: %s (%s:%d)\n", args->message, args->file, args->line);
}

}  // namespace

int main(int argc, char** argv) {
  // Debian's abseil is built without NDEBUG, so every absl::Mutex (gRPC's locks) keeps a
  // lock-order graph for deadlock detection: ~4% of the leader's CPU under load in a
  // perf profile. keel's own locks are std::mutex, so this drops only a debug aid.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  const char* verbosity = std::getenv("GRPC_VERBOSITY");
  if (verbosity == nullptr || std::string(verbosity) == "ERROR") {
    gpr_set_log_function(RouteGrpcLog);
  }
  auto config = keel::server::ParseServerConfig(argc, argv);
  if (!config.ok()) {
    if (absl::IsCancelled(config.status())) {  // --help / --version.
      std::printf("%s\n", std::string(config.status().message()).c_str());
      return 0;
    }
    std::fprintf(stderr, "keeld: %s\n", std::string(config.status().message()).c_str());
    return 2;
  }
  // Signals are taken synchronously by this thread; every thread created from here on
  // inherits the blocked mask.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  // Test builds: after the mask, so the settings watcher thread inherits it.
#if KEEL_FAILPOINTS_COMPILED
  for (const auto& bug : config->unsafe_bugs) {
    absl::Status status = keel::failpoint::EnableUnsafeBug(bug);
    if (!status.ok()) {
      std::fprintf(stderr, "keeld: --UNSAFE-bug: %s\n", std::string(status.message()).c_str());
      return 2;
    }
    std::fprintf(stderr, "keeld: UNSAFE bug '%s' is ON: this member gives wrong answers\n",
                 bug.c_str());
  }
  if (!config->failpoints_file.empty()) {
    absl::Status status = keel::failpoint::WatchSettingsFile(config->failpoints_file);
    if (!status.ok()) {
      std::fprintf(stderr, "keeld: %s\n", std::string(status.message()).c_str());
      return 2;
    }
  }
#endif

  auto server = keel::server::KeelServer::Start(*config);
  if (!server.ok()) {
    std::fprintf(stderr, "keeld: %s\n", std::string(server.status().message()).c_str());
    return 1;
  }
  std::fprintf(stderr, "keeld: serving as %s\n", (*server)->Describe().c_str());
  grpc_errors_visible = true;

  for (;;) {
    timespec wait{0, 200'000'000};
    const int sig = sigtimedwait(&signals, nullptr, &wait);
    if (sig == SIGTERM || sig == SIGINT) break;
    if ((*server)->removed()) {
      (*server)->Shutdown(absl::Seconds(1));
      std::fprintf(stderr, "keeld: stopped: this member was removed from the cluster\n");
      return 0;
    }
    absl::Status fatal = (*server)->fatal_error();
    if (!fatal.ok()) {
      std::fprintf(stderr, "keeld: stopping on a fatal error: %s\n",
                   std::string(fatal.message()).c_str());
      (*server)->Shutdown(absl::ZeroDuration());
      return 1;
    }
  }
  std::fprintf(stderr, "keeld: shutting down (signal again to exit at once)\n");
  std::thread second_signal([&signals] {
    int sig = 0;
    sigwait(&signals, &sig);
    std::fprintf(stderr, "keeld: second signal, exiting now\n");
    std::_Exit(130);
  });
  second_signal.detach();
  (*server)->Shutdown(absl::Seconds(2));
  std::fprintf(stderr, "keeld: stopped\n");
  return 0;
}
