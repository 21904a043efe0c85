"""Group commit at a branch and the bounded replay cache: speed that keeps every rule.

Rules checked (bank/group_commit.py G1-G5, issue 13):
  * G2 - in one group, a "no" vote (or any failing step) is undone alone: the other
    transfers of the group are prepared, each with its own vote;
  * G1 - nothing is acknowledged before it is durable: when a step returns, another
    connection (another process) already sees it;
  * group commit really shares: a group of queued steps costs one COMMIT (one fsync);
  * G5 - a held group (a batch): the holder's steps share one COMMIT, made when it
    lets go, and none is visible before; another writer's step joins the group and
    returns only after that COMMIT;
  * a crash (a real process ending abruptly) in the middle of a group keeps none of
    the group's steps, which were not acknowledged, and everything acknowledged before;
  * the replay cache of signed requests stays bounded and its work per request stays
    the same after hundreds of thousands of requests.
Real SQLite files, real threads, a real subprocess; polling with a deadline.
"""

import sqlite3
import subprocess
import sys
import textwrap
import threading

from bank.core.messages import TxState, Vote
from bank.ledger import Ledger, check_database
from bank.rpc import RecentNonces
from polling import wait_configured, wait_for

BRANCH, COORD = "Mumbai", "http://127.0.0.1:1"


def open_ledger(path) -> Ledger:
    ledger = Ledger(path, BRANCH)
    ledger.open_account("Asha", 100_00, "1001")
    ledger.open_account("Ravi", 5_00, "1002")
    return ledger


def hold_the_writer(ledger):
    """Start a step that waits inside the writer until released, so the next steps
    queue behind it and form one group. Returns (release, thread)."""
    inside, release = threading.Event(), threading.Event()

    def blocker():
        with ledger._write():
            inside.set()
            release.wait(10)
    thread = threading.Thread(target=blocker)
    thread.start()
    assert inside.wait(10)
    return release, thread


def queued(ledger, n):
    return wait_for(lambda: ledger._commits._queued >= n, 10, f"{n} writers queued")


def printed(sh, command: str) -> str:
    """What the shell prints for one command (its output buffer emptied first)."""
    sh.stdout.seek(0)
    sh.stdout.truncate()
    sh.onecmd(command)
    return sh.stdout.getvalue()


def seen_by_another_connection(path, txid) -> str:
    conn = sqlite3.connect(path)
    try:
        row = conn.execute("SELECT state FROM txns WHERE txid=?", (txid,)).fetchone()
        return row[0] if row else ""
    finally:
        conn.close()


def test_a_no_vote_in_a_group_aborts_only_its_own_transfer(tmp_path):
    """G2: four prepares share one group; the one that cannot pay votes no and holds
    nothing, the one refused by a fault votes no, the other two vote yes and hold."""
    ledger = open_ledger(tmp_path / "m.db")
    asks = {"t-yes-1": ([("1001", -10_00)], ""), "t-no-funds": ([("1002", -50_00)], ""),
            "t-yes-2": ([("1001", -20_00)], ""), "t-refused": ([("1001", -1_00)], "lab")}
    votes, seen = {}, {}
    fsyncs_before = ledger.counters()["fsyncs"]
    release, blocker = hold_the_writer(ledger)

    def prepare(txid):
        ops, refuse = asks[txid]
        votes[txid] = ledger.prepare(txid, COORD, ops, refuse)
        seen[txid] = seen_by_another_connection(tmp_path / "m.db", txid)
    threads = [threading.Thread(target=prepare, args=(t,)) for t in asks]
    for t in threads:
        t.start()
    queued(ledger, len(asks))
    release.set()
    for t in [blocker, *threads]:
        t.join(10)
    assert votes["t-yes-1"][0] == Vote.YES and votes["t-yes-2"][0] == Vote.YES
    assert votes["t-no-funds"][0] == Vote.NO and "insufficient funds" in votes["t-no-funds"][1]
    assert votes["t-refused"][0] == Vote.NO
    assert ledger.account("1001")["held"] == "30.00"            # only the yes votes hold
    assert ledger.account("1002")["held"] == "0.00"
    assert ledger.txn_state("t-yes-1") is TxState.PREPARED
    assert ledger.txn_state("t-no-funds") in (TxState.ABORTED, TxState.UNKNOWN)
    assert ledger.counters()["fsyncs"] - fsyncs_before == 1     # one group, one COMMIT
    assert check_database(tmp_path / "m.db") == ""


