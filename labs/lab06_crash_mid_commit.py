"""Lab 6: crash in the middle of commit. One branch committed, the other waits.

Goal: see the window in which a transfer is half applied (Delhi has the credit,
Mumbai still holds the debit), why that is not a broken bank, and how recovery
closes it: the decision is in the log, so it is re-sent until every branch has it.
Read first: bank/twopc.py (the commit phase, and where crash-mid-commit sits),
bank/core/coordinator.py (C5, C8), bank/core/participant.py (P6: the in-doubt
branch asks), bank/recovery_log.py (Rule 1).

Scenario: both branches vote yes; the coordinator forces "commit", sends it to
Delhi, and dies before Mumbai hears it (crash-mid-commit). Delhi committed: its
balance is already 5007.00. Mumbai is prepared and holds 7.00: it asks the
coordinator every half second and gets no answer. Counted naively, the bank holds
7.00 more than it should. The coordinator restarts, reads "commit" without "end",
and re-sends commit: Mumbai applies the debit, the total is right again.

Steps:
  1. Run `python labs/lab06_crash_mid_commit.py --step --keep`.
  2. At the pause "Half applied", add up the balances yourself from both databases
     (`SELECT number, balance, held FROM accounts` in `FOLDER/data/Mumbai.db` and `Delhi.db`;
     amounts in paise: 1000000 is 10000.00).
  3. Explain the extra 7.00: where is it, and who could spend it?
  4. After the restart, check that Delhi's journal has exactly one credit for the txid.

Questions: Between the crash and the restart, is the money "created" real? Who
could spend it? Why may Mumbai not abort, although the coordinator is down? Delhi
answers the re-sent commit "again": which row of the participant's table
(bank/core/participant.py) makes it so, and what does Delhi read to know it?

Run: python labs/lab06_crash_mid_commit.py [--step] [--keep]     Handout: labs/lab06_crash_mid_commit.md
"""

from labkit import (branch_total, expect, lab_cluster, passed, show, show_log, step,
                    transfer_expecting_a_crash, wait_until)


def main():
    # Blocking, as 2PC alone has it: no asking the other branch here, even at a long
    # --step pause (that is cooperative termination, lab 15).
    with lab_cluster("lab06", branch_args=("--ask-every", "0.5",
                                             "--ask-peers-after", "3600")) as bank:
        coord, mumbai, delhi = bank.coordinator(), bank.client("Mumbai"), bank.client("Delhi")
        before = branch_total(bank)
        step(f"The bank holds {before}. Arm crash-mid-commit; transfer 7 Mumbai/1001 -> Delhi/1002.")
        coord.call("fault", "crash-mid-commit")
        transfer_expecting_a_crash(bank, "Mumbai/1001", "Delhi/1002", "7")
        [txn] = mumbai.call("in_doubt")
        txid = txn["txid"]

        step("Half applied: Delhi committed, Mumbai is prepared and holds the debit.")
        expect(delhi.call("status", txid)["state"] == "committed", "Delhi committed (5007.00)")
        expect(mumbai.call("status", txid)["state"] == "prepared", "Mumbai is still prepared")
        expect(mumbai.call("account", "1001")["held"] == "7.00", "7.00 is held on Mumbai/1001")
        show(f"the branches' balances add up to {branch_total(bank)} (7.00 counted on both sides)")
        show("the recovery log: commit is there, end is not:")
        show_log(bank, txid)

        step("Restart the coordinator: recovery re-sends commit; Mumbai applies the debit.")
        bank.restart("coordinator")
        wait_until(lambda: mumbai.call("status", txid)["state"] == "committed", "Mumbai committed")
        expect(mumbai.call("account", "1001")["balance"] == "9993.00", "Mumbai/1001 is 9993.00")
        wait_until(lambda: _ack_from(bank, txid, "Delhi"), "Delhi acknowledged the re-sent commit")
        delhi_ack = _ack_from(bank, txid, "Delhi")
        show(f"Delhi's answer, in the coordinator's trace (`show`): ack {delhi_ack}")
        expect("again" in delhi_ack, "Delhi had applied it already, so it did nothing (P3)")
        expect(delhi.call("account", "1002")["balance"] == "5007.00",
               "Delhi/1002 is 5007.00: the credit was applied once")
        expect(branch_total(bank) == before, f"the total is right again ({before})")
    passed(6, "a half-applied commit is finished by recovery, because the decision was logged first.")


def _ack_from(bank, txid: str, branch: str) -> str:
    """What `branch` said when it acknowledged the decision, from the coordinator's
    trace of txid ("" until it has)."""
    trace = bank.coordinator().call("transaction", txid)["trace"]
    return next((row["detail"] for row in trace
                 if row["from"] == branch and row["msg"] == "ack"), "")


if __name__ == "__main__":
    main()
