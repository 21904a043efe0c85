"""Regression tests for faults found in review: each states the rule that was broken."""

import http.server
import subprocess
import sys
import threading

import pytest

from bank import local_cluster as cluster
from bank import rpc
from bank.errors import BankError, FaultCode, surely_not_done
from polling import wait_for

KIT = cluster.KIT


def test_a_replaced_primary_never_acknowledges_a_write(start_branch, tmp_home):
    """A primary that learns, while writing, that a replica was promoted over it (the
    replica refuses its push: old epoch) refuses the write instead of acknowledging a
    change no one else will ever have; from then on it is fenced. The refusal says the
    outcome is unknown (UNAVAILABLE), not NOT_PRIMARY: the change is applied there, so
    whoever sends it to the new primary again could apply it twice."""
    primary = start_branch("Mumbai")
    replica = cluster.Member("Mumbai-r", "branch.py", [
        "--name", "Mumbai", "--db", str(tmp_home / "data" / "Mumbai-r.db"),
        "--replica-of", primary.url], tmp_home)
    try:
        replica.start()
        p, r = rpc.Client(primary.url), rpc.Client(replica.url)
        wait_for(lambda: r.call("ping")["in_sync"], 15, "the replica in sync")
        r.call("promote", "Mumbai", 2)             # as the manager would, while the primary runs
        with pytest.raises(BankError) as refused:
            p.call("deposit", "1001", "5.00")
        assert refused.value.code == FaultCode.UNAVAILABLE
        assert not surely_not_done(refused.value)
        assert p.call("ping")["role"] == "fenced"
        assert r.call("account", "1001")["balance"] == "10000.00"   # nothing acknowledged
    finally:
        replica.kill()


def test_a_second_server_on_the_same_database_refuses_to_start(start_branch, tmp_home):
    """One database, one server: a second branch process on the same SQLite file exits
    with a sentence instead of serving it alongside the first."""
    first = start_branch("Mumbai")
    second = subprocess.run(
        [sys.executable, str(KIT / "branch.py"), "--name", "Mumbai", "--port", "0",
         "--db", str(tmp_home / "data" / "Mumbai.db"), "--log-dir", str(tmp_home / "logs")],
        capture_output=True, text=True, timeout=30)
    assert second.returncode != 0
    assert "already using" in second.stderr and "Traceback" not in second.stderr
    assert rpc.Client(first.url).call("ping")["name"] == "Mumbai"


@pytest.mark.parametrize("program", ["branch.py", "coordinator.py"])
def test_a_database_or_log_in_a_folder_that_cannot_be_made_is_a_sentence(tmp_home, program):
    """Never a traceback: a --db or --log whose folder cannot be made (a plain file is in
    the way) ends the program with one sentence naming the file, not a FileExistsError."""
    (tmp_home / "afile").write_text("not a folder\n")
    where = str(tmp_home / "afile" / "x.db")
    args = (["--name", "Mumbai", "--db", where, "--log-dir", str(tmp_home / "logs")]
            if program == "branch.py" else
            ["--log", where, "--branch", "Mumbai=http://127.0.0.1:9"])
    done = subprocess.run([sys.executable, str(KIT / program), "--port", "0", *args],
                          capture_output=True, text=True, timeout=30, cwd=tmp_home)
    assert done.returncode != 0 and "Traceback" not in done.stderr, done.stderr
    assert done.stderr.strip().splitlines()[-1].startswith(f"Cannot use {where}")


def test_a_second_coordinator_on_the_same_log_refuses_to_start(tmp_home):
    """One recovery log, one coordinator: a second one would compact the first one's
    log away (losing commit records), so it refuses to start."""
    log_path = tmp_home / "logs" / "recovery.log"
    rpc.hold_exclusive(log_path, "recovery log")   # this test process plays the first one
    second = subprocess.run(
        [sys.executable, str(KIT / "coordinator.py"), "--port", "0", "--log", str(log_path),
         "--log-dir", str(tmp_home / "logs"), "--branch", "A=http://127.0.0.1:1"],
        capture_output=True, text=True, timeout=30)
    assert second.returncode != 0 and "already using" in second.stderr


