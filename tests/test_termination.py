"""Cooperative termination (P8, P9) and heuristic decisions (P10, P11), with real processes.

Rules checked (bank/core/participant.py; carried out by bank/branch_termination.py):
  * P9 - a branch in doubt whose coordinator is down asks the other participants named
    in its prepare, and applies what one of them knows; it narrates who it asked and
    what it heard (T3); with the default --ask-peers-after it first waits (T1);
  * P9/P6 - when no participant knows, it keeps waiting and keeps its holds, until the
    coordinator is back;
  * P8 - a branch that never voted on a txid records it aborted before answering, so a
    late prepare votes no; an old caller's prepare (no participants) still works;
  * P10/P11 - the teacher's heuristic decision is recorded as heuristic; the
    coordinator's contradicting decision is recorded as damage and acknowledged; the
    shell's `check` names the transaction, who decided what, and the money out of balance;
  * refusals: a heuristic decision of a txid not in doubt, or of a word that is not
    commit or abort, changes nothing and is one sentence with a stable code.

Each process test gets its own cluster in tmp_path, stopped by pid by the fixture.
Waiting is polling with a deadline (tests/polling.py).
"""

import pathlib
import re
import sqlite3
import sys
import time

import pytest

KIT = pathlib.Path(__file__).resolve().parent.parent
if str(KIT) not in sys.path:
    sys.path.insert(0, str(KIT))

from bank import local_cluster as cluster                    # noqa: E402
from bank.clock import txid_second                           # noqa: E402
from bank.errors import BankError, FaultCode                 # noqa: E402
from bank.branch_termination import Termination             # noqa: E402
from bank.ledger import Ledger                               # noqa: E402
from polling import wait_for                                 # noqa: E402
from shelltest import run, shell_on                          # noqa: E402


@pytest.fixture
def bank(tmp_path):
    """Mumbai and Delhi (preloaded) and a coordinator in tmp_path, stopped by pid."""
    local = cluster.LocalCluster(home=tmp_path, branches=("Mumbai", "Delhi"),
                                 branch_args=("--ask-every", "0.3", "--ask-peers-after", "0"))
    try:
        local.start()
        yield local
    finally:
        local.stop()


def crash_coordinator_during_transfer(bank, fault: str) -> str:
    """Arm `fault` at the coordinator, transfer 7.00 Mumbai/1001 -> Delhi/1002, wait for
    the crash; return the txid Mumbai holds prepared."""
    bank.coordinator().call("fault", fault)
    with pytest.raises(BankError):
        bank.coordinator().call("transfer", "Mumbai/1001", "Delhi/1002", "7")
    assert bank.members["coordinator"].wait_exit(10) == 86
    [txn] = wait_for(lambda: bank.client("Mumbai").call("in_doubt"), 10,
                     "Mumbai to hold the transfer prepared")
    return txn["txid"]


def delete_the_log_and_restart_the_coordinator(bank, txid: str) -> None:
    """An operator "starting afresh": delete the recovery log, start the coordinator.
    Only once the second the txid bears has passed, as it has for any operator (Rule 9
    of bank/recovery_log.py: a log whose whole life fell in the second the new one was
    made stays indistinguishable, and a cluster's first txids bear the second after its
    log was made, so a fast test could land there)."""
    stamp = txid.split("-")[1]
    wait_for(lambda: txid_second(time.time()) > stamp, 3, "the txid's second to pass")
    (bank.home / "logs" / "recovery.log").unlink()
    bank.start_member("coordinator")


def log_of(bank, name: str) -> str:
    return (bank.home / "logs" / f"{name}.log").read_text(errors="replace")


def logged(bank, name: str, pattern: str, what: str) -> str:
    """Wait until NAME.log has a line matching `pattern` (a regex); the log's text.

    A branch narrates what it learned after the write (_learn): a reader that saw
    the new state over RPC may be a moment ahead of the line."""
    return wait_for(lambda: re.search(pattern, log_of(bank, name)) and log_of(bank, name),
                    10, what)


