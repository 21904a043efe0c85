"""Replicated branches whose servers restart, rejoin or lose their primary: real
processes (the helpers and the fixture are tests/test_replication.py's).

Rules checked:
  * an old primary that comes back is fenced by the epoch, also while the new primary
    is down or every other server is, and it learns of the new epoch from the manager;
  * a replica dropped after a timeout (paused) catches up and is in sync again;
  * the coordinator routes to the promoted primary, also after its own restart;
  * a promoted server restarted (also after two failovers, with the launcher's stale
    --replica-of) starts as the primary it was and keeps its data;
  * a fenced old primary never follows on a database that diverged;
  * `check` fails when a branch's books come from a replica (no primary answers);
  * a home's data keeps its layout (bank/cluster_home.py L2): started again without
    --replicas after a failover, the cluster has its replicas and banks on; with
    fewer, it is refused with a sentence before anything starts; with no failover,
    fewer is allowed and the primary banks on;
  * `restart Mumbai --rejoin` brings a replaced primary back as a replica that can take
    over again, and `cluster.py status` names each server's role as it is now.
"""

import os
import pathlib
import re
import signal
import subprocess
import sys
import threading

import pytest

KIT = pathlib.Path(__file__).resolve().parent.parent
if str(KIT) not in sys.path:
    sys.path.insert(0, str(KIT))

from bank.errors import BankError  # noqa: E402
from bank.local_cluster import COORDINATOR, LocalCluster  # noqa: E402
from polling import wait_for  # noqa: E402
from test_replication import (  # noqa: E402,F401  (the fixture and helpers)
    BUG_DEADLINE, D, MUMBAI, MUMBAI_REPLICA, SYNC_DEADLINE, all_replicas_in_sync, balance,
    book, branch_row, call, deposit_and_kill_before_shipping, make_bank, wait_in_sync,
    without_replica_of)

pytestmark = pytest.mark.slow


def test_old_primary_restarted_while_new_primary_is_down_is_fenced_once_it_is_back(make_bank):
    """An old primary that comes back is fenced by the epoch, even if the new primary was
    briefly unreachable at that moment: once the new primary answers again, the old one
    refuses writes."""
    bank = make_bank()
    bank.kill(MUMBAI)
    call(bank, COORDINATOR, "failover", MUMBAI, timeout=30)
    bank.kill(MUMBAI_REPLICA)                        # the new primary is down a moment
    bank.restart(MUMBAI)                             # the old one comes back meanwhile
    promoted = bank.members[MUMBAI_REPLICA]
    promoted.args = without_replica_of(promoted.args)  # restart it as the primary it is
    promoted.start()
    assert call(bank, MUMBAI_REPLICA, "ping")["role"] == "primary"
    wait_for(lambda: call(bank, MUMBAI, "ping")["role"] == "fenced", BUG_DEADLINE,
             "the old primary to learn the higher epoch")


def test_old_primary_back_while_every_other_server_is_down_learns_from_the_manager(make_bank):
    """R4 through the manager: an old primary restarted while the new primary is down
    reaches no other server of its branch, but the manager refuses its lease renewal
    naming the recorded primary, and that fences it (learn_from_manager)."""
    bank = make_bank()
    new_url = bank.members[MUMBAI_REPLICA].url
    bank.kill(MUMBAI)
    call(bank, COORDINATOR, "failover", MUMBAI, timeout=30)
    bank.kill(MUMBAI_REPLICA)
    bank.restart(MUMBAI)
    ping = wait_for(lambda: (lambda p: p if p["role"] == "fenced" else None)(
        call(bank, MUMBAI, "ping")), 15, "the old primary to learn the epoch from the manager")
    assert ping["epoch"] == 2 and ping["primary"] == new_url


