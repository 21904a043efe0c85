"""The coordinator's lab controls and its work as configuration manager: faults,
partitions, failover, and the configuration RPCs the primaries call.

Role: the switches a teacher uses to break the bank on purpose (a crash point, a
partition between the coordinator and a branch), the replacement of a branch's
primary by an in-sync replica (failover, by hand or automatic), and the RPCs of the
configuration manager (bank/config_manager.py): lease, add_replica, drop_replica,
configuration. Mixed into bank.coordinator_service.Coordinator; faults and
partitions exist only with --allow-faults.

Rules:
  * A partition cuts the coordinator off from a branch in both directions: no call
    leaves, and the branch's decision queries and configuration requests are
    refused (bank/twopc.py D2), so a partitioned primary loses its lease.
  * Healing retries every unfinished decision at once: it asks for a recovery pass and
    does not wait for it; a burst of heals coalesces into one or two passes (D4).
  * Failover promotes only a member of the recorded in-sync set (R5, M5), after the
    old primary's lease has surely run out (M4), and only a server that answers with
    the branch's own name (R9, M6). The new configuration is recorded before the
    replica hears of it; a failover cut short is finished by the next one.
  * Automatic failover (coordinator.py --auto-failover SECONDS): a primary that has
    not renewed its lease for that long, while the recorded set has a member, is
    replaced the same way, and a failover recorded but cut short (its promote lost) is
    finished. A failover that cannot be made is said once, not every second.
  * Only the recorded in-sync set can replace a primary: if a failover was recorded
    (its in-sync set then empty) and its new primary never comes back, the branch
    waits for it, even when another replica holds every acknowledged write. The
    manager cannot tell a server that never served from one serving on the far side of
    a partition (PacificA makes the same trade: safety before availability).

Glossary:
  partition   a lab switch: the coordinator pretends it cannot reach a branch at all
  failover    promote a branch's best in-sync replica and route its calls there
"""

import logging
import threading

from bank.errors import BankError, FaultCode, check_url

log = logging.getLogger("coordinator")


