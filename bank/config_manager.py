"""The configuration manager: who is each branch's primary, who is in sync, which epoch.

Role: the coordinator keeps, for every replicated branch, its configuration: the
primary, the in-sync replicas, the epoch (raised when the primary changes) and a
version (raised at every change). Primaries ask it to add or drop a replica and to
renew their lease; failover asks it to install a new primary. It is PacificA's
configuration manager (Lin et al., Microsoft Research, 2008) without the Paxos group:
the coordinator's recovery log is its durable store.

Rules:
  * M1 - every change is a forced record in the recovery log (bank/recovery_log.py
    Rule 8) before anyone hears of it; a restart reads the last record of each branch.
  * M2 - only the recorded primary, at the recorded epoch, may change its branch's
    in-sync set or renew its lease; anyone else is told who the primary is.
  * M3 - a replica joins the in-sync set when its primary asks (after pushing it
    everything) and leaves it when its primary asks (R7): the primary waits for the
    record before it answers a write without that replica.
  * M4 - a new primary is installed only once the old primary's lease has surely run
    out: LEASE_SECONDS x (1 + 2 x CLOCK_DRIFT) + LEASE_MARGIN after the last grant,
    measured on this process's monotonic clock. After a restart every branch is
    treated as if a lease had just been granted.
  * M5 - only a member of the recorded in-sync set is promoted, and the new
    configuration (new primary, epoch + 1, empty in-sync set) is recorded first.
  * M6 - every request names its branch, and the servers it names must be that
    branch's servers in the coordinator's configuration (issue 18: a replica listed
    under the wrong branch is refused, naming both).

Clock assumption: the monotonic clocks of the coordinator and of the branch
servers each run at real-time rate within CLOCK_DRIFT (1 %); no wall clock is used.
A primary counts its lease from the moment it SENT the request (before the grant),
and the manager from the moment it granted it (after), so the network delay only
makes the primary's lease end earlier than the manager thinks.

Glossary:
  configuration  primary + in-sync set + epoch + version, of one branch
  lease          "until T, no one else is made primary": held by the primary
  in-sync set    the replicas that hold every acknowledged write, as recorded here
"""

import logging
import threading
import time

from bank.errors import BankError, FaultCode

LEASE_SECONDS = 4.0          # how long a granted lease lasts (the primary renews every second)
CLOCK_DRIFT = 0.01           # the clock assumption: rates within 1 % of real time
LEASE_MARGIN = 0.5           # seconds added on top of the lease before a failover

log = logging.getLogger("config-manager")


def lease_wait() -> float:
    """M4: how long after its last grant an old primary's lease has surely run out."""
    return LEASE_SECONDS * (1 + 2 * CLOCK_DRIFT) + LEASE_MARGIN


