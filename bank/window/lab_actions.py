"""What the Lab tab's buttons do: crash, restart, rejoin, partition, heal, fail over,
arm a fault point, recover.

Role: mixed into the Lab panel (bank/window/lab.py, which lays out the rows and their
states). Each action is an ordinary call made on a worker, and its outcome is said in
one sentence in the result line and the activity log.

Rules: it carries out the Lab's A1 (each action an ordinary call on a worker, said in
one sentence), A2 (the local cluster's actions), A6 (one crash, restart or rejoin of
a member at a time) and A8 (results name servers as their rows do), stated once in
bank/window/lab.py.

Glossary:
  member   the coordinator or a branch server (a row of the Lab)
"""

from bank.local_cluster import COORDINATOR as COORD
from bank.local_cluster import stopped_under


class LabActions:
    """Mixed into LabPanel, which has app, seen, busy, fault_member and fault_point."""

    def _cluster_gone(self, command: str) -> bool:
        """Refuse a crash or restart on a cluster stopped under the window, in words."""
        if not self.app.cluster.stopped_elsewhere():
            return False
        self.app.finish(f"lab: {command}", (), "bad", "Lab: " + stopped_under("window"))
        return True

    def _run(self, command: str, fn, args, explain, process: str = "") -> None:
        """Call fn(*args) on a worker; explain(result) says what happened, in words. A
        crash, restart or rejoin of a `process` still under way refuses another one of
        it (Rule A6): two workers would kill and start the same process at once."""
        if process in self.busy:
            self.app.say(f"Lab: {process} is still busy with {self.busy[process]}; wait "
                         f"for its result.", "bad")
            return
        if process:
            self.busy[process] = command
        self.app.say(f"Lab: {command}...", "info")

        def done(result, error):
            self.busy.pop(process, None)
            if error is not None:
                self.app.finish(f"lab: {command}", (), "bad",
                                f"Lab: {command} failed: {error.message}")
            else:
                self.app.finish(f"lab: {command}", (), "ok", "Lab: " + explain(result))
            self.app.refresh()
        self.app.submit(fn, args, done)

    def crash(self, name: str) -> None:
        if self._cluster_gone(f"crash {name}"):
            return
        role = self.seen.server_state(name) if name in self.seen.servers else ""
        role = (f" ({self.app.cluster.branch_of(name)}'s {role})"      # Rule A8
                if role in ("primary", "replica") else "")
        self._run(f"crash {name}", self._ask_and_crash, (name,),
                  lambda was: f"{name}{role} crashed (its process was killed, like a power "
                              "cut)." + (" It was fenced: " + was.split(": ", 1)[1]
                                         if "fenced" in was else ""), process=name)

    def _ask_and_crash(self, name: str) -> str:
        """A member's role in words, then its crash (on a worker thread): after a
        failover, the member named for the branch may be its fenced old primary."""
        was = "" if name == COORD else self._role(name)
        self.app.cluster.kill(name)
        return was

    def restart(self, name: str) -> None:
        if self._cluster_gone(f"restart {name}"):      # one member alone: half a bank
            return
        self._run(f"restart {name}", self._restart_and_ask, (name,),
                  lambda said: f"{name} restarted at {said[0]}; it recovers from its "
                               f"{'recovery log' if name == COORD else 'database'}"
                               + (f"; {said[1]}" if said[1] else "."), process=name)

    def _restart_and_ask(self, name: str) -> tuple:
        """(url, its role in words) of a member restarted (on a worker thread)."""
        url = self.app.cluster.restart(name)
        return url, "" if name == COORD else self._role(name)

    def _role(self, name: str) -> str:
        return self.app.cluster.role_in_words(       # this window has a button for it
            name, self.app.bank, rejoin=f"the Rejoin button in {name}'s row here")

    def partition(self, name: str) -> None:
        self._run(f"partition {name}", self.app.bank.call, ("partition", name),
                  lambda r: f"the coordinator is cut off from {name} (this window still "
                            "sees it).")

    def heal(self, name: str) -> None:
        self._run(f"heal {name}", self.app.bank.call, ("heal", name),
                  lambda r: f"{name} is reachable again; unfinished transactions are "
                            "retried." if r.get("was_partitioned", True) else
                            f"{name} was not cut off (no partition to end); unfinished "
                            "transactions are retried anyway.")

    def failover(self, name: str) -> None:
        self._run(f"failover {name}", self.app.bank.call, ("failover", name),
                  lambda r: f"{name} is now served by {self._new_primary(name, r)} at "
                            f"epoch {r['epoch']}; the old primary, "
                            f"{self._server(r['old_primary'])}"
                            ", is fenced (it refuses writes) while it runs or when it comes "
                            "back.")

    def _new_primary(self, branch: str, done: dict) -> str:
        """The promoted server by its row's name; after a fail-back, the server first
        started as the branch ("served by Mumbai" alone read as a riddle)."""
        server = self._server(done["primary"])
        return f"its first server, {server}, again" if server == branch else server

    def _server(self, url: str) -> str:
        """Rule A8: the server at `url` by the name of its row (Mumbai-replica1), as the
        Lab rows name it; its URL without a local cluster."""
        return self.app.cluster.server_at(url) if self.app.cluster is not None else url

    def rejoin(self, name: str) -> None:
        """README, replication step 5: the server a failover replaced comes back as a
        replica of the new primary (LocalCluster.rejoin says what happened)."""
        if self._cluster_gone(f"rejoin {name}"):
            return
        self._run(f"rejoin {name}", self.app.cluster.rejoin, (name, self.app.bank),
                  lambda done: done["said"], process=name)

    def arm(self, disarm=False) -> None:
        """Arm the chosen fault point on the chosen member (or disarm it)."""
        name = self.fault_member.get()
        point = "" if disarm else self.fault_point.get().strip()
        if not disarm and not point:
            self.app.say("Choose a fault point to arm.", "bad")
            return
        client = self.app.bank if name == COORD else self.app.clients.get(name)
        if client is None:
            self.app.say(f"There is no member {name!r}.", "bad")
            return
        what = f"disarm {name}" if disarm else f"arm {point} on {name}"
        fires = ("it slows every prepare, commit and abort there until disarmed"
                 if point.startswith("delay=") else
                 "it fires once, at that step of the next transfer")
        self._run(what, client.call, ("fault", point),
                  lambda r: f"{name}: no fault armed." if disarm else
                  f"{point} is armed on {name}; {fires}.")

    def recover(self) -> None:
        self._run("recover", self.app.bank.call, ("recover",),
                  lambda r: f"re-sent {r['resent']} decision(s); still unfinished: "
                            f"{', '.join(r['unfinished']) or 'none'}.")
