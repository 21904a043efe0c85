"""Benchmarks of the kit on loopback: latency and throughput, and restart time.

Run:  python bench/bench_bank.py            (about a minute; starts its own cluster)
      python bench/bench_bank.py --quick

It prints a table; numbers go in closing notes and the README, never into tests.
Traffic goes only to 127.0.0.1, bounded in count and time.
"""

import argparse
import os
import pathlib
import statistics
import sys
import tempfile
import threading
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))

from bank.local_cluster import LocalCluster                     # noqa: E402
from bank.recovery_log import RecoveryLog                 # noqa: E402


def percentile(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(p / 100 * len(values)))]


def timed_calls(fn, count):
    samples = []
    for i in range(count):
        t0 = time.perf_counter()
        fn(i)
        samples.append((time.perf_counter() - t0) * 1000)
    return samples


def row(label, samples, seconds=None):
    rate = f"{len(samples) / seconds:8.1f}/s" if seconds else " " * 10
    print(f"{label:<44} n={len(samples):<5} p50={statistics.median(samples):6.2f} ms "
          f"p99={percentile(samples, 99):7.2f} ms {rate}", flush=True)


def bench_branch(bank, count):
    branch = bank.client("Mumbai")
    row("deposit (one branch, XML-RPC)",
        timed_calls(lambda i: branch.call("deposit", "1001", "1.00"), count))

    def prepare_commit(i):
        txid = f"bench-{os.getpid()}-{i}-{time.monotonic_ns()}"
        branch.call("prepare", txid, "http://127.0.0.1:1", [{"account": "1002", "delta": "+1"}])
        branch.call("commit", txid)
    row("prepare + commit (one branch, XML-RPC)", timed_calls(prepare_commit, count))


def bench_transfers(bank, clients, seconds, limit):
    samples, lock = [], threading.Lock()
    stop_at = time.monotonic() + seconds

    def client_loop(k):
        coord = bank.coordinator()
        n = 0
        while time.monotonic() < stop_at and n < limit:
            src, dst = ("Mumbai/1001", "Delhi/1001") if (n + k) % 2 else ("Delhi/1002", "Mumbai/1002")
            t0 = time.perf_counter()
            coord.call("transfer", src, dst, "1.00")
            with lock:
                samples.append((time.perf_counter() - t0) * 1000)
            n += 1

    t0 = time.monotonic()
    threads = [threading.Thread(target=client_loop, args=(k,)) for k in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    row(f"cross-branch transfer, {clients} client(s)", samples, time.monotonic() - t0)


def bench_restart(finished):
    with tempfile.TemporaryDirectory() as tmp:
        path = pathlib.Path(tmp) / "recovery.log"
        log = RecoveryLog(path)
        t0 = time.perf_counter()
        for i in range(finished):
            txid = f"C1-bench-{i}"
            log.begin(txid, {"branches": ["Delhi", "Mumbai"], "src": "Mumbai/1001",
                             "dst": "Delhi/1002", "amount": "1.00", "request_id": ""})
            log.commit(txid)
            log.end(txid, "committed")
        write_s = time.perf_counter() - t0
        for i in range(5):                       # a few unfinished ones to recover
            log.begin(f"C1-open-{i}", {"branches": ["Delhi", "Mumbai"]})
            log.commit(f"C1-open-{i}")
        log.close()
        t0 = time.perf_counter()
        again = RecoveryLog(path)
        restart_ms = (time.perf_counter() - t0) * 1000
        lines = sum(1 for _ in open(path, "rb"))
        print(f"recovery log: {finished} finished transfers written in {write_s:.1f} s "
              f"({finished / write_s:.0f}/s with an fsync each); restart {restart_ms:.1f} ms, "
              f"active log {lines} lines, {len(again.in_flight)} in flight", flush=True)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--quick", action="store_true")
    args = p.parse_args()
    count, seconds = (100, 3) if args.quick else (500, 10)
    with tempfile.TemporaryDirectory() as home:
        with LocalCluster(home=home, branches=("Mumbai", "Delhi"),
                          allow_faults=False) as bank:
            bench_branch(bank, count)
            bench_transfers(bank, 1, seconds, 5000)
            bench_transfers(bank, 8, seconds, 5000)
    bench_restart(10_000 if args.quick else 100_000)


if __name__ == "__main__":
    main()
