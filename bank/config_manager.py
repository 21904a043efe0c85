"""The configuration manager's service: the manager core's decisions, made durable.

Role: the coordinator keeps, for every replicated branch, its configuration (primary,
in-sync replicas, epoch, version). The decisions are the pure core's
(bank/core/manager.py, rules M1-M5); this file carries them out: it writes each new
configuration to the coordinator's recovery log (forced, bank/recovery_log.py Rule 8)
before answering, reads the clock for leases (bank/clock.py lease_clock, the clock the
primaries count theirs on), and checks M6 (every server named is one of the branch's
servers), which needs the cluster's addresses.

Rules:
  * S1 - one change of a branch's configuration at a time (a lock per branch: a
    failover waiting out one primary's lease must not hold up the other branches'
    renewals, or their leases would run out too), and the record is forced before the
    answer; if the record cannot be written, the core's configuration is put back.
  * S2 - after a restart every branch is treated as if a lease had just been granted
    (M4), since the last grant's time is not durable.
  * S3 - a branch whose config record is damaged (recovery log Rule 6, accepted with
    --accept-damaged-log) is in doubt: its last good record may be older than what
    its servers were told, so no change to it is made (no lease, no failover) until
    an operator restores the log.
  * S4 - a recorded primary that is none of the servers the coordinator was given
    for its branch (the servers moved to new addresses, or the log is another bank's)
    is said at start-up (moved()): its lease renewals are refused (M6), so its
    writes stop once a replica joins; a failover never takes the branch's live
    primary for a replica, nor finishes towards the recorded address
    (bank/coordinator_lab.py). The record is never changed by hand: it is what the
    servers were told.

Glossary:
  configuration  primary + in-sync set + epoch + version, of one branch
  lease          "until T, no one else is made primary": held by the primary
"""

import logging
import threading
import time

from bank import clock as clocks
from bank.core.manager import (LEASE_SECONDS, Configuration, Manager, Refused,
                               lease_wait)  # noqa: F401  (lease_wait: tests, labs)
from bank.core.messages import Record
from bank.errors import BankError, FaultCode

log = logging.getLogger("config-manager")

REFUSAL_CODES = {"not-primary": FaultCode.NOT_PRIMARY, "unconfigured": FaultCode.UNAVAILABLE,
                 "changed": FaultCode.UNAVAILABLE, "not-in-sync": FaultCode.PROTOCOL_VIOLATION,
                 "bad-request": FaultCode.BAD_INPUT}     # how each kind of refusal is answered


