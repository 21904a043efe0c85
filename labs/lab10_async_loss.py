"""Lab 10: asynchronous replication loses money the bank said it had.

Goal: see the price of answering before the replica has the change. With
--async-replication the primary acknowledges a deposit at once and ships it to
its replica a moment later (with the next heartbeat, about a second). If the
primary dies in between and the replica is promoted, the acknowledged deposit is
gone: the customer holds a receipt for money the bank no longer has.
Read first: bank/replication.py (Rule 1, and "Async mode"), bank/core/replica.py
(R5: promoted only by its manager), bank/core/manager.py (M5: only a member of the
recorded in-sync set is promoted), lab 9 (the synchronous case).

Scenario: Mumbai with one replica, asynchronous. Right after a heartbeat reaches the
replica, deposit 123.00 on Mumbai/1001 (acknowledged: balance 10123.00) and pull the
plug on the primary at once. The replica is in the in-sync set the manager recorded
(an async primary never drops a replica for a change it has not shipped yet), so the
coordinator promotes it. Its Mumbai/1001
holds 10000.00. If the race is lost (a heartbeat slipped in), the lab tries again,
up to five times, and says so.

Steps:
  1. First run lab 9 (the synchronous case).
  2. Run `python labs/lab10_async_loss.py --step --keep`.
  3. At the pause after the deposit, the customer's receipt says 10123.00: write it down.
  4. After the failover, compare with the new primary's balance, and read the replica's
     journal (`FOLDER/data/Mumbai-replica1.db`, table `journal`): the deposit is not there.

Questions: Why is the replica allowed to be promoted, although it misses a change?
What would a synchronous replica have done before the deposit was acknowledged
(lab 9)? Which is worse for a bank: this loss, or a slower deposit? Could 2PC's yes
vote be made on an asynchronous replica safely?

Run: python labs/lab10_async_loss.py [--step] [--keep]     Handout: labs/lab10_async_loss.md
"""

import time

from labkit import expect, lab_cluster, passed, show, step, wait_until

from bank.core.manager import lease_wait


def deposit_and_pull_the_plug(bank):
    """Deposit right after a heartbeat, then kill the primary before the next one ships
    it. Returns the acknowledged answer, or None if a heartbeat beat us (try again)."""
    replica = bank.client("Mumbai-replica1")
    wait_until(lambda: 0 <= replica.call("replication")["follower"]["silent_for"] <= 0.2,
               "a heartbeat just reached the replica")
    started = time.monotonic()
    acked = bank.client("Mumbai").call("deposit", "1001", "123")
    bank.kill("Mumbai")
    return acked if time.monotonic() - started < 0.5 else None


def main():
    with lab_cluster("lab10", branches=("Mumbai",), replicas=1,
                     branch_args=("--ask-every", "0.5", "--async-replication")) as bank:
        coord = bank.coordinator()
        step("Mumbai's primary answers first and ships changes to its replica a moment later.")
        wait_until(lambda: all(r["in_sync"] for b in coord.call("branches") for r in b["replicas"]),
                   "the replica is in sync", timeout=60)
        show(f"synchronous: {bank.client('Mumbai').call('replication')['synchronous']}")

        step("Deposit 123.00 on Mumbai/1001, and pull the primary's plug at once.")
        for attempt in range(1, 6):
            acked = deposit_and_pull_the_plug(bank)
            if acked:
                break
            show(f"attempt {attempt}: a heartbeat slipped in; start the primary and try again")
            bank.restart("Mumbai")
            wait_until(lambda: all(r["in_sync"] for b in coord.call("branches")
                                   for r in b["replicas"]), "the replica is in sync again",
                       timeout=60)
        expect(acked is not None, "the deposit was acknowledged before it was shipped")
        show(f"the customer's receipt: Mumbai/1001 balance {acked['balance']}")

        step("Fail over Mumbai to its replica, which believes it is in sync.")
        show(f"(the coordinator first waits up to {lease_wait():.0f} s for the old primary's "
             "lease to run out: then it can take no more writes)")
        result = coord.call("failover", "Mumbai")
        show(f"new primary {result['primary']} at epoch {result['epoch']}")
        now = coord.call("account", "Mumbai/1001")["balance"]
        show(f"Mumbai/1001 on the new primary: {now}")
        expect(now != acked["balance"], f"the acknowledged {acked['balance']} is gone ({now})")
    passed(10, "asynchronous replication acknowledged a deposit that the failover lost.")


if __name__ == "__main__":
    main()