def test_p9_a_branch_in_doubt_learns_the_commit_from_its_peer(bank):
    """P9: the coordinator crashed after telling Delhi only (crash-mid-commit); Mumbai, in
    doubt, cannot reach it, asks Delhi, hears "committed" and commits, the coordinator
    still down; its log narrates the question and the answer (T3)."""
    txid = crash_coordinator_during_transfer(bank, "crash-mid-commit")
    mumbai = bank.client("Mumbai")
    assert bank.client("Delhi").call("status", txid)["state"] == "committed"
    assert mumbai.call("status", txid)["peers"] == ["Delhi"]
    wait_for(lambda: mumbai.call("status", txid)["state"] == "committed", 20,
             "Mumbai to learn the commit from Delhi")
    assert not bank.members["coordinator"].alive
    account = mumbai.call("account", "1001")
    assert (account["balance"], account["held"]) == ("9993.00", "0.00")
    text = logged(bank, "Mumbai", rf"learned committed for {re.escape(txid)} from Delhi",
                  "Mumbai to narrate what it learned from Delhi")
    assert f"asking Delhi about {txid}: Delhi says committed." in text
    assert f"Mumbai asked about {txid}; Delhi answers committed." in log_of(bank, "Delhi")


def test_p9_when_no_peer_knows_the_branch_keeps_waiting_and_holding(bank):
    """P9 and P6: the coordinator crashed after forcing commit, before telling anyone;
    each branch asks the other, both answer in-doubt; nothing changes and the 7.00 stays
    held, until the restarted coordinator tells the decision. The log says when it asks
    again as --ask-every gives it (0.3 s, never rounded to "0 s")."""
    txid = crash_coordinator_during_transfer(bank, "crash-after-decision")
    mumbai = bank.client("Mumbai")
    wait_for(lambda: "nobody knows the outcome of " + txid in log_of(bank, "Mumbai"), 20,
             "Mumbai to say that nobody knows")
    assert "Delhi says it does not know either (in doubt too)." in log_of(bank, "Mumbai")
    assert "and asking again in 0.3 s." in log_of(bank, "Mumbai")   # --ask-every, not "0 s"
    assert mumbai.call("status", txid)["state"] == "prepared"
    assert bank.client("Delhi").call("status", txid)["state"] == "prepared"
    assert mumbai.call("account", "1001")["held"] == "7.00"
    bank.restart("coordinator")
    wait_for(lambda: all(bank.client(b).call("status", txid)["state"] == "committed"
                         for b in ("Mumbai", "Delhi")), 20,
             "the restarted coordinator to finish the transfer at both branches")
    assert bank.client("Delhi").call("account", "1002")["balance"] == "5007.00"


def test_t1_by_default_the_peers_are_asked_only_after_a_long_silence(tmp_path):
    """T1: with the default --ask-peers-after (30 s), a branch in doubt whose coordinator
    just went down keeps asking the coordinator and does not ask its peers yet."""
    local = cluster.LocalCluster(home=tmp_path, branches=("Mumbai", "Delhi"),
                                 branch_args=("--ask-every", "0.2"))
    try:
        local.start()
        txid = crash_coordinator_during_transfer(local, "crash-mid-commit")
        wait_for(lambda: log_of(local, "Mumbai").count(f"{txid} is in doubt; asked the "
                                                        "coordinator") >= 3, 20,
                 "Mumbai to ask the coordinator three times")
        assert "asking the other participants" not in log_of(local, "Mumbai")
        assert local.client("Mumbai").call("status", txid)["state"] == "prepared"
    finally:
        local.stop()


