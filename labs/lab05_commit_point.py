"""Lab 5: the commit point. The coordinator dies right after logging "commit".

Goal: see that once the commit record is on disk, the transfer WILL commit, even
though no participant has heard of it yet.
Read first: bank/core/coordinator.py (rules C3, C8), bank/recovery_log.py (Rule 1),
bank/twopc.py (_run_two_phase_commit, and recover() for the restart).

Scenario: both branches vote yes; the coordinator forces "commit" to its log and
crashes before sending a single commit (crash-after-decision). Both branches are in
doubt. On restart the coordinator reads its log, finds commit without end, and
re-sends commit; both branches apply the transfer exactly once.

Steps:
  1. Run `python labs/lab05_commit_point.py --step --keep`.
  2. At the pause after the crash, read the recovery log lines printed: `begin`, then `commit`,
     and no `end`. Both branches are prepared: neither has heard "commit".
  3. After the restart, read `FOLDER/logs/coordinator.log`: find where recovery re-sends commit.
  4. At the last pause (after the restart; the cluster still runs), check both journals
     (`journal Mumbai/1001` in the shell, with `--home FOLDER`): one debit and one credit,
     each once.

Questions: Open logs/recovery.log in the lab's folder (the coordinator compacts it at
each start, Rule 4: the lines from before the restart are in logs/recovery.history.log):
which lines tell the story?
Why must the commit record be fsynced, but the begin record need not be?

Run: python labs/lab05_commit_point.py [--step] [--keep]     Handout: labs/lab05_commit_point.md
"""

from labkit import (expect, lab_cluster, log_lines, passed, show_log, step,
                    total_money, transfer_expecting_a_crash, wait_until)


def main():
    # Blocking, as 2PC alone has it: no asking the other branch here, even at a long
    # --step pause (that is cooperative termination, lab 15).
    with lab_cluster("lab05", branch_args=("--ask-every", "0.5",
                                             "--ask-peers-after", "3600")) as bank:
        coord = bank.coordinator()
        before = total_money(bank)
        step("Arm crash-after-decision on the coordinator; transfer 250 Mumbai/1001 -> Delhi/1002.")
        coord.call("fault", "crash-after-decision")
        transfer_expecting_a_crash(bank, "Mumbai/1001", "Delhi/1002", "250")

        step("Both branches are in doubt; the log already says commit.")
        for name in ("Mumbai", "Delhi"):
            expect(len(bank.client(name).call("in_doubt")) == 1, f"{name} has one transaction in doubt")
        txid = bank.client("Mumbai").call("in_doubt")[0]["txid"]
        show_log(bank, txid)
        expect(any(line.split()[1] == "commit" for line in log_lines(bank, txid)),
               "a commit record for it in logs/recovery.log")

        step("Restart the coordinator: recovery re-sends commit.")
        bank.restart("coordinator")
        for name in ("Mumbai", "Delhi"):
            wait_until(lambda n=name: not bank.client(n).call("in_doubt"), f"{name} resolved")
        expect(bank.client("Mumbai").call("account", "1001")["balance"] == "9750.00",
               "Mumbai/1001 was debited once (9750.00)")
        expect(bank.client("Delhi").call("account", "1002")["balance"] == "5250.00",
               "Delhi/1002 was credited once (5250.00)")
        expect(total_money(bank) == before, f"money is conserved ({before})")
    passed(5, "once the commit record is forced, the transfer commits, even after a crash.")


if __name__ == "__main__":
    main()
