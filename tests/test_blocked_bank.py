"""A bank seen while it is blocked (issue 14, items 4 and 5), staged as a teacher would.

Rules checked:
  * the shell with the coordinator down answers balance, branches, txns in-doubt and
    journal from the branches directly, under a line saying the coordinator cannot be
    reached, and a shell that knows no branch says so (bank/shell/direct.py, V1-V4);
  * after a coordinator restart, `show` of a recovered transfer draws what the recovery
    log proves happened before the crash (begin, prepares, yes votes, the forced commit)
    and then the recovery; never "none logged yet" for a decided one (bank/twopc_recovery.py);
  * fault points: delay=SECONDS is a branch point only (F1), in ASCII digits (F2);
  * the activity log shows the rows of the cluster the shell is attached to (A1, A2);
  * the LAN guide says to edit the addresses and gives commands that parse;
  * a branch narrates its 2PC steps in plain sentences in its log (BR5 in
    bank/branch_service.py), and says it is still holding money while it asks.

Process tests get their own cluster in tmp_path, stopped (by pid) by the fixture; the
shell runs in-process (onecmd into a StringIO). Waiting is polling with a deadline.
"""

import io
import pathlib
import re
import sys

import pytest

KIT = pathlib.Path(__file__).resolve().parent.parent
if str(KIT) not in sys.path:
    sys.path.insert(0, str(KIT))

from bank import local_cluster as cluster                    # noqa: E402
from bank import shell                                       # noqa: E402
from shelltest import run, shell_on  # noqa: E402
from bank.errors import BankError                            # noqa: E402
from bank.faults import FaultPoints                          # noqa: E402
from bank.core.messages import BRANCH_POINTS, COORDINATOR_POINTS   # noqa: E402
from polling import wait_for                                 # noqa: E402


# ---- fault points (F1, F2) ---------------------------------------------------------------

def test_a_delay_is_refused_by_the_coordinator_with_one_sentence():
    """F1: delay=SECONDS is a branch point; the coordinator refuses it and arms nothing."""
    coordinator = FaultPoints("coordinator", COORDINATOR_POINTS, True)
    with pytest.raises(BankError) as refused:
        coordinator.arm("delay=1")
    assert refused.value.message.startswith("A delay (delay=SECONDS) is a branch point")
    assert coordinator.describe() == {"armed": "", "delay": "0"}


def test_the_shell_cannot_arm_a_delay_on_the_coordinator(sh, bank):
    """F1 end to end: `fault coordinator delay=1` is refused in one sentence and nothing is
    armed; `fault Delhi delay=1` is armed."""
    out = run(sh, "fault coordinator delay=1")
    assert out.startswith("Error: A delay (delay=SECONDS) is a branch point") and "\n" == out[-1:], out
    assert bank.coordinator().call("ping")["faults"] == ""
    assert run(sh, "fault Delhi delay=1").startswith("Armed delay=1 on Delhi")
    assert bank.client("Delhi").call("ping") and run(sh, "fault Delhi off").startswith("Disarmed")


@pytest.mark.parametrize("text, seconds", [("2", 2), ("0.5", 0.5), ("1.25", 1.25), ("0", 0),
                                           ("60", 60)])
def test_a_branch_takes_a_delay_in_ascii_digits(text, seconds):
    """F2: a branch arms delay=SECONDS written in ASCII digits, with at most one dot."""
    branch = FaultPoints("branch", BRANCH_POINTS, True, delays=True)
    assert branch.arm(f"delay={text}")["delay"] == str(seconds)


@pytest.mark.parametrize("text", ["²", "1²", "٣", "１", "-1", "61", "1e1", "nan", "", "1.", ".5"])
def test_a_delay_not_in_ascii_digits_is_refused_and_changes_nothing(text):
    """F2: superscripts, other scripts' digits, signs and exponents are refused."""
    branch = FaultPoints("branch", BRANCH_POINTS, True, delays=True)
    branch.arm("delay=3")
    with pytest.raises(BankError) as refused:
        branch.arm(f"delay={text}")
    assert refused.value.message.startswith("delay must be a number of seconds")
    assert branch.describe()["delay"] == "3"


