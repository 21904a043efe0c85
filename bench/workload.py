"""Run one workload against one system: N client threads for S seconds.

Role: the measuring loop shared by bench/compare.py and bench/sustained.py. Each
client moves 1.00 back and forth between its two accounts and times every transfer.

Rules:
  * Latency is measured around each whole transfer as its client sees it.
  * Counters are read before and after, so fsyncs and messages are per transfer
    of this run only.
"""

import statistics
import threading
import time

from systems import HOT_PAIR, spread_pair


def percentile(values: list, p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(p / 100 * len(values)))] if values else 0.0


def pair_for(workload: str, client: int, branches: int) -> tuple:
    return HOT_PAIR if workload == "hot" else spread_pair(client, branches)


def run(system, workload: str, clients: int, seconds: float) -> dict:
    """Transfers/s, p50 and p99 (ms), fsyncs and RPCs per transfer for one run."""
    latencies, failures, lock = [], [0], threading.Lock()
    stop_at = time.monotonic() + seconds
    before = system.counters()

    def client_loop(k: int) -> None:
        src, dst = pair_for(workload, k, len(system.branches))
        n = 0
        while time.monotonic() < stop_at:
            a, b = (src, dst) if n % 2 == 0 else (dst, src)
            t0 = time.perf_counter()
            ok = system.transfer(a, b)
            ms = (time.perf_counter() - t0) * 1000
            with lock:
                if ok:
                    latencies.append(ms)
                else:
                    failures[0] += 1
            n += 1

    started = time.monotonic()
    threads = [threading.Thread(target=client_loop, args=(k,)) for k in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - started
    after = system.counters()
    done = len(latencies)
    row = {"system": system.name, "workload": workload, "clients": clients,
           "branches": len(system.branches), "transfers": done, "failed": failures[0],
           "per_s": done / elapsed, "p50_ms": statistics.median(latencies) if done else 0,
           "p99_ms": percentile(latencies, 99), "fsyncs": None, "rpcs": None}
    if done and before and after:
        row["fsyncs"] = (after["fsyncs"] - before["fsyncs"]) / done
        row["rpcs"] = ((after["rpcs"] - before["rpcs"]) / done if "rpcs" in after
                       else system.ROUND_TRIPS)
    return row
