"""The replicated servers of a local cluster: who serves as what now, and rejoining.

Role: mixed into LocalCluster (bank/local_cluster.py). After a failover the member named
for a branch (Mumbai) is no longer its primary; this module asks the servers what they
do now, waits at a start until each replicated branch takes writes, and brings a
primary that a failover replaced back as a replica of the new one (README,
replication, step 5).

Rules:
  * Rule L3 - a start returns once one server of each replicated branch takes writes
    and holds its lease (R8; at most LEASE_WAIT), so a class's first transfer is not
    refused "holds no lease".
  * Rule L4 - a rejoin restarts a server as a replica of the primary the coordinator
    records, and only once that primary answers as its branch's primary: a server
    cannot copy a primary that is down, and one that once followed it would start as
    the primary it was (a stale --replica-of), then be fenced. The branch keeps its
    old database aside (bank/branch_service.py); the result says what happened, and
    a server that did not come back as a replica is an error.

Glossary:
  role       primary, replica or fenced (bank/core/replica.py), as a server answers now
  rejoin     restart a replaced primary as a replica of the new one
"""

import time

from bank import rpc
from bank import cluster_home
from bank.errors import BankError, FaultCode

COORDINATOR = "coordinator"
LEASE_WAIT = 6.0              # seconds a start waits for replicated primaries' leases


