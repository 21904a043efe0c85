"""The shell (shell.py, bank/shell/) on a real local cluster: commands, errors, diagrams, scripts.

One cluster (Mumbai and Delhi preloaded, a coordinator) runs for the whole module in a
scratch home; each test drives a fresh BankShell with onecmd() and a StringIO, or runs
`python shell.py --home HOME` as a subprocess that attaches to that cluster. Tests that
need exact balances open their own accounts, so they do not depend on each other.
Waiting is polling with a deadline, never a bare sleep.
"""

import csv
import inspect
import io
import pathlib
import re
import sqlite3
import subprocess
import sys
import time

import pytest

KIT = pathlib.Path(__file__).resolve().parent.parent
if str(KIT) not in sys.path:
    sys.path.insert(0, str(KIT))

from bank import local_cluster as cluster   # noqa: E402
from bank import shell     # noqa: E402
from shelltest import run, shell_on  # noqa: E402
from polling import wait_for  # noqa: E402
from bank import views     # noqa: E402

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def bank(tmp_path_factory):
    """A running local cluster in a scratch home, stopped (by pid) at the end."""
    local = cluster.LocalCluster(home=tmp_path_factory.mktemp("bank")).start()
    yield local
    local.stop()


@pytest.fixture
def sh(bank):
    """A fresh shell on that cluster, writing to a StringIO."""
    return shell_on(bank)



