"""The primary's and the replica's bookkeeping, in one process on a real SQLite file.

Rules checked (bank/replication.py):
  * Rule 3 - the set of replicas the manager may list (``in_set``) is changed one
    change at a time: a join and a drop of two replicas at once both stay, in memory
    and on disk (a lost join would let the primary drop a listed replica silently);
  * Rule 1 - a replica applies a push of several changes in one COMMIT (one fsync),
    and answers only once they are durable;
  * S1 (bank/config_manager.py) - configuration changes are one at a time per branch;
  * a closed ledger leaves no connection open (its file can then be set aside);
  * a replica whose history differs anywhere before its last change (not only at it)
    is told it diverged when it attaches, and copies the primary again.
"""

import json
import pathlib
import threading
import time
import types

import pytest

from bank.core.messages import Role
from bank.branch_roles import ManagerLink
from bank.core.replica import BranchRole
from bank.ledger import Ledger
from bank.replication import Follower, ReplicaLink, Replicas
from polling import wait_for

A, B = "http://127.0.0.1:1", "http://127.0.0.1:2"


def _branch(tmp_path, name="Mumbai"):
    """What Replicas and Follower read of their branch: its name, ledger and secret."""
    return types.SimpleNamespace(name=name, url="http://127.0.0.1:3", secret=None, epoch=1,
                                 ledger=Ledger(tmp_path / f"{name}.db", name))


def test_a_join_and_a_drop_at_once_both_stay_in_the_in_set(tmp_path):
    """Rule 3: adding replica A while replica B is removed (each under its own link's
    lock) leaves {A}, on disk too; neither change overwrites the other."""
    branch = _branch(tmp_path)
    slow_set_meta = branch.ledger.set_meta

    def set_meta(**values):                    # widen the window a race would need
        time.sleep(0.005)
        slow_set_meta(**values)

    branch.ledger.set_meta = set_meta
    for _ in range(10):
        branch.ledger.set_meta(in_set=json.dumps([B]))
        replicas = Replicas(branch)
        threads = [threading.Thread(target=replicas._change_in_set, kwargs={"add": A}),
                   threading.Thread(target=replicas._change_in_set, kwargs={"remove": B})]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert replicas.in_set == {A}
        assert json.loads(branch.ledger.meta("in_set")) == [A]


def test_a_push_of_many_changes_costs_the_replica_one_commit(tmp_path):
    """Rule 1 at the replica: the changes of one push are applied in order and made
    durable by one COMMIT, before the answer names them applied."""
    (tmp_path / "r").mkdir()
    primary, replica = _branch(tmp_path), _branch(tmp_path / "r")
    for n in range(5):
        primary.ledger.open_account(f"Owner {n}", 1000)
    changes = [list(change) for change in primary.ledger.changes_since(0, 100)]
    follower = Follower(replica, primary.url)
    before = replica.ledger.counters()["fsyncs"]
    answer = follower.receive(changes, len(changes), [])
    assert answer["applied"] == len(changes) == 5
    assert replica.ledger.counters()["fsyncs"] - before == 1
    assert [a["owner"] for a in replica.ledger.accounts()] == [f"Owner {n}" for n in range(5)]


def test_a_failover_waiting_out_one_lease_does_not_hold_up_another_branch(tmp_path):
    """S1 (bank/config_manager.py): configuration changes are one at a time per branch.
    While a failover of Mumbai waits out its old primary's lease (M4, seconds), Delhi's
    primary still renews its lease at once, so it keeps serving writes."""
    from bank.config_manager import ConfigManager
    from bank.recovery_log import RecoveryLog
    servers = {"Mumbai": ["http://m:1", "http://m:2"], "Delhi": ["http://d:1", "http://d:2"]}
    links = {name: types.SimpleNamespace(urls=urls) for name, urls in servers.items()}
    log = RecoveryLog(tmp_path / "recovery.log")
    manager = ConfigManager(log, links)
    for name, (primary, replica) in servers.items():
        version = manager.lease(name, primary, 1)["version"]
        manager.add_replica(name, primary, 1, replica, version)
    version = manager.config("Mumbai")["version"]
    failover = threading.Thread(target=manager.install, args=("Mumbai", "http://m:2", version))
    failover.start()
    try:
        wait_for(lambda: manager._lock_of("Mumbai").locked(), 5,
                 "the failover to take Mumbai's lock and wait out its lease")
        started = time.monotonic()
        manager.lease("Delhi", "http://d:1", 1)
        assert time.monotonic() - started < 1.0
        assert failover.is_alive()
    finally:
        failover.join(30)
        log.close()
    assert manager.config("Mumbai")["primary"] == "http://m:2"


