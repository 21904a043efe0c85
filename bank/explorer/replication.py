"""The replication world: a primary, its replicas and the configuration manager, explored.

Role: check the kit's replication rules the way bank/explorer/world.py checks 2PC:
every order of pushes and acknowledgements, a crash, a lost push, time passing
(leases running out), a failover to any replica at any moment, a dropped replica
catching up again while its primary's add is on its way to the manager, a request
to the manager sent again after a timeout while the first try is still on its way,
with one replica or two, on the very cores the servers run:
BranchRole (bank/core/replica.py, R1-R9) at each branch server and Manager
(bank/core/manager.py, M1-M5; M6 needs the cluster's addresses) at the
coordinator. This file plays the network, the
clock and the disks; the cores decide. Its invariants and the search over its states
are in bank/explorer/replication_search.py.

Rules:
  * X1 - a branch server's durable state is its role, epoch, known primary, the writes
    it applied and the replicas it pushes to; what it is waiting for, and the
    configuration version it last heard from the manager (M3), are volatile.
  * X2 - the manager is always reachable here (the coordinator does not crash in this
    world: tests/test_replication_safety.py covers that case with real processes), so
    what its core keeps in memory (the last add or drop taken, M3's repeat) carries on
    from one step to the next, as it does in the coordinator, whatever it answered:
    the world keeps the core's memory after a refusal too, rather than assume that a
    refusal changed nothing.
  * X3 - time moves in ticks of lease_wait() (M4): after a tick every lease that was
    not renewed has run out, for the primary (R8) and for the manager alike. The clock
    assumption of bank/core/manager.py is what makes that one tick for both.
  * X4 - budgets bound the writes, crashes, lost messages, ticks, catch-ups and
    resends.
  * X5 - the branch has one replica or two (Mumbai-r1, Mumbai-r2), all in sync at the
    start. A write is pushed to each replica in the primary's view, and every push and
    answer travels on its own, so one replica can have a write the other lacks. A
    promoted replica starts with an empty in-sync set (M5) and only a replica of the
    primary it was dropped by catches up here, so a run has at most one failover.
  * X7 - a replica the primary dropped may catch up: it copies the
    primary's log, the primary pushes to it again and sends the manager an add at the
    configuration version it last heard (M3). The add travels on its own, like a push,
    and the primary does not wait for its answer (it gave up waiting, as a real one
    does after 2 s): so it can reach the manager after a later drop of the same
    replica. The primary hears versions from lease and drop answers, and reads the
    configuration again after a refusal.
  * X6 - a lost message only leaves the network, and no step reads the network but to
    deliver from it: every state a run with a loss reaches, network aside, the same run
    reaches with that message never delivered. So a loss adds no state to check (only
    a way to draw a run); the default budgets leave it out.
  * X8 - a request to the manager may go unanswered in time (bank/branch_roles.py,
    after_failed_change: TIMED_OUT), its first try still on its way: the manager may
    take it later, or took it and its answer was lost. The primary keeps the version
    it heard (M3) and sends the same request again: a drop at its next try (it still
    waits for the replica, so the write is not acknowledged), an add at any later
    moment, as its heartbeat does (it never hears an add's answer here, X7). Both
    tries travel on their own and may reach the manager in either order, before or
    after other changes.

Invariants:
  * acked-writes-survive  every write a client was told is acknowledged is in the log
                          of the branch's recorded primary (even after a failover)
  * one-primary-per-epoch no two servers acknowledged writes in the same epoch

Glossary:
  push     the primary sending one write to a replica (and the replica's answer)
  view     the replicas a primary waits for before it acknowledges a write
"""

from dataclasses import dataclass, replace
from typing import NamedTuple

from bank.core.manager import LEASE_SECONDS, Configuration, Manager, Refused, lease_wait
from bank.core.messages import Role
from bank.core.replica import BranchRole, Do, RoleRefused, lease_holds
from bank.explorer.world import Note

