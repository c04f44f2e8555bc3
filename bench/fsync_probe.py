#!/usr/bin/env python3
"""How long a 4 KiB append + fdatasync takes when 1, 2 or 3 processes do it at once.

A 3-member cluster on one machine syncs three logs on one filesystem for every write:
the leader's and, ~50 us later (one loopback hop), each follower's. On ext4 those syncs
meet in the journal, so each takes longer than a sync alone. This measures it, to state
the disk part of the floor of a 1-client put (docs/PERFORMANCE.md).

    bench/fsync_probe.py --dir /tmp/probe --rounds 2000

Each round: every writer appends 4 KiB to its own file and fdatasyncs it; writers after
the first start `--stagger-us` later. Prints p50/p90 per writer.
"""
import argparse
import multiprocessing as mp
import os
import time


def writer(index, path, stagger_us, rounds, barrier, out):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_APPEND, 0o644)
    block = os.urandom(4096)
    latencies = []
    for _ in range(rounds):
        barrier.wait()  # Start of the round.
        if stagger_us:
            until = time.perf_counter() + stagger_us / 1e6
            while time.perf_counter() < until:  # Spin: a sleep is far coarser.
                pass
        start = time.perf_counter()
        os.write(fd, block)
        os.fdatasync(fd)
        latencies.append((time.perf_counter() - start) * 1e3)
        barrier.wait()  # Everyone synced: next round.
    os.close(fd)
    os.unlink(path)
    out.put((index, sorted(latencies)))


def measure(directory, writers, stagger_us, rounds):
    barrier = mp.Barrier(writers)
    out = mp.Queue()
    procs = [
        mp.Process(target=writer,
                   args=(i, os.path.join(directory, "probe-%d" % i), stagger_us if i else 0,
                         rounds, barrier, out))
        for i in range(writers)
    ]
    for p in procs:
        p.start()
    results = dict(out.get() for _ in procs)
    for p in procs:
        p.join()
    return [results[i] for i in range(writers)]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dir", required=True, help="directory on the filesystem to test")
    parser.add_argument("--rounds", type=int, default=2000)
    parser.add_argument("--stagger-us", type=int, default=50)
    parser.add_argument("--repeat", type=int, default=2, help="times to cycle 1, 2, 3 writers")
    args = parser.parse_args()
    os.makedirs(args.dir, exist_ok=True)
    for _ in range(args.repeat):
        for writers in (1, 2, 3):
            parts = []
            for i, lat in enumerate(measure(args.dir, writers, args.stagger_us, args.rounds)):
                who = "first" if i == 0 else "+%d us" % args.stagger_us
                parts.append("%s p50 %.3f p90 %.3f ms" % (who, lat[len(lat) // 2],
                                                          lat[int(len(lat) * 0.9)]))
            print("%d writer(s): %s" % (writers, "; ".join(parts)), flush=True)


if __name__ == "__main__":
    main()
