"""Storage faults (issue 17): torn writes, damaged files, lost unsynced writes, full disks.

Rules checked (recovery_log.py Rules 6 and 7, ledger.py's storage-fault rules):
  * a torn last record (a write cut short) is cut off and recovery goes on;
  * a damaged record (written whole, wrong now) is refused with the file and line
    named, and the coordinator sends nothing to any branch;
  * with --accept-damaged-log, what the damage may hide stays in doubt, never aborted;
  * losing every write that was not fsynced loses nothing that was acknowledged;
  * a full disk refuses the operation at hand with a sentence and changes nothing;
  * a branch refuses to serve a damaged database, saying why.

Real files, real processes on 127.0.0.1, ports from the OS; waits poll with deadlines.
"""

import os
import pathlib
import socket
import sqlite3
import subprocess
import sys

import pytest

from conftest import KIT
from polling import wait_configured, wait_for

from bank import local_cluster as cluster
from bank.errors import BankError
from bank.money import format_amount, parse_amount
from bank.recovery_log import LogDamaged, RecoveryLog

INFO = {"src": "Mumbai/1001", "dst": "Delhi/1002", "amount": "7.00", "request_id": "",
        "branches": ["Delhi", "Mumbai"], "began": "2026-11-25T13:01:02.123+00:00"}
TOTAL = "30000.00"              # two preloaded branches: 10000 + 5000 each


# ---- helpers: logs made of valid lines -------------------------------------------------------

def line(kind: str, txid: str, data=None) -> bytes:
    return RecoveryLog._line(kind, txid, INFO if data is None and kind == "begin"
                             else data or {}).encode()


def finished(txid: str) -> bytes:
    return line("done", txid, dict(INFO, outcome="committed", reason="", ended="x"))


def valid_log(last_kind: str) -> list:
    """Lines of a log this program could have written, every kind present, ending with
    a record of `last_kind` (a log of only summaries for "done")."""
    dones = [finished(f"D{i}") for i in range(1, 4)]
    if last_kind == "done":
        return dones
    body = [line("begin", "A"), line("commit", "A"),
            line("end", "A", {"outcome": "committed", "reason": "", "ended": "x"}),
            line("begin", "B"), line("abort", "B"),
            line("end", "B", {"outcome": "aborted", "reason": "", "ended": "x"}),
            line("begin", "C"), line("commit", "C"),
            line("end", "C", {"outcome": "committed", "reason": "", "ended": "x"})]
    tail = {"begin": [line("begin", "Y")],
            "commit": [line("begin", "Y"), line("commit", "Y")],
            "abort": [line("begin", "Y"), line("abort", "Y")], "end": []}[last_kind]
    return dones + body + tail


def flip_a_byte(raw: bytes) -> bytes:
    """One bit changed in the middle of the line (never its end of line)."""
    i = len(raw) // 2
    return raw[:i] + bytes([raw[i] ^ 0x01]) + raw[i + 1:]


DAMAGE_CASES = [(kind, where) for kind in ("begin", "commit", "abort", "end", "done")
                for where in ("start", "middle", "end")]


