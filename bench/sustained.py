"""A sustained run: does the kit slow down, or grow, the longer it runs?

Run:  python bench/sustained.py           (250 s warm-up, then 120 s; 8 clients, hot pair)
      python bench/sustained.py --seconds 60 --clients 4 --workload spread

Every 10 s it prints that window's transfers/s, p50 and p99, each server's CPU per
transfer (ms; Linux), and each process's resident memory (the coordinator, every
branch, and this client); at the end the last window against the first, the last
minute against the first, each server's CPU per transfer and each process's memory
growth, with the targets of issue 13 (last window >= 0.9 x the first; memory flat
within 10 %).

CPU per transfer is the direct measure of "the cost of a request does not grow with
uptime": the rate also moves with the machine (a virtual machine's speed can change
by 10-15 % from minute to minute), and this client's own CPU per transfer, whose work
never changes, shows how much.

A warm-up (--warm-up, 250 s) runs the same load first, printed but not judged: the
kit's bounded caches fill during it, and a cache that stops at its bound is not
growth with uptime. The largest is each server's replay cache
(bank/rpc_signatures.py): a signature is valid for SIGNATURE_WINDOW (120 s) either
side of its time, so every nonce seen in the last 240 s is kept (up to 10 s more:
they are forgotten ten seconds at a time; at most MAX_NONCES); the coordinator also
remembers its last 10,000 finished transactions and 1,000 traces, and each SQLite
connection caches up to 2 MB of pages. Growth from the first window after the
warm-up is what the target judges; the whole run's start is printed as well.

Rules: loopback only; the cluster is started and ended here. Numbers are for the
README and closing notes, never for tests.
"""

import argparse
import os
import pathlib
import signal
import statistics
import sys
import threading
import time

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import systems                    # noqa: E402
import workload                   # noqa: E402


def memory_line(pids: dict) -> str:
    return "  ".join(f"{name} {systems.rss_kib(pid) / 1024:.1f} MB"
                     for name, pid in pids.items())


def cpu_now(pids: dict) -> dict:
    """Each process's CPU seconds so far (this client's from the standard library)."""
    return {name: time.process_time() if pid == os.getpid() else systems.cpu_seconds(pid)
            for name, pid in pids.items()}


def cpu_per_transfer(before: dict, after: dict, transfers: int) -> dict:
    """ms of CPU per transfer of each process in a window (None where unknown)."""
    return {name: None if before[name] is None or not transfers
            else (after[name] - before[name]) * 1000 / transfers for name in after}


def cpu_line(per_transfer: dict) -> str:
    return "  ".join(f"{name} {ms:.2f}" for name, ms in per_transfer.items()
                     if ms is not None)


def sustained(system, name: str, clients: int, seconds: float, window: float,
              warm_up: float = 0.0) -> list:
    """Run the load; return one row per window after the warm-up:
    (per_s, p50, p99, {process: KiB}, {process: CPU ms per transfer}); the warm-up's
    rows are printed only."""
    seconds += warm_up
    done, lock = [], threading.Lock()             # (finish time, latency ms)
    stop_at = time.monotonic() + seconds

    def client_loop(k: int) -> None:
        src, dst = workload.pair_for(name, k, len(system.branches))
        n = 0
        while time.monotonic() < stop_at:
            a, b = (src, dst) if n % 2 == 0 else (dst, src)
            t0 = time.perf_counter()
            system.transfer(a, b)
            with lock:
                done.append((time.monotonic(), (time.perf_counter() - t0) * 1000))
            n += 1

    pids = dict(system.pids(), client=os.getpid())
    threads = [threading.Thread(target=client_loop, args=(k,), daemon=True)
               for k in range(clients)]
    start = time.monotonic()
    for t in threads:
        t.start()
    rows, start_memory, cpu = [], {}, cpu_now(pids)
    for w in range(1, int(seconds // window) + 1):
        time.sleep(max(0.0, start + w * window - time.monotonic()))   # paces the report
        with lock:                          # take this window's samples: the client's
            batch = done[:]                 # own memory stays flat too
            done.clear()
        ms = [lat for _, lat in batch]
        memory = {n: systems.rss_kib(p) for n, p in pids.items()}
        cpu, before = cpu_now(pids), cpu
        row = (len(ms) / window, statistics.median(ms) if ms else 0,
               workload.percentile(ms, 99), memory, cpu_per_transfer(before, cpu, len(ms)))
        warming = w * window <= warm_up
        if not warming:
            rows.append(row)
        print(f"{(w - 1) * window:5.0f}-{w * window:<4.0f}s {row[0]:7.1f}/s  p50 {row[1]:6.2f} ms"
              f"  p99 {row[2]:6.2f} ms   CPU ms/transfer {cpu_line(row[4])}   "
              f"{memory_line(pids)}"
              + ("   (warm-up)" if warming else ""), flush=True)
        if w == 1:                          # for the line on the whole run
            start_memory.update(memory)
    for t in threads:
        t.join()
    return rows, start_memory


def verdict(rows: list, start_memory: dict, warm_up: float) -> str:
    first, last = rows[0], rows[-1]
    since = f"since the end of the {warm_up:.0f} s warm-up" if warm_up else \
        "from the first window"
    minute = max(1, min(len(rows) // 2, 6))          # windows in the first and last minute
    early, late = rows[:minute], rows[-minute:]
    lines = [f"last window / first: {last[0] / first[0]:.2f} (target >= 0.90); "
             f"last {minute} windows / first {minute}: "
             f"{_mean(r[0] for r in late) / _mean(r[0] for r in early):.2f}"]
    for name, ms in first[4].items():
        if ms is not None:
            a, b = _mean(r[4][name] for r in early), _mean(r[4][name] for r in late)
            lines.append(f"CPU per transfer of {name}: {a:.2f} -> {b:.2f} ms "
                         f"({(b - a) / a * 100:+.1f} %, first {minute} windows -> last {minute})")
    for name in first[3]:
        a, b = first[3][name], last[3][name]
        growth = (b - a) / a * 100 if a else 0.0
        lines.append(f"memory of {name}: {a / 1024:.1f} -> {b / 1024:.1f} MB "
                     f"({growth:+.1f} % {since}; target within 10 %; "
                     f"{start_memory.get(name, a) / 1024:.1f} MB after the first window)")
    return "\n".join(lines)


def _mean(values) -> float:
    return statistics.mean(list(values))


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--seconds", type=float, default=120.0, help="the measured run")
    p.add_argument("--window", type=float, default=10.0, help="seconds per printed line")
    p.add_argument("--warm-up", type=float, default=250.0,
                   help="seconds of load before the measured run (caches fill: the "
                        "replay cache keeps 240 s of nonces)")
    p.add_argument("--clients", type=int, default=8, help="at once")
    p.add_argument("--branches", type=int, default=2, help="servers")
    p.add_argument("--workload", default="hot", choices=["hot", "spread"], help="accounts")
    p.add_argument("--kit", default=str(HERE.parent), help="the kit's folder")
    args = p.parse_args()
    # A `kill` (or a timeout) ends us through the finally blocks: servers stopped too.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit("stopped by SIGTERM"))
    systems.add_kit_to_path(args.kit)
    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}; "
          f"{args.clients} clients, {args.workload}, {args.seconds:.0f} s", flush=True)
    kit = systems.Kit(args.branches).start()
    try:
        kit.open_spread_accounts(args.clients)
        rows, start_memory = sustained(kit, args.workload, args.clients, args.seconds,
                                       args.window, args.warm_up)
    finally:
        kit.stop()
    print(verdict(rows, start_memory, args.warm_up))


if __name__ == "__main__":
    main()
