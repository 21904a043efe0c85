"""Lab 14: presumed nothing, abort or commit: the R* table from the kit's own counters.

Goal: measure what each presumption costs, and compare with the table of Mohan,
Lindsay and Obermarck (R*, 1986): log writes, forced log writes and messages, at
the coordinator and at a branch, when a transfer commits and when it aborts. The
coordinator runs one table per presumption (--presumption nothing|abort|commit);
it counts its own writes and every message (transaction(txid)["counts"]), and each
branch's writes are read from its SQLite file (its replog: one forced COMMIT each).
Read first: bank/core/coordinator.py (C8, C10-C13 and the three tables),
bank/txn_counters.py (N1-N3), bank/recovery_log.py (Rule 2), lab 12 (what a forced
write costs).

Scenario: three clusters, one per presumption, each in its own folder:
  1. A transfer that commits (Mumbai/1001 -> Delhi/1001, 100.00) and one that
     aborts (Mumbai/1002 holds 5000.00 and is asked for 6000.00: Mumbai votes no,
     Delhi votes yes and is told to abort), under each presumption.
  2. The table: writes/forced, messages, for the coordinator (messages per branch)
     and for Delhi, the branch that voted yes, the kit's next to R*'s; a * marks a
     cell where they differ, and every such cell is explained.
  3. Mumbai, the branch that voted no: a row R* has no column for.

Steps:
  1. Run `python labs/lab14_presumptions.py --step --keep`.
  2. At the pause after step 1, open `FOLDER/commit/logs/recovery.log`: the begin
     records say "presumption": "commit"; the committed transfer has no end record.
     Compare with `FOLDER/abort/logs/recovery.log`.
  3. Read the three tables in bank/core/coordinator.py (or the README's copies): find
     the row behind each number of the table in step 2.
  4. For each cell marked *, read the explanation, then find the line of the kit that
     makes the difference.
  5. Play `python -m bank.scenario labs/scenarios/lab14_presumptions.ini`: one cluster,
     presumed abort, every party's counts checked line by line. Change its
     `presumption = abort` to `commit` and play it again: which lines fail, and why?

Questions: Which presumption is cheapest for a bank whose transfers almost always
commit, and which when most abort? Why must presumed commit force its begin record
before any prepare (what would recovery presume after a crash without it)? Why may
presumed abort forget an aborted transaction at once, and presumed commit a committed
one? Under presumed nothing, why is an abort forced although it is never presumed?

Run: python labs/lab14_presumptions.py [--step] [--keep]     Handout: labs/lab14_presumptions.md
"""

import textwrap

from labkit import LocalCluster, expect, lab_folder, passed, show, step, wait_until

from bank.txn_counters import branch_writes

PRESUMPTIONS = ("nothing", "abort", "commit")
CASES = {"commit": ("Mumbai/1001", "Delhi/1001", "100"),
         "abort": ("Mumbai/1002", "Delhi/1001", "6000")}
YES_VOTER, NO_VOTER = "Delhi", "Mumbai"

# R*, 1986, an update transaction whose subordinates all voted yes: (log writes, of them
# forced, messages). The coordinator's writes are per transaction, its messages per
# subordinate; a subordinate's are its own. "nothing" is the paper's basic 2P.
# Checked against summaries of the paper (its table itself was not at hand): 2P as in
# Hellerstein and Brewer's CS262B notes on R* (subordinate 2 forced writes and 2
# messages; coordinator a forced commit, an unforced end, 2 messages per subordinate);
# PA's abort as in A. Colyer's summary (the morning paper, 2016-01-12): the abort
# record is written unforced by the coordinator and the subordinates, no ack, no end.
R_STAR = {
    ("nothing", "commit"): {"coordinator": (2, 1, 2), "branch": (2, 2, 2)},
    ("nothing", "abort"):  {"coordinator": (2, 1, 2), "branch": (2, 2, 2)},
    ("abort", "commit"):   {"coordinator": (2, 1, 2), "branch": (2, 2, 2)},
    ("abort", "abort"):    {"coordinator": (1, 0, 2), "branch": (2, 1, 1)},
    ("commit", "commit"):  {"coordinator": (2, 2, 2), "branch": (2, 1, 1)},
    ("commit", "abort"):   {"coordinator": (3, 2, 2), "branch": (2, 2, 2)},
}