@pytest.mark.skipif(os.name == "nt", reason="pauses a process with SIGSTOP")
def test_replica_dropped_after_a_timeout_catches_up_again(make_bank):
    """A replica that does not answer within the timeout is marked out of sync; it
    catches up when it is back and is in sync again only once it has everything."""
    bank = make_bank()
    replica = bank.members[MUMBAI_REPLICA].proc
    replica.send_signal(signal.SIGSTOP)              # a long pause (GC, swap, a VM hiccup)
    try:
        call(bank, COORDINATOR, "deposit", "Mumbai/1001", "1.00", "during-pause",
             timeout=20)                             # answered after the 2 s push timeout
        # Checked while it is still paused: once resumed it may catch up at once.
        assert call(bank, MUMBAI, "replication")["replicas"][0]["in_sync"] is False
    finally:
        replica.send_signal(signal.SIGCONT)
    call(bank, COORDINATOR, "deposit", "Mumbai/1001", "2.00", "after-pause")
    wait_for(lambda: all_replicas_in_sync(bank, MUMBAI)
             and book(bank, MUMBAI_REPLICA) == book(bank, MUMBAI), BUG_DEADLINE,
             "the dropped replica to catch up (it says in_sync but lacks writes)")


def test_restarted_coordinator_routes_to_the_promoted_primary(make_bank):
    """The coordinator follows the promotion, also after its own restart."""
    bank = make_bank()
    bank.kill(MUMBAI)
    call(bank, COORDINATOR, "failover", MUMBAI, timeout=30)
    bank.restart(COORDINATOR)
    try:
        acct = call(bank, COORDINATOR, "deposit", "Mumbai/1001", "3.00", "after-restart")
    except BankError as exc:
        raise AssertionError(f"the restarted coordinator cannot reach Mumbai: {exc}")
    assert D(acct["balance"]) == D("10003.00")


def test_restarting_the_promoted_replica_keeps_its_data(make_bank):
    """A promotion is durable: restarting the promoted server does not throw away the
    new primary's database (an acknowledged write after the failover stays served)."""
    bank = make_bank()
    bank.kill(MUMBAI)
    call(bank, COORDINATOR, "failover", MUMBAI, timeout=30)
    call(bank, COORDINATOR, "deposit", "Mumbai/1001", "11.00", "on-new-primary")
    try:
        bank.restart(MUMBAI_REPLICA)
        started = True
    except RuntimeError:                             # refusing to start would be safe too
        started = False
    aside = list((bank.home / "data").glob(f"{MUMBAI_REPLICA}.db.before-rejoin-*"))
    assert not aside, f"the promoted primary's database was set aside: {aside}"
    if started:
        ping = call(bank, MUMBAI_REPLICA, "ping")
        assert ping["role"] == "primary" and ping["epoch"] == 2, ping
        assert balance(bank, MUMBAI_REPLICA, "1001") == D("10011.00")


def test_a_server_promoted_by_a_second_failover_restarts_as_the_primary(tmp_path):
    """bank/branch_service.py _open_ledger: a promoted server restarted with a stale
    --replica-of starts as the primary it was if that URL names a server it followed
    before (remember_followed), not only the one it replaced: after two failovers the
    launcher still names the first primary, and the server must come back (it used to
    refuse to start, leaving the branch down with a committed transfer half applied)."""
    bank = LocalCluster(home=tmp_path, branches=(MUMBAI,), replicas=2,
                        branch_args=("--ask-every", "0.3"))
    try:
        bank.start()
        wait_in_sync(bank, MUMBAI)
        bank.kill(MUMBAI)
        first = call(bank, COORDINATOR, "failover", MUMBAI, timeout=30)["primary"]
        first_name = next(n for n, m in bank.members.items() if m.url == first)
        other = next(m.url for n, m in bank.members.items()
                     if n.startswith(MUMBAI + "-") and n != first_name)
        wait_for(lambda: any(r["url"] == other and r["in_sync"] and r["lag"] == 0
                             for r in branch_row(bank, MUMBAI)["replicas"]),
                 SYNC_DEADLINE, "the other replica in sync with the new primary")
        bank.kill(first_name)
        second = call(bank, COORDINATOR, "failover", MUMBAI, timeout=30)["primary"]
        second_name = next(n for n, m in bank.members.items() if m.url == second)
        call(bank, COORDINATOR, "deposit", "Mumbai/1001", "11.00", "after-two-failovers")
        bank.kill(second_name)
        bank.restart(second_name)                    # still with --replica-of the first
        ping = call(bank, second_name, "ping")
        assert ping["role"] == "primary" and ping["epoch"] == 3, ping
        assert balance(bank, second_name, "1001") == D("10011.00")
    finally:
        bank.stop()