PRIMARY, MANAGER, CLIENT = "Mumbai", "coordinator", "client"
REPLICAS = ("Mumbai-r1", "Mumbai-r2")    # a world of n replicas has the first n (X5)
TICK = lease_wait()
RULES = {
    "acked-writes-survive": "every acknowledged write is in the log of the branch's "
                            "recorded primary, also after a failover (R1, R7, M5)",
    "one-primary-per-epoch": "no two servers acknowledged writes in the same epoch (R8, M4)",
}


@dataclass(frozen=True)
class Budgets:
    writes: int = 2
    crashes: int = 1
    losses: int = 0          # a loss adds no state to check (X6), only a way to draw a run
    ticks: int = 2
    catch_ups: int = 1       # dropped replicas catching up, their add on its way (X7)
    resends: int = 1         # requests to the manager unanswered in time, sent again (X8)
    variant: str = ""
    replicas: int = 1        # not a budget: the size of the world (X5)


class Server(NamedTuple):
    name: str
    up: bool
    role: Role
    epoch: int
    primary: str
    log: tuple               # writes applied, in order (durable)
    view: tuple              # replicas it pushes to and waits for (durable)
    lease_from: float        # when its lease was granted (-1: none)
    heard: int = 0           # the configuration version it last heard (volatile, M3)
    asking: tuple = ()       # replicas whose add it sent and heard no answer to (volatile)


class Push(NamedTuple):
    src: str
    dst: str
    kind: str                # "push", "ack", "refused", or "add" / "drop" (to the manager)
    write: str               # an add or drop: the replica it names
    epoch: int
    version: int = 0         # an add or drop: the configuration version its sender heard
    copy: int = 0            # 0, or which resend this is (X8): two tries of one request
                             # are two messages on their way, not one


class State(NamedTuple):
    clock: int
    config: Configuration
    granted_at: float
    servers: tuple           # Server: the primary first, then each replica
    network: frozenset       # Push messages on their way
    pending: frozenset       # (write, server, replica): a primary still waits (volatile)
    written: tuple           # writes the client has sent
    acked: frozenset         # (write, server, epoch) the client was told
    used: tuple              # (crashes, losses, ticks, catch_ups, resends) spent: _spend()
    last_change: tuple = None    # the manager's last add or drop taken (M3, in memory)


CRASHES, LOSSES, TICKS, CATCH_UPS, RESENDS = range(5)   # what State.used counts (X4)


def _spend(s, budget: int):
    """The state with one more of `budget` spent (X4)."""
    used = list(s.used)
    used[budget] += 1
    return s._replace(used=tuple(used))


def _on_its_way(s, server, kind: str, replica: str):
    """X8: one resend spent, and the request (an add or drop of replica, at the version
    the primary kept, M3) put on its way as a message of its own beside any earlier try."""
    s = _spend(s, RESENDS)
    again = Push(server.name, MANAGER, kind, replica, server.epoch, server.heard,
                 s.used[RESENDS])
    return s._replace(network=s.network | {again})


# ---- the broken variants (each a small change to a real core) --------------------------


class AddAtAnyVersion(Manager):
    """Breaks M3: the manager takes an add or drop whatever version its primary heard
    (the kit's old rule): an add delayed on its way can land after a later drop."""

    def _check_version(self, version):
        pass


class RepeatAtAnyVersion(Manager):
    """Breaks M3: a request like the last change taken (same primary, epoch and replica)
    is answered as its repeat whatever version it names: a second drop of the replica,
    made at the version the first one's answer told, is answered without a record."""

    def _repeated(self, asked):
        return self.last_change is not None and asked[:-1] == self.last_change[:-1]


class RepeatAfterRefusal(Manager):
    """Breaks M3: the manager notes each add or drop as it arrives, refused or taken, as
    the one to answer again: a drop refused as made at an old version, sent again
    unchanged after a timeout (X8), is answered as a repeat with no record, and its
    primary stops waiting for a replica the manager still lists."""

    def _repeated(self, asked):
        repeated = super()._repeated(asked)
        self.last_change = asked           # noted on arrival, before it is taken
        return repeated


