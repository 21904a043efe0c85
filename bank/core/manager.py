"""The configuration manager: one branch's configuration, as a table that decides.

Role: decide every change of a replicated branch's configuration: who its primary is,
which replicas are in sync (hold every acknowledged write), the epoch (raised when the
primary changes) and a version (raised at every change). It is pure: no log file, no
clock reads (time comes in as an argument), no sockets. bank/config_manager.py
carries out the effects (the coordinator's recovery log is the durable store) and
bank/explorer checks the same object in its replication world. It is PacificA's
configuration manager (Lin et al., 2008) without the Paxos group.

The table (the README's copy is generated from it):

    MANAGER[event] = Step(rule, effects in order)        (guards: see Configuration)

Rules:
  * M1 - the first primary to ask for a lease of a branch with no configuration is
    recorded as its primary (after M6's check); that change, like every other, is a
    forced record before anyone hears of it.
  * M2 - only the recorded primary, at the recorded epoch, may change its branch's
    in-sync set or renew its lease; anyone else is refused, told who the primary is.
  * M3 - a replica joins the in-sync set when its primary asks (after pushing it
    everything) and leaves it when its primary asks (R7); the primary answers a write
    without that replica only once the removal is recorded. Each request names the
    configuration version its primary last heard, and one made at another version is
    refused ("changed": the primary reads the configuration and asks again); each one
    taken is recorded as a new version, even one that leaves the set as it was. So the
    set changes in the order the primary asked: an add that was delayed on its way
    (its primary gave up waiting, then dropped the replica and answered writes
    without it) can never reach the manager after that drop and undo it. The last
    request taken, sent again at the same version (its answer was lost, or came too
    late) while nothing else changed, is answered again with no new record: a slow
    disk then costs one record per change, not one per try.
  * M4 - a new primary is installed only once the old primary's lease has surely run
    out (LEASE_SECONDS x (1 + 2 x CLOCK_DRIFT) + LEASE_MARGIN after the last grant).
  * M5 - only a member of the recorded in-sync set is promoted, and the new
    configuration (new primary, epoch + 1, empty in-sync set) is recorded first.
  * M6 - every server named must be one of the branch's servers (a replica of Delhi
    listed under Mumbai is refused, naming both) - checked by the service, which knows
    the cluster's addresses.

Clock assumption (M4): the lease clocks of the coordinator and of the branch servers
(bank/clock.py lease_clock: on Linux CLOCK_BOOTTIME, which keeps counting while the
machine is suspended) each run at real-time rate within CLOCK_DRIFT; no wall clock is
used.

Glossary:
  configuration  primary + in-sync set + epoch + version, of one branch
  lease          "until T, no one else is made primary": held by the primary
"""

import enum
from dataclasses import dataclass, replace

from bank.core.messages import Record, Reply

LEASE_SECONDS = 4.0          # how long a granted lease lasts (the primary renews every second)
CLOCK_DRIFT = 0.01           # the clock assumption: rates within 1 % of real time
LEASE_MARGIN = 0.5           # seconds added on top of the lease before a failover


class Event(str, enum.Enum):
    FIRST_LEASE = "the first primary asks for a lease"
    LEASE = "the recorded primary renews its lease"
    ADD = "the primary pushed everything to a replica"
    DROP = "the primary cannot push to a replica"
    INSTALL = "failover: install an in-sync replica as primary"


class Do(str, enum.Enum):
    RECORD = "record the configuration (forced)"
    GRANT = "grant the lease (note the time)"
    ANSWER = "answer with the configuration"


@dataclass(frozen=True)
class Step:
    rule: str
    effects: tuple


MANAGER = {
    Event.FIRST_LEASE: Step("M1", (Do.RECORD, Do.GRANT, Do.ANSWER)),
    Event.LEASE:       Step("M2", (Do.GRANT, Do.ANSWER)),
    Event.ADD:         Step("M3", (Do.RECORD, Do.ANSWER)),
    Event.DROP:        Step("M3", (Do.RECORD, Do.ANSWER)),
    Event.INSTALL:     Step("M5", (Do.RECORD, Do.GRANT, Do.ANSWER)),
}


def lease_wait() -> float:
    """M4: how long after its last grant an old primary's lease has surely run out."""
    return LEASE_SECONDS * (1 + 2 * CLOCK_DRIFT) + LEASE_MARGIN


@dataclass(frozen=True)
class Configuration:
    """One branch's configuration, as recorded (version 0: none recorded yet)."""
    primary: str = ""
    in_sync: tuple = ()
    epoch: int = 0
    version: int = 0

    def as_dict(self) -> dict:
        return {"primary": self.primary, "in_sync": list(self.in_sync), "epoch": self.epoch,
                "version": self.version} if self.version else {}


class Refused(Exception):
    """A configuration change the rules forbid; nothing changes. ``kind`` says what
    kind of refusal it is, for the service to answer with the right fault code:
    "not-primary" (M2), "unconfigured" (M2), "wait" (M4, for ``wait`` seconds),
    "changed" (M3, M5: try again), "not-in-sync" (M5) or "bad-request" (M3)."""

    def __init__(self, rule: str, sentence: str, kind: str, wait: float = 0):
        self.rule, self.kind, self.wait = rule, kind, wait
        self.not_primary = kind == "not-primary"
        super().__init__(sentence)