def test_p8_a_branch_that_never_voted_answers_aborted_and_votes_no_later(bank):
    """P8: asked about a txid it never saw, Delhi records it aborted first and answers
    "aborted"; a prepare for it arriving later votes no and holds nothing. A prepare
    from an old caller (no participants) still votes and keeps no peers."""
    delhi = bank.client("Delhi")
    answer = delhi.call("outcome", "T-late-1", "Mumbai")
    assert answer == {"txid": "T-late-1", "branch": "Delhi", "outcome": "aborted"}
    assert delhi.call("status", "T-late-1")["state"] == "aborted"
    vote = delhi.call("prepare", "T-late-1", bank.coordinator_url,
                      [{"account": "1001", "delta": "-5.00"}],
                      {"Mumbai": bank.members["Mumbai"].url, "Delhi": delhi.url})
    assert vote["vote"] == "no" and delhi.call("account", "1001")["held"] == "0.00"
    old = delhi.call("prepare", "T-old-1", bank.coordinator_url,
                     [{"account": "1001", "delta": "-5.00"}])
    assert old["vote"] == "yes" and delhi.call("status", "T-old-1")["peers"] == []
    assert delhi.call("outcome", "T-old-1", "Mumbai")["outcome"] == "in-doubt"
    assert "it had not voted: recorded aborted first" in log_of(bank, "Delhi")


def test_p10_p11_a_heuristic_abort_against_a_commit_is_damage_the_check_shows(bank):
    """P10, P11: the teacher forces Delhi to abort while the logged decision is commit;
    the restarted coordinator's commit is recorded at Delhi as damage and acknowledged
    (the transfer ends); `check` names the txid, who decided what, and 7.00 missing, and
    `txns` lists the transfer as committed with heuristic damage at Delhi, also after
    another restart of the coordinator (the end record keeps the damage)."""
    txid = crash_coordinator_during_transfer(bank, "crash-after-decision")
    sh = shell_on(bank)
    out = run(sh, f"heuristic Delhi {txid} abort")
    assert out.startswith(f"Delhi aborted {txid} heuristically"), out
    row = bank.client("Delhi").call("status", txid)
    assert (row["state"], row["heuristic"], row["damage"]) == ("aborted", "aborted", "")
    bank.restart("coordinator")
    delhi, mumbai = bank.client("Delhi"), bank.client("Mumbai")
    wait_for(lambda: delhi.call("status", txid)["damage"] == "committed", 20,
             "Delhi to record the coordinator's commit as damage")
    wait_for(lambda: bank.coordinator().call("transaction", txid)["state"] == "committed", 20,
             "the coordinator to finish the transfer (every branch acknowledged)")
    assert mumbai.call("account", "1001")["balance"] == "9993.00"
    assert delhi.call("account", "1002")["balance"] == "5000.00"
    report = run(shell_on(bank), "check")
    assert (f"{txid}: Delhi decided aborted (heuristic), the coordinator decided "
            "committed: Delhi is 7.00 short of the decision") in report, report
    assert re.search(r"money out of balance \(heuristic damage\)\s+FAIL\s+-7\.00 across "
                     r"branches \(Delhi -7\.00\)", report), report
    trace = bank.coordinator().call("transaction", txid)["trace"]
    assert any("heuristic damage" in m["detail"] for m in trace)
    assert bank.coordinator().call("transaction", txid)["damaged"] == ["Delhi"]
    listed = run(shell_on(bank), "txns committed")               # said where it is listed
    assert "committed, but heuristic damage at Delhi (see check)" in listed, listed
    bank.restart("coordinator")           # known from the log's end record only: still said
    wait_for(lambda: bank.coordinator().call("transaction", txid)["damaged"] == ["Delhi"], 20,
             "the restarted coordinator to list the damage")
    listed = run(shell_on(bank), "txns committed")
    assert "committed, but heuristic damage at Delhi (see check)" in listed, listed


