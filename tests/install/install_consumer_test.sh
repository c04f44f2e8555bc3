#!/usr/bin/env bash
# Installs the built tree into a temp prefix, builds tests/install/consumer against
# it (find_package(keel), keel::client) and runs it.
#   install_consumer_test.sh <keel build dir> [compiler launcher]
set -euo pipefail
build_dir=$1
launcher=${2:-}
here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d /tmp/keel-install-test.XXXXXX)
trap 'rm -rf "$tmp"' EXIT

cmake --install "$build_dir" --prefix "$tmp/prefix" >"$tmp/install.log"
test -f "$tmp/prefix/include/keel/client.h"
test -f "$tmp/prefix/include/proto/etcdserverpb/rpc.pb.h"
test -f "$tmp/prefix/lib/cmake/keel/keelConfig.cmake"
# Only the public API: no private client headers, no server headers.
if find "$tmp/prefix/include" -name 'call.h' -o -name 'raft_node.h' | grep -q .; then
  echo "private headers were installed" >&2
  exit 1
fi

extra=()
[ -n "$launcher" ] && extra+=(-DCMAKE_CXX_COMPILER_LAUNCHER="$launcher")
cmake -S "$here/consumer" -B "$tmp/build" -G Ninja -DCMAKE_PREFIX_PATH="$tmp/prefix" \
  -DCMAKE_BUILD_TYPE=Release "${extra[@]}" >"$tmp/configure.log" || {
  cat "$tmp/configure.log"
  exit 1
}
cmake --build "$tmp/build" >"$tmp/build.log" || {
  cat "$tmp/build.log"
  exit 1
}
"$tmp/build/keel_consumer"