class PromoteOutOfSync(Manager):
    """Breaks M5: the manager installs any replica, in the recorded in-sync set or not."""

    def install(self, new_primary, expected_version, now):
        self.config = Configuration(self.config.primary, (new_primary,), self.config.epoch,
                                    self.config.version)
        return super().install(new_primary, expected_version, now)


# The default budgets, by number of replicas: each world is searched exhaustively in
# well under a minute, with no loss (X6). Two replicas: one lease period (with
# --ticks 2 there are three times the states), no catch-up and no resend.
DEFAULTS = {1: Budgets(), 2: Budgets(ticks=1, catch_ups=0, resends=0, replicas=2)}


def budgets_for(replicas: int = 1, variant: str = "", **given) -> Budgets:
    """The default budgets of a world of `replicas` replicas, with every budget `given`
    (not None) instead."""
    check_replicas(replicas)
    given = {name: value for name, value in given.items() if value is not None}
    return replace(DEFAULTS[replicas], variant=variant, **given)


def check_replicas(replicas: int) -> None:
    """A sentence (ValueError) unless the world has default budgets for that many."""
    if replicas not in DEFAULTS:
        raise ValueError(f"--replicas must be {' or '.join(map(str, DEFAULTS))}.")


VARIANTS = {"promote-out-of-sync": "M5: only a member of the recorded in-sync set is promoted",
            "drop-without-manager": "R7: a primary drops a silent replica only once the "
                                    "manager has recorded it",
            "ack-after-one-replica": "R1: a primary answers a write only after every "
                                     "in-sync replica has it",
            "add-at-any-version": "M3: the manager takes an add or drop only at the "
                                  "configuration version its primary last heard",
            "repeat-at-any-version": "M3: only the last change taken, asked again at the "
                                     "same version, is answered as a repeat",
            "repeat-after-refusal": "M3: only a change the manager took is answered "
                                    "again as a repeat, never a request it refused"}
# The replicas a variant needs before it can break anything (1 if not named here): with
# one replica, "one of them" and "every one" are the same.
REPLICAS_NEEDED = {"ack-after-one-replica": 2}
# The budgets a variant needs before it can break anything: a late add comes only from a
# catch-up (X7), and a refused request is sent again unchanged only after a timeout (X8).
BUDGETS_NEEDED = {"add-at-any-version": (("catch_ups", 1),),
                  "repeat-after-refusal": (("catch_ups", 1), ("resends", 1))}


# ---- the world's steps at the configuration manager -----------------------------------