class _NotXmlRpc(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        body = b"<html><body>Welcome to some other server</body></html>"
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def test_a_wrong_address_is_a_sentence_not_a_traceback():
    """A client pointed at an HTTP server that does not speak XML-RPC (a wrong port)
    gets BankError UNAVAILABLE with a sentence, not a Python exception."""
    server = http.server.HTTPServer(("127.0.0.1", 0), _NotXmlRpc)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with pytest.raises(BankError) as err:
            rpc.Client(f"http://127.0.0.1:{server.server_address[1]}").call("ping")
        assert err.value.code == FaultCode.UNAVAILABLE
        assert "not XML-RPC" in err.value.message
    finally:
        server.shutdown()
        server.server_close()


def test_reset_refuses_while_running_and_empties_a_stopped_cluster(tmp_path):
    """`cluster.py reset` never deletes the files of a running cluster; once it is
    stopped, the next start begins with fresh accounts."""
    bank = cluster.LocalCluster(home=tmp_path, branches=("Mumbai",)).start()
    try:
        bank.coordinator().call("deposit", "Mumbai/1001", "1.00")
        with pytest.raises(SystemExit):
            cluster.reset(tmp_path)
    finally:
        bank.stop()
    assert any(p.endswith(".db") for p in cluster.reset(tmp_path))
    with cluster.LocalCluster(home=tmp_path, branches=("Mumbai",)) as again:
        assert again.coordinator().call("account", "Mumbai/1001")["balance"] == "10000.00"


def test_a_cluster_whose_coordinator_is_down_is_still_found_and_never_orphaned(tmp_path):
    """A cluster whose coordinator crashed is still running: its branches hold their
    databases, and maybe money in doubt. A new shell attaches to it and can restart the
    coordinator (it used to start a second cluster, which failed on the databases and
    deleted cluster.json, leaving the branches running with nothing that could stop
    them); a start that fails all the same leaves the record alone, and `cluster.py
    stop` ends the branches by it."""
    bank = cluster.LocalCluster(home=tmp_path, branches=("Mumbai", "Delhi")).start()
    try:
        bank.kill("coordinator")
        attached, started = cluster.attach_or_start(tmp_path)
        assert not started
        assert attached.answers("Mumbai") and not attached.answers("coordinator")
        with pytest.raises(RuntimeError, match="Mumbai exited"):
            cluster.LocalCluster(home=tmp_path, branches=("Mumbai", "Delhi")).start()
        assert cluster.running_cluster(tmp_path) is not None
        assert sorted(cluster.stop_running(tmp_path)) == ["Delhi", "Mumbai"]
        assert not bank.answers("Mumbai") and not bank.answers("Delhi")
    finally:
        bank.stop()


def test_a_window_and_a_shell_crash_what_the_other_restarted(tmp_path):
    """Rule L5 (bank/local_cluster.py): a window and a shell attached to one cluster
    each crash and restart its members. A crash ends the member that answers now, even
    when the other program restarted it since; the record is never rewritten with a
    pid that has ended in place of the live one the other wrote; so `cluster.py stop`
    ends everything. It used to kill only its own, long dead, process and say "Mumbai
    crashed" while Mumbai still ran (a failover then fenced a live primary, a Rejoin
    failed on the database, and the stop left Mumbai running with no pid recorded)."""
    window = cluster.LocalCluster(home=tmp_path, branches=("Mumbai", "Delhi")).start()
    shell = cluster.LocalCluster.attach(tmp_path)
    try:
        window.kill("Mumbai")                    # the window crashes Mumbai...
        shell.restart("Mumbai")                  # ...the shell starts it again
        assert window.members["Mumbai"].alive    # the window sees it running
        window.restart("Delhi")                  # the window writes the record again
        window.kill("Mumbai")                    # and crashes the shell's Mumbai
        assert not window.answers("Mumbai")
        wait_for(lambda: not shell.members["Mumbai"].alive, 10,   # reaped a moment after
                 "the shell to see its Mumbai ended")             # it stops answering
        window.restart("Mumbai")                 # the window's again: the shell crashes it
        shell.kill("Mumbai")
        assert not shell.answers("Mumbai")
        shell.restart("Mumbai")
        window.restart("Delhi")                  # the record keeps the shell's Mumbai
        assert sorted(cluster.stop_running(tmp_path)) == ["Delhi", "Mumbai", "coordinator"]
        assert not window.answers("Mumbai") and not window.answers("Delhi")
    finally:
        shell.stop()
        window.stop()


def _stray(bank, name: str, files):
    """A server for `name` on its port and database, started by no launcher that
    records it, writing its URL and pid (NAME.url, NAME.pid) under `files`/data."""
    member = bank.members[name]
    (files / "data").mkdir(parents=True, exist_ok=True)
    (files / "logs").mkdir(exist_ok=True)
    stray = cluster.Member(name, member.script, member.args, files, member.port)
    stray.start()
    return stray


def test_a_crash_ends_the_server_that_wrote_its_pid_in_the_home(tmp_path):
    """Rule L5: a crash ends the process that answers at a member's URL now, by the pid
    it wrote itself beside its URL in the home's data (rpc.serve), even when no record
    names it (a program restarted it and died before saving its record)."""
    bank = cluster.LocalCluster(home=tmp_path, branches=("Mumbai",)).start()
    stray = None
    try:
        bank.kill("Mumbai")
        stray = _stray(bank, "Mumbai", tmp_path)
        bank.kill("Mumbai")
        assert not bank.answers("Mumbai")
        stray.proc.wait(timeout=10)
    finally:
        if stray is not None:
            stray.kill()
        bank.stop()


def test_a_crash_that_leaves_the_member_running_is_an_error(tmp_path):
    """Rule L5: a member that still answers after a crash (its process is one neither
    a record of this cluster nor its own files in the home name) is an error that says
    so, never a crash reported done."""
    bank = cluster.LocalCluster(home=tmp_path, branches=("Mumbai",)).start()
    stray = None
    try:
        bank.kill("Mumbai")
        stray = _stray(bank, "Mumbai", tmp_path / "elsewhere")
        with pytest.raises(BankError, match="still answers at .* nothing was killed"):
            bank.kill("Mumbai")
        assert bank.answers("Mumbai")
    finally:
        if stray is not None:
            stray.kill()
        bank.stop()


def test_a_program_whose_cluster_was_stopped_ends_nothing_of_a_later_one(tmp_path):
    """Rules L1, L5: a program whose cluster was stopped under it (`cluster.py stop`)
    and then started again from the same home, on the same ports, ends only its own
    processes when it quits: never the later run's, which the record now names at the
    same URLs. (A shell quitting says "nothing of it is left running" and called
    stop(); each member's crash read the later run's record and killed its members.)"""
    first = cluster.LocalCluster(home=tmp_path, branches=("Mumbai",)).start()
    later = None
    try:
        ports = {name: m.port for name, m in first.members.items()}
        assert sorted(cluster.stop_running(tmp_path)) == ["Mumbai", "coordinator"]
        later = cluster.LocalCluster(home=tmp_path, branches=("Mumbai",))
        for name, member in later.members.items():
            member.port = ports[name]            # cluster.py start: the default ports
        later.start()
        assert first.stopped_elsewhere()
        first.stop()                             # what shell.py does when it quits
        assert later.answers("Mumbai") and later.answers("coordinator")
    finally:
        first.stop()
        if later is not None:
            later.stop()


def test_a_program_attached_sees_and_crashes_a_member_restarted_after_its_crash(tmp_path):
    """Rule L5: a member is the process that answers at its URL now. A program attached
    to the cluster (a shell beside the window) that crashed a member sees it running
    again once the other program restarted it, and can crash it again. (Its `alive`
    answered "down" without asking once it had crashed the member itself, so the
    shell's `crash Mumbai` said "Mumbai is already down" while Mumbai ran.)"""
    window = cluster.LocalCluster(home=tmp_path, branches=("Mumbai",)).start()
    shell = cluster.LocalCluster.attach(tmp_path)
    try:
        shell.kill("Mumbai")
        assert not shell.members["Mumbai"].alive
        window.restart("Mumbai")
        assert shell.members["Mumbai"].alive
        shell.kill("Mumbai")
        assert not window.answers("Mumbai")
    finally:
        shell.stop()
        window.stop()


@pytest.fixture
def innocent():
    """A process of no cluster, standing in for one the system gave a reused pid: the
    test checks it is never signalled."""
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    yield process
    process.kill()
    process.wait()


@pytest.fixture
def mumbai_alone(tmp_path):
    """A cluster of Mumbai and a coordinator, and whatever stray servers the test adds
    to `strays` (see _stray), all ended at the end."""
    bank = cluster.LocalCluster(home=tmp_path, branches=("Mumbai",)).start()
    bank.strays = []
    yield bank
    for stray in bank.strays:
        stray.kill()
    bank.stop()


def test_a_crash_never_signals_a_pid_this_program_saw_end(tmp_path, innocent,
                                                           mumbai_alone):
    """Rule L5: a crash ends the process the record names, but never by the pid of a
    process this program started and saw end: the system may have given that number
    to another program since. Here the record still names our crashed Mumbai (the
    member that answers now was started by a program that recorded no pid), and that
    pid is, as if reused, an innocent process's: it is not signalled."""
    import json
    bank = mumbai_alone
    bank.kill("Mumbai")
    bank.members["Mumbai"].proc.pid = innocent.pid     # the system reused our ended pid
    record_file = tmp_path / "data" / "cluster.json"
    record = json.loads(record_file.read_text())
    record["members"]["Mumbai"]["pid"] = innocent.pid   # the record names it still
    record_file.write_text(json.dumps(record))
    bank.strays.append(_stray(bank, "Mumbai", tmp_path / "elsewhere"))  # no record, no pid
    with pytest.raises(BankError, match="still answers at"):
        bank.kill("Mumbai")
    assert innocent.poll() is None, "an innocent process was killed"


def test_a_replica_copies_nothing_from_a_primary_of_an_older_epoch(start_branch, tmp_path):
    """Rule 2 of bank/replication.py (R3): a replica at epoch 2 whose --replica-of names a
    primary still at epoch 1 (replaced since; a stale launcher argument) copies nothing
    from it, even though its history differs: it used to throw its own copy away and
    copy the old primary's, and could then be promoted without the writes the current
    primary acknowledged. It stays out of sync until the manager names the primary."""
    import types
    from bank.core.replica import BranchRole
    from bank.ledger import Ledger
    from bank.replication import Follower
    old_primary = start_branch("Mumbai")                 # epoch 1, its own history
    ledger = Ledger(tmp_path / "replica.db", "Mumbai")
    ledger.open_account("Asha Rao", 10_000_00, "1001")
    ledger.deposit("1001", 7_00, "acked-at-epoch-2")     # a write of the current primary
    branch = types.SimpleNamespace(name="Mumbai", url="http://127.0.0.1:3", secret=None,
                                   epoch=2, ledger=ledger, roles=BranchRole("replica", 2),
                                   check_replication_link=lambda: None)
    assert not Follower(branch, old_primary.url).catch_up()
    assert ledger.applied_seq() == 2 and ledger.account("1001")["balance"] == "10007.00"


def test_a_shell_that_started_the_cluster_stops_it_when_no_one_else_attached(tmp_path):
    """Rule L1 (bank/local_cluster.py): a shell that started the local cluster and that
    no other program attached to stops it when it ends, and says so."""
    done = subprocess.run([sys.executable, str(KIT / "shell.py"), "--home", str(tmp_path),
                           "-c", "balance Mumbai/1001"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert "Stopped the local cluster this shell started." in done.stderr, done.stderr
    assert cluster.running_cluster(tmp_path) is None


@pytest.mark.skipif(sys.platform == "win32", reason="a pseudo-terminal (pty) is POSIX only")
def test_a_shell_leaves_running_a_cluster_another_program_attached_to(tmp_path):
    """Rule L1: a window (here: attach_or_start, as gui_tk.py calls it) that attaches to
    the cluster a shell started keeps it: when that shell quits, it leaves the cluster
    running, says so and how to stop it; the window's coordinator still answers."""
    import os
    import pty
    import select
    import time
    master, slave = pty.openpty()             # a terminal: the shell runs interactively
    shell = subprocess.Popen([sys.executable, str(KIT / "shell.py"), "--home", str(tmp_path)],
                             stdin=slave, stdout=slave, stderr=slave, cwd=tmp_path)
    os.close(slave)
    said = b""

    def read_until(words: bytes, seconds: float = 60) -> None:
        nonlocal said
        deadline = time.monotonic() + seconds
        while words not in said and time.monotonic() < deadline:
            if select.select([master], [], [], 0.2)[0]:
                try:
                    said += os.read(master, 4096)
                except OSError:                # the shell ended and closed the terminal
                    break
        assert words in said, said.decode(errors="replace")
    try:
        read_until(b"Type help")
        window, started = cluster.attach_or_start(tmp_path)
        assert not started
        os.write(master, b"quit\n")
        read_until(b"Left the local cluster running")
        assert shell.wait(timeout=30) == 0
        assert b"python cluster.py stop --home" in said
        assert window.answers("coordinator")
    finally:
        shell.kill()
        os.close(master)
        cluster.stop_running(tmp_path)
    assert cluster.running_cluster(tmp_path) is None


def test_cluster_start_finding_one_running_keeps_it_for_good(tmp_path):
    """Rule L1: `python cluster.py start` that finds the cluster a window started says it
    stays running until `cluster.py stop`, and the window then leaves it running."""
    bank, started = cluster.attach_or_start(tmp_path)
    try:
        assert started
        done = subprocess.run([sys.executable, str(KIT / "cluster.py"), "start", "--home",
                               str(tmp_path)], capture_output=True, text=True, timeout=60)
        assert "It stays running until `python cluster.py stop --home" in done.stdout
        assert not bank.stop_unless_kept()
        assert bank.answers("coordinator")
    finally:
        bank.stop()
    assert cluster.running_cluster(tmp_path) is None


@pytest.mark.parametrize("program, args, says", [
    ("coordinator", ["--name", "C 1"], "the coordinator's name goes into every txid"),
    ("coordinator", ["--name", "C" * 17], "1 to 16 letters"),
    ("coordinator", ["--port", "99999"], "a port from 0 (any free one) to 65535"),
    ("coordinator", ["--auto-failover", "-1"], "--auto-failover: 0 to 86400 seconds"),
    ("coordinator", ["--branch", "X=ftp://a"], "The URL of branch X must start with http://"),
    ("coordinator", ["--branch", "Mumbai=http://127.0.0.1:2"], "--branch Mumbai is given twice"),
    ("branch", ["--port", "-1"], "a port from 0 (any free one) to 65535"),
    ("branch", ["--ask-every", "0"], "--ask-every: 0.05 to 3600 seconds, not '0'"),
    ("branch", ["--ask-every", "nan"], "--ask-every: 0.05 to 3600 seconds"),
    ("branch", ["--ask-peers-after", "-1"], "--ask-peers-after: 0 to 86400 seconds"),
    ("shell", ["--coordinator", "notaurl"], "must start with http://"),
    ("shell", ["--coordinator", "http://x"], "with its port"),
    ("shell", ["--home", f"{__file__}/inside-a-file"], "as a folder")])
def test_a_bad_start_option_is_one_sentence_before_anything_starts(program, args, says,
                                                                   capsys):
    """Every start option is checked before anything starts, and refused in one
    sentence: a coordinator name that makes every txid invalid (every transfer aborted
    and waited for ever), a port out of range (an OverflowError), a negative wait, a
    zero or nan --ask-every (the branch spun at full CPU), a branch given twice or at
    a URL that is not http."""
    main = __import__(program)
    base = {"coordinator": ["--branch", "Mumbai=http://127.0.0.1:1"],
            "branch": ["--name", "Pune"]}.get(program, [])
    with pytest.raises(SystemExit):
        main.parse_args([*base, *args])
    err = capsys.readouterr().err
    assert says in err and "Traceback" not in err, err


@pytest.mark.parametrize("program, args, says", [
    ("coordinator.py", ["--fail-at", "bogus"], "'bogus' is not a fault point of a coordinator"),
    ("branch.py", ["--fail-at", "bogus"], "'bogus' is not a fault point of a branch"),
    ("coordinator.py", ["--log-dir", "{home}/a-file/logs"], "Cannot write the log file"),
    ("branch.py", ["--log-dir", "{home}/a-file/logs"], "Cannot write the log file")])
def test_a_bad_start_that_only_the_program_finds_is_a_sentence_too(tmp_home, program, args,
                                                                   says):
    """A fault point that does not exist, or a log folder that cannot be made, stops
    the program with one sentence, not a traceback."""
    (tmp_home / "a-file").write_text("not a folder")
    base = ["--branch", "Mumbai=http://127.0.0.1:1", "--log", str(tmp_home / "r.log")] \
        if program == "coordinator.py" else ["--name", "Pune", "--db", str(tmp_home / "P.db")]
    done = subprocess.run([sys.executable, str(KIT / program), *base, "--port", "0",
                           "--log-dir", str(tmp_home / "logs"),
                           *[a.format(home=tmp_home) for a in args]],
                          capture_output=True, text=True, timeout=30)
    assert done.returncode != 0 and says in done.stderr and "Traceback" not in done.stderr, \
        done.stderr


def test_a_branch_on_the_command_line_overrides_the_config_file(tmp_path):
    """--branch NAME=URL replaces the config file's address for NAME (as --port and
    --name override theirs); only the same --branch given twice is refused."""
    import coordinator
    ini = tmp_path / "cluster.ini"
    ini.write_text("[coordinator]\nname = C1\n[branches]\nMumbai = http://127.0.0.1:9100\n"
                   "Delhi = http://127.0.0.1:9101\n")
    args = coordinator.parse_args(["--config", str(ini), "--branch",
                                   "Mumbai=http://127.0.0.1:9200"])
    assert args.branches == {"Mumbai": ["http://127.0.0.1:9200"],
                             "Delhi": ["http://127.0.0.1:9101"]}


def test_a_stale_record_never_touches_another_cluster_on_its_ports(tmp_path):
    """A home whose cluster.json is stale (its cluster gone; another cluster, with other
    keys, now on those ports) has no running cluster, and `cluster.py stop` on it ends
    nothing: a member counts as ours only if it answers with our keys (the other
    cluster's coordinator refused us and the shell stopped; stop killed by recorded pid
    whatever answered there, even another program that reused the pid)."""
    import json
    other = cluster.LocalCluster(home=tmp_path / "other", branches=("Mumbai",)).start()
    try:
        stale = tmp_path / "stale" / "data"
        stale.mkdir(parents=True)
        record = json.loads((tmp_path / "other" / "data" / "cluster.json").read_text())
        rpc.write_secret(stale / "cluster.keys")
        record["secret_file"] = str(stale / "cluster.keys")
        (stale / "cluster.json").write_text(json.dumps(record))
        assert cluster.running_cluster(tmp_path / "stale") is None
        assert cluster.stop_running(tmp_path / "stale") == []
        assert other.answers("Mumbai") and other.answers("coordinator")
    finally:
        other.stop()


def test_a_default_port_taken_after_it_was_found_free_falls_back_to_any(tmp_path):
    """A cluster started on its default ports gives a member another free port when the
    default one was taken between the check and the start (another program, or a
    second cluster starting at the same moment), instead of failing the whole start."""
    import socket
    local = cluster.LocalCluster(home=tmp_path, branches=("Mumbai",))
    holder = socket.create_server(("127.0.0.1", 0))      # takes "Mumbai's default port"
    taken = holder.getsockname()[1]
    local.members["Mumbai"].port, local.members["Mumbai"].preferred = taken, True
    try:
        local.start()
        assert local.members["Mumbai"].port not in (0, taken)
        assert rpc.Client(local.members["Mumbai"].url, local.secret).call("ping")["name"] == "Mumbai"
    finally:
        local.stop()
        holder.close()


def test_a_balance_above_one_operations_maximum_is_read_everywhere(start_branch):
    """Only one operation is capped (money.MAX_AMOUNT), never a balance: after two
    deposits of the maximum, the readers of balances (the labs' totals, the window's
    money gauge and branches tree) count 2,000,010,000.00 instead of refusing it as
    "not a valid amount" (they read balances with parse_amount, the cap included)."""
    pytest.importorskip("tkinter")
    sys.path.insert(0, str(KIT / "labs"))
    import labkit
    from bank import views
    from bank.window import branches, gauge
    mumbai = start_branch("Mumbai")
    client = rpc.Client(mumbai.url)
    for _ in range(2):
        client.call("deposit", "1001", "1000000000.00")
    accounts = client.call("accounts")
    assert client.call("account", "1001")["balance"] == "2000010000.00"
    bank = type("Bank", (), {"client": lambda self, name: client})()
    assert labkit.branch_total(bank, ["Mumbai"]) == "2000015000.00"
    split = gauge.money_split({"Mumbai": {"up": True, "accounts": accounts, "prepared": []}})
    assert split["total"] == split["available"] == 2_000_015_000_00
    assert branches.minor is views.minor                  # the tree reads balances uncapped
    assert views.minor("2000010000.00") == 2_000_010_000_00


def _status_then_stop_end_a_start_cut_short(home) -> None:
    """`cluster.py status` lists Mumbai as a member of a start cut short, and
    `cluster.py stop` ends it (Rule L6)."""
    def run(command):
        return subprocess.run([sys.executable, str(KIT / "cluster.py"), command, "--home",
                               str(home)], capture_output=True, text=True, timeout=90)
    status = run("status")
    assert "cut short" in status.stdout and "Mumbai " in status.stdout, status.stdout
    stop = run("stop")
    assert "Stopped: Mumbai" in stop.stdout, stop.stdout + stop.stderr


def _answering_url_files(home) -> list:
    """The members of a home that answer at the URL they wrote when they listened."""
    return [p.stem for p in (home / "data").glob("*.url")
            if cluster.answers_at(p.read_text(encoding="utf-8").strip())]


@pytest.mark.skipif(sys.platform == "win32", reason="kill -9 of a program is POSIX here")
def test_a_program_killed_while_it_starts_the_cluster_leaves_nothing_unnamed(tmp_path):
    """Rule L6 (bank/local_cluster.py): the record names each process a start spawns,
    before the start is done. A shell killed (kill -9) while it started a cluster with
    replicas used to leave Mumbai, its replica and Delhi running with no cluster.json:
    `cluster.py status` said no cluster ran, `cluster.py stop` 'No local cluster was
    running', and the next shell failed on Mumbai.db, telling to run that stop. Now
    status lists them as a start cut short, stop ends them, and the next shell starts."""
    import os
    import signal
    shell = subprocess.Popen([sys.executable, str(KIT / "shell.py"), "--home", str(tmp_path),
                              "--replicas", "1", "-c", "balance Mumbai/1001"], cwd=tmp_path,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: (tmp_path / "data" / "Delhi.url").exists() or shell.poll() is not None,
                 60, "Delhi listening")
        os.kill(shell.pid, signal.SIGKILL)        # mid-start: the coordinator not yet up
        shell.wait(timeout=10)
        assert _answering_url_files(tmp_path), "nothing of the start was left to test"
        _status_then_stop_end_a_start_cut_short(tmp_path)
        assert _answering_url_files(tmp_path) == []
        again = subprocess.run([sys.executable, str(KIT / "shell.py"), "--home",
                                str(tmp_path), "-c", "check"], cwd=tmp_path,
                               capture_output=True, text=True, timeout=120)
        assert "All checks passed" in again.stdout, again.stdout + again.stderr
    finally:
        shell.kill()
        cluster.stop_running(tmp_path)
    assert _answering_url_files(tmp_path) == []


def test_a_program_killed_while_it_restarts_a_member_leaves_it_named(tmp_path, monkeypatch):
    """Rule L6: a restart records the new process's pid as soon as it is spawned. A
    shell killed between its restarted Mumbai listening and its rewrite of cluster.json
    left the record naming the old, dead pid: `cluster.py stop` killed that pid (maybe
    some other program's by now), waited 10 s, said 'Stopped: Mumbai, ...' and left
    Mumbai running. A stop now ends it, and lists as stopped only what stopped."""
    bank = cluster.LocalCluster(home=tmp_path, branches=("Mumbai",)).start()
    shell = cluster.LocalCluster.attach(tmp_path)
    listens = cluster.Member._wait_for_url

    def killed_once_it_listens(member):      # the program dies here: no cleanup after
        listens(member)
        raise KeyboardInterrupt
    try:
        monkeypatch.setattr(cluster.Member, "_wait_for_url", killed_once_it_listens)
        with pytest.raises(KeyboardInterrupt):
            shell.restart("Mumbai")
        monkeypatch.undo()
        assert shell.answers("Mumbai")
        assert "Mumbai" in cluster.stop_running(tmp_path)
        assert not shell.answers("Mumbai")
    finally:
        if shell.members["Mumbai"].proc is not None:
            shell.members["Mumbai"].proc.kill()
        bank.stop()


def _ends(url: str, pid_file, seconds: float = 15) -> None:
    """Poll until nothing answers at url; else end the process pid_file names (cleanup)."""
    try:
        wait_for(lambda: not cluster.answers_at(url), seconds, f"nothing answering at {url}")
    except BaseException:
        cluster.kill_pid(int(pid_file.read_text().split()[0]))
        raise


@pytest.mark.skipif(sys.platform == "win32", reason="kill -9 of a program is POSIX here")
def test_a_stop_ends_a_server_only_its_own_files_name(tmp_path):
    """Rule L6: a program killed between spawning a server and recording it leaves a
    server that only its own files in the home name (NAME.url, NAME.pid): `cluster.py
    status` lists it and says `cluster.py stop` ends it, and the stop does. (The stop
    looked only for members with a recorded pid, said 'No local cluster was running.'
    and left Mumbai running; the next start then failed on Mumbai.db.)"""
    launcher = (f"import os, signal, sys\nsys.path.insert(0, {str(KIT)!r})\n"
                "from bank import local_cluster as c\n"
                "def killed(self, member):   # the program dies before recording it\n"
                "    os.kill(os.getpid(), signal.SIGKILL)\n"
                "c.LocalCluster._spawned = killed\n"
                f"c.LocalCluster({str(tmp_path)!r}, branches=('Mumbai',)).start()\n")
    subprocess.run([sys.executable, "-c", launcher], cwd=tmp_path, timeout=60)
    url_file = tmp_path / "data" / "Mumbai.url"
    wait_for(url_file.exists, 30, "the orphaned Mumbai listening")
    url = url_file.read_text().strip()
    try:
        assert cluster.answers_at(url)
        _status_then_stop_end_a_start_cut_short(tmp_path)
        assert not cluster.answers_at(url)
    finally:
        _ends(url, tmp_path / "data" / "Mumbai.pid", 1)


def test_a_pid_file_left_by_an_ended_server_names_nothing(tmp_path, innocent, mumbai_alone):
    """Rules L5, L6: the pid in HOME/data/NAME.pid is taken only from the server that
    wrote it, while it answers at its URL: a file left by a member that crashed names a
    pid the system may have reused since. Here Mumbai crashed, its files stayed, that
    pid is (as if reused) an innocent process's, and a server with the same keys that
    writes into another home now answers at Mumbai's URL (a copy of this home, say).
    Neither a crash nor `cluster.py stop` signals the innocent process; both say the
    server still answers. (Both took NAME.pid whenever NAME.url matched the URL.)"""
    bank = mumbai_alone
    bank.kill("Mumbai")
    pid_file = tmp_path / "data" / "Mumbai.pid"
    lines = pid_file.read_text().splitlines()
    pid_file.write_text("\n".join([str(innocent.pid), *lines[1:]]) + "\n")
    stray = _stray(bank, "Mumbai", tmp_path / "elsewhere")
    bank.strays.append(stray)
    with pytest.raises(BankError, match="still answers at"):
        bank.kill("Mumbai")
    left = []
    cluster.stop_running(tmp_path, left)
    assert left == [f"Mumbai at {stray.url}"]
    assert innocent.poll() is None, "an innocent process was killed"
