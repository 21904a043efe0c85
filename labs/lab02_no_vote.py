"""Lab 2: a no vote. One branch refuses, and nobody applies anything.

Goal: see that a single no vote aborts the whole transfer, that a branch which voted
yes is told to abort and releases what it held, and that a no can come from the
ledger's own rules (not enough money) as well as from a branch told to refuse.
Read first: bank/core/coordinator.py (C4: any no decides abort), bank/core/participant.py
(P2: a branch that cannot apply a prepare records aborted and votes no; problem_with: when),
bank/ledger_2pc.py (prepare: the vote recorded in one SQLite write).

Scenario:
  1. Transfer 6000 from Mumbai/1002, which holds 5000.00: Mumbai votes no.
  2. Delhi is told to refuse its next prepare (fault vote-no); transfer 100 from
     Mumbai/1001 to Delhi/1002. Mumbai votes yes and holds 100.00; Delhi votes no;
     the coordinator decides abort and tells Mumbai, which releases the hold.

Steps:
  1. Run `python labs/lab02_no_vote.py --step`.
  2. At the first pause, note the reason the client hears: it comes from Mumbai's ledger.
  3. At the second pause, compare the times of the votes and of the decision: did the
     coordinator wait for both votes before it decided?
  4. At the last step, read the three recovery-log lines: which kind of record is there
     instead of `commit`? (Compare with lab 1.)

Questions: The kit's coordinator waits for every vote (or its timeout) before it
decides (bank/core/coordinator.py, decide): would it be safe to decide abort at the
first no, and what would it gain? Mumbai records "aborted" when it votes no (P2):
what would go wrong if a crash lost that record, and what if it lost a "prepared"
record (a yes)? What does presumed abort save here?

Run: python labs/lab02_no_vote.py [--step] [--keep]     Handout: labs/lab02_no_vote.md
"""

from labkit import expect, lab_cluster, passed, show, show_log, step, total_money


def votes(bank, txid: str) -> str:
    """The votes in the order they arrived, then the decision, each with its time (ms
    since the transfer began), from the coordinator's trace."""
    trace = bank.coordinator().call("transaction", txid)["trace"]
    return "; ".join(f"[{m['ms']} ms] {m['from']} votes {m['detail'].split(':')[0]}"
                     if m["msg"] == "vote" else
                     f"[{m['ms']} ms] the coordinator decides {m['detail'].split(':')[0]}"
                     for m in trace if m["msg"] in ("vote", "decision"))


def main():
    with lab_cluster("lab02") as bank:
        coord, mumbai = bank.coordinator(), bank.client("Mumbai")
        before = total_money(bank)
        step("Transfer 6000 from Mumbai/1002 (it holds 5000.00) to Delhi/1001.")
        result = coord.call("transfer", "Mumbai/1002", "Delhi/1001", "6000")
        show(f"the client hears: {result['outcome']} ({result['reason']})")
        show(f"votes: {votes(bank, result['txid'])}")
        expect(result["outcome"] == "aborted", "Mumbai's no vote aborted the transfer")

        step("Arm vote-no on Delhi; transfer 100 from Mumbai/1001 to Delhi/1002.")
        bank.client("Delhi").call("fault", "vote-no")
        result = coord.call("transfer", "Mumbai/1001", "Delhi/1002", "100")
        show(f"the client hears: {result['outcome']} ({result['reason']})")
        show(f"votes: {votes(bank, result['txid'])}")
        expect(result["outcome"] == "aborted", "Delhi's no vote aborted the transfer")

        step("Mumbai had voted yes: it was told to abort, and released its hold.")
        expect(mumbai.call("status", result["txid"])["state"] == "aborted", "Mumbai aborted it")
        expect(mumbai.call("account", "1001")["held"] == "0.00", "nothing is held on Mumbai/1001")
        show("the recovery log (an abort is not forced: presumed abort):")
        show_log(bank, result["txid"])
        expect(total_money(bank) == before, f"no money moved ({before})")
    passed(2, "one no vote aborts everywhere; a yes voter is told and releases its hold.")


if __name__ == "__main__":
    main()