# ---- the shell with the coordinator down (V1-V4) ------------------------------------------

@pytest.fixture
def bank(tmp_path):
    """Mumbai and Delhi (preloaded) and a coordinator in tmp_path, stopped by pid."""
    local = cluster.LocalCluster(home=tmp_path, branches=("Mumbai", "Delhi"),
                                 branch_args=("--ask-every", "0.3"))
    try:
        local.start()
        yield local
    finally:
        local.stop()


@pytest.fixture
def sh(bank):
    """A fresh shell on that cluster, writing to a StringIO."""
    return shell_on(bank)



def block_a_transfer(sh, fault: str) -> str:
    """Crash the coordinator at `fault` during a 100.00 transfer Mumbai/1001 -> Delhi/1002;
    return what the transfer printed."""
    assert "Armed" in run(sh, f"fault coordinator {fault}")
    out = run(sh, "transfer Mumbai/1001 Delhi/1002 100")
    assert out.startswith("Outcome not known"), out
    wait_for(lambda: not sh.local.members["coordinator"].alive, 10, "the coordinator to die")
    return out


UNREACHABLE = re.compile(r"^The coordinator at http://127\.0\.0\.1:\d+ cannot be reached "
                         r"\(connection refused[^)]*\); read from the branches directly\.")


def test_with_the_coordinator_down_the_shell_reads_the_branches(sh, bank):
    """V1-V4: with a transfer in doubt and the coordinator dead, balance, branches,
    txns in-doubt and journal answer from the branches, under the unreachable line;
    every one of them shows who holds what."""
    block_a_transfer(sh, "crash-after-prepare")
    txid = wait_for(lambda: bank.client("Mumbai").call("in_doubt"), 10, "a prepare")[0]["txid"]
    failed_before = sh.failures          # the transfer's "not known" counted as failed

    out = run(sh, "balance Mumbai/1001")
    assert UNREACHABLE.match(out), out
    assert "Mumbai/1001 (Asha Rao): balance 10000.00, held 100.00, available 9900.00." in out

    out = run(sh, "branches")
    assert UNREACHABLE.match(out), out
    assert re.search(r"Mumbai\s+http\S+\s+up\s+primary\s+1\s+-\s+1", out), out
    assert re.search(r"Delhi\s+http\S+\s+up\s+primary\s+1\s+-\s+1", out), out
    assert re.search(r"coordinator\s+http\S+\s+DOWN", out), out

    out = run(sh, "txns in-doubt")
    assert UNREACHABLE.match(out), out
    assert re.search(rf"{txid}\s+Delhi\s+Delhi/1002 100\.00", out), out
    assert re.search(rf"{txid}\s+Mumbai\s+Mumbai/1001 -100\.00", out), out
    assert out.count("voted yes, holding it until the coordinator decides") == 2

    out = run(sh, "journal Mumbai/1001 5")
    assert UNREACHABLE.match(out) and "Mumbai/1001" in out and "open" in out, out
    assert sh.failures == failed_before

    mumbai_log = bank.home / "logs" / "Mumbai.log"
    narrated = wait_for(lambda: re.search(
        rf"termination: {txid} is in doubt; asked the coordinator at \S+ for the decision: "
        r"no answer\. Still holding 100\.00 of Mumbai/1001\.", mumbai_log.read_text()), 10,
        "Mumbai to narrate that it is blocked")
    assert narrated and f"prepare {txid} (Mumbai/1001 -100.00): vote yes, recorded on disk; " \
        "holding 100.00 of Mumbai/1001 until the coordinator decides." in mumbai_log.read_text()

    out = run(sh, "txns committed")
    assert UNREACHABLE.match(out) and "Only the coordinator lists committed transfers" in out
    assert sh.failures == failed_before + 1


