"""Counters a server keeps so a lab can watch the cost of a transfer: fsyncs, messages.

Role: cumulative, process-wide totals, shown by ping() ("counters") and by the
shell's `counters` command, which divides them by the transfers made
(``per_transfer``, pure: no I/O).

Rules:
  * Counters only ever grow while a process runs; they start at 0 with it, under a new
    ``run`` (RUN), so a reader tells a restart by the run, never by guessing from the
    sums (one server back at 0 while the others counted on leaves every sum higher).
  * Counting is cheap (one lock, one addition) and never changes what a server does.

Glossary:
  fsyncs      COMMITs of a branch's ledger that wrote (group commit shares them) and
              forced writes of the coordinator's recovery log that carried a
              transaction's record (those with only a configuration record are
              config_fsyncs: no transfer costs them)
  twopc_fsyncs  a branch's COMMITs with a 2PC step among their steps (prepare, commit,
              abort, a peer's or a heuristic decision): what transfers cost (deposits,
              openings... make the others)
  rpcs_sent   2PC calls the coordinator made to branches (prepare, commit, abort);
              pings and reads are not counted
  transfers   transfers between branches the coordinator ran
"""

import secrets
import threading


class Counters:
    def __init__(self):
        self._lock = threading.Lock()
        self._counts = {}

    def add(self, name: str, n: int = 1) -> None:
        with self._lock:
            self._counts[name] = self._counts.get(name, 0) + n

    def snapshot(self) -> dict:
        with self._lock:
            return dict(self._counts)


COUNTS = Counters()        # this process's
RUN = secrets.token_hex(4)  # this process's run: its counters started at 0 with it


def totals(coordinator: dict, branches: dict) -> dict:
    """The bank's totals from the coordinator's and each branch's ping counters, and
    "runs": which run of each server counted them (a text, not a count)."""
    steps = sum(c.get("steps", 0) for c in branches.values())
    all_fsyncs = sum(c.get("fsyncs", 0) for c in branches.values())
    twopc_fsyncs = sum(c.get("twopc_fsyncs", c.get("fsyncs", 0)) for c in branches.values())
    transfers = coordinator.get("transfers", 0)
    runs = {"coordinator": coordinator.get("run", ""),
            **{name: c.get("run", "") for name, c in branches.items()}}
    return {"transfers": transfers, "rpcs": coordinator.get("rpcs_sent", 0) + transfers,
            "log_fsyncs": coordinator.get("fsyncs", 0), "branch_fsyncs": twopc_fsyncs,
            "other_fsyncs": all_fsyncs - twopc_fsyncs, "steps": steps,
            "runs": " ".join(f"{name}={run}" for name, run in sorted(runs.items()))}


def restarted(now: dict, before) -> bool:
    """Did a server restart since `before` (totals())? Its counters start from 0 again
    under a new run (or a failover put another server in its place): count from `now`
    instead (never a negative rate). A total that went down says so too (a server
    that names no run)."""
    if before is None:
        return False
    return now.get("runs") != before.get("runs") or \
        any(now[k] < before.get(k, 0) for k in now if k != "runs")


def per_transfer(now: dict, before: dict = None) -> list:
    """[(what, value, meaning)] rows for the change from `before` to `now` (totals())."""
    before = before or dict.fromkeys(now, 0)
    d = {k: now[k] - before.get(k, 0) for k in now if k != "runs"}
    n = d["transfers"]

    def each(x):
        return f"{x / n:.2f}" if n else "-"
    commits = d["branch_fsyncs"] + d.get("other_fsyncs", 0)
    shared = f"{d['steps'] / commits:.2f}" if commits else "-"
    return [("transfers between branches", str(n), "run by the coordinator"),
            ("messages per transfer", each(d["rpcs"]),
             "the client's call + the coordinator's calls to branches (5 unbatched)"),
            ("fsyncs per transfer", each(d["log_fsyncs"] + d["branch_fsyncs"]),
             "recovery log + branch COMMITs (5 without group commit)"),
            ("  of which the recovery log", each(d["log_fsyncs"]), "forced commit records"),
            ("  of which branch COMMITs", each(d["branch_fsyncs"]),
             "one per group with a prepare, commit or abort"),
            ("other branch COMMITs", str(d.get("other_fsyncs", 0)),
             "deposits, withdrawals, openings, local transfers: not counted above"),
            ("ledger steps per branch COMMIT", shared,
             "above 1.00: group commit at work")]
