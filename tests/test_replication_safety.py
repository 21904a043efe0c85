"""Replication that never loses an acknowledged write (issue 12), as real processes.

Rules checked (bank/config_manager.py M1-M6, bank/core/replica.py R5-R9):
  * the "Why" case: a replica paused past the push timeout, its primary then killed:
    the replica was dropped through the manager (a forced record), so failover refuses
    it; nothing acknowledged is lost (R7, M3, M5);
  * a primary that can reach neither a silent replica nor the manager acknowledges
    nothing: the write fails with a sentence, in bounded time (R7);
  * a primary cut off from the manager loses its lease and refuses writes (R8);
  * the configuration survives a coordinator restart (M1);
  * issue 18 item 1: a replica restarted with --replica-of another branch's primary
    is refused (naming both), keeps its copy, and failover never installs the other
    branch's ledger (R9, M6);
  * a bounded nemesis (kill -9 and SIGSTOP of primary and replica) under a stream of
    deposits: every acknowledged deposit is on the current primary afterwards, money
    is conserved, nothing held or in doubt.

Every process is ended by its pid at teardown. Only 127.0.0.1. Waiting is polling
with a deadline; every nemesis is bounded in time.
"""

import decimal
import os
import pathlib
import signal
import sys
import threading

import pytest

KIT = pathlib.Path(__file__).resolve().parent.parent
if str(KIT) not in sys.path:
    sys.path.insert(0, str(KIT))

from bank.config_manager import lease_wait                     # noqa: E402
from bank.errors import BankError, FaultCode, surely_not_done  # noqa: E402
from bank.local_cluster import COORDINATOR, LocalCluster, replica_name  # noqa: E402
from polling import wait_for                                   # noqa: E402

pytestmark = pytest.mark.slow

D = decimal.Decimal
MUMBAI, DELHI = "Mumbai", "Delhi"
REPLICA = replica_name(MUMBAI)
SYNC_DEADLINE = 40.0          # replicas recorded in sync (generous: a loaded machine)
needs_sigstop = pytest.mark.skipif(os.name == "nt" or not hasattr(signal, "SIGSTOP"),
                                   reason="pauses a process with SIGSTOP")


@pytest.fixture
def make_bank(tmp_path):
    """make_bank(branches=("Mumbai",)): a LocalCluster with one replica per branch,
    waited on until each replica is recorded in sync by the manager."""
    started = []

    def make(branches=(MUMBAI,), coordinator_args=(), replicas=1):
        bank = LocalCluster(home=tmp_path / f"bank{len(started)}", branches=branches,
                            replicas=replicas, branch_args=("--ask-every", "0.3"),
                            coordinator_args=coordinator_args)
        started.append(bank)
        bank.start()
        for name in branches:
            wait_recorded(bank, name)
        return bank

    yield make
    for bank in started:
        bank.stop()


def call(bank, member, method, *args, timeout=15):
    return bank.client(member, timeout=timeout).call(method, *args)


def wait_recorded(bank, name):
    """Until the manager records every replica of `name` in sync."""
    urls = {bank.members[r].url for r in bank.replica_names(name)}
    return wait_for(lambda: set(call(bank, COORDINATOR, "configuration", name)
                                .get("in_sync", [])) == urls or None,
                    SYNC_DEADLINE, f"the replicas of {name} to be recorded in sync")


def request_ids(bank, member) -> set:
    return {r["request_id"] for r in call(bank, member, "journal", "", 10_000)
            if r["request_id"]}


def total(bank, member) -> D:
    return sum((D(a["balance"]) for a in call(bank, member, "accounts")), D(0))


class Deposits:
    """A thread depositing 1.00 into Mumbai/1001 through the coordinator, each with its
    own request id, for at most `seconds`; remembers which were acknowledged."""

    def __init__(self, bank, tag: str, seconds: float = 30.0):
        self.bank, self.tag, self.seconds = bank, tag, seconds
        self.acked, self.failed, self._stop = [], 0, threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self.thread.join(60)

    def _run(self):
        client = self.bank.client(COORDINATOR, timeout=15)
        i = 0
        while not self._stop.wait(0.02) and i < self.seconds / 0.02:
            rid = f"{self.tag}-{i}"
            i += 1
            try:
                client.call("deposit", "Mumbai/1001", "1.00", rid)
                self.acked.append(rid)
            except BankError:
                self.failed += 1


