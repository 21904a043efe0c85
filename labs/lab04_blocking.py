"""Lab 4: 2PC blocks. The coordinator dies after collecting the votes, before deciding.

Goal: see why a participant that voted yes must wait, and how it unblocks.
Read first: bank/core/participant.py (rule P6), bank/branch_termination.py (resolve_in_doubt), bank/twopc.py (decision, rule C7).

Scenario: Mumbai and Delhi both vote yes for a transfer, then the coordinator
crashes before deciding (fault point crash-after-prepare). Mumbai holds the money:
it cannot spend it, and it cannot give it back on its own, because Delhi might have
been told to commit. When the coordinator restarts it finds no commit record for
the txid, so the transfer is aborted (presumed abort) and the hold is released.

Steps:
  1. Run `python labs/lab04_blocking.py --step --keep`.
  2. At the pause where Mumbai is blocked, open its database:
     `sqlite3 FOLDER/data/Mumbai.db "SELECT number, balance, held FROM accounts"` (amounts
     in paise: 1000000 is 10000.00). The
     coordinator is down; the shell (`python shell.py --home FOLDER`) reads the branches
     directly: `txns in-doubt` shows what Mumbai holds and since when. Read
     `FOLDER/logs/Mumbai.log` (it says it is asking) and `FOLDER/logs/recovery.log`.
  3. Count the lines of the recovery log for the txid. Which record is missing?
  4. After the restart, find in `FOLDER/logs/coordinator.log` the recovery line ("no
     decision logged: abort") and in `FOLDER/logs/Mumbai.log` the abort it applied. Had
     the coordinator not told it, Mumbai's next question would have had the same answer.

Questions: Why may Mumbai not abort on a timeout? What would go wrong if the
coordinator answered "aborted" while it was still collecting votes? Which record in
logs/recovery.log would have made the outcome "committed"?

Run: python labs/lab04_blocking.py [--step] [--keep]     Handout: labs/lab04_blocking.md
"""

from labkit import (expect, lab_cluster, passed, show, show_log, step, total_money,
                    transfer_expecting_a_crash, wait_until)


def main():
    # Blocking, as 2PC alone has it: no asking the other branch here, even at a long
    # --step pause (that is cooperative termination, lab 15).
    with lab_cluster("lab04", branch_args=("--ask-every", "0.5",
                                             "--ask-peers-after", "3600")) as bank:
        coord, mumbai = bank.coordinator(), bank.client("Mumbai")
        before = total_money(bank)
        step(f"Total money in the bank: {before}. Arm crash-after-prepare on the coordinator.")
        coord.call("fault", "crash-after-prepare")

        step("Transfer 100 from Mumbai/1001 to Delhi/1002.")
        transfer_expecting_a_crash(bank, "Mumbai/1001", "Delhi/1002", "100")

        step("Mumbai is blocked: the transfer is prepared, the money held.")
        doubt = mumbai.call("in_doubt")
        expect(len(doubt) == 1, "one in-doubt transaction on Mumbai")
        show(f"in doubt: {doubt[0]['txid']} ops {doubt[0]['ops']}")
        expect(mumbai.call("account", "1001")["held"] == "100.00", "100.00 held on Mumbai/1001")

        show("the recovery log has no decision for it:")
        show_log(bank, doubt[0]["txid"])

        step("Restart the coordinator. Its recovery finds no decision and tells the branches "
             "abort (Mumbai would also learn it by asking).")
        bank.restart("coordinator")
        wait_until(lambda: not mumbai.call("in_doubt"), "Mumbai has nothing in doubt")
        status = mumbai.call("status", doubt[0]["txid"])
        expect(status["state"] == "aborted", "presumed abort: no commit record, so aborted")
        expect(mumbai.call("account", "1001")["held"] == "0.00", "the hold is released")
        expect(total_money(bank) == before, f"money is conserved ({before})")
    passed(4, "a yes voter waits for the decision; with no commit record, presumed abort.")


if __name__ == "__main__":
    main()
