#!/usr/bin/env python3
"""keel vs etcd, side by side, with the same load generator (keel-bench).

Starts a 3-member etcd cluster (Debian's etcd, default settings and durability, data in
a temp dir) and a 3-member keel cluster on 127.0.0.1, one after the other, runs the same
keel-bench matrix against each, and prints one table with both systems and the
keel/etcd ratio per row. Every row is the median of --runs runs, each run on fresh
clusters (the order keel/etcd alternates between runs so drift hits both). Besides
throughput and latency it reports the servers' CPU time per request (utime+stime of
the three server processes over the measured window, from /proc): on a shared machine
the throughput moves with everyone else's load, the CPU per request much less.

The last run also loads 1,000,000 keys into each system and reports the servers' RSS
and on-disk size. --write-doc puts the table, the machine (cores, fsync latency,
loopback round trip) and the versions into docs/PERFORMANCE.md between the markers
<!-- compare:begin --> and <!-- compare:end -->.

  bench/compare.py                      # full matrix, 3 runs, about 35 minutes
  bench/compare.py --runs 1 --duration 5 --rows 'put|get-l-256' --no-rss   # quick look

Needs: a built keeld and keel-bench (default build/), etcd (Debian etcd-server),
etcdctl (etcd-client), python3. Not a test; stops every process it started.
"""

import argparse
import datetime
import json
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
KEY_SIZE = 16
VAL_SIZE = 256
PUT_KEYS = 100_000   # Key space of the put and txn rows (random keys).
READ_KEYS = 10_000   # Keys loaded before the read rows.
RSS_KEYS = 1_000_000

# (name, description, keel-bench arguments). Every row targets the leader unless it
# says otherwise; conns = min(clients, 8).
MATRIX = [
    ("put-1", "put, 1 client", ["put", "--clients", "1", "--key-space", str(PUT_KEYS)]),
    ("put-16", "put, 16 clients", ["put", "--clients", "16", "--key-space", str(PUT_KEYS)]),
    ("put-64", "put, 64 clients", ["put", "--clients", "64", "--key-space", str(PUT_KEYS)]),
    ("put-256", "put, 256 clients", ["put", "--clients", "256", "--key-space", str(PUT_KEYS)]),
    ("put-256-all", "put, 256 clients over all members",
     ["put", "--clients", "256", "--key-space", str(PUT_KEYS), "--all-members"]),
    ("get-l-16", "linearizable get, 16 clients",
     ["range", "--consistency", "l", "--clients", "16", "--key-space", str(READ_KEYS)]),
    ("get-l-256", "linearizable get, 256 clients",
     ["range", "--consistency", "l", "--clients", "256", "--key-space", str(READ_KEYS)]),
    ("get-s-16", "serializable get, 16 clients",
     ["range", "--consistency", "s", "--clients", "16", "--key-space", str(READ_KEYS)]),
    ("get-s-256", "serializable get, 256 clients",
     ["range", "--consistency", "s", "--clients", "256", "--key-space", str(READ_KEYS)]),
    ("txn-64", "txn compare-and-put, 64 clients",
     ["txn", "--clients", "64", "--key-space", str(PUT_KEYS)]),
    ("mixed-256", "90/10 get/put mix, 256 clients",
     ["mixed", "--read-ratio", "0.9", "--clients", "256", "--key-space", str(READ_KEYS)]),
    # Watch: the same puts to one key without and with 1,000 watchers of it (spread over
    # every member, 10 connections); the watch row also reports delivery latency.
    ("put-32-1key", "put, 32 clients, one key",
     ["put", "--clients", "32", "--key-space", "1"]),
    ("watch-1000", "put, 32 clients, one key, 1,000 watchers of it",
     ["watch", "--watchers", "1000", "--watch-conns", "10", "--clients", "32", "--key-space", "1"]),
]