def test_fenced_old_primary_cannot_follow_on_a_divergent_database(make_bank):
    """A former primary rejoins only from a fresh copy: told to follow the new primary,
    it either refuses or ends up with exactly the new primary's accounts."""
    bank = make_bank((MUMBAI,), "--async-replication")
    new_url = bank.members[MUMBAI_REPLICA].url
    deposit_and_kill_before_shipping(bank, "100.00")   # on the old primary only
    call(bank, COORDINATOR, "failover", MUMBAI, timeout=30)
    call(bank, COORDINATOR, "deposit", "Mumbai/1001", "1.00", "new-history")  # same seq
    bank.restart(MUMBAI)
    wait_for(lambda: call(bank, MUMBAI, "ping")["role"] == "fenced", 10, "fencing")
    try:
        call(bank, MUMBAI, "follow", new_url)
    except BankError:
        return                                       # refused: safe
    old_url = bank.members[MUMBAI].url
    wait_for(lambda: [r for r in branch_row(bank, MUMBAI)["replicas"]
                      if r["url"] == old_url and r["in_sync"] and r["lag"] == 0],
             SYNC_DEADLINE, "the old primary to report itself caught up")
    assert book(bank, MUMBAI) == book(bank, MUMBAI_REPLICA), \
        "an in-sync replica with different balances"


def test_check_fails_when_a_branch_s_books_come_from_a_replica(make_bank):
    """bank/views.py audit: with Mumbai's primary down and no failover yet, the
    coordinator reads Mumbai's books from its replica; `check` says so and fails
    ("books from a primary"), instead of passing on books that may lack acknowledged
    writes (it said "All checks passed" on a fenced server's stale books)."""
    from shelltest import run, shell_on
    bank = make_bank()
    bank.kill(MUMBAI)
    report = run(shell_on(bank), "check")
    assert "books from a primary" in report and "a replica" in report, report
    assert "The check failed" in report and "All checks passed" not in report


def test_a_home_started_again_keeps_its_replicas_after_a_failover(make_bank):
    """L2 (bank/local_cluster.py): after a failover and a stop, a plain start of the same
    home (no --replicas: what `python shell.py` does) starts the replicas its data holds,
    so the promoted server is the primary again and deposits commit; asking for fewer
    replicas than the data holds is refused with a sentence, and nothing starts."""
    bank = make_bank()
    call(bank, COORDINATOR, "failover", MUMBAI, timeout=30)
    call(bank, COORDINATOR, "deposit", "Mumbai/1001", "7.00", "before-the-stop", timeout=30)
    before = balance(bank, MUMBAI_REPLICA, "1001")
    bank.stop()
    fewer = LocalCluster(home=bank.home, branches=(MUMBAI,), replicas=0)
    with pytest.raises(RuntimeError, match="--replicas 1"):
        fewer.start()
    assert all(m.proc is None for m in fewer.members.values()), "a member started anyway"
    again = LocalCluster(home=bank.home, branches=(MUMBAI,))
    try:
        again.start()
        assert MUMBAI_REPLICA in again.members
        deposit_one_rupee(again, "after-the-start",
                          "a deposit to commit after the start")
        assert balance(again, MUMBAI_REPLICA, "1001") == before + 1
    finally:
        again.stop()


