"""Primary-backup replication of a branch: what must reach the backup before we answer.

Role: copy every change of a branch's ledger to its replicas, in order, and decide
which replicas are "in sync" (have every acknowledged write) and may be promoted.

The write path (synchronous mode, the default):

    client --deposit--> primary: SQLite COMMIT (change n in the replog)
                        primary --replicate(n)--> every in-sync replica: apply n, COMMIT
                        primary <--applied n------ (or timeout: that replica is out of sync)
    client <--reply---- primary

Rules:
  * Rule 1 - the primary answers a write (prepare and commit included) only after
    every in-sync replica has made it durable. So a yes vote exists on the replicas
    before the coordinator hears it, and survives the loss of the primary.
  * Rule 2 - changes are applied in replog order; a replica that misses one (a gap,
    a timeout) is out of sync: it no longer receives changes, is told so at every
    heartbeat, catches up by pulling ``changes_since``, and is in sync again only
    once it has everything. A replica whose history differs from the primary's (it
    holds a change the primary never had) throws its copy away and copies again, but
    never for a primary of an older epoch than its own (R3: one that was replaced,
    named by a stale --replica-of): it copies nothing from it, and waits for the
    manager to name the current primary (bank/coordinator_lab.py, the manager round).
  * Rule 3 - the in-sync set that counts is the one the configuration manager (the
    coordinator, bank/config_manager.py) recorded. A replica joins it after the
    primary pushed it everything; it leaves it only once the manager recorded the
    removal (R7 of bank/core/replica.py): until then a write that it lacks is not
    acknowledged, and if the manager cannot be asked within DROP_WAIT seconds the
    write fails with a sentence saying why. The primary keeps the set it may be in
    the manager's record durably (``in_set``), so a restarted primary pushes to them
    too. Each add and drop names the configuration version the primary last heard
    (M3): an add it gave up waiting for can then never reach the manager after a
    later drop and list again a replica the primary answers writes without. Nothing
    is acknowledged that a promotion could lose.
  * Rule 4 - a primary with a non-empty ``in_set`` renews a lease from the manager
    every heartbeat and serves writes only while it holds one (R8). Without one it
    acknowledges nothing, so its heartbeat pushes nothing to its in-sync replicas:
    one it cannot reach then needs no drop (R7), which would wait DROP_WAIT for the
    manager. (A whole cluster started again: its primaries come up before their
    replicas and the coordinator, and each waited six seconds.)
  * Rule 5 - only a primary pushes (changes or heartbeats), and a push carries the
    epoch its sender is the primary at, read with the role as one, just before each
    push (BranchRole.push_epoch, R4), never an epoch read apart from the role.
    A fenced server has adopted the new epoch, and a replica takes any push at its own
    epoch (R3): a push from a fenced old primary would pass, and write into the new
    primary's replica a change that was never acknowledged, where the new primary's
    own change of that number then counts as already applied. The lease does not
    prevent it: a write that passed its lease check may still be pushing long after
    the lease ran out (a slow replica, a drop waiting for the manager, a paused
    thread), while another thread learns the new epoch from the manager.
  * Async mode (``--async-replication``, for the lab that shows what it loses): the
    primary answers first and ships changes a moment later. A failover can then lose
    acknowledged writes. It is the lesson, never the default.

Glossary:
  replog     the ordered list of changes of a branch (ledger_replog.py); seq is a position in it
  in sync    a replica holding every change the primary has acknowledged. Four places
             keep a view of it: ReplicaLink.in_sync (the primary pushes to it and waits
             for it), ReplicaLink.recorded (the manager answered that it recorded it),
             Replicas.in_set (durable: every replica the manager MAY list, a superset
             of its record) and the manager's own in-sync set (the one that counts,
             Rule 3); a replica's Follower.in_sync is what it was last told
  epoch      a number raised by every promotion; higher wins
  fenced     a former primary that learned of a higher epoch: it refuses writes
"""

import json
import logging
import threading
import time

from bank import rpc
from bank.core.replica import RoleRefused
from bank.errors import BankError, FaultCode

PUSH_TIMEOUT = 2.0       # seconds a replica may take to apply a push before it is dropped
DROP_WAIT = 6.0          # seconds a write waits for the manager to record a drop (R7)
HEARTBEAT_EVERY = 1.0    # seconds between pushes when nothing is written
BATCH = 200              # changes per push or pull

log = logging.getLogger("replication")


# ---- the primary's side --------------------------------------------------------------------