def current_primary(bank) -> str:
    """The member name serving Mumbai as primary now."""
    for name in (MUMBAI, REPLICA):
        try:
            if call(bank, name, "ping", timeout=3)["role"] == "primary":
                return name
        except BankError:
            continue
    raise AssertionError("no primary of Mumbai answers")


def assert_nothing_lost(bank, acked: list) -> None:
    primary = current_primary(bank)
    missing = set(acked) - request_ids(bank, primary)
    assert not missing, f"acknowledged deposits lost on {primary}: {sorted(missing)[:5]}"


# ---- the "Why" case ---------------------------------------------------------------------

@needs_sigstop
def test_a_replica_paused_then_its_primary_killed_loses_no_acknowledged_write(make_bank):
    """R7/M5: a replica paused past the push timeout is dropped through the manager (a
    forced record) before the primary acknowledges without it; after the primary is
    killed, failover refuses that replica instead of losing the writes it missed."""
    bank = make_bank()
    replica = bank.members[REPLICA]
    with Deposits(bank, "why") as stream:
        wait_for(lambda: len(stream.acked) >= 5, 20, "some deposits acknowledged")
        replica.proc.send_signal(signal.SIGSTOP)
        try:
            wait_for(lambda: not call(bank, COORDINATOR, "configuration", MUMBAI)["in_sync"],
                     20, "the paused replica to be dropped by the manager")
            count = len(stream.acked)
            wait_for(lambda: len(stream.acked) >= count + 5, 20, "deposits without it")
        finally:
            bank.kill(MUMBAI)                        # the primary dies ...
            replica.proc.send_signal(signal.SIGCONT)  # ... just as the replica wakes up
    with pytest.raises(BankError) as refused:
        call(bank, COORDINATOR, "failover", MUMBAI, timeout=30)
    assert refused.value.code == FaultCode.UNAVAILABLE
    assert "out of sync" in refused.value.message, refused.value.message
    assert call(bank, REPLICA, "ping")["role"] == "replica"
    bank.restart(MUMBAI)                             # the primary comes back with them all
    assert_nothing_lost(bank, stream.acked)


# ---- no manager, no drop: nothing acknowledged ------------------------------------------

def test_a_write_the_manager_cannot_record_is_not_acknowledged(make_bank):
    """R7: with the replica and the coordinator both down, the primary cannot have the
    replica dropped, so a deposit fails in bounded time with a sentence; once the
    coordinator is back, writes go on."""
    bank = make_bank()
    bank.kill(COORDINATOR)
    bank.kill(REPLICA)
    with pytest.raises(BankError) as refused:
        call(bank, MUMBAI, "deposit", "1001", "7.00", "unrecordable", timeout=30)
    assert refused.value.code == FaultCode.UNAVAILABLE
    assert "not acknowledged" in refused.value.message.lower() \
        or "no lease" in refused.value.message, refused.value.message
    kept = "is kept here" in refused.value.message     # applied, not acknowledged
    assert surely_not_done(refused.value) != kept      # refused before it ran: nothing done
    bank.restart(COORDINATOR)
    wait_for(lambda: _deposit_ok(bank, "after-manager-back"), 30,
             "writes to resume once the manager can record the drop")
    assert not call(bank, COORDINATOR, "configuration", MUMBAI)["in_sync"]


def _deposit_ok(bank, rid) -> bool:
    try:
        call(bank, MUMBAI, "deposit", "1001", "1.00", rid, timeout=20)
        return True
    except BankError:
        return False


# ---- leases -------------------------------------------------------------------------------

def test_a_primary_cut_off_from_the_manager_stops_serving_writes(make_bank):
    """R8: a primary that cannot renew its lease (a lab partition from the coordinator)
    refuses writes and says why; after the heal it serves again."""
    bank = make_bank()
    call(bank, COORDINATOR, "partition", MUMBAI)
    refusal = wait_for(lambda: _refusal(bank), lease_wait() + 25, "the lease to run out")
    assert refusal.code == FaultCode.UNAVAILABLE and "lease" in refusal.message
    call(bank, COORDINATOR, "heal", MUMBAI)
    wait_for(lambda: _deposit_ok(bank, "after-heal"), 30, "writes after the heal")


def _refusal(bank):
    try:
        call(bank, MUMBAI, "deposit", "1001", "1.00")
    except BankError as exc:
        return exc
    return None