def test_with_the_coordinator_down_check_audits_the_branches_own_books(sh, bank):
    """V1, V4: `check` while the coordinator is down audits each branch's own books under
    the unreachable line: money is conserved (the debit is only held), and the hold and
    each branch's prepared transfer are work in flight ("wait"), not a failure."""
    block_a_transfer(sh, "crash-after-prepare")
    wait_for(lambda: bank.client("Mumbai").call("in_doubt"), 10, "a prepare")
    failed_before = sh.failures
    out = run(sh, "check")
    assert UNREACHABLE.match(out), out
    assert re.search(r"money conserved\s+ok", out), out
    assert re.search(r"holds\s+wait\s+Mumbai/1001 holds 100\.00", out), out
    assert "Delhi has 1 prepared" in out and "Mumbai has 1 prepared" in out, out
    assert "All checks passed (some work is still in flight)." in out, out
    assert sh.failures == failed_before


def test_a_shell_that_knows_no_branch_says_so_and_never_passes_the_check(bank):
    """V3: a shell attached by URL after the coordinator went down knows no branch's
    address; `check`, `txns in-doubt` and `accounts` fail with one sentence saying so
    (check said "All checks passed" over no books at all, and txns "nothing to show"
    while the branches held money in doubt)."""
    bank.kill("coordinator")
    client = shell.coordinator_client(bank.coordinator_url, bank.secret)
    blind = shell.BankShell(client, None, bank.home, stdout=io.StringIO())
    for command in ("check", "txns in-doubt", "accounts"):
        out = run(blind, command)
        assert "Error: This shell knows no branch's address" in out, out
        assert "passed" not in out and "nothing to show" not in out, out
    assert blind.failures == 3


def test_an_error_the_coordinator_answers_is_not_hidden_by_a_direct_read(sh, bank):
    """V2: only an unreachable coordinator makes the shell read the branches: an error
    the coordinator answered (here: a branch that is down) is shown as it is."""
    run(sh, "crash Delhi")
    out = run(sh, "balance Delhi/1001")
    assert out.startswith("Error:") and "read from the branches" not in out, out


# ---- a recovered transaction's story (TR1-TR3) --------------------------------------------

def diagram_rows(shown: str) -> list:
    """(ms, the rest) for each message row of a `show` diagram, in order."""
    return [(m.group(1), m.group(2)) for m in re.finditer(r"^ {0,5}(\?|\d+)  (.*)$", shown,
                                                           re.MULTILINE)]


def test_a_recovered_commit_is_drawn_from_its_log_then_its_recovery(sh, bank):
    """TR1-TR3: after crash-after-decision and a restart, `show` draws begin, the prepares,
    the yes votes and the forced COMMIT from before the crash (rebuilt from the log),
    then the restart and the commits re-sent; the summary names the logged decision."""
    out = block_a_transfer(sh, "crash-after-decision")
    request_id = re.search(r"`show (shell-\w+)`", out).group(1)
    assert run(sh, "restart coordinator").startswith("Restarted coordinator")
    shown = wait_for(lambda: (lambda s: "Still waiting" not in s and s)(
        run(sh, f"show {request_id}")), 20, "the recovered commit to be acknowledged")
    rows = [rest for _, rest in diagram_rows(shown)]
    order = ["begin", "prepare", "prepare", "vote yes", "vote yes", "COMMIT", "recovered",
             "commit"]
    found = _positions(rows, order)            # each one after the one before it
    assert "forced to disk" in rows[found[5]] and "rebuilt from the log" in rows[found[1]]
    assert "Decision (logged): commit (forced to disk)" in shown, shown
    assert "rebuilt from the log" in rows[found[3]] and "rebuilt from the log" in rows[found[5]]
    assert re.search(r"Votes: Delhi: yes: implied by the logged commit.*; Mumbai: yes", shown)
    assert "none logged yet" not in shown and "Outcome: committed" in shown
    assert "Before the restart: rebuilt from the recovery log" in shown


