"""The local cluster: start, crash, restart and stop the kit's processes on this machine.

Role: launch branches and a coordinator as real processes on loopback, for a
teacher's demo, a student's lab script, the shell, the window and the tests.

Use it from the command line:
    python cluster.py start      # Mumbai and Delhi (preloaded) + a coordinator
    python cluster.py status     # what runs, where
    python cluster.py stop
    python cluster.py reset      # delete its databases and logs (when stopped)
    python cluster.py secret classroom.keys   # three role keys for a classroom LAN

or from Python (what labs and tests do):
    with LocalCluster(home=tmpdir, branches=("Mumbai", "Delhi")) as bank:
        coord = bank.coordinator()            # an rpc.Client
        coord.call("transfer", "Mumbai/1001", "Delhi/1002", "100")
        bank.kill("Mumbai"); bank.restart("Mumbai")

Rules:
  * Processes are started with ``subprocess`` (no fork) and ended with
    ``Popen.kill()``, so it works the same on Windows, macOS and Linux.
  * A member is ended only by a pid this launcher started or this run's record names
    (L5), never by one of ours that has ended (the system may reuse it).
  * State is kept between runs: databases in HOME/data, logs in HOME/logs, and the
    running cluster's URLs and pids in HOME/data/cluster.json.
  * Rule L1 - a cluster is stopped on exit only by the program that started it, and
    only if no other program attached to it since: a shell, a window or
    ``cluster.py start`` that finds it running marks it kept (HOME/data/cluster.kept),
    so the one that started it leaves it running for them and says so
    (``python cluster.py stop`` stops it). A new start clears the mark.
  * Rule L2 - a home's data keeps its layout (its replicas, whether a failover
    happened, the ports of the last run): bank/cluster_home.py reads it, and ``start``
    refuses fewer replicas than the data holds after a failover.
  * What each server of a replicated branch does now (primary, replica, fenced), the
    start's wait for leases and the rejoin of a replaced primary are
    bank/cluster_roles.py's (Rules L3, L4). Reading the record, finding who answers
    and ending a process by the pid the record or its own files name are
    bank/cluster_record.py's (for L1, L5, L6).
  * Rule L5 - programs attached to one cluster (a window and a shell beside it) each
    crash and restart its members: a member is the process that answers at its URL
    now, whoever started it last. A crash ends the process this program started if
    it still runs, else the one answering at its URL (another program restarted it
    since), by the pid that server wrote in the home or else the record names (L6),
    if the record is still this run's (a record of a later run names none of ours,
    even at the same URLs) and the pid is not one of ours that has ended; the record
    is never rewritten with a pid that has ended in place of the one another
    program wrote; and a crash that leaves the member answering is an error, never
    reported done.
  * Rule L6 - the record names every process a program starts from the moment it is
    spawned, before it listens: at a start, member by member (a record marked
    "starting", which no program attaches to), and at a restart, its new pid at once.
    And each server writes its own pid beside its URL in HOME/data (NAME.pid, then
    NAME.url: rpc.serve), with its server id (new at every start), which a stop and a
    crash take first, only while the server at the URL announces that id: a file left
    by a server that has ended names no pid (the system may have reused it), and then
    neither does the record, unless the file holds no id (an older kit's server). A
    stop also ends a server that only its own files name. So a program killed
    (kill -9) while it starts or restarts the cluster, even between spawning a server
    and recording it, leaves no server that cannot be found: `cluster.py stop` ends
    them and `status` lists them (a start over such servers fails on their databases'
    locks, saying so). A stop reports as stopped only a member that stopped answering,
    and removes the files of each it ended, so a later start asks no stale address.
  * The cluster makes its own keys file (HOME/data/cluster.keys, mode 0600) with all
    three role keys (student, teacher, server; bank/keys.py): every member and client
    on this laptop holds every role, so one laptop needs no extra step.

Glossary:
  home    the folder that holds a cluster's data/ and logs/ (the repository by default)
  member  one process of the cluster: a branch, or "coordinator"
  kept    attached to by another program since it started: not stopped on its
          starter's exit (Rule L1)
"""

import argparse
import json
import os
import pathlib
import secrets
import socket
import subprocess
import sys
import time

