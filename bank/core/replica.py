"""A branch server's replication role: primary, replica or fenced, with epochs.

Role: decide what a branch server may do given its role: serve a write, take a push
from a primary, be promoted, follow a new primary, step down. It is pure: no
sockets, no SQL. bank/branch_service.py carries out the effects (the role and epoch
are kept durably in the ledger's meta table) and bank/replication.py moves changes.

The table (the README's copy is generated from it):

    REPLICA[(role, event)] = Step(rule, next role, effects in order)

Rules:
  * R1 - only a primary serves writes, and it answers a write only after every
    in-sync replica has it (the push is part of the write, before the answer).
  * R2 - a replica or a fenced server refuses writes, naming the primary it knows.
  * R3 - a replica takes a push only from its epoch or a newer one; a push from an
    older epoch is refused, which tells its sender it was replaced (it fences itself).
  * R4 - a server that sees a higher epoch than its own adopts it; a primary that
    sees one is fenced: it never serves a write again (it may rejoin as a replica
    from a fresh copy), and never pushes at the epoch it adopted. A push carries the
    epoch its sender is the primary at (push_epoch), read with the role as one: the
    role, epoch and primary change together, in one step, so no thread ever reads
    the old role with the new epoch. (A write that checked its role at epoch 1 may
    still be pushing seconds later, when another thread has learned epoch 2 from the
    manager; pushed at epoch 2, its change would be taken by the new primary's
    replica, R3, which then skips the new primary's own change of that number as
    already applied: an acknowledged write lost in the next failover.)
  * R5 - a replica is promoted only by its configuration manager (the coordinator,
    bank/core/manager.py), which picks a member of the in-sync set it recorded and
    records the new configuration, with a higher epoch, durably first; the replica
    takes that epoch. A promotion at an epoch not newer than its own is refused, and
    so is a promote that names no branch and epoch (only the manager knows them).
    Servers are trusted (bank/keys.py K1): any holder of the server key may call
    promote, which is why students never get that key.
  * R6 - a replica may be told to follow another primary (after a failover), with
    the epoch the manager recorded for it; a follow from an epoch older than the
    replica's is stale and refused. A primary or a fenced server may not be told to
    follow: its history may differ from the new one.
  * R7 - a primary drops an in-sync replica that does not answer only once the
    configuration manager has recorded the removal; until then the write waits, and
    if the manager cannot be asked in time the write is refused (not acknowledged).
  * R8 - a primary with replicas in its recorded in-sync set serves writes only while
    it holds a lease from the manager; one whose lease ran out refuses writes and
    says so. (The manager installs a new primary only once the old lease has surely
    run out: rule M4 of bank/core/manager.py. Clock assumption there.)
  * R9 - a server of one branch refuses to replicate, attach to, follow or be promoted
    for another branch: the names must match, and the refusal names both.
  * In-sync set: a replica that misses a push (a gap, a timeout) is out of sync (R7);
    it gets no pushes until it has pulled everything (bank/replication.py keeps
    each replica's ReplicaLink.in_sync).

Glossary:
  epoch     a number raised by every promotion; higher wins
  in sync   a replica holding every change its primary has acknowledged
  fenced    a former primary that learned of a higher epoch
  lease     a promise from the manager: "no one else is made primary before it ends"
  manager   the configuration manager: the coordinator, keeper of primary, in-sync set, epoch
"""

import enum
from dataclasses import dataclass

from bank.core.messages import Role


class Event(str, enum.Enum):
    WRITE = "a write (deposit, prepare, commit, ...)"
    PUSH = "a push from its primary or a newer one"
    OLD_PUSH = "a push from a primary that is not newer"
    HIGHER_EPOCH = "a higher epoch seen"
    PROMOTE = "promote, from the manager, at a newer epoch"
    PROMOTE_STALE = "promote at an epoch not newer than ours"
    FOLLOW = "follow a new primary"
    WRITE_NO_LEASE = "a write, with the lease run out"
    PUSHED = "a write's pushes are done"
    PUSHED_NO_LEASE = "a write's pushes are done, the lease run out meanwhile"
    REPLICA_SILENT = "an in-sync replica did not take a push"
    DROP_RECORDED = "the manager recorded the replica's removal"
    DROP_UNRECORDED = "the manager could not record the removal in time"
    OTHER_BRANCH = "a server of another branch"


class Do(str, enum.Enum):
    APPLY = "apply the change"
    PUSH_REPLICAS = "push it to every in-sync replica"
    ANSWER = "answer"
    ADOPT_EPOCH = "adopt the higher epoch"
    RECORD_ROLE = "record role and epoch (durable)"
    REFUSE = "refuse, naming the primary"
    ASK_MANAGER_TO_DROP = "ask the manager to drop the replica (forced record there)"
    MARK_OUT_OF_SYNC = "stop waiting for that replica"


