#!/usr/bin/env bash
# Installs exactly the Debian 12 packages keel builds and tests with. Idempotent: safe
# to run again; apt-get does nothing for packages already installed.
set -euo pipefail

PACKAGES=(
  g++ cmake ninja-build pkg-config git clang-format
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler libcli11-dev
  librocksdb-dev libabsl-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  etcd-client
  iproute2 iptables  # keel-chaos: network namespaces and partitions (tests/chaos/)
  python3-etcd3 python3-grpcio python3-protobuf  # python client compatibility test
)

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

# --check: exit 0 when everything is installed, 1 otherwise (changes nothing).
if [ "${1:-}" = "--check" ]; then
  for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || exit 1
  done
  exit 0
fi

export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends "${PACKAGES[@]}"