def damaged_log(path: pathlib.Path, kind: str, where: str) -> int:
    """Write a valid log with one byte flipped in its first, middle or last `kind`
    record; returns that record's line number (1-based)."""
    lines = valid_log(kind)
    found = [i for i, raw in enumerate(lines) if raw.split()[1] == kind.encode()]
    i = {"start": found[0], "middle": found[len(found) // 2], "end": found[-1]}[where]
    lines[i] = flip_a_byte(lines[i])
    path.write_bytes(b"".join(lines))
    return i + 1


# ---- torn tail: cut, and recovery goes on -------------------------------------------------

def test_a_torn_last_record_is_cut_or_kept_at_every_byte_offset(tmp_path):
    """Rule 6 at every byte where a crash could cut the last record, a commit of Y (in
    flight): cut before Y's txid can be read whole, it can be no transaction's decision
    we could name: cut off and reported, every record before it recovered, later writes
    read back cleanly. Cut after, it is Y's commit, cut short: kept (a commit is written
    only after every yes vote; presuming it aborted could undo one a branch applied)."""
    log_path = tmp_path / "recovery.log"
    lines = valid_log("commit")                   # ... begin Y, commit Y (the last)
    whole = b"".join(lines[:-1])
    names_y = len(lines[-1].split(b" commit ")[0]) + len(b" commit ") + 1
    for cut in range(len(lines[-1])):             # 0 .. every byte but the end of line
        log_path.write_bytes(whole + lines[-1][:cut])
        log = RecoveryLog(log_path)
        assert log.damage == [] and log.in_doubt == set(), cut
        assert log.outcome("A") == "committed" and log.outcome("B") == "aborted"
        if cut >= names_y:                        # "... commit Y" can be read
            assert log.torn == 0 and log.outcome("Y") == "committed", cut
            log.close()
            continue
        assert log.torn == (1 if cut else 0), cut
        assert log.in_flight == {"Y": {"info": INFO, "decision": None}}, cut
        log.commit("Y")
        log.close()
        again = RecoveryLog(log_path)
        assert again.torn == 0 and again.outcome("Y") == "committed", cut
        again.close()


def test_a_tail_of_zero_bytes_is_torn_not_damage(tmp_path):
    """Zero bytes after the last record (the file grew, its data never reached the
    disk: a power cut) are a torn tail: cut, and the log opens."""
    log_path = tmp_path / "recovery.log"
    log_path.write_bytes(b"".join(valid_log("end")) + b"\0" * 300)
    log = RecoveryLog(log_path)
    assert log.torn == 1 and log.damage == []
    assert log.outcome("C") == "committed"
    log.close()
    assert b"\0" not in log_path.read_bytes()


# ---- damage: refused, line named ----------------------------------------------------------

@pytest.mark.parametrize("kind,where", DAMAGE_CASES, ids=[f"{k}-{w}" for k, w in DAMAGE_CASES])
def test_a_flipped_byte_is_damage_and_refused_with_its_line(tmp_path, kind, where):
    """One flipped byte in any kind of record, at the start, middle or end of the log,
    is damage: the log refuses to open, naming the file and the line, and the file is
    left exactly as it was (the evidence is kept)."""
    log_path = tmp_path / "recovery.log"
    line_no = damaged_log(log_path, kind, where)
    before = log_path.read_bytes()
    with pytest.raises(LogDamaged) as refused:
        RecoveryLog(log_path)
    assert f"{log_path} is damaged at line {line_no}:" in refused.value.message
    assert "--accept-damaged-log" in refused.value.message
    assert log_path.read_bytes() == before


@pytest.mark.parametrize("records,problem", [
    ([("commit", "X")], "was never begun"),
    ([("begin", "X"), ("begin", "X")], "already holds"),
    ([("begin", "X"), ("commit", "X"), ("abort", "X")], "already decided commit"),
    ([("begin", "X"), ("abort", "X"), ("end", "X", {"outcome": "committed"})], "an end saying"),
    ([("begin", "X"), ("abort", "X"), ("end", "X", {"outcome": "aborted"}), ("commit", "X")],
     "had already ended"),
])
def test_a_record_contradicting_the_ones_before_it_is_damage(tmp_path, records, problem):
    """A well-formed record that cannot follow the ones before it (a commit for a
    transaction never begun, two decisions, an end that disagrees) is damage too; with
    the damage accepted, the transaction it names is kept in doubt."""
    log_path = tmp_path / "recovery.log"
    log_path.write_bytes(b"".join(line(*r) for r in records) + line("begin", "Z"))
    with pytest.raises(LogDamaged) as refused:
        RecoveryLog(log_path)
    assert f"line {len(records)}:" in refused.value.message and problem in refused.value.message
    accepted = RecoveryLog(log_path, accept_damage=True)
    assert "X" in accepted.in_doubt and accepted.outcome("X") is None
    accepted.close()


def test_accepted_damage_keeps_in_doubt_what_it_may_hide(tmp_path):
    """With the damage accepted, every transaction the damaged line may have decided is
    in doubt: each one in flight without a decision, and any txid the log does not know
    (the damaged line may have named it). Decided ones keep their outcome; the damaged
    log is not compacted, so a second start sees the same damage."""
    log_path = tmp_path / "recovery.log"
    damaged_log(log_path, "commit", "end")         # Y's commit: Y is begun, undecided
    log = RecoveryLog(log_path, accept_damage=True)
    assert log.in_doubt == {"Y"} and log.in_doubt_about("Y")
    assert log.in_doubt_about("never-heard-of")    # no presumed abort while damaged
    assert not log.in_doubt_about("A") and log.outcome("A") == "committed"
    assert log.describe()["damaged"][0].startswith("line ")
    log.close()
    with pytest.raises(LogDamaged):
        RecoveryLog(log_path)                       # the evidence is still there


def run_coordinator(home: pathlib.Path, log_path, branch_url: str, *extra) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(KIT / "coordinator.py"), "--port", "0", "--log", str(log_path),
         "--log-dir", str(home / "logs"), "--branch", f"Mumbai={branch_url}", *extra],
        capture_output=True, text=True, timeout=60, cwd=home)