def test_p11_under_presumed_commit_a_heuristic_abort_still_learns_the_commit(tmp_path):
    """P11 with C12: under presumed commit the restarted coordinator finds the forced
    commit and tells nobody (no acknowledgement is awaited), so the branch the teacher
    forced to abort asks for the decision itself: it records the commit as damage, and
    `check` fails with 7.00 missing. (It never asked: the damage stayed 'the coordinator
    has not told it yet' for good, while Mumbai committed from its own query.)"""
    with cluster.LocalCluster(home=tmp_path, branches=("Mumbai", "Delhi"),
                              coordinator_args=("--presumption", "commit"),
                              branch_args=("--ask-every", "0.3")) as bank:
        txid = crash_coordinator_during_transfer(bank, "crash-after-decision")
        delhi, mumbai = bank.client("Delhi"), bank.client("Mumbai")
        assert delhi.call("heuristic", txid, "abort")["heuristic"] == "aborted"
        bank.restart("coordinator")
        wait_for(lambda: mumbai.call("status", txid)["state"] == "committed", 20,
                 "Mumbai to learn the commit from the restarted coordinator")
        wait_for(lambda: delhi.call("status", txid)["damage"] == "committed", 20,
                 "Delhi to ask for the decision and record the commit as damage")
        report = run(shell_on(bank), "check")
        assert (f"{txid}: Delhi decided aborted (heuristic), the coordinator decided "
                "committed: Delhi is 7.00 short of the decision") in report, report
        logged(bank, "Delhi", "heuristic damage recorded", "Delhi to narrate the damage")


def test_t1_a_coordinator_in_doubt_on_a_damaged_log_lets_the_branch_ask_its_peers(bank):
    """T1 with C9 and P9: the coordinator crashed after telling Delhi the commit (Delhi
    committed and crashed before its ack), and the commit record in its log was
    damaged; started with --accept-damaged-log it answers "in-doubt", and will until an
    operator restores the log. Once Delhi is back, Mumbai, in doubt, asks it, hears
    "committed" and commits: the bank's total is whole again. (It asked only the
    coordinator, forever, while Delhi knew.)"""
    bank.client("Delhi").call("fault", "crash-after-commit")
    txid = crash_coordinator_during_transfer(bank, "crash-mid-commit")
    assert bank.members["Delhi"].wait_exit(10) == 86
    log_path = bank.home / "logs" / "recovery.log"
    lines = log_path.read_bytes().splitlines(keepends=True)
    i = next(k for k, raw in enumerate(lines) if raw.split()[1] == b"commit")
    lines[i] = lines[i].replace(txid.encode(), txid[:-1].encode() + b"#", 1)
    log_path.write_bytes(b"".join(lines))
    bank.start_member("coordinator", extra=("--accept-damaged-log",))
    coord, mumbai = bank.coordinator(), bank.client("Mumbai")
    assert coord.call("decision", txid)["decision"] == "in-doubt"
    wait_for(lambda: any(m["msg"] == "query" and m["from"] == "Mumbai"
                         for m in coord.call("transaction", txid)["trace"]),
             20, "Mumbai to ask the coordinator for the decision")
    assert mumbai.call("status", txid)["state"] == "prepared"
    bank.restart("Delhi")
    assert bank.client("Delhi").call("status", txid)["state"] == "committed"
    wait_for(lambda: mumbai.call("status", txid)["state"] == "committed", 20,
             "Mumbai to learn the commit from Delhi")
    assert mumbai.call("account", "1001")["balance"] == "9993.00"
    assert bank.client("Delhi").call("account", "1002")["balance"] == "5007.00"
    assert "is in doubt itself (its recovery log is damaged, or newer than the txid); " \
           "asking the other participants (Delhi)" in log_of(bank, "Mumbai")


def test_c14_a_new_log_never_presumes_about_a_transaction_of_the_old_one(bank):
    """C14 with T1 and P9: the coordinator crashed after telling Delhi the commit (Delhi
    committed and crashed before its ack), and then its recovery log was deleted, as
    an operator "starting afresh" might. The new log answers "in-doubt" for the old
    txid, never "aborted" (before: Mumbai aborted, and when Delhi came back the bank
    held 7.00 more than before: Delhi's credit without Mumbai's debit). Mumbai keeps
    the money held, and once Delhi is back it learns the commit from Delhi."""
    bank.client("Delhi").call("fault", "crash-after-commit")
    txid = crash_coordinator_during_transfer(bank, "crash-mid-commit")
    assert bank.members["Delhi"].wait_exit(10) == 86
    delete_the_log_and_restart_the_coordinator(bank, txid)
    coord, mumbai = bank.coordinator(), bank.client("Mumbai")
    assert coord.call("decision", txid)["decision"] == "in-doubt"
    wait_for(lambda: f"{txid} is in doubt and the coordinator at {coord.url} is in doubt "
             "itself" in log_of(bank, "Mumbai"), 20, "Mumbai to hear the new coordinator "
             "is in doubt too, and to ask Delhi (down)")
    assert mumbai.call("status", txid)["state"] == "prepared"
    bank.restart("Delhi")
    wait_for(lambda: mumbai.call("status", txid)["state"] == "committed", 20,
             "Mumbai to learn the commit from Delhi")
    assert mumbai.call("account", "1001")["balance"] == "9993.00"
    assert bank.client("Delhi").call("account", "1002")["balance"] == "5007.00"