class ManagerSteps:
    """Mixed into ReplicationWorld: the steps that happen at the coordinator, the
    configuration manager. Its core (Manager, bank/core/manager.py, M1-M5) decides;
    these only rebuild it from the state (X2) and carry out what it says."""

    def _renew(self, s, name, notes):
        server = self._server(s, name)
        manager = self._manager(s)
        try:
            manager.lease(name, server.epoch, self._now(s))                    # M2
        except Refused:
            s = self._with_manager(s, manager)                                # X2
            role = BranchRole(server.role, server.epoch, server.primary)
            role.on_higher_epoch(manager.config.epoch, manager.config.primary)  # R4
            notes.append(Note(MANAGER, name, "not the primary", "fenced (R4)"))
            return self._put(s, name, server._replace(role=role.role, epoch=role.epoch))
        notes.append(Note(name, MANAGER, "lease", "renewed"))
        s = self._with_manager(s, manager)
        return self._put(s, name, server._replace(lease_from=self._now(s),
                                                  heard=manager.config.version))

    def _failover(self, s, name, notes):
        manager = self._manager(s)
        try:
            manager.install(name, s.config.version, self._now(s))             # M4, M5
        except Refused as exc:
            notes.append(Note(MANAGER, MANAGER, "failover refused", f"{exc.rule}"))
            return self._with_manager(s, manager)                             # X2
        s = self._with_manager(s, manager)
        server = self._server(s, name)
        role = BranchRole(server.role, server.epoch, server.primary)
        role.on_promote(manager.config.epoch)                                 # R5
        notes.append(Note(MANAGER, name, "promote", f"epoch {role.epoch} (recorded first)"))
        return self._put(s, name, server._replace(role=role.role, epoch=role.epoch,
                                                  primary="", view=(),
                                                  lease_from=self._now(s)))

    def _tick(self, s, _what, notes):
        notes.append(Note(MANAGER, MANAGER, "time passes", "every lease not renewed ends"))
        return _spend(s, TICKS)._replace(clock=s.clock + 1)

    def _receive_change(self, s, msg, notes):
        """M3: an add or drop reaches the manager; no one waits for its answer any more
        (X7, X8): taken (a new version), answered again as a repeat, or refused."""
        manager = self._manager(s)
        ask = manager.add if msg.kind == "add" else manager.drop
        before = manager.config.version
        try:
            ask(msg.src, msg.epoch, msg.write, self._now(s), msg.version)
        except Refused as exc:
            notes.append(Note(MANAGER, MANAGER, f"{msg.kind} refused",
                              f"{exc.rule} ({exc.kind})"))
            return self._with_manager(s, manager)                             # X2
        if manager.config.version == before:
            notes.append(Note(MANAGER, MANAGER, "answered again", "a repeat: no record"))
        else:
            listed = "in sync" if msg.kind == "add" else "out of sync"
            notes.append(Note(MANAGER, MANAGER, f"{msg.write} {listed}",
                              f"version {manager.config.version} (forced)"))
        return self._with_manager(s, manager)

    def _manager(self, s) -> Manager:
        manager = self.manager_class(PRIMARY, s.config, s.granted_at)
        manager.last_change = s.last_change          # X2: the coordinator's memory
        return manager

    def _with_manager(self, s, manager) -> State:
        return s._replace(config=manager.config, granted_at=manager.granted_at,
                          last_change=manager.last_change)


# ---- the world ------------------------------------------------------------------------------