# ---- automatic failover -----------------------------------------------------------------

def test_auto_failover_replaces_a_silent_primary_and_keeps_every_write(make_bank):
    """Item 4 (--auto-failover 2): a primary killed -9 stops renewing its lease; the
    coordinator promotes the recorded in-sync replica on its own, after the lease ran
    out, and every acknowledged deposit is there."""
    bank = make_bank(coordinator_args=("--auto-failover", "2"))
    acked = []
    for i in range(10):
        call(bank, COORDINATOR, "deposit", "Mumbai/1001", "1.00", f"auto-{i}")
        acked.append(f"auto-{i}")
    bank.kill(MUMBAI)
    wait_for(lambda: call(bank, REPLICA, "ping")["role"] == "primary", 30,
             "the coordinator to fail over on its own")
    assert call(bank, COORDINATOR, "configuration", MUMBAI)["epoch"] == 2
    assert_nothing_lost(bank, acked)


def test_a_replica_down_during_a_failover_follows_the_new_primary_once_back(make_bank):
    """R6 (bank/coordinator_lab.py): a failover tells every other replica to follow the
    new primary; one that was down then, restarted as a replica of the dead primary, is
    told again by the manager's round, catches up from the new primary and is recorded
    in sync there, instead of trying to reach the dead one for ever. A follow from the
    older epoch (a round that read the configuration before the failover) is stale."""
    bank = make_bank(replicas=2)
    first, second = bank.replica_names(MUMBAI)
    call(bank, COORDINATOR, "deposit", "Mumbai/1001", "1.00", "before-failover")
    bank.kill(MUMBAI)
    bank.kill(second)
    promoted = call(bank, COORDINATOR, "failover", MUMBAI, timeout=30)
    assert promoted["primary"] == bank.members[first].url
    call(bank, COORDINATOR, "deposit", "Mumbai/1001", "1.00", "after-failover")
    bank.restart(second)                          # still --replica-of the dead primary
    wait_for(lambda: bank.members[second].url in call(
        bank, COORDINATOR, "configuration", MUMBAI).get("in_sync", []), SYNC_DEADLINE,
        "the restarted replica to follow the new primary and be recorded in sync")
    assert call(bank, second, "ping")["primary"] == promoted["primary"]
    assert "after-failover" in request_ids(bank, second)
    with pytest.raises(BankError) as stale:          # a round that read the old
        call(bank, second, "follow", bank.members[MUMBAI].url, MUMBAI, 1)   # config: R6
    assert stale.value.code == FaultCode.PROTOCOL_VIOLATION and "stale" in stale.value.message
    assert call(bank, second, "ping")["primary"] == promoted["primary"]


def test_a_fenced_old_primary_never_pushes_its_unacknowledged_change(make_bank):
    """Rule 5 of bank/replication.py: an old primary restarted after a failover learns
    the new epoch (fenced) and adopts it; it must then push nothing, or the new
    primary's replica, which takes any push at its epoch (R3), would hold a deposit
    that was never acknowledged, in the place of the new primary's next change."""
    bank = make_bank(replicas=2)
    bank.kill(COORDINATOR)                            # no manager: no drop is recorded
    call(bank, MUMBAI, "fault", "cut-replication")    # so this deposit stays at the
    unacked = threading.Thread(target=_refused_deposit, args=(bank,))   # primary only
    unacked.start()
    wait_for(lambda: call(bank, MUMBAI, "ping")["applied"] >
             call(bank, REPLICA, "ping")["applied"], 10, "the deposit applied at the primary")
    bank.kill(MUMBAI)
    unacked.join(30)
    bank.restart(COORDINATOR)
    promoted = call(bank, COORDINATOR, "failover", MUMBAI, timeout=30)["primary"]
    other = next(r for r in bank.replica_names(MUMBAI) if bank.members[r].url != promoted)
    wait_recorded_in_sync = lambda: bank.members[other].url in call(     # noqa: E731
        bank, COORDINATOR, "configuration", MUMBAI).get("in_sync", [])
    wait_for(wait_recorded_in_sync, SYNC_DEADLINE, "the other replica in sync again")
    bank.restart(MUMBAI)                              # its old command: no --replica-of
    wait_for(lambda: call(bank, MUMBAI, "ping")["role"] == "fenced", 15, "the old primary fenced")
    call(bank, COORDINATOR, "deposit", "Mumbai/1001", "1.00", "after-the-restart")
    wait_for(lambda: "after-the-restart" in request_ids(bank, other), 15, "the deposit copied")
    assert "never-acknowledged" not in request_ids(bank, other)


