"""The shell's reads when the coordinator is down: straight from the branches.

Role: a class watching a blocked bank must still see who is blocked and on what. When
the coordinator cannot be reached, `balance`, `accounts`, `branches`, `txns in-doubt`,
`journal` and `check` ask each branch themselves (its own XML-RPC reads, the student role),
under one line that says the coordinator is unreachable. Nothing here writes: money
still moves only through the coordinator (Rule 2 of the shell).

Rules:
  * V1 - say where an answer came from: a read served by the branches follows one line
    naming the coordinator that cannot be reached ("...; read from the branches
    directly"). It is never passed off as the coordinator's answer.
  * V2 - only reads fall back, and only when the coordinator itself cannot be reached
    (its own connection failed): an error the coordinator answered (a branch down
    behind it, a bad account) is shown as it is.
  * V3 - the branches' addresses come from the local cluster (whose servers are asked
    which is the primary: a failover moves it), the cluster.ini the shell was given, or
    the coordinator's last `branches` or `failover` answer; a branch that does not
    answer either is named, never left out in silence, and a shell that knows no
    branch at all says so, never answers with nothing.
  * V4 - the branches know their prepared transfers (in doubt: holding money, waiting
    for the decision) but not the coordinator's list of committed and aborted ones, so
    only `txns in-doubt` (and `txns`) can be answered while it is down.

Glossary:
  direct read  a read sent to a branch by the shell itself, not through the coordinator
  prepared     a branch voted yes and holds the money until it learns the decision
"""

import time
from datetime import datetime

from bank import local_cluster as cluster
from bank import rpc
from bank.errors import (BROKEN, REFUSED, TIMED_OUT, BankError, FaultCode, split_acct_ref,
                         unknown_branch)
from bank.shell.plumbing import sentence
from bank.views import age_text

BRANCH_TIMEOUT = 3             # seconds a direct read waits for a branch
NO_ADDRESSES = ("This shell knows no branch's address, so it cannot read the branches "
                "directly: start it with --config and the cluster.ini that names them.")


