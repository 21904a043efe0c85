"""A recovered transaction's story: what happened before the coordinator crashed.

Role: after a restart the coordinator knows an unfinished transaction only from its
recovery log (a begin, perhaps a decision). Its trace in memory died with the crash,
so `show` would draw just "recovered" and no decision. This module writes back into
the new trace the rows the log proves happened before the crash, then the mark of
the restart, so the diagram reads: begin, prepares, votes, the forced commit, the
crash and restart, then the recovery (bank/twopc.py, Recovery, adds the rest as it
happens). It decides nothing: the core's on_restart does (bank/core/coordinator.py).

Rules:
  * TR1 - only what the log proves: a begin record proves the transfer began (at the
    time it holds); a commit record proves the prepares went to every participant and
    that every one voted yes (C3: commit is logged only after every yes), and that the
    decision was forced to disk. Nothing is drawn for what the log cannot tell: without
    a commit, whether the prepares left before the crash (the begin is written first;
    an abort may be recovery's own, or follow a prepare that never left) and the votes
    are unknown, and none is drawn (the acks of the abort that recovery sends follow).
  * TR2 - rebuilt rows say so: each carries "rebuilt": True and a detail naming its
    evidence; a time the log does not hold is drawn as "?", never invented.
  * TR3 - the restart is one "recovered" row between the two stories (the window draws
    it as a cut across every lifeline): the ms after it continue from the begin.

Glossary:
  rebuilt row  a trace row written after a restart from the recovery log's evidence
  evidence     the log record (begin, commit, abort) that proves a rebuilt row
"""

import time
from datetime import datetime

from bank.errors import BankError
from bank.money import format_delta, parse_amount

COORDINATOR, LOG = "coordinator", "log"      # the parties, as bank/twopc_txn.py names them
IMPLIED_YES = "yes: implied by the logged commit (C3)"


def rebuild_before_crash(txn, decision: str) -> None:
    """TR1-TR3: write the rows the log proves into `txn`'s trace, then the restart mark.

    txn: a bank.twopc_txn.Txn rebuilt from the log (info: src, dst, amount, branches,
    began); decision: "commit", "abort" or "" as the log holds it.
    """
    info = txn.info
    assert decision in ("commit", "abort", ""), decision
    _continue_clock_from(txn, info.get("began", ""))
    txn.note(COORDINATOR, LOG, "begin", f"{info.get('src', '')} -> {info.get('dst', '')} "
             f"{info.get('amount', '')}", rebuilt=True, ms=0)
    for branch, ops in (_ops(info) if decision == "commit" else {}).items():   # TR1
        txn.note(COORDINATOR, branch, "prepare", ops, rebuilt=True, ms="?")
    if decision == "commit":
        for branch in info.get("branches", []):
            txn.note(branch, COORDINATOR, "vote", IMPLIED_YES, kind="yes", rebuilt=True,
                     ms="?")
            txn.implied_votes[branch] = IMPLIED_YES
        txn.note(COORDINATOR, LOG, "decision", "commit (forced to disk)", rebuilt=True,
                 ms="?")
    elif decision == "abort":
        txn.note(COORDINATOR, LOG, "decision", "abort", rebuilt=True, ms="?")
    found = {"commit": "committed", "abort": "aborted"}.get(decision, "no decision logged: "
                                                                      "aborted (C8)")
    txn.note(COORDINATOR, LOG, "recovered", f"found after a restart: {found} (re-sending)")


def _continue_clock_from(txn, began: str) -> None:
    """TR3: the trace's ms count from the begin, so the rows after the restart read as
    time since the transfer began (the gap is the outage)."""
    try:
        elapsed = time.time() - datetime.fromisoformat(began).timestamp()
    except (TypeError, ValueError):
        return                                 # no begin time: ms count from the restart
    txn._t0 = time.monotonic() - max(0.0, elapsed)


def _ops(info: dict) -> dict:
    """branch -> the ops its prepare carried, as the trace writes them ("1001 -100.00"),
    rebuilt from the transfer (the debit at src's branch, the credit at dst's)."""
    try:
        amount = parse_amount(info["amount"])
        (src_branch, src_no), (dst_branch, dst_no) = (info[k].split("/", 1)
                                                      for k in ("src", "dst"))
    except (KeyError, ValueError, AttributeError, BankError):     # an odd begin record
        return {b: "(ops not in the log)" for b in info.get("branches", [])}
    return {src_branch: f"{src_no} {format_delta(-amount)}",
            dst_branch: f"{dst_no} {format_delta(amount)}"}
