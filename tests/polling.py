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
    configuration (LocalCluster.wait_configured). A test that counts fsyncs, or measures
    the recovery log, from the start waits for the start's own writes first."""
    if not bank.wait_configured(timeout):
        raise AssertionError(f"timed out after {timeout} s waiting for the manager to "
                             "record each branch's first configuration")
