"""The pure core's replication rules, tested directly: every row of the replica's
table (R1-R9) and the configuration manager's (M1-M6), and illegal steps.

No processes, no files, no sockets (tests/test_core.py does the same for the
participant and the coordinator). Each test's docstring is the rule it checks.
"""

import pathlib
import sys

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))

from bank.core import manager as M                # noqa: E402
from bank.core import replica as R                # noqa: E402
from bank.core.messages import Record, Reply, Role  # noqa: E402


# ---- replication roles ----------------------------------------------------------------

@pytest.mark.parametrize("key", list(R.REPLICA), ids=lambda k: f"{k[0].value}|{k[1].value}")
def test_every_replica_row_sets_the_role_it_names_or_refuses(key):
    """Each row of the replication table moves to the role it names; a row that only
    refuses raises RoleRefused and changes nothing."""
    role, event = key
    node = R.BranchRole(role, 3, "http://p")
    row = R.REPLICA[key]
    if row.effects == (R.Do.REFUSE,):
        with pytest.raises(R.RoleRefused):
            node._step(event, epoch=4)
        assert (node.role, node.epoch) == (role, 3)
    else:
        node._step(event, epoch=4)
        assert node.role is row.next


def test_r1_r2_only_a_primary_serves_writes():
    """R1/R2: a primary writes and pushes before answering; a replica or fenced server
    refuses, as 'not the primary'."""
    assert R.BranchRole(Role.PRIMARY).on_write() == [R.Do.APPLY, R.Do.PUSH_REPLICAS, R.Do.ANSWER]
    for role in (Role.REPLICA, Role.FENCED):
        with pytest.raises(R.RoleRefused) as refused:
            R.BranchRole(role).on_write()
        assert refused.value.not_primary


def test_r3_r4_pushes_and_epochs():
    """R3/R4: a replica takes pushes from its epoch or newer and refuses older ones; a
    primary that receives a push from a newer epoch is fenced, one from its own is refused."""
    replica = R.BranchRole(Role.REPLICA, 2)
    assert R.Do.APPLY in replica.on_push(3) and replica.epoch == 3
    with pytest.raises(R.RoleRefused):
        replica.on_push(2)
    primary = R.BranchRole(Role.PRIMARY, 2)
    with pytest.raises(R.RoleRefused):
        primary.on_push(2)
    assert primary.role is Role.PRIMARY
    assert R.Do.REFUSE in primary.on_push(5) and primary.role is Role.FENCED
    assert primary.epoch == 5


def test_r5_promotion_takes_the_managers_newer_epoch():
    """R5: a replica is promoted at the epoch the manager recorded, which must be newer
    than its own; a stale promotion, or promoting a primary, is refused."""
    node = R.BranchRole(Role.REPLICA, 1, "http://old")
    with pytest.raises(R.RoleRefused):
        node.on_promote(1)
    assert (node.role, node.epoch) == (Role.REPLICA, 1)
    node.on_promote(3)
    assert (node.role, node.epoch, node.primary) == (Role.PRIMARY, 3, "")
    with pytest.raises(R.RoleRefused):
        node.on_promote(4)


def test_r7_a_silent_replica_is_dropped_only_once_the_manager_recorded_it():
    """R7: a primary asks the manager to drop a silent replica; it stops waiting for it
    only when the removal is recorded, and refuses the write (no answer) otherwise."""
    node = R.BranchRole(Role.PRIMARY, 2)
    assert node.on_replica_silent() == [R.Do.ASK_MANAGER_TO_DROP]
    assert node.on_drop_answer(recorded=True) == [R.Do.MARK_OUT_OF_SYNC, R.Do.ANSWER]
    with pytest.raises(R.RoleRefused) as refused:
        node.on_drop_answer(recorded=False)
    assert refused.value.rule == "R7" and node.role is Role.PRIMARY
    with pytest.raises(R.RoleRefused):
        R.BranchRole(Role.REPLICA).on_replica_silent()