def wait_until(predicate, timeout=15.0):
    """Poll `predicate` until it is true or the deadline passes; return its last value."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.1)


def wait_for_output(sh, line: str, text: str, timeout=15.0) -> str:
    """Run `line` until its output contains `text` (or the deadline passes); the output."""
    outputs = []
    wait_until(lambda: outputs.append(run(sh, line)) or text in outputs[-1], timeout)
    return outputs[-1]


def new_account(sh, branch: str, amount: str) -> str:
    out = run(sh, f"open {branch} Test Owner {amount}")
    return re.search(r"Opened (\S+/\d+)", out).group(1)


def balance(bank, ref: str) -> str:
    return bank.coordinator().call("account", ref)["balance"]


def txid_in(text: str) -> str:
    return re.search(r"txid (C1-[\w-]+)", text).group(1)


def shell_cli(bank, *args, stdin=""):
    return subprocess.run([sys.executable, str(KIT / "shell.py"), "--home", str(bank.home),
                           *args], input=stdin, capture_output=True, text=True, timeout=60)


# ---- money commands ---------------------------------------------------------------------

def test_open_with_an_amount_for_an_owner_is_refused(sh):
    """`open Delhi 500` (the owner forgotten) opens nothing: one sentence with the usage,
    instead of an account owned by "500"; a quoted number is still a name."""
    out = run(sh, "open Delhi 500")
    assert "looks like an amount" in out and out.count("\n") == 1 and sh.failures == 1
    assert "Opened Delhi/" in run(sh, 'open Delhi "007" 5')


@pytest.mark.parametrize("amount", ["1e3", "1_000", "\u0661\u0660\u0660", "\uff15\uff10\uff10"],
                         ids=["exponent", "underscore", "arabic-indic", "full-width"])
def test_open_with_a_number_the_money_parser_refuses_opens_nothing(sh, bank, amount):
    """Every refused input changes nothing and gets one sentence: `open Delhi Meera 1e3`
    (or 1_000, Arabic-Indic or full-width digits) is refused as an amount, as `deposit`
    refuses it, instead of opening an account for "Meera 1e3" with 0.00."""
    before = len(bank.coordinator().call("accounts", "Delhi"))
    out = run(sh, f"open Delhi Meera {amount}")
    assert "is not a valid amount" in out and out.count("\n") == 1, out
    assert "Opened" not in run(sh, f"open Delhi {amount}")
    assert len(bank.coordinator().call("accounts", "Delhi")) == before
    assert sh.failures == 2


def test_a_command_with_a_control_character_is_refused_and_not_logged(sh, bank):
    """A line with a control character (an escape code typed or pasted) is refused with
    one sentence before it runs: nothing is opened, and the escape never reaches the
    activity log, whose `log` would print it to a terminal again."""
    before = len(bank.coordinator().call("accounts", "Delhi"))
    out = run(sh, "open Delhi Meera\x1b[31m 5")
    assert "(U+001B)" in out and "Nothing was done" in out and out.count("\n") == 1
    assert len(bank.coordinator().call("accounts", "Delhi")) == before
    assert "\x1b" not in run(sh, "log")
    assert "Opened Delhi/" in run(sh, "open Delhi Meera\tIyer 5")     # a tab is a space


def test_deposit_adds_money_and_says_the_new_balance(sh, bank):
    """A deposit changes the balance by exactly the amount and reports the new balance."""
    ref = new_account(sh, "Mumbai", "100")
    out = run(sh, f"deposit {ref} 25.50")
    assert f"Deposited 25.50 into {ref}; balance 125.50" in out
    assert balance(bank, ref) == "125.50" and sh.failures == 0


def test_cross_branch_transfer_commits(sh, bank):
    """A transfer between branches commits: money leaves one branch and arrives at the other."""
    src, dst = new_account(sh, "Mumbai", "300"), new_account(sh, "Delhi", "0")
    out = run(sh, f"transfer {src} {dst} 120")
    assert out.startswith(f"Committed: moved 120.00 from {src} to {dst}")
    assert (balance(bank, src), balance(bank, dst)) == ("180.00", "120.00")


def test_transfer_without_funds_aborts_and_names_the_available_amount(sh, bank):
    """Insufficient funds: the transfer aborts, says what is available, moves nothing."""
    src, dst = new_account(sh, "Mumbai", "50"), new_account(sh, "Delhi", "0")
    out = run(sh, f"transfer {src} {dst} 80")
    assert out.startswith("Aborted:") and "insufficient funds" in out
    assert "50.00 available" in out and "no money moved" in out
    assert sh.failures == 1
    assert (balance(bank, src), balance(bank, dst)) == ("50.00", "0.00")


@pytest.mark.parametrize("amount", ["1.234", "-5", "abc", "0", "1e3", "5,00"])
def test_a_bad_amount_gets_one_sentence_saying_what_is_accepted(sh, amount):
    """A bad amount is refused locally with one line that says what is accepted."""
    out = run(sh, f"deposit Mumbai/1001 {amount}")
    assert out.count("\n") == 1 and "is not a valid amount" in out
    assert 'like "500" or "500.50"' in out and "Traceback" not in out


@pytest.mark.parametrize("line, expected", [
    ("balance Mumbai/9999", "There is no account Mumbai/9999."),
    ("balance Mumbai1001", "write it as BRANCH/NUMBER, like Mumbai/1001"),
    ("balance Pune/1001", "There is no branch 'Pune'"),
    ("balance mumbai/1001", "did you mean Mumbai?"),
    ("transfer Mumbai/1001 Delhi/1002", "Usage: transfer SRC DST AMOUNT (for example:"),
    ("open Delhi \"Meera", "A quote is not closed"),
    ("balance Mumbai/ 1001", "with no space: write Mumbai/1001, not 'Mumbai/ 1001'"),
    ("transfer Mumbai/ 1001 Delhi/1002 5", "with no space: write Mumbai/1001"),
    ("deposit Mumbai /1001 5", "with no space: write Mumbai/1001, not 'Mumbai /1001'"),
    ("deposit Mumbai/ 5", "'Mumbai/ 5' is not an account (BRANCH/NUMBER in one word"),
    ("transfer Mumbai/ Delhi/1002 5", "'Mumbai/' is not an account; write it as BRANCH"),
])
def test_every_error_is_one_sentence_and_the_shell_goes_on(sh, line, expected):
    """Errors are one plain line (no traceback), count as failures, and the shell keeps
    going. An account typed with a space is named, and joined only where that leaves
    the command its other words ("deposit Mumbai/ 5" lacks a number, not a space)."""
    out = run(sh, line)
    assert expected in out and out.count("\n") == 1 and "Traceback" not in out
    assert sh.failures == 1
    assert "Mumbai/1001 (Asha Rao)" in run(sh, "balance Mumbai/1001") and sh.failures == 1


def test_a_typo_gets_a_suggestion(sh):
    """An unknown command is answered with the closest commands (difflib); a word the
    handouts use for a command ("the audit shows the damage") points to that command."""
    out = run(sh, "tranfer Mumbai/1001 Delhi/1002 5")
    assert "Unknown command 'tranfer', did you mean 'transfer'?" in out
    assert "did you mean 'balance'" in run(sh, "balanse Mumbai/1001")
    assert "Unknown command 'audit', did you mean 'check'? Type help" in run(sh, "audit")


# ---- check and show ---------------------------------------------------------------------

def test_check_passes_on_a_quiet_bank(sh):
    """With nothing in flight: money conserved, no negative balance, journals reconcile."""
    out = wait_for_output(sh, "check", "All checks passed.")
    assert "All checks passed." in out, out
    for name in ("money conserved", "no negative balance", "journals reconcile",
                 "in-doubt transactions"):
        assert re.search(rf"{name}\s+ok", out), name


def test_audit_catches_money_created_and_a_journal_that_does_not_add_up():
    """The audit fails when transfers create money or a journal differs from its balance."""
    books = [{"branch": "Mumbai", "accounts": 1, "journal_rows": 2, "total": "150.00",
              "held": "0.00", "brought_in": "100.00", "negative": [], "holds": [],
              "mismatched": [{"account": "1", "balance": "150.00",
                              "journal_total": "140.00"}]}]
    rows = {r[0]: r[1] for r in views.audit(books, [], [])}
    assert rows["money conserved"] == "FAIL" and rows["journals reconcile"] == "FAIL"


def test_audit_names_the_role_of_a_server_that_is_not_a_primary_in_words():
    """"books from a primary" says "a fenced server" (it said "a fenced:")."""
    books = [{"branch": "Mumbai", "accounts": 1, "journal_rows": 1, "total": "1.00",
              "held": "0.00", "brought_in": "1.00", "negative": [], "holds": [],
              "mismatched": [], "role": role, "url": "http://127.0.0.1:9100"}
             for role in ("fenced", "replica")]
    detail = {r[0]: r[2] for r in views.audit(books, [], [])}["books from a primary"]
    assert "9100, a fenced server;" in detail and "9100, a replica:" in detail, detail


def test_check_is_exact_past_ten_thousand_journal_rows(sh, bank):
    """check reconciles every journal row, however many: a healthy branch with more than
    10,000 rows passes. (The rows are written straight into Mumbai's SQLite file, as one
    transaction of 10,001 one-paisa deposits: 10,001 fsynced RPCs would take minutes.)"""
    ref = new_account(sh, "Mumbai", "0")
    number, deposits = ref.split("/")[1], 10_001
    db = sqlite3.connect(bank.home / "data" / "Mumbai.db", isolation_level=None, timeout=30)
    try:
        db.execute("BEGIN IMMEDIATE")
        db.executemany("INSERT INTO journal(ts, account, kind, amount, balance_after) "
                       "VALUES ('2026-01-01T00:00:00.000+00:00', ?, 'deposit', 1, ?)",
                       [(number, k) for k in range(1, deposits + 1)])
        db.execute("UPDATE accounts SET balance = balance + ? WHERE number = ?",
                   (deposits, number))
        db.execute("COMMIT")
    finally:
        db.close()
    sh.start_total = None
    out = wait_for_output(sh, "check", "All checks passed")
    assert "All checks passed" in out and re.search(r"journals reconcile\s+ok", out), out
    assert balance(bank, ref) == "100.01"


def test_only_a_branchs_latest_refusal_counts_as_refusing():
    """views.refusals: a waiting branch whose latest answer is a refusal (its trace row
    carries fault code 409) refuses; one that is only unreachable (503), or that
    acknowledged since, does not. The code decides, never the words."""
    def answer(branch, msg, detail="", code=None):
        return {"ms": 0, "from": branch, "to": "coordinator", "msg": msg, "detail": detail,
                **({"code": code} if code else {})}
    refused = "no ack: Delhi refuses to commit T: it is unknown here."
    silent = "no ack: branch Pune at http://127.0.0.1:1 cannot be reached."
    txn = {"txid": "T", "waiting_for": ["Delhi", "Pune"],
           "trace": [answer("Mumbai", "error", refused.replace("Delhi", "Mumbai"), 409),
                     answer("Mumbai", "ack", "commit"), answer("Delhi", "error", silent, 503),
                     answer("Delhi", "error", refused, 409), answer("Pune", "error", silent),
                     answer("Pune", "error", "no ack: Pune refuses to commit (words only)")]}
    assert views.refusals(txn) == [("Delhi", "Delhi refuses to commit T: it is unknown here.")]
    txn["trace"].append(answer("Delhi", "error", silent.replace("Pune", "Delhi")))
    assert views.refusals(txn) == []


def test_show_draws_a_committed_transfer(sh):
    """show TXID: prepare to both, two yes votes, COMMIT logged, commits, acks, end: in order."""
    src, dst = new_account(sh, "Mumbai", "10"), new_account(sh, "Delhi", "0")
    txid = txid_in(run(sh, f"transfer {src} {dst} 5"))
    out = run(sh, f"show {txid}")
    assert "Outcome: committed" in out
    assert re.search(r"^\s+ms\s+coordinator\s+log\s+Delhi\s+Mumbai$", out, re.M)
    order = [r"\|-+ begin -+>\|", r"-+ prepare -+>\|", r"\|<-+ vote yes -+\|",
             r"\|-+ COMMIT -+>\|", r"-+ commit -+>\|", r"\|<-+ ack commit -+\|",
             r"\|-+ end -+>\|"]
    positions = [re.search(p, out).start() for p in order]
    assert positions == sorted(positions), out
    assert len(re.findall(r"vote yes", out)) == 2 and "forced to disk" in out
    assert f"Delhi/{dst.split('/')[1]} +5.00" in out


def test_show_draws_an_aborted_transfer(sh):
    """show TXID of an abort: a no vote with its reason, ABORT logged, aborts sent, no COMMIT."""
    src, dst = new_account(sh, "Mumbai", "1"), new_account(sh, "Delhi", "0")
    txid = txid_in(run(sh, f"transfer {src} {dst} 5"))
    out = run(sh, f"show {txid}")
    assert "Outcome: aborted" in out and "COMMIT" not in out
    assert re.search(r"\|<-+ vote no -+\|\s+insufficient funds", out)
    assert re.search(r"\|-+ ABORT -+>\|", out) and len(re.findall(r" abort -+>\|", out)) == 2
    assert "Votes: Delhi: yes; Mumbai: no: insufficient funds" in out


def test_show_finds_a_transfer_by_its_request_id(sh, bank):
    """The request id the shell sent is enough to look a transfer up (Rule 3)."""
    src, dst = new_account(sh, "Mumbai", "10"), new_account(sh, "Delhi", "0")
    txid = txid_in(run(sh, f"transfer {src} {dst} 1"))
    request_id = bank.coordinator().call("transaction", txid)["request_id"]
    assert request_id.startswith("shell-")
    assert f"Transfer {txid}" in run(sh, f"show {request_id}")


def test_retries_are_folded_in_the_diagram():
    """A run of identical retry rounds is drawn once plus a 'repeated N more times' row."""
    trace = [{"ms": 0, "from": "coordinator", "to": "log", "msg": "begin", "detail": ""}]
    for i in range(5):
        trace += [{"ms": i, "from": "coordinator", "to": "coordinator", "msg": "retry",
                   "detail": "waiting for Delhi"},
                  {"ms": i, "from": "coordinator", "to": "Delhi", "msg": "commit", "detail": ""},
                  {"ms": i, "from": "Delhi", "to": "coordinator", "msg": "error",
                   "detail": "no ack"}]
    txn = {"txid": "T", "src": "Mumbai/1", "dst": "Delhi/2", "amount": "1.00",
           "participants": ["Delhi"], "trace": trace, "state": "committing",
           "outcome": "committed", "waiting_for": ["Delhi"], "votes": {"Delhi": "yes"}}
    out = views.sequence_diagram(txn)
    assert "the 3 message(s) above repeated 4 more time(s)" in out
    assert out.count("[retry]") == 1 and "|x" in out
    assert "Still waiting: Delhi has not acknowledged it yet" in out


def test_a_decided_commit_not_yet_applied_is_in_doubt_in_the_shell_as_in_the_window(sh, bank):
    """One mapping (views.txn_category): a transfer whose commit is durable but not yet
    applied by a branch ("committing") is listed as in doubt, never as committed."""
    src, dst = new_account(sh, "Mumbai", "10"), new_account(sh, "Delhi", "0")
    assert "Armed crash-before-commit on Delhi" in run(sh, "fault Delhi crash-before-commit")
    try:
        txid = txid_in(run(sh, f"transfer {src} {dst} 2"))
        in_doubt = run(sh, "txns in-doubt 1000")
        assert txid in in_doubt and "in doubt: committed, waiting for Delhi" in in_doubt
        assert txid not in run(sh, "txns committed 1000")
    finally:
        run(sh, "restart Delhi")
    assert txid in wait_for_output(sh, "txns committed 1000", txid)
    assert txid not in run(sh, "txns in-doubt 1000")


@pytest.mark.parametrize("line, expected", [
    ("journal Mumbai \u00b2", "is not a number of rows"),
    ("journal \u00b2", "is not a number of rows"),
    ("journal Mumbai/1001 abc", "is not a number of rows"),
    ("log \u00b2", "is not an account"),
    ("log 0", "The limit must be a whole number from 1 to 10000."),
    ("txns \u00b3", "is not a state"),
    ("txns \u0663", "is not a state"),
])
def test_counts_are_ascii_digits_only(sh, line, expected):
    """A superscript or non-ASCII digit is not a row count: one sentence, never a ValueError;
    nor is 0 (`log 0` printed every row, then said rows were not shown)."""
    out = run(sh, line)
    assert expected in out and out.count("\n") == 1, out
    assert "failed on this command" not in out and "ValueError" not in out


@pytest.mark.parametrize("line", ["txns in-doubt -3", "txns 99999999999999", "txns +5",
                                  "log Mumbai/1001 -5", "log 99999999999999",
                                  "journal 1234567"])
def test_a_number_that_is_not_a_row_count_is_named_as_one(sh, line):
    """A negative, signed or too long number where a row count goes is "not a number of
    rows", as `journal` says, not "not a state" (txns) or "not an account" (log)."""
    out = run(sh, line)
    assert "is not a number of rows" in out and out.count("\n") == 1, out
    assert "is not a state" not in out and "is not an account" not in out, out
    assert "a whole number from 1 to 10000" in out, out   # (99999999999999 is whole)