@dataclass(frozen=True)
class Step:
    rule: str
    next: Role
    effects: tuple


PR, RE, FE = Role.PRIMARY, Role.REPLICA, Role.FENCED
E = Event

REPLICA = {
    (PR, E.WRITE):          Step("R1", PR, (Do.APPLY, Do.PUSH_REPLICAS, Do.ANSWER)),
    (RE, E.WRITE):          Step("R2", RE, (Do.REFUSE,)),
    (FE, E.WRITE):          Step("R2", FE, (Do.REFUSE,)),
    (RE, E.PUSH):           Step("R3", RE, (Do.ADOPT_EPOCH, Do.RECORD_ROLE, Do.APPLY,
                                                Do.ANSWER)),
    (RE, E.OLD_PUSH):       Step("R3", RE, (Do.REFUSE,)),
    (PR, E.OLD_PUSH):       Step("R3", PR, (Do.REFUSE,)),
    (FE, E.OLD_PUSH):       Step("R3", FE, (Do.REFUSE,)),
    (PR, E.PUSH):           Step("R4", FE, (Do.ADOPT_EPOCH, Do.RECORD_ROLE, Do.REFUSE)),
    (FE, E.PUSH):           Step("R4", FE, (Do.ADOPT_EPOCH, Do.RECORD_ROLE, Do.REFUSE)),
    (PR, E.HIGHER_EPOCH):   Step("R4", FE, (Do.ADOPT_EPOCH, Do.RECORD_ROLE)),
    (RE, E.HIGHER_EPOCH):   Step("R4", RE, (Do.ADOPT_EPOCH, Do.RECORD_ROLE)),
    (FE, E.HIGHER_EPOCH):   Step("R4", FE, (Do.ADOPT_EPOCH, Do.RECORD_ROLE)),
    (RE, E.PROMOTE):        Step("R5", PR, (Do.ADOPT_EPOCH, Do.RECORD_ROLE, Do.ANSWER)),
    (RE, E.PROMOTE_STALE):  Step("R5", RE, (Do.REFUSE,)),
    (RE, E.FOLLOW):         Step("R6", RE, (Do.RECORD_ROLE, Do.ANSWER)),
    (PR, E.REPLICA_SILENT): Step("R7", PR, (Do.ASK_MANAGER_TO_DROP,)),
    (PR, E.DROP_RECORDED):  Step("R7", PR, (Do.MARK_OUT_OF_SYNC, Do.ANSWER)),
    (PR, E.DROP_UNRECORDED): Step("R7", PR, (Do.REFUSE,)),
    (PR, E.WRITE_NO_LEASE): Step("R8", PR, (Do.REFUSE,)),
    (PR, E.PUSHED):         Step("R1", PR, (Do.ANSWER,)),
    (PR, E.PUSHED_NO_LEASE): Step("R8", PR, (Do.REFUSE,)),
    (FE, E.PUSHED):         Step("R4", FE, (Do.REFUSE,)),
    (FE, E.PUSHED_NO_LEASE): Step("R4", FE, (Do.REFUSE,)),
    (PR, E.OTHER_BRANCH):   Step("R9", PR, (Do.REFUSE,)),
    (RE, E.OTHER_BRANCH):   Step("R9", RE, (Do.REFUSE,)),
    (FE, E.OTHER_BRANCH):   Step("R9", FE, (Do.REFUSE,)),
    # Anything else is refused as a protocol violation: promoting a primary or a
    # fenced server, a primary told to follow another.
}

# The rule a role breaks when an event comes that its row does not take (no row above).
REFUSED_BY = {
    E.PROMOTE: "R5", E.PROMOTE_STALE: "R5",          # only a replica is promoted
    E.FOLLOW: "R6",                                  # only a replica follows another
    E.WRITE_NO_LEASE: "R2", E.PUSHED: "R2", E.PUSHED_NO_LEASE: "R2",   # no writes here
    E.REPLICA_SILENT: "R7", E.DROP_RECORDED: "R7", E.DROP_UNRECORDED: "R7",
}
del PR, RE, FE, E


def lease_holds(replicas_listed: bool, now: float, lease_until: float) -> bool:
    """R8: a primary may serve a write now? A lease is needed once a replica may be in
    the manager's recorded in-sync set (replicas_listed): with none listed the manager
    can promote no one in its place, so it is surely still the primary. The servers
    (bank/branch_roles.py) and the explorer (bank/explorer/replication.py) both ask
    this, so both follow the one rule."""
    return not replicas_listed or now < lease_until


class RoleRefused(Exception):
    """A step this role may not take. ``not_primary``: a write at a non-primary (R2)
    or a push from an old epoch (R3); otherwise a protocol violation."""

    def __init__(self, role: Role, event: Event, rule: str, not_primary: bool):
        self.role, self.event, self.rule, self.not_primary = role, event, rule, not_primary
        super().__init__(f"a {role.value} refuses {event.value} ({rule})")