@pytest.fixture
def listener():
    """A loopback socket that records whether anyone connected: a branch that must
    never be called."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        sock.setblocking(False)
        yield sock


def nobody_called(sock) -> bool:
    try:
        conn, _ = sock.accept()
    except BlockingIOError:
        return True
    conn.close()
    return False


@pytest.mark.parametrize("kind,where", DAMAGE_CASES, ids=[f"{k}-{w}" for k, w in DAMAGE_CASES])
def test_a_coordinator_on_a_damaged_log_stops_before_calling_any_branch(
        tmp_home, listener, kind, where):
    """coordinator.py on a damaged log exits non-zero with one sentence naming the file
    and the line, before it serves or sends anything to any branch."""
    log_path = tmp_home / "logs" / "recovery.log"
    line_no = damaged_log(log_path, kind, where)
    url = "http://127.0.0.1:%d" % listener.getsockname()[1]
    done = run_coordinator(tmp_home, log_path, url)
    assert done.returncode != 0
    assert f"is damaged at line {line_no}:" in done.stderr
    assert "Traceback" not in done.stderr
    assert nobody_called(listener)


# ---- the case from the issue, end to end --------------------------------------------------

def balances(bank) -> dict:
    """Every balance, asked of the branches themselves (the coordinator may be down)."""
    return {f"{a['branch']}/{a['number']}": parse_amount(a["balance"], allow_zero=True)
            for name in bank.branch_names for a in bank.client(name).call("accounts")}


def total_once_settled(bank) -> str:
    """The bank's total with every prepared (in-doubt) transfer counted as it was decided
    on the branch that already applied it: balances plus the deltas still pending."""
    total = sum(balances(bank).values())
    for name in bank.branch_names:
        for txn in bank.client(name).call("in_doubt"):
            total += sum(parse_amount(op["delta"].lstrip("-"), allow_zero=True) *
                         (-1 if op["delta"].startswith("-") else 1) for op in txn["ops"])
    return format_amount(total)


@pytest.fixture
def half_committed(tmp_path):
    """The issue's scene: Delhi committed a 7.00 credit, Mumbai holds the debit
    prepared, the coordinator crashed; then one character of the commit record in
    logs/recovery.log was changed. Yields (bank, txid, original log bytes)."""
    with cluster.LocalCluster(home=tmp_path, branch_args=("--ask-every", "0.3")) as bank:
        coord = bank.coordinator()
        coord.call("fault", "crash-mid-commit")
        with pytest.raises(BankError):
            coord.call("transfer", "Mumbai/1001", "Delhi/1002", "7.00")
        assert bank.members["coordinator"].wait_exit(10) == 86
        assert bank.client("Delhi").call("account", "1002")["balance"] == "5007.00"
        [txn] = bank.client("Mumbai").call("in_doubt")
        log_path = tmp_path / "logs" / "recovery.log"
        original = log_path.read_bytes()
        lines = original.splitlines(keepends=True)
        i = next(k for k, raw in enumerate(lines) if raw.split()[1] == b"commit")
        lines[i] = lines[i].replace(txn["txid"].encode(),
                                    txn["txid"][:-1].encode() + b"#", 1)  # one character
        log_path.write_bytes(b"".join(lines))
        yield bank, txn["txid"], original


def test_the_issue_case_refused_then_restored_keeps_the_total(half_committed):
    """The coordinator refuses the damaged log (no presumed abort of Mumbai, so no 7.00
    out of nowhere), and says to restore the file as it was when the coordinator
    stopped, never an older backup (one taken before the commit record would presume
    it aborted: the same 7.00); once the file is restored, recovery commits Mumbai and
    the bank's total is what it was."""
    bank, txid, original = half_committed
    with pytest.raises(RuntimeError) as refused:
        bank.start_member("coordinator")
    assert "recovery.log is damaged at line" in str(refused.value)
    assert "never an older backup: a commit written since would be presumed aborted" in \
        " ".join(str(refused.value).split())
    assert bank.client("Mumbai").call("status", txid)["state"] == "prepared"
    assert total_once_settled(bank) == TOTAL

    (bank.home / "logs" / "recovery.log").write_bytes(original)     # the operator restores
    bank.start_member("coordinator")
    wait_for(lambda: bank.client("Mumbai").call("status", txid)["state"] == "committed",
             20, "Mumbai to commit once the log is restored")
    assert format_amount(sum(balances(bank).values())) == TOTAL