def test_help_with_more_than_one_word_gets_its_usage(sh):
    """`help help help` is a usage error (help takes one command), not "Unknown command
    'help', did you mean 'help'?"."""
    out = run(sh, "help help help")
    assert out.startswith("Usage: help [COMMAND]") and out.count("\n") == 1, out
    assert run(sh, "help transfer").startswith("transfer SRC DST AMOUNT: move money")


# ---- crashes, faults, partitions --------------------------------------------------------

def test_crash_and_restart_a_branch(sh, bank):
    """A crashed branch shows DOWN, a transfer to it aborts, and after restart all settles."""
    src = new_account(sh, "Mumbai", "10")
    assert run(sh, "crash Delhi").startswith("Crashed Delhi")
    assert re.search(r"Delhi\s+\S+\s+DOWN", run(sh, "branches"))
    out = run(sh, f"transfer {src} Delhi/1001 3")
    assert out.startswith("Aborted:") and "cannot be reached" in out
    assert run(sh, "restart Delhi").startswith("Restarted Delhi at http://127.0.0.1:")
    assert "Delhi/1001 (Asha Rao)" in run(sh, "balance Delhi/1001")
    assert "(nothing to show)" in wait_for_output(sh, "txns in-doubt", "(nothing to show)")
    assert balance(bank, src) == "10.00"


