"""The coordinator's lab controls: faults, partitions, and failover of a branch.

Role: the switches a teacher uses to break the bank on purpose (a crash point, a
partition between the coordinator and a branch) and to replace a branch's primary
by an in-sync replica. Mixed into bank.coordinator_service.Coordinator; faults and
partitions exist only with --allow-faults.

Rules:
  * A partition cuts the coordinator off from a branch in both directions: no call
    leaves, and the branch's decision queries are refused (bank/twopc.py D2).
  * Healing retries every unfinished decision at once: it asks for a recovery pass and
    does not wait for it; a burst of heals coalesces into one or two passes (D4).
  * Failover promotes only an in-sync replica (rule R5 of bank/core/replica.py).

Glossary:
  partition   a lab switch: the coordinator pretends it cannot reach a branch at all
  failover    promote a branch's best in-sync replica and route its calls there
"""

import logging

from bank.errors import BankError, FaultCode

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
        """Lab: end a partition; unfinished transactions are retried at once."""
        link = self._link(branch)
        link.partitioned = False
        log.warning("heal: %s is reachable again", link.name)
        self.twopc.request_recovery()
        return {"branch": link.name, "partitioned": False}

    def failover(self, branch) -> dict:
        """Promote the best in-sync replica of a branch and route to it from now on.

        The best is the in-sync replica with the most changes applied; an out-of-sync
        one is never promoted. Transactions prepared on the old primary were replicated
        before their vote, so they finish on the new one. Other replicas follow it.
        Returns {"branch", "primary", "old_primary", "epoch", "applied"}.
        """
        link = self._link(branch)
        reasons, candidates = [], []
        for url in link.replica_urls():
            status = self._replica_status(link, url, 0)
            if not status["up"] or status["role"] != "replica":
                reasons.append(f"{url} is {'down' if not status['up'] else status['role']}")
            elif not status["in_sync"]:
                reasons.append(f"{url} is out of sync")
            else:
                candidates.append((status["applied"], url))
        for applied, url in sorted(candidates, reverse=True):
            try:
                promoted = link.ask(url, "promote", timeout=5)
            except BankError as exc:
                reasons.append(exc.message)
                continue
            old = link.url
            link.use(url)
            for other in link.replica_urls():
                try:
                    link.ask(other, "follow", url)
                except BankError:
                    pass                     # a replica that is down is left as it is
            log.warning("failover: %s now served by %s (epoch %s)", link.name, url,
                        promoted["epoch"])
            self.twopc.request_recovery()
            return {"branch": link.name, "primary": url, "old_primary": old,
                    "epoch": promoted["epoch"], "applied": promoted["applied"]}
        raise BankError(FaultCode.UNAVAILABLE,
                        f"No replica of {link.name} can be promoted: "
                        f"{'; '.join(reasons) or 'it has no replicas'}.")