class ReplicaLink:
    """One replica as the primary sees it."""

    def __init__(self, url: str, secret, acked: int):
        self.url, self.acked, self.in_sync = url, acked, False
        self.recorded = False                  # the manager answered that it is in sync
        self.refusal = ""                      # the manager's last refusal to record it
        self.client = rpc.Client(url, secret, timeout=PUSH_TIMEOUT, label=f"replica {url}")
        self.lock = threading.Lock()           # one push to this replica at a time

    def status(self, primary_seq: int) -> dict:
        return {"url": self.url, "in_sync": self.in_sync, "applied": self.acked,
                "lag": max(0, primary_seq - self.acked)}


class Replicas:
    """The primary's replicas: pushes changes and keeps the in-sync set (Rules 1, 2)."""

    def __init__(self, branch, synchronous: bool = True):
        self.branch, self.ledger, self.synchronous = branch, branch.ledger, synchronous
        self.links = {}
        for url in json.loads(self.ledger.meta("replicas", "[]")):
            self.links[url] = ReplicaLink(url, branch.secret, 0)   # out of sync until it calls
        self.in_set = set(json.loads(self.ledger.meta("in_set", "[]")))        # Rule 3
        self._in_set_lock = threading.Lock()   # one change of in_set at a time (Rule 3)
        for url in self.in_set:          # may be in the manager's set: push to it as before
            self.links.setdefault(url, ReplicaLink(url, branch.secret, 0)).in_sync = True

    def attach(self, url: str, applied: int, last_hash: str = "") -> dict:
        """A replica introduces itself; it starts out of sync and catches up by pulling.

        If its history differs from ours (it holds a change we never acknowledged,
        e.g. from a primary that died), the answer says "diverged": it must start over.
        """
        diverged = applied > self.ledger.applied_seq() or \
            (applied and last_hash != self.ledger.history_hash(applied))
        link = self.links.get(url)
        if link is None:
            link = self.links[url] = ReplicaLink(url, self.branch.secret, applied)
            self.ledger.set_meta(replicas=json.dumps(sorted(self.links)))
        with link.lock:
            if link.in_sync:             # it restarted: drop it through the manager first
                self._drop(link, "it attached again, after a restart")
            link.in_sync, link.acked = False, 0 if diverged else applied
        log.info("replica %s attached at change %d%s", url, applied,
                 " (diverged: it starts over)" if diverged else "")
        return {"epoch": self.branch.epoch, "primary_seq": self.ledger.applied_seq(),
                "diverged": bool(diverged), "name": self.branch.name}

    def caught_up(self, url: str, applied: int) -> dict:
        """A replica says it pulled everything; push what is left, then it is in sync."""
        link = self.links.get(url)
        if link is None:
            raise BankError(FaultCode.BAD_INPUT, f"{url} is not attached as a replica here.")
        with link.lock:
            link.acked = applied
            link.in_sync = True              # pushed to from now on; _push clears it on failure
            self._push(link, self.ledger.applied_seq())
            if link.in_sync:
                self._join_manager_set(link)
        if link.in_sync:
            log.info("replica %s is in sync at change %d", url, link.acked)
        return {"in_sync": link.in_sync, "applied": link.acked}

    def _join_manager_set(self, link: ReplicaLink) -> None:
        """Rule 3: ask the manager to record it in sync. It counts as maybe-recorded
        (in_set, durable) BEFORE we ask: an answer lost on the way must not let us
        forget that the manager may list it."""
        manager = self.branch.manager()
        if manager is None:
            return                        # no manager: no one can promote it, nothing to record
        self._change_in_set(add=link.url)
        try:
            self.branch.heard_configuration(manager.call(
                "add_replica", self.branch.name, self.branch.url, self.branch.epoch,
                link.url, self.branch.config_version))
            link.recorded, link.refusal = True, ""
        except BankError as exc:          # the next heartbeat asks again; said once
            level = logging.DEBUG if exc.message == link.refusal else logging.WARNING
            log.log(level, "the manager did not record %s in sync: %s", link.url, exc.message)
            link.refusal = exc.message
            if exc.code == FaultCode.NOT_PRIMARY:
                self.branch.learn_from_manager()
            else:                         # M3: maybe refused at an old version
                self.branch.after_failed_change(exc)

    def _change_in_set(self, add: str = "", remove: str = "") -> None:
        """Rule 3: add or remove one replica of in_set, durably. Joins and drops of
        different replicas run under different link locks: the set is read and written
        under its own lock, or one of two changes at once would be lost (a replica the
        manager lists, forgotten here, would then be dropped without asking it)."""
        with self._in_set_lock:
            urls = set(self.in_set)
            if add:
                urls.add(add)
            urls.discard(remove)
            if urls != self.in_set:
                self.ledger.set_meta(in_set=json.dumps(sorted(urls)))
                self.in_set = urls

    def after_write(self) -> None:
        """Rule 1: in synchronous mode, return only once every in-sync replica has it.
        With no replica in sync there is nobody to wait for, and no need to read the
        replog's end (a query on every write of an unreplicated branch; issue 13)."""
        if self.synchronous and any(link.in_sync for link in list(self.links.values())):
            self.sync_all(self.ledger.applied_seq())

    def sync_all(self, upto: int) -> None:
        for link in list(self.links.values()):
            if link.in_sync:
                with link.lock:
                    self._push(link, upto)

    def _push(self, link: ReplicaLink, upto: int) -> None:
        """Send link every change up to `upto` (caller holds link.lock); drop it on failure."""
        try:
            while link.in_sync:
                epoch = self.branch.roles.push_epoch()       # Rule 5: the epoch we are
                if not epoch:                                # the primary at, read with
                    return                                   # the role (R4), or nothing
                self.branch.check_replication_link()     # lab: cut-replication
                batch = self.ledger.changes_since(link.acked, BATCH)
                ours = self.ledger.applied_seq()      # read after the batch: it has them all
                answer = link.client.call("replicate", epoch, batch, ours,
                                          self.in_sync_urls(), self.branch.name)
                link.acked = answer["applied"]
                if link.acked > ours:        # it holds changes we never had: out of sync,
                    self._drop(link, "it holds changes this primary never had")
                    return                   # and attaching again copies it anew
                if not batch or link.acked >= upto:
                    return
        except BankError as exc:
            if exc.code == FaultCode.NOT_PRIMARY:
                self.branch.fence(exc.message)       # R4: someone was promoted
                return                               # the write is refused: we are fenced
            self._drop(link, exc.message)

    def _drop(self, link: ReplicaLink, why: str) -> None:
        """R7: stop waiting for this replica, once the manager recorded that it left the
        in-sync set (caller holds link.lock). Raises BankError (the write is not
        acknowledged) if the manager cannot record it within DROP_WAIT seconds."""
        # Not in in_set: the manager cannot list it (in_set is saved BEFORE every ask to
        # add, and shrunk only after a recorded drop), so it can never be promoted, and
        # dropping it needs no one's leave.
        if link.url not in self.in_set or self.branch.role != "primary":
            link.in_sync = link.recorded = False     # never recorded in sync, or replaced
            log.warning("replica %s is out of sync: %s", link.url, why)
            return
        self.branch.roles.on_replica_silent()                 # ASK_MANAGER_TO_DROP
        refusal = self._ask_manager_to_drop(link.url)
        try:
            self.branch.roles.on_drop_answer(recorded=not refusal)   # MARK_OUT_OF_SYNC
        except RoleRefused:                          # REFUSE: the write is not acknowledged
            raise BankError(FaultCode.UNAVAILABLE,
                            f"Not acknowledged: {self.branch.name}'s replica {link.url} did "
                            f"not take the change ({why}), and the configuration manager "
                            f"could not record it out of sync ({refusal}). The change is "
                            "kept here but may be lost in a failover; try again later.") \
                from None
        self._change_in_set(remove=link.url)
        link.in_sync = link.recorded = False
        log.warning("replica %s is out of sync (recorded by the manager): %s", link.url, why)

    def _ask_manager_to_drop(self, url: str) -> str:
        """"" once the manager recorded the removal, else why not (after DROP_WAIT s)."""
        deadline, why = time.monotonic() + DROP_WAIT, "no configuration manager is known"
        while True:
            manager = self.branch.manager()
            if manager is not None:
                try:
                    self.branch.heard_configuration(manager.call(
                        "drop_replica", self.branch.name, self.branch.url,
                        self.branch.epoch, url, self.branch.config_version))
                    return ""
                except BankError as exc:
                    why = exc.message
                    if exc.code == FaultCode.NOT_PRIMARY:
                        self.branch.learn_from_manager()
                        return why
                    self.branch.after_failed_change(exc)         # M3: maybe changed
            if time.monotonic() >= deadline:
                return why
            time.sleep(0.3)               # a bounded wait for the manager to come back

    def in_sync_urls(self) -> list:
        return sorted(url for url, link in self.links.items() if link.in_sync)

    def heartbeat(self) -> None:
        """Keep replicas informed (and, in async mode, ship the changes). Out-of-sync
        replicas are told so, so that they stop believing they are in sync and catch up.
        Only a primary sends them (Rule 5)."""
        if self.branch.role != "primary":
            return
        try:
            if self.branch.lease_ok():     # Rule 4: no lease, no write to acknowledge, so
                self.sync_all(self.ledger.applied_seq())   # no drop to wait for either
        except BankError as exc:                  # R7: a drop the manager did not record
            log.warning("heartbeat: %s", exc.message)
        if self.branch.manager() is not None:
            # In sync but not recorded by the manager: it was not known yet, or it refused
            # (a primary's first add_replica can reach it before its first lease): ask again.
            for link in list(self.links.values()):
                if link.in_sync and not link.recorded and link.lock.acquire(blocking=False):
                    try:
                        if link.in_sync:
                            self._join_manager_set(link)
                    finally:
                        link.lock.release()
        for link in list(self.links.values()):
            if not link.in_sync and link.lock.acquire(blocking=False):
                try:
                    epoch = self.branch.roles.push_epoch()   # Rule 5: fenced meanwhile
                    if not epoch:                            # (the pushes above may
                        return                               # take seconds): stop
                    self.branch.check_replication_link()     # lab: cut-replication
                    link.client.call("replicate", epoch, [],
                                     self.ledger.applied_seq(), self.in_sync_urls(),
                                     self.branch.name)
                except BankError as exc:
                    if exc.code == FaultCode.NOT_PRIMARY:
                        self.branch.fence(exc.message)
                finally:
                    link.lock.release()

    def status(self) -> list:
        seq = self.ledger.applied_seq()
        return [link.status(seq) for link in self.links.values()]


