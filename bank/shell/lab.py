"""The shell's lab controls: crash, restart, fault, partition, heal and failover.

Role: break and mend the cluster on purpose, so a class can watch 2PC survive it.
crash and restart need the local cluster this shell attached to (they kill and start
processes); the others are calls to the coordinator or a branch started with
--allow-faults.

Rules:
  * Each control says in one sentence what it did and how to undo it.
  * A fault point has a name (bank/faults.py) and a documented effect (FAULT_EFFECTS).

Glossary:
  node        a cluster member: a branch name or "coordinator"
  fault point a named place where a server misbehaves once armed (vote-no, crash-...)
  partition   the coordinator cannot reach a branch at all, until healed
"""

from bank import local_cluster as cluster
from bank import rpc
from bank.core.manager import lease_wait
from bank.errors import check_branch_name
from bank.shell.plumbing import ShellError

FAULT_EFFECTS = {
    "vote-no": "its next prepare votes no",
    "crash-before-vote": "it dies at its next prepare, before recording anything",
    "crash-after-vote": "it dies right after durably voting yes, before the vote is sent",
    "crash-before-commit": "it dies when the next commit arrives, before applying it",
    "crash-after-commit": "it dies right after applying the next commit, before the ack",
    "cut-replication": "its replication link is cut (no pushes or pulls) until `fault NODE off`",
    "crash-after-prepare": "it dies once the votes are in, before logging a decision",
    "crash-after-decision": "it dies right after logging a commit, before telling anyone",
    "crash-mid-commit": "it dies after telling only one participant to commit"}