def test_p11_a_heuristic_abort_of_a_gone_logs_txid_learns_the_commit_from_a_peer(bank):
    """P11 with C14 and P9: the coordinator crashed after telling Delhi the commit (Delhi
    committed and crashed before its ack), and its recovery log was then deleted; the
    operator forced Mumbai's txn to abort (heuristic). The new log answers "in-doubt"
    for good, so Mumbai asks Delhi too, once it is back, and records the commit beside
    its abort: the damage (7.00 out of balance) is shown by the audit. (It asked the
    coordinator only, forever: 'not known here yet', no damage, while the bank held 7.00
    more than it should.)"""
    bank.client("Delhi").call("fault", "crash-after-commit")
    txid = crash_coordinator_during_transfer(bank, "crash-mid-commit")
    assert bank.members["Delhi"].wait_exit(10) == 86
    delete_the_log_and_restart_the_coordinator(bank, txid)
    assert bank.coordinator().call("decision", txid)["decision"] == "in-doubt"
    mumbai = bank.client("Mumbai")
    assert mumbai.call("heuristic", txid, "abort")["state"] == "aborted"
    bank.restart("Delhi")
    [row] = wait_for(lambda: [h for h in mumbai.call("heuristics") if h["told"]], 20,
                     "Mumbai to learn the commit from Delhi, beside its heuristic abort")
    assert (row["txid"], row["heuristic"], row["told"], row["damage"]) == \
        (txid, "aborted", "committed", "committed")
    [damaged] = mumbai.call("audit")["heuristics"]
    assert damaged["damaged"] and damaged["coordinator"] == "committed"
    assert mumbai.call("account", "1001")["balance"] == "10000.00"      # nothing undone
    logged(bank, "Mumbai", "heuristic damage recorded", "Mumbai to narrate the damage")


def test_heuristic_refusals_change_nothing(bank):
    """P10/P7: a heuristic decision of a txid that is not in doubt is refused (409) and of
    a word other than commit/abort (400), each in one sentence; nothing changes."""
    mumbai = bank.client("Mumbai")
    done = bank.coordinator().call("transfer", "Mumbai/1001", "Delhi/1002", "5")
    before = mumbai.call("status", done["txid"])
    with pytest.raises(BankError) as refused:
        mumbai.call("heuristic", done["txid"], "abort")
    assert refused.value.code == FaultCode.PROTOCOL_VIOLATION
    assert "it is committed here" in refused.value.message
    with pytest.raises(BankError) as bad:
        mumbai.call("heuristic", done["txid"], "maybe")
    assert bad.value.code == FaultCode.BAD_INPUT and "nothing was changed" in bad.value.message
    assert mumbai.call("status", done["txid"]) == before
    assert mumbai.call("heuristics") == []


def test_a_database_from_before_the_new_columns_opens_with_them_empty(tmp_path):
    """A branch database written before peers/heuristic/damage existed gains the columns
    (empty) when opened, and its prepared transaction keeps working."""
    path = tmp_path / "Old.db"
    with sqlite3.connect(path) as db:
        db.executescript("""
            CREATE TABLE txns(txid TEXT PRIMARY KEY, coordinator TEXT NOT NULL,
              ops TEXT NOT NULL, state TEXT NOT NULL CHECK (state IN ('prepared',
              'committed', 'aborted')), reason TEXT NOT NULL DEFAULT '',
              created TEXT NOT NULL, decided TEXT);
            INSERT INTO txns VALUES ('T-old', 'http://c', '[]', 'aborted', '', 'x', 'y');""")
    db.close()
    ledger = Ledger(path, "Old")
    try:
        row = ledger.status("T-old")
        assert (row["state"], row["peers"], row["heuristic"], row["damage"]) == \
            ("aborted", [], "", "")
    finally:
        ledger.close()


