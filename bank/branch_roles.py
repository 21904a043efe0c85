"""A branch server's replication roles: primary, replica, fenced, and the RPCs between them.

Role: carry out the replication-role core (bank/core/replica.py, rules R1-R9) for a
branch server: check the role and the lease before a write (R1, R2, R8), take or
refuse a push (R3, R4), be promoted by the configuration manager (R5), follow (R6),
refuse other branches (R9), and record the role and epoch durably. Pushing and
pulling changes, and dropping replicas through the manager (R7), is
bank/replication.py's job. Two classes, both mixed into bank.branch_service.Branch:
ReplicationRoles (the role, fencing, promote, follow and the replication RPCs) and
ManagerLink (the configuration manager and the lease).

Rules:
  * The core decides the role; this file only asks it and records what it returns.
  * A role change is durable (the ledger's meta table) before the server acts on it.
  * The manager's URL is told by the coordinator (``use_manager``) and kept durably.
  * A lease counts from the moment the request was SENT, on bank.clock.lease_clock (a
    clock that also counts a suspend of the machine), so that it ends on this server
    before the manager thinks it does (bank/core/manager.py M4).

Glossary:
  epoch     a number raised by every promotion; higher wins
  fenced    a former primary that learned of a higher epoch: it refuses writes
  manager   the configuration manager (the coordinator): bank/core/manager.py (its service: bank/config_manager.py)
  lease     until when this primary may serve writes without asking the manager again
"""

import json
import logging

from bank import clock, rpc
from bank.core.replica import Do as ReplicaDo
from bank.core.replica import RoleRefused, lease_holds
from bank.errors import (NOTHING_DONE, TIMED_OUT, BankError, FaultCode, RememberedRefusal,
                         check_branch_name, check_limit, check_url)
from bank.replication import Follower

log = logging.getLogger("branch")
MAX_FOLLOWED = 16          # primaries followed, kept in the ledger's meta


