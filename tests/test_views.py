"""Views that never mislead (issue 19), staged with real processes as a teacher would.

Rules checked (bank/twopc.py D5, bank/views.py Rules 2 and 3):
  * a vote that timed out is "no answer in time (5 s)", of kind timeout, in the trace,
    the summary and the shell: never a "no", never "cannot be reached";
  * a message refused before it left (a lab partition, in phase 1 or phase 2) is marked
    never sent in the trace and drawn at its sender only, with the reason;
  * a branch that does not answer shows the in-doubt count of the last answer it gave,
    with its age, in `branches`: never a 0 it did not say.

Every test gets its own cluster (Mumbai, Delhi, preloaded) in tmp_path, stopped by the
fixture; the shell runs in-process (onecmd into a StringIO). Waiting is polling with a
deadline, never a bare sleep.
"""

import pathlib
import re
import signal
import sys
import threading

import pytest

KIT = pathlib.Path(__file__).resolve().parent.parent
if str(KIT) not in sys.path:
    sys.path.insert(0, str(KIT))

from shelltest import run, shell_on  # noqa: E402
from bank import views                                       # noqa: E402
from bank.local_cluster import LocalCluster                  # noqa: E402
from polling import wait_for                                 # noqa: E402

pytestmark = pytest.mark.slow

SLOWER_THAN_THE_TIMEOUT = "delay=5.3"      # the coordinator waits 5 s for a vote


@pytest.fixture
def bank(tmp_path):
    cluster = LocalCluster(home=tmp_path, branches=("Mumbai", "Delhi"),
                           branch_args=("--ask-every", "0.3"))
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def sh(bank):
    """A fresh shell on that cluster, writing to a StringIO."""
    return shell_on(bank)



def txid_in(text: str) -> str:
    return re.search(r"txid (C1-[\w-]+)", text).group(1)


def detail(bank, txid: str) -> dict:
    return bank.coordinator().call("transaction", txid)


def finished(bank, txid: str) -> bool:
    return detail(bank, txid)["state"] in ("committed", "aborted")


# ---- a timeout is not a no (cases 2 and 3) ---------------------------------------------------

def test_a_vote_that_timed_out_is_no_answer_in_time_never_a_no(bank, sh):
    """A branch slower than the vote timeout gave no answer in time: its vote is kind
    timeout, shown "no answer in time (5 s)" in the trace, the summary and the shell's
    words, although the transfer aborts; it is never printed as a no or as unreachable,
    and the branch itself did vote yes (it prepared)."""
    bank.client("Delhi").call("fault", SLOWER_THAN_THE_TIMEOUT)
    out = run(sh, "transfer Mumbai/1001 Delhi/1002 10")
    bank.client("Delhi").call("fault", "")
    assert out.startswith("Aborted:"), out
    assert "Delhi gave no vote (no answer in time): waited 5 s" in out, out
    assert "voted no" not in out and "cannot be reached" not in out, out
    txid = txid_in(out)

    txn = detail(bank, txid)
    assert txn["vote_kinds"] == {"Mumbai": "yes", "Delhi": "timeout"}
    assert txn["votes"]["Delhi"] == "no answer in time (5 s)"
    silent = [m for m in txn["trace"] if m["from"] == "Delhi" and m["msg"] == "error"]
    assert silent[0]["kind"] == "timeout"
    assert silent[0]["detail"] == "vote not received: no answer in time (5 s)"

    shown = run(sh, f"show {txid}")
    assert "Votes: Delhi: none arrived - no answer in time (5 s); Mumbai: yes" in shown, shown
    votes_line = next(line for line in shown.splitlines() if line.startswith("Votes:"))
    assert not re.search(r"Delhi:? no\b", votes_line), votes_line
    assert not re.search(r"-\s*vote no\b", shown), shown
    # Delhi did vote yes, late: it prepared, then learned the abort.
    wait_for(lambda: finished(bank, txid), 25, "the abort to reach Delhi")
    journal = bank.client("Delhi").call("status", txid)
    assert journal["state"] == "aborted"


# ---- a message drawn is a message sent (case 5) ---------------------------------------------

def test_a_partition_in_phase_one_sends_nothing_and_the_diagram_says_so(bank, sh):
    """Cut off by a lab partition, Delhi is never sent the prepare or the abort: the
    trace marks each never sent (and no answer from Delhi exists), its vote is kind
    cut-off, and the text diagram draws them at the coordinator only, with the reason."""
    bank.coordinator().call("partition", "Delhi")
    out = run(sh, "transfer Mumbai/1001 Delhi/1002 10")
    assert out.startswith("Aborted:") and "Delhi gave no vote (cut off (lab partition))" \
        in out, out
    txid = txid_in(out)
    txn = detail(bank, txid)
    assert txn["vote_kinds"] == {"Mumbai": "yes", "Delhi": "cut-off"}
    to_delhi = [m for m in txn["trace"] if m["to"] == "Delhi"]
    assert [m["msg"] for m in to_delhi][:2] == ["prepare", "abort"]
    assert all(m["sent"] is False and "never sent: cut off (lab partition)" in m["detail"]
               for m in to_delhi), to_delhi
    assert not [m for m in txn["trace"] if m["from"] == "Delhi"]

    shown = run(sh, f"show {txid}")
    assert "[prepare NOT SENT]" in shown and "[abort NOT SENT]" in shown, shown
    assert len(re.findall(r"-+ prepare -+>\|", shown)) == 1, shown      # Mumbai's only
    bank.coordinator().call("heal", "Delhi")
    wait_for(lambda: finished(bank, txid), 15, "the abort to reach Delhi after heal")