# The kit, as its tables say it must count (tests/test_presumptions.py checks it too).
KIT = {
    ("nothing", "commit"): {"coordinator": (3, 1, 2), "branch": (2, 2, 2)},
    ("nothing", "abort"):  {"coordinator": (3, 1, 2), "branch": (2, 2, 2)},
    ("abort", "commit"):   {"coordinator": (3, 1, 2), "branch": (2, 2, 2)},
    ("abort", "abort"):    {"coordinator": (3, 0, 2), "branch": (2, 2, 2)},
    ("commit", "commit"):  {"coordinator": (2, 2, 2), "branch": (2, 2, 2)},
    ("commit", "abort"):   {"coordinator": (3, 2, 2), "branch": (2, 2, 2)},
}
NO_VOTER_KIT = (2, 2, 2)      # Mumbai under every presumption: no row in R*'s table

BEGIN = ("the kit writes a begin record (C1), unforced, naming the branches and the "
         "transfer: after a crash recovery finds what to abort, and a retried request id "
         "its transaction. R*'s coordinator writes nothing before its decision. It costs "
         "no fsync (lab 12), only a write.")
WHY = {
    ("nothing", "commit", "coordinator"): BEGIN,
    ("nothing", "abort", "coordinator"): BEGIN,
    ("abort", "commit", "coordinator"): BEGIN,
    ("abort", "abort", "coordinator"): (
        "R*'s presumed-abort coordinator writes only its abort record, unforced, and "
        "forgets the transaction at once (no end record). The kit writes begin, abort and "
        "end, none of them forced (Rule 2), and "
        "waits for the acknowledgements, so the shell, transactions() and a retried "
        "request id can still show the outcome. Losing them is safe: a txid without a "
        "commit record is aborted (C8)."),
    ("abort", "abort", "branch"): (
        "R*'s subordinate writes its abort record unforced and sends no acknowledgement. "
        "In the kit every write of a branch is one SQLite COMMIT with synchronous=FULL "
        "(bank/ledger.py), so the abort is forced too, and XML-RPC answers every call, "
        "so the abort call's answer is the acknowledgement."),
    ("commit", "commit", "branch"): (
        "R*'s presumed-commit subordinate writes its commit record unforced and sends no "
        "acknowledgement. The kit's branch forces it (one SQLite COMMIT, as every branch "
        "write) and the commit call is answered (XML-RPC). The coordinator gains what "
        "presumed commit promises all the same: it waits for no acknowledgement, retries "
        "nothing and writes no end (C12)."),
}
NO_VOTER_WHY = (
    "R* sends no abort to a subordinate that voted no: it has already aborted. The kit "
    "sends the abort to every participant that has not acknowledged (C4, C6), so the no "
    "voter is called a second time (P3, a repeated abort: the table writes nothing new, "
    "but every branch call ends in a forced SQLite COMMIT) and answers: 2 writes, both "
    "forced, 2 messages. (R*'s table has no column for it.)")


def sorted_dict(value):
    """A dict printed in the same order at every run (by key, nested too)."""
    if isinstance(value, dict):
        return {key: sorted_dict(value[key]) for key in sorted(value)}
    return value


def measure(home, presumption: str) -> dict:
    """Run both cases on a fresh cluster of this presumption: (case) -> counts."""
    found = {}
    # Branches ask the coordinator about a prepared transfer on a timer (P6); a question
    # asked in the few milliseconds before the decision arrives would count as one more
    # message, so this lab's branches ask only after an hour.
    with LocalCluster(home=home / presumption, branch_args=["--ask-every", "3600"],
                      coordinator_args=["--presumption", presumption]) as bank:
        coord = bank.coordinator()
        for case, (src, dst, amount) in CASES.items():
            result = coord.call("transfer", src, dst, amount)
            outcome = "committed" if case == "commit" else "aborted"
            expect(result["outcome"] == outcome, f"presumed {presumption}: {outcome}")
            txid = result["txid"]
            wait_until(lambda: coord.call("transaction", txid)["state"] == outcome and all(
                bank.client(b).call("status", txid)["state"] == outcome
                for b in (YES_VOTER, NO_VOTER)), f"{txid} finished everywhere")
            counts = coord.call("transaction", txid)["counts"]
            found[case] = {"coordinator": counts["coordinator"], "counts": counts,
                           "writes": {b: branch_writes(bank.home / "data" / f"{b}.db", txid)
                                      for b in (YES_VOTER, NO_VOTER)}}
    return found