def log(msg):
    print(f"[compare {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Cluster:
    """Three server processes of one system on fresh temp dirs and free ports."""

    def __init__(self, system, binary, root):
        self.system = system
        self.binary = binary
        self.root = tempfile.mkdtemp(prefix=f"{system}-", dir=root)
        self.procs = []
        self.client_ports = [free_port() for _ in range(3)]
        self.peer_ports = [free_port() for _ in range(3)]
        self.data_dirs = [os.path.join(self.root, f"m{i}") for i in range(3)]

    @property
    def endpoints(self):
        return ",".join(f"127.0.0.1:{p}" for p in self.client_ports)

    @property
    def pids(self):
        return [p.pid for p in self.procs]

    def start(self, timeout_s=60):
        names = [f"m{i}" for i in range(3)]
        initial = ",".join(f"{n}=http://127.0.0.1:{p}" for n, p in zip(names, self.peer_ports))
        for i in range(3):
            args = [self.binary, "--name", names[i], "--data-dir", self.data_dirs[i],
                    "--listen-client-urls", f"http://127.0.0.1:{self.client_ports[i]}",
                    "--listen-peer-urls", f"http://127.0.0.1:{self.peer_ports[i]}",
                    "--initial-cluster", initial, "--initial-cluster-token", f"bench-{self.system}",
                    "--initial-cluster-state", "new"]
            if self.system == "etcd":
                args += ["--advertise-client-urls", f"http://127.0.0.1:{self.client_ports[i]}",
                         "--initial-advertise-peer-urls", f"http://127.0.0.1:{self.peer_ports[i]}"]
            out = open(os.path.join(self.root, f"m{i}.log"), "wb")
            self.procs.append(subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT,
                                               stdin=subprocess.DEVNULL, start_new_session=True))
        deadline = time.time() + timeout_s
        while time.time() < deadline:
            for i, p in enumerate(self.procs):
                if p.poll() is not None:
                    raise RuntimeError(f"{self.system} member {i} exited ({p.returncode}); "
                                       f"log: {os.path.join(self.root, f'm{i}.log')}")
            if self.leader() is not None:
                return
            time.sleep(0.2)
        raise RuntimeError(f"{self.system}: no leader within {timeout_s} s")

    def leader(self):
        """The index of the member that leads, as every member says; None if not agreed."""
        r = subprocess.run(["etcdctl", "--endpoints", self.endpoints, "--command-timeout=2s",
                            "endpoint", "status", "-w", "json"],
                           env=dict(os.environ, ETCDCTL_API="3"), capture_output=True, text=True)
        if r.returncode != 0:
            return None
        try:
            status = json.loads(r.stdout)
        except json.JSONDecodeError:
            return None
        # etcdctl leaves zero fields out of its JSON.
        leaders = {s["Status"].get("leader", 0) for s in status}
        ids = [s["Status"].get("header", {}).get("member_id", 0) for s in status]
        if len(status) != 3 or len(leaders) != 1 or 0 in leaders:
            return None
        leader = leaders.pop()
        return ids.index(leader) if leader in ids else None

    def rss_mib(self):
        out = []
        for pid in self.pids:
            with open(f"/proc/{pid}/status") as f:
                m = re.search(r"^VmRSS:\s+(\d+) kB", f.read(), re.M)
                out.append(int(m.group(1)) / 1024 if m else float("nan"))
        return out

    def disk_mib(self):
        out = []
        for d in self.data_dirs:
            total = 0
            for dirpath, _, files in os.walk(d):
                for name in files:
                    try:
                        total += os.lstat(os.path.join(dirpath, name)).st_blocks * 512
                    except FileNotFoundError:
                        pass
            out.append(total / (1 << 20))
        return out

    def stop(self):
        for p in self.procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in self.procs:
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        self.procs = []
        shutil.rmtree(self.root, ignore_errors=True)