class BranchRole:
    """The replication role of one branch server: its role, epoch and known primary."""

    def __init__(self, role: Role = Role.PRIMARY, epoch: int = 1, primary: str = ""):
        assert epoch >= 1, epoch
        self._now = (Role(role), epoch, primary)    # R4: one value, replaced whole

    # R4: the role, epoch and primary are read from one tuple that _step replaces whole,
    # so that a thread reading them while another one steps sees them all of before or
    # all of after, never the old role with the new epoch.
    role = property(lambda self: self._now[0])
    epoch = property(lambda self: self._now[1])
    primary = property(lambda self: self._now[2])

    def push_epoch(self) -> int:
        """R4 (Rule 5 of bank/replication.py): the epoch a push may carry now: ours while
        we are the primary, else 0 (push nothing). A fenced server has adopted the
        newer epoch, which it must never push at: role and epoch are read at once."""
        role, epoch, _ = self._now
        return epoch if role is Role.PRIMARY else 0

    # ---- events: each returns the effects to carry out, or raises RoleRefused ----------

    def on_write(self, lease_ok: bool = True) -> list:
        """R1, R2; R8: a primary whose lease ran out refuses (lease_ok is False)."""
        return self._step(Event.WRITE if lease_ok or self.role is not Role.PRIMARY
                          else Event.WRITE_NO_LEASE)

    def on_write_pushed(self, lease_ok: bool = True) -> list:
        """R1: answer a write only if, once its pushes are done, this server is still the
        primary (R4: a replica refused a push because a newer primary exists) and still
        holds its lease (R8). Otherwise the write is kept but not acknowledged."""
        return self._step(Event.PUSHED if lease_ok else Event.PUSHED_NO_LEASE)

    def on_push(self, epoch: int) -> list:
        """A primary pushes changes from `epoch` (R3, R4). A replica takes its own epoch;
        a primary or a fenced server only learns from a strictly newer one."""
        newer = epoch > self.epoch or (epoch == self.epoch and self.role is Role.REPLICA)
        if not newer:
            return self._step(Event.OLD_PUSH)
        return self._step(Event.PUSH, epoch=epoch)

    def on_higher_epoch(self, epoch: int, primary: str = "") -> list:
        """We learned that `epoch` exists, with `primary` serving it (R4)."""
        if epoch <= self.epoch:
            return []
        return self._step(Event.HIGHER_EPOCH, epoch=epoch, primary=primary)

    def on_replaced(self, primary: str = "") -> list:
        """A replica refused our push: a newer epoch exists, its number unknown (R4)."""
        return self._step(Event.HIGHER_EPOCH, primary=primary)

    def on_promote(self, epoch: int) -> list:
        """R5: the manager promotes us at `epoch`, which it recorded durably first."""
        if epoch <= self.epoch:
            return self._step(Event.PROMOTE_STALE)
        return self._step(Event.PROMOTE, epoch=epoch)

    def on_replica_silent(self) -> list:
        """R7: an in-sync replica did not take a push: ask the manager to drop it."""
        return self._step(Event.REPLICA_SILENT)

    def on_drop_answer(self, recorded: bool) -> list:
        """R7: the manager recorded the removal (stop waiting for it), or could not."""
        return self._step(Event.DROP_RECORDED if recorded else Event.DROP_UNRECORDED)

    def check_same_branch(self, mine: str, theirs: str) -> None:
        """R9: refuse anything from or about a server of another branch."""
        if mine != theirs:
            self._step(Event.OTHER_BRANCH)

    def on_follow(self, primary: str) -> list:
        return self._step(Event.FOLLOW, primary=primary)

    # ---- the table at work -----------------------------------------------------------

    def _step(self, event: Event, epoch: int = 0, primary: str = None) -> list:
        row = REPLICA.get((self.role, event))
        if row is None:
            raise RoleRefused(self.role, event, REFUSED_BY[event], not_primary=False)
        if row.effects == (Do.REFUSE,):                 # nothing changes: refuse (R2, R3, R5)
            raise RoleRefused(self.role, event, row.rule,
                              not_primary=event in (Event.WRITE, Event.OLD_PUSH))
        effects = list(row.effects)
        role, now_epoch, now_primary = self._now
        if Do.ADOPT_EPOCH in effects:
            now_epoch = max(now_epoch, epoch)
        if primary is not None:
            now_primary = primary
        if row.next is Role.PRIMARY and role is not Role.PRIMARY:
            now_primary = ""
        self._now = (row.next, now_epoch, now_primary)      # R4: all three at once
        return effects                   # R4 on a push ends in REFUSE: record, then refuse