def _positions(rows: list, words: list) -> list:
    """The index of each word's row, each found after the one before it."""
    at, found = -1, []
    for word in words:
        at = next(i for i in range(at + 1, len(rows)) if f" {word} " in rows[i]
                  or rows[i].rstrip().endswith(word) or f"[{word}" in rows[i])
        found.append(at)
    return found


@pytest.mark.parametrize("decision, prepares", [("", 0), ("abort", 0), ("commit", 2)])
def test_a_rebuilt_trace_draws_prepares_only_when_a_commit_proves_them(decision, prepares):
    """TR1: a begin record does not prove the prepares left (it is written first; the
    crash may come in between), nor does an abort (recovery writes its own after a
    restart that found no decision, and C4 one after a prepare that never left); a
    commit does: every participant voted yes."""
    from bank.twopc_recovery import rebuild_before_crash
    from bank.twopc_txn import Txn
    info = {"src": "Mumbai/1001", "dst": "Delhi/1002", "amount": "5.00",
            "branches": ["Delhi", "Mumbai"], "began": "2026-11-25T13:01:02.123+00:00"}
    txn = Txn("T1", {"Delhi": [], "Mumbai": []}, info)
    rebuild_before_crash(txn, decision)
    assert [r["msg"] for r in txn.trace].count("prepare") == prepares
    assert txn.trace[0]["msg"] == "begin" and txn.trace[-1]["msg"] == "recovered"


def test_an_abort_is_never_drawn_as_forced_to_disk():
    """Rule 2 of views: only a commit is forced (the commit point); a decision to abort
    is written unforced (presumed abort), and the diagram says so."""
    from bank.views import message_label
    assert message_label({"msg": "decision", "detail": "abort"})[1].startswith("not forced")
    assert message_label({"msg": "decision", "detail": "commit (forced to disk)"})[1] == \
        "forced to disk: the commit point"


def test_an_ack_with_heuristic_damage_shows_the_damage_in_full_beside_its_arrow():
    """P11 in the diagram: an acknowledgement that records heuristic damage keeps the
    arrow's label short ("ack commit") and says the damage in full in the note beside
    it, so `show` never cuts it off; a plain ack has no note."""
    from bank.views import message_label, sequence_diagram
    ack = {"msg": "ack", "detail": "commit; but Delhi had decided aborted heuristically "
                                   "(heuristic damage)"}
    assert message_label(ack)[:2] == ("ack commit", "but Delhi had decided aborted "
                                                    "heuristically (heuristic damage)")
    assert message_label({"msg": "ack", "detail": "commit"})[:2] == ("ack commit", "")
    trace = [{"ms": 0, "from": "coordinator", "to": "coordinator", "msg": "retry",
              "detail": "waiting for Delhi"},
             {"ms": 1, "from": "Delhi", "to": "coordinator", **ack}]
    text = sequence_diagram({"txid": "T1", "src": "Mumbai/1001", "dst": "Delhi/1002",
                             "amount": "7.00", "outcome": "committed", "state": "committed",
                             "participants": ["Delhi"], "trace": trace})
    assert "but Delhi had decided aborted heuristically (heuristic damage)" in text, text
    assert "[retry: the decision sent again]" in text and "retry: retry" not in text, text


# ---- the activity log of one cluster (A1, A2) ---------------------------------------------

def test_the_activity_log_shows_the_rows_of_its_own_cluster(tmp_path):
    """A1: two clusters sharing one activity file each see only their own rows; --all
    (every=True) shows both; clearing empties the file for both."""
    from bank.activity import ActivityLog
    path = tmp_path / "logs" / "activity.csv"
    first, second = (ActivityLog(path, cluster=f"http://127.0.0.1:{p}") for p in (9000, 9100))
    first.record("shell", "deposit Mumbai/1001 5", ["Mumbai/1001"])
    second.record("shell", "deposit Mumbai/1001 7", ["Mumbai/1001"])
    assert [r["command"] for r in first.rows()] == ["deposit Mumbai/1001 5"]
    assert [r["command"] for r in second.rows("Mumbai/1001")] == ["deposit Mumbai/1001 7"]
    assert len(first.rows(every=True)) == 2
    assert first.clear() == 2 and second.rows(every=True) == []


