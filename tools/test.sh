#!/usr/bin/env bash
# The test command: installs missing dependencies, configures, builds (warnings are
# errors) and runs every test except those labelled `long`.
#   tools/test.sh                 # the whole suite, as CI runs it
#   tools/test.sh -R raft         # extra arguments go to ctest
set -euo pipefail
cd "$(dirname "$0")/.."

tools/install-deps.sh --check || tools/install-deps.sh

cmake --preset default >/dev/null
cmake --build --preset default
ctest --preset default --timeout 900 "$@"
