"""What the coordinator tells of each branch: up or not, its role, its replicas.

Role: the coordinator's ``branches()``, which the shell's `branches` and the window's
tree show. It pings every branch (in parallel) and each of its replicas, and for a
branch that does not answer now it says what the branch last said, marked stale,
so a class watching a crashed branch still sees how many transfers it holds in doubt.
Mixed into bank/coordinator_service.py's Coordinator.

Rules:
  * A silent branch is never shown as empty: its in-doubt count is that of the last
    answer it gave (its last ping, or its yes votes since, whichever is newer), with
    "stale": true and the time of that answer.
  * A replica counts as in sync only if it says so AND the configuration manager
    records it so (a replica the manager never recorded cannot be promoted).

Glossary:
  link       the coordinator's connection to one branch (coordinator_service.BranchLink)
  stale      shown from an earlier answer, not from one given now
  lag        how many changes a replica is behind its primary
"""

import time

from bank.errors import BankError


class BranchStatus:
    """Mixed into Coordinator: branches() and the status rows it is made of."""

    def branches(self) -> list:
        """Every branch: {"name", "url", "up", "role", "epoch", "applied", "in_doubt",
        "partitioned", "error", "counters" (when up: see ping), "answered_at", "stale",
        "replicas": [{"url", "up", "role", "epoch", "in_sync", "applied", "lag"}]}, pinged
        in parallel. A branch that does not answer now (down, slow, cut off) shows the
        in-doubt count of the last answer it gave, with "stale": true and "answered_at"
        (Unix time; 0: it never answered)."""
        return self._each_branch(self._branch_status)

    def _branch_status(self, link) -> dict:
        row = {"name": link.name, "url": link.url, "up": False, "role": "", "epoch": 0,
               "applied": 0, "in_doubt": 0, "partitioned": link.partitioned, "error": "",
               "answered_at": 0.0, "stale": False}
        try:
            info = link.call("ping")
            row.update(up=True, role=info["role"], epoch=info["epoch"],
                       applied=info["applied"], in_doubt=info["in_doubt"],
                       counters=info.get("counters", {}))
            link.last_answer = (time.time(), info)
            row["answered_at"] = link.last_answer[0]
        except (BankError, KeyError) as exc:
            row["error"] = str(exc)
            row.update(self._last_word(link), stale=True)
        row["replicas"] = [self._replica_status(link, url, row["applied"])
                           for url in link.replica_urls()]
        return row

    def _last_word(self, link) -> dict:
        """A silent branch's in-doubt count from the last answer it gave: its last ping,
        or its yes votes since (prepared here, not acknowledged), whichever is newer."""
        pinged_at, info = link.last_answer or (0.0, {})
        held, voted_at = self.twopc.held_at(link.name)
        if voted_at > pinged_at:
            return {"in_doubt": held, "answered_at": voted_at}
        return {"in_doubt": info.get("in_doubt", 0), "answered_at": pinged_at}

    def _replica_status(self, link, url: str, primary_applied: int) -> dict:
        row = {"url": url, "up": False, "role": "", "epoch": 0, "in_sync": False,
               "applied": 0, "lag": 0,
               "recorded": url in self.manager.config(link.name).get("in_sync", [])}
        try:
            info = link.ask(url, "ping", timeout=2)
            row.update(up=True, role=info["role"], epoch=info["epoch"], name=info["name"],
                       in_sync=info["in_sync"] and row["recorded"], applied=info["applied"],
                       lag=max(0, primary_applied - info["applied"]))
        except (BankError, KeyError):
            pass
        return row