@pytest.mark.parametrize("role", list(Role), ids=lambda r: r.value)
def test_every_event_a_role_has_no_row_for_is_refused_under_its_own_rule(role):
    """The replica table's refusals name the rule broken, from a table (REFUSED_BY), never
    guessed from the event's words: every (role, event) has a row or a rule, one the
    module defines ("a write's pushes are done" at a replica was blamed on R6, the
    follow rule; it is R2: a replica serves no writes)."""
    for event in R.Event:
        if (role, event) in R.REPLICA:
            continue
        assert event in R.REFUSED_BY, (role, event)
        with pytest.raises(R.RoleRefused) as refused:
            R.BranchRole(role, 2)._step(event)
        assert refused.value.rule == R.REFUSED_BY[event]
        assert f"* {refused.value.rule} - " in R.__doc__
    examples = {(Role.REPLICA, R.Event.PUSHED): "R2", (Role.PRIMARY, R.Event.PROMOTE): "R5",
                (Role.FENCED, R.Event.FOLLOW): "R6", (Role.REPLICA, R.Event.DROP_RECORDED): "R7"}
    for (who, event), rule in examples.items():
        if who is role:
            with pytest.raises(R.RoleRefused) as refused:
                R.BranchRole(role, 2)._step(event)
            assert refused.value.rule == rule


def test_r8_a_primary_without_a_lease_refuses_writes():
    """R8: a primary whose lease ran out refuses a write, and stays a primary."""
    node = R.BranchRole(Role.PRIMARY, 2)
    with pytest.raises(R.RoleRefused) as refused:
        node.on_write(lease_ok=False)
    assert refused.value.rule == "R8" and node.role is Role.PRIMARY
    assert R.Do.APPLY in node.on_write(lease_ok=True)


def test_r9_a_server_refuses_another_branch():
    """R9: any role refuses a server of another branch; the same branch passes."""
    for role in (Role.PRIMARY, Role.REPLICA, Role.FENCED):
        node = R.BranchRole(role, 2)
        node.check_same_branch("Mumbai", "Mumbai")
        with pytest.raises(R.RoleRefused) as refused:
            node.check_same_branch("Mumbai", "Delhi")
        assert refused.value.rule == "R9" and node.role is role


def test_r6_only_a_replica_follows_a_new_primary():
    """R6: a replica may follow another primary; a primary or a fenced server may not."""
    node = R.BranchRole(Role.REPLICA, 1, "http://a")
    node.on_follow("http://b")
    assert node.primary == "http://b"
    for role in (Role.PRIMARY, Role.FENCED):
        with pytest.raises(R.RoleRefused):
            R.BranchRole(role).on_follow("http://b")


# ---- the configuration manager ----------------------------------------------------------

def managed(in_sync=("http://q",), granted_at=0.0):
    return M.Manager("Mumbai", M.Configuration("http://p", tuple(in_sync), 1, 3), granted_at)


def test_m1_the_first_lease_records_the_configuration_before_answering():
    """M1: the first primary to ask is recorded (forced) before it hears the answer."""
    core = M.Manager("Mumbai")
    effects = core.lease("http://p", 1, now=5.0)
    assert effects[0] == Record("Mumbai", "config", forced=True)
    assert effects[1].message == M.Configuration("http://p", (), 1, 1)
    assert core.granted_at == 5.0


def test_m2_only_the_recorded_primary_at_its_epoch_may_change_anything():
    """M2: another server, or the primary at an old epoch, is refused as not the primary,
    and nothing changes."""
    core = managed()
    for url, epoch in (("http://q", 1), ("http://p", 0)):
        for request in (lambda: core.lease(url, epoch, 1.0),
                        lambda: core.drop(url, epoch, "http://q", 1.0, 3)):
            with pytest.raises(M.Refused) as refused:
                request()
            assert refused.value.not_primary and core.config.in_sync == ("http://q",)


