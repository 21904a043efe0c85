"""Lab 7: what asynchronous replication loses, and what synchronous replication keeps.

Goal: see an acknowledged deposit disappear in a failover when the primary answers
before its replica has the change (--async-replication, the lesson mode), and see
the same sequence keep it in the default, synchronous mode.
Read first: bank/replication.py (Rules 1-4), bank/config_manager.py (M1-M6),
bank/core/replica.py (R5, R7, R8).

Scenario, run twice (async, then synchronous): right after a heartbeat reached the
replica, deposit 123.00 into Mumbai/1001 on the primary (acknowledged), kill -9 the
primary at once, fail over to the replica, and look for the deposit.

Questions: In async mode the replica was in the recorded in-sync set, yet it lacked
an acknowledged write: which rule of replication.py does async mode break? In
synchronous mode, what would have happened if the replica had not answered the push
(hint: R7, and the configuration manager)?

Run: python labs/lab7_async_loses.py
"""

import time

from labkit import LocalCluster, expect, fresh_home, show, step, wait_until


def deposit_then_kill(bank) -> str:
    """Deposit right after a heartbeat, kill the primary before the next one; the
    balance the client was told."""
    replica = bank.client("Mumbai-replica1")
    for _ in range(5):
        wait_until(lambda: 0 <= replica.call("replication")["follower"]["silent_for"] <= 0.2,
                   "a heartbeat just arrived")
        started = time.monotonic()
        told = bank.client("Mumbai").call("deposit", "1001", "123.00")["balance"]
        if time.monotonic() - started < 0.3:
            bank.kill("Mumbai")
            return told
    raise SystemExit("could not deposit quickly enough after a heartbeat; run it again")


def run(mode_args: tuple, label: str) -> tuple:
    with LocalCluster(home=fresh_home(f"lab6-{label}"), branches=("Mumbai",), replicas=1,
                      branch_args=mode_args) as bank:
        coord = bank.coordinator()
        wait_until(lambda: coord.call("configuration", "Mumbai").get("in_sync"),
                   "the replica is recorded in sync by the configuration manager")
        told = deposit_then_kill(bank)
        show(f"{label}: the client was told Mumbai/1001 = {told}; the primary is killed")
        result = coord.call("failover", "Mumbai")
        show(f"{label}: failover to {result['primary']} at epoch {result['epoch']}")
        now = bank.client("Mumbai-replica1").call("account", "1001")["balance"]
        show(f"{label}: the new primary says Mumbai/1001 = {now}")
        return told, now


def main():
    step("Async mode (--async-replication): the primary answers first, ships later.")
    told, now = run(("--async-replication",), "async")
    expect(told != now, "async mode LOST the acknowledged deposit (the lesson)")
    step("Synchronous mode (the default): the replica has it before the client hears.")
    told, now = run((), "sync")
    expect(told == now, "synchronous mode kept the acknowledged deposit")
    print("\nLab 7 passed.")


if __name__ == "__main__":
    main()
