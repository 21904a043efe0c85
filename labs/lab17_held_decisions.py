"""Lab 17: phase 2 off the client's path. Decisions held for company.

Goal: see the client answered at the commit point, before any branch has heard the
decision; see a held commit ride the next transfer's prepare to its branch (one
message and one fsync for both); and count what that saves, and what it costs.
Read first: bank/batching.py (B5, B6: send_or_post, _TakingHeld, _send_held_in_time),
bank/twopc.py (D1, D3), README "Decisions held for company", lab 12 (fsyncs).

Scenario: the coordinator runs with --hold-decisions 3000: a commit for a branch with
nothing on its way waits up to 3 s for the next message to that branch. (The branches
ask about a transaction in doubt only every 30 s here, so they do not end the wait
themselves; the default is every 2 s.) First transfer (7.00, Mumbai/1001 ->
Delhi/1002): the client hears "committed" with both branches in waiting_for, while
both branches, asked directly, are still prepared. At once, a second transfer (8.00,
back): its prepares take the held commits along; once it is answered, the first
transfer is committed at both branches, and the second is prepared. Nothing else
comes: 3 s later its commits leave alone. Then ten transfers in a row, counted: messages and
fsyncs per transfer. Last, a read of Delhi through the coordinator sends what is held
for Delhi first, so it sees the transfer it was just told about; Mumbai's commit stays
held until its time is over.

Steps:
  1. Run `python labs/lab17_held_decisions.py --step --keep`.
  2. At the second pause (nothing is held then: a new shell adds up the bank's money
     through the coordinator, which sends what is held, as step 4 shows), run
     `python shell.py --home FOLDER -c "show TXID"` with each transfer's txid. Each
     diagram counts ms from its own begin: the first one's commits are marked "held for
     company, then sent (B6)" a few ms after its commit point, when the second transfer's
     prepares took them along (step 1 printed when); the second's left alone, about
     3000 ms after its commit point.
  3. Compare step 3's numbers with a transfer whose decisions go alone: 5 messages
     (the client's call, 2 prepares, 2 commits) and 5 fsyncs (lab 14: the forced
     commit record and 2 COMMITs at each branch).
  4. In bank/batching.py, find where a prepare takes the held decisions along, and
     where the line's own thread sends them alone.

Questions: Why may the coordinator answer "committed" before any branch has heard the
decision? In step 1, what did the one call to each branch carry, and how many fsyncs
did each branch make for it? Why is it safe to delay phase 2 for seconds, and what
happens to a held commit if the coordinator crashes? What does a client (or a student
reading a branch directly) see differently when decisions are held? Why does the kit
not hold decisions by default, and why would a real system hold them for
milliseconds, not seconds?

Run: python labs/lab17_held_decisions.py [--step] [--keep]     Handout: labs/lab17_held_decisions.md
"""

from labkit import (branch_total, expect, lab_cluster, options, parse_amount, passed, show,
                    step, wait_until)

from bank.counters import per_transfer, totals
from bank.views import rides_text

HOLD_MS = 3000
BOTH = ("Mumbai", "Delhi")
PAIR = ("Mumbai/1001", "Delhi/1002")


def states(bank, txid: str) -> dict:
    """Each branch's state of txid, asked of the branch itself (this holds nothing up)."""
    return {name: bank.client(name).call("status", txid)["state"] for name in BOTH}


def show_commits(coordinator, txid: str) -> list:
    """Print the commit and ack rows of txid's trace (a commit's time is when it left);
    the commits' times, in ms from the transaction's start."""
    trace = coordinator.call("transaction", txid)["trace"]
    for row in trace:
        if row["msg"] in ("commit", "ack"):
            show(f"at {row['ms']:>4} ms: {row['from']} -> {row['to']}: {row['msg']}  "
                 f"{rides_text(row)}".rstrip())
    expect(all(r.get("rides") == "held" and r.get("left") for r in trace
               if r["msg"] == "commit"), "the trace says both commits were held, then sent")
    return [row["ms"] for row in trace if row["msg"] == "commit"]


def counted(bank) -> dict:
    """The bank's counters now (bank/counters.py), as the shell's `counters` reads them."""
    coordinator = bank.coordinator()
    branches = {b["name"]: b.get("counters", {}) for b in coordinator.call("branches")}
    return totals(coordinator.call("ping")["counters"], branches)