def _refused_deposit(bank):
    """A deposit straight to Mumbai's primary that cannot be acknowledged (it ends in a
    refusal once the primary has been killed, or after DROP_WAIT)."""
    try:
        call(bank, MUMBAI, "deposit", "1001", "500.00", "never-acknowledged", timeout=20)
    except BankError:
        pass


def test_after_a_coordinator_restart_failover_finds_the_one_in_sync_replica(make_bank):
    """M5 with the route lost: the old primary rejoined as a replica and is the one
    recorded in-sync member; the coordinator and the current primary die. Restarted,
    the coordinator finds no primary, so its route stays on the first server listed,
    the rejoined one; failover still considers it (every server but the recorded
    primary), and promotes it."""
    bank = make_bank()
    old, new = bank.members[MUMBAI].url, bank.members[REPLICA].url
    assert call(bank, COORDINATOR, "failover", MUMBAI, timeout=30)["primary"] == new
    bank.restart(MUMBAI, extra=("--replica-of", new))
    wait_for(lambda: old in call(bank, COORDINATOR, "configuration", MUMBAI).get("in_sync", []),
             SYNC_DEADLINE, "the old primary back in sync, as a replica")
    bank.kill(COORDINATOR)
    bank.kill(REPLICA)
    bank.restart(COORDINATOR)
    assert call(bank, COORDINATOR, "failover", MUMBAI, timeout=30)["primary"] == old
    call(bank, COORDINATOR, "deposit", "Mumbai/1001", "1.00", "after-two-failovers")


# ---- the configuration is durable ---------------------------------------------------------

def test_the_configuration_survives_a_coordinator_restart(make_bank):
    """M1/M4: the coordinator reads each branch's configuration back from its log, and
    after a restart a failover still promotes the recorded replica (after the lease)."""
    bank = make_bank()
    before = call(bank, COORDINATOR, "configuration", MUMBAI)
    bank.restart(COORDINATOR)
    assert call(bank, COORDINATOR, "configuration", MUMBAI) == before
    bank.kill(MUMBAI)
    result = call(bank, COORDINATOR, "failover", MUMBAI, timeout=30)
    assert result["primary"] == bank.members[REPLICA].url
    assert result["epoch"] == before["epoch"] + 1
    after = call(bank, COORDINATOR, "configuration", MUMBAI)
    assert after["primary"] == result["primary"] and after["version"] > before["version"]


# ---- issue 18 item 1: a replica of the wrong branch ----------------------------------------

def test_a_replica_pointed_at_another_branch_is_refused_and_keeps_its_copy(make_bank):
    """R9/M6: Mumbai's replica restarted with --replica-of Delhi's primary (a port typo)
    is refused by Delhi (naming both branches), keeps Mumbai's ledger, and a failover
    of Mumbai never installs Delhi's ledger: the bank's total is unchanged."""
    bank = make_bank((MUMBAI, DELHI))
    call(bank, COORDINATOR, "deposit", "Mumbai/1001", "777.00", "tell-them-apart")
    mumbai_total = total(bank, MUMBAI)
    assert mumbai_total != total(bank, DELHI)
    bank.kill(REPLICA)
    replica = bank.members[REPLICA]
    replica.args = [a for a in replica.args]
    at = replica.args.index("--replica-of")
    replica.args[at + 1] = bank.members[DELHI].url
    replica.start()
    with pytest.raises(BankError) as refused:
        call(bank, DELHI, "attach_replica", replica.url, 0, "", MUMBAI)
    assert "Mumbai" in refused.value.message and "Delhi" in refused.value.message
    wait_for(lambda: call(bank, REPLICA, "ping")["applied"] > 0, 10, "the replica up")
    assert total(bank, REPLICA) == mumbai_total               # not wiped, not Delhi's
    delhi_replicas = [r["url"] for r in call(bank, DELHI, "replication")["replicas"]]
    assert replica.url not in delhi_replicas
    with pytest.raises(BankError) as refused:                 # it is no one's to follow
        call(bank, REPLICA, "follow", bank.members[DELHI].url)
    assert "Delhi" in refused.value.message and "Mumbai" in refused.value.message
    bank.kill(MUMBAI)
    try:
        call(bank, COORDINATOR, "failover", MUMBAI, timeout=30)
    except BankError:
        pass                                                  # refused: safe
    served = call(bank, COORDINATOR, "accounts", MUMBAI) if _mumbai_up(bank) else []
    if served:
        assert sum(D(a["balance"]) for a in served) == mumbai_total