def test_a_home_with_no_failover_may_start_with_fewer_replicas(make_bank):
    """L2: while every branch's own database still says it is the primary (no failover
    happened), the same home may start with fewer replicas than its data holds: the
    primary banks on with everything it acknowledged, and a later plain start brings
    the replica back."""
    bank = make_bank()
    call(bank, COORDINATOR, "deposit", "Mumbai/1001", "7.00", "before-the-stop", timeout=30)
    before = balance(bank, MUMBAI, "1001")
    replica_port = bank.members[MUMBAI_REPLICA].port
    bank.stop()
    fewer = LocalCluster(home=bank.home, branches=(MUMBAI,), replicas=0)
    try:
        fewer.start()
        assert MUMBAI_REPLICA not in fewer.members
        deposit_one_rupee(fewer, "with-no-replica",
                          "a deposit to commit (once the primary holds its lease)")
        assert balance(fewer, MUMBAI, "1001") == before + 1
    finally:
        fewer.stop()
    again = LocalCluster(home=bank.home, branches=(MUMBAI,))      # as many as data/ holds
    try:
        again.start()
        assert MUMBAI_REPLICA in again.members
        assert again.members[MUMBAI_REPLICA].port == replica_port   # L2: its port kept
        wait_in_sync(again, MUMBAI)
        assert balance(again, MUMBAI_REPLICA, "1001") == before + 1
    finally:
        again.stop()


@pytest.mark.skipif(os.name == "nt", reason="pauses a process with SIGSTOP")
def test_fewer_replicas_are_refused_after_a_failover_whose_promote_never_arrived(make_bank):
    """L2: a failover the manager recorded (epoch 2, the replica named primary) whose
    promote never reached the replica leaves both databases as they were, primary and
    replica at epoch 1. Started with fewer replicas, the old primary would be fenced at
    its first lease (the manager names the replica), and the replica's port forgotten:
    no server could be promoted any more. So fewer is refused; a plain start finishes
    the failover and banks on."""
    bank = make_bank()
    bank.members[MUMBAI].proc.send_signal(signal.SIGSTOP)     # its lease is not renewed
    failover = threading.Thread(target=lambda: _refused(call, bank, COORDINATOR, "failover",
                                                        MUMBAI, timeout=30))
    failover.start()
    # Kill the replica while the failover waits out the old lease (M4, about 4 s): by
    # then it has chosen the replica (it pinged it), and its promote is still to come.
    # (A fixed 1.5 s sleep raced both ends: a failover slower to start on a loaded
    # machine pinged a replica already dead, and was refused with epoch 1.)
    coordinator_log = bank.home / "logs" / "coordinator.log"     # its INFO lines
    wait_for(lambda: "for the old primary's lease to run out" in
             coordinator_log.read_text(encoding="utf-8", errors="replace"),
             10, "the failover to wait out the old primary's lease", interval=0.02)
    bank.kill(MUMBAI_REPLICA)           # its promote finds the replica gone
    failover.join()
    assert call(bank, COORDINATOR, "configuration", MUMBAI)["epoch"] == 2
    bank.kill(MUMBAI)                   # paused still: it never heard of epoch 2
    bank.stop()
    fewer = LocalCluster(home=bank.home, branches=(MUMBAI,), replicas=0)
    try:
        with pytest.raises(RuntimeError, match="recorded Mumbai at epoch 2"):
            fewer.start()
    finally:
        fewer.stop()                    # (were it started after all: by its pids)
    again = LocalCluster(home=bank.home, branches=(MUMBAI,))
    try:
        again.start()
        call(again, COORDINATOR, "failover", MUMBAI, timeout=30)     # finished now
        deposit_one_rupee(again, "after-the-failover",
                          "a deposit to commit on the promoted replica")
    finally:
        again.stop()


def deposit_one_rupee(bank, request_id: str, what: str) -> None:
    """Deposit 1.00 into Mumbai/1001 through the coordinator once the branch takes writes
    (after a start, its primary first needs a lease); `what` names it if it never does."""
    wait_for(lambda: call(bank, COORDINATOR, "deposit", "Mumbai/1001", "1.00", request_id,
                          timeout=30), BUG_DEADLINE, what)


