"""The coordinator's recovery under a burst of heals (issue 18 item 2), as real processes.

Rules checked:
  * D4 - no work waits on the thread pool it runs on: sixty transfers held up by a
    partition and sixty `heal` calls at once (thirty students pressing Heal) never
    wedge the coordinator; every held-up transfer finishes, and the coordinator keeps
    answering.
  * recovery runs once at a time and a burst of heals coalesces: `recover` reports
    only the decisions it really sent.

One cluster (Mumbai, Delhi, preloaded) and a coordinator in tmp_path, stopped by the
fixture. Waiting is polling with a deadline.
"""

import concurrent.futures
import pathlib
import sys

import pytest

KIT = pathlib.Path(__file__).resolve().parent.parent
if str(KIT) not in sys.path:
    sys.path.insert(0, str(KIT))

from bank.local_cluster import LocalCluster  # noqa: E402
from polling import wait_for                              # noqa: E402

pytestmark = pytest.mark.slow

HELD_UP = 60                      # transfers left unfinished by the partition
HEALS = 60                        # heal calls at once
SLOW_ACK = 0.3                    # seconds Delhi takes per call while the heals arrive


@pytest.fixture
def bank(tmp_path):
    """Mumbai and Delhi (preloaded) and a coordinator; ended by pid at teardown."""
    cluster = LocalCluster(home=tmp_path, branches=("Mumbai", "Delhi"))
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()


def unfinished(bank) -> list:
    return [t["txid"] for t in bank.coordinator(timeout=10).call("transactions", 500)
            if t["state"] not in ("committed", "aborted")]


def test_a_burst_of_heals_never_wedges_the_coordinator(bank):
    """Sixty transfers aborted by a partition wait to tell Delhi their abort; sixty heals
    at once must let every one of them finish (recovery never waits on its own pool),
    and the coordinator must keep answering transfers and `recover` meanwhile."""
    coordinator = bank.coordinator()
    coordinator.call("partition", "Delhi")
    for k in range(HELD_UP):
        outcome = coordinator.call("transfer", "Mumbai/1001", "Delhi/1002", "1.00")
        assert outcome["outcome"] == "aborted" and outcome["waiting_for"] == ["Delhi"]
    assert len(unfinished(bank)) == HELD_UP
    bank.client("Delhi").call("fault", f"delay={SLOW_ACK}")   # each abort takes a while

    with concurrent.futures.ThreadPoolExecutor(HEALS) as students:
        answers = list(students.map(
            lambda _: bank.coordinator(timeout=20).call("heal", "Delhi"), range(HEALS)))
    assert all(a["branch"] == "Delhi" and a["partitioned"] is False for a in answers)
    assert sum(a["was_partitioned"] for a in answers) == 1      # only the first ended it
    bank.client("Delhi").call("fault", "")

    wait_for(lambda: not unfinished(bank), 20, "every held-up transfer to finish")
    assert bank.coordinator(timeout=10).call("recover") == {"resent": 0, "unfinished": []}
    ok = bank.coordinator(timeout=10).call("transfer", "Mumbai/1001", "Delhi/1002", "2.00")
    assert ok["outcome"] == "committed", ok
    assert bank.client("Delhi").call("in_doubt") == []