def test_a_push_from_another_branchs_primary_is_refused_before_its_epoch_counts(make_bank):
    """R9: Delhi's primary pushing to Mumbai's replica (an address reused after a
    restart) is refused, naming both branches, before the push's epoch is read: the
    replica applies none of Delhi's changes, keeps its epoch (a higher epoch of
    another branch fences no one) and its total."""
    bank = make_bank((MUMBAI, DELHI))
    mumbai_total = total(bank, REPLICA)
    before = call(bank, REPLICA, "ping")
    delhi = call(bank, DELHI, "ping")
    changes = call(bank, DELHI, "changes_since", 0, 50)
    assert changes
    with pytest.raises(BankError) as refused:
        call(bank, REPLICA, "replicate", before["epoch"] + 5, changes, delhi["applied"],
             [], DELHI)
    assert refused.value.code == FaultCode.PROTOCOL_VIOLATION
    assert "Mumbai" in refused.value.message and "Delhi" in refused.value.message
    after = call(bank, REPLICA, "ping")
    assert (after["role"], after["epoch"], after["applied"]) == \
        (before["role"], before["epoch"], before["applied"])
    assert total(bank, REPLICA) == mumbai_total
    call(bank, COORDINATOR, "deposit", "Mumbai/1001", "5.00", "still-replicated")
    wait_for(lambda: total(bank, REPLICA) == mumbai_total + 5 or None, 15,
             "Mumbai's own pushes to go on reaching its replica")


def _mumbai_up(bank) -> bool:
    try:
        call(bank, COORDINATOR, "accounts", MUMBAI, timeout=5)
        return True
    except BankError:
        return False


# ---- a bounded nemesis ----------------------------------------------------------------------

@needs_sigstop
def test_nemesis_kill_and_pause_of_primary_and_replica_lose_no_acknowledged_write(make_bank):
    """Under a stream of deposits: kill -9 of the replica (restarted), SIGSTOP of the
    replica (2.5 s) and of the primary (1.5 s), then kill -9 of the primary and failover:
    every acknowledged deposit is on the current primary, money is conserved (the total
    is the start plus every deposit that landed), nothing is held or in doubt."""
    bank = make_bank()
    start_total = total(bank, MUMBAI)
    faults = 0
    with Deposits(bank, "nemesis", seconds=60) as stream:
        def acked_more(n=5):
            goal = len(stream.acked) + n
            wait_for(lambda: len(stream.acked) >= goal, 30, "deposits acknowledged")
        acked_more()
        bank.kill(REPLICA)
        faults += 1
        acked_more()
        bank.restart(REPLICA)
        wait_recorded(bank, MUMBAI)
        for member, seconds in ((REPLICA, 2.5), (MUMBAI, 1.5)):
            proc = bank.members[member].proc
            proc.send_signal(signal.SIGSTOP)
            faults += 1
            try:
                threading.Event().wait(seconds)           # the fault lasts this long
            finally:
                proc.send_signal(signal.SIGCONT)
            acked_more()
            wait_recorded(bank, MUMBAI)
        acked_more()
        wait_recorded(bank, MUMBAI)     # again: those writes may have had it dropped
        bank.kill(MUMBAI)
        faults += 1
    call(bank, COORDINATOR, "failover", MUMBAI, timeout=30)
    assert_nothing_lost(bank, stream.acked)
    primary = current_primary(bank)
    landed = len([r for r in request_ids(bank, primary) if r.startswith("nemesis-")])
    assert total(bank, primary) == start_total + landed
    assert call(bank, primary, "in_doubt") == []
    assert all(D(a["held"]) == 0 for a in call(bank, primary, "accounts"))
    print(f"\nnemesis: {faults} faults, {len(stream.acked)} deposits acknowledged, "
          f"{stream.failed} refused, {landed} on the new primary, 0 lost")


