"""Where one transfer's time goes, and the floor this design cannot go below.

Run:  python bench/floor.py              (about 15 seconds; starts its own servers)

A transfer answered after phase 2 (rule D3) waits, in a row, for three calls (the
client's call to the coordinator, the prepares, the commits; the two branches of a
round are asked at once) and three forced writes (the branches' prepares, the
coordinator's commit record, the branches' commits). However lean the code around
them, one transfer cannot be faster than those six waits. This script measures each
wait on this machine with nothing of the kit in it, a no-op call of the standard
library's XML-RPC between two processes and an fsync, then the kit's own calls (a
signed ping; a prepare and a commit sent to one branch alone) and the kit itself, and
prints the floors beside what the kit does.

It also prints the CPU side: what one transfer costs in messages and ledger steps
with 8 clients (batching shares some), the least CPU those can take here, and each
process's CPU and thread switches per transfer (Linux only).

Rules: numbers are for the README and closing notes, never for tests. Only
127.0.0.1, bounded in count and time; every process started here is ended here.

Glossary:
  floor     the least time (or CPU) a step can take here with no work of the kit in it
  no-op     a call that does nothing: all its cost is HTTP, XML and the two processes
"""

import os
import pathlib
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import xmlrpc.client

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

import bench_bank                                  # noqa: E402
import systems                                     # noqa: E402

CALLS = 2000          # no-op calls and pings timed
TRANSFERS = 400       # transfers timed with 1 client
HOLD_MS = 3           # and again with coordinator.py --hold-decisions 3 (B6)
LOAD_SECONDS = 6      # the 8-client run that counts messages and CPU


# ---- a bare XML-RPC server (the standard library's, nothing of the kit) ------------------

def serve_bare() -> None:
    """Child process: a stdlib SimpleXMLRPCServer with HTTP/1.1 keep-alive; prints its port."""
    from xmlrpc.server import SimpleXMLRPCRequestHandler, SimpleXMLRPCServer

    class KeepAlive(SimpleXMLRPCRequestHandler):
        protocol_version = "HTTP/1.1"

    server = SimpleXMLRPCServer(("127.0.0.1", 0), KeepAlive, logRequests=False)
    server.register_function(lambda: True, "noop")
    server.register_function(lambda: str(time.process_time_ns()), "cpu")   # its own CPU
    print(server.server_address[1], flush=True)
    server.serve_forever()


def timed(call, count: int) -> list:
    """Milliseconds of each of `count` calls, after a few untimed ones."""
    for _ in range(min(50, count)):
        call()
    return bench_bank.timed_calls(lambda _: call(), count)


def bare_call() -> dict:
    """p50 of a no-op stdlib XML-RPC call between two processes, and its CPU at each end."""
    child = subprocess.Popen([sys.executable, __file__, "--serve-bare"],
                             stdout=subprocess.PIPE, text=True)
    try:
        port = int(child.stdout.readline())
        proxy = xmlrpc.client.ServerProxy(f"http://127.0.0.1:{port}")
        server_ns, client_ns = int(proxy.cpu()), time.process_time_ns()
        samples = timed(proxy.noop, CALLS)
        server_cpu = (int(proxy.cpu()) - server_ns) / (CALLS + 50) / 1e6      # ms per call
        client_cpu = (time.process_time_ns() - client_ns) / (CALLS + 50) / 1e6
        return {"p50": statistics.median(samples), "client_cpu": client_cpu,
                "server_cpu": server_cpu}
    finally:
        child.kill()
        child.wait()


def fsync_ms(folder: str) -> float:
    """p50 of writing one short line and fsyncing it, in `folder` (the kit's disk)."""
    with open(pathlib.Path(folder) / "fsync.test", "ab", buffering=0) as f:
        def write_and_sync():
            f.write(b"one record of about a hundred bytes, like a recovery log line\n")
            os.fsync(f.fileno())
        return statistics.median(timed(write_and_sync, 300))


# ---- the kit -----------------------------------------------------------------------------