def run_bench(bench, cluster, row_args, duration, warmup, extra=None):
    args = list(row_args)
    all_members = "--all-members" in args
    if all_members:
        args.remove("--all-members")
    clients = int(args[args.index("--clients") + 1])
    cmd = [bench] + args + [
        "--endpoints", cluster.endpoints, "--conns", str(min(clients, 8)),
        "--key-size", str(KEY_SIZE), "--val-size", str(VAL_SIZE), "-w", "json", "--no-progress",
        "--server-pids", ",".join(str(p) for p in cluster.pids)]
    if not all_members:
        cmd.append("--target-leader")
    if duration:
        cmd += ["--duration", str(duration), "--warmup", str(warmup)]
    cmd += extra or []
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode not in (0, 3):  # 3: some requests failed (reported, not fatal).
        raise RuntimeError(f"keel-bench failed ({r.returncode}): {' '.join(cmd)}\n{r.stderr}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def load_keys(bench, cluster, n):
    res = run_bench(bench, cluster, ["put", "--clients", "256", "--key-space", str(n),
                                     "--sequential-keys"], 0, 0, ["--total", str(n)])
    if res["ok"] != n:
        raise RuntimeError(f"loading {n} keys into {cluster.system}: only {res['ok']} succeeded")
    return res


def run_system(system, binary, bench, rows, opts, measure_rss):
    cluster = Cluster(system, binary, opts.workdir)
    results = {}
    try:
        cluster.start()
        loaded = False
        for name, _, row_args in rows:
            if row_args[0] in ("range", "mixed") and not loaded:
                load_keys(bench, cluster, READ_KEYS)
                loaded = True
            res = run_bench(bench, cluster, row_args, opts.duration, opts.warmup)
            results[name] = res
            log(f"{system:4} {name:12} {res['throughput_rps']:9.0f} req/s  "
                f"p50 {res['latency_ms']['p50']:7.2f} ms  p99 {res['latency_ms']['p99']:7.2f} ms  "
                f"cpu {res['server_cpu_us_per_op']:6.1f} us/req  errors {res['errors']}")
        if measure_rss:
            log(f"{system}: loading {RSS_KEYS} keys for the memory row")
            t0 = time.time()
            load_keys(bench, cluster, RSS_KEYS)
            load_s = time.time() - t0
            time.sleep(5)  # Let background flushes settle before reading RSS.
            results["rss"] = {"rss_mib": cluster.rss_mib(), "disk_mib": cluster.disk_mib(),
                              "load_s": load_s}
            log(f"{system}: RSS MiB {['%.0f' % x for x in results['rss']['rss_mib']]}, "
                f"disk MiB {['%.0f' % x for x in results['rss']['disk_mib']]}, "
                f"load {load_s:.0f} s")
    finally:
        cluster.stop()
    return results


def fsync_probe(directory, n=200):
    """4 KiB append + fdatasync, n times: the disk's sync latency (ms p50, p99).

    On this shared VM the figure moves between ~0.3 and ~4 ms with what the other users'
    I/O is doing, and keeld's own WAL fdatasync traced under load (strace -T) was often
    faster than this probe; read it as the disk's state at the time, not as a floor."""
    path = os.path.join(directory, "fsync-probe")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    block = os.urandom(4096)
    lat = []
    try:
        for _ in range(n):
            t = time.perf_counter()
            os.write(fd, block)
            os.fdatasync(fd)
            lat.append((time.perf_counter() - t) * 1e3)
    finally:
        os.close(fd)
        os.unlink(path)
    lat.sort()
    return lat[len(lat) // 2], lat[int(len(lat) * 0.99) - 1]


def loopback_rtt_ms(n=2000):
    """TCP round trip of one byte on 127.0.0.1 (Python on both ends: an upper bound)."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)

    def echo():
        conn, _ = srv.accept()
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        while True:
            b = conn.recv(1)
            if not b:
                break
            conn.sendall(b)
        conn.close()

    t = threading.Thread(target=echo)
    t.start()
    c = socket.create_connection(srv.getsockname())
    c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    lat = []
    for _ in range(n):
        s = time.perf_counter()
        c.sendall(b"x")
        c.recv(1)
        lat.append((time.perf_counter() - s) * 1e3)
    c.close()
    t.join()
    srv.close()
    lat.sort()
    return lat[len(lat) // 2]


def machine_info(workdir):
    cores = os.cpu_count()
    model = ""
    with open("/proc/cpuinfo") as f:
        m = re.search(r"^model name\s*:\s*(.*)$", f.read(), re.M)
        model = m.group(1) if m else platform.processor()
    with open("/proc/meminfo") as f:
        mem_gib = int(re.search(r"MemTotal:\s+(\d+)", f.read()).group(1)) / (1 << 20)
    f50, f99 = fsync_probe(workdir)
    return {"cores": cores, "model": model, "mem_gib": mem_gib, "fsync_p50_ms": f50,
            "fsync_p99_ms": f99, "rtt_ms": loopback_rtt_ms()}


def versions(keeld, etcd):
    etcd_v = subprocess.run([etcd, "--version"], capture_output=True, text=True).stdout
    m = re.search(r"etcd Version: (\S+)", etcd_v)
    git = subprocess.run(["git", "-C", REPO, "describe", "--always", "--dirty"],
                         capture_output=True, text=True).stdout.strip()
    return {"etcd": m.group(1) if m else etcd_v.strip(), "keel": git}


def median(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def summarize(runs, rows):
    """{system: {row: {metric: median}}} over the runs."""
    out = {}
    for system in ("keel", "etcd"):
        out[system] = {}
        for name, _, _ in rows:
            rs = [r[system][name] for r in runs if system in r and name in r[system]]
            if not rs:
                continue
            out[system][name] = {
                "rps": median([r["throughput_rps"] for r in rs]),
                "p50": median([r["latency_ms"]["p50"] for r in rs]),
                "p99": median([r["latency_ms"]["p99"] for r in rs]),
                "cpu": median([r["server_cpu_us_per_op"] if r["server_cpu_us_per_op"] >= 0
                               else None for r in rs]),
                "errors": sum(sum(r["errors"].values()) for r in rs),
                "n": len(rs),
            }
            watched = [r["watch"] for r in rs if "watch" in r]
            if watched:
                out[system][name].update({
                    "dp50": median([w["delivery_ms"]["p50"] for w in watched]),
                    "dp99": median([w["delivery_ms"]["p99"] for w in watched]),
                    "dmax": median([w["delivery_ms"]["max"] for w in watched]),
                    "missed": sum(w["wrong_count"] + w["order_violations"] for w in watched),
                })
        rss = [r[system]["rss"] for r in runs if system in r and "rss" in r[system]]
        if rss:
            out[system]["rss"] = rss[-1]
    return out


def fmt(v, spec):
    return "—" if v is None else format(v, spec)


def ratio(a, b):
    return None if a is None or b in (None, 0) else a / b


def table(summary, rows):
    k, e = summary.get("keel", {}), summary.get("etcd", {})
    lines = [
        "| row | keel req/s | etcd req/s | keel/etcd | keel p50 ms | etcd p50 ms | keel p99 ms "
        "| etcd p99 ms | keel CPU µs/req | etcd CPU µs/req | etcd/keel CPU |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for name, desc, _ in rows:
        kr, er = k.get(name, {}), e.get(name, {})
        errs = kr.get("errors", 0) + er.get("errors", 0)
        note = f" ({kr.get('errors', 0)}/{er.get('errors', 0)} errors)" if errs else ""
        lines.append(
            f"| {desc}{note} | {fmt(kr.get('rps'), ',.0f')} | {fmt(er.get('rps'), ',.0f')} | "
            f"{fmt(ratio(kr.get('rps'), er.get('rps')), '.2f')} | {fmt(kr.get('p50'), '.2f')} | "
            f"{fmt(er.get('p50'), '.2f')} | {fmt(kr.get('p99'), '.2f')} | "
            f"{fmt(er.get('p99'), '.2f')} | {fmt(kr.get('cpu'), '.0f')} | "
            f"{fmt(er.get('cpu'), '.0f')} | {fmt(ratio(er.get('cpu'), kr.get('cpu')), '.2f')} |")
    watch_rows = [(n, d) for n, d, _ in rows if "dp50" in k.get(n, {}) or "dp50" in e.get(n, {})]
    if watch_rows:
        lines.append("")
        lines.append("| watch delivery (put sent -> event received) | keel p50 ms | etcd p50 ms "
                     "| keel p99 ms | etcd p99 ms | keel max ms | etcd max ms "
                     "| watchers that missed or repeated an event (keel / etcd) |")
        lines.append("|---|---:|---:|---:|---:|---:|---:|---:|")
        for name, desc in watch_rows:
            kr, er = k.get(name, {}), e.get(name, {})
            lines.append(
                f"| {desc} | {fmt(kr.get('dp50'), '.2f')} | {fmt(er.get('dp50'), '.2f')} | "
                f"{fmt(kr.get('dp99'), '.2f')} | {fmt(er.get('dp99'), '.2f')} | "
                f"{fmt(kr.get('dmax'), '.1f')} | {fmt(er.get('dmax'), '.1f')} | "
                f"{kr.get('missed', '—')} / {er.get('missed', '—')} |")
    if "rss" in k or "rss" in e:
        def mem(s, key):
            return "—" if "rss" not in s else " / ".join(f"{x:.0f}" for x in s["rss"][key])
        lines.append("")
        lines.append(f"| after loading {RSS_KEYS:,} keys ({KEY_SIZE} B keys, {VAL_SIZE} B values) "
                     "| keel | etcd |")
        lines.append("|---|---|---|")
        lines.append(f"| RSS per member, MiB | {mem(k, 'rss_mib')} | {mem(e, 'rss_mib')} |")
        lines.append(f"| on-disk size per member, MiB | {mem(k, 'disk_mib')} | "
                     f"{mem(e, 'disk_mib')} |")
        lines.append(f"| load time, s (256 clients) | "
                     f"{fmt(k.get('rss', {}).get('load_s'), '.0f')} | "
                     f"{fmt(e.get('rss', {}).get('load_s'), '.0f')} |")
    return "\n".join(lines)


def write_doc(path, text):
    begin, end = "<!-- compare:begin -->", "<!-- compare:end -->"
    with open(path) as f:
        doc = f.read()
    block = f"{begin}\n{text}\n{end}"
    if begin in doc and end in doc:
        doc = doc[:doc.index(begin)] + block + doc[doc.index(end) + len(end):]
    else:
        doc = doc.rstrip("\n") + "\n\n## keel vs etcd: the side by side (bench/compare.py)\n\n" \
            + block + "\n"
    with open(path, "w") as f:
        f.write(doc)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=3, help="runs per row, each on fresh clusters")
    ap.add_argument("--duration", type=float, default=10, help="seconds per row (incl. warmup)")
    ap.add_argument("--warmup", type=float, default=1)
    ap.add_argument("--rows", default="", help="regex of row names to run (default: all)")
    ap.add_argument("--systems", default="keel,etcd")
    ap.add_argument("--no-rss", action="store_true", help="skip the 1M-key memory row")
    ap.add_argument("--keeld", default=os.path.join(REPO, "build/server/keeld"))
    ap.add_argument("--bench", default=os.path.join(REPO, "build/bench/keel-bench"))
    ap.add_argument("--etcd", default=shutil.which("etcd") or "/usr/bin/etcd")
    ap.add_argument("--workdir", default=tempfile.gettempdir(), help="where data dirs go")
    ap.add_argument("--write-doc", nargs="?", const=os.path.join(REPO, "docs/PERFORMANCE.md"),
                    help="write the result into this file (default docs/PERFORMANCE.md)")
    ap.add_argument("--json-out", help="also save every run's raw keel-bench JSON here")
    opts = ap.parse_args()

    systems = [s for s in opts.systems.split(",") if s]
    binaries = {"keel": opts.keeld, "etcd": opts.etcd}
    for s in systems:
        if s not in binaries:
            sys.exit(f"compare: unknown system '{s}' (keel, etcd)")
        if not os.access(binaries[s], os.X_OK):
            hint = "apt-get install etcd-server" if s == "etcd" else "cmake --build build"
            sys.exit(f"compare: no {s} binary at {binaries[s]} ({hint})")
    if not os.access(opts.bench, os.X_OK):
        sys.exit(f"compare: no keel-bench at {opts.bench} (cmake --build build --target keel-bench)")
    if not shutil.which("etcdctl"):
        sys.exit("compare: etcdctl not found (apt-get install etcd-client)")
    rows = [r for r in MATRIX if re.search(opts.rows, r[0])] if opts.rows else MATRIX
    if not rows:
        sys.exit(f"compare: no row matches '{opts.rows}'")

    started = datetime.datetime.now(datetime.timezone.utc)
    machine = machine_info(opts.workdir)
    load_before = os.getloadavg()
    log(f"machine: {machine}")
    runs = []
    for run in range(opts.runs):
        order = systems if run % 2 == 0 else list(reversed(systems))
        result = {}
        for s in order:
            log(f"run {run + 1}/{opts.runs}: {s}")
            result[s] = run_system(s, binaries[s], opts.bench, rows, opts,
                                   measure_rss=not opts.no_rss and run == opts.runs - 1)
        runs.append(result)
    load_after = os.getloadavg()
    summary = summarize(runs, rows)
    if opts.json_out:
        with open(opts.json_out, "w") as f:
            json.dump({"runs": runs, "machine": machine}, f, indent=1)

    vers = versions(opts.keeld, opts.etcd)
    cmd = "bench/compare.py " + " ".join(sys.argv[1:])
    text = "\n".join([
        f"Run {started:%Y-%m-%d %H:%M} UTC: `{cmd}`; keel {vers['keel']}, etcd {vers['etcd']}; "
        f"{machine['cores']} cores ({machine['model']}), {machine['mem_gib']:.0f} GiB; "
        f"4 KiB append+fdatasync p50/p99 {machine['fsync_p50_ms']:.2f}/"
        f"{machine['fsync_p99_ms']:.2f} ms (probe); loopback TCP round trip "
        f"{machine['rtt_ms'] * 1000:.0f} µs (Python echo); load average "
        f"{load_before[0]:.1f} before, {load_after[0]:.1f} after. Each row: median of "
        f"{opts.runs} run(s) of {opts.duration:g} s ({opts.warmup:g} s warmup not counted), "
        f"fresh clusters per run, {KEY_SIZE} B keys, {VAL_SIZE} B values, conns = "
        f"min(clients, 8), requests to the leader unless the row says otherwise. CPU µs/req: "
        f"utime+stime of the three server processes over the counted window / requests.",
        "",
        table(summary, rows),
    ])
    print(text)
    if opts.write_doc:
        write_doc(opts.write_doc, text)
        log(f"wrote {opts.write_doc}")


if __name__ == "__main__":
    main()