from bank import rpc
from bank.errors import BankError, FaultCode
from bank.cluster_home import (DEFAULT_BRANCHES, MAX_REPLICAS, ports_file, ports_of,
                               replica_name, replicas_in, why_replaced)
from bank.cluster_roles import COORDINATOR, ClusterRoles
from bank.cluster_record import (START_TIMEOUT, answering_members, answers_at, end_recorded,
                                 forget_files, is_ours, kept_mark, pid_at, recorded_members,
                                 running_cluster, write_whole)
from bank.cluster_record import kill_pid, stop_running  # noqa: F401 (cluster.py, tests)

KIT = pathlib.Path(__file__).resolve().parent.parent   # the repository: programs on top
DEFAULT_PORTS = {"coordinator": 9000, "Mumbai": 9100, "Delhi": 9101}
ANY_PORTS = "BANK_PORTS"      # =any in the environment: never the default ports, any free
                              # ones (several homes at once: the test suite, two groups)


# A member must not die when the user presses Ctrl-C in the terminal that started it,
# nor when that terminal is closed (`cluster.py start` leaves the cluster up). On
# Windows a process attached to a console ends with it: a member gets a console of its
# own with no window (its output goes to its .out file anyway), in a process group of
# its own. Not DETACHED_PROCESS: in a venv, sys.executable is a launcher that starts
# the real python.exe, and a launcher with no console gives that child a new, VISIBLE
# console window; closing it kills the member (CPython issue 85785).
_DETACHED = ({"creationflags": subprocess.CREATE_NEW_PROCESS_GROUP | subprocess.CREATE_NO_WINDOW}
             if os.name == "nt" else {"start_new_session": True})


def _port_is_free(port: int) -> bool:
    with socket.socket() as s:
        if os.name != "nt":       # as the servers do: a port in TIME_WAIT is free to bind
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


class Member:
    """One launched process of the cluster, restartable on the same port."""

    def __init__(self, name: str, script: str, args: list, home: pathlib.Path, port: int = 0,
                 preferred: bool = False):
        self.name, self.script, self.args, self.home, self.port = name, script, args, home, port
        self.preferred = preferred    # port is a default or remembered one (L2), free when
                                      # we looked: if taken by the time we start, any will do
        self.proc = None
        self.pid = None               # set from cluster.json when attached, not started
        self.secret = None            # the cluster's keys: is what answers at url ours?
        self.url = ""
        self.url_file = home / "data" / f"{name}.url"
        self.output = home / "logs" / f"{name}.out"
        self._output_from = 0         # where this run's output starts in that file
        self.on_spawn = None          # called once the process exists, before it listens (L6)
        self.quiet = True             # --quiet: its INFO lines only in logs/NAME.log

    def start(self, extra=()) -> str:
        """Start the process and wait (with a deadline) until it listens; return its URL.
        A preferred port (default or remembered) that another program took since it was
        found free is given up for any free one (the first start only: a restart keeps
        its port)."""
        try:
            return self._start(extra)
        except RuntimeError:
            if not self.preferred or _port_is_free(self.port):
                raise                             # it failed for another reason
            self.port = 0                         # (the README: "another free port if taken")
            return self._start(extra)
        finally:
            self.preferred = False

    def _start(self, extra) -> str:
        self.url_file.unlink(missing_ok=True)
        self._output_from = self.output.stat().st_size if self.output.exists() else 0
        cmd = [sys.executable, str(KIT / self.script), *self.args, "--port", str(self.port),
               "--url-file", str(self.url_file), "--log-dir", str(self.home / "logs"),
               *(["--quiet"] if self.quiet else []), *extra]
        with open(self.output, "ab") as out:
            self.proc = subprocess.Popen(cmd, cwd=self.home, stdout=out,
                                         stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                         **_DETACHED)
        if self.on_spawn is not None:
            self.on_spawn(self)                  # recorded before it listens (L6)
        self.url = self._wait_for_url()
        self.port = int(self.url.rsplit(":", 1)[1])      # a restart reuses the port
        return self.url

    def _wait_for_url(self) -> str:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.url_file.exists():
                return self.url_file.read_text(encoding="utf-8").strip()
            if self.proc.poll() is not None:     # its last line says why (one sentence)
                output = self.last_output()
                why = output.splitlines()[-1] if output else "it wrote nothing"
                raise RuntimeError(f"{self.name} exited with code {self.proc.returncode} "
                                   f"while starting: {why}\n{output}")
            time.sleep(0.05)                 # polling for a file, with a deadline
        self.kill()
        raise RuntimeError(f"{self.name} did not start within {START_TIMEOUT} s:\n"
                           f"{self.last_output()}")

    def last_output(self, lines: int = 15) -> str:
        """The last lines this process wrote to its .out file (not an earlier run's)."""
        try:
            with open(self.output, "rb") as out:
                out.seek(self._output_from)
                text = out.read().decode(errors="replace")
            return "\n".join(text.splitlines()[-lines:])
        except OSError:
            return ""

    @property
    def running_ours(self) -> bool:
        """Does the process this program started still run?"""
        return self.proc is not None and self.proc.poll() is None

    @property
    def alive(self) -> bool:
        """Does the member run: the process we started, or one that answers at its URL
        with the cluster's keys (another program attached to the cluster restarted it
        since, Rule L5)?"""
        if self.running_ours:
            return True
        return bool(self.url) and self.secret is not None and is_ours(self.url, self.secret)

    def kill(self, recorded_pid=None) -> None:
        """Like pulling the plug: Popen.kill() (SIGKILL / TerminateProcess) on the
        process we started. If that one has ended (or we started none), the process
        `recorded_pid` names (a pid, or a function asked only then:
        LocalCluster._recorded_pid, the pid the server at our URL wrote in the home,
        else the one this run's record gives: another program restarted it since, Rule
        L5), if it answers at our URL with the cluster's keys.
        Never the pid of a process we started and saw end: the system may have given
        that number to another program since."""
        if self.running_ours:
            self.proc.kill()
            self.proc.wait(timeout=10)
        else:
            if callable(recorded_pid):   # asked only now: it asks the server its id
                recorded_pid = recorded_pid()
            if recorded_pid and not (self.proc is not None and recorded_pid == self.proc.pid):
                end_recorded(recorded_pid, self.url, self.secret)   # another launcher's
        self.pid = None

    def wait_exit(self, timeout: float = 10.0):
        """Wait for the process to end by itself (e.g. an armed crash); its exit code."""
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None


