#!/usr/bin/python3
"""Debian's python3-etcd3 (0.12, unmodified) against a running keel cluster.

Usage: etcd3_compat.py HOST:PORT [HOST:PORT ...]   (the members' client addresses)
Run by tests/integration/python_etcd3_test.cc, which starts and stops the cluster.
Prints one line per check; exits non-zero (with the failing check) on any mismatch.
"""
import sys
import threading

import etcd3


def check(cond, what):
    if not cond:
        print("FAIL: " + what, flush=True)
        sys.exit(1)
    print("ok: " + what, flush=True)


def client(addr):
    host, port = addr.rsplit(":", 1)
    return etcd3.client(host=host, port=int(port), timeout=10)


def main():
    addrs = sys.argv[1:]
    c = client(addrs[0])

    # put / get / delete, prefixes
    c.put("py/a", "one")
    value, meta = c.get("py/a")
    check(value == b"one" and meta.key == b"py/a", "put then get")
    check(c.delete("py/a") and c.get("py/a")[0] is None, "delete")
    for i in range(5):
        c.put("py/p/%d" % i, str(i))
    got = sorted(v for v, _ in c.get_prefix("py/p/"))
    check(got == [b"0", b"1", b"2", b"3", b"4"], "get_prefix")
    c.delete_prefix("py/p/")
    check(list(c.get_prefix("py/p/")) == [], "delete_prefix")
    # Every member serves the same data (reads go through raft's read index).
    for addr in addrs[1:]:
        c.put("py/everywhere", addr)
        check(client(addr).get("py/everywhere")[0] == addr.encode(), "read on " + addr)

    # transactions
    c.put("py/t", "1")
    ok, _ = c.transaction(
        compare=[c.transactions.value("py/t") == "1"],
        success=[c.transactions.put("py/t", "2")],
        failure=[c.transactions.put("py/t", "never")])
    check(ok and c.get("py/t")[0] == b"2", "txn success branch")
    ok, responses = c.transaction(
        compare=[c.transactions.version("py/t") == 1],
        success=[c.transactions.delete("py/t")],
        failure=[c.transactions.get("py/t")])
    check(not ok and responses[0][0][0] == b"2", "txn failure branch with a get")
    check(c.put_if_not_exists("py/once", "x") and not c.put_if_not_exists("py/once", "y"),
          "put_if_not_exists")

    # watch: the events of puts made after the watch started arrive, in order
    start = c.put("py/w", "0").header.revision + 1
    events, cancel = c.watch("py/w", start_revision=start)
    seen = []
    done = threading.Event()

    def consume():
        for e in events:
            seen.append((type(e).__name__, e.value))
            if len(seen) == 3:
                break
        done.set()

    t = threading.Thread(target=consume, daemon=True)
    t.start()
    c.put("py/w", "1")
    c.put("py/w", "2")
    c.delete("py/w")
    check(done.wait(20), "watch events arrive")
    cancel()
    check(seen == [("PutEvent", b"1"), ("PutEvent", b"2"), ("DeleteEvent", b"")],
          "watch events in order: %r" % (seen,))
    prefix_events, prefix_cancel = c.watch_prefix("py/wp/", start_revision=c.put(
        "py/wp/0", "a").header.revision)
    first = next(prefix_events)
    prefix_cancel()
    check(first.key == b"py/wp/0" and first.value == b"a", "watch_prefix from a revision")

    # leases: grant, attach, time-to-live, revoke deletes the key
    lease = c.lease(60)
    check(lease.granted_ttl == 60 and 0 < lease.remaining_ttl <= 60, "lease grant / ttl")
    c.put("py/leased", "v", lease=lease)
    check(lease.keys == [b"py/leased"], "lease keys")
    lease.refresh()
    lease.revoke()
    check(c.get("py/leased")[0] is None, "lease revoke deletes its key")

    # members and maintenance
    members = list(c.members)
    check(len(members) == len(addrs), "members lists %d members" % len(addrs))
    check(all(m.name and m.peer_urls and m.client_urls for m in members), "member fields")
    # A member that is added, updated and removed again (never started: with 3 of 4
    # started the cluster keeps its quorum, which is etcd's condition for the add).
    added = c.add_member(["http://127.0.0.1:1"])
    check(added.id != 0 and list(added.peer_urls) == ["http://127.0.0.1:1"], "add_member")
    check(len(list(c.members)) == len(addrs) + 1, "the added member is listed")
    c.update_member(added.id, ["http://127.0.0.1:2"])
    updated = [m for m in c.members if m.id == added.id]
    check(len(updated) == 1 and list(updated[0].peer_urls) == ["http://127.0.0.1:2"],
          "update_member changes its peer URL")
    c.remove_member(added.id)
    check(sorted(m.id for m in c.members) == sorted(m.id for m in members),
          "remove_member leaves the original members")
    status = c.status()
    check(status.leader is not None and status.leader.id in [m.id for m in members],
          "status names a leader among the members")
    check(status.db_size > 0 and status.raft_index > 0, "status db size and raft index")
    check(isinstance(c.hash(), int), "hash")
    check(c.list_alarms() == [] or list(c.list_alarms()) == [], "no alarms")
    c.defragment()
    check(True, "defragment")
    print("all python3-etcd3 checks passed", flush=True)


if __name__ == "__main__":
    main()