def as_cells(measured: dict, branches: int = 2) -> dict:
    """(writes, forced, messages) for the coordinator (messages per branch) and for the
    yes voter and the no voter (messages: the answers the coordinator got from it)."""
    c = measured["counts"]["coordinator"]
    cells = {"coordinator": (c["forced"] + c["unforced"], c["forced"],
                             c["messages"] // branches)}
    for name, key in ((YES_VOTER, "branch"), (NO_VOTER, "no-voter")):
        writes = measured["writes"][name]
        cells[key] = (writes, writes, measured["counts"].get(name, {}).get("messages", 0))
    return cells


def explain(text: str) -> None:
    for line in textwrap.wrap(text, 84):
        show("    " + line)


def cell(numbers) -> str:
    writes, forced, messages = numbers
    return f"{writes}/{forced}, {messages}"


def print_table(kit: dict) -> list:
    """The kit next to R*: one row per presumption and case. Returns the differing cells."""
    differ = []
    show(f"{'presumed':<9}{'case':<8}{'coordinator: kit':>18}{'R*':>8}"
         f"{'Delhi (yes): kit':>19}{'R*':>8}")
    for (presumption, case), star in R_STAR.items():
        got = kit[(presumption, case)]
        marks = {}
        for party in ("coordinator", "branch"):
            marks[party] = "*" if got[party] != star[party] else " "
            if marks[party] == "*":
                differ.append((presumption, case, party))
        show(f"{presumption:<9}{case:<8}{cell(got['coordinator']) + marks['coordinator']:>18}"
             f"{cell(star['coordinator']):>8}{cell(got['branch']) + marks['branch']:>19}"
             f"{cell(star['branch']):>8}")
    show("cells: log writes/of them forced, messages (the coordinator's per branch)")
    return differ


def main():
    with lab_folder("lab14") as home:
        step("Under each presumption, one transfer that commits and one that aborts.")
        kit, no_voter = {}, {}
        for presumption in PRESUMPTIONS:
            for case, measured in measure(home, presumption).items():
                cells = as_cells(measured)
                kit[(presumption, case)] = {p: cells[p] for p in ("coordinator", "branch")}
                no_voter[(presumption, case)] = cells["no-voter"]
                show(f"presumed {presumption}, {case}: counts {sorted_dict(measured['counts'])}, "
                     f"branch writes {sorted_dict(measured['writes'])}")

        step("The table of R* (Mohan, Lindsay, Obermarck 1986) from the kit's counters.")
        differ = print_table(kit)
        for key, expected in KIT.items():
            expect(kit[key] == expected, f"presumed {key[0]}, {key[1]}: the kit counts "
                   f"{cell(expected['coordinator'])} and {cell(expected['branch'])}")

        step("Every cell where the kit differs from R*, explained.")
        for presumption, case, party in differ:
            show(f"* presumed {presumption}, {case}, "
                 f"{'coordinator' if party == 'coordinator' else 'Delhi'}: "
                 f"kit {cell(kit[(presumption, case)][party])}, "
                 f"R* {cell(R_STAR[(presumption, case)][party])}")
            explain(WHY[(presumption, case, party)])
        expect(all(key in WHY for key in differ), "every differing cell has its explanation")

        step("Mumbai, the branch that voted no, in the abort case.")
        for presumption in PRESUMPTIONS:
            show(f"presumed {presumption}: {cell(no_voter[(presumption, 'abort')])}")
            expect(no_voter[(presumption, "abort")] == NO_VOTER_KIT,
                   f"presumed {presumption}: the no voter wrote twice and answered twice")
        explain(NO_VOTER_WHY)
    passed(14, "each presumption saves where it presumes; the kit's counters show where "
               "and why it pays more than R*.")


if __name__ == "__main__":
    main()