class LabControls:
    """Mixed into Coordinator: fault(), partition(), heal() and failover()."""

    def fault(self, point) -> dict:
        """Arm a coordinator fault point: crash-after-prepare, crash-after-decision,
        crash-mid-commit ("" disarms)."""
        return self.faults.arm(point)

    def partition(self, branch) -> dict:
        """Lab: from now on the coordinator cannot reach this branch at all."""
        link = self._link(branch)
        link.partitioned = True
        log.warning("partition: %s is cut off", link.name)
        return {"branch": link.name, "partitioned": True}

    def heal(self, branch) -> dict:
        """Lab: end a partition; unfinished transactions are retried at once.
        Returns {"branch", "partitioned": False, "was_partitioned"}."""
        link = self._link(branch)
        was_partitioned, link.partitioned = link.partitioned, False
        if was_partitioned:
            log.warning("heal: %s is reachable again", link.name)
        self.twopc.request_recovery()
        return {"branch": link.name, "partitioned": False, "was_partitioned": was_partitioned}


    # ---- the configuration manager's RPCs (bank/config_manager.py) -------------------

    def configuration(self, branch) -> dict:
        """A branch's recorded configuration: {"primary", "in_sync", "epoch", "version"}
        ({} if none yet)."""
        return self.manager.config(self._link(branch).name)

    def lease(self, branch, url, epoch) -> dict:
        """A primary renews its lease (M2): {"granted", "seconds", "primary", "in_sync",
        "epoch", "version"}, or NOT_PRIMARY naming the recorded primary."""
        link, url, epoch = self._manager_args(branch, url, epoch)
        if not self.manager.config(link.name):
            self._check_claim(link, url, epoch)        # the first primary to ask is checked
        return self.manager.lease(link.name, url, epoch)

    def add_replica(self, branch, url, epoch, replica, version) -> dict:
        """The primary `url` pushed everything to `replica`: record it in sync (M3), if
        the configuration is still at `version`, the one the primary last heard."""
        link, url, epoch = self._manager_args(branch, url, epoch)
        return self.manager.add_replica(link.name, url, epoch,
                                        check_url(replica, "replica URL"),
                                        _whole_number(version, "configuration version", 0))

    def drop_replica(self, branch, url, epoch, replica, version) -> dict:
        """The primary `url` cannot push to `replica`: record it out of sync (M3, R7), if
        the configuration is still at `version`, the one the primary last heard."""
        link, url, epoch = self._manager_args(branch, url, epoch)
        return self.manager.drop_replica(link.name, url, epoch,
                                         check_url(replica, "replica URL"),
                                         _whole_number(version, "configuration version", 0))

    def _manager_args(self, branch, url, epoch) -> tuple:
        link = self._link(branch)
        if link.partitioned:
            raise BankError(FaultCode.UNAVAILABLE,
                            f"branch {link.name} is cut off by a lab partition.")
        return link, check_url(url, "primary URL"), _whole_number(epoch, "epoch", 1)

    def _check_claim(self, link, url: str, epoch: int) -> None:
        """Before recording a first configuration, the claimant must really be a primary
        of this branch at that epoch (M6)."""
        try:
            info = link.ask(url, "ping", timeout=2)
        except BankError as exc:
            raise BankError(FaultCode.UNAVAILABLE, f"{url} does not answer: {exc.message}")
        if info.get("name") != link.name or info.get("role") != "primary" \
                or info.get("epoch") != epoch:
            raise BankError(FaultCode.PROTOCOL_VIOLATION,
                            f"{url} is not {link.name}'s primary at epoch {epoch} "
                            f"(it says {info.get('name')}, {info.get('role')}, epoch "
                            f"{info.get('epoch')}).")

    def tell_servers_their_manager(self) -> None:
        """Every server of every branch learns this coordinator's URL (use_manager), and
        a replica that follows another primary than the recorded one is told to follow
        the recorded one (it was down when a failover sent `follow`, R6)."""
        for link in list(self.links.values()):
            if link.partitioned or not self.url:
                continue
            config = self.manager.config(link.name)
            primary = config.get("primary", "")
            for url in link.urls:
                try:
                    told = link.ask(url, "use_manager", self.url, timeout=1)
                    if primary and url != primary and told.get("role") == "replica" \
                            and told.get("primary") != primary:
                        link.ask(url, "follow", primary, link.name, config["epoch"])
                        log.warning("%s's replica %s followed %s: told to follow the "
                                    "recorded primary %s", link.name, url,
                                    told.get("primary") or "no one", primary)
                except BankError:
                    pass                                  # down: told at the next round

    def run_configuration(self, auto_failover: float, stop: threading.Event) -> None:
        """Background: tell servers who their manager is, and fail over a primary that
        has been silent for `auto_failover` seconds (0: never)."""
        while not stop.wait(1.0):
            try:
                self.tell_servers_their_manager()
                if auto_failover:
                    self._auto_failover(auto_failover)
            except Exception:
                log.exception("configuration loop")

    def _auto_failover(self, after: float) -> None:
        """Fail over a primary silent for `after` seconds that a replica could replace,
        and finish a failover that was recorded but never carried out (its promote lost:
        the recorded primary does not renew, and its in-sync set is empty)."""
        for name in list(self.links):
            config = self.manager.config(name)
            unfinished = config and config["primary"] != self.links[name].url
            if not (config.get("in_sync") or unfinished) or \
                    self.manager.silent_for(name) < after:
                continue
            said = self._auto_failover_said.get(name)     # a failing try is said once,
            try:                                          # not every second
                self.failover(name)
                self._auto_failover_said.pop(name, None)
                log.warning("auto-failover: %s's primary %s was silent; replaced", name,
                            config["primary"])
            except BankError as exc:
                if exc.message != said:
                    log.warning("auto-failover of %s (its primary %s silent): %s", name,
                                config["primary"], exc.message)
                self._auto_failover_said[name] = exc.message

    # ---- failover (R5, M4, M5) --------------------------------------------------------

    def failover(self, branch) -> dict:
        """Promote the best member of the recorded in-sync set and route to it.

        The best is the one with the most changes applied; a server not in the recorded
        set is never promoted, nor one that answers with another branch's name. Waits
        until the old primary's lease has surely run out. Transactions prepared on the
        old primary were replicated before their vote, so they finish on the new one.
        Other replicas follow it.
        Returns {"branch", "primary", "old_primary", "epoch", "applied"}.
        """
        link = self._link(branch)
        config = self.manager.config(link.name)
        if _recorded_primary(link, config) not in ("", link.url):
            unfinished = self._finish_failover(link, config)
            if unfinished:
                return unfinished
        reasons, candidates = [], []
        for url in _others(link, config):
            if url not in config.get("in_sync", []):
                reasons.append(f"{url} is out of sync (not in the recorded in-sync set"
                               + (f", version {config['version']}" if config else "")
                               + "; a replica is recorded once it has caught up, a few "
                               "seconds after it starts, and dropped when it misses a write)")
                continue
            status = self._replica_status(link, url, 0)
            if status.get("name", link.name) != link.name:
                reasons.append(f"{url} answers as {status['name']}, not {link.name}")
            elif not status["up"] or status["role"] != "replica":
                reasons.append(f"{url} is {'down' if not status['up'] else status['role']}")
            else:
                candidates.append((status["applied"], url))
        if not candidates:
            raise BankError(FaultCode.UNAVAILABLE,
                            f"No replica of {link.name} can be promoted: "
                            f"{'; '.join(reasons) or 'it has no replicas'}.")
        url = max(candidates)[1]
        installed = self.manager.install(link.name, url, config["version"])     # M4, M5
        return self._promote(link, url, installed["epoch"], old=link.url)

    def _finish_failover(self, link, config: dict):
        """A failover recorded but cut short: finish it. Either the promote never
        arrived (the server is still a replica, at an older epoch), or its answer was
        lost (it is the primary at the recorded epoch, but we never routed there nor
        told the others). Promoting again is safe: the same promote, the same answer."""
        try:
            info = link.ask(config["primary"], "ping", timeout=2)
        except BankError:
            return None
        role, epoch = info.get("role"), info.get("epoch", 0)
        if info.get("name") == link.name and (
                (role == "replica" and epoch < config["epoch"])
                or (role == "primary" and epoch == config["epoch"])):
            return self._promote(link, config["primary"], config["epoch"], old=link.url)
        return None

    def _promote(self, link, url: str, epoch: int, old: str) -> dict:
        promoted = link.ask(url, "promote", link.name, epoch, timeout=5)
        link.use(url)
        for other in link.replica_urls():
            try:
                link.ask(other, "follow", url, link.name, epoch)
            except BankError:
                pass                     # down: the manager's round tells it once back
        log.warning("failover: %s now served by %s (epoch %s)", link.name, url, epoch)
        self.twopc.request_recovery()
        return {"branch": link.name, "primary": url, "old_primary": old,
                "epoch": promoted["epoch"], "applied": promoted["applied"]}


def _whole_number(value, what: str, least: int) -> int:
    """An epoch or a configuration version from a primary: a whole number from `least`,
    or one sentence."""
    if not isinstance(value, int) or isinstance(value, bool) or not least <= value < 2**31:
        raise BankError(FaultCode.BAD_INPUT, f"The {what} must be a whole number from "
                                             f"{least}.")
    return value


def _recorded_primary(link, config: dict) -> str:
    """The branch's recorded primary, if it is one of the servers this coordinator was
    given; else "": a record naming another address is from a run with other ports or
    other machines (the coordinator warned at start, S4), and no server of ours."""
    primary = config.get("primary", "") if config else ""
    return primary if primary in link.urls else ""


def _others(link, config: dict) -> list:
    """The servers of a branch that may replace its primary: all but the recorded one
    (or, with nothing recorded, or a record from another run, the route). Not all but
    the route: after a coordinator restart that found no primary, the route is the
    first server listed, which may be the one in-sync replica left."""
    primary = _recorded_primary(link, config) or link.url
    return [url for url in link.urls if url != primary]