def kit_alone(kit) -> dict:
    """p50 of a signed ping to a branch, of a prepare and of a commit at that branch
    alone (as the coordinator sends them), and of a transfer with one client."""
    branch = kit.cluster.client("Mumbai")
    ping = statistics.median(timed(lambda: branch.call("ping"), CALLS // 2))
    return {"ping": ping, **branch_steps(branch, kit.cluster.client("coordinator").url),
            "transfer": one_client(kit)}


def branch_steps(branch, coordinator: str) -> dict:
    """p50 of one prepare (0.01 held at Mumbai/1001) and of its commit, each a signed
    call answered once its write is on disk: the branch's part of each 2PC round."""
    prepares, commits = [], []
    for i in range(TRANSFERS):
        txid = f"F1-{i:06d}"                      # this script's own: nobody else asks
        for took, call in ((prepares, ("prepare", txid, coordinator,
                                       [{"account": "1001", "delta": "-0.01"}])),
                           (commits, ("commit", txid))):
            started = time.perf_counter()
            branch.call(*call)
            took.append((time.perf_counter() - started) * 1000)
    return {"prepare": statistics.median(prepares), "commit": statistics.median(commits)}


def one_client(kit) -> float:
    """p50 of a transfer with one client, back and forth on the hot pair."""
    turn = [0]

    def transfer():
        a, b = systems.HOT_PAIR if turn[0] % 2 == 0 else systems.HOT_PAIR[::-1]
        turn[0] += 1
        kit.transfer(a, b)
    return statistics.median(timed(transfer, TRANSFERS))


def kit_loaded(kit, clients: int = 8) -> dict:
    """Messages, fsyncs and CPU per transfer with `clients` on the hot pair."""
    stop, done = threading.Event(), [0]

    def client(k: int):
        turn = k
        while not stop.is_set():
            a, b = systems.HOT_PAIR if turn % 2 == 0 else systems.HOT_PAIR[::-1]
            turn += 1
            kit.transfer(a, b)
            done[0] += 1

    def snapshot() -> dict:
        cpu = [systems.cpu_seconds(pid) for pid in kit.pids().values()]
        return {"counters": kit.counters(), "done": done[0], "at": time.monotonic(),
                "cpu": None if None in cpu else sum(cpu) + time.process_time(),
                "each": {name: (systems.cpu_seconds(pid), systems.thread_switches(pid))
                         for name, pid in kit.pids().items()}}

    threads = [threading.Thread(target=client, args=(k,)) for k in range(clients)]
    for t in threads:
        t.start()
    time.sleep(1)                                          # warm
    first = snapshot()
    time.sleep(LOAD_SECONDS)
    last = snapshot()
    stop.set()
    for t in threads:
        t.join()
    made = max(1, last["done"] - first["done"])
    counted = max(1, last["counters"]["transfers"] - first["counters"]["transfers"])

    def per_transfer(key: str) -> float:
        return (last["counters"][key] - first["counters"][key]) / counted
    return {"clients": clients, "rate": made / (last["at"] - first["at"]),
            "messages": per_transfer("rpcs"), "fsyncs": per_transfer("fsyncs"),
            "cpu": None if first["cpu"] is None else (last["cpu"] - first["cpu"]) * 1000 / made,
            "each": _each_process(first["each"], last["each"], made)}


def _each_process(first: dict, last: dict, made: int) -> dict:
    """name -> (ms of CPU, voluntary switches, involuntary switches) per transfer."""
    each = {}
    for name, (cpu, switches) in last.items():
        cpu0, switches0 = first.get(name, (None, None))
        if None in (cpu, cpu0, switches, switches0):
            continue                                       # not Linux
        each[name] = ((cpu - cpu0) * 1000 / made, (switches[0] - switches0[0]) / made,
                      (switches[1] - switches0[1]) / made)
    return each


# ---- the report --------------------------------------------------------------------------

def report(fsync: float, bare: dict, alone: dict, loaded: dict) -> None:
    call = bare["p50"]
    print(f"{'fsync of one short write':46} {fsync:6.2f} ms (p50)")
    print(f"{'a no-op stdlib XML-RPC call, two processes':46} {call:6.2f} ms (p50); CPU "
          f"{bare['client_cpu']:.2f} ms client + {bare['server_cpu']:.2f} ms server")
    print(f"{'a signed ping to a branch of the kit':46} {alone['ping']:6.2f} ms (p50)")
    print(f"{'a prepare at that branch alone, then commit':46} {alone['prepare']:6.2f} ms, "
          f"{alone['commit']:.2f} ms (p50; each a signed call, its write on disk)")
    print(f"{'a transfer, the kit, 1 client':46} {alone['transfer']:6.2f} ms (p50)")
    print(f"{f'  the same, decisions held {HOLD_MS} ms':46} {alone['held']:6.2f} ms "
          "(p50; answered at the forced decision: coordinator.py --hold-decisions)")
    after_phase2 = 3 * call + 3 * fsync
    at_decision = 2 * call + 2 * fsync
    print()
    print("The floor of one transfer's latency with this transport (no ledger, log or "
          "protocol work at all):")
    print(f"  answered after phase 2 (D3, the kit): 3 calls + 3 fsyncs in a row = "
          f"{after_phase2:.2f} ms")
    print(f"  answered at the forced decision:      2 calls + 2 fsyncs in a row = "
          f"{at_decision:.2f} ms")
    print(f"  the kit's p50 is {alone['transfer'] / after_phase2:.1f} x the first floor, "
          f"{alone['held'] / at_decision:.1f} x the second with decisions held; the "
          "target set for the kit is 3 ms (README, Speed)")
    steps = alone["ping"] + alone["prepare"] + fsync
    print("With the kit's own calls and steps, and still no work at the coordinator (the "
          "client's call as a signed ping, one branch's prepare, the forced decision, "
          "one branch's commit):")
    print(f"  answered after phase 2: {steps + alone['commit']:.2f} ms; answered at the "
          f"forced decision: {steps:.2f} ms")
    per_call = bare["client_cpu"] + bare["server_cpu"]
    print()
    print(f"With {loaded['clients']} clients on the hot pair the kit made "
          f"{loaded['rate']:.0f} transfers/s, each {loaded['messages']:.2f} messages and "
          f"{loaded['fsyncs']:.2f} fsyncs (batching and group commit share the rest).")
    transport = loaded["messages"] * per_call
    cores = os.cpu_count() or 1
    print(f"  those messages cost at least {transport:.2f} ms of CPU per transfer as no-op "
          f"calls ({per_call:.2f} ms each, both ends): at most "
          f"{cores * 1000 / transport:.0f} transfers/s on {cores} cores for the transport alone")
    if loaded["cpu"] is not None:
        print(f"  the kit used {loaded['cpu']:.2f} ms of CPU per transfer, all processes and "
              f"the client together: at most {cores * 1000 / loaded['cpu']:.0f}/s on "
              f"{cores} cores")
    for name, (cpu, slept, preempted) in loaded["each"].items():
        print(f"  {name + ':':13} {cpu:.2f} ms of CPU and {slept:4.1f} thread switches per "
              f"transfer (+ {preempted:.1f} forced by the OS)")
    if loaded["each"]:
        print("  (a switch is a thread going to sleep: for I/O, a lock, or Python's GIL)")


def main() -> None:
    if "--serve-bare" in sys.argv:
        return serve_bare()
    if len(sys.argv) > 1:                 # --help, or anything else: it takes no options
        print(__doc__.split("\n\n")[0] + "\n\n" + __doc__.split("\n\n")[1])
        return None
    if hasattr(os, "getloadavg"):
        print(f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())} "
              "(numbers mean little on a busy machine)", flush=True)
    with tempfile.TemporaryDirectory(prefix="bench-floor-") as folder:
        fsync = fsync_ms(folder)
    bare = bare_call()
    kit = systems.Kit().start()
    try:
        alone, loaded = kit_alone(kit), kit_loaded(kit)
    finally:
        kit.stop()
    held = systems.Kit(hold_ms=HOLD_MS).start()
    try:
        alone["held"] = one_client(held)
    finally:
        held.stop()
    report(fsync, bare, alone, loaded)


if __name__ == "__main__":
    main()
