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
    holds a change the primary never had) throws its copy away and copies again.
  * Rule 3 - only an in-sync replica that has every change it was told of may be
    promoted; promotion raises the epoch. A server that sees a higher epoch than its
    own is fenced: an old primary coming back refuses writes and names the new one.
  * Async mode (``--async-replication``, for the lab that shows what it loses): the
    primary answers first and ships changes a moment later. A failover can then lose
    acknowledged writes.

Limit (a lesson, not a bug to hide): if the primary cannot reach a replica (a
network cut, not a crash), it marks it out of sync and goes on; the replica learns
this only when the primary reaches it again. If the primary dies for good before
that, the replica believes it is in sync and may be promoted without the writes
it missed. (A restarted primary tells every replica it can reach that it is out
of sync before it serves, and a restarted replica starts out of sync.)
Real systems close this hole by keeping the in-sync set in a consensus service
(ZooKeeper, Raft). Restarted replicas always start out of sync, so a kill -9 of a
replica cannot cause it.

Glossary:
  replog     the ordered list of changes of a branch (ledger_replog.py); seq is a position in it
  in sync    a replica holding every change the primary has acknowledged
  epoch      a number raised by every promotion; higher wins
  fenced     a former primary that learned of a higher epoch: it refuses writes
"""

import json
import logging
import threading
import time

from bank import rpc
from bank.errors import BankError, FaultCode

PUSH_TIMEOUT = 2.0       # seconds a replica may take to apply a push before it is dropped
HEARTBEAT_EVERY = 1.0    # seconds between pushes when nothing is written
BATCH = 200              # changes per push or pull

log = logging.getLogger("replication")


# ---- the primary's side --------------------------------------------------------------------

class ReplicaLink:
    """One replica as the primary sees it."""

    def __init__(self, url: str, secret, acked: int):
        self.url, self.acked, self.in_sync = url, acked, False
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

    def attach(self, url: str, applied: int, last_hash: str = "") -> dict:
        """A replica introduces itself; it starts out of sync and catches up by pulling.

        If its history differs from ours (it holds a change we never acknowledged,
        e.g. from a primary that died), the answer says "diverged": it must start over.
        """
        diverged = applied > self.ledger.applied_seq() or \
            (applied and last_hash != self.ledger.change_hash(applied))
        link = self.links.get(url)
        if link is None:
            link = self.links[url] = ReplicaLink(url, self.branch.secret, applied)
            self.ledger.set_meta(replicas=json.dumps(sorted(self.links)))
        with link.lock:
            link.in_sync, link.acked = False, 0 if diverged else applied
        log.info("replica %s attached at change %d%s", url, applied,
                 " (diverged: it starts over)" if diverged else "")
        return {"epoch": self.branch.epoch, "primary_seq": self.ledger.applied_seq(),
                "diverged": bool(diverged)}

    def caught_up(self, url: str, applied: int) -> dict:
        """A replica says it pulled everything; push what is left, then it is in sync."""
        link = self.links.get(url)
        if link is None:
            raise BankError(FaultCode.BAD_INPUT, f"{url} is not attached as a replica here.")
        with link.lock:
            link.acked = applied
            link.in_sync = True                      # push() clears it again on failure
            self._push(link, self.ledger.applied_seq())
        if link.in_sync:
            log.info("replica %s is in sync at change %d", url, link.acked)
        return {"in_sync": link.in_sync, "applied": link.acked}

    def after_write(self) -> None:
        """Rule 1: in synchronous mode, return only once every in-sync replica has it."""
        if self.synchronous:
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
                batch = self.ledger.changes_since(link.acked, BATCH)
                answer = link.client.call("replicate", self.branch.epoch, batch,
                                          self.ledger.applied_seq(), self.in_sync_urls())
                link.acked = answer["applied"]
                if not batch or link.acked >= upto:
                    return
        except BankError as exc:
            if exc.code == FaultCode.NOT_PRIMARY:
                self.branch.fence(exc.message)       # Rule 3: someone was promoted
            link.in_sync = False
            log.warning("replica %s is out of sync: %s", link.url, exc.message)

    def in_sync_urls(self) -> list:
        return sorted(url for url, link in self.links.items() if link.in_sync)

    def heartbeat(self) -> None:
        """Keep replicas informed (and, in async mode, ship the changes). Out-of-sync
        replicas are told so, so that they stop believing they are in sync and catch up."""
        self.sync_all(self.ledger.applied_seq())
        for link in list(self.links.values()):
            if not link.in_sync and link.lock.acquire(blocking=False):
                try:
                    link.client.call("replicate", self.branch.epoch, [],
                                     self.ledger.applied_seq(), self.in_sync_urls())
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
            for seq, op in changes:
                self.ledger.apply_change(seq, op)
            self.primary_seq = max(self.primary_seq, primary_seq)
            self.last_heard = time.monotonic()
            self.in_sync = self.branch.url in in_sync_urls
            return {"applied": self.ledger.applied_seq()}

    def catch_up(self) -> bool:
        """Attach to the primary, pull what we lack, and ask to be in sync again."""
        try:
            applied = self.ledger.applied_seq()
            info = self.primary.call("attach_replica", self.branch.url, applied,
                                     self.ledger.change_hash(applied))
            self._adopt_epoch(info["epoch"])
            if info.get("diverged"):
                log.warning("my history differs from the primary's: copying it again")
                with self._apply_lock:
                    self.ledger.reset()
            while True:
                with self._apply_lock:
                    batch = self.primary.call("changes_since", self.ledger.applied_seq(), BATCH)
                    for seq, op in batch:
                        self.ledger.apply_change(seq, op)
                if not batch:
                    break
            answer = self.primary.call("caught_up", self.branch.url, self.ledger.applied_seq())
            self.in_sync = answer["in_sync"]
            self.primary_seq = max(self.primary_seq, self.ledger.applied_seq())
            self.last_heard = time.monotonic()
        except BankError as exc:
            log.info("catching up from %s: %s", self.primary_url, exc.message)
        return self.in_sync

    def _adopt_epoch(self, epoch: int) -> None:
        if epoch > self.branch.epoch:
            self.branch.learn_epoch(epoch, self.primary_url)

    def promotable(self) -> str:
        """'' if this replica may become the primary (Rule 3), else why not."""
        applied = self.ledger.applied_seq()
        if not self.in_sync:
            return "it is out of sync (it may lack acknowledged writes); let it catch up first"
        if applied < self.primary_seq:
            return f"it has applied {applied} of the {self.primary_seq} changes it was told of"
        return ""

    def status(self) -> dict:
        return {"primary": self.primary_url, "in_sync": self.in_sync,
                "applied": self.ledger.applied_seq(), "primary_seq": self.primary_seq,
                "silent_for": round(time.monotonic() - self.last_heard, 1)
                if self.last_heard else -1}
