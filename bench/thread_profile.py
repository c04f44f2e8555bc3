#!/usr/bin/env python3
"""Where a keel cluster's CPU and context switches go, per thread, per request.

Starts a fresh 3-member keel cluster on 127.0.0.1 (as bench/compare.py does), runs one
keel-bench load against the leader, and over a window in the middle of the run reads
every server thread's CPU time and voluntary / involuntary context switches from
/proc/<pid>/task/*/{stat,status}. Prints, per member, the totals and each thread group
(threads of the same name, e.g. gRPC's `nexting_thread`s) divided by the requests
completed in the window. Optionally records a `perf record -e cpu-clock` profile of the
leader (or a follower) over the same window.

  bench/thread_profile.py                               # put, 256 clients
  bench/thread_profile.py --workload get-l --clients 256
  bench/thread_profile.py --perf-out /tmp/leader.data   # then: perf report -i ...

Not a test; stops every process it started. On a shared machine repeat it: one run is
noisy.
"""

import argparse
import collections
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import compare  # noqa: E402  (Cluster, load_keys)

HZ = os.sysconf("SC_CLK_TCK")


def snapshot(pid):
    """{tid: (name, cpu ticks, voluntary switches, involuntary switches)}"""
    out = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/stat") as f:
                stat = f.read()
            with open(f"/proc/{pid}/task/{tid}/status") as f:
                status = f.read()
        except FileNotFoundError:  # The thread ended.
            continue
        name = stat[stat.index("(") + 1:stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2:].split()
        switches = {}
        for line in status.splitlines():
            key, _, value = line.partition(":")
            if key in ("voluntary_ctxt_switches", "nonvoluntary_ctxt_switches"):
                switches[key] = int(value)
        out[tid] = (name, int(fields[11]) + int(fields[12]),
                    switches["voluntary_ctxt_switches"], switches["nonvoluntary_ctxt_switches"])
    return out


def by_group(before, after):
    groups = collections.defaultdict(lambda: [0, 0, 0])
    for tid, (name, cpu, vol, invol) in after.items():
        _, cpu0, vol0, invol0 = before.get(tid, (name, 0, 0, 0))
        g = groups[name.rstrip("0123456789")]
        g[0] += cpu - cpu0
        g[1] += vol - vol0
        g[2] += invol - invol0
    return groups


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--keeld", default=os.path.join(compare.REPO, "build/server/keeld"))
    ap.add_argument("--bench", default=os.path.join(compare.REPO, "build/bench/keel-bench"))
    ap.add_argument("--workload", choices=["put", "get-l", "get-s"], default="put")
    ap.add_argument("--clients", type=int, default=256)
    ap.add_argument("--duration", type=float, default=8, help="seconds of load")
    ap.add_argument("--window", type=float, default=4, help="seconds measured, mid-run")
    ap.add_argument("--perf-out", help="also perf-record one member into this file")
    ap.add_argument("--perf-member", choices=["leader", "follower"], default="leader",
                    help="which member --perf-out records")
    ap.add_argument("--workdir", default=None)
    opts = ap.parse_args()
    skip = (opts.duration - opts.window) / 2
    if skip < 0.5:
        ap.error("--duration must exceed --window by at least 1 s")

    cluster = compare.Cluster("keel", opts.keeld, opts.workdir)
    try:
        cluster.start()
        leader = cluster.leader()
        if opts.workload == "put":
            args = ["put", "--key-space", str(compare.PUT_KEYS)]
        else:
            compare.load_keys(opts.bench, cluster, compare.READ_KEYS)
            args = ["range", "--consistency", opts.workload[-1], "--key-space",
                    str(compare.READ_KEYS)]
        cmd = [opts.bench] + args + [
            "--clients", str(opts.clients), "--conns", str(min(opts.clients, 8)),
            "--endpoints", cluster.endpoints, "--target-leader",
            "--key-size", str(compare.KEY_SIZE), "--val-size", str(compare.VAL_SIZE),
            "--duration", str(opts.duration), "--warmup", "0", "-w", "json", "--no-progress"]
        bench = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
        time.sleep(skip)
        before = [snapshot(pid) for pid in cluster.pids]
        perf = None
        profiled = leader if opts.perf_member == "leader" else (leader + 1) % len(cluster.pids)
        if opts.perf_out:
            perf = subprocess.Popen(
                ["perf", "record", "-e", "cpu-clock", "-F", "1000", "--call-graph", "dwarf,16384",
                 "-o", opts.perf_out, "-p", str(cluster.pids[profiled]), "--",
                 "sleep", str(opts.window)],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(opts.window)
        after = [snapshot(pid) for pid in cluster.pids]
        out, _ = bench.communicate()
        if perf:
            perf.wait()
        if bench.returncode not in (0, 3):
            raise RuntimeError(f"keel-bench failed ({bench.returncode})")
        res = json.loads(out.strip().splitlines()[-1])
        # keel-bench reports totals only: the window's share of the run's requests.
        requests = res["ok"] * opts.window / res["elapsed_s"]
        print(f"{opts.workload}, {opts.clients} clients: {res['throughput_rps']:,.0f} req/s, "
              f"p50 {res['latency_ms']['p50']:.2f} ms, p99 {res['latency_ms']['p99']:.2f} ms; "
              f"per request over the {opts.window:g} s window (~{requests:,.0f} requests):")
        for i, pid in enumerate(cluster.pids):
            groups = by_group(before[i], after[i])
            total = [sum(g[j] for g in groups.values()) for j in range(3)]
            role = "leader" if i == leader else "follower"
            print(f"  {role} (pid {pid}): CPU {total[0] * 1e6 / HZ / requests:6.1f} µs, "
                  f"switches {total[1] / requests:.2f} voluntary + "
                  f"{total[2] / requests:.2f} involuntary")
            for name, (cpu, vol, invol) in sorted(groups.items(), key=lambda kv: -kv[1][0]):
                if cpu == 0 and vol < requests * 0.01:
                    continue
                print(f"    {name:18s} CPU {cpu * 1e6 / HZ / requests:6.1f} µs, "
                      f"switches {vol / requests:.2f} + {invol / requests:.2f}")
    finally:
        cluster.stop()


if __name__ == "__main__":
    main()