def test_the_issue_case_accepted_keeps_the_txn_in_doubt(half_committed):
    """With --accept-damaged-log the damaged transaction is shown in doubt (ping, the
    transaction list); Mumbai asks for the decision, hears "in-doubt", keeps waiting
    prepared, and the bank's total stays unchanged."""
    bank, txid, _ = half_committed
    bank.start_member("coordinator", extra=("--accept-damaged-log",))
    coord = bank.coordinator()
    found = coord.call("ping")["log"]
    assert txid in found["in_doubt"] and found["damaged"][0].startswith("line ")
    assert txid in [t["txid"] for t in coord.call("transactions", 50, "in-doubt")]
    assert coord.call("decision", txid)["decision"] == "in-doubt"
    wait_for(lambda: any(m["msg"] == "query" and m["from"] == "Mumbai"
                         for m in coord.call("transaction", txid)["trace"]),
             20, "Mumbai to ask the coordinator for the decision")
    assert bank.client("Mumbai").call("status", txid)["state"] == "prepared"
    assert total_once_settled(bank) == TOTAL


def test_a_request_id_a_damaged_line_may_hold_is_never_run_again(tmp_path):
    """Rule 6: on a damaged log accepted with --accept-damaged-log, a request id the
    coordinator does not know may be in the damaged line (here: the compacted `done`
    summary of the transfer that used it). Retrying it is refused in one sentence and
    moves nothing (it ran again: the money moved twice)."""
    with cluster.LocalCluster(home=tmp_path) as bank:
        coord = bank.coordinator()
        assert coord.call("transfer", "Mumbai/1001", "Delhi/1002", "100",
                          "pay-rent")["outcome"] == "committed"
        bank.restart("coordinator")             # compaction: the transfer is a `done` line
        log_path = tmp_path / "logs" / "recovery.log"
        data = log_path.read_bytes()
        assert data.count(b"pay-rent") == 1 and b" done " in data
        log_path.write_bytes(data.replace(b"pay-rent", b"qay-rent"))
        bank.restart("coordinator", ["--accept-damaged-log"])
        with pytest.raises(BankError) as refused:
            bank.coordinator().call("transfer", "Mumbai/1001", "Delhi/1002", "100",
                                    "pay-rent")
        assert "a damaged line may hold it" in refused.value.message
        assert refused.value.message.endswith("Nothing was done.")
        assert bank.client("Mumbai").call("account", "1001")["balance"] == "9900.00"


# ---- a full or failing disk: refuse, change nothing, resume ---------------------------------

resource = pytest.importorskip("resource") if os.name != "nt" else None
needs_prlimit = pytest.mark.skipif(
    resource is None or not hasattr(resource, "prlimit"),
    reason="a file-size limit on a running process (prlimit) exists on Linux only")


def limit_file_size(member, size) -> None:
    """Let the process write no file past `size` bytes (None: no limit again). Python
    ignores SIGXFSZ, so a write past the limit fails with EFBIG, like a full disk."""
    _, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.prlimit(member.proc.pid, resource.RLIMIT_FSIZE,
                     (resource.RLIM_INFINITY if size is None else size, hard))