class Manager:
    """One branch's configuration and its last lease grant. Feed it requests; carry out
    the effects it returns (Record: forced to the log first; then the answer)."""

    def __init__(self, branch: str, config: Configuration = Configuration(),
                 granted_at: float = None):
        self.branch, self.config, self.granted_at = branch, config, granted_at
        self.last_change = None       # M3: the last add or drop taken, as it was asked

    # ---- requests from the primary (M1-M3) ------------------------------------------

    def lease(self, url: str, epoch: int, now: float) -> list:
        if not self.config.version:                           # M1: the first primary
            return self._step(Event.FIRST_LEASE, now,
                              Configuration(url, (), epoch, 0))
        self._check_primary(url, epoch)
        return self._step(Event.LEASE, now)

    def add(self, url: str, epoch: int, replica: str, now: float, version: int) -> list:
        self._check_primary(url, epoch)
        asked = (Event.ADD, url, epoch, replica, version)
        if self._repeated(asked):
            return [Reply(self.config)]
        self._check_version(version)
        if replica == url:
            raise Refused("M3", f"{url} is {self.branch}'s primary, not a replica of it.",
                          "bad-request")
        in_sync = tuple(sorted(set(self.config.in_sync) | {replica}))
        return self._change(asked, now, replace(self.config, in_sync=in_sync))

    def drop(self, url: str, epoch: int, replica: str, now: float, version: int) -> list:
        self._check_primary(url, epoch)
        asked = (Event.DROP, url, epoch, replica, version)
        if self._repeated(asked):
            return [Reply(self.config)]
        self._check_version(version)
        in_sync = tuple(r for r in self.config.in_sync if r != replica)
        return self._change(asked, now, replace(self.config, in_sync=in_sync))

    def _repeated(self, asked: tuple) -> bool:
        """M3: is this the last change taken, asked again, with nothing changed since?"""
        return asked == self.last_change and self.config.version == asked[-1] + 1

    def _change(self, asked: tuple, now: float, new: Configuration) -> list:
        effects = self._step(asked[0], now, new)
        self.last_change = asked
        return effects

    # ---- failover (M4, M5) ---------------------------------------------------------------

    def lease_left(self, now: float) -> float:
        """M4: seconds until the primary's lease has surely run out (0 if it has)."""
        if self.granted_at is None:
            return 0.0
        return max(0.0, self.granted_at + lease_wait() - now)

    def install(self, new_primary: str, expected_version: int, now: float) -> list:
        """M4, M5: `new_primary` from the in-sync set, once the old lease has run out.
        Refused with `wait` > 0 while the lease may still be held."""
        wait = self.lease_left(now)
        if wait:
            raise Refused("M4", f"{self.branch}'s old primary may still hold its lease for "
                                f"{wait:.1f} s.", "wait", wait=wait)
        if self.config.version != expected_version:
            raise Refused("M5", f"{self.branch}'s configuration changed during the failover "
                                f"(now version {self.config.version}); try again.",
                          "changed")
        if new_primary not in self.config.in_sync:
            raise Refused("M5", f"{new_primary} is not in {self.branch}'s recorded in-sync "
                                "set.", "not-in-sync")
        return self._step(Event.INSTALL, now,
                          Configuration(new_primary, (), self.config.epoch + 1,
                                        self.config.version))

    # ---- the table at work ---------------------------------------------------------------

    def _check_primary(self, url: str, epoch: int) -> None:
        """M2: only the recorded primary at the recorded epoch."""
        c = self.config
        if not c.version:
            raise Refused("M2", f"No configuration is recorded for {self.branch} yet: its "
                                "primary must ask for a lease first.", "unconfigured")
        if c.primary != url or c.epoch != epoch:
            raise Refused("M2", f"Fenced: {self.branch}'s primary is {c.primary} at epoch "
                                f"{c.epoch} (configuration version {c.version}), not {url} "
                                f"at epoch {epoch}.", "not-primary")

    def _check_version(self, version: int) -> None:
        """M3: a change of the in-sync set is made at the version its primary last heard."""
        if version != self.config.version:
            raise Refused("M3", f"{self.branch}'s configuration is at version "
                                f"{self.config.version}, not {version} as the request "
                                "assumed (it changed since, or the request was delayed); "
                                "read the configuration and ask again.", "changed")

    def _step(self, event: Event, now: float, new: Configuration = None) -> list:
        row, effects = MANAGER[event], []
        for do in row.effects:
            if do is Do.RECORD:         # always a new version, even if the set is the
                self.config = replace(new, version=new.version + 1)   # same (M3)
                effects.append(Record(self.branch, "config", forced=True))
            elif do is Do.GRANT:
                self.granted_at = now
            else:
                effects.append(Reply(self.config))
        return effects