def test_an_unreachable_member_is_named_with_how_to_start_it_again(sh, bank):
    """On a local cluster, a command refused because a member is down ends with the
    command that starts it again: `restart Delhi` for a branch (a lab control armed on
    it), `restart coordinator` for the coordinator; a failover the coordinator's death
    cut short also says that asking again finishes it (M5's record says where it got)."""
    assert run(sh, "crash Delhi").startswith("Crashed Delhi")
    out = run(sh, "fault Delhi crash-before-commit")
    assert "cannot be reached" in out and out.rstrip().endswith(
        "; `restart Delhi` starts it again."), out
    assert run(sh, "restart Delhi").startswith("Restarted Delhi")
    assert run(sh, "crash coordinator").startswith("Crashed coordinator")
    out = run(sh, "failover Mumbai")
    assert "`restart coordinator` starts it again; then the same `failover` again " \
        "finishes a failover it had begun." in out, out
    assert run(sh, "restart coordinator").startswith("Restarted coordinator")


def test_a_cluster_stopped_under_the_shell_is_not_half_restarted(tmp_path):
    """`python cluster.py stop` while a shell is attached: the shell says the cluster was
    stopped and how to start it again, and refuses `restart` (one member alone would make
    half a bank), instead of suggesting `restart coordinator`. Once a new start runs in
    the same home (same ports, same keys), the old shell still says so, and its exit
    never stops the new cluster (L1: only its own run's record)."""
    local = cluster.LocalCluster(home=tmp_path, branches=("Mumbai",)).start()
    newer = None
    try:
        sh = shell_on(local)
        assert cluster.stop_running(tmp_path)
        out = run(sh, "txns committed")
        assert "was stopped" in out and "restart coordinator" not in out, out
        assert "was stopped" in run(sh, "restart coordinator")
        wait_for(lambda: all(not m.alive for m in local.members.values()), 10,
                 "every member of the stopped cluster to be gone (none started again)")
        newer = cluster.LocalCluster(home=tmp_path, branches=("Mumbai",)).start()
        assert "was stopped" in run(sh, "balance Mumbai/1001")
        assert local.stop_unless_kept()                 # the old shell quits...
        assert all(m.alive for m in newer.members.values()), "it stopped the new cluster"
        assert cluster.LocalCluster.attach(tmp_path) is not None
    finally:
        local.stop()
        if newer is not None:
            newer.stop()