def _refused(call, *args, **kwargs):
    try:
        call(*args, **kwargs)
    except BankError:
        pass


def crash_and_fail_over_mumbai(sh) -> None:
    """In the shell `sh`: crash Mumbai's primary and fail Mumbai over; the failover
    names both servers as `crash` takes them (epoch 2, Mumbai-replica1 serving)."""
    from shelltest import run
    run(sh, f"crash {MUMBAI}")
    said = run(sh, f"failover {MUMBAI}")
    assert f"served by {MUMBAI_REPLICA} at http" in said and "epoch 2" in said, said
    assert f"the old primary, {MUMBAI} at http" in said


def test_the_shell_says_a_replaced_primary_came_back_fenced(make_bank):
    """A plain sentence per role: `restart` of a primary replaced by a failover says it
    is fenced (it refuses writes): from the manager's record of who the primary
    is, or, with the coordinator down, from the server's own role; the promoted one
    serves as the primary."""
    from shelltest import run, shell_on
    bank = make_bank()
    sh = shell_on(bank)
    crash_and_fail_over_mumbai(sh)
    assert "it is fenced" in run(sh, f"restart {MUMBAI}")
    assert "serves as the primary" in run(sh, f"restart {MUMBAI_REPLICA}")
    wait_for(lambda: call(bank, MUMBAI, "ping")["role"] == "fenced", 10,
             "the old primary to learn it was replaced")
    run(sh, "crash coordinator")                     # the manager cannot be asked now:
    assert "it is fenced" in run(sh, f"restart {MUMBAI}")    # the server's own word
    assert sh.failures == 0


def test_restart_rejoin_brings_a_replaced_primary_back_as_a_replica_that_can_take_over(
        make_bank):
    """Replication step 5 from the shell: `restart Mumbai --rejoin` restarts the primary
    a failover replaced as a replica of the new one; it keeps its old database aside,
    is recorded in sync by the manager, receives later writes, and a second failover
    back to it loses nothing (every deposit is there); `cluster.py status` says fenced,
    then replica, by the member's name. --rejoin on the current primary,
    or on the coordinator, is refused with a sentence and changes nothing."""
    from shelltest import run, shell_on
    bank = make_bank()
    sh = shell_on(bank)
    old_url = bank.members[MUMBAI].url
    deposit_one_rupee(bank, "before-failover", "a deposit before the failover")
    run(sh, f"crash {MUMBAI}")
    assert "epoch 2" in run(sh, f"failover {MUMBAI}")
    refused = run(sh, f"restart {MUMBAI_REPLICA} --rejoin")
    assert "primary now" in refused and sh.failures == 1
    assert call(bank, MUMBAI_REPLICA, "ping")["role"] == "primary"
    assert "the coordinator has no replicas: `restart coordinator` starts it again" in \
        run(sh, "restart coordinator --rejoin")
    assert "it is fenced" in run(sh, f"restart {MUMBAI}")
    # The shell says so from the manager's record; the server itself, whose status
    # line follows, learns it a moment later if its ping of the new primary at start
    # times out (a loaded machine): then its next heartbeat or lease renewal tells it.
    wait_for(lambda: call(bank, MUMBAI, "ping")["role"] == "fenced", BUG_DEADLINE,
             "the old primary to learn it was replaced")
    assert re.search(r"Mumbai .*fenced: a failover replaced it; `restart Mumbai --rejoin`",
                     cluster_status(bank))
    said = run(sh, f"restart {MUMBAI} --rejoin")
    assert "as a replica of Mumbai's primary" in said, said
    status = cluster_status(bank)                   # roles as they are now, by name
    assert re.search(r"Mumbai +\S+ +\(pid \d+\) +replica", status), status
    assert re.search(r"Mumbai-replica1 +\S+ +\(pid \d+\) +primary", status), status
    assert bank.members[MUMBAI].url == old_url                     # its port kept
    assert list((bank.home / "data").glob("Mumbai.db.before-rejoin-*"))
    wait_for(lambda: old_url in call(bank, COORDINATOR, "configuration", MUMBAI)["in_sync"]
             or None, SYNC_DEADLINE, "the rejoined server to be recorded in sync")
    again = run(sh, f"restart {MUMBAI} --rejoin")              # a replica already:
    assert "was a replica already, so it keeps its database" in again, again  # none aside
    assert len(list((bank.home / "data").glob("Mumbai.db.before-rejoin-*"))) == 1
    deposit_one_rupee(bank, "after-rejoin", "a deposit after the rejoin")
    wait_for(lambda: book(bank, MUMBAI) == book(bank, MUMBAI_REPLICA) or None,
             SYNC_DEADLINE, "the rejoined replica to hold every change")
    # Restarted again, it may have missed the deposit's push and been dropped; it is
    # recorded in sync again only after catching up (a failover promotes no other).
    wait_for(lambda: old_url in call(bank, COORDINATOR, "configuration", MUMBAI)["in_sync"]
             or None, SYNC_DEADLINE, "the restarted replica to be recorded in sync again")
    expected = balance(bank, MUMBAI_REPLICA, "1001")
    crashed = run(sh, f"crash {MUMBAI_REPLICA}")       # the crash names the role it had
    assert f"Crashed {MUMBAI_REPLICA} (Mumbai's primary, at " in crashed, crashed
    assert "epoch 3" in run(sh, f"failover {MUMBAI}")
    assert call(bank, COORDINATOR, "configuration", MUMBAI)["primary"] == old_url
    assert balance(bank, MUMBAI, "1001") == expected
    assert sh.failures == 2                     # the two refusals above, and no other