class ReplicationRoles:
    """Mixed into Branch: its role (self.roles, a core BranchRole) carried out."""

    # ---- roles: primary, replica, fenced -----------------------------------------------

    def _write(self, operation, *args):
        """R1: only a primary writes, and in synchronous mode the reply waits until every
        in-sync replica has the change; R2: anyone else refuses, naming the primary;
        R8: a primary whose lease ran out refuses too."""
        applied = self._apply(operation, *args)           # APPLY
        self.replicas.after_write()                       # PUSH to in-sync replicas
        return self._acknowledge(applied)                 # ANSWER

    def _apply(self, operation, *args) -> tuple:
        """The write itself, if our role allows it: (its result, None), or (None, the
        refusal the ledger remembered); a remembered refusal is a write too, which the
        replicas get before the client hears it."""
        self._check_role_for_write()
        try:
            return operation(*args), None
        except RememberedRefusal as refusal:
            return None, refusal

    def _acknowledge(self, applied: tuple):
        """After the push: the write's result, unless our role changed meanwhile (R1, R4,
        R8) or it was a remembered refusal, raised now."""
        result, refusal = applied
        if refusal is not None:
            raise refusal
        try:
            self.roles.on_write_pushed(lease_ok=self.lease_ok())   # R1, again R4 and R8
        except RoleRefused as refused:
            if refused.rule == "R8":
                raise BankError(FaultCode.UNAVAILABLE, self._no_lease_sentence(
                    " This change is kept here but not acknowledged.")) from None
            # A replica refused our push: we were replaced. Not NOT_PRIMARY, which says
            # "changed nothing, ask the primary": this change is applied here and may
            # have reached the new primary before its promotion, so sending it there
            # again could apply it twice. Its outcome is unknown (errors.surely_not_done).
            raise BankError(FaultCode.UNAVAILABLE,
                            f"{self.name} at {self.url} was replaced by a newer primary "
                            f"({self.primary_url or 'see the replicas'}) while writing: "
                            "this change is not acknowledged, and the new primary may or "
                            "may not have it (a request id makes a retry safe).") from None
        return result

    def check_replication_link(self) -> None:
        """The lab's partition of the replication link (fault cut-replication): while it
        is on, this server neither sends nor takes replication traffic."""
        if self.faults.is_on("cut-replication"):
            raise BankError(FaultCode.UNAVAILABLE,
                            f"{self.name} at {self.url}: the replication link is cut off "
                            "(lab partition).")

    def _check_role_for_write(self) -> None:
        try:
            self.roles.on_write(lease_ok=self.lease_ok())
        except RoleRefused as refused:
            if refused.rule == "R8":
                raise BankError(FaultCode.UNAVAILABLE,              # refused before it ran
                                self._no_lease_sentence(NOTHING_DONE)) from None
            where = f" The primary is {self.primary_url}." if self.primary_url else ""
            raise BankError(FaultCode.NOT_PRIMARY,
                            f"{self.name} at {self.url or 'this address'} is "
                            f"{_role_words(self.role)} and does not accept writes.{where}") \
                from None

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

    def promote(self, branch="", epoch=0) -> dict:
        """Become the primary of `branch` at `epoch`: called by the configuration manager
        (the coordinator's failover), which recorded that configuration first (R5).

        Refused (Fault 409) without a branch and epoch (ask the coordinator: ``failover
        NAME``), for another branch (R9), or at an epoch not newer than ours.
        Returns {"name", "role", "epoch", "applied"}.
        """
        if not branch or not isinstance(epoch, int) or isinstance(epoch, bool) or not epoch:
            raise BankError(FaultCode.PROTOCOL_VIOLATION,
                            f"{self.name} at {self.url} is promoted only by its configuration "
                            "manager, which checks that it holds every acknowledged write: "
                            f"ask the coordinator (failover {self.name}).")
        self._check_same_branch(check_branch_name(branch), "be promoted")
        if self.role == "primary" and epoch == self.epoch:
            return {"name": self.name, "role": self.role.value, "epoch": self.epoch,
                    "applied": self.ledger.applied_seq()}   # the manager asks again: same answer
        with self.role_lock:         # not while a push is between its check and apply
            old_primary = self.primary_url
            try:
                self.roles.on_promote(epoch)                              # R5
            except RoleRefused:
                if self.role != "replica":
                    raise BankError(FaultCode.PROTOCOL_VIOLATION,
                                    f"{self.name} is a {self.role.value}, not a replica: "
                                    "nothing to promote.") from None
                raise BankError(FaultCode.PROTOCOL_VIOLATION,
                                f"{self.name} at {self.url} is at epoch {self.epoch}: a promotion "
                                f"at epoch {epoch} is stale.") from None
            self._record_role()
            self.ledger.set_meta(promoted_from=old_primary)
            self.follower = None
        self._lease_until = clock.lease_clock() + 1.0    # until the first renewal, a second
        return {"name": self.name, "role": self.role.value, "epoch": self.epoch,
                "applied": self.ledger.applied_seq()}

    def _check_same_branch(self, theirs: str, what: str) -> None:
        """R9: refuse, naming both branches."""
        try:
            self.roles.check_same_branch(self.name, theirs)
        except RoleRefused:
            raise BankError(FaultCode.PROTOCOL_VIOLATION,
                            f"{self.url or 'This server'} is a server of {self.name}, not of "
                            f"{theirs}: it will not {what} for {theirs}.") from None

    def follow(self, primary_url, branch="", epoch=0) -> dict:
        """Become (or stay) a replica of primary_url, e.g. after a failover. The new
        primary must be a server of this branch (R9); `epoch`, the one the manager
        recorded with it: a follow from an older epoch than ours is stale (R6), a newer
        one is adopted (R4)."""
        primary_url = check_url(primary_url, "primary URL")
        if branch:
            self._check_same_branch(check_branch_name(branch), "follow a primary")
        epoch = _check_seq(epoch, "The epoch")
        try:
            theirs = rpc.Client(primary_url, self.secret, timeout=2).call("ping")["name"]
        except (BankError, KeyError, TypeError):
            theirs = self.name                  # unreachable now: attach checks it later
        if theirs != self.name:
            raise BankError(FaultCode.PROTOCOL_VIOLATION,
                            f"{primary_url} is a server of {theirs}, not of {self.name}: "
                            f"{self.name} at {self.url} will not follow it.")
        with self.role_lock:             # no push is between its epoch check and its apply
            if epoch and epoch < self.epoch:
                raise BankError(FaultCode.PROTOCOL_VIOLATION,
                                f"{self.name} at {self.url} is at epoch {self.epoch}: a "
                                f"follow of {primary_url} at epoch {epoch} is stale (R6).")
            if epoch > self.epoch and self.role == "replica":
                self.learn_epoch(epoch, primary_url)                # R4
            try:
                self.roles.on_follow(primary_url)                   # R6
            except RoleRefused:
                raise BankError(FaultCode.PROTOCOL_VIOLATION,
                                f"{self.name} is {_role_words(self.role)}: its history may "
                                "differ; restart it with --replica-of to rejoin from a fresh "
                                "copy.") from None
            self._record_role()
            remember_followed(self.ledger, primary_url)
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
        self.check_replication_link()                      # lab: cut-replication
        return [[n, op] for n, op in self.ledger.changes_since(_check_seq(seq),
                                                                 check_limit(limit))]

    def attach_replica(self, url, applied, last_hash="", branch="") -> dict:
        """A replica of `branch` introduces itself (it starts out of sync); last_hash
        fingerprints its whole history up to `applied` (Ledger.history_hash), so that a
        history that differs anywhere is detected and copied again. A replica of
        another branch is refused, naming both (R9)."""
        self.check_replication_link()                      # lab: cut-replication
        self._require_role("primary")
        if branch not in ("", None):
            branch = check_branch_name(branch)
            if branch != self.name:
                raise BankError(FaultCode.PROTOCOL_VIOLATION,
                                f"{self.url} is {self.name}'s primary, not {branch}'s: a "
                                f"replica of {branch} cannot follow it (check --replica-of).")
        if not isinstance(last_hash, str) or len(last_hash) > 64:
            raise BankError(FaultCode.BAD_INPUT, "last_hash must be a short text.")
        return self.replicas.attach(check_url(url, "replica URL"), _check_seq(applied),
                                    last_hash)

    def caught_up(self, url, applied) -> dict:
        """A replica has pulled everything; it becomes in sync after a final push."""
        self.check_replication_link()                      # lab: cut-replication
        self._require_role("primary")
        return self.replicas.caught_up(check_url(url, "replica URL"), _check_seq(applied))

    def replicate(self, epoch, changes, primary_seq, in_sync_urls, branch="") -> dict:
        """A push from the primary of `branch`: apply these changes in order. A push
        from another branch's primary (an address reused) is refused before its epoch
        is read (R9): a higher epoch of another branch must not fence us."""
        self.check_replication_link()                      # lab: cut-replication
        epoch, primary_seq = _check_seq(epoch, "The epoch"), _check_seq(primary_seq)
        if not isinstance(changes, list) or not isinstance(in_sync_urls, list):
            raise BankError(FaultCode.BAD_INPUT, "changes and in_sync must be lists.")
        if branch not in ("", None):
            self._check_same_branch(check_branch_name(branch), "take changes pushed")
        with self.role_lock:        # checked and applied at once: a follow() of a newer
            try:                    # primary cannot come between (its catch-up would miss it)
                effects = self.roles.on_push(epoch)                 # R3, R4
            except RoleRefused:                     # the sender was replaced: fence it
                primary = self.url if self.role == "primary" else self.primary_url
                raise BankError(FaultCode.NOT_PRIMARY,
                                f"Fenced: epoch {epoch} is over; {self.name} is at epoch "
                                f"{self.epoch} and its primary is {primary}.") from None
            self._record_role()
            if ReplicaDo.REFUSE in effects:         # we were a primary: now fenced (R4)
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


