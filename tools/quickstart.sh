#!/usr/bin/env bash
# From a fresh Debian 12 machine to a running local 3-member cluster in one command:
# installs the dependencies (and etcdctl to talk to it), builds keeld, starts the
# cluster in the foreground (tools/dev-cluster.sh). Ctrl-C stops it.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/install-deps.sh --check || tools/install-deps.sh
cmake --preset default >/dev/null
cmake --build --preset default --target keeld
exec tools/dev-cluster.sh build/server/keeld