class LocalCluster(ClusterRoles):
    """Branches plus a coordinator on loopback, sharing one home folder and secret."""

    def __init__(self, home=KIT, branches=DEFAULT_BRANCHES, *, preload=True,
                 allow_faults=True, fixed_ports=False, coordinator_args=(),
                 branch_args=(), replicas=None):
        """replicas: per branch; None, as many as the home's data holds (L2)."""
        self.home = pathlib.Path(home).resolve()
        self.replicas_found = replicas_in(self.home, branches)
        replicas = self.replicas_found if replicas is None else replicas
        (self.home / "data").mkdir(parents=True, exist_ok=True)
        (self.home / "logs").mkdir(parents=True, exist_ok=True)
        self.secret_file = self.home / "data" / "cluster.keys"   # all three roles
        if not self.secret_file.exists():
            rpc.write_secret(self.secret_file)
        self.secret = rpc.load_secret(self.secret_file)
        common = ["--secret-file", str(self.secret_file)]
        if allow_faults:
            common.append("--allow-faults")
        self.members = {}
        for name in branches:
            args = ["--name", name, "--db", str(self.home / "data" / f"{name}.db"), *common,
                    *(["--preload"] if preload else []), *branch_args]
            port = self._port(name, fixed_ports)
            self.members[name] = Member(name, "branch.py", args, self.home, port, bool(port))
            for k in range(1, replicas + 1):
                replica = replica_name(name, k)
                args = ["--name", name, "--db", str(self.home / "data" / f"{replica}.db"),
                        *common, *branch_args]
                port = self._port(replica, fixed_ports)
                self.members[replica] = Member(replica, "branch.py", args, self.home, port,
                                               bool(port))
        self.replicas = replicas
        self.coordinator_args = [*common, "--log", str(self.home / "logs" / "recovery.log"),
                                 *coordinator_args]
        port = self._port(COORDINATOR, fixed_ports)
        self.members[COORDINATOR] = Member(COORDINATOR, "coordinator.py",
                                           self.coordinator_args, self.home, port, bool(port))
        for member in self.members.values():
            member.secret = self.secret   # is what answers at its URL ours? (L5)
            member.on_spawn = self._spawned
        self.recorded = False         # is HOME/data/cluster.json this cluster's record?
        self.starting = False         # our record is marked "starting" (L6)
        self._may_record = False      # no record of a live cluster is in the way (L6)
        self.run = secrets.token_hex(6)  # names this run in its record (current())

    def _port(self, name, fixed):
        """The port a member should start on, if free: in a home with replicas, its port
        in the last run (L2: a promoted replica knows its old primary by its address),
        else its default one (fixed); 0 for any free port."""
        remembered = ports_of(self.home) if self.replicas_found else {}
        fixed = fixed and os.environ.get(ANY_PORTS, "") != "any"
        for port in (remembered.get(name, 0), DEFAULT_PORTS.get(name, 0) if fixed else 0):
            if port and _port_is_free(port):
                return port
        return 0

    @property
    def recovery_log_path(self) -> pathlib.Path:
        """The coordinator's recovery log, as it is started (the last --log; relative
        to the home, its working folder)."""
        args = self.coordinator_args
        path = next((args[i + 1] for i in range(len(args) - 2, -1, -1) if args[i] == "--log"),
                    "logs/recovery.log")
        return self.home / path

    @property
    def branch_names(self) -> list:
        """The branches' primaries as started (replicas are members named NAME-replicaK)."""
        return [n for n in self.members if n != COORDINATOR and "-replica" not in n]

    def replica_names(self, branch: str) -> list:
        return [n for n in self.members if n.startswith(branch + "-replica")]

    def start(self) -> "LocalCluster":
        """Start every branch and its replicas, then the coordinator that knows them.

        If any member fails to start (or Ctrl-C arrives), the ones already started are
        stopped again: nothing is left running in the background.
        """
        replaced = (why_replaced(self.home, self.branch_names, self.recovery_log_path)
                    if self.replicas < self.replicas_found else {})     # L2
        if replaced:
            raise RuntimeError(
                f"the bank's data in {self.home / 'data'} has {self.replicas_found} "
                f"replica(s) per branch, and a replica may serve "
                f"{' and '.join(replaced)} since a failover "
                f"({'; '.join(replaced.values())}), so it must start with --replicas "
                f"{self.replicas_found} (or more); `python cluster.py reset` deletes it "
                f"for a new bank.")
        self._may_record = not answering_members(self.home)   # never over a live one (L6)
        self.starting = True
        try:
            for name in self.branch_names:
                self.members[name].start()
                for replica in self.replica_names(name):
                    self.members[replica].args += ["--replica-of", self.members[name].url]
                    self.members[replica].start()
            self.start_member(COORDINATOR)
        except BaseException:
            self.starting = False
            self.stop()
            raise
        self.starting = False
        self.save_state()              # first: another shell attaches, never starts twice
        self._wait_for_leases()
        return self

    def start_member(self, name: str, extra=()) -> str:
        member = self.member(name)
        if name == COORDINATOR:
            routes = [a for n in self.branch_names for a in (
                "--branch", n + "=" + ",".join(self.members[m].url
                                               for m in [n, *self.replica_names(n)]))]
            member.args = [*self.coordinator_args, *routes]
        return member.start(extra)

    def member(self, name: str) -> Member:
        if name not in self.members:
            raise BankError(FaultCode.BAD_INPUT, f"There is no cluster member {name!r}; members: "
                                 f"{', '.join(self.members)}.")
        return self.members[name]

    def kill(self, name: str) -> None:
        """Crash a member (no cleanup: like a power cut). BankError if it still answers
        after (Rule L5): a process no record of this cluster names, say."""
        member = self.member(name)
        member.kill(lambda: self._recorded_pid(name))
        if is_ours(member.url, self.secret):
            raise BankError(FaultCode.UNAVAILABLE, f"{name} still answers at {member.url} "
                            f"after the crash: it was started by a program this one has "
                            f"no pid from (HOME/data/cluster.json does not name it), so "
                            f"nothing was killed. Crash it from that program, or stop the "
                            f"cluster: python cluster.py stop.")

    def _recorded_pid(self, name: str):
        """The pid of the process at a member's URL now (Rule L5: another program
        attached to this cluster may have restarted it since), if HOME/data/cluster.json
        is this run's record and names the member at that URL: the pid the server wrote
        in HOME/data/NAME.pid, else the record's (pid_at, Rule L6); else None. A record
        that is gone or another run's names none of our members, even at the same URLs
        (L1)."""
        if not (self.recorded and self.current()):
            return None
        pid, url = recorded_members(self.home).get(name, (None, ""))
        if url != self.member(name).url:
            return None
        return pid_at(self.home, name, url, pid)          # its own word first

    def restart(self, name: str, extra=()) -> str:
        """Start a member again on its old port and database (kill it first if alive)."""
        self.member(name).kill(lambda: self._recorded_pid(name))
        url = self.start_member(name, extra)
        self.save_state()
        return url

    def _spawned(self, member: Member) -> None:
        """Rule L6: a process was spawned: record its pid now, before it listens (a
        start's record is marked "starting" until every member listens)."""
        if self.recorded or (self.starting and self._may_record):
            self.save_state()

    def stop(self) -> None:
        """End every member: those we started, and those another program (a shell
        attached to this cluster, say) restarted since, by the pid it recorded. A
        cluster whose start failed, or whose record is gone or another run's (it was
        stopped, and started again since), ends only its own processes and leaves the
        record alone: it may be another cluster's, still running from the same home."""
        ours = self.recorded and self.current()    # not a later run's record (L1)
        for name, member in self.members.items():
            member.kill((lambda name=name: self._recorded_pid(name)) if ours else None)
            if member.url and not answers_at(member.url):
                forget_files(self.home, name, member.url)
        if ours:
            (self.home / "data" / "cluster.json").unlink(missing_ok=True)
            kept_mark(self.home).unlink(missing_ok=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    @property
    def coordinator_url(self) -> str:
        return self.members[COORDINATOR].url

    def client(self, name: str, timeout: float = 10) -> rpc.Client:
        """An rpc.Client for a member, signing with the cluster's keys (all roles)."""
        return rpc.Client(self.member(name).url, self.secret, timeout, label=name)

    def coordinator(self, timeout: float = 30) -> rpc.Client:
        return self.client(COORDINATOR, timeout)

    def answers(self, name: str) -> bool:
        """Does the member answer now (a ping signed with the cluster's keys)?"""
        return is_ours(self.member(name).url, self.secret)

    def save_state(self) -> None:
        """Record URLs, pids and command lines, so another program can attach."""
        theirs = recorded_members(self.home) if self.recorded and self.current() else {}

        def pid_of(name, m):
            """Ours while it runs; else the record's (Rule L5: another program may
            have restarted it since), else the one we knew."""
            if m.running_ours:
                return m.proc.pid
            pid, url = theirs.get(name, (None, ""))
            return pid if pid and url == m.url else (m.proc.pid if m.proc else m.pid)

        state = {"run": self.run, "secret_file": str(self.secret_file),
                 **({"starting": True} if self.starting else {}),
                 "coordinator_args": self.coordinator_args,
                 "members": {n: {"url": m.url, "pid": pid_of(n, m),
                                 "script": m.script, "args": m.args, "port": m.port}
                             for n, m in self.members.items()}}
        if not self.recorded:                 # a new cluster: no one else attached yet
            kept_mark(self.home).unlink(missing_ok=True)     # (before the record others read)
        write_whole(self.home / "data" / "cluster.json", state)
        write_whole(ports_file(self.home), dict(ports_of(self.home), **{   # L2: a replica
            n: m.port for n, m in self.members.items()}))      # left out keeps its port
        self.recorded = True

    def keep(self) -> None:
        """Another program attached to this cluster: its starter must not stop it (L1)."""
        kept_mark(self.home).touch()

    @property
    def kept(self) -> bool:
        """Has another program attached since it started (Rule L1)?"""
        return kept_mark(self.home).exists()

    def current(self) -> bool:
        """Is HOME/data/cluster.json still this run's record? Not once it was stopped
        (`python cluster.py stop`), nor once a later start replaced it."""
        try:                                   # the run id only: no keys to load
            record = self.home / "data" / "cluster.json"
            state = json.loads(record.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return False
        return isinstance(state, dict) and state.get("run", "") == self.run

    def stopped_elsewhere(self) -> bool:
        """Was this cluster, started or attached to, stopped under the program using it
        (`python cluster.py stop`), or even started again since? Its record is then
        gone, or another run's."""
        return self.recorded and not self.current()

    def stop_unless_kept(self) -> bool:
        """Stop the cluster this program started, unless another program attached to it
        since (Rule L1). True if it was stopped."""
        if self.recorded and self.kept:
            return False
        self.stop()
        return True

    @classmethod
    def attach(cls, home=KIT):
        """The cluster started earlier from `home` (by another program), if it answers."""
        state = running_cluster(home)
        if state is None:
            return None
        cluster = cls.__new__(cls)
        cluster.home = pathlib.Path(home).resolve()
        cluster.secret_file = pathlib.Path(state["secret_file"])
        cluster.secret = rpc.load_secret(cluster.secret_file)
        cluster.coordinator_args = state["coordinator_args"]
        cluster.recorded = True
        cluster.starting = cluster._may_record = False
        cluster.run = state.get("run", "")
        cluster.members = {}
        for name, info in state["members"].items():
            member = Member(name, info["script"], info["args"], cluster.home, info["port"])
            member.url, member.pid, member.secret = info["url"], info["pid"], cluster.secret
            member.on_spawn = cluster._spawned
            cluster.members[name] = member
        return cluster


def attach_or_start(home=KIT, replicas=None):
    """(cluster, started): attach to the local cluster if one runs, else start one with
    `replicas` replicas per branch (each its own process and database; None: as many
    as its data holds, L2).

    The caller stops the cluster when it exits only if it started it, and then with
    stop_unless_kept() (Rule L1).
    """
    cluster = LocalCluster.attach(home)
    if cluster is not None:
        cluster.keep()                   # its starter leaves it running for us (L1)
        return cluster, False
    return LocalCluster(home, fixed_ports=True, replicas=replicas).start(), True


def stopped_under(program: str) -> str:
    """What a shell or window says once the local cluster it used was stopped under it
    (its record is gone or another run's: LocalCluster.current())."""
    return (f"The local cluster this {program} used was stopped (python cluster.py stop, "
            f"or the program that started it ended): "
            + ("quit, and `python shell.py`" if program == "shell" else
               "close this window, and `python gui_tk.py`")
            + " starts it again (or attaches to it, if it runs again).")


def left_running(who: str, home) -> str:
    """What a program that started the cluster says when it leaves it running (L1)."""
    where = "" if pathlib.Path(home).resolve() == KIT else f" --home {home}"
    return (f"Left the local cluster running: another program (a shell, a window or "
            f"`python cluster.py start`) attached to it after this {who} started it, and "
            f"may still use it (or may have ended: `python cluster.py status{where}`). "
            f"`python cluster.py stop{where}` stops it.")


def replicas_arg(text: str) -> int:
    """argparse type for --replicas N: a whole number from 0 to MAX_REPLICAS."""
    if not text.isdigit() or not 0 <= int(text) <= MAX_REPLICAS:
        raise argparse.ArgumentTypeError(f"--replicas takes 0 to {MAX_REPLICAS}, not {text!r}")
    return int(text)


# ---- attaching to a cluster that is already running ------------------------------------

def reset(home=KIT) -> list:
    """Delete a stopped cluster's databases, logs and keys: the next start is fresh."""
    home = pathlib.Path(home)
    if running_cluster(home) is not None:
        where = "" if home.resolve() == KIT.resolve() else f" --home {home}"
        raise SystemExit(f"A local cluster is running from here: python cluster.py stop{where} "
                         "first.")
    removed = []
    for pattern in ("data/*.db*", "data/*.url", "data/*.pid", "data/cluster.*", "logs/*.log*",
                    "logs/*.out", "logs/*.csv", "logs/.shell_history"):
        for path in home.glob(pattern):
            try:
                path.unlink()
                removed.append(str(path.relative_to(home)))
            except OSError as exc:       # e.g. still open by a process started by hand
                raise SystemExit(f"Cannot delete {path}: {exc.strerror}. Is a branch or "
                                 "coordinator started by hand still running?")
    return removed


