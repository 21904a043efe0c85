"""A flood of routed calls cannot make a transfer's retry move the money again.

Rule checked (bank/requests.py Rule 4, README "Coordinator"): the coordinator remembers
the request ids of routed operations (deposits, withdrawals, openings, local transfers)
and of cross-branch transfers apart, each memory bounded. A student who sends many
deposits, each with a fresh request id, pushes out only older routed ids: a recent
transfer's id stays, so its retry answers the first txid and outcome, and the money
moves once. (Before, one memory of 20,000 ids held both, and 20,000 student deposits
made a classmate's retried transfer run a second time.)

A transfer still open (its commit not yet acknowledged by a branch that is down) is
never forgotten, however many transfers start after it: its retry answers its txid.

The real-process tests run the coordinator with its routed memory cut to 200 ids and
its transfer memory to 20 (a wrapper around coordinator.py), so that the floods are
300 deposits and 30 transfers, not 20,000 and 10,000.
"""

import pathlib
import sys
import uuid

import pytest

KIT = pathlib.Path(__file__).resolve().parent.parent
if str(KIT) not in sys.path:
    sys.path.insert(0, str(KIT))

from bank import rpc                                        # noqa: E402
from bank.errors import BankError                           # noqa: E402
from bank.local_cluster import COORDINATOR, LocalCluster    # noqa: E402
from bank.requests import RequestRegistry                   # noqa: E402

ROUTED_KEEP = 200
TRANSFERS_KEEP = 20
WRAPPER = f"""\
import runpy, sys
sys.path.insert(0, {str(KIT)!r})
from bank import requests
requests.KEEP, requests.KEEP_TRANSFERS = {ROUTED_KEEP}, {TRANSFERS_KEEP}
sys.argv[0] = {str(KIT / "coordinator.py")!r}
runpy.run_path(sys.argv[0], run_name="__main__")
"""


def test_routed_ids_do_not_push_out_transfer_ids():
    registry = RequestRegistry(keep=5, keep_transfers=5)
    registry.record("t-1", ("transfer", "Mumbai/1001", "Delhi/1002", "100.00"), "C1-x-1")
    for k in range(50):
        registry.claim(f"d-{k}", ("deposit", "Delhi/1002", "0.01"))
    assert registry.check("t-1", ("transfer", "Mumbai/1001", "Delhi/1002", "100.00")) \
        == "C1-x-1"
    with pytest.raises(BankError):                  # Rule 1 still holds across memories
        registry.claim("t-1", ("deposit", "Delhi/1002", "0.01"))
    assert registry.lookup("d-0") is None and registry.lookup("d-49") is not None


def test_a_student_flood_of_deposits_does_not_replay_a_transfer(tmp_path):
    wrapper = tmp_path / "small_registry_coordinator.py"
    wrapper.write_text(WRAPPER, encoding="utf-8")
    cluster = LocalCluster(home=tmp_path / "home", branches=("Mumbai", "Delhi"))
    cluster.members[COORDINATOR].script = str(wrapper)      # an absolute path
    with cluster:
        student = cluster.secret.only("student")
        coord = rpc.Client(cluster.coordinator_url, student, timeout=30)
        first = coord.call("transfer", "Mumbai/1001", "Delhi/1002", "100", "victim-1")
        assert first["outcome"] == "committed"
        balance = coord.call("account", "Mumbai/1001")["balance"]
        for _ in range(ROUTED_KEEP + 100):
            coord.call("deposit", "Delhi/1002", "0.01", "flood-" + uuid.uuid4().hex[:12])
        retry = coord.call("transfer", "Mumbai/1001", "Delhi/1002", "100", "victim-1")
        assert retry["txid"] == first["txid"]
        assert coord.call("account", "Mumbai/1001")["balance"] == balance


def test_an_open_transfer_keeps_its_request_id_behind_many_later_transfers(tmp_path):
    """Rule 4: a transfer decided but still open (Delhi crashed before its commit) is
    answered by its retry with its own txid after more later transfers than the
    transfer memory holds; before, the retry started a second transaction."""
    wrapper = tmp_path / "small_registry_coordinator.py"
    wrapper.write_text(WRAPPER, encoding="utf-8")
    cluster = LocalCluster(home=tmp_path / "home", branches=("Mumbai", "Delhi"))
    cluster.members[COORDINATOR].script = str(wrapper)      # an absolute path
    with cluster:
        coord = cluster.coordinator(timeout=30)
        cluster.client("Delhi").call("fault", "crash-before-commit")
        first = coord.call("transfer", "Mumbai/1001", "Delhi/1002", "100", "stuck-1")
        assert first["outcome"] == "committed" and first["waiting_for"] == ["Delhi"]
        for k in range(TRANSFERS_KEEP + 10):        # Delhi is down: each one aborts
            coord.call("transfer", "Mumbai/1001", "Delhi/1002", "1", f"later-{k}")
        retry = coord.call("transfer", "Mumbai/1001", "Delhi/1002", "100", "stuck-1")
        assert retry["txid"] == first["txid"], (first, retry)