@needs_prlimit
def test_a_branch_that_cannot_write_votes_no_and_keeps_serving_reads(tmp_path):
    """A branch whose disk refuses every write refuses the prepare with a sentence (so
    the transfer aborts: no yes without a durable prepare), changes nothing, still
    answers reads, and writes again once the disk has room."""
    with cluster.LocalCluster(home=tmp_path) as bank:
        coord = bank.coordinator()
        limit_file_size(bank.members["Mumbai"], 1)
        outcome = coord.call("transfer", "Mumbai/1001", "Delhi/1002", "25.00")
        assert outcome["outcome"] == "aborted"
        assert "could not write to its database" in outcome["reason"]
        with pytest.raises(BankError) as refused:
            bank.client("Mumbai").call("deposit", "1001", "5")
        assert "nothing was changed" in refused.value.message
        assert bank.client("Mumbai").call("account", "1001")["balance"] == "10000.00"
        assert format_amount(sum(balances(bank).values())) == TOTAL

        limit_file_size(bank.members["Mumbai"], None)              # space returns
        assert coord.call("transfer", "Mumbai/1001", "Delhi/1002", "25.00")["outcome"] \
            == "committed"
        assert bank.client("Mumbai").call("account", "1001")["balance"] == "9975.00"
        assert format_amount(sum(balances(bank).values())) == TOTAL


def begin_line_length(coordinator_name="C1") -> int:
    """How long the begin record of a Mumbai/1001 -> Delhi/1002 25.00 transfer is."""
    info = {"src": "Mumbai/1001", "dst": "Delhi/1002", "amount": "25.00", "request_id": "",
            "branches": ["Delhi", "Mumbai"], "began": "2026-11-25T13:01:02.123+00:00"}
    return len(RecoveryLog._line("begin", f"{coordinator_name}-20261125T130102-9f3a2c", info))


@needs_prlimit
def test_a_full_disk_under_the_recovery_log_refuses_transfers_and_changes_nothing(tmp_path):
    """A recovery log that cannot grow: a transfer is refused with a sentence before any
    branch hears of it (no begin), or aborted if only its commit record does not fit
    (never a commit without the forced record); the log keeps no half line, reads still
    work, and transfers commit again once the disk has room."""
    with cluster.LocalCluster(home=tmp_path) as bank:
        coord, member = bank.coordinator(), bank.members["coordinator"]
        wait_configured(bank)     # its config lines, else one may take a begin's room
        log_path = tmp_path / "logs" / "recovery.log"
        size = log_path.stat().st_size

        limit_file_size(member, size + 1)                  # not even a begin fits
        with pytest.raises(BankError) as refused:
            coord.call("transfer", "Mumbai/1001", "Delhi/1002", "25.00")
        assert "could not be written" in refused.value.message
        assert "nothing was done" in refused.value.message
        assert log_path.stat().st_size == size             # the byte that fitted was cut
        assert bank.client("Mumbai").call("in_doubt") == []
        assert len(coord.call("accounts", "")) == 4        # reads still work

        limit_file_size(member, size + begin_line_length() + 5)   # begin fits, commit not
        outcome = coord.call("transfer", "Mumbai/1001", "Delhi/1002", "25.00")
        assert outcome["outcome"] == "aborted"
        assert "could not be written" in outcome["reason"]
        assert format_amount(sum(balances(bank).values())) == TOTAL
        wait_for(lambda: not bank.client("Mumbai").call("in_doubt"), 10, "holds released")

        limit_file_size(member, None)                       # space returns
        assert coord.call("transfer", "Mumbai/1001", "Delhi/1002", "25.00")["outcome"] \
            == "committed"
        assert format_amount(sum(balances(bank).values())) == TOTAL


# ---- a damaged branch database is never served ----------------------------------------------

@pytest.fixture(scope="module")
def healthy_db(tmp_path_factory) -> pathlib.Path:
    """A preloaded Mumbai database with one prepared debit of 7.00 on 1001, checkpointed
    into one file."""
    home = tmp_path_factory.mktemp("healthy")
    (home / "data").mkdir()
    (home / "logs").mkdir()
    member = cluster.Member("Mumbai", "branch.py", ["--name", "Mumbai", "--preload",
                                                    "--db", str(home / "data" / "Mumbai.db")],
                            home)
    try:
        member.start()
        client = cluster.rpc.Client(member.url, timeout=10)
        client.call("prepare", "T-held", "http://127.0.0.1:1",
                    [{"account": "1001", "delta": "-7.00"}])
    finally:
        member.kill()
    db = home / "data" / "Mumbai.db"
    with sqlite3.connect(db) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return db