def test_coordinator_crash_after_decision_is_reported_as_not_known(sh, bank):
    """If the answer is lost, the shell says 'not known' (never 'aborted') and the activity
    log says "unknown" (never "no"); show tells later."""
    src, dst = new_account(sh, "Mumbai", "10"), new_account(sh, "Delhi", "0")
    assert "Armed crash-after-decision" in run(sh, "fault coordinator crash-after-decision")
    out = run(sh, f"transfer {src} {dst} 4")
    assert out.startswith("Outcome not known:") and "Aborted" not in out
    request_id = re.search(r"`show (shell-\w+)`", out).group(1)
    with open(sh.activity.path, newline="", encoding="utf-8") as f:
        logged = [row for row in csv.DictReader(f) if row["command"] == f"transfer {src} {dst} 4"]
    assert [row["ok"] for row in logged] == ["unknown"]        # never "no" (activity.py)
    assert run(sh, "restart coordinator").startswith("Restarted coordinator")
    shown = wait_for_output(sh, f"show {request_id}", "Outcome: committed")
    assert "Outcome: committed" in shown, shown
    assert wait_until(lambda: balance(bank, dst) == "4.00")


def test_partition_makes_transfers_abort_until_healed(sh):
    """While the coordinator cannot reach Delhi, transfers to it abort and a deposit is
    refused with "Nothing was done" (it never left: its outcome is known); heal ends
    that. Healing a branch that was not cut off says so, rather than "reachable again"."""
    src = new_account(sh, "Mumbai", "10")
    assert "can no longer reach Delhi" in run(sh, "partition Delhi")
    try:
        out = run(sh, f"transfer {src} Delhi/1001 1")
        assert out.startswith("Aborted:") and "partition" in out
        out = run(sh, "deposit Delhi/1001 1")        # never sent: refused, not "not known"
        assert out.startswith("Error:") and "Nothing was done" in out, out
    finally:
        assert "Delhi is reachable again" in run(sh, "heal Delhi")
    assert run(sh, f"transfer {src} Delhi/1001 1").startswith("Committed")
    assert "Delhi was not cut off" in run(sh, "heal Delhi")