def test_the_shell_heuristic_names_a_branch_like_other_commands(bank):
    """P10 from the shell: a branch name is matched without regard to case (`mumbai` is
    Mumbai), and a branch the bank does not have is refused in one sentence, never a
    traceback or a KeyError; nothing changes either way."""
    mumbai = bank.client("Mumbai")
    done = bank.coordinator().call("transfer", "Mumbai/1001", "Delhi/1002", "5")
    sh = shell_on(bank)
    unknown = run(sh, f"heuristic Pune {done['txid']} abort")
    assert unknown.startswith("Error: There is no branch 'Pune'; the branches are"), unknown
    assert "KeyError" not in unknown and len(unknown.strip().splitlines()) == 1, unknown
    lower = run(sh, f"heuristic mumbai {done['txid']} abort")
    assert "it is committed here" in lower, lower              # Mumbai itself refused it
    assert mumbai.call("heuristics") == []
    assert mumbai.call("status", done["txid"])["state"] == "committed"


def test_t5_a_replicated_primary_restarted_in_doubt_waits_for_its_lease_in_words(tmp_path):
    """T5: a replicated primary restarted with a transaction in doubt asks the coordinator
    at once, before its first lease arrives; the decision it learns cannot be written yet
    (R8). That refusal is one sentence in the branch's terminal, never a traceback of the
    termination loop, and the decision is applied once the lease holds."""
    with cluster.LocalCluster(home=tmp_path, branches=("Mumbai", "Delhi"),
                              replicas=1) as bank:
        bank.client("Mumbai").call("fault", "crash-after-vote")
        done = bank.coordinator().call("transfer", "Mumbai/1001", "Delhi/1002", "7")
        assert done["outcome"] == "aborted"                 # its yes vote never arrived
        assert bank.members["Mumbai"].wait_exit(10) == 86
        bank.restart("Mumbai")
        mumbai = bank.client("Mumbai")
        wait_for(lambda: mumbai.call("status", done["txid"])["state"] == "aborted", 30,
                 "Mumbai to apply the abort once its lease holds")
        assert mumbai.call("in_doubt") == []
        text = log_of(bank, "Mumbai")
        assert "Traceback" not in text and "termination loop" not in text, text[-3000:]


class _Learner(Termination):
    """Just enough of a branch for _learn: it is its own ledger, whose every commit or
    abort is refused with `refusal`."""

    def __init__(self, refusal):
        self.ask_every, self._silent_since, self.ledger = 2.0, {}, self
        self.refusal = refusal

    def commit(self, txid):
        raise self.refusal

    abort = commit

    def _write(self, operation, *args):
        return operation(*args)


@pytest.mark.parametrize("refusal, not_now", [
    (BankError(FaultCode.UNAVAILABLE, "Mumbai holds no lease."), True),       # R8
    (BankError(FaultCode.NOT_PRIMARY, "Mumbai is fenced."), True),            # R4
    (BankError(FaultCode.PROTOCOL_VIOLATION, "Mumbai refuses to commit T1: it is "
                                             "aborted here."), False),        # P7: a bug
    (BankError(FaultCode.UNKNOWN_TXN, "No such transaction."), False)])
def test_t5_only_a_refusal_that_may_pass_is_asked_about_again(refusal, not_now):
    """T5: a learned decision the role refuses to write for now (no lease, R8; fenced,
    R4) leaves the txn prepared, to be asked about again (0 resolved); any other refusal,
    such as a protocol violation, is a bug: it is raised, so the termination loop logs
    its traceback, never one quiet line repeated at every tick."""
    learner = _Learner(refusal)
    if not_now:
        assert learner._learn("T1", "committed", "the coordinator") == 0
    else:
        with pytest.raises(BankError) as raised:
            learner._learn("T1", "committed", "the coordinator")
        assert raised.value is refusal
