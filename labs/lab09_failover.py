"""Lab 9: replication and failover, with a transaction in doubt.

Goal: see what must reach the backup before the primary may answer, and how a
prepared transaction survives the loss of its primary.
Read first: bank/replication.py (the write path, Rule 1), bank/core/replica.py (R1-R9), bank/core/manager.py (M1-M6), bank/branch_roles.py (promote, fence).

Scenario: every branch has a synchronous replica. Mumbai's primary votes yes and
dies before replying (crash-after-vote). Because the prepare reached the replica
before the vote, the replica holds the same promise. We fail over: the replica
becomes primary at epoch 2 and the transaction finishes there. The old primary,
restarted, is fenced.

Steps:
  1. Run `python labs/lab09_failover.py --step --keep`.
  2. At the pause after the crash, compare the replica's database with the dead primary's:
     both have the transaction `prepared` (`SELECT txid, state FROM txns` in
     `FOLDER/data/Mumbai.db` and `FOLDER/data/Mumbai-replica1.db`).
  3. After the failover, note the epoch; after the old primary restarts, read its log for
     the line that says it is fenced.

Questions: What would async replication lose here? Why does the promoted replica
get a higher epoch, and who checks it?

Run: python labs/lab09_failover.py [--step] [--keep]     Handout: labs/lab09_failover.md
"""

from labkit import expect, lab_cluster, passed, show, step, total_money, wait_until


def main():
    with lab_cluster("lab09", replicas=1, branch_args=("--ask-every", "0.5")) as bank:
        coord = bank.coordinator()
        step("Start: every branch has a synchronous replica.")
        wait_until(lambda: all(r["in_sync"] for b in coord.call("branches") for r in b["replicas"]),
                   "every replica is in sync", timeout=60)
        before = total_money(bank)
        step("Arm crash-after-vote on Mumbai's primary; transfer 40 Mumbai/1001 -> Delhi/1002.")
        bank.client("Mumbai").call("fault", "crash-after-vote")
        try:
            heard = coord.call("transfer", "Mumbai/1001", "Delhi/1002", "40")
            show(f"the client hears: {heard['outcome']} ({heard['reason']})")
        except Exception as exc:       # the coordinator may also time out: that is fine here
            show(f"the client hears: {exc}")
        expect(bank.members["Mumbai"].wait_exit(10) == 86, "Mumbai's primary crashed")

        step("The replica already holds the prepared transaction.")
        replica = bank.client("Mumbai-replica1")
        expect(len(replica.call("in_doubt")) == 1, "one prepared transaction on the replica")

        step("Fail over Mumbai to its replica.")
        result = coord.call("failover", "Mumbai")
        show(f"new primary {result['primary']} at epoch {result['epoch']}")
        wait_until(lambda: not replica.call("in_doubt"), "the transaction finished on the new primary")
        expect(total_money(bank) == before, f"money is conserved ({before})")

        step("Restart the old primary: it is fenced.")
        bank.restart("Mumbai")
        wait_until(lambda: bank.client("Mumbai").call("ping")["role"] == "fenced",
                   "the old primary knows it was replaced")
    passed(9, "a prepared transaction reached the replica before the vote, so it survives failover.")


if __name__ == "__main__":
    main()