def corrupt_bytes(db: pathlib.Path) -> None:
    data = bytearray(db.read_bytes())
    page = 4096 if len(data) > 8192 else 1024
    data[page:page + 200] = b"\xa5" * 200                # garbage over the second page
    db.write_bytes(bytes(data))


DAMAGED_DATABASES = [
    ("balance changed without a journal row",
     "UPDATE accounts SET balance = balance + 100 WHERE number='1001'", "does not reconcile"),
    ("held changed without a prepared transaction",
     "UPDATE accounts SET held = 0 WHERE number='1001'", "prepared transactions debit"),
    ("a CHECK rule broken", "UPDATE accounts SET held = balance + 1 WHERE number='1002'",
     "breaks its own rules|CHECK constraint failed"),
    ("a txn state the schema forbids", "UPDATE txns SET state='maybe'",
     "breaks its own rules|CHECK constraint failed"),
    ("bytes overwritten", corrupt_bytes, "Mumbai.db"),
]


@pytest.mark.parametrize("what,damage,phrase", DAMAGED_DATABASES,
                         ids=[d[0] for d in DAMAGED_DATABASES])
def test_a_branch_refuses_to_serve_a_damaged_database(tmp_path, healthy_db, what, damage, phrase):
    """A branch checks its database before it serves (quick_check, CHECK rules, journal
    and holds reconcile): a damaged one makes it exit non-zero with one sentence naming
    the file and the problem, instead of voting on it."""
    db = tmp_path / "Mumbai.db"
    db.write_bytes(healthy_db.read_bytes())
    if callable(damage):
        damage(db)
    else:
        with sqlite3.connect(db) as conn:
            conn.execute("PRAGMA ignore_check_constraints=ON")
            conn.execute(damage)
        with sqlite3.connect(db) as conn:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    done = subprocess.run([sys.executable, str(KIT / "branch.py"), "--name", "Mumbai",
                           "--port", "0", "--db", str(db), "--log-dir", str(tmp_path)],
                          capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert done.returncode != 0, done.stdout
    assert "Branch Mumbai will not serve:" in done.stderr and str(db) in done.stderr
    assert any(p in done.stderr for p in phrase.split("|")), done.stderr
    assert "Traceback" not in done.stderr


# ---- a power cut: every write that was not fsynced is lost ----------------------------------

RECORDING_WRAPPER = '''
import os, runpy, sys
record, script = sys.argv[1], sys.argv[2]
sys.argv = [script] + sys.argv[3:]
sys.path.insert(0, os.path.dirname(script))
from bank import storage        # every forced write goes through storage.fsync (on macOS
real_fsync = storage.fsync      # it is fcntl F_FULLFSYNC, never os.fsync)
def recording_fsync(fd):
    real_fsync(fd)
    st = os.fstat(fd)
    with open(record, "a") as f:
        f.write(f"{st.st_ino} {st.st_size}\\n")
storage.fsync = recording_fsync
runpy.run_path(script, run_name="__main__")
'''


def cut_to_last_fsync(path: pathlib.Path, record: pathlib.Path) -> int:
    """What a power cut leaves of a file: its size at its last fsync (0 if never).
    Returns how many bytes were lost."""
    if not path.exists():
        return 0
    before = path.stat().st_size
    inode = path.stat().st_ino
    synced = [int(size) for ino, size in (row.split() for row in record.read_text().split("\n")
                                          if row) if int(ino) == inode]
    with open(path, "r+b") as f:
        f.truncate(synced[-1] if synced else 0)
    return before - path.stat().st_size


def test_losing_every_unsynced_write_loses_nothing_acknowledged(tmp_path):
    """Cut the recovery log and its history back to their last fsynced sizes (what a power
    cut may leave) after a kill -9: every transfer a client was told "committed" is
    still committed on every branch after the restart, and the total is unchanged."""
    wrapper, record = tmp_path / "record_fsyncs.py", tmp_path / "fsyncs.txt"
    wrapper.write_text(RECORDING_WRAPPER)
    record.touch()
    bank = cluster.LocalCluster(home=tmp_path)
    bank.members["coordinator"].script = str(wrapper)
    bank.coordinator_args = [str(record), str(KIT / "coordinator.py"), *bank.coordinator_args]
    with bank:
        wait_configured(bank)      # its forced config lines would sync the ends cut below
        told = []
        for round_ in range(2):                     # a restart between: compaction renames
            for i in range(3):
                outcome = bank.coordinator().call("transfer", "Mumbai/1001", "Delhi/1002",
                                                  f"{i + 1}.00")
                assert outcome["outcome"] == "committed"
                told.append(outcome["txid"])
            bank.kill("coordinator")
            lost = sum(cut_to_last_fsync(tmp_path / "logs" / name, record)
                       for name in ("recovery.log", "recovery.history.log"))
            assert lost > 0                         # the unforced end records, at least
            bank.start_member("coordinator")
        coord = bank.coordinator()
        for txid in told:
            assert coord.call("decision", txid)["decision"] == "committed", txid
            for name in ("Mumbai", "Delhi"):
                wait_for(lambda n=name, t=txid: bank.client(n).call("status", t)["state"]
                         == "committed", 10, f"{txid} committed at {name}")
        assert format_amount(sum(balances(bank).values())) == TOTAL
        assert bank.client("Mumbai").call("account", "1001")["balance"] == "9988.00"


def test_the_shell_restarts_a_coordinator_on_a_damaged_log_when_told_to(tmp_path):
    """The damaged-log refusal says to start with --accept-damaged-log; from the shell
    that is `restart coordinator --accept-damaged-log` (it could not be done there: the
    option was refused as a usage error). A plain restart says so; the option is for
    the coordinator only."""
    from shelltest import run, shell_on
    with cluster.LocalCluster(home=tmp_path) as bank:
        assert bank.coordinator().call("transfer", "Mumbai/1001", "Delhi/1002",
                                       "5")["outcome"] == "committed"
        sh = shell_on(bank)
        run(sh, "crash coordinator")
        log_path = tmp_path / "logs" / "recovery.log"
        lines = log_path.read_bytes().splitlines(keepends=True)
        assert b" created " in lines[0]                # line 1 (Rule 9)
        # then the begin, or first the manager's config lines (written a moment after
        # the start returned: before the transfer, on a slow machine)
        i = next(k for k, raw in enumerate(lines) if raw.split()[1] == b"begin")
        lines[i] = lines[i].replace(b"Mumbai/1001", b"Mumbai/1007")   # damage, crc kept
        log_path.write_bytes(b"".join(lines))
        out = run(sh, "restart coordinator")
        assert f"is damaged at line {i + 1}" in out and \
            "(here: restart coordinator --accept-damaged-log)" in out, out
        assert run(sh, "restart Delhi --accept-damaged-log").startswith(
            "--accept-damaged-log is for the coordinator only"), out
        out = run(sh, "restart coordinator --accept-damaged-log")
        assert out.startswith("Restarted coordinator"), out
        assert bank.coordinator().call("ping")["log"]["damaged"][0].startswith(
            f"line {i + 1}:")


# ---- Windows: a file another program holds open cannot be replaced for a moment ----------

def test_replace_tries_again_while_another_program_holds_the_file(tmp_path, monkeypatch):
    """On Windows os.replace raises PermissionError while a reader (a shell reading
    cluster.json, a virus scanner) has the target open; storage.replace waits it out."""
    from bank import storage
    src, dst = tmp_path / "new", tmp_path / "old"
    src.write_text("new", encoding="utf-8")
    dst.write_text("old", encoding="utf-8")
    real_replace, refusals = os.replace, [PermissionError(13, "Access is denied")] * 2

    def replace_held_open(a, b):
        if refusals:
            raise refusals.pop()
        real_replace(a, b)
    monkeypatch.setattr(storage.os, "replace", replace_held_open)
    monkeypatch.setattr(storage.os, "name", "nt")
    storage.replace(src, dst)
    assert dst.read_text(encoding="utf-8") == "new" and not refusals
    refusals[:] = [PermissionError(13, "Access is denied")] * 10     # held for good
    src.write_text("newer", encoding="utf-8")
    with pytest.raises(PermissionError):
        storage.replace(src, dst)