class ClusterRoles:
    """Mixed into LocalCluster, which has members, branch_names, replica_names, member,
    client, coordinator, restart, home and secret."""

    def role_now(self, name: str) -> str:
        """A branch server's role as it answers now ("primary", "replica", "fenced"),
        "coordinator", or "" if it does not answer: after a failover, the member named
        for a branch is no longer its primary."""
        try:
            return self.client(name, timeout=2).call("ping").get("role", "")
        except BankError:
            return ""

    def role_in_words(self, name: str, coordinator, rejoin: str = "") -> str:
        """What a branch server does now, by its role, for a person (after a restart
        or before a crash). A replaced primary may learn it was replaced a moment after
        it starts: the manager's record (the coordinator's `configuration`, asked
        through `coordinator`, an rpc.Client) already names the primary. `rejoin`: how
        the person asking rejoins a fenced one (the shell's command unless given)."""
        member = self.member(name)
        try:
            info = self.client(name, timeout=3).call("ping")
        except BankError:
            return "it does not answer yet."
        role, primary = info.get("role", ""), member.url
        try:
            primary = coordinator.call("configuration", info.get("name", "")).get(
                "primary", member.url)
        except BankError:                   # the coordinator is down: the server's word
            pass
        if role == "fenced" or (role == "primary" and primary != member.url):
            how = rejoin or f"`restart {name} --rejoin` in the shell"
            return (f"it is fenced: another server replaced it as the primary, so it "
                    f"refuses writes ({how} makes it a replica of the new primary: "
                    f"README, replication, step 5).")
        if role == "replica":
            return "it serves as a replica and catches up with its primary."
        return "it serves as the primary and asks the coordinator about its in-doubt " \
               "transfers at once."

    def _wait_for_leases(self) -> None:
        """Rule L3. A replicated branch's primary serves writes only once it holds a
        lease from the coordinator (R8), about a second after the coordinator starts:
        wait for one server of each such branch to take writes (up to LEASE_WAIT), so
        that the first transfer of a class is not refused. A branch none of whose
        servers takes writes (its primary down, say) is waited for LEASE_WAIT in all,
        no longer (each ping at most 3 s more): its writes are refused with a sentence
        saying why."""
        deadline = time.monotonic() + LEASE_WAIT
        waiting = [name for name in self.branch_names if self.replica_names(name)]
        while waiting and time.monotonic() < deadline:
            waiting = [name for name in waiting if not self._takes_writes(name)]
            if waiting:
                time.sleep(0.05)       # polling servers we started, with a deadline

    def wait_configured(self, timeout: float = 30.0) -> bool:
        """Has the configuration manager recorded each branch's first configuration
        (waiting up to `timeout` s)? A start returns a moment before that: then the
        coordinator tells each branch who its manager is (a COMMIT at the branch) and
        the branch's first lease request is recorded (a forced line in recovery.log).
        A lab or a test that counts writes from the start waits for these first."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                coordinator = self.coordinator()
                if all(coordinator.call("configuration", name) for name in self.branch_names):
                    return True
            except BankError:
                pass                           # not answering yet: ask again
            if time.monotonic() > deadline:
                return False
            time.sleep(0.1)                    # polling the coordinator we started

    def _takes_writes(self, branch: str) -> bool:
        """Does a server of `branch` (its primary, wherever a failover put it) take
        writes and hold its lease? Taking writes is not enough: with no replica in its
        in-sync set yet, a primary needs no lease, and it needs one the moment its
        replica, attaching again after a start, is back in sync."""
        for name in (branch, *self.replica_names(branch)):
            try:
                info = self.client(name, timeout=3).call("ping")
                if info.get("takes_writes") and info.get("holds_lease"):
                    return True
            except BankError:
                continue
        return False

    def rejoin(self, name: str, coordinator) -> dict:
        """Rule L4: restart a branch server as a replica of its branch's current
        primary, as the manager (the coordinator, asked through `coordinator`) records
        it: how a primary replaced by a failover comes back into the in-sync set. It
        keeps its old database aside (NAME.db.before-rejoin-TIME, never merged: it may
        hold changes no one else had) and copies the primary from scratch
        (bank/branch_service.py); a server that is a replica already keeps its database
        and catches up.

        Returns {"url", "primary", "kept" (the database kept aside, or ""), "said" (what
        happened, in words)}. BankError if nothing was restarted (_primary_to_rejoin),
        or if the server did not come back as a replica (it says what it is instead)."""
        branch, primary = self._primary_to_rejoin(name, coordinator)
        db = self._db_of(name)
        before = set(db.parent.glob(db.name + ".before-rejoin-*"))
        url = self.restart(name, ("--replica-of", primary))
        kept = sorted(set(db.parent.glob(db.name + ".before-rejoin-*")) - before)
        if self.role_now(name) != "replica":
            now = self.role_in_words(name, coordinator)
            raise BankError(FaultCode.UNAVAILABLE, f"Restarted {name} at {url}, but it did "
                            f"not rejoin as a replica: {now}")
        how = (f"its old database is kept aside ({kept[0].name}), it copies the primary "
               f"anew" if kept else
               "it was a replica already, so it keeps its database and catches up")
        return {"url": url, "primary": primary, "kept": kept[0].name if kept else "",
                "said": f"Restarted {name} at {url} as a replica of {branch}'s primary, "
                        f"{self.server_at(primary, with_url=True)}: {how}; it is listed in "
                        f"sync once the coordinator has recorded it (about a second)."}

    def server_at(self, url: str, with_url: bool = False) -> str:
        """The name of the member at `url` ("Mumbai-replica1", or "Mumbai-replica1 at
        URL" with_url), for a person: after a failover a branch's primary is a server
        whose name is not the branch's. The URL itself if no member is there."""
        name = next((n for n, m in self.members.items() if m.url == url), "")
        return (f"{name} at {url}" if with_url else name) if name else url

    def _primary_to_rejoin(self, name: str, coordinator) -> tuple:
        """(branch, the URL of its primary as the manager records it), once that primary
        answers as its branch's primary: a server cannot copy a primary that is down,
        and one that once followed it would start as the primary it was (a stale
        --replica-of), then be fenced. Else BankError, and nothing is restarted."""
        branch = self.branch_of(name)
        primary = coordinator.call("configuration", branch).get("primary", "")
        if not primary:
            why = (f"{branch} has no replicas" if not self.replica_names(branch) else
                   f"the coordinator records no primary of {branch} yet (a primary asks "
                   f"for its first lease about a second after it starts)")
            raise BankError(FaultCode.BAD_INPUT, f"{why}, so no failover replaced {name}: "
                            f"restart it instead.")
        if primary == self.member(name).url:
            raise BankError(FaultCode.BAD_INPUT, f"{name} is {branch}'s primary now: only "
                            "a server that another replaced rejoins (restart it instead).")
        who = self.server_at(primary, with_url=True)
        try:
            info = rpc.Client(primary, self.secret, timeout=3).call("ping")
        except BankError as exc:
            raise BankError(FaultCode.UNAVAILABLE,
                            f"{branch}'s primary ({who}) does not answer "
                            f"({exc.message.rstrip('.')}), so {name} has no one to copy "
                            f"from: nothing was restarted. Start that server again (or "
                            f"fail {branch} over), then rejoin.") from None
        if info.get("name") != branch or info.get("role") != "primary":
            raise BankError(FaultCode.UNAVAILABLE,
                            f"The coordinator records {who} as {branch}'s primary, but it "
                            f"answers as {info.get('name')}'s {info.get('role')} (epoch "
                            f"{info.get('epoch')}): nothing was restarted. A failover of "
                            f"{branch} finishes the failover; then rejoin.")
        return branch, primary

    def role_on_disk(self, name: str) -> str:
        """A branch server's role as its database records it, up or down ("" if unknown)."""
        return cluster_home.role_on_disk(self._db_of(name))[0]

    def _db_of(self, name: str):
        """A branch server's database, as its command line names it."""
        return self.home / _arg_of(self.member(name).args, "--db")   # absolute as started

    def branch_of(self, name: str) -> str:
        """The branch a member serves (a replica's name is its branch's and -replicaK)."""
        for branch in self.branch_names:
            if name == branch or name in self.replica_names(branch):
                return branch
        servers = ", ".join(m for m in self.members if m != COORDINATOR)
        raise BankError(FaultCode.BAD_INPUT, f"{name} is not a branch server; the branch "
                        f"servers are {servers}.")


def _arg_of(args, option: str) -> str:
    """The value of the last `option` in a command line (args), or ""."""
    values = [args[i + 1] for i in range(len(args) - 1) if args[i] == option]
    return values[-1] if values else ""
