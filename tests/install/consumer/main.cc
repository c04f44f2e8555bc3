// Uses the installed keel client: builds a transaction, and connects — to the
// endpoints given as arguments (put and get a key), or, with none, to a closed port
// (expects a clear UNAVAILABLE). Prints "consumer OK" and exits 0 on success.
#include <cstdio>
#include <string>

#include "keel/client.h"

int main(int argc, char** argv) {
  keel::Txn txn;
  txn.If(keel::Compare::Value("k", keel::CompareOp::kEqual, "v")).Then(keel::Op::Put("k", "w"));
  absl::StatusOr<etcdserverpb::TxnRequest> request = txn.Build();
  if (!request.ok() || request->success_size() != 1 || keel::PrefixEnd("a") != "b") {
    std::fprintf(stderr, "consumer: txn builder broken\n");
    return 1;
  }
  keel::ClientOptions options;
  for (int i = 1; i < argc; ++i) options.endpoints.push_back(argv[i]);
  if (options.endpoints.empty()) {
    options.endpoints = {"127.0.0.1:1"};  // Nothing listens on port 1.
    options.connect_timeout = absl::Milliseconds(500);
    absl::StatusOr<std::unique_ptr<keel::Client>> client = keel::Client::Connect(options);
    if (client.ok() || client.status().code() != absl::StatusCode::kUnavailable) {
      std::fprintf(stderr, "consumer: expected UNAVAILABLE, got %s\n",
                   client.status().ToString().c_str());
      return 1;
    }
  } else {
    absl::StatusOr<std::unique_ptr<keel::Client>> client = keel::Client::Connect(options);
    if (!client.ok()) {
      std::fprintf(stderr, "consumer: %s\n", client.status().ToString().c_str());
      return 1;
    }
    if (!(*client)->Put("consumer", "hello").ok()) return 1;
    absl::StatusOr<keel::RangeResponse> got = (*client)->Get("consumer");
    if (!got.ok() || got->kvs_size() != 1 || got->kvs(0).value() != "hello") return 1;
  }
  std::printf("consumer OK\n");
  return 0;
}