def test_reads_while_the_coordinator_is_down_ask_the_primary_a_failover_installed(make_bank):
    """bank/shell/direct.py V3: after `failover Mumbai` and `crash coordinator`, the
    shell's direct reads ask Mumbai's primary where the failover put it, in the shell
    that failed over and in a shell started afterwards. (The failover names both
    servers as `crash` takes them, not by address alone.) (They asked the old primary,
    fenced: `branches` listed it as Mumbai, and `check` failed "books from a primary: no
    primary answers" while the promoted primary answered.)"""
    from shelltest import run, shell_on
    bank = make_bank()
    sh = shell_on(bank)
    crash_and_fail_over_mumbai(sh)
    assert "it is fenced" in run(sh, f"restart {MUMBAI}")
    run(sh, "crash coordinator")
    new_url = bank.members[MUMBAI_REPLICA].url
    for shell_ in (sh, shell_on(bank)):
        report = run(shell_, "check")
        assert "All checks passed" in report and "books from a primary" not in report, \
            report
        row = [line for line in run(shell_, "branches").splitlines()
               if line.startswith(MUMBAI + " ")]
        assert row and new_url in row[0] and "primary" in row[0], row


def cluster_status(bank) -> str:
    """What `python cluster.py status` prints for this cluster's home."""
    return subprocess.run([sys.executable, str(KIT / "cluster.py"), "status", "--home",
                           str(bank.home)], capture_output=True, text=True, timeout=60,
                          encoding="utf-8").stdout