def test_nemesis_partition_of_the_replication_link_loses_no_acknowledged_write(make_bank):
    """Under a stream of deposits, a lab partition of the replication link (fault
    cut-replication), first on the replica then on the primary, each for 2.5 s: the
    primary drops the replica only through the manager (R7), so no acknowledged write
    depends on it; after each heal the replica catches up and is recorded in sync again.
    Then the primary is killed and the replica promoted: every acknowledged deposit is
    on it, money is conserved, nothing is held or in doubt."""
    bank = make_bank()
    start_total = total(bank, MUMBAI)
    with Deposits(bank, "cut", seconds=60) as stream:
        def acked_more(n=5):
            goal = len(stream.acked) + n
            wait_for(lambda: len(stream.acked) >= goal, 30, "deposits acknowledged")
        acked_more()
        for member in (REPLICA, MUMBAI):
            call(bank, member, "fault", "cut-replication")
            try:
                wait_for(lambda: not call(bank, COORDINATOR, "configuration", MUMBAI)
                         .get("in_sync"), 20, "the manager to record the replica dropped")
                acked_more()                             # served without the replica
            finally:
                call(bank, member, "fault", "")
            wait_recorded(bank, MUMBAI)                  # caught up, in sync again
            acked_more()
        wait_recorded(bank, MUMBAI)     # again: those writes may have had it dropped
        bank.kill(MUMBAI)
    call(bank, COORDINATOR, "failover", MUMBAI, timeout=30)
    assert_nothing_lost(bank, stream.acked)
    primary = current_primary(bank)
    assert primary == REPLICA
    landed = len([r for r in request_ids(bank, primary) if r.startswith("cut-")])
    assert total(bank, primary) == start_total + landed
    assert call(bank, primary, "in_doubt") == []
    assert all(D(a["held"]) == 0 for a in call(bank, primary, "accounts"))
    print(f"\ncut-replication nemesis: 3 faults, {len(stream.acked)} deposits acknowledged, "
          f"{stream.failed} refused, {landed} on the new primary, 0 lost")


def test_an_add_replica_delayed_past_a_later_drop_cannot_list_the_replica_again(
        tmp_path, monkeypatch):
    """M3: an add of a replica that reaches the manager after a later drop of it (the
    primary gave up waiting for the add, then dropped the replica and acknowledged a
    write without it) is refused: each request names the configuration version its
    primary last heard. Before, the delayed add listed the replica in sync again, and a
    failover to it lost the acknowledged deposit."""
    flag = tmp_path / "delay-next-add"
    monkeypatch.setenv("BANK_DELAY_ADD_FILE", str(flag))
    monkeypatch.setenv("BANK_DELAY_ADD_SECONDS", "6")
    bank = LocalCluster(home=tmp_path / "bank", branches=(MUMBAI,), replicas=1,
                        branch_args=("--ask-every", "0.3"))
    bank.members[COORDINATOR].script = str(KIT / "tests" / "delayed_coordinator.py")
    try:
        bank.start()
        wait_recorded(bank, MUMBAI)
        replica_url = bank.members[REPLICA].url
        call(bank, REPLICA, "fault", "cut-replication")     # dropped (recorded)
        wait_for(lambda: call(bank, COORDINATOR, "configuration", MUMBAI)["in_sync"] == [],
                 SYNC_DEADLINE, "the replica dropped")
        flag.touch()                                 # its next add_replica is delayed
        call(bank, REPLICA, "fault", "")             # it catches up; the add is on its way
        wait_for(lambda: any(r["in_sync"] for r in call(bank, MUMBAI, "replication")
                             ["replicas"]), SYNC_DEADLINE, "the replica in sync at Mumbai")
        call(bank, REPLICA, "fault", "cut-replication")      # the next push fails: a drop
        call(bank, COORDINATOR, "deposit", "Mumbai/1001", "1.00", "acked-1")
        wait_for(lambda: not flag.exists() and not any(
            r["in_sync"] for r in call(bank, MUMBAI, "replication")["replicas"]),
            SYNC_DEADLINE, "the delayed add to leave and the drop to be recorded")
        wait_for(lambda: flag.with_name(flag.name + ".done").exists(), 30,
                 "the delayed add to reach the manager")
        config = call(bank, COORDINATOR, "configuration", MUMBAI)
        assert replica_url not in config["in_sync"], config
        bank.kill(MUMBAI)
        call(bank, REPLICA, "fault", "")
        with pytest.raises(BankError):               # not in sync: never promoted
            call(bank, COORDINATOR, "failover", MUMBAI, timeout=60)
    finally:
        bank.stop()