def main():
    with lab_cluster("lab17", coordinator_args=("--hold-decisions", str(HOLD_MS)),
                     branch_args=("--ask-every", "30")) as bank:
        coordinator = bank.coordinator()
        before = branch_total(bank)
        show(f"coordinator at {bank.coordinator_url}, decisions held up to {HOLD_MS} ms")
        step("A transfer is answered at the commit point; the next one takes its commits "
             "along.")
        first = coordinator.call("transfer", *PAIR, "7.00")
        show(f"first transfer {first['txid']}: the client hears {first['outcome']}, "
             f"waiting for {first['waiting_for']}")
        expect(first["outcome"] == "committed" and first["waiting_for"] == ["Delhi", "Mumbai"],
               "committed, with both branches still to be told")
        expect(states(bank, first["txid"]) == {"Mumbai": "prepared", "Delhi": "prepared"},
               "both branches, asked directly, are still prepared")
        expect(bank.client("Mumbai").call("account", "1001")["held"] == "7.00",
               "Mumbai/1001 still holds the 7.00")
        second = coordinator.call("transfer", *PAIR[::-1], "8.00")
        show(f"second transfer {second['txid']}: {second['outcome']}")
        expect(states(bank, first["txid"]) == {"Mumbai": "committed", "Delhi": "committed"},
               "the first transfer is committed at both branches")
        expect(states(bank, second["txid"]) == {"Mumbai": "prepared", "Delhi": "prepared"},
               "the second is prepared, its own commits held in turn")
        rode = show_commits(coordinator, first["txid"])
        expect(all(ms < HOLD_MS for ms in rode),
               "the first transfer's commits rode the second's prepares, long before "
               "their hold was over")

        step("Nothing else comes: the held commits leave alone when the hold is over.")
        wait_until(lambda: states(bank, second["txid"]) == {"Mumbai": "committed",
                                                            "Delhi": "committed"},
                   "the second transfer is committed at both branches", HOLD_MS / 1000 + 20)
        alone = show_commits(coordinator, second["txid"])
        if not options().step:           # a pause, or a new shell, may have sent them
            expect(all(ms >= HOLD_MS for ms in alone),
                   f"they left alone once their {HOLD_MS} ms were over")
        else:                            # say so: the handout's transcript has that ok line
            show(f"(--step: the check that they left alone once their {HOLD_MS} ms were "
                 "over is left out: a pause, or a new shell, may have sent them sooner)")

        step("Ten transfers in a row: messages and fsyncs per transfer.")
        start = counted(bank)
        outcomes = [coordinator.call("transfer", *(PAIR if n % 2 else PAIR[::-1]),
                                     "1.00")["outcome"] for n in range(10)]
        expect(outcomes == ["committed"] * 10, "all ten committed")
        rows = {what: value for what, value, _ in per_transfer(counted(bank), start)}
        for what in ("messages per transfer", "fsyncs per transfer"):
            show(f"{what}: {rows[what]}")
        expect(float(rows["messages per transfer"]) < 4,
               "fewer than 4 messages per transfer (5 when each decision goes alone)")

        step("A read through the coordinator sends what is held for its branch first.")
        had = coordinator.call("account", "Delhi/1002")["balance"]
        last = coordinator.call("transfer", *PAIR, "5.00")
        seen = coordinator.call("account", "Delhi/1002")["balance"]
        show(f"Delhi/1002: {had} before, {seen} read right after the answer")
        expect(parse_amount(seen) == parse_amount(had) + parse_amount("5.00"),
               "the read sees the 5.00 the client was just told about")
        expect(states(bank, last["txid"]) == {"Mumbai": "prepared", "Delhi": "committed"},
               "the read sent Delhi its held commit; Mumbai's is still held")
        wait_until(lambda: states(bank, last["txid"])["Mumbai"] == "committed",
                   "Mumbai's commit left alone when its hold was over", HOLD_MS / 1000 + 20)
        expect(branch_total(bank) == before, f"the bank still holds {before}")
    passed(17, "the client may hear the outcome at the commit point; phase 2 can wait, and "
               "share a message with the next transfer.")


if __name__ == "__main__":
    main()