class ReplicationWorld(ManagerSteps):
    """The simulator: initial state, enabled actions, one step (with diagram notes)."""

    def __init__(self, budgets: Budgets = Budgets()):
        if budgets.variant and budgets.variant not in VARIANTS:
            raise ValueError(f"There is no replication variant {budgets.variant!r}; the "
                             f"variants are: {', '.join(VARIANTS)}.")
        check_replicas(budgets.replicas)
        self.budgets = budgets
        self.replicas = REPLICAS[:budgets.replicas]
        self.servers = (PRIMARY,) + self.replicas
        self.parties = (CLIENT, MANAGER) + self.servers     # the diagram's columns
        self.manager_class = {"promote-out-of-sync": PromoteOutOfSync,
                              "add-at-any-version": AddAtAnyVersion,
                              "repeat-at-any-version": RepeatAtAnyVersion,
                              "repeat-after-refusal": RepeatAfterRefusal}.get(
                                  budgets.variant, Manager)

    def initial(self) -> State:
        """Every replica in sync, recorded so by the manager; the primary holds a lease."""
        primary = Server(PRIMARY, True, Role.PRIMARY, 1, "", (), self.replicas, 0.0, 1)
        replicas = tuple(Server(name, True, Role.REPLICA, 1, PRIMARY, (), (), -1.0)
                         for name in self.replicas)
        return State(0, Configuration(PRIMARY, self.replicas, 1, 1), 0.0,
                     (primary,) + replicas, frozenset(), frozenset(), (), frozenset(),
                     (0, 0, 0, 0, 0))

    # ---- what may happen next ---------------------------------------------------------

    def actions(self, s: State) -> list:
        b, (crashes, losses, ticks, catch_ups, resends) = self.budgets, s.used
        found = []
        if len(s.written) < b.writes:
            found += [("write", name) for name in self.servers if self._server(s, name).up]
        for msg in sorted(s.network):
            if msg.dst == MANAGER or self._server(s, msg.dst).up:       # X2
                found.append(("deliver", msg))
            if losses < b.losses:
                found.append(("lose", msg))
        silent = sorted({(o, r) for _, o, r in s.pending})
        found += [("silent", who) for who in silent]
        if resends < b.resends:                                          # X8
            found += [("drop_unanswered", who) for who in silent]
            found += [("add_again", (server.name, r)) for server in s.servers
                      if server.up and server.role is Role.PRIMARY for r in server.asking]
        for name in self.servers:
            server = self._server(s, name)
            if server.up and server.role is Role.PRIMARY:
                found.append(("renew", name))
            if not server.up:
                found.append(("restart", name))
            elif crashes < b.crashes:
                found.append(("crash", name))
            if server.up and name != s.config.primary:
                found.append(("failover", name))
        if ticks < b.ticks:
            found.append(("tick", ""))
        if catch_ups < b.catch_ups:
            found += [("catch_up", pair) for pair in self._may_catch_up(s)]
        return found

    def _may_catch_up(self, s: State) -> list:
        """X7: (primary, replica) for each up replica its up primary dropped."""
        pairs = []
        for primary in s.servers:
            if primary.up and primary.role is Role.PRIMARY:
                pairs += [(primary.name, r.name) for r in s.servers
                          if r.up and r.role is Role.REPLICA and r.primary == primary.name
                          and r.epoch == primary.epoch and r.name not in primary.view]
        return pairs

    # ---- one step ----------------------------------------------------------------------

    def step(self, s: State, action: tuple) -> tuple:
        """(next state, notes). The cores decide; this only moves values around."""
        kind, what = action
        notes = []
        s = getattr(self, "_" + kind)(s, what, notes)
        return s, notes

    def _write(self, s, name, notes):
        w = f"W{len(s.written) + 1}"
        s = s._replace(written=s.written + (w,))
        server = self._server(s, name)
        notes.append(Note(CLIENT, name, f"deposit {w}"))
        role = BranchRole(server.role, server.epoch, server.primary)
        try:
            role.on_write(lease_ok=self._lease_ok(s, server))       # R1, R2, R8
        except RoleRefused as exc:
            notes.append(Note(name, name, "refused", f"{exc.rule}: not serving writes"))
            return s
        server = server._replace(log=server.log + (w,))
        notes.append(Note(name, name, f"applied {w}", "durable"))
        s = self._put(s, name, server)
        pushes = {Push(name, r, "push", w, server.epoch) for r in server.view}
        s = s._replace(network=s.network | pushes,
                       pending=s.pending | {(w, name, r) for r in server.view})
        return self._ack_if_done(s, name, w, notes)

    def _deliver(self, s, msg, notes):
        s = s._replace(network=s.network - {msg})
        if msg.dst == MANAGER:                         # X7, X8: it was on its way
            notes.append(Note(msg.src, msg.dst, msg.kind,
                              f"{msg.write} at version {msg.version}"))
            return self._receive_change(s, msg, notes)
        notes.append(Note(msg.src, msg.dst, f"{msg.kind} {msg.write}"))
        if msg.kind == "push":
            return self._receive_push(s, msg, notes)
        sender_left = (msg.write, msg.dst, msg.src)
        if sender_left not in s.pending:
            return s                                   # the primary forgot (a crash)
        if msg.kind == "refused":                      # R3/R4: we were replaced
            server = self._server(s, msg.dst)
            role = BranchRole(server.role, server.epoch, server.primary)
            role.on_replaced()
            s = self._put(s, msg.dst, server._replace(role=role.role))
            notes.append(Note(msg.dst, msg.dst, "fenced", "a newer primary exists (R4)"))
            return s._replace(pending=frozenset(p for p in s.pending if p[1] != msg.dst))
        s = s._replace(pending=self._stop_waiting(s, sender_left))
        return self._ack_if_done(s, msg.dst, msg.write, notes)

    def _receive_push(self, s, msg, notes):
        server = self._server(s, msg.dst)
        role = BranchRole(server.role, server.epoch, server.primary)
        try:
            effects = role.on_push(msg.epoch)                         # R3, R4
        except RoleRefused:
            effects = [Do.REFUSE]
        server = server._replace(role=role.role, epoch=role.epoch)
        if Do.REFUSE in effects:
            notes.append(Note(msg.dst, msg.dst, "refused the push", f"epoch {msg.epoch} (R3)"))
            reply = msg._replace(src=msg.dst, dst=msg.src, kind="refused")
        else:
            if msg.write not in server.log:
                server = server._replace(log=server.log + (msg.write,))
            notes.append(Note(msg.dst, msg.dst, f"applied {msg.write}", "durable"))
            reply = msg._replace(src=msg.dst, dst=msg.src, kind="ack")
        s = self._put(s, msg.dst, server)
        return s._replace(network=s.network | {reply})

    def _silent(self, s, who, notes):
        """R7: the primary waited too long for `replica`: the manager must drop it first."""
        name, replica = who
        server = self._server(s, name)
        role = BranchRole(server.role, server.epoch, server.primary)
        notes.append(Note(name, name, "timeout", f"{replica} did not answer"))
        try:
            role.on_replica_silent()
        except RoleRefused:
            return s
        if self.budgets.variant != "drop-without-manager":
            manager = self._manager(s)
            try:
                before = manager.config.version
                manager.drop(name, server.epoch, replica, self._now(s),       # M3
                             server.heard)
                taken = ("recorded (forced)" if manager.config.version != before else
                         "answered again as a repeat (no record)")
                notes.append(Note(name, MANAGER, "drop", f"{replica} at version "
                                  f"{server.heard}: {taken}"))
                s = self._with_manager(s, manager)
                role.on_drop_answer(recorded=True)
            except Refused as exc:
                notes.append(Note(MANAGER, name, "refused", str(exc)[:40]))
                s = self._with_manager(s, manager)     # X2: kept after a refusal too
                if exc.kind == "changed":          # M3: it reads the version, asks again
                    s = self._put(s, name, server._replace(heard=manager.config.version))
                return s
            server = server._replace(heard=manager.config.version)
        server = server._replace(view=tuple(r for r in server.view if r != replica),
                                 asking=tuple(r for r in server.asking if r != replica))
        s = self._put(s, name, server)
        waiting = {w for w, o, r in s.pending if (o, r) == who}
        s = s._replace(pending=frozenset(p for p in s.pending if p[1:] != who))
        for w in sorted(waiting):
            s = self._ack_if_done(s, name, w, notes)
        return s

    def _drop_unanswered(self, s, who, notes):
        """X8: as _silent, but no answer to the drop comes in time: the request is still
        on its way (the manager may take it later, or took it and the answer was lost).
        The primary keeps the version it heard (M3) and still waits for the replica, so
        the write is not acknowledged; its next try (silent) sends the same drop again."""
        name, replica = who
        server = self._server(s, name)
        role = BranchRole(server.role, server.epoch, server.primary)
        notes.append(Note(name, name, "timeout", f"{replica} did not answer"))
        try:
            role.on_replica_silent()                                        # R7
        except RoleRefused:
            return s
        notes.append(Note(name, name, "drop: no answer in time", f"{replica} at version "
                          f"{server.heard}, still on its way"))
        return _on_its_way(s, server, "drop", replica)

    def _add_again(self, s, pair, notes):
        """X8: no answer to its add came in time (X7): the primary sends the same add
        again, at the version it last heard (kept after a timeout, M3). The first try may
        still be on its way, and either may reach the manager first."""
        name, replica = pair
        primary = self._server(s, name)
        notes.append(Note(name, name, "add: no answer in time", f"sends it again: "
                          f"{replica} at version {primary.heard}"))
        return _on_its_way(s, primary, "add", replica)

    def _crash(self, s, name, notes):
        notes.append(Note(name, name, "CRASH", "volatile state lost", kind="crash"))
        s = _spend(s, CRASHES)._replace(
            network=frozenset(m for m in s.network if m.dst != name))
        s = s._replace(pending=frozenset(p for p in s.pending if p[1] != name))
        return self._put(s, name, self._server(s, name)._replace(up=False))

    def _restart(self, s, name, notes):
        notes.append(Note(name, name, "restart", "from its durable state"))
        return self._put(s, name, self._server(s, name)._replace(up=True, lease_from=-1.0,
                                                                 heard=0, asking=()))

    def _lose(self, s, msg, notes):
        notes.append(Note(msg.src, msg.dst, f"{msg.kind} {msg.write}", "LOST", kind="lost"))
        return _spend(s, LOSSES)._replace(network=s.network - {msg})

    def _catch_up(self, s, pair, notes):
        """X7: `replica` caught up with `name`: it copies the primary's log, the primary
        pushes to it again (its view is durable, saved before the ask, Rule 3) and asks
        the manager to list it, at the version it last heard; it does not wait."""
        name, replica = pair
        primary = self._server(s, name)
        notes.append(Note(replica, name, "caught up", f"copied {len(primary.log)} write(s)"))
        s = self._put(s, replica, self._server(s, replica)._replace(log=primary.log))
        s = self._put(s, name, primary._replace(view=primary.view + (replica,),
                                                asking=primary.asking + (replica,)))
        add = Push(name, MANAGER, "add", replica, primary.epoch, primary.heard)
        return _spend(s, CATCH_UPS)._replace(network=s.network | {add})

    # ---- helpers ---------------------------------------------------------------------------

    def _ack_if_done(self, s, name, w, notes):
        if any(p[:2] == (w, name) for p in s.pending):
            return s
        server = self._server(s, name)
        role = BranchRole(server.role, server.epoch, server.primary)
        try:
            role.on_write_pushed(lease_ok=self._lease_ok(s, server))     # R1, R4, R8
        except RoleRefused as exc:
            notes.append(Note(name, CLIENT, f"not acknowledged {w}", f"{exc.rule}"))
            return s
        notes.append(Note(name, CLIENT, f"ack {w}", f"epoch {server.epoch}"))
        return s._replace(acked=s.acked | {(w, name, server.epoch)})

    def _stop_waiting(self, s, answered) -> frozenset:
        """R1: a replica's answer ends the wait for that replica only. (The broken
        variant ack-after-one-replica stops waiting for all of them at the first.)"""
        if self.budgets.variant == "ack-after-one-replica":
            return frozenset(p for p in s.pending if p[:2] != answered[:2])
        return s.pending - {answered}

    def _now(self, s) -> float:
        return s.clock * TICK

    def _lease_ok(self, s, server: Server) -> bool:
        """R8, the servers' rule (core lease_holds): the view stands for the replicas the
        primary may be listed with; a lease runs shorter than a tick (X3)."""
        until = server.lease_from + LEASE_SECONDS if server.lease_from >= 0 else -1.0
        return lease_holds(bool(server.view), self._now(s), until)

    def _server(self, s, name) -> Server:
        return server_named(s, name)

    def _put(self, s, name, server) -> State:
        return s._replace(servers=tuple(server if old.name == name else old
                                        for old in s.servers))


def server_named(s: State, name: str) -> Server:
    """The server called `name` in state s (the invariants need it too)."""
    for server in s.servers:
        if server.name == name:
            return server
    raise KeyError(name)
