"""Polling with a deadline, shared by the tests: never sleep to wait for something."""

import time

from bank.errors import BankError


def wait_for(predicate, timeout, what, interval=0.1):
    """Poll predicate() until it returns something truthy; fail after `timeout` s.

    A BankError (a member still restarting, say) counts as "not yet".
    """
    deadline = time.monotonic() + timeout
    last = None
    while True:
        try:
            last = predicate()
            if last:
                return last
        except BankError as exc:
            last = exc
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}; "
                                 f"last seen: {last!r}")
        time.sleep(interval)


def wait_configured(bank, timeout=30):
    """Wait until the configuration manager has recorded each branch's first
    configuration (a LocalCluster `bank`).

    A cluster's start returns before that: a moment later the coordinator tells each
    branch who its manager is (a COMMIT at the branch), and the branch's first lease
    request is recorded (a forced line in recovery.log). A test that counts fsyncs, or
    measures the recovery log, from the start waits for these first, or counts them too.
    """
    coordinator = bank.coordinator()
    wait_for(lambda: all(coordinator.call("configuration", name)
                         for name in bank.branch_names),
             timeout, "the manager to record each branch's first configuration")
