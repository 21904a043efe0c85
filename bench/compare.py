"""The kit beside PostgreSQL's native 2PC, in one run, alternating.

Run:  python bench/compare.py                    (about 3 minutes)
      python bench/compare.py --seconds 2 --clients 1 8     (a quick look)
      python bench/compare.py --branches 2 4 8 --workloads spread --no-postgres
      python bench/compare.py --also-kit /tmp/old=before    (before and after, one run)
      python bench/compare.py --repeat 3 --seconds 3   (each cell 3 times: the median run)
      python bench/compare.py --hold 2    (also the kit with --hold-decisions 2)

For each workload (hot pair, spread accounts) and each number of clients (1, 2, 4,
8, 16) it runs the kit, then PostgreSQL (the order rotates every step, so neither
always runs on a warmer machine), prints one table and saves the rows as JSON for
bench/plot.py. PostgreSQL is skipped, with a sentence, when it is not installed.

Rules: numbers are for the README and closing notes, never for tests. Only
127.0.0.1, bounded in time. Check `uptime` first: on a busy machine the numbers
mean little.
"""

import argparse
import json
import os
import pathlib
import signal
import sys

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import systems                    # noqa: E402
import workload                   # noqa: E402

COLUMNS = ("workload", "branches", "clients", "system", "per_s", "per_s_range", "p50_ms",
           "p99_ms", "fsyncs", "rpcs", "failed")
HEADERS = ("workload", "branches", "clients", "system", "transfers/s", "runs' range",
           "p50 ms", "p99 ms", "fsyncs/transfer", "messages/transfer", "failed")


def table(rows: list) -> str:
    from tabulate import tabulate
    return tabulate([[_cell(r, c) for c in COLUMNS] for r in rows], HEADERS,
                    floatfmt=".1f", missingval="-")


def _cell(row: dict, column: str):
    value = row.get(column)
    if column == "per_s_range" and value:
        return f"{value[0]:.0f}-{value[1]:.0f}"
    return value


def median_run(runs: list) -> dict:
    """Of a system's repeated runs of one cell, the one with the median rate (its p50,
    p99 and counts come with it), noting how many runs there were and their range:
    this machine's speed moves by 10-30 % between runs, so one run can mislead."""
    ranked = sorted(runs, key=lambda row: row["per_s"])
    median = dict(ranked[len(ranked) // 2])
    if len(runs) > 1:
        median["runs"] = len(runs)
        median["per_s_range"] = [ranked[0]["per_s"], ranked[-1]["per_s"]]
    return median


def measure(args) -> list:
    rows = []
    why_not = "" if args.postgres else "--no-postgres"
    why_not = why_not or systems.postgres_missing()
    if why_not:
        print(f"PostgreSQL is left out: {why_not}.", flush=True)
    for branches in args.branches:
        kinds = [systems.Kit(branches)] + ([] if why_not else [systems.Postgres(branches)])
        if args.unbatched:
            kinds.append(systems.Kit(branches, batching=False))
        if args.hold:
            kinds.append(systems.Kit(branches, hold_ms=args.hold))
        for spec in args.also_kit:
            folder, _, label = spec.partition("=")
            kinds.append(systems.Kit(branches, folder=folder, label=label or folder))
        started = []
        try:
            for system in kinds:
                started.append(system.start())
                system.open_spread_accounts(max(args.clients))
            step = 0
            for name in args.workloads:
                for clients in args.clients:
                    runs = {id(system): [] for system in started}
                    for _ in range(args.repeat):
                        order = started[step % len(started):] + started[:step % len(started)]
                        step += 1
                        for system in order:
                            workload.run(system, name, clients, min(1.0, args.seconds))  # warm
                            row = workload.run(system, name, clients, args.seconds)
                            runs[id(system)].append(row)
                            print(table([row]).splitlines()[-1], flush=True)
                    rows += [dict(median_run(runs[id(system)]), cores=os.cpu_count())
                             for system in started]
        finally:
            for system in started:
                system.stop()
    return rows


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--seconds", type=float, default=5.0,
                   help="per measurement, after a warm-up of up to 1 s")
    p.add_argument("--clients", type=int, nargs="+", default=[1, 2, 4, 8, 16], help="counts")
    p.add_argument("--branches", type=int, nargs="+", default=[2], help="counts")
    p.add_argument("--workloads", nargs="+", default=["hot", "spread"],
                   choices=["hot", "spread"])
    p.add_argument("--repeat", type=int, default=1,
                   help="runs of each cell, every system in turn; the table shows each "
                        "system's median run")
    p.add_argument("--no-postgres", dest="postgres", action="store_false")
    p.add_argument("--unbatched", action="store_true",
                   help="also run the kit with --no-batching (group commit still on)")
    p.add_argument("--hold", type=float, default=0, metavar="MS",
                   help="also run the kit with coordinator.py --hold-decisions MS (its "
                        "decisions wait for company, bank/batching.py B6)")
    p.add_argument("--kit", default=str(HERE.parent), help="the kit's folder")
    p.add_argument("--also-kit", action="append", default=[], metavar="FOLDER[=LABEL]",
                   help="also run another checkout's programs (e.g. the version before a "
                        "change), alternating with the rest")
    p.add_argument("--save", default="", help="write the rows as JSON here")
    args = p.parse_args()
    if args.hold < 0:
        p.error(f"--hold takes milliseconds, 0 or more, not {args.hold:g}")
    for folder in [args.kit] + [spec.partition("=")[0] for spec in args.also_kit]:
        if not (pathlib.Path(folder) / "branch.py").is_file():
            p.error(f"{folder!r} is not a checkout of the kit (it has no branch.py); to "
                    "run another version, make one first, e.g. git worktree add /tmp/old "
                    "2c6a031")
    # A `kill` (or a timeout) ends us through the finally blocks: servers stopped too.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit("stopped by SIGTERM"))
    systems.add_kit_to_path(args.kit)
    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}", flush=True)
    rows = measure(args)
    print()
    print(table(rows))
    if args.save:
        pathlib.Path(args.save).write_text(json.dumps(rows, indent=1))
        print(f"saved {len(rows)} rows to {args.save}")


if __name__ == "__main__":
    main()