class LabCommands:
    """The lab controls (a mixin of BankShell)."""

    def do_crash(self, arg):
        """crash NODE: kill a branch or the coordinator at once, like a power cut.
        Example: crash Delhi"""
        self._need_local()
        name = self._node(*self._args(arg, 1))
        if not self.local.members[name].alive:
            return self._say(f"{name} is already down; `restart {name}` starts it.")
        role = self._replicated_role(name)        # a failover moves the primary
        self.local.kill(name)
        self._say(f"Crashed {name}{role}: killed with no cleanup. What it made durable "
                  f"survives; `restart {name}` brings it back.")

    def _replicated_role(self, name: str) -> str:
        """' (Mumbai's replica, at URL)' for a server of a replicated branch, else ''."""
        if name == cluster.COORDINATOR or not self.local.replica_names(
                self.local.branch_of(name)):
            return ""
        role = self.local.role_now(name) or self.local.role_on_disk(name) or "server"
        return f" ({self.local.branch_of(name)}'s {role}, at {self.local.members[name].url})"

    def do_restart(self, arg):
        """restart NODE [--rejoin | --accept-damaged-log]: start a crashed (or running)
        node again, on its port and its data. `restart Mumbai --rejoin` brings a branch
        server that a failover replaced back as a replica of the current primary, once
        that primary answers (its old database is kept aside and it copies the primary
        anew; a replica keeps its database: README, replication).
        `restart coordinator --accept-damaged-log` starts it on a damaged recovery log,
        keeping what the damage may hide in doubt (README, "The recovery log").
        Example: restart Delhi"""
        self._need_local()
        words = self._args(arg, 1, 2)
        name, extra = self._node(words[0]), tuple(words[1:])
        option = "--accept-damaged-log" if name == cluster.COORDINATOR else "--rejoin"
        if extra == ("--rejoin",) and option != "--rejoin":          # the coordinator
            raise ShellError("--rejoin is for a branch server a failover replaced; the "
                             "coordinator has no replicas: `restart coordinator` starts "
                             "it again.")
        if extra == ("--accept-damaged-log",) and option != extra[0]:   # a branch
            raise ShellError(f"--accept-damaged-log is for the coordinator only (a damaged "
                             f"recovery log): `restart {name}` starts this server again, "
                             f"`restart {name} --rejoin` one that a failover replaced.")
        if extra and extra != (option,):
            raise ShellError(f"restart takes one option here: restart {name} {option}.")
        rejoin = extra == ("--rejoin",)
        try:
            if rejoin:
                return self._say(self.local.rejoin(name, self.coord)["said"])
            url = self.local.restart(name, extra)
        except RuntimeError as exc:
            why = str(exc).splitlines()[0]
            hint = " (here: restart coordinator --accept-damaged-log)" \
                if "--accept-damaged-log" in why and not extra else ""
            raise ShellError(f"{name} did not start again: {why}{hint}")
        self._say(f"Restarted {name} at {url}; " + (
            "it read its recovery log and finishes what was in flight."
            if name == cluster.COORDINATOR else self.local.role_in_words(name, self.coord)))

    def do_fault(self, arg):
        """fault NODE POINT: arm a named fault point on a node (off disarms).
        Branch points: vote-no, crash-before-vote, crash-after-vote, crash-before-commit,
        crash-after-commit, delay=SECONDS, and cut-replication (stays on until off: a
        replicated branch's link to its replicas is cut). Coordinator points:
        crash-after-prepare, crash-after-decision, crash-mid-commit.
        Example: fault Delhi crash-after-vote"""
        node, point = self._args(arg, 2)
        node, point = self._node(node), "" if point in ("off", "none") else point
        if node == cluster.COORDINATOR:
            client = self.coord
        elif self.local is not None:
            client = self.local.client(node)
        else:
            url = {b["name"]: b["url"] for b in self.coord.call("branches")}[node]
            client = rpc.Client(url, self.coord.secret, label=f"branch {node} at {url}")
        client.call("fault", point)
        effect = FAULT_EFFECTS.get(point, f"each prepare, commit and abort waits "
                                          f"{point.partition('=')[2]} s")
        self._say(f"Armed {point} on {node}: {effect}." if point
                  else f"Disarmed the faults of {node}.")

    def do_partition(self, arg):
        """partition BRANCH: cut the coordinator off from a branch (a lab network fault).
        Example: partition Delhi"""
        name = self.coord.call("partition", check_branch_name(*self._args(arg, 1)))["branch"]
        self._say(f"The coordinator can no longer reach {name}; `heal {name}` reconnects it.")

    def do_heal(self, arg):
        """heal BRANCH: end a partition; unfinished transfers are retried at once.
        Example: heal Delhi"""
        healed = self.coord.call("heal", check_branch_name(*self._args(arg, 1)))
        name = healed["branch"]
        if healed.get("was_partitioned", True):
            self._say(f"{name} is reachable again; unfinished transfers are being retried.")
        else:
            self._say(f"{name} was not cut off (no partition to end); unfinished transfers "
                      "are retried anyway.")

    def do_heuristic(self, arg):
        """heuristic BRANCH TXID commit|abort: (teacher) force an in-doubt transfer at one branch.
        The operator decides, not the coordinator: a heuristic decision, recorded as such
        (P10). If the coordinator decided otherwise, the branch records the damage and
        `check` shows it: who decided what, and the money out of balance.
        Example: heuristic Delhi C1-20261125T130102-9f3a2c abort"""
        name, txid, outcome = self._args(arg, 3)
        name = check_branch_name(name)
        if name.lower() not in {known.lower() for known in self._branch_urls()}:
            self.learn_branches(self.coord.call("branches"))
        name = self._known(name)   # "delhi" is Delhi; an unknown branch is one sentence
        done = self._branch_client(name).call("heuristic", txid, outcome)
        self._say(f"{name} {done['state']} {done['txid']} heuristically (the operator "
                  "decided, not the coordinator). If the coordinator decided otherwise, "
                  "`check` will show the damage.")

    def do_failover(self, arg):
        """failover BRANCH: promote the branch's best in-sync replica and route to it.
        Example: failover Mumbai"""
        branch = check_branch_name(*self._args(arg, 1))
        self._print(f"Asking the coordinator to fail over {branch} (a failover first waits "
                    f"up to {lease_wait():.0f} s for the old primary's lease to run out, so "
                    "that it takes no more writes)...")
        done = self.coord.call("failover", branch)
        self.branch_urls[done["branch"]] = done["primary"]     # direct reads go there
        server = (self.local.server_at if self.local is not None else  # its name (as
                  lambda url, with_url=False: url)                     # crash takes it)
        self._say(f"{done['branch']} is now served by "
                  f"{server(done['primary'], with_url=True)} at epoch {done['epoch']} (it "
                  f"had applied {done['applied']} changes); the old primary, "
                  f"{server(done['old_primary'], with_url=True)}, is fenced (it refuses "
                  f"writes) while it runs or when it comes back.")