class ManagerLink:
    """Mixed into Branch: the configuration manager and the lease (R7, R8): who the
    manager is (told by the coordinator, kept durably), renewing the lease, and what
    the manager's refusal teaches (R4)."""

    _lease_until = 0.0            # clock.lease_clock() until which our lease holds (R8)
    _lease_failing = False        # the last renewal failed (said once in the log)
    _manager_client = None
    config_version = 0            # the configuration version the manager last told us (M3)

    def heard_configuration(self, answer) -> None:
        """M3: keep the configuration version of the manager's last answer; our adds and
        drops name it, so that one delayed on its way cannot land after a later one."""
        version = answer.get("version") if isinstance(answer, dict) else None
        if isinstance(version, int) and not isinstance(version, bool):
            self.config_version = version

    def after_failed_change(self, exc: BankError) -> None:
        """M3: an add or drop failed. Unanswered in time, it may have been taken: keep the
        version, so that the same request sent again is answered as a repeat (no new
        record). Refused (perhaps as made at an old version): read the version."""
        if exc.why != TIMED_OUT:
            self.read_configuration_version()

    def read_configuration_version(self) -> None:
        """M3: read the configuration, so that the next add or drop names the version
        the manager is at."""
        manager = self.manager()
        if manager is not None:
            try:
                self.heard_configuration(manager.call("configuration", self.name))
            except BankError:
                pass                      # asked again at the next try

    def lease_ok(self) -> bool:
        """R8 (bank/core/replica.py, lease_holds): in_set is who the manager may list."""
        return lease_holds(bool(self.replicas.in_set), clock.lease_clock(),
                           self._lease_until)

    def holds_lease(self) -> bool:
        """Does a lease from the manager hold now? (A primary with no replica in its
        in_set takes writes without one, R8, but needs one the moment a replica joins.)"""
        return clock.lease_clock() < self._lease_until

    def _no_lease_sentence(self, tail: str) -> str:
        where = self.ledger.meta("manager", "") or "no manager known yet"
        return (f"{self.name} at {self.url} holds no lease from the configuration manager "
                f"({where}), so it serves no writes: a replica may be promoted in its "
                f"place. It renews the lease once the manager answers.{tail}")

    def use_manager(self, url) -> dict:
        """The coordinator says it is this branch's configuration manager (kept durably).
        Returns {"name", "manager", "role", "primary"}: the manager sees from the role
        and primary whether a replica follows the primary it recorded."""
        url = check_url(url, "manager URL")
        if url != self.ledger.meta("manager", ""):
            self.ledger.set_meta(manager=url)
            self._manager_client = None
        return {"name": self.name, "manager": url, "role": self.role.value,
                "primary": self.primary_url}

    def manager(self):
        """An rpc.Client for the configuration manager, or None if none is known."""
        url = self.ledger.meta("manager", "")
        if not url:
            return None
        if self._manager_client is None or self._manager_client.url != url:
            self._manager_client = rpc.Client(url, self.secret, timeout=2,
                                              label="the configuration manager")
        return self._manager_client

    def renew_lease(self) -> None:
        """R8: a primary asks the manager for a lease, counted from before the request."""
        manager = self.manager()
        if self.role != "primary" or manager is None or not self.url:
            return
        sent = clock.lease_clock()
        try:
            answer = manager.call("lease", self.name, self.url, self.epoch)
        except BankError as exc:
            if exc.code == FaultCode.NOT_PRIMARY:
                self.learn_from_manager()
            if not self._lease_failing:               # said once, not every second
                log.info("lease not renewed: %s (asking again every second)", exc.message)
            self._lease_failing = True
            return
        if self._lease_failing:
            log.info("lease renewed: the configuration manager answers again")
        self._lease_failing = False
        self.heard_configuration(answer)
        self._lease_until = sent + float(answer["seconds"])

    def learn_from_manager(self) -> None:
        """R4: the manager says we are not the primary: learn its epoch (we are fenced)."""
        try:
            config = self.manager().call("configuration", self.name)
        except (BankError, AttributeError):
            return
        if config and config.get("primary") != self.url:
            self.learn_epoch(int(config["epoch"]), config["primary"])


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


def remember_followed(ledger, *urls: str) -> None:
    """Keep (durably, the last few) the primaries this server followed as a replica: a
    stale --replica-of naming one of them, after this server was promoted, is then
    known for what it is (bank/branch_service.py, _open_ledger), also after two
    failovers, when the server it replaced was not the one it was started after."""
    followed = followed_primaries(ledger)
    new = [url for url in dict.fromkeys(urls) if url and url not in followed]
    if new:
        ledger.set_meta(followed=json.dumps((followed + new)[-MAX_FOLLOWED:]))


def followed_primaries(ledger) -> list:
    """The primaries this server followed as a replica, oldest first."""
    try:
        followed = json.loads(ledger.meta("followed", "[]"))
    except ValueError:
        return []
    return [url for url in followed if isinstance(url, str)] if isinstance(followed, list) else []