def test_a_partition_in_phase_two_holds_commit_unsent_and_branches_keeps_the_count(bank, sh):
    """Delhi votes yes, then is cut off: every commit to it is never sent (marked so in
    the trace) until heal. Meanwhile `branches` shows Delhi cut off with the in-doubt
    count of its last answer (its yes vote: 1) and that answer's age, never 0."""
    bank.client("Delhi").call("fault", "delay=1.0")            # Delhi's vote takes 1 s
    result = {}
    worker = threading.Thread(target=lambda: result.update(bank.coordinator().call(
        "transfer", "Mumbai/1001", "Delhi/1002", "40")))
    worker.start()
    try:
        def mumbai_voted():
            rows = bank.coordinator().call("transactions", 5)
            return rows and any(m["msg"] == "vote" and m["from"] == "Mumbai"
                                for m in detail(bank, rows[0]["txid"])["trace"])
        wait_for(mumbai_voted, 5, "Mumbai to vote", interval=0.02)
        bank.coordinator().call("partition", "Delhi")     # Delhi's vote is on its way
    finally:
        worker.join(30)
    bank.client("Delhi").call("fault", "")
    assert result["outcome"] == "committed" and result["waiting_for"] == ["Delhi"], result
    txid = result["txid"]

    commits = [m for m in detail(bank, txid)["trace"] if m["to"] == "Delhi"
               and m["msg"] == "commit"]
    assert commits and all(m["sent"] is False for m in commits), commits
    listing = run(sh, "branches")
    delhi = next(line for line in listing.splitlines() if line.startswith("Delhi"))
    assert "cut off" in delhi and re.search(r"\b1 \(as of \d+ s ago\)", delhi), listing
    shown = run(sh, f"show {txid}")
    assert "[commit NOT SENT]" in shown and "never sent: cut off (lab partition)" in shown

    bank.coordinator().call("heal", "Delhi")
    wait_for(lambda: finished(bank, txid), 15, "the commit to reach Delhi after heal")
    sent = [m for m in detail(bank, txid)["trace"] if m["to"] == "Delhi"
            and m["msg"] == "commit" and m.get("sent") is not False]
    assert sent, "after heal the commit really left"
    assert re.search(r"Delhi\s.*\bup\b.*\s0\s*$", next(
        line for line in run(sh, "branches").splitlines() if line.startswith("Delhi")))


# ---- a silent branch's last answer, with its age (case 4) ------------------------------------

def test_a_frozen_branch_is_slow_not_unreachable_and_keeps_its_last_count(bank, sh):
    """A branch that stops answering (SIGSTOP) is shown DOWN with the in-doubt count of
    its last ping, labelled with its age, not a 0 it never said; a call to it "gave no
    answer in time" (it may still happen), never "cannot be reached"."""
    assert re.search(r"^Delhi\s.*\s0\s*$", run(sh, "branches"), re.M)      # it answered
    member = bank.member("Delhi")
    member.proc.send_signal(signal.SIGSTOP)
    try:
        listing = run(sh, "branches")
        deposit = run(sh, "deposit Delhi/1001 5")
        moved = run(sh, "transfer Mumbai/1001 Delhi/1002 7")
    finally:
        member.proc.send_signal(signal.SIGCONT)
    delhi = next(line for line in listing.splitlines() if line.startswith("Delhi"))
    assert "DOWN" in delhi and re.search(r"\b0 \(as of \d+ s ago\)", delhi), listing
    assert deposit.startswith("Outcome not known:") and "gave no answer in time." in deposit
    assert "Delhi gave no vote (no answer in time): waited 5 s" in moved, moved
    assert "cannot be reached" not in deposit + moved


def test_no_votes_after_a_restart_says_why():
    """`show` after a coordinator restart (presumed abort: the log kept no votes) says
    the votes are not known and why, never a bare "Votes: none" beside yes votes the
    branches did give."""
    row = {"ms": 0, "from": "coordinator", "to": "log", "msg": "recovered",
           "detail": "found after a restart: in flight (re-sending)"}
    lines = views._diagram_summary({"trace": [row], "votes": {}})
    assert lines[0].startswith("Votes: none known (the coordinator restarted since")
    assert views._diagram_summary({"trace": [], "votes": {}})[0] == "Votes: none"