def test_nothing_is_acknowledged_before_its_group_is_on_disk(tmp_path):
    """G1: each of eight grouped steps, the moment it returns, is already visible to
    another connection: its group's COMMIT came first."""
    ledger = open_ledger(tmp_path / "m.db")
    seen = {}
    release, blocker = hold_the_writer(ledger)

    def prepare(k):
        txid = f"t{k}"
        ledger.prepare(txid, COORD, [("1001", -1_00)])
        seen[txid] = seen_by_another_connection(tmp_path / "m.db", txid)
    threads = [threading.Thread(target=prepare, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    queued(ledger, 8)
    release.set()
    for t in [blocker, *threads]:
        t.join(10)
    assert seen == {f"t{k}": "prepared" for k in range(8)}


def test_a_held_group_commits_once_when_its_holder_lets_go(tmp_path):
    """G5 (and G1): three prepares on one thread inside one_commit() return at once but
    are not on disk until it ends; a deposit from another thread joins the group and
    returns only after the holder lets go; then all four are visible: one COMMIT."""
    ledger = open_ledger(tmp_path / "m.db")
    fsyncs_before, deposited = ledger.counters()["fsyncs"], threading.Event()
    with ledger.one_commit():
        votes = [ledger.prepare(f"t{k}", COORD, [("1001", -1_00)]) for k in range(3)]
        other = threading.Thread(target=lambda: (ledger.deposit("1002", 1_00),
                                                 deposited.set()))
        other.start()
        wait_for(lambda: (group := ledger._commits._group) is not None and group.steps == 4,
                 10, "the deposit to join the held group")
        assert not deposited.is_set()                    # nobody else closes a held group
        assert [seen_by_another_connection(tmp_path / "m.db", f"t{k}")
                for k in range(3)] == ["", "", ""]       # not on disk yet: not answered
    other.join(10)
    assert deposited.is_set()
    assert [v[0] for v in votes] == [Vote.YES] * 3
    assert [seen_by_another_connection(tmp_path / "m.db", f"t{k}")
            for k in range(3)] == ["prepared"] * 3
    assert ledger.account("1002")["balance"] == "6.00"
    assert ledger.counters()["fsyncs"] - fsyncs_before == 1      # one group, one COMMIT


def test_a_failing_step_is_undone_alone_and_the_others_commit(tmp_path):
    """G2 for any step: one grouped step raising (a protocol violation: commit of an
    unknown txid) is refused alone; the deposits around it all commit."""
    ledger = open_ledger(tmp_path / "m.db")
    outcomes = {}
    release, blocker = hold_the_writer(ledger)

    def run(name, step):
        try:
            step()
            outcomes[name] = "ok"
        except Exception as exc:                     # noqa: BLE001 - recorded, checked
            outcomes[name] = type(exc).__name__
    steps = {"deposit-1": lambda: ledger.deposit("1002", 1_00),
             "bad-commit": lambda: ledger.commit("never-prepared"),
             "deposit-2": lambda: ledger.deposit("1002", 2_00)}
    threads = [threading.Thread(target=run, args=item) for item in steps.items()]
    for t in threads:
        t.start()
    queued(ledger, 3)
    release.set()
    for t in [blocker, *threads]:
        t.join(10)
    assert outcomes == {"deposit-1": "ok", "bad-commit": "BankError", "deposit-2": "ok"}
    assert ledger.account("1002")["balance"] == "8.00"
    assert ledger.txn_state("never-prepared") is TxState.UNKNOWN


CRASH_MID_GROUP = textwrap.dedent("""
    import os, sys, threading, time
    sys.path.insert(0, sys.argv[2])
    from bank.ledger import Ledger
    ledger = Ledger(sys.argv[1], "Mumbai")
    ledger.prepare("acked", "http://127.0.0.1:1", [("1001", -5_00)])   # durable, told
    commits = ledger._commits
    with commits._queue:
        commits._queued += 1000            # pretend writers are queued: the group stays open
    for k in range(4):
        threading.Thread(target=ledger.prepare, daemon=True,
                         args=(f"mid-{k}", "http://127.0.0.1:1", [("1001", -1_00)])).start()
    deadline = time.monotonic() + 10
    while (commits._group is None or commits._group.steps < 4) and time.monotonic() < deadline:
        time.sleep(0.01)
    print("steps in the open group:", commits._group.steps, flush=True)
    os._exit(9)                            # the power cut: no COMMIT, no cleanup
""")


def test_a_crash_in_the_middle_of_a_group_keeps_all_or_nothing(tmp_path):
    """A process that ends abruptly with four prepares inside an open group (none of
    them acknowledged) keeps none of them: those txids are unknown, so presumed
    aborted (C8), nothing is held for them, and the prepare acknowledged before stays."""
    path = tmp_path / "m.db"
    open_ledger(path).close()
    kit = str(__import__("pathlib").Path(__file__).resolve().parent.parent)
    done = subprocess.run([sys.executable, "-c", CRASH_MID_GROUP, str(path), kit],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 9, done.stderr
    assert "steps in the open group: 4" in done.stdout, done.stdout + done.stderr
    assert check_database(path) == ""
    ledger = Ledger(path, BRANCH)
    assert ledger.txn_state("acked") is TxState.PREPARED
    assert [ledger.txn_state(f"mid-{k}") for k in range(4)] == [TxState.UNKNOWN] * 4
    assert ledger.account("1001")["held"] == "5.00"


def test_the_replay_cache_stays_bounded_and_its_cost_per_request_flat():
    """Issue 13: 300,000 signed requests, a fresh nonce each, arriving over simulated
    hours: the cache never holds more than its limit, and the work per request (entries
    touched) is the same in the last 10,000 requests as in the first 10,000."""
    cache = RecentNonces(keep_for=240, limit=5_000)
    now, work = 0.0, []
    for k in range(300_000):
        if k % 10_000 == 0:
            work.append(cache.steps)
        now += 0.05                                      # 20 requests a second
        assert cache.add(f"n{k}", int(now * 1000), now)
        assert len(cache) <= 5_000
    first, last = work[1] - work[0], cache.steps - work[-1]
    assert last <= 2 * 10_000 and abs(last - first) <= 10_000, (first, last)
    assert not cache.add(f"n{299_999}", int(now * 1000), now)     # a replay is refused


def test_the_shell_shows_fsyncs_and_messages_per_transfer(tmp_path):
    """Issue 13 item 6: `counters` shows the change since the shell started, then since
    the last `counters`: a lone transfer right after the start costs exactly 5 messages
    and 5 fsyncs (the branches' start-up COMMITs are left out); eight transfers made by
    four clients at once cost at most 5 messages each (the client's call, prepare and
    commit to each branch; batching can only lower it) and at most 5 fsyncs each
    (group commit can only lower it)."""
    import io
    import re
    import shell
    from bank.local_cluster import LocalCluster
    with LocalCluster(home=tmp_path, allow_faults=False) as bank:
        wait_configured(bank)      # the start's configuration writes: not a transfer's
        sh = shell.BankShell(shell.coordinator_client(bank.coordinator_url, bank.secret),
                             bank, bank.home, stdout=io.StringIO())
        sh.onecmd("transfer Mumbai/1001 Delhi/1002 1.00")
        sh.onecmd("counters")
        first = sh.stdout.getvalue()
        assert "Since this shell started." in first
        assert re.search(r"transfers between branches\s+1\b", first), first
        assert re.search(r"messages per transfer\s+5\.00\b", first), first
        assert re.search(r"fsyncs per transfer\s+5\.00\b", first), first

        def two_transfers():
            coordinator = bank.coordinator()
            for src, dst in (("Mumbai/1001", "Delhi/1002"), ("Delhi/1002", "Mumbai/1001")):
                assert coordinator.call("transfer", src, dst, "1.00")["outcome"] == "committed"
        clients = [threading.Thread(target=two_transfers) for _ in range(4)]
        for t in clients:
            t.start()
        for t in clients:
            t.join(30)
        wait_for(lambda: all(b["in_doubt"] == 0 for b in bank.coordinator().call("branches")),
                 15, "every commit to reach the branches")
        out = printed(sh, "counters")
    assert re.search(r"transfers between branches\s+8\b", out), out
    messages = float(re.search(r"messages per transfer\s+([0-9.]+)", out).group(1))
    assert 1 < messages <= 5.0, out
    fsyncs = float(re.search(r"fsyncs per transfer\s+([0-9.]+)", out).group(1))
    assert 0 < fsyncs <= 5.0, out
    assert "Since the last `counters`." in out


def test_local_operations_are_not_counted_as_a_transfers_fsyncs(tmp_path):
    """bank/counters.py: deposits, withdrawals and openings (no 2PC) make COMMITs of their
    own; `counters` lists them apart ("other branch COMMITs") instead of adding them to
    the fsyncs per transfer, so one transfer among five local operations still shows
    its 5 fsyncs."""
    import io
    import re
    import shell
    from bank.local_cluster import LocalCluster
    with LocalCluster(home=tmp_path, allow_faults=False) as bank:
        wait_configured(bank)      # the start's configuration writes: not a transfer's
        sh = shell.BankShell(shell.coordinator_client(bank.coordinator_url, bank.secret),
                             bank, bank.home, stdout=io.StringIO())
        for line in ("open Mumbai Ada 5", "open Delhi Bo 5", "deposit Mumbai/1001 2",
                     "withdraw Delhi/1002 1", "deposit Delhi/1001 3",
                     "transfer Mumbai/1001 Delhi/1002 1.00"):
            sh.onecmd(line)
        sh.onecmd("counters")
        out = sh.stdout.getvalue()
    assert re.search(r"fsyncs per transfer\s+5\.00\b", out), out
    assert re.search(r"other branch COMMITs\s+5\b", out), out


def test_the_shells_counters_start_again_after_a_server_restarts(tmp_path):
    """A restarted server counts from 0 again: `counters` says so and counts from there,
    never showing a negative count or rate (as the window does: bank/counters.py,
    restarted)."""
    import io
    import re
    import shell
    from bank.local_cluster import COORDINATOR, LocalCluster
    with LocalCluster(home=tmp_path, allow_faults=False) as bank:
        for _ in range(3):                         # before the shell: its baseline
            bank.coordinator().call("transfer", "Mumbai/1001", "Delhi/1002", "1.00")
        sh = shell.BankShell(shell.coordinator_client(bank.coordinator_url, bank.secret),
                             bank, bank.home, stdout=io.StringIO())
        bank.restart(COORDINATOR)                  # it counts 1 transfer, not 3 + 1
        sh.onecmd("transfer Mumbai/1001 Delhi/1002 1.00")
        said = printed(sh, "counters")
        assert "A server restarted since this shell started" in said, said
        assert not re.search(r"\s-[0-9]", said), said
        sh.onecmd("transfer Mumbai/1001 Delhi/1002 1.00")
        out = printed(sh, "counters")
    assert re.search(r"transfers between branches\s+1\b", out), out
    assert re.search(r"messages per transfer\s+5\.00\b", out), out
    assert "Since the last `counters`." in out


def test_the_shells_counters_see_one_branch_restart_while_the_others_count_on(tmp_path):
    """A restart is told by each server's run, not by the bank's sums going down: Delhi
    restarted (its counts from 0 again) while Mumbai and the coordinator counted on, so
    every sum still grew; `counters` says a server restarted and counts from there. (It
    showed 3.00 branch COMMITs per transfer for sequential transfers, as if group
    commit had saved one: Delhi's counts from before its restart had gone missing.)"""
    import io
    import re
    import shell
    from bank.local_cluster import LocalCluster
    with LocalCluster(home=tmp_path, allow_faults=False) as bank:
        wait_configured(bank)      # the start's configuration writes: not a transfer's
        bank.restart("Delhi")      # its start-up writes: as at the restart below (no preload)
        sh = shell.BankShell(shell.coordinator_client(bank.coordinator_url, bank.secret),
                             bank, bank.home, stdout=io.StringIO())
        for _ in range(3):
            sh.onecmd("transfer Mumbai/1001 Delhi/1002 1.00")
        bank.restart("Delhi")
        sh.onecmd("transfer Mumbai/1001 Delhi/1002 1.00")
        said = printed(sh, "counters")
        assert "A server restarted since this shell started" in said, said
        sh.onecmd("transfer Mumbai/1001 Delhi/1002 1.00")
        out = printed(sh, "counters")
    assert re.search(r"transfers between branches\s+1\b", out), out
    assert re.search(r"fsyncs per transfer\s+5\.00\b", out), out


def test_the_shells_counters_name_a_branch_that_is_down_instead_of_a_restart(tmp_path):
    """`counters` with a branch down: its counts are missing, so nothing is added up; the
    shell names the branch in one sentence and keeps its baseline (it does not say a
    server restarted, nor count from now)."""
    import io
    import shell
    from bank.local_cluster import LocalCluster
    with LocalCluster(home=tmp_path, allow_faults=False) as bank:
        sh = shell.BankShell(shell.coordinator_client(bank.coordinator_url, bank.secret),
                             bank, bank.home, stdout=io.StringIO())
        baseline = sh._counted
        bank.kill("Delhi")
        sh.onecmd("counters")
        said = sh.stdout.getvalue()
    assert "Delhi did not answer, so the counters cannot be added up" in said, said
    assert "restarted" not in said and "Traceback" not in said
    assert baseline is not None and sh._counted == baseline