@pytest.mark.skipif(not pathlib.Path("/proc/self/fd").is_dir(), reason="reads /proc/self/fd")
def test_closing_a_ledger_closes_every_threads_connection(tmp_path):
    """A closed ledger holds its database files open nowhere, the readers of other
    threads included: on Windows an open file cannot be renamed, and a fenced primary
    restarted as a replica sets its database aside by renaming it."""
    branch = _branch(tmp_path)
    reader = threading.Thread(target=branch.ledger.applied_seq)
    reader.start()
    reader.join()
    branch.ledger.meta("role")                     # this thread's reader too
    branch.ledger.close()
    still_open = [fd for fd in pathlib.Path("/proc/self/fd").iterdir()
                  if str(tmp_path) in str(_target(fd))]
    assert not still_open


def _target(fd: pathlib.Path) -> str:
    try:
        return str(fd.readlink())
    except OSError:
        return ""


def test_a_replica_replays_an_account_number_older_rules_accepted(tmp_path):
    """A replica replays what its primary accepted: an account opened as "0123" before
    numbers with a leading zero were refused is copied, not refused for ever (the
    replica would never get past that change, never be in sync)."""
    replica = _branch(tmp_path)
    change = json.dumps(["open_account", ["Old Rules", 500, "0123", ""]])
    assert replica.ledger.apply_changes([[1, change]]) == 1
    assert replica.ledger.applied_seq() == 1
    assert replica.ledger.account("0123")["owner"] == "Old Rules"


def test_nobody_hears_of_a_configuration_before_its_record_is_forced(tmp_path):
    """M1 at the service: while a change's record is being forced, config() (what the
    `configuration` RPC and the manager's own rounds read) still gives the recorded
    configuration; if the record fails, the change never was."""
    from bank.config_manager import ConfigManager
    from bank.recovery_log import RecoveryLog
    links = {"Mumbai": types.SimpleNamespace(urls=["http://m:1", "http://m:2"])}
    log = RecoveryLog(tmp_path / "recovery.log")
    manager = ConfigManager(log, links)
    manager.lease("Mumbai", "http://m:1", 1)
    recorded = manager.config("Mumbai")
    seen_while_forcing = []

    def failing_config(branch, data):
        seen_while_forcing.append(manager.config(branch))
        raise OSError(5, "Input/output error")
    log.config = failing_config
    try:
        manager.add_replica("Mumbai", "http://m:1", 1, "http://m:2", recorded["version"])
    except OSError:
        pass
    finally:
        log.close()
    assert seen_while_forcing == [recorded] and recorded["in_sync"] == []
    assert manager.config("Mumbai") == recorded


def test_a_history_that_differs_before_its_last_change_is_detected(tmp_path):
    """bank/ledger_replog.py: two histories are compared by a fingerprint of every change
    up to a point. A replica whose second change differs from the primary's, but whose
    last change is the same (two deposits of 1.00 with no request id), is told
    "diverged" when it attaches (the last change alone would have matched); a replica
    with the primary's very history is not. The kept digest gives the same fingerprint
    as one counted from the start, and reset() forgets it."""
    (tmp_path / "r").mkdir()
    primary, replica = _branch(tmp_path), _branch(tmp_path / "r")
    for ledger, middle in ((primary.ledger, "deposit"), (replica.ledger, "withdraw")):
        ledger.open_account("Owner", 1000_00)
        getattr(ledger, middle)("1001", 200_00)
        ledger.deposit("1001", 1_00)
    assert primary.ledger.changes_since(2) == replica.ledger.changes_since(2)   # last: same
    replicas = Replicas(primary)
    answer = replicas.attach(A, 3, replica.ledger.history_hash(3))
    assert answer["diverged"]
    assert replicas.links[A].acked == 0                     # it starts over from change 1

    (tmp_path / "same").mkdir()
    twin = _branch(tmp_path / "same")
    twin.ledger.apply_changes(primary.ledger.changes_since(0))
    assert not replicas.attach(B, 3, twin.ledger.history_hash(3))["diverged"]
    assert twin.ledger.history_hash(2) == primary.ledger.history_hash(2)   # an earlier point
    assert twin.ledger.history_hash(3) == primary.ledger.history_hash(3)   # kept, then on
    assert twin.ledger.history_hash(4) == ""                               # not in this history
    twin.ledger.reset()
    assert twin.ledger.history_hash(1) == ""


# ---- R4 / Rule 5: a push carries an epoch its sender was the primary at ------------------

class _Watched(BranchRole):
    """A BranchRole that notes (role, epoch) as another thread could read them after
    every attribute it writes."""

    def __setattr__(self, name, value):
        super().__setattr__(name, value)
        seen = self.__dict__.setdefault("seen", [])
        try:
            seen.append((self.role, self.epoch))
        except (AttributeError, IndexError, TypeError):
            pass                                   # not all set yet (in __init__)


def test_a_fenced_primary_is_never_seen_as_the_primary_of_the_epoch_it_learned():
    """R4: a primary that learns a higher epoch adopts it and is fenced in ONE step: a
    thread reading the role and the epoch meanwhile sees (primary, old epoch) or
    (fenced, new epoch), never (primary, new epoch) - with that pair a push would go
    out at the new epoch, which the new primary's replicas take (R3)."""
    role = _Watched(Role.PRIMARY, 1)
    role.seen = []
    role.on_higher_epoch(2, B)
    assert (Role.PRIMARY, 2) not in role.seen, role.seen
    assert (role.role, role.epoch, role.push_epoch()) == (Role.FENCED, 2, 0)
    promoted = _Watched(Role.REPLICA, 2, A)
    promoted.seen = []
    promoted.on_promote(3)
    assert (Role.PRIMARY, 2) not in promoted.seen, promoted.seen
    assert promoted.push_epoch() == 3


