"""What the desktop window last heard from each source: plain data, no widgets.

Role: keep the latest answers of the coordinator and of every branch (up or down, role,
epoch, replicas, accounts, armed fault, lab partition) and answer the questions every
panel asks about them: is this member up, what is armed there, which accounts exist.

Rules:
  * Rule S1 - no widgets and no network: the app feeds answers in (on the Tk thread),
    panels read them out. A student can build a ``Seen`` by hand and test it.
  * Rule S2 - a branch that stops answering keeps its last accounts, marked down, so the
    window can still show (greyed) where its money was; its in-doubt count is the last
    one it gave, with its age, never a 0 it did not say.
  * Rule S3 - with a local cluster, a branch's address is the cluster's own, unless the
    coordinator reports it up somewhere else (after a failover): the window follows.
  * Rule S4 - a member that refuses this window's key (HTTP 401) runs: it is not
    reachable for the window, but it is never called down (key_refused).
  * Rule S5 - with a local cluster, each server of a replicated branch is asked at its
    own address (``servers``), so the lab says what that server does now (primary,
    replica, fenced), whatever its name: after a failover the server named for the
    branch may be a replica, and the branch's primary one named NAME-replicaK.

Glossary:
  source     something the window refreshes: the coordinator, or one branch
  snapshot   the last answer from a branch: {"up", "error", "role", "faults", "in_doubt",
             "accounts", "seen"}; a down branch keeps its last accounts
  route      where a branch's primary answers: branch -> URL
  member     the coordinator or a branch (what the lab controls crash and restart)
  server     one process of a replicated branch (Mumbai, Mumbai-replica1), whose role
             a failover changes
  blocking map  each transaction a branch holds prepared, with the money it keeps
             for it, since when, and what it waits for (read from the branches: it
             shows even while the coordinator is down)
"""

import time

from bank.errors import FaultCode
from bank.counters import restarted, totals
from bank.money import format_amount, parse_delta
from bank.local_cluster import COORDINATOR as COORD
from bank.views import in_doubt_text