def test_m3_joining_and_leaving_the_in_sync_set_is_recorded_first():
    """M3: add and drop are forced records, each a new version, even one that leaves
    the set as it was (a drop of a replica not listed)."""
    core = managed(in_sync=())
    assert core.add("http://p", 1, "http://q", 1.0, 3)[0].kind == "config"
    assert core.config.in_sync == ("http://q",) and core.config.version == 4
    assert core.drop("http://p", 1, "http://q", 1.0, 4)[0].kind == "config"
    assert core.drop("http://p", 1, "http://q", 1.0, 5)[0].kind == "config"
    assert core.config == M.Configuration("http://p", (), 1, 6)


def test_m3_an_add_delayed_past_a_later_drop_cannot_undo_it():
    """M3: a change of the in-sync set names the configuration version its primary last
    heard, and one made at another version is refused ("changed"). The primary asked to
    add q at version 3 and gave up waiting; it then dropped q (recorded: version 4) and
    answered writes without q. The add, arriving now, must not list q again: a failover
    to q would lose those writes."""
    core = managed(in_sync=())                  # q was dropped before: version 3
    core.drop("http://p", 1, "http://q", 1.0, 3)    # q not listed: still a new version
    with pytest.raises(M.Refused) as refused:
        core.add("http://p", 1, "http://q", 1.0, 3)                     # the delayed add
    assert refused.value.kind == "changed" and refused.value.rule == "M3"
    assert core.config == M.Configuration("http://p", (), 1, 4)
    core.add("http://p", 1, "http://q", 1.0, 4)     # asked again at the version heard
    assert core.config.in_sync == ("http://q",)


def test_m3_the_last_change_asked_again_is_answered_again_without_a_record():
    """M3: a drop whose answer came too late (a slow disk) is sent again at the same
    version: with nothing changed since, it is answered again and nothing is recorded
    (the primary re-read the version and dropped again, one forced record per try, and
    on a disk slower than its timeout never heard an answer). Once anything else was
    taken, the old request is refused as before, and a delayed add never matches."""
    core = managed()                                  # q in sync, version 3
    assert core.drop("http://p", 1, "http://q", 1.0, 3)[0].kind == "config"
    again = core.drop("http://p", 1, "http://q", 1.0, 3)
    assert again == [Reply(core.config)] and core.config == M.Configuration("http://p", (), 1, 4)
    with pytest.raises(M.Refused):                    # not the last change: an add at 3
        core.add("http://p", 1, "http://q", 1.0, 3)
    core.add("http://p", 1, "http://r", 1.0, 4)       # something else is taken
    with pytest.raises(M.Refused) as refused:
        core.drop("http://p", 1, "http://q", 1.0, 3)
    assert refused.value.kind == "changed" and core.config.version == 5


def test_m4_no_new_primary_while_the_old_lease_may_be_held():
    """M4: install is refused, with the time left, until lease_wait() after the grant."""
    core = managed(granted_at=10.0)
    with pytest.raises(M.Refused) as refused:
        core.install("http://q", 3, now=10.0 + M.LEASE_SECONDS)
    assert refused.value.wait > 0 and core.config.primary == "http://p"
    core.install("http://q", 3, now=10.0 + M.lease_wait())
    assert (core.config.primary, core.config.epoch) == ("http://q", 2)


def test_m5_only_a_member_of_the_recorded_in_sync_set_is_promoted():
    """M5: a replica not in the recorded set, or a stale version, is refused; a promotion
    records the new primary at epoch + 1 with an empty in-sync set."""
    core = managed(in_sync=(), granted_at=None)
    with pytest.raises(M.Refused):
        core.install("http://q", 3, now=0.0)
    core = managed(granted_at=None)
    with pytest.raises(M.Refused):
        core.install("http://q", 2, now=0.0)
    effects = core.install("http://q", 3, now=0.0)
    assert effects[0].forced and core.config == M.Configuration("http://q", (), 2, 4)