class _PushingBranch:
    """What Replicas reads of a primary: a real ledger and a real BranchRole."""

    def __init__(self, tmp_path):
        self.name, self.url, self.secret = "Mumbai", "http://127.0.0.1:3", None
        self.ledger = Ledger(tmp_path / "Mumbai.db", "Mumbai")
        self.roles = BranchRole(Role.PRIMARY, 1)

    role = property(lambda self: self.roles.role)
    epoch = property(lambda self: self.roles.epoch)

    def check_replication_link(self):
        pass

    def fence(self, why):
        self.roles.on_replaced()

    def manager(self):
        return None


def test_a_push_under_way_when_its_primary_learns_a_higher_epoch_never_carries_it(tmp_path):
    """R4, Rule 5 (bank/replication.py): a write checked its role at epoch 1 and is
    pushing when another thread (a lease renewal the manager refused, a drop) fences
    the primary AT epoch 2. The push must not go out at epoch 2: a replica of the new
    primary takes any push at its own epoch (R3), keeps this unacknowledged change,
    and later skips the new primary's own change of the same number as already applied
    - an acknowledged write then lost in a failover to it (reproduced with real
    processes: the in-sync replica held 41000.00 where its primary held 40501.00)."""
    branch = _PushingBranch(tmp_path)
    branch.ledger.open_account("Asha", 1000)
    replicas = Replicas(branch)
    sent = []

    class Client:
        def call(self, method, epoch, changes, primary_seq, in_sync, name):
            sent.append(epoch)
            return {"applied": changes[-1][0] if changes else primary_seq}

    link = replicas.links[A] = ReplicaLink(A, None, 0)
    link.client, link.in_sync = Client(), True
    read_batch = branch.ledger.changes_since

    def fenced_meanwhile(seq, limit=500):          # the window: after the role check
        branch.roles.on_higher_epoch(2, B)         # another thread: the manager said so
        return read_batch(seq, limit)

    branch.ledger.changes_since = fenced_meanwhile
    replicas._push(link, branch.ledger.applied_seq())
    assert 2 not in sent, f"pushed at epoch 2 after being fenced at it: {sent}"
    assert branch.roles.role is Role.FENCED


# ---- R8, M4: the clock a lease is counted on -------------------------------------------

class _Lessee(ManagerLink):
    """What a primary's lease reads: its in_set (one replica listed: R8 applies), its
    role, its manager."""

    def __init__(self, manager):
        self.replicas = types.SimpleNamespace(in_set={A})
        self.role, self.name, self.url, self.epoch = "primary", "Mumbai", B, 1
        self._manager = manager

    def manager(self):
        return self._manager


def test_a_lease_is_counted_on_a_clock_that_runs_while_the_machine_sleeps(monkeypatch):
    """R8, M4 (the clock assumption of bank/core/manager.py): a lease is counted on
    bank.clock.lease_clock, by the primary from the moment it SENT its request and by
    the manager from its grant. On Linux that clock is CLOCK_BOOTTIME: time.monotonic
    (CLOCK_MONOTONIC) stops while the machine is suspended (a laptop's lid closed, as
    the README suggests for stopping a server on a LAN), so a primary waking up after
    the manager installed another would believe its lease still held for seconds."""
    import sys

    from bank import clock
    from bank.config_manager import ConfigManager, lease_wait

    if sys.platform.startswith("linux"):
        assert clock.LEASE_CLOCK == "CLOCK_BOOTTIME"
    now = [time.monotonic()]
    monkeypatch.setattr(clock, "lease_clock", lambda: now[0])

    class Manager:                               # answers 0.5 s after the request
        def call(self, method, *args):
            now[0] += 0.5
            return {"granted": True, "seconds": 4.0}

    lessee = _Lessee(Manager())
    sent = now[0]
    lessee.renew_lease()
    assert lessee._lease_until == sent + 4.0     # counted from the request, not the answer
    assert lessee.lease_ok() and lessee.holds_lease()
    now[0] += 10.0                               # the machine slept 10 s: time.monotonic
    assert not lessee.lease_ok()                 # did not move, the lease clock did
    assert not lessee.holds_lease()
    log = types.SimpleNamespace(in_doubt=set(), configs={"Mumbai": {
        "primary": B, "in_sync": [A], "epoch": 1, "version": 2}})
    manager = ConfigManager(log, {})
    assert manager.clock() == now[0]             # the manager counts on the same clock,
    assert manager.lease_left("Mumbai") == pytest.approx(lease_wait())   # S2: a grant
    now[0] += 10.0                               # the coordinator's machine slept
    assert manager.lease_left("Mumbai") == 0
