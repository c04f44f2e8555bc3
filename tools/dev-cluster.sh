#!/usr/bin/env bash
# Starts a local 3-member keel cluster on 127.0.0.1 and keeps it in the foreground;
# Ctrl-C (or SIGTERM) stops all three gracefully. Data lives in $KEEL_DEV_DIR
# (default ./dev-cluster), so a restart finds the same cluster again.
#   tools/dev-cluster.sh [path/to/keeld]
# Members: n1 clients 127.0.0.1:2379 peers :2380; n2 :22379/:22380; n3 :32379/:32380
# (etcd's local-cluster convention, so etcd tooling finds it).
set -euo pipefail
cd "$(dirname "$0")/.."
KEELD="${1:-build/server/keeld}"
DIR="${KEEL_DEV_DIR:-dev-cluster}"
[ -x "$KEELD" ] || { echo "dev-cluster: no keeld at $KEELD (build it: cmake --build --preset default --target keeld)" >&2; exit 2; }
mkdir -p "$DIR"

CLUSTER="n1=http://127.0.0.1:2380,n2=http://127.0.0.1:22380,n3=http://127.0.0.1:32380"
PIDS=()
stop() {
  trap - INT TERM
  echo "dev-cluster: stopping"
  kill -TERM "${PIDS[@]}" 2>/dev/null || true
  wait "${PIDS[@]}" 2>/dev/null || true
}
trap stop INT TERM

i=0
for port in 2379 22379 32379; do
  i=$((i + 1))
  # Own session: a terminal's Ctrl-C reaches only this script, which then stops each
  # member once (a second signal would make keeld exit without its graceful stop).
  setsid "$KEELD" --name "n$i" --data-dir "$DIR/n$i" \
    --listen-client-urls "http://127.0.0.1:$port" \
    --listen-peer-urls "http://127.0.0.1:$((port + 1))" \
    --initial-cluster "$CLUSTER" --initial-cluster-token keel-dev-cluster \
    2> "$DIR/n$i.log" &
  PIDS+=($!)
done

ENDPOINTS=127.0.0.1:2379,127.0.0.1:22379,127.0.0.1:32379
# Wait (up to 30 s) until one member reports a leader.
for _ in $(seq 1 300); do
  for pid in "${PIDS[@]}"; do
    kill -0 "$pid" 2>/dev/null || { echo "dev-cluster: a member exited; see $DIR/n*.log" >&2; cat "$DIR"/n*.log >&2; stop; exit 1; }
  done
  if grep -q "serving as" "$DIR/n1.log" "$DIR/n2.log" "$DIR/n3.log" 2>/dev/null &&
     command -v etcdctl >/dev/null && ETCDCTL_API=3 etcdctl --endpoints="$ENDPOINTS" \
       --command-timeout=1s endpoint status 2>/dev/null | grep -q true; then
    break
  fi
  sleep 0.1
done

cat <<MSG
dev-cluster: 3 members up (logs in $DIR/n*.log). Try:
  export ETCDCTL_API=3 ENDPOINTS=$ENDPOINTS
  etcdctl --endpoints=\$ENDPOINTS put greeting hello
  etcdctl --endpoints=\$ENDPOINTS get greeting
  etcdctl --endpoints=\$ENDPOINTS endpoint status -w table
  etcdctl --endpoints=\$ENDPOINTS member list -w table
Ctrl-C stops the cluster.
MSG
wait "${PIDS[@]}"
