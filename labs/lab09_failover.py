"""Lab 9: replication and failover, with a transaction in doubt.

Goal: see what must reach the backup before the primary may answer, and how a
prepared transaction survives the loss of its primary.
Read first: bank/replication.py (the write path, Rule 1), bank/core/replica.py (R1-R9), bank/core/manager.py (M1-M6), bank/branch_roles.py (promote, fence).

Scenario: every branch has a synchronous replica. Both branches vote yes, the
coordinator decides commit, and Mumbai's primary dies as the commit arrives, before
applying it (crash-before-commit): the client hears "committed", waiting for Mumbai.
Because the prepare reached the replica before the vote, the replica holds the same
promise: the money held for the debit. We fail over: the replica becomes primary at
epoch 2, the coordinator's commit (re-sent until acknowledged) reaches it, and it
applies the debit. The old primary, restarted, is fenced.

Steps:
  1. Run `python labs/lab09_failover.py --step --keep`.
  2. At the pause after the crash, compare the replica's database with the dead primary's:
     both have the transaction `prepared` (`SELECT txid, state FROM txns` in
     `FOLDER/data/Mumbai.db` and `FOLDER/data/Mumbai-replica1.db`), its 40.00 held
     (`SELECT number, held FROM accounts`: amounts are kept in paise, so 4000).
  3. After the failover, note the epoch; after the old primary restarts, read its log for
     the line that says it is fenced. (In a shell attached to the kept cluster,
     `restart Mumbai --rejoin` then makes the old primary a replica again. The window,
     `python gui_tk.py --home FOLDER`, does the same from its Lab tab, where each
     server's row says what it does now: Rejoin in Mumbai's row; then fail back by
     crashing Mumbai-replica1 in its own row and pressing Failover in Mumbai's.)

Questions: What would async replication lose here? Why does the promoted replica
get a higher epoch, and who checks it?

Run: python labs/lab09_failover.py [--step] [--keep]     Handout: labs/lab09_failover.md
"""

from labkit import expect, lab_cluster, passed, show, step, total_money, wait_until

from bank.core.manager import lease_wait


def main():
    with lab_cluster("lab09", replicas=1, branch_args=("--ask-every", "0.5")) as bank:
        coord = bank.coordinator()
        step("Start: every branch has a synchronous replica.")
        wait_until(lambda: all(r["in_sync"] for b in coord.call("branches") for r in b["replicas"]),
                   "every replica is in sync", timeout=60)
        before = total_money(bank)
        step("Arm crash-before-commit on Mumbai's primary; transfer 40 Mumbai/1001 -> Delhi/1002.")
        bank.client("Mumbai").call("fault", "crash-before-commit")
        heard = coord.call("transfer", "Mumbai/1001", "Delhi/1002", "40")
        show(f"the client hears: {heard['outcome']}, waiting for {', '.join(heard['waiting_for'])}")
        expect(heard["outcome"] == "committed", "the coordinator decided commit")
        expect(bank.members["Mumbai"].wait_exit(10) == 86, "Mumbai's primary crashed before applying it")

        step("The replica already holds the prepared transaction: the debit's 40.00 is held.")
        replica = bank.client("Mumbai-replica1")
        expect([t["txid"] for t in replica.call("in_doubt")] == [heard["txid"]],
               "the transaction is prepared on the replica")
        expect(replica.call("account", "1001")["held"] == "40.00", "40.00 is held on the replica")

        step("Fail over Mumbai to its replica; the coordinator's commit reaches the new primary.")
        show(f"(the coordinator first waits up to {lease_wait():.0f} s for the old primary's "
             "lease to run out: then it can take no more writes)")
        result = coord.call("failover", "Mumbai")
        show(f"new primary {result['primary']} at epoch {result['epoch']}")
        wait_until(lambda: replica.call("status", heard["txid"])["state"] == "committed",
                   "the transaction committed on the new primary")
        account = replica.call("account", "1001")
        expect((account["balance"], account["held"]) == ("9960.00", "0.00"),
               "Mumbai/1001 is 9960.00 there, nothing held: the debit applied once")
        expect(total_money(bank) == before, f"money is conserved ({before})")

        step("Restart the old primary: it is fenced.")
        bank.restart("Mumbai")
        wait_until(lambda: bank.client("Mumbai").call("ping")["role"] == "fenced",
                   "the old primary knows it was replaced")
    passed(9, "the prepare reached the replica before the vote, so a decided commit survives failover.")


if __name__ == "__main__":
    main()
