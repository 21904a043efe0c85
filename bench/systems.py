"""The two systems the benchmark drives: the kit, and PostgreSQL's native 2PC.

Role: start each system on loopback, give it the accounts a workload needs, move
1.00 from one account to another atomically across two databases, and read its
counters (fsyncs and messages). bench/compare.py and bench/sustained.py use these.

Rules:
  * Loopback only (127.0.0.1), ports from the OS, everything in a temporary folder,
    and every process started here is ended here, by its own handle.
  * PostgreSQL is optional: psycopg and the PostgreSQL server programs are bench
    extras (requirements-bench.txt), never needed to run or test the kit.
  * Both sides do the same work per transfer: subtract 1.00 in one database, add it
    in another, atomically, by two-phase commit (the kit through its coordinator;
    PostgreSQL with PREPARE TRANSACTION / COMMIT PREPARED driven by the client).

Glossary:
  hot pair   every client moves money between the same two accounts, back and forth
  spread     each client has its own pair of accounts (no row is shared)
  counters   cumulative totals a system reports: fsyncs, messages, transfers
"""

import os
import pathlib
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time

BRANCH_NAMES = ("Mumbai", "Delhi", "Chennai", "Kolkata", "Pune", "Jaipur", "Surat", "Kochi")
HOT_PAIR = (("Mumbai", "1001"), ("Delhi", "1002"))   # preloaded by the kit's branches
SPREAD_FIRST = 3001                                  # spread accounts: 3001, 3002, ...


def spread_pair(client: int, branches: int) -> tuple:
    """The two accounts of one client in the spread workload, on neighbouring branches."""
    number = str(SPREAD_FIRST + client)
    a, b = client % branches, (client + 1) % branches
    return (BRANCH_NAMES[a], number), (BRANCH_NAMES[b], number)


def rss_kib(pid: int) -> int:
    """A process's resident memory (Linux /proc), 0 if unknown."""
    try:
        for line in pathlib.Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def cpu_seconds(pid: int):
    """Seconds of CPU a process has used, user and system (Linux /proc), or None."""
    try:
        fields = pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, AttributeError):
        return None


def thread_switches(pid: int):
    """(voluntary, involuntary) context switches of all a process's threads so far
    (Linux /proc; threads that ended are not counted), or None. A voluntary one is a
    thread going to sleep: waiting for I/O, a lock, or Python's GIL."""
    total = [0, 0]
    try:
        for task in pathlib.Path(f"/proc/{pid}/task").iterdir():
            try:
                for line in (task / "status").read_text().splitlines():
                    if line.startswith("voluntary_ctxt_switches:"):
                        total[0] += int(line.split()[1])
                    elif line.startswith("nonvoluntary_ctxt_switches:"):
                        total[1] += int(line.split()[1])
            except OSError:
                continue                  # the thread ended meanwhile
    except OSError:
        return None
    return tuple(total)


# ---- the kit ---------------------------------------------------------------------------------

class Kit:
    """A LocalCluster of the kit (branches + coordinator) in a temporary home."""

    name = "kit"

    def __init__(self, branches: int = 2, batching: bool = True, folder: str = "",
                 label: str = "", hold_ms: float = 0):
        """folder: run the programs of another checkout of the kit (an older version,
        to measure before and after in one run); label names it in the table.
        hold_ms: the coordinator's --hold-decisions (bank/batching.py B6)."""
        from bank.local_cluster import LocalCluster
        self._home = tempfile.TemporaryDirectory(prefix="bench-kit-")
        self.branches = BRANCH_NAMES[:branches]
        args = () if batching else ("--no-batching",)
        if not batching:
            self.name = "kit, no batching"
        if hold_ms:
            self.name, args = f"kit, decisions held {hold_ms:g} ms", \
                ("--hold-decisions", f"{hold_ms:g}")
        if label:
            self.name = f"kit {label}"
        self.cluster = LocalCluster(home=self._home.name, branches=self.branches,
                                    allow_faults=False, coordinator_args=args)
        for member in self.cluster.members.values():
            if folder:
                member.script = str(pathlib.Path(folder).resolve() / member.script)
                member.quiet = "--quiet" in pathlib.Path(member.script).read_text(
                    encoding="utf-8")                 # an older kit's servers lack it

    def start(self) -> "Kit":
        self.cluster.start()
        self.coordinator = self.cluster.coordinator()
        return self

    def stop(self) -> None:
        self.cluster.stop()
        self._home.cleanup()

    def open_spread_accounts(self, clients: int) -> None:
        for k in range(clients):
            for branch, number in spread_pair(k, len(self.branches)):
                self.cluster.client(branch).call("open_account", f"Bench {k}", "1000.00",
                                                 number, f"bench-open-{branch}-{number}")

    def transfer(self, src: tuple, dst: tuple) -> bool:
        answer = self.coordinator.call("transfer", "/".join(src), "/".join(dst), "1.00")
        return answer["outcome"] == "committed"

    def counters(self) -> dict:
        """Cumulative fsyncs and messages, from every server's ping() ("counters")."""
        total = {"fsyncs": 0, "rpcs": 0, "transfers": 0}
        for name in [*self.branches, "coordinator"]:
            counts = self.cluster.client(name).call("ping").get("counters")
            if counts is None:                    # an older kit without counters
                return {}
            total["fsyncs"] += counts.get("fsyncs", 0)
            total["rpcs"] += counts.get("rpcs_sent", 0)
            total["transfers"] += counts.get("transfers", 0)
        total["rpcs"] += total["transfers"]       # each client's own call
        return total

    def pids(self) -> dict:
        return {name: m.proc.pid for name, m in self.cluster.members.items() if m.proc}


