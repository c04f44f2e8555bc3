#!/usr/bin/env bash
# Checks the layering rules of STYLE.md: raft/ does no I/O and takes no locks; storage/
# never includes server/; server/ never includes client/; client/ (the library, its
# public headers and examples) uses proto/ only; tools/lincheck/ includes no layer.
# Exit 1 with the offending lines. Run by ctest (test `layer_boundaries`).
set -uo pipefail
cd "$(dirname "$0")/.."
status=0
check() {  # check <folder> <regex> <rule>
  local hits
  hits=$(grep -nE "$2" "$1"/*.h "$1"/*.cc 2>/dev/null)
  if [ -n "$hits" ]; then
    echo "layer rule broken: $3"
    echo "$hits"
    status=1
  fi
}
check raft '#include *[<"](grpc|grpcpp/|rocksdb/|thread>|mutex>|shared_mutex>|condition_variable>|chrono>|fstream>|filesystem>|random>|ctime>)' \
  "raft/ includes no gRPC, RocksDB, threads, locks, clocks, files or global RNG"
check raft '(std::rand|srand|std::random_device|fopen|::open\()' "raft/ calls no global RNG and opens no files"
check storage '#include *"server/' "storage/ never includes server/"
check server '#include *"client/' "server/ never includes client/"
check tools/lincheck '#include *"(server|storage|raft|client)/' \
  "tools/lincheck/ (the linearizability checker) depends on no keel layer, so anything may link it"
for dir in client client/include/keel client/examples; do
  check "$dir" '#include *"(raft|storage|server|common)/' "client/ includes proto/ only (not raft/, storage/, server/ or common/)"
done
[ $status -eq 0 ] && echo "layer boundaries OK"
exit $status