class DirectReads:
    """Reads that fall back to the branches themselves (a mixin of BankShell)."""

    # ---- V2: when to fall back ---------------------------------------------------------

    def _coordinator_down(self, exc: BankError) -> bool:
        """True if the coordinator itself could not be reached (not an error it answered)."""
        return exc.why in (REFUSED, TIMED_OUT, BROKEN)   # our own connection failed

    def _from_coordinator(self, method: str, *args):
        """The coordinator's answer, or None if it cannot be reached (said once, V1).
        Once it was down in a command, it is not asked again in that command."""
        if self._direct:
            return None
        try:
            return self.coord.call(method, *args)
        except BankError as exc:
            if not self._coordinator_down(exc):
                raise
            self._say_unreachable(exc)
            return None

    def _read(self, method: str, *args):
        """The coordinator's answer to a read, or the same answer from the branches (V1)."""
        answer = self._from_coordinator(method, *args)
        if answer is not None:
            return answer
        if method == "account":
            branch, number = self._split(args[0])
            return self._ask(branch, "account", number)
        if method == "accounts":
            return self._each(lambda b: self._ask(b, "accounts"), *args[:1])
        assert method == "journal", method
        target, limit = args
        if "/" in target:
            branch, number = self._split(target)
            return self._ask(branch, "journal", number, limit)
        rows = self._each(lambda b: self._ask(b, "journal", "", limit), target)
        return sorted(rows, key=lambda r: r["ts"])[-limit:]

    def _say_unreachable(self, exc: BankError) -> None:
        """V1: the line above every answer read from the branches directly (once)."""
        if not self._direct:
            self._print(f"{sentence(exc).rstrip('.')}; read from the branches directly. A "
                        "transfer they hold in doubt stays blocked until it is back.")
        self._direct = True

    # ---- V3: the branches and their addresses ------------------------------------------

    def _branch_names(self) -> list:
        """The branches' names: the coordinator's list, or the known addresses' (V3)."""
        ping = self._from_coordinator("ping")
        return ping["branches"] if ping is not None else sorted(self.direct_urls())

    def _branch_urls(self) -> dict:
        """name -> URL of each branch's primary, from what this shell knows (V3). On a
        local cluster, once the coordinator is down, the branch's servers are asked which
        of them is the primary (a failover moves it: the shell's own, the window's, or
        one made before this shell started)."""
        urls = dict(self.branch_urls)
        if self.local is not None:
            for name in self.local.branch_names:
                urls.setdefault(name, self.local.members[name].url)
                if self._direct and self.local.replica_names(name):
                    urls[name] = self._local_primary(name, urls[name])
        return urls

    def _local_primary(self, branch: str, url: str) -> str:
        """The URL of the server of `branch` that answers as its primary at the highest
        epoch, asked once per command; `url` if none does."""
        if branch not in self._primaries:
            best, epoch = url, -1
            for member in (branch, *self.local.replica_names(branch)):
                there = self.local.members[member].url
                try:
                    info = rpc.Client(there, self.coord.secret, BRANCH_TIMEOUT).call("ping")
                except BankError:
                    continue
                if info.get("role") == "primary" and info.get("epoch", 0) > epoch:
                    best, epoch = there, info.get("epoch", 0)
            self._primaries[branch] = best
        return self._primaries[branch]

    def direct_urls(self) -> dict:
        """The known branches' addresses, for reads while the coordinator is down: none
        known is one sentence, not an empty answer (V3)."""
        urls = self._branch_urls()
        if not urls:
            raise BankError(FaultCode.UNAVAILABLE, NO_ADDRESSES)
        return urls

    def learn_branches(self, rows: list) -> None:
        """Remember the addresses from a `branches` answer (a failover moves a primary)."""
        self.branch_urls.update({b["name"]: b["url"] for b in rows if b.get("url")})

    def _branch_client(self, name: str) -> rpc.Client:
        url = self._branch_urls()[name]
        return rpc.Client(url, self.coord.secret, BRANCH_TIMEOUT, label=f"branch {name} at {url}")

    def _ask(self, branch: str, method: str, *args):
        return self._branch_client(branch).call(method, *args)

    def _split(self, acct: str) -> tuple:
        """("Mumbai", "1001") for an account of a branch this shell knows the address of."""
        branch, number = split_acct_ref(acct)
        return self._known(branch), number

    def _known(self, branch: str) -> str:
        urls = self._branch_urls()
        for name in urls:
            if name.lower() == branch.lower():
                return name
        if urls:
            raise BankError(FaultCode.BAD_INPUT, unknown_branch(branch, urls))
        raise BankError(FaultCode.BAD_INPUT, f"This shell knows no branch's address yet, so "
                                             f"not {branch!r}'s.")

    def _each(self, read, branch: str = "") -> list:
        """read(name) for one branch, or for every known branch; a branch that does not
        answer is named in one line (V3) and the others are still shown."""
        if branch:
            return read(self._known(branch))
        rows = []
        for name in sorted(self.direct_urls()):
            try:
                rows += read(name)
            except BankError as exc:
                self._print(f"({self._explain(exc).rstrip('.')}: its rows are missing.)")
        return rows

    # ---- the views: branches and in-doubt transfers ------------------------------------

    def _direct_branch_rows(self) -> list:
        """Rows of `branches` from each branch's own ping, and the coordinator DOWN."""
        rows = []
        for name, url in sorted(self.direct_urls().items()):
            try:
                info = self._ask(name, "ping")
                rows.append([name, url, "up", info["role"], info["epoch"], "-",
                             str(info["in_doubt"])])
            except BankError:
                rows.append([name, url, "DOWN", "-", "-", "-", "?"])
        rows.append([cluster.COORDINATOR, self.coord.url, "DOWN", "coordinator", "-", "-",
                     "-"])
        return rows

    def _direct_in_doubt(self, limit: int) -> None:
        """V4: each branch's prepared transfers: what it holds and since when."""
        rows = self._each(lambda b: [dict(t, branch=b) for t in self._ask(b, "in_doubt")])
        rows.sort(key=lambda t: t["created"], reverse=True)
        now = time.time()
        self._table([[t["txid"], t["branch"], ", ".join(f"{t['branch']}/{o['account']} "
                                                        f"{o['delta']}" for o in t["ops"]),
                      _since(t["created"], now),
                      "prepared: voted yes, holding it until the coordinator decides"]
                     for t in rows[:limit]], ["txid", "branch", "holds", "since", "state"])
        self._result = f"{len(rows[:limit])} transfers in doubt at the branches"


def _since(created: str, now: float) -> str:
    """'2026-11-25T13:17:33.255+00:00' -> '12 s ago' (or the time itself if unreadable)."""
    try:
        return age_text(datetime.fromisoformat(created).timestamp(), now).replace("as of ", "")
    except ValueError:
        return created[:19].replace("T", " ")