# ---- PostgreSQL's native two-phase commit ---------------------------------------------------

def postgres_missing() -> str:
    """Why PostgreSQL cannot be benchmarked here, or "" if it can."""
    try:
        import psycopg  # noqa: F401
    except ImportError:
        return "psycopg is not installed (pip install -r requirements-bench.txt)"
    if not _pg_bin("initdb"):
        return "the PostgreSQL server programs (initdb, pg_ctl) are not installed"
    return ""


def _pg_bin(program: str) -> str:
    found = shutil.which(program)
    if found:
        return found
    for folder in sorted(pathlib.Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        if (folder / program).exists():
            return str(folder / program)
    return ""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Postgres:
    """A private PostgreSQL cluster on loopback with one database per branch.

    A transfer is the textbook use of PostgreSQL's 2PC: on each database BEGIN, the
    UPDATE, PREPARE TRANSACTION; then COMMIT PREPARED on each (psycopg's tpc_* calls).
    fsync and synchronous_commit stay at their durable defaults.
    """

    name = "postgres"
    ROUND_TRIPS = 8        # per transfer: BEGIN, UPDATE, PREPARE, COMMIT PREPARED on each

    def __init__(self, branches: int = 2):
        self.branches = BRANCH_NAMES[:branches]
        self._dir = tempfile.mkdtemp(prefix="bench-pg-")
        self.data, self.port = pathlib.Path(self._dir) / "data", _free_port()
        self._as_postgres = os.geteuid() == 0        # the server refuses to run as root
        self._local = threading.local()

    def _run(self, *argv):
        if self._as_postgres:
            shutil.chown(self._dir, "postgres")
            argv = ["su", "postgres", "-s", "/bin/sh", "-c",
                    " ".join(f"'{a}'" for a in argv)]
        subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def start(self) -> "Postgres":
        import psycopg
        self._run(_pg_bin("initdb"), "-D", str(self.data), "--username=bench", "-A", "trust")
        self._run(_pg_bin("pg_ctl"), "-D", str(self.data), "-w", "-l",
                  str(pathlib.Path(self._dir) / "server.log"), "-o",
                  f"-p {self.port} -k {self._dir} -c listen_addresses=127.0.0.1 "
                  "-c max_prepared_transactions=100 -c max_connections=200", "start")
        with psycopg.connect(self._dsn("postgres"), autocommit=True) as conn:
            for branch in self.branches:
                conn.execute(f"CREATE DATABASE {branch.lower()}")
        for branch in self.branches:
            with psycopg.connect(self._dsn(branch.lower()), autocommit=True) as conn:
                conn.execute("CREATE TABLE accounts(number TEXT PRIMARY KEY, "
                             "balance BIGINT NOT NULL CHECK (balance >= 0))")
                conn.execute("INSERT INTO accounts VALUES ('1001', 1000000), "
                             "('1002', 500000)")
        return self

    def _dsn(self, db: str) -> str:
        return f"host=127.0.0.1 port={self.port} user=bench dbname={db}"

    def stop(self) -> None:
        try:
            self._run(_pg_bin("pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop")
        finally:
            shutil.rmtree(self._dir, ignore_errors=True)

    def open_spread_accounts(self, clients: int) -> None:
        import psycopg
        for k in range(clients):
            for branch, number in spread_pair(k, len(self.branches)):
                with psycopg.connect(self._dsn(branch.lower()), autocommit=True) as conn:
                    conn.execute("INSERT INTO accounts VALUES (%s, 100000) "
                                 "ON CONFLICT DO NOTHING", (number,))

    def _conn(self, branch: str):
        """This thread's connection to a branch's database (kept open, like the kit's)."""
        import psycopg
        conns = getattr(self._local, "conns", None)
        if conns is None:
            conns = self._local.conns = {}
        if branch not in conns:
            conns[branch] = psycopg.connect(self._dsn(branch.lower()),
                                            options="-c lock_timeout=10s")
        return conns[branch]

    def transfer(self, src: tuple, dst: tuple) -> bool:
        gid = f"bench-{os.getpid()}-{time.monotonic_ns()}-{id(self._local)}"
        # Always lock the databases in the same order: a prepared transaction keeps its
        # row locks, and PostgreSQL cannot see a deadlock that spans two databases.
        legs = sorted([(src[0], src[1], -100), (dst[0], dst[1], 100)])
        legs = [(self._conn(branch), number, delta) for branch, number, delta in legs]
        for i, (conn, number, delta) in enumerate(legs):            # phase 1
            conn.tpc_begin(conn.xid(0, f"{gid}-{i}", "bench"))
            cur = conn.execute("UPDATE accounts SET balance = balance + %s "
                               "WHERE number = %s", (delta, number))
            if cur.rowcount != 1:
                for c, _, _ in legs[:i + 1]:
                    c.tpc_rollback()
                return False
            conn.tpc_prepare()
        for conn, _, _ in legs:                                      # phase 2
            conn.tpc_commit()
        return True

    def counters(self) -> dict:
        import psycopg
        with psycopg.connect(self._dsn("postgres"), autocommit=True) as conn:
            syncs = conn.execute("SELECT wal_sync FROM pg_stat_wal").fetchone()[0]
        return {"fsyncs": int(syncs)}     # round trips: 4 per database (see ROUND_TRIPS)

    def pids(self) -> dict:
        pid_file = self.data / "postmaster.pid"
        return {"postmaster": int(pid_file.read_text().split()[0])} if pid_file.exists() else {}


def add_kit_to_path(kit: str) -> None:
    """Import `bank` from the kit folder given (default: this repository)."""
    sys.path.insert(0, str(pathlib.Path(kit).resolve()))