def test_check_fails_when_a_branch_refuses_a_logged_commit_for_good(tmp_path):
    """A branch that refuses a committed decision (its storage lost the prepare) will refuse
    every retry: check fails and names the branch and the transfer; it is not "in flight".
    (Deleting the prepared row while Delhi is down stands in for a deleted WAL file.)"""
    own = cluster.LocalCluster(home=tmp_path).start()
    try:
        sh = shell.BankShell(shell.coordinator_client(own.coordinator_url, own.secret), own,
                             own.home, stdout=io.StringIO())
        assert "Armed" in run(sh, "fault Delhi crash-before-commit")
        txid = txid_in(run(sh, "transfer Mumbai/1001 Delhi/1002 5"))
        assert wait_until(lambda: not own.members["Delhi"].alive), "Delhi did not die"
        db = sqlite3.connect(own.home / "data" / "Delhi.db", isolation_level=None)
        try:
            assert db.execute("DELETE FROM txns WHERE txid = ?", (txid,)).rowcount == 1
        finally:
            db.close()
        assert run(sh, "restart Delhi").startswith("Restarted Delhi")
        out = wait_for_output(sh, "check", "refuses")
        assert re.search(rf"decisions accepted\s+FAIL\s+Delhi refuses to commit {txid}", out), out
        assert "The check failed" in out and "still in flight" not in out
    finally:
        own.stop()