def test_restart_rejoin_while_the_recorded_primary_is_down_restarts_nothing(make_bank):
    """--rejoin needs the primary the coordinator records to answer. Without this, a
    promoted server that once followed that primary, rejoined while it was down, took
    its stale-`--replica-of` path: it started as the primary it was (then was fenced
    by the manager, and stayed fenced), while the shell said "Restarted ... as a
    replica ... its old database is kept aside". Now nothing is restarted and one
    sentence says which server to start first; once it is back, the rejoin works."""
    from shelltest import run, shell_on
    bank = make_bank()
    sh = shell_on(bank)
    old_url = bank.members[MUMBAI].url
    run(sh, f"crash {MUMBAI}")
    assert "epoch 2" in run(sh, f"failover {MUMBAI}")
    assert "as a replica" in run(sh, f"restart {MUMBAI} --rejoin")
    wait_for(lambda: old_url in call(bank, COORDINATOR, "configuration", MUMBAI)["in_sync"]
             or None, SYNC_DEADLINE, "the rejoined server to be recorded in sync")
    run(sh, f"crash {MUMBAI_REPLICA}")
    assert "epoch 3" in run(sh, f"failover {MUMBAI}")        # back to the first server
    run(sh, f"crash {MUMBAI}")                                # and it is down now
    said = run(sh, f"restart {MUMBAI_REPLICA} --rejoin")
    assert f"primary ({MUMBAI} at {old_url}) does not answer" in said, said
    assert "nothing was restarted" in said and sh.failures == 1
    assert not bank.answers(MUMBAI_REPLICA)
    assert not list((bank.home / "data").glob(f"{MUMBAI_REPLICA}.db.before-rejoin-*"))
    assert "serves as the primary" in run(sh, f"restart {MUMBAI}")
    said = run(sh, f"restart {MUMBAI_REPLICA} --rejoin")
    assert "as a replica" in said and "kept aside" in said, said
    assert call(bank, MUMBAI_REPLICA, "ping")["role"] == "replica"
    assert sh.failures == 1


def test_a_recorded_primary_at_an_address_no_longer_given_is_said_at_start(tmp_path):
    """config_manager.py S4: a recovery log whose recorded primary of Mumbai is none of
    the servers the coordinator is given for Mumbai now (the servers moved, say from
    127.0.0.1 to a LAN address) makes the coordinator say so at start, naming both
    addresses and the way out; its lease renewals would be refused without a word."""
    from bank.local_cluster import Member
    from bank.recovery_log import RecoveryLog
    log_path = tmp_path / "logs" / "recovery.log"
    log_path.parent.mkdir(parents=True)
    (tmp_path / "data").mkdir()
    old = RecoveryLog(log_path)
    old.config("Mumbai", {"primary": "http://127.0.0.1:9", "in_sync": [], "epoch": 1,
                          "version": 1})
    old.close()
    coordinator = Member("coordinator", "coordinator.py",
                         ["--log", str(log_path), "--branch", "Mumbai=http://127.0.0.2:9"],
                         tmp_path)
    try:
        coordinator.start()
        said = wait_for(lambda: "WARNING" in coordinator.last_output()
                        and coordinator.last_output(), 10, "the warning")
    finally:
        coordinator.kill()
    assert "records Mumbai's primary at http://127.0.0.1:9 (epoch 1)" in said, said
    assert "not one of the servers given for Mumbai now (http://127.0.0.2:9)" in said
    assert "start this coordinator with a recovery log of its own" in said


def test_failover_never_takes_the_primary_for_a_replica_of_a_record_from_another_run(
        tmp_path):
    """Failover (M4) and S4: the recovery log records Mumbai's primary at the address of
    an earlier run (the ports changed since), and Mumbai has no replicas. Failover says
    "it has no replicas"; it used to call Mumbai's own primary, at its new address, a
    replica "out of sync"."""
    from bank.recovery_log import RecoveryLog
    log_path = tmp_path / "logs" / "recovery.log"
    log_path.parent.mkdir(parents=True)
    old = RecoveryLog(log_path)
    old.config("Mumbai", {"primary": "http://127.0.0.1:9", "in_sync": [], "epoch": 1,
                          "version": 1})
    old.close()
    with LocalCluster(home=tmp_path) as bank:
        with pytest.raises(BankError) as refused:
            bank.coordinator().call("failover", "Mumbai")
    assert refused.value.message.endswith("No replica of Mumbai can be promoted: it has "
                                          "no replicas."), refused.value.message
