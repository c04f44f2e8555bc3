#!/usr/bin/env bash
# A local 3-member keel cluster on 127.0.0.1, in the background, in one command.
#
#   tools/cluster.sh up       # install deps if missing, build, start 3 members, wait for a leader
#   tools/cluster.sh status   # which members run, and `keel endpoint status` for all of them
#   tools/cluster.sh down     # stop the members gracefully (data stays; `up` finds it again)
#
# Options (any command):
#   --dir DIR          data dirs, logs and pid files (default ./dev-cluster, or $KEEL_CLUSTER_DIR)
#   --build-dir DIR    where keeld and keel are built (default ./build, the `default` preset)
# up only:
#   --no-deps          do not check or install Debian packages
#   --no-build         do not build; use the binaries already in --build-dir
#   --ports A,B,C      client ports (default 2379,22379,32379: etcd's local-cluster habit)
#   --peer-ports A,B,C peer ports (default: each client port + 1)
# down only:
#   --purge            also delete DIR (every member's data)
#
# Exit codes: 0 done; 1 the cluster did not come up / is not (fully) up; 2 usage error.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
ME="cluster.sh"

die_usage() { echo "$ME: $*  (see tools/cluster.sh --help)" >&2; exit 2; }
fail() { echo "$ME: $*" >&2; exit 1; }
usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; }
abspath() { case "$1" in /*) echo "$1" ;; *) echo "$PWD/$1" ;; esac; }

[ $# -ge 1 ] || { usage; exit 2; }
CMD="$1"
shift
case "$CMD" in
  up | down | status) ;;
  -h | --help | help) usage; exit 0 ;;
  *) die_usage "unknown command '$CMD' (up, down or status)" ;;
esac

DIR="${KEEL_CLUSTER_DIR:-$ROOT/dev-cluster}"
BUILD="$ROOT/build"
BUILD_GIVEN=0
DEPS=1
DO_BUILD=1
PURGE=0
PORTS=""
PEER_PORTS=""
while [ $# -gt 0 ]; do
  case "$1" in
    --dir) [ $# -ge 2 ] || die_usage "--dir needs a value"; DIR="$(abspath "$2")"; shift ;;
    --build-dir) [ $# -ge 2 ] || die_usage "--build-dir needs a value"; BUILD="$(abspath "$2")"; BUILD_GIVEN=1; shift ;;
    --ports) [ $# -ge 2 ] || die_usage "--ports needs a value"; PORTS="$2"; shift ;;
    --peer-ports) [ $# -ge 2 ] || die_usage "--peer-ports needs a value"; PEER_PORTS="$2"; shift ;;
    --no-deps) DEPS=0 ;;
    --no-build) DO_BUILD=0 ;;
    --purge) PURGE=1 ;;
    -h | --help) usage; exit 0 ;;
    *) die_usage "unknown option '$1'" ;;
  esac
  shift
done

NAMES=(n1 n2 n3)

# The ports and build dir of the cluster in DIR, written by `up`, so that `status`,
# `down` and a later `up` need no options but --dir.
STATE="$DIR/cluster.env"
if [ -f "$STATE" ]; then
  saved_ports="$(sed -n 's/^PORTS=//p' "$STATE")"
  saved_peer_ports="$(sed -n 's/^PEER_PORTS=//p' "$STATE")"
  if [ "${PORTS:-$saved_ports}" != "$saved_ports" ] ||
     [ "${PEER_PORTS:-$saved_peer_ports}" != "$saved_peer_ports" ]; then
    die_usage "$DIR holds a cluster on ports $saved_ports (peers $saved_peer_ports); use those, another --dir, or 'down --purge' first"
  fi
  PORTS="$saved_ports"
  PEER_PORTS="$saved_peer_ports"
  [ $BUILD_GIVEN -eq 1 ] || BUILD="$(sed -n 's/^BUILD=//p' "$STATE")"
fi
PORTS="${PORTS:-2379,22379,32379}"
KEELD="$BUILD/server/keeld"
KEEL="$BUILD/tools/keel/keel"

# Pid of member $1 if it is running (a keeld with our data dir), else nothing. Checking
# the command line guards against a recycled pid; a zombie counts as stopped.
member_pid() {
  local f="$DIR/$1.pid" pid
  [ -f "$f" ] || return 0
  pid="$(cat "$f")"
  [ -r "/proc/$pid/cmdline" ] || return 0
  [ "$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)" != "Z" ] || return 0
  tr '\0' ' ' < "/proc/$pid/cmdline" | grep -qF -- "--data-dir $DIR/$1 " || return 0
  echo "$pid"
}

running_count() {
  local n=0 name
  for name in "${NAMES[@]}"; do [ -z "$(member_pid "$name")" ] || n=$((n + 1)); done
  echo "$n"
}

endpoints() {
  local IFS=,
  local out=() p
  for p in $PORTS; do out+=("127.0.0.1:$p"); done
  echo "${out[*]}"
}

# Asks the members for their status (one table row per member; unreachable ones say so).
show_endpoint_status() {
  if [ -x "$KEEL" ]; then
    "$KEEL" --endpoints "$ENDPOINTS" --command-timeout 2s endpoint status -w table || true
  elif command -v etcdctl >/dev/null; then
    ETCDCTL_API=3 etcdctl --endpoints "$ENDPOINTS" --command-timeout 2s endpoint status -w table || true
  fi
}

# True once the members agree on a leader.
has_leader() {
  if [ -x "$KEEL" ]; then
    "$KEEL" --endpoints "$ENDPOINTS" --command-timeout 1s endpoint health >/dev/null 2>&1
  elif command -v etcdctl >/dev/null; then
    ETCDCTL_API=3 etcdctl --endpoints "$ENDPOINTS" --command-timeout 1s \
      endpoint status 2>/dev/null | grep -q true
  else
    grep -q "serving as" "$DIR/n1.log" "$DIR/n2.log" "$DIR/n3.log"
  fi
}

stop_members() {
  local name pid pids=()
  for name in "${NAMES[@]}"; do
    pid="$(member_pid "$name")"
    [ -z "$pid" ] || { kill -TERM "$pid" 2>/dev/null || true; pids+=("$name"); }
  done
  # keeld hands over leadership and finishes requests on SIGTERM; give it 15 s.
  local deadline=$((SECONDS + 15))
  while [ "$(running_count)" -gt 0 ] && [ $SECONDS -lt $deadline ]; do sleep 0.1; done
  for name in "${pids[@]}"; do
    pid="$(member_pid "$name")"
    [ -z "$pid" ] || { echo "$ME: $name did not stop in 15 s; killing it" >&2; kill -KILL "$pid" 2>/dev/null || true; }
    rm -f "$DIR/$name.pid"
  done
}

cmd_up() {
  IFS=, read -r -a client_ports <<< "$PORTS"
  [ "${#client_ports[@]}" -eq 3 ] || die_usage "--ports needs three ports, e.g. 2379,22379,32379"
  local peer_ports=()
  if [ -n "$PEER_PORTS" ]; then
    IFS=, read -r -a peer_ports <<< "$PEER_PORTS"
    [ "${#peer_ports[@]}" -eq 3 ] || die_usage "--peer-ports needs three ports"
  else
    local p
    for p in "${client_ports[@]}"; do peer_ports+=($((p + 1))); done
  fi
  for p in "${client_ports[@]}" "${peer_ports[@]}"; do
    if ! [[ "$p" =~ ^[0-9]+$ ]] || [ "$p" -eq 0 ] || [ "$p" -gt 65535 ]; then
      die_usage "'$p' is not a port"
    fi
  done

  if [ "$(running_count)" -gt 0 ]; then
    echo "$ME: already up in $DIR (stop it with: tools/cluster.sh down)"
    ENDPOINTS="$(endpoints)"
    show_endpoint_status
    return 0
  fi

  if [ $DEPS -eq 1 ]; then
    "$ROOT/tools/install-deps.sh" --check || "$ROOT/tools/install-deps.sh"
  fi
  if [ $DO_BUILD -eq 1 ]; then
    echo "$ME: building keeld and keel (the first time takes several minutes)"
    if [ $BUILD_GIVEN -eq 1 ]; then
      cmake --build "$BUILD" --target keeld keel
    else
      (cd "$ROOT" && cmake --preset default >/dev/null &&
        cmake --build --preset default --target keeld keel)
    fi
  fi
  [ -x "$KEELD" ] || fail "no keeld at $KEELD (build it, or drop --no-build)"

  mkdir -p "$DIR"
  ENDPOINTS="$(endpoints)"
  cat > "$STATE" <<EOF
PORTS=$(IFS=,; echo "${client_ports[*]}")
PEER_PORTS=$(IFS=,; echo "${peer_ports[*]}")
BUILD=$BUILD
EOF
  local cluster="" i
  for i in 0 1 2; do
    cluster+="${cluster:+,}${NAMES[$i]}=http://127.0.0.1:${peer_ports[$i]}"
  done
  for i in 0 1 2; do
    local name="${NAMES[$i]}"
    # Own session and no terminal: the members outlive this script and its terminal.
    setsid "$KEELD" --name "$name" --data-dir "$DIR/$name" \
      --listen-client-urls "http://127.0.0.1:${client_ports[$i]}" \
      --listen-peer-urls "http://127.0.0.1:${peer_ports[$i]}" \
      --initial-cluster "$cluster" --initial-cluster-token keel-dev-cluster \
      < /dev/null >> "$DIR/$name.log" 2>&1 &
    echo $! > "$DIR/$name.pid"
  done

  # Up to 30 s for all three to serve and agree on a leader.
  local deadline=$((SECONDS + 30))
  until has_leader; do
    if [ "$(running_count)" -lt 3 ] || [ $SECONDS -ge $deadline ]; then
      echo "$ME: the cluster did not come up; the members' logs end with:" >&2
      for name in "${NAMES[@]}"; do
        echo "--- $DIR/$name.log" >&2
        tail -n 5 "$DIR/$name.log" >&2
      done
      stop_members
      exit 1
    fi
    sleep 0.1
  done

  # The keel binary as the user would type it from the repo root.
  local keel="$KEEL"
  case "$keel" in "$ROOT"/*) keel="${keel#"$ROOT"/}" ;; esac
  cat <<MSG
keel: 3 members up on 127.0.0.1 (data and logs in $DIR)
  endpoints: $ENDPOINTS
Try:
  export KEEL_ENDPOINTS=$ENDPOINTS
  $keel put greeting hello
  $keel get greeting
  $keel endpoint status -w table
Status: tools/cluster.sh status    Stop: tools/cluster.sh down
MSG
}

cmd_status() {
  [ -f "$STATE" ] || fail "no cluster in $DIR (start one with: tools/cluster.sh up)"
  ENDPOINTS="$(endpoints)"
  local name pid i=0 up=0
  IFS=, read -r -a client_ports <<< "$PORTS"
  for name in "${NAMES[@]}"; do
    pid="$(member_pid "$name")"
    if [ -n "$pid" ]; then
      echo "$name  running (pid $pid)  client 127.0.0.1:${client_ports[$i]}  log $DIR/$name.log"
      up=$((up + 1))
    else
      echo "$name  stopped             client 127.0.0.1:${client_ports[$i]}  log $DIR/$name.log"
    fi
    i=$((i + 1))
  done
  [ $up -eq 0 ] || show_endpoint_status
  [ $up -eq 3 ] || { echo "$ME: $up of 3 members running (start them: tools/cluster.sh up)" >&2; exit 1; }
}

cmd_down() {
  if [ -f "$STATE" ]; then
    local n
    n="$(running_count)"
    stop_members
    echo "$ME: stopped $n member(s) in $DIR"
  else
    echo "$ME: no cluster in $DIR"
  fi
  if [ $PURGE -eq 1 ] && [ -d "$DIR" ]; then
    rm -rf -- "$DIR"
    echo "$ME: deleted $DIR"
  fi
}

"cmd_$CMD"