def test_an_activity_file_from_before_clusters_is_upgraded_not_misaligned(tmp_path):
    """A2: a file with the old header is rewritten once with the cluster column; its old
    rows keep an empty cluster and every column stays in its place."""
    from bank.activity import ActivityLog
    path = tmp_path / "activity.csv"
    path.write_text("ts,source,command,accounts,ok,result\n"
                    "2026-11-25T13:00:00+00:00,shell,balance Mumbai/1001,Mumbai/1001,yes,"
                    "fine\n", encoding="utf-8")
    log = ActivityLog(path, cluster="http://127.0.0.1:9000")
    log.record("shell", "balance Delhi/1001", ["Delhi/1001"], True, "ok")
    every = log.rows(every=True)
    assert path.read_text(encoding="utf-8").splitlines()[0].endswith(",result,cluster")
    assert [(r["command"], r["result"], r["cluster"]) for r in every] == [
        ("balance Mumbai/1001", "fine", ""), ("balance Delhi/1001", "ok", "http://127.0.0.1:9000")]
    assert [r["command"] for r in log.rows()] == ["balance Delhi/1001"]


def test_the_shell_log_hides_other_clusters_and_says_so(sh, bank):
    """A1 in the shell: `log` shows this cluster's rows and counts the others'; `log --all`
    shows them with their cluster."""
    from bank.activity import ActivityLog
    ActivityLog(bank.home / "logs" / "activity.csv", cluster="http://10.0.0.9:9000").record(
        "shell", "deposit Delhi/1001 1", ["Delhi/1001"])
    run(sh, "balance Mumbai/1001")
    out = run(sh, "log")
    assert "balance Mumbai/1001" in out and "deposit Delhi/1001 1" not in out
    assert "1 rows of other clusters" in out and "`log --all`" in out
    out = run(sh, "log --all")
    assert "deposit Delhi/1001 1" in out and "http://10.0.0.9:9000" in out


# ---- the LAN guide (README "Running on a LAN safely", cluster-lan.ini) -----------------------

def lan_commands(text: str, program: str) -> list:
    """The `python PROGRAM ...` commands in a text, joined across backslash line ends."""
    text = re.sub(r"\\\n\s*", " ", text)
    return [re.split(r"[#`;]", line.split(f"python {program}", 1)[1])[0].split()
            for line in text.splitlines() if f"python {program}" in line]


def test_the_lan_guide_says_to_edit_the_addresses_and_gives_every_command():
    """The LAN guide (README and cluster-lan.ini) says to edit the addresses, starts
    branches with lab controls that argparse accepts, and gives the teacher's and the
    students' shell commands, which name cluster-lan.ini and the right keys."""
    import branch
    import shell as shell_main
    readme = (KIT / "README.md").read_text(encoding="utf-8")
    lan = readme.split("## Running on a LAN safely", 1)[1].split("\n## ", 1)[0]
    ini = (KIT / "cluster-lan.ini").read_text(encoding="utf-8")
    assert "Edit the addresses in `cluster-lan.ini`" in lan and "EDIT THE ADDRESSES" in ini
    for text in (lan, ini):
        branches = lan_commands(text, "branch.py")
        assert len(branches) == 2 and all(branch.parse_args(a).allow_faults for a in branches)
        shells = [" ".join(a) for a in lan_commands(text, "shell.py")]
        assert any("--secret-file student.keys" in a and "--config cluster-lan.ini" in a
                   for a in shells), shells
        for args in lan_commands(text, "shell.py"):
            assert shell_main.parse_args(args).config == "cluster-lan.ini"