class ConfigManager:
    """The configurations of every branch, kept in the coordinator's recovery log."""

    def __init__(self, recovery_log, links: dict, clock=None):
        self.log, self.links = recovery_log, links
        self.clock = clock or clocks.lease_clock        # M4: the primaries' lease clock
        self._locks = {}                           # S1: branch -> its Lock
        self._cores = {}                           # branch -> Manager (bank/core/manager.py)
        self._recorded = {}                        # branch -> its config as last forced (M1)
        for name, data in recovery_log.configs.items():
            config = Configuration(data["primary"], tuple(data["in_sync"]), data["epoch"],
                                   data["version"])
            self._cores[name] = Manager(name, config, granted_at=self.clock())   # S2
            self._recorded[name] = config.as_dict()

    def moved(self, unfinished: int) -> list:
        """S4: one sentence per branch whose recorded primary is none of the servers
        this coordinator was given for it. `unfinished`: transfers the log has not
        finished, which a new log would forget."""
        said = []
        for branch, config in sorted(self._recorded.items()):
            link = self.links.get(branch)
            if link is None or config["primary"] in link.urls:
                continue
            fresh = ("a recovery log of its own (--log, or log = in its cluster.ini)"
                     if not unfinished else
                     f"a recovery log of its own (--log, or log = in its cluster.ini) "
                     f"once the {unfinished} unfinished transfer(s) in this one are "
                     f"finished (restart the servers at their old addresses first)")
            said.append(f"the recovery log records {branch}'s primary at "
                        f"{config['primary']} (epoch {config['epoch']}), which is not one "
                        f"of the servers given for {branch} now ({', '.join(link.urls)}), "
                        f"so its lease renewals will be refused (M6). If {branch}'s "
                        f"servers moved to new addresses, this log is the old bank's: "
                        f"start this coordinator with {fresh}.")
        return said

    # ---- what the primaries ask (M1-M3) --------------------------------------------------

    def config(self, branch: str) -> dict:
        """The branch's configuration as last recorded, or {} if none was yet. Not the
        core's: the core moves before its record is forced, and a change whose record
        failed is undone (S1), so nobody may hear of it before then (M1)."""
        return dict(self._recorded.get(branch, {}))

    def lease(self, branch: str, url: str, epoch: int) -> dict:
        """M1/M2: renew the lease of the recorded primary; the first primary to ask for a
        branch with no configuration yet is recorded as its primary, at its epoch."""
        with self._lock_of(branch):
            if not self.config(branch):
                self._check_server(branch, url)
            answer = self._carry_out(branch, lambda core: core.lease(url, epoch, self.clock()))
        return dict(answer, granted=True, seconds=LEASE_SECONDS)

    def add_replica(self, branch: str, url: str, epoch: int, replica: str,
                    version: int) -> dict:
        """M3: the primary pushed everything to `replica`: it is in sync from now on.
        `version`: the configuration version the primary last heard."""
        with self._lock_of(branch):
            self._check_server(branch, replica)
            return self._carry_out(branch, lambda core: core.add(url, epoch, replica,
                                                                 self.clock(), version))

    def drop_replica(self, branch: str, url: str, epoch: int, replica: str,
                     version: int) -> dict:
        """M3/R7: the primary could not push to `replica`: record it out of sync."""
        with self._lock_of(branch):
            return self._carry_out(branch, lambda core: core.drop(url, epoch, replica,
                                                                  self.clock(), version))

    # ---- what failover asks (M4, M5) ------------------------------------------------------

    def silent_for(self, branch: str) -> float:
        """Seconds since the branch's primary last renewed its lease."""
        core = self._cores.get(branch)
        granted = core.granted_at if core else None
        return 0.0 if granted is None else self.clock() - granted

    def lease_left(self, branch: str) -> float:
        """M4: seconds until the current primary's lease has surely run out (0 if it has)."""
        core = self._cores.get(branch)
        return core.lease_left(self.clock()) if core else 0.0

    def install(self, branch: str, new_primary: str, expected_version: int) -> dict:
        """M4, M5: record `new_primary` (a member of the in-sync set) as the primary, at the
        next epoch. Waits out the old lease first, holding the branch's lock so that no
        renewal can sneak in. `expected_version`: the configuration the caller chose from."""
        with self._lock_of(branch):
            while True:
                try:
                    installed = self._carry_out(branch, lambda core: core.install(
                        new_primary, expected_version, self.clock()))
                    break
                except _Wait as wait:
                    log.info("%s: waiting %.1f s for the old primary's lease to run "
                                "out", branch, wait.seconds)
                    time.sleep(wait.seconds)
            log.info("%s: %s is the primary at epoch %d (version %d)", branch,
                        new_primary, installed["epoch"], installed["version"])
            return installed

    # ---- carrying out the core's effects -------------------------------------------------

    def _lock_of(self, branch: str) -> threading.Lock:
        """S1: the lock of one branch's configuration (setdefault: one per branch, even
        when two threads ask first at once)."""
        return self._locks.setdefault(branch, threading.Lock())

    def _carry_out(self, branch: str, decide) -> dict:
        """Ask the branch's core; force its record to the log (M1), then answer (S1)."""
        if branch in self.log.in_doubt:                                  # S3
            raise BankError(FaultCode.UNAVAILABLE, (
                f"{branch}'s configuration is in doubt: its record in the recovery log "
                "is damaged, and the record before it may be older than what its "
                "servers were told, so it is not changed (no lease, no failover) until "
                "the log is restored."))
        core = self._cores.setdefault(branch, Manager(branch))
        before = (core.config, core.granted_at, core.last_change)
        try:
            effects = decide(core)
        except Refused as exc:
            if exc.kind == "wait":
                raise _Wait(exc.wait) from None
            raise BankError(REFUSAL_CODES[exc.kind], str(exc)) from None
        try:
            for effect in effects:
                if isinstance(effect, Record):
                    self.log.config(branch, core.config.as_dict())      # forced (M1)
                    log.info("%s: configuration version %d: primary %s, in sync %s",
                                branch, core.config.version, core.config.primary,
                                list(core.config.in_sync) or "none")
        except BaseException:
            core.config, core.granted_at, core.last_change = before     # S1
            raise
        self._recorded[branch] = core.config.as_dict()                  # now it may be heard
        return core.config.as_dict()

    # ---- M6 ------------------------------------------------------------------------------
    def _check_server(self, branch: str, url: str) -> None:
        """M6: url must be one of this branch's servers in the coordinator's configuration."""
        link = self.links.get(branch)
        if link is None:
            raise BankError(FaultCode.BAD_INPUT,
                            f"This coordinator manages no branch named {branch!r}.")
        if url not in link.urls:
            others = [n for n, lk in self.links.items() if url in lk.urls]
            where = f" (it is listed under {others[0]})" if others else ""
            raise BankError(FaultCode.PROTOCOL_VIOLATION,
                            f"{url} is not a server of {branch} in the coordinator's "
                            f"configuration{where}; its servers are {', '.join(link.urls)}.")


class _Wait(Exception):
    """M4: the old lease may still be held for `seconds`."""

    def __init__(self, seconds: float):
        self.seconds = seconds
