"""A branch server's replication roles: primary, replica, fenced, and the RPCs between them.

Role: carry out the replication-role core (bank/core/replica.py, rules R1-R6) for a
branch server: check the role before a write (R1, R2), take or refuse a push (R3,
R4), promote (R5), follow (R6), and record the role and epoch durably. Pushing and
pulling changes is bank/replication.py's job. Mixed into bank.branch_service.Branch.

Rules:
  * The core decides the role; this file only asks it and records what it returns.
  * A role change is durable (the ledger's meta table) before the server acts on it.

Glossary:
  epoch     a number raised by every promotion; higher wins
  fenced    a former primary that learned of a higher epoch: it refuses writes
"""

import logging

from bank import rpc
from bank.core.replica import Do as ReplicaDo
from bank.core.replica import RoleRefused
from bank.errors import BankError, FaultCode, RememberedRefusal, check_limit, check_url
from bank.replication import Follower

log = logging.getLogger("branch")


class ReplicationRoles:
    """Mixed into Branch: its role (self.roles, a core BranchRole) carried out."""

    # ---- roles: primary, replica, fenced -----------------------------------------------

    def _write(self, operation, *args):
        """R1: only a primary writes, and in synchronous mode the reply waits until every
        in-sync replica has the change; R2: anyone else refuses, naming the primary."""
        try:
            self.roles.on_write()
        except RoleRefused:
            where = f" The primary is {self.primary_url}." if self.primary_url else ""
            raise BankError(FaultCode.NOT_PRIMARY,
                            f"{self.name} at {self.url or 'this address'} is "
                            f"{_role_words(self.role)} and does not accept writes.{where}") \
                from None
        try:
            result = operation(*args)                     # APPLY
        except RememberedRefusal:             # a remembered refusal is a write too:
            self.replicas.after_write()       # replicas have it before the client hears
            raise
        self.replicas.after_write()                       # PUSH to in-sync replicas
        if self.role != "primary":        # a replica refused our push: we were replaced
            raise BankError(FaultCode.NOT_PRIMARY,
                            f"{self.name} at {self.url} was replaced by a newer primary "
                            f"({self.primary_url or 'see the replicas'}) while writing: "
                            "this change is not acknowledged.")
        return result                                     # ANSWER

    def _record_role(self) -> None:
        """Carry out RECORD_ROLE: the role, epoch and primary, durably (only if changed)."""
        now = (self.role.value, self.epoch, self.primary_url)
        if now == self._recorded_role:
            return
        self.ledger.set_meta(role=self.role.value, epoch=self.epoch, primary=self.primary_url)
        if self._recorded_role is not None:
            log.warning("now %s at epoch %d%s", self.role.value, self.epoch,
                        f" (primary: {self.primary_url})" if self.primary_url else "")
        self._recorded_role = now

    def learn_epoch(self, epoch: int, primary: str = "") -> None:
        """R4: a higher epoch exists; adopt it (a primary is fenced by it)."""
        if self.roles.on_higher_epoch(epoch, primary):
            self._record_role()

    def fence(self, why: str) -> None:
        """R4: a replica refused our push because a newer primary exists."""
        if self.role == "primary":
            self.roles.on_replaced(_primary_named_in(why))
            self._record_role()
            log.warning("fenced: %s", why)

    def check_fenced(self, only_out_of_sync: bool = False) -> None:
        """A primary asks the replicas it knew whether one was promoted (R4).

        Done before serving after a restart, and at every heartbeat for the replicas it
        cannot push to (an in-sync replica would refuse a push from an old epoch anyway).
        """
        if self.role != "primary":
            return
        for url, link in list(self.replicas.links.items()):
            if only_out_of_sync and link.in_sync:
                continue
            try:
                info = rpc.Client(url, self.secret, timeout=2).call("ping")
            except BankError:
                continue
            if info.get("epoch", 0) > self.epoch:
                primary = url if info.get("role") == "primary" else info.get("primary", "")
                self.learn_epoch(info["epoch"], primary)
                return

    def promote(self) -> dict:
        """Make this in-sync replica the primary, with a higher epoch.

        Refused (Fault 409) if it is out of sync or lacks changes it was told of.
        Returns {"name", "role", "epoch", "applied"}.
        """
        why_not = self.follower.promotable() if self.follower else ""
        old_primary = self.primary_url
        try:
            self.roles.on_promote(in_sync=not why_not)             # R5
        except RoleRefused:
            if self.role != "replica":
                raise BankError(FaultCode.PROTOCOL_VIOLATION,
                                f"{self.name} is a {self.role.value}, not a replica: "
                                "nothing to promote.") from None
            raise BankError(FaultCode.PROTOCOL_VIOLATION,
                            f"{self.name} at {self.url} cannot be promoted: {why_not}.") \
                from None
        self._record_role()
        self.ledger.set_meta(promoted_from=old_primary)
        self.follower = None
        return {"name": self.name, "role": self.role.value, "epoch": self.epoch,
                "applied": self.ledger.applied_seq()}

    def follow(self, primary_url) -> dict:
        """Become (or stay) a replica of primary_url, e.g. after a failover."""
        primary_url = check_url(primary_url, "primary URL")
        try:
            self.roles.on_follow(primary_url)                       # R6
        except RoleRefused:
            raise BankError(FaultCode.PROTOCOL_VIOLATION,
                            f"{self.name} is {_role_words(self.role)}: its history may differ; "
                            "restart it with --replica-of to rejoin from a fresh copy.") from None
        self._record_role()
        self.follower = Follower(self, primary_url)
        return {"name": self.name, "role": self.role.value, "primary": primary_url}

    # ---- replication RPCs (between branch servers) -----------------------------------

    def replication(self) -> dict:
        """Replication status: {"role", "epoch", "applied", "replicas": [...], "follower": {...}}."""
        return {"role": self.role.value, "epoch": self.epoch, "applied": self.ledger.applied_seq(),
                "synchronous": self.replicas.synchronous, "replicas": self.replicas.status(),
                "follower": self.follower.status() if self.follower else {}}

    def changes_since(self, seq, limit=500) -> list:
        """[[seq, change], ...] after seq, for a replica catching up."""
        return [[n, op] for n, op in self.ledger.changes_since(_check_seq(seq),
                                                                 check_limit(limit))]

    def attach_replica(self, url, applied, last_hash="") -> dict:
        """A replica introduces itself (it starts out of sync); last_hash fingerprints
        its last change, so that a diverged history is detected and copied again."""
        self._require_role("primary")
        if not isinstance(last_hash, str) or len(last_hash) > 64:
            raise BankError(FaultCode.BAD_INPUT, "last_hash must be a short text.")
        return self.replicas.attach(check_url(url, "replica URL"), _check_seq(applied),
                                    last_hash)

    def caught_up(self, url, applied) -> dict:
        """A replica has pulled everything; it becomes in sync after a final push."""
        self._require_role("primary")
        return self.replicas.caught_up(check_url(url, "replica URL"), _check_seq(applied))

    def replicate(self, epoch, changes, primary_seq, in_sync_urls) -> dict:
        """A push from the primary: apply these changes in order."""
        epoch, primary_seq = _check_seq(epoch, "The epoch"), _check_seq(primary_seq)
        if not isinstance(changes, list) or not isinstance(in_sync_urls, list):
            raise BankError(FaultCode.BAD_INPUT, "changes and in_sync must be lists.")
        try:
            effects = self.roles.on_push(epoch)                     # R3, R4
        except RoleRefused:                         # the sender was replaced: fence it
            primary = self.url if self.role == "primary" else self.primary_url
            raise BankError(FaultCode.NOT_PRIMARY,
                            f"Fenced: epoch {epoch} is over; {self.name} is at epoch "
                            f"{self.epoch} and its primary is {primary}.") from None
        self._record_role()
        if ReplicaDo.REFUSE in effects:             # we were a primary: now fenced (R4)
            log.warning("fenced: a primary at epoch %d pushed changes", epoch)
            self._require_role("replica")
        return self.follower.receive(changes, primary_seq, in_sync_urls)

    def _require_role(self, role: str) -> None:
        if self.role != role:
            raise BankError(FaultCode.NOT_PRIMARY if role == "primary" else
                            FaultCode.PROTOCOL_VIOLATION,
                            f"{self.name} at {self.url} is {_role_words(self.role.value)} "
                            f"(epoch {self.epoch}), not a {role}." + (f" The primary is {self.primary_url}."
                                                if self.primary_url else ""))


def _check_seq(value, what: str = "A replog position") -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < 2**31:
        raise BankError(FaultCode.BAD_INPUT, f"{what} must be a whole number from 0 to "
                                             f"{2**31 - 1}.")
    return value


def _role_words(role) -> str:
    role = getattr(role, "value", role)
    return {"fenced": "fenced (a former primary)"}.get(role, "a " + role)


def _primary_named_in(sentence: str) -> str:
    """The URL a NOT_PRIMARY fault names, if any."""
    for word in sentence.split():
        if word.startswith("http"):
            return word.rstrip(".")
    return ""