class ConfigManager:
    """The configurations of every branch, kept in the coordinator's recovery log."""

    def __init__(self, recovery_log, links: dict, clock=time.monotonic):
        self.log, self.links, self.clock = recovery_log, links, clock
        self._lock = threading.Lock()              # one configuration change at a time
        self._granted = {name: clock() for name in recovery_log.configs}   # M4 after a restart

    # ---- what the primaries ask (M2, M3) ------------------------------------------------

    def config(self, branch: str) -> dict:
        """The branch's configuration, or {} if none was recorded yet."""
        return dict(self.log.configs.get(branch, {}))

    def lease(self, branch: str, url: str, epoch: int) -> dict:
        """M2: renew the lease of the recorded primary. The first primary to ask for a
        branch with no configuration yet is recorded as its primary, at its epoch."""
        with self._lock:
            if not self.config(branch):
                self._check_server(branch, url)
                self._record(branch, primary=url, in_sync=[], epoch=epoch, version=0)
            current = self._check_primary(branch, url, epoch)
            self._granted[branch] = self.clock()
        return dict(current, granted=True, seconds=LEASE_SECONDS)

    def add_replica(self, branch: str, url: str, epoch: int, replica: str) -> dict:
        """M3: the primary pushed everything to `replica`: it is in sync from now on."""
        with self._lock:
            current = self._check_primary(branch, url, epoch)
            self._check_server(branch, replica)
            if replica == url:
                raise BankError(FaultCode.BAD_INPUT, f"{url} is {branch}'s primary, not a "
                                                     "replica of it.")
            if replica not in current["in_sync"]:
                current = self._record(branch, **dict(
                    current, in_sync=sorted(current["in_sync"] + [replica])))
                log.warning("%s: %s joins the in-sync set (version %d)", branch, replica,
                            current["version"])
            return current

    def drop_replica(self, branch: str, url: str, epoch: int, replica: str) -> dict:
        """M3/R7: the primary could not push to `replica`: record it out of sync."""
        with self._lock:
            current = self._check_primary(branch, url, epoch)
            if replica in current["in_sync"]:
                current = self._record(branch, **dict(
                    current, in_sync=[u for u in current["in_sync"] if u != replica]))
                log.warning("%s: %s leaves the in-sync set (version %d)", branch, replica,
                            current["version"])
            return current

    # ---- what failover asks (M4, M5) ------------------------------------------------------

    def silent_for(self, branch: str) -> float:
        """Seconds since the branch's primary last renewed its lease."""
        granted = self._granted.get(branch)
        return 0.0 if granted is None else self.clock() - granted

    def lease_left(self, branch: str) -> float:
        """M4: seconds until the current primary's lease has surely run out (0 if it has)."""
        granted = self._granted.get(branch)
        return 0.0 if granted is None else max(0.0, granted + lease_wait() - self.clock())

    def install(self, branch: str, new_primary: str, expected_version: int) -> dict:
        """M5: record `new_primary` (a member of the in-sync set) as the primary, at the
        next epoch, with an empty in-sync set. Waits out the old lease first (M4).
        `expected_version`: the configuration the caller chose from; if it changed
        meanwhile, the caller must choose again."""
        with self._lock:
            wait = self.lease_left(branch)
            if wait:
                log.warning("%s: waiting %.1f s for the old primary's lease to run out",
                            branch, wait)
                time.sleep(wait)           # the lock is held: no renewal can sneak in
            current = self.config(branch)
            if current.get("version") != expected_version:
                raise BankError(FaultCode.UNAVAILABLE,
                                f"{branch}'s configuration changed during the failover "
                                f"(now version {current.get('version')}); try again.")
            if new_primary not in current["in_sync"]:
                raise BankError(FaultCode.PROTOCOL_VIOLATION,
                                f"{new_primary} is not in {branch}'s recorded in-sync set.")
            installed = self._record(branch, primary=new_primary, in_sync=[],
                                     epoch=current["epoch"] + 1, version=current["version"])
            self._granted[branch] = self.clock()    # the new primary starts with a lease
            log.warning("%s: %s is the primary at epoch %d (version %d)", branch,
                        new_primary, installed["epoch"], installed["version"])
            return installed

    # ---- checks and the record -----------------------------------------------------------

    def _record(self, branch: str, *, primary: str, in_sync: list, epoch: int,
                version: int, **_ignored) -> dict:
        """M1: the new configuration, forced to the log before it is used."""
        data = {"primary": primary, "in_sync": list(in_sync), "epoch": epoch,
                "version": version + 1}
        self.log.config(branch, data)
        return dict(data)

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

    def _check_primary(self, branch: str, url: str, epoch: int) -> dict:
        """M2: url must be the recorded primary at the recorded epoch."""
        current = self.config(branch)
        if not current:
            raise BankError(FaultCode.UNAVAILABLE,
                            f"No configuration is recorded for {branch} yet: its primary "
                            "must ask for a lease first.")
        if current["primary"] != url or current["epoch"] != epoch:
            raise BankError(FaultCode.NOT_PRIMARY,
                            f"Fenced: {branch}'s primary is {current['primary']} at epoch "
                            f"{current['epoch']} (configuration version "
                            f"{current['version']}), not {url} at epoch {epoch}.")
        return current
