#!/bin/sh
# keel-chaos without the right to make network namespaces (as nobody when we are root)
# must fail loudly: exit 2 and a FAILED line naming the cause, never a pass or a skip.
# Usage: fails_without_namespaces.sh <keel-chaos>
chaos=$1
if [ "$(id -u)" -eq 0 ]; then
  set -- setpriv --reuid=65534 --regid=65534 --clear-groups "$chaos"
else
  set -- "$chaos"
fi
out=$(cd /tmp && "$@" --time 5 --faults kill 2>&1)
rc=$?
echo "$out"
echo "exit=$rc"
[ "$rc" -eq 2 ] && echo "$out" | grep -q 'FAILED: cannot build the chaos network'