class Seen:
    """The window's picture of the bank, built only from answers it received."""

    def __init__(self, routes=None):
        self.routes = dict(routes or {})   # branch -> URL of its primary
        self.partitioned = {}              # branch -> bool (a lab partition)
        self.replication = {}              # branch -> (epoch, [replica rows]) from branches()
        self.last_word = {}                # branch -> its row of branches(): in_doubt, stale
        self.snaps = {}                    # branch -> last snapshot (see fetch_branch)
        self.servers = {}                  # server -> its last ping: {"up", "role", "faults"} (S5)
        self.coord = {"up": None, "ping": {}, "error": "", "seen": ""}
        self.counted_from = None           # the first counters read (counters_since_opened)
        self.counted_at = ""               # and when, "HH:MM:SS"

    # ---- answers coming in --------------------------------------------------------------

    def got_coordinator(self, result, error) -> None:
        """The coordinator's ping (or why it did not answer)."""
        if error is None:
            self.coord = {"up": True, "ping": result["ping"], "error": "",
                          "seen": time.strftime("%H:%M:%S")}
        else:
            self.coord.update(up=False, error=error.message, key_refused=_key_refused(error))

    def got_routes(self, rows: list, local: bool) -> None:
        """The coordinator's branches(): partitions, replicas, and where primaries are."""
        for row in rows:
            name = row["name"]
            self.partitioned[name] = bool(row.get("partitioned"))
            self.replication[name] = (row.get("epoch", 0), row.get("replicas", []))
            self.last_word[name] = row
            if not local or name not in self.routes or row.get("up"):
                self.routes[name] = row["url"]          # Rule S3: follows a failover

    def got_branch(self, name: str, result, error) -> None:
        """One branch's ping and accounts (or why it did not answer: Rule S2)."""
        snap = self.snaps.setdefault(name, {"accounts": []})
        if error is None:
            ping = result["ping"]
            snap.update(up=True, error="", role=ping.get("role", ""),
                        faults=ping.get("faults", ""), in_doubt=ping.get("in_doubt", 0),
                        accounts=result["accounts"], seen=time.strftime("%H:%M:%S"))
        else:                                              # in doubt: see in_doubt_text
            snap.update(up=False, error=error.message, key_refused=_key_refused(error))

    def got_server(self, name: str, ping, error) -> None:
        """One server of a replicated branch, asked at its own address (Rule S5)."""
        if error is None:
            self.servers[name] = {"up": True, "role": ping.get("role", ""),
                                  "faults": ping.get("faults", "")}
        else:
            self.servers[name] = {"up": False, "role": "", "faults": "",
                                  "key_refused": _key_refused(error)}

    # ---- questions panels ask -----------------------------------------------------------

    def key_refused(self, name: str) -> bool:
        """S4: did a member that did not answer refuse this window's key (it runs)?"""
        snap = self.coord if name == COORD else self.snaps.get(name, {})
        return bool(snap.get("key_refused")) and snap.get("up") is False

    def in_doubt_text(self, name: str, now: float) -> str:
        """A branch's in-doubt count: its own if it answers the window, else the last
        answer it gave the coordinator, with its age (views.in_doubt_text, Rule S2)."""
        snap = self.snaps.get(name, {})
        if snap.get("up"):
            return str(snap.get("in_doubt", 0))
        return in_doubt_text(self.last_word.get(name, {}), now)

    def failover_refusal(self, name: str) -> str:
        """Why Failover cannot work for this branch now ("" if it may): a branch with no
        replica has nothing to promote (issue 12: disabled, with the reason shown)."""
        if name not in self.replication:
            return ""                                # not heard of yet: let the call say
        _epoch, replicas = self.replication[name]
        return "" if replicas else f"{name} has no replica: nothing to promote or rejoin"

    def counters(self):
        """The bank's counters (bank/counters.py, totals) from the coordinator's last ping
        and each branch's row of branches(), or None when the coordinator does not
        count them (no "counters" in its ping): what the shell's `counters` reads."""
        counted = self.coord.get("ping", {}).get("counters")
        if not counted:
            return None
        return totals(counted, {name: row.get("counters") or {}
                                for name, row in self.last_word.items()})

    def counters_since_opened(self) -> tuple:
        """(now, then): the counters now and when this window first read them, so that
        "per transfer" leaves out what came before (the branches' preloaded accounts,
        other people's work). A process that restarted counts from 0 again: then the
        window counts from now on. (None, None) when the coordinator does not count."""
        now = self.counters()
        heard_all = self.last_word and all(r.get("counters") for r in self.last_word.values())
        if now is None or not heard_all:     # a baseline without a branch's counts would
            return None, None                # count its start-up writes as a transfer's
        if self.counted_from is None or restarted(now, self.counted_from):
            self.counted_from, self.counted_at = dict(now), time.strftime("%H:%M:%S")
        return now, self.counted_from

    def branch_state(self, name: str) -> str:
        """'up', 'down' or '' (not heard from yet) for a member."""
        up = self.coord.get("up") if name == COORD else self.snaps.get(name, {}).get("up")
        return "" if up is None else ("up" if up else "down")

    def server_state(self, name: str) -> str:
        """What one server of a replicated branch does now, as it last answered
        (Rule S5): 'primary', 'replica', 'fenced', 'down', or '' (not heard from yet)."""
        server = self.servers.get(name)
        if server is None or server.get("key_refused"):     # S4: it runs, not down
            return ""
        return (server["role"] or "up") if server["up"] else "down"

    def armed(self, name: str) -> str:
        """The fault point armed in a member, as its last ping said ('' if none); a
        server of a replicated branch answers for itself (Rule S5)."""
        if name in self.servers:
            return self.servers[name]["faults"] if self.servers[name]["up"] else ""
        if self.branch_state(name) != "up":
            return ""
        snap = self.coord.get("ping", {}) if name == COORD else self.snaps.get(name, {})
        return snap.get("faults", "")

    def accounts(self, name: str) -> list:
        """A branch's accounts as last seen (kept while it is down)."""
        return self.snaps.get(name, {}).get("accounts", [])

    def account_refs(self) -> list:
        """Every account known, as BRANCH/NUMBER, branches in name order."""
        return [f"{n}/{a['number']}" for n in sorted(self.routes) for a in self.accounts(n)]

    def owners(self) -> dict:
        """BRANCH/NUMBER -> owner, for the pickers (branches in the order they were heard of)."""
        return {f"{n}/{a['number']}": a["owner"] for n in self.routes
                for a in self.accounts(n)}

    def books(self, money: dict) -> dict:
        """fetch_money's snapshot, with each unreachable branch's last seen accounts."""
        books = {}
        for name in self.routes:
            read = money.get(name)
            books[name] = {"up": True, **read} if read else {
                "up": False, "accounts": self.accounts(name)}
        return books


def blocking_map(books: dict, coordinator_up) -> list:
    """One row per (transaction, branch) a branch holds prepared, from Seen.books():
    {"txid", "branch", "money", "since", "waiting"}. Read from the branches themselves,
    so it is there exactly when the coordinator is not (2PC's blocking, made visible)."""
    rows = []
    for branch in sorted(books):
        snap = books[branch]
        for txn in snap.get("prepared", []) if snap.get("up") else []:
            rows.append({"txid": txn["txid"], "branch": branch,
                         "money": _money_text(txn.get("ops", [])),
                         "since": (txn.get("created") or "")[11:19],
                         "waiting": _waiting_text(txn, coordinator_up)})
    return rows


def _money_text(ops: list) -> str:
    """'holds 400.00 of 1001' for a debit, 'to credit 400.00 to 1002' for a credit."""
    parts = []
    for op in ops:
        delta = parse_delta(op["delta"])
        parts.append(f"holds {_thousands(-delta)} of {op['account']}" if delta < 0 else
                     f"to credit {_thousands(delta)} to {op['account']}")
    return "; ".join(parts)


def _thousands(minor: int) -> str:
    """400000 -> '4,000.00', like the branches tree (never a float)."""
    units, cents = format_amount(minor).split(".")
    return f"{int(units):,}.{cents}"


def _waiting_text(txn: dict, coordinator_up) -> str:
    if txn.get("elsewhere") == "committed":
        what = "the commit (another branch has it)"
    else:
        what = "the decision"
    if coordinator_up is False:
        return f"{what}; coordinator DOWN"     # it may not decide alone: README, hover
    return what


def _key_refused(error) -> bool:
    """A member that answered 401: it runs, but refuses this window's key (or none)."""
    return getattr(error, "code", None) == FaultCode.UNAUTHORIZED