def test_crash_is_refused_when_not_on_a_local_cluster(bank):
    """Attached to a coordinator by URL, crash and restart say they are unavailable."""
    client = shell.coordinator_client(bank.coordinator_url, bank.secret)
    remote = shell.BankShell(client, None, bank.home, stdout=io.StringIO())
    out = run(remote, "crash Delhi")
    assert "works only on a local cluster" in out and remote.failures == 1


# ---- completion and help ----------------------------------------------------------------

def test_tab_completes_commands_accounts_nodes_and_txids(sh):
    """Tab completion knows the commands, BRANCH/NUMBER accounts, nodes and txids."""
    txid = txid_in(run(sh, "transfer Mumbai/1001 Delhi/1002 1"))
    assert sh.completenames("tra") == ["transfer"]
    assert "Mumbai/1001" in sh.completedefault("Mum", "balance Mum", 8, 11)
    assert sh.completedefault("", "transfer Mumbai/1001 ", 21, 21)
    assert sh.completedefault("coo", "crash coo", 6, 9) == ["coordinator"]
    assert txid in sh.completedefault("C1", "show C1", 5, 7)


def test_every_command_has_help_with_an_example(sh):
    """Each do_ command's docstring starts with its usage and ends with 'Example: <command>'."""
    for name in [*sh.command_names(), "EOF"]:
        doc = getattr(sh, "do_" + name).__doc__
        assert doc, name
        usage, summary, example = shell.doc_parts(getattr(sh, "do_" + name))
        assert usage.split()[0] == name and summary, name
        assert inspect.cleandoc(doc).splitlines()[-1].startswith("Example: " + name)
    out = run(sh, "help")
    assert all(name in out for name in sh.command_names())


def test_help_lists_each_command_with_a_whole_sentence(sh):
    """`help` lists each command with the first sentence of its docstring, whole: a
    docstring whose first line stops mid-sentence (restart's) goes on to the line where
    that sentence ends, rather than being listed as "start a crashed (or running)"."""
    out = run(sh, "help")
    for name in sh.command_names():
        usage, summary, _ = shell.doc_parts(getattr(sh, "do_" + name))
        assert summary.endswith("."), (name, summary)
        assert summary in " ".join(out.split()), (name, summary)
    assert "start a crashed (or running) node again, on its port and its data." in out