# ---- the replica's side --------------------------------------------------------------------

class Follower:
    """A replica: applies the primary's changes in order, and catches up when behind."""

    def __init__(self, branch, primary_url: str):
        self.branch, self.ledger = branch, branch.ledger
        self.primary_url = primary_url
        self.primary = rpc.Client(primary_url, branch.secret, timeout=5,
                                  label=f"the primary at {primary_url}")
        self.in_sync = False            # restarted replicas always start out of sync
        self.said_older = False         # the primary named is of an older epoch: said
        self.primary_seq = 0            # the highest change the primary told us exists
        self.last_heard = 0.0
        self._apply_lock = threading.Lock()

    def receive(self, changes: list, primary_seq: int, in_sync_urls: list) -> dict:
        """A push from the primary, whose epoch the branch has checked (R3): apply the
        changes in order (Rule 2)."""
        if not all(isinstance(c, list) and len(c) == 2 and isinstance(c[0], int)
                   for c in changes):
            raise BankError(FaultCode.BAD_INPUT, "changes must be [[seq, change], ...].")
        with self._apply_lock:
            self.ledger.apply_changes(changes)       # in order, one fsync for all
            self.primary_seq = max(self.primary_seq, primary_seq)
            self.last_heard = time.monotonic()
            self.in_sync = self.branch.url in in_sync_urls
            return {"applied": self.ledger.applied_seq()}

    def catch_up(self) -> bool:
        """Attach to the primary, pull what we lack, and ask to be in sync again."""
        try:
            self.branch.check_replication_link()             # lab: cut-replication
            applied = self.ledger.applied_seq()
            info = self.primary.call("attach_replica", self.branch.url, applied,
                                     self.ledger.history_hash(applied), self.branch.name)
            self.branch.roles.check_same_branch(self.branch.name, info.get("name"))   # R9
            if info["epoch"] < self.branch.epoch:            # R3: it was replaced since
                if not self.said_older:                      # (said once, not every second)
                    log.warning("%s is a primary of epoch %d, older than mine (%d): it was "
                                "replaced, so I copy nothing from it and wait to be told "
                                "the current primary (the manager does, or an operator: "
                                "restart with --replica-of it)", self.primary_url,
                                info["epoch"], self.branch.epoch)
                self.said_older = True
                return self.in_sync
            self._adopt_epoch(info["epoch"])
            if info.get("diverged"):
                log.warning("my history differs from the primary's: copying it again")
                with self._apply_lock:
                    self.ledger.reset()
            while True:              # pulled without the lock (a push need not wait for
                since = self.ledger.applied_seq()           # the network), applied under it
                batch = self.primary.call("changes_since", since, BATCH)
                with self._apply_lock:
                    if self.ledger.applied_seq() == since:  # else a push came first: pull again
                        self.ledger.apply_changes(batch)
                if not batch:
                    break
            answer = self.primary.call("caught_up", self.branch.url, self.ledger.applied_seq())
            self.in_sync = answer["in_sync"]
            self.primary_seq = max(self.primary_seq, self.ledger.applied_seq())
            self.last_heard = time.monotonic()
        except BankError as exc:
            log.info("catching up from %s: %s", self.primary_url, exc.message)
        except RoleRefused:
            log.error("%s at %s is not a primary of %s: I do not follow it (R9)",
                      info.get("name"), self.primary_url, self.branch.name)
        return self.in_sync

    def _adopt_epoch(self, epoch: int) -> None:
        if epoch > self.branch.epoch:
            self.branch.learn_epoch(epoch, self.primary_url)

    def status(self) -> dict:
        return {"primary": self.primary_url, "in_sync": self.in_sync,
                "applied": self.ledger.applied_seq(), "primary_seq": self.primary_seq,
                "silent_for": round(time.monotonic() - self.last_heard, 1)
                if self.last_heard else -1}
