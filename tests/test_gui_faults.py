"""The desktop window under faults, driven for real: real Tk on an X display, real
processes (the fixtures and helpers are tests/test_gui.py's).

Rules checked here: the lab controls really crash, restart and fail over members; a
slow branch never freezes the window, which counts the seconds it waits; an in-doubt
transfer is amber until its branch is back; the money gauge never shows money lost or
created while money is in flight or a branch is down (gauge Rule G4); the outcome is
"unknown" only when the call may have arrived, and followed until it is known; a blocked bank is visible while the
coordinator is down, and the diagram is current again once it answers; a partitioned
branch gets no arrows, only never-sent stubs; a frozen branch makes the gauge say what
it could not read.
"""

import pathlib
import signal
import sys
import time

import pytest

KIT = pathlib.Path(__file__).resolve().parent.parent
if str(KIT) not in sys.path:
    sys.path.insert(0, str(KIT))

from bank import local_cluster as cluster  # noqa: E402
from bank.activity import ActivityLog  # noqa: E402
from bank.errors import BankError, FaultCode  # noqa: E402

tk = pytest.importorskip("tkinter")
from bank.window.app import App  # noqa: E402
from test_gui import (  # noqa: E402,F401  (fixtures and helpers)
    app, arm_coordinator_crash, arm_from_lab, arrows, balance, bank, display,
    totals_drawn, transfer, tree_values, until)


@pytest.mark.slow
def test_crash_and_restart_from_the_lab_controls(app, bank):
    """Crashing a branch shows it down (its money as last seen) while the rest keeps
    working; restarting it shows it up again with the same accounts."""
    app.left_tabs.select(4)
    app.lab.buttons["Mumbai"]["crash"].invoke()
    until(app.root, lambda: app.seen.branch_state("Mumbai") == "down", "Mumbai shown down")
    assert not bank.members["Mumbai"].alive
    assert "down" in app.branches.tree.item("m:Mumbai", "values")[0]
    until(app.root, lambda: app.branches.split["unreachable"] == 15_000_00, "Mumbai's money greyed")
    assert app.branches.split["total"] is None              # not known (gauge Rule G4)
    app.left_tabs.select(1)                 # the rest keeps working: Delhi takes a deposit
    app.operations.deposit.account.set("Delhi/1001")
    app.operations.deposit.amount.set("1")
    app.operations.deposit.button.invoke()
    until(app.root, lambda: balance(app, "Delhi/1001") == "10,001.00", "a deposit at Delhi")
    app.lab.buttons["Mumbai"]["restart"].invoke()
    until(app.root, lambda: app.seen.branch_state("Mumbai") == "up", "Mumbai shown up again")
    until(app.root, lambda: app.branches.split["unreachable"] == 0, "Mumbai's money counted again")
    assert balance(app, "Mumbai/1001") == "10,000.00"
    assert app.branches.split["total"] == 30_001_00          # with Delhi's deposit


def lab_state(window, member: str) -> str:
    """What a member's row in the Lab tab says (its state label)."""
    return str(window.lab.labels[member].cget("text"))


def deposit(window, account: str, amount: str) -> None:
    """Deposit through the window's form, as a teacher would."""
    window.left_tabs.select(1)
    window.operations.deposit.account.set(account)
    window.operations.deposit.amount.set(amount)
    window.operations.deposit.button.invoke()
    window.left_tabs.select(4)


def test_failover_from_the_lab_controls(display, tmp_path):
    """With a replica per branch, the window shows each replica in sync with its lag;
    after the primary is crashed, the Failover button promotes the replica (epoch 2)
    and the window follows the new primary; the old primary restarted is fenced, and
    Rejoin brings it back as a replica of the new one (README, replication step 5);
    pressed twice, the second is refused while the first runs (Lab Rule A6). Every
    server has a row that says what it does now (Lab Rule A7), so the class fails back
    from the window too: crash the promoted replica from its own row, fail over, and
    rejoin it; a deposit made in between is kept through both failovers. Every result
    names a server as its row does, never by its port alone, and a crash says the role
    its row showed (Lab Rule A8): a class reads the rows."""
    local = cluster.LocalCluster(home=tmp_path, replicas=1).start()
    root = tk.Tk()
    window = App(root, local.coordinator(timeout=15), cluster=local,
                 activity=ActivityLog(tmp_path / "activity.csv"))
    try:
        until(root, lambda: "in sync" in str(window.branches.tree.item("r:Mumbai/0", "values"))
              if window.branches.tree.exists("r:Mumbai/0") else False, "Mumbai's replica in sync")
        window.left_tabs.select(4)
        until(root, lambda: str(window.lab.buttons["Mumbai"]["failover"].cget("state"))
              == "normal", "Failover enabled for a branch with a replica")
        window.lab.buttons["Mumbai"]["crash"].invoke()
        until(root, lambda: window.seen.branch_state("Mumbai") == "down", "Mumbai shown down")
        window.lab.buttons["Mumbai"]["failover"].invoke()
        until(root, lambda: "now served by" in window.result.cget("text"), "the failover")
        assert "now served by Mumbai-replica1 at epoch 2; the old primary, Mumbai, is " \
            "fenced" in window.result.cget("text")                    # A8: the rows' names
        def states():                                 # each row's whole state (B5)
            return window.branches.states
        until(root, lambda: window.seen.branch_state("Mumbai") == "up"
              and "primary Mumbai-replica1 · epoch 2" in states().get("m:Mumbai", ""),
              "the promoted primary named in the tree at epoch 2 (Rule B6)")
        assert balance(window, "Mumbai/1001") == "10,000.00"
        window.lab.buttons["Mumbai"]["restart"].invoke()      # the old primary: fenced
        until(root, lambda: "fenced" in window.result.cget("text"), "Mumbai back, fenced")
        until(root, lambda: window.branches.tree.item("r:Mumbai/0", "text") == "Mumbai"
              and "fenced" in states().get("r:Mumbai/0", ""), "the tree names it, fenced")
        assert window.branches.tree.item("r:Mumbai/0", "tags") == ("cut",)   # amber, as A7
        assert "the Rejoin button in Mumbai's row" in window.result.cget("text")
        assert "in the shell" not in window.result.cget("text")   # the button is right here
        window.lab.buttons["Mumbai"]["partition"].invoke()  # cuts the branch's primary off
        until(root, lambda: lab_state(window, "Mumbai-replica1") == "cut off", "its row")
        assert lab_state(window, "Mumbai") == "fenced"
        window.lab.buttons["Mumbai"]["heal"].invoke()
        until(root, lambda: lab_state(window, "Mumbai-replica1") == "primary", "healed")
        window.lab.buttons["Mumbai"]["rejoin"].invoke()       # README, replication step 5
        window.lab.buttons["Mumbai"]["rejoin"].invoke()       # pressed again at once (A6)
        assert "still busy with rejoin Mumbai" in window.result.cget("text")
        until(root, lambda: "as a replica of Mumbai's primary" in window.result.cget("text"),
              "Mumbai rejoined as a replica")
        assert "kept aside" in window.result.cget("text")
        assert "Mumbai's primary, Mumbai-replica1 at http" in window.result.cget("text")
        assert local.role_now("Mumbai") == "replica"
        lab = window.lab                                       # the second cycle (A7)
        until(root, lambda: lab_state(window, "Mumbai") == "replica"
              and lab_state(window, "Mumbai-replica1") == "primary", "each row's role")
        assert set(lab.buttons["Mumbai-replica1"]) == {"crash", "restart", "rejoin"}
        assert "Mumbai-replica1" not in lab.fault_member_box.cget("values")
        deposit(window, "Mumbai/1001", "5")
        until(root, lambda: balance(window, "Mumbai/1001") == "10,005.00", "the deposit")
        until(root, lambda: "in sync" in str(window.branches.tree.item("r:Mumbai/0", "values")),
              "Mumbai in sync again")
        # The tree is refreshed once a second: its "in sync" may predate the deposit's
        # push, which a loaded machine can make slow enough to drop Mumbai until it has
        # caught up. The failover below promotes only what the manager records now.
        until(root, lambda: local.members["Mumbai"].url in local.coordinator().call(
            "configuration", "Mumbai")["in_sync"], "Mumbai recorded in sync by the manager")
        lab.buttons["Mumbai-replica1"]["crash"].invoke()
        until(root, lambda: lab_state(window, "Mumbai-replica1") == "down", "its row down")
        assert "Mumbai-replica1 (Mumbai's primary) crashed" in window.result.cget("text")
        lab.buttons["Mumbai"]["failover"].invoke()
        until(root, lambda: "now served by" in window.result.cget("text"), "failing back")
        assert "served by its first server, Mumbai, again at epoch 3; the old primary, " \
            "Mumbai-replica1," \
            in window.result.cget("text")
        until(root, lambda: lab_state(window, "Mumbai") == "primary", "Mumbai primary again")
        lab.buttons["Mumbai-replica1"]["rejoin"].invoke()
        until(root, lambda: "Restarted Mumbai-replica1" in window.result.cget("text"),
              "the promoted replica rejoined", timeout=30)
        until(root, lambda: lab_state(window, "Mumbai-replica1") == "replica", "its row")
        until(root, lambda: balance(window, "Mumbai/1001") == "10,005.00",
              "the deposit kept through both failovers")
    finally:
        window.close()
        local.stop()


@pytest.mark.slow
def test_a_slow_branch_never_freezes_the_window(app):
    """With a branch delaying every vote by 3 s, the transfer takes seconds but the Tk
    event loop keeps turning: no single update() takes half of that (a window waiting on
    the vote would take all of it; a machine loaded by a parallel suite has stalled a
    turn for a second); and the result line counts the seconds it has waited
    (operations Rule O5)."""
    arm_from_lab(app, "Delhi", "delay=3")
    transfer(app, "Mumbai/1001", "Delhi/1002", "7")
    slowest, started, counted = 0.0, time.monotonic(), False
    while "Done" not in app.result.cget("text"):
        assert time.monotonic() - started < 30, app.result.cget("text")
        tick = time.monotonic()
        app.root.update()
        slowest = max(slowest, time.monotonic() - tick)
        counted = counted or "still waiting after 1 s" in app.result.cget("text")
        time.sleep(0.02)
    assert time.monotonic() - started > 2.5          # it really was slow...
    assert slowest < 1.5                              # ...and the window never waited
    assert counted                                    # ...and said it was waiting


@pytest.mark.slow
def test_in_doubt_transaction_is_amber_until_the_branch_is_back(app):
    """A branch that crashes before applying a logged commit leaves the transaction in
    doubt: amber in the list, its diagram cut where the commit got no ack; once the branch
    is restarted it learns the decision and the transaction turns green. Meanwhile the
    gauge never shows money lost or created (gauge Rule G4): with Delhi down after
    Mumbai's debit it says the total is not known, never 29,700.00."""
    totals = totals_drawn(app)
    arm_from_lab(app, "Delhi", "crash-before-commit")
    transfer(app, "Mumbai/1001", "Delhi/1002", "300")
    until(app.root, lambda: "has not confirmed it yet" in app.result.cget("text"), "the result")
    until(app.root, lambda: app.seen.branch_state("Delhi") == "down", "Delhi shown down")
    txid = until(app.root, lambda: next(iter(app.transactions.txns), ""), "the transaction")
    until(app.root, lambda: "in-doubt" in app.transactions.tree.item(txid, "tags"), "an amber row")
    assert "waiting for Delhi" in app.transactions.whole[txid]["state"]   # whole on hover
    app.transactions.tree.selection_set(txid)
    until(app.root, lambda: app.transactions.diagram.find_withtag("waiting"), "the in-doubt mark")
    assert arrows(app.transactions.diagram, "error", "Delhi", "coordinator")     # no ack: cut there
    assert app.transactions.diagram.find_withtag("cut")
    until(app.root, lambda: balance(app, "Mumbai/1001") == "9,700.00", "Mumbai debited")

    def gauge_says():                     # redrawn at its own refresh, after the table's
        return " ".join(app.branches.gauge.itemcget(i, "text")
                        for i in app.branches.gauge.find_withtag("gauge-total"))
    until(app.root, lambda: gauge_says().startswith("total not known: Delhi not read"),
          "the gauge saying the total is not known")
    app.lab.buttons["Delhi"]["restart"].invoke()
    until(app.root, lambda: "committed" in app.transactions.tree.item(txid, "tags"), "a green row")
    until(app.root, lambda: balance(app, "Delhi/1002") == "5,300.00", "the credit landed")
    until(app.root, lambda: not app.transactions.diagram.find_withtag("waiting"),
          "the diagram updated")
    until(app.root, lambda: app.branches.split["unreachable"] == 0, "every branch counted")
    assert app.branches.split["total"] == 30_000_00 and app.branches.split["held"] == 0
    assert None in totals and set(totals) == {30_000_00, None}, totals



def test_an_unconfirmed_commit_is_followed_until_both_branches_confirm(app, bank, tmp_path):
    """Rule O6 (bank/window/operations.py): a transfer answered "committed, Delhi has not
    confirmed it yet" is followed; once the coordinator lists it committed (Delhi was
    restarted and acknowledged), the Result says both branches have confirmed, in green,
    and the activity log records what was learned."""
    arm_from_lab(app, "Delhi", "crash-before-commit")
    transfer(app, "Mumbai/1001", "Delhi/1002", "300")
    until(app.root, lambda: "has not confirmed it yet" in app.result.cget("text"), "the result")
    assert str(app.result.cget("style")) == "Unknown.TLabel"
    until(app.root, lambda: app.seen.branch_state("Delhi") == "down", "Delhi shown down")
    bank.start_member("Delhi")                  # restarted outside the window: nothing said
    until(app.root, lambda: "both branches have now confirmed" in app.result.cget("text"),
          "the Result updated")
    assert str(app.result.cget("style")) == "Ok.TLabel"
    assert app.result.cget("text").startswith("Done: 300.00 moved from Mumbai/1001 to Delhi/1002")
    log = (tmp_path / "activity.csv").read_text(encoding="utf-8")
    assert "Outcome now known: Done: 300.00 moved" in log


def test_an_unknown_outcome_that_aborted_is_said_once_known(app, bank):
    """Rule O6: a transfer whose coordinator crashed after the prepares (the window could
    only say "not known") is aborted by the restarted coordinator (presumed abort); the
    window learns it from the transactions list and says no money moved, and a later
    transfer's Result is never overwritten by it."""
    arm_coordinator_crash(app, "crash-after-prepare")
    transfer(app, "Mumbai/1001", "Delhi/1002", "200")
    until(app.root, lambda: "is not known" in app.result.cget("text"), "an unknown outcome")
    until(app.root, lambda: app.seen.branch_state("coordinator") == "down", "coordinator down")
    bank.start_member("coordinator")
    until(app.root, lambda: "learned after the call" in app.result.cget("text"),
          "the Result updated", timeout=30)
    assert app.result.cget("text").startswith("Not done: the transfer was aborted")
    assert "presumed aborted" in app.result.cget("text")    # nobody voted no here
    assert str(app.result.cget("style")) == "Bad.TLabel"
    until(app.root, lambda: balance(app, "Mumbai/1001") == "10,000.00", "nothing moved")
    transfer(app, "Mumbai/1001", "Delhi/1002", "5")
    until(app.root, lambda: "Done: 5.00 moved" in app.result.cget("text"), "the next one")
    assert app.operations.transfer.following is None


def test_an_unknown_outcome_with_heuristic_damage_never_says_no_money_moved(app, bank):
    """Rule O6 with P11: the coordinator crashed after the prepares, Delhi's operator
    committed on his own (a heuristic decision), and the restarted coordinator presumed
    abort: the window says the books do not balance, in red, never "no money moved"."""
    arm_coordinator_crash(app, "crash-after-prepare")
    transfer(app, "Mumbai/1001", "Delhi/1002", "200")
    until(app.root, lambda: "is not known" in app.result.cget("text"), "an unknown outcome")
    until(app.root, lambda: app.seen.branch_state("coordinator") == "down", "coordinator down")
    [txn] = bank.client("Delhi").call("in_doubt")
    bank.client("Delhi").call("heuristic", txn["txid"], "commit")
    bank.start_member("coordinator")
    until(app.root, lambda: "heuristic damage at Delhi" in app.result.cget("text"),
          "the Result updated", timeout=30)
    assert "no money moved" not in app.result.cget("text")
    assert str(app.result.cget("style")) == "Bad.TLabel"


@pytest.mark.parametrize("error, kind", [
    (BankError(FaultCode.UNAVAILABLE, "branch Delhi at http://127.0.0.1:1 cannot be "
               "reached (connection refused: is it running?). Nothing was done."), "bad"),
    (BankError(FaultCode.UNAVAILABLE, "refused here", not_sent=True), "bad"),
    (BankError(FaultCode.UNAVAILABLE, "no answer in time (30 s)"), "unknown"),
    (BankError(FaultCode.INSUFFICIENT_FUNDS, "Insufficient funds."), "bad")])
def test_an_outcome_is_unknown_only_when_the_call_may_have_arrived(error, kind):
    """O2 with errors.surely_not_done: an unreachable server is "not known" only when
    the call may have arrived; when the coordinator says it never reached the branch
    ("Nothing was done.") or the connection was refused here, the window says it was
    not done (it said "not known ... Nothing was done." in one breath)."""
    from bank.window.operations import failure_text
    text, shown = failure_text("deposit", error)
    assert shown == kind, text
    assert ("not known" in text) == (kind == "unknown"), text

@pytest.mark.slow
def test_money_in_flight_keeps_the_total(app):
    """If the coordinator dies after the source committed but before the destination
    heard the decision, the window says the outcome is unknown (never "aborted"; the
    activity log's ok says "unknown", not "no"), the
    money in flight is counted as in doubt so the total stays the same, and after the
    coordinator's restart it finishes the commit from its recovery log."""
    arm_from_lab(app, "coordinator", "crash-mid-commit")   # tells Delhi, then dies
    transfer(app, "Delhi/1001", "Mumbai/1002", "400")
    until(app.root, lambda: "outcome of this transfer is not known" in app.result.cget("text"),
          "an unknown outcome")
    assert app.activity.rows()[-1]["ok"] == "unknown"     # not "no": it may have committed
    until(app.root, lambda: app.seen.branch_state("coordinator") == "down", "coordinator down")
    until(app.root, lambda: app.branches.split["in_flight"] == 400_00, "the money in flight")
    assert app.branches.split["total"] == 30_000_00
    until(app.root, lambda: balance(app, "Delhi/1001") == "9,600.00", "the debit shown")
    assert balance(app, "Mumbai/1002") == "5,000.00"            # the credit is not there
    app.lab.buttons["coordinator"]["restart"].invoke()
    until(app.root, lambda: balance(app, "Mumbai/1002") == "5,400.00", "the commit finished")
    until(app.root, lambda: app.branches.split["in_flight"] == 0, "nothing in flight")
    assert app.branches.split["total"] == 30_000_00
    txid = until(app.root, lambda: next(iter(app.transactions.txns), ""),
                 "the recovered transaction")
    app.transactions.tree.selection_set(txid)
    until(app.root, lambda: arrows(app.transactions.diagram, "recovered", "coordinator", "log"),
          "the recovered mark")
    assert app.transactions.diagram.find_withtag("cut")


@pytest.mark.slow
def test_a_blocked_bank_is_visible_while_the_coordinator_is_down(app):
    """Rule T5: the coordinator crashes right after forcing its commit decision, before
    telling anyone. While it is down, the window reads the branches directly: the
    in-doubt transfer is on screen with each branch that holds it, the money held, and
    that it waits for a coordinator that is down; the gauge writes the held amount on
    it. After the restart the map empties. (The last diagram's "NOT CURRENT" title is
    checked by the projector screenshot test.)"""
    arm_coordinator_crash(app)
    transfer(app, "Mumbai/1001", "Delhi/1002", "400")
    until(app.root, lambda: app.seen.branch_state("coordinator") == "down", "coordinator down")
    blocked = app.transactions.blocked
    def blocking_rows():
        rows = [tree_values(blocked, iid) for iid in blocked.get_children()]
        return len(rows) == 2 and all("DOWN" in row["waiting"] for row in rows) and rows
    rows = until(app.root, blocking_rows, "the blocking map, saying the coordinator is down")
    assert app.transactions.blocked_box.winfo_ismapped()
    by_branch = {row["branch"]: row for row in rows}
    assert by_branch["Mumbai"]["money"] == "holds 400.00 of 1001"
    assert by_branch["Delhi"]["money"] == "to credit 400.00 to 1002"
    assert all("coordinator DOWN" in row["waiting"] for row in rows)
    assert by_branch["Mumbai"]["txid"] == by_branch["Delhi"]["txid"]
    until(app.root, lambda: app.branches.split["held"] == 400_00, "the held money")
    callouts = [app.branches.gauge.itemcget(i, "text")
                for i in app.branches.gauge.find_withtag("callout-held")
                if app.branches.gauge.type(i) == "text"]
    assert "held 400.00" in callouts
    app.lab.buttons["coordinator"]["restart"].invoke()
    until(app.root, lambda: not blocked.get_children(), "the map emptied")
    until(app.root, lambda: balance(app, "Delhi/1002") == "5,400.00", "the commit finished")
    assert not app.transactions.blocked_box.winfo_ismapped()


@pytest.mark.slow
def test_the_diagram_is_current_again_once_the_coordinator_answers(app):
    """Rule T5: while the coordinator is down the shown diagram's title says NOT CURRENT;
    its first answer after a restart makes it current again, even for a finished
    transfer that is never fetched again (the title stayed NOT CURRENT until another
    transaction was selected)."""
    transfer(app, "Mumbai/1001", "Delhi/1002", "10")
    until(app.root, lambda: "Done" in app.result.cget("text"), "the transfer")
    txid = until(app.root, lambda: next(iter(app.transactions.txns), ""), "listed")
    app.transactions.tree.selection_set(txid)
    title = app.transactions.title
    until(app.root, lambda: title.cget("text").startswith(txid), "the diagram's title")
    app.lab.buttons["coordinator"]["crash"].invoke()
    until(app.root, lambda: title.cget("text").startswith("NOT CURRENT"), "NOT CURRENT")
    app.lab.buttons["coordinator"]["restart"].invoke()
    until(app.root, lambda: title.cget("text").startswith(txid), "the title current again")
    assert str(title.cget("style")) == "Ok.TLabel" and "committed" in title.cget("text")



# ---- views that never mislead (issue 19) ------------------------------------------------------

@pytest.mark.slow
def test_a_partitioned_branch_gets_no_arrows_only_never_sent_stubs(app, bank):
    """Cut off by a lab partition, Delhi is sent nothing: the diagram draws the prepare
    and the abort as crossed stubs at the coordinator with the reason (never-sent; in
    full on hover if shortened) and a partition mark on Delhi's lifeline, and no arrow
    reaches Delhi; Mumbai's arrows are drawn as usual."""
    bank.coordinator().call("partition", "Delhi")
    transfer(app, "Mumbai/1001", "Delhi/1002", "10")
    txid = until(app.root, lambda: next(iter(app.transactions.txns), ""), "the transaction")
    app.transactions.tree.selection_set(txid)
    diagram = app.transactions.diagram
    until(app.root, lambda: arrows(diagram, "prepare", "coordinator", "Mumbai"), "the diagram")
    until(app.root, lambda: diagram.find_withtag("never-sent&&msg-abort&&to-Delhi"),
          "the abort stub")
    assert diagram.find_withtag("never-sent&&msg-prepare&&to-Delhi")
    assert not diagram.find_withtag("arrow&&to-Delhi") and not diagram.find_withtag(
        "arrow&&from-Delhi")
    labels = [diagram.tips.get(i, diagram.itemcget(i, "text"))      # in full (hover)
              for i in diagram.find_withtag("label&&never-sent")]
    assert any("never sent: cut off (lab partition)" in text for text in labels), labels
    marks = [diagram.itemcget(i, "text") for i in diagram.find_withtag(
        "mark-partition&&mark-at-Delhi&&mark-label")]
    assert marks and all(text == "Delhi cut off (lab partition)" for text in marks), marks
    bank.coordinator().call("heal", "Delhi")


@pytest.mark.slow
@pytest.mark.skipif(sys.platform == "win32", reason="pauses a branch with SIGSTOP")
def test_a_frozen_branch_makes_the_gauge_say_what_it_could_not_read(app, bank):
    """With Delhi frozen (SIGSTOP), the gauge names Delhi as not read and counts its last
    seen money apart, never as available; a snapshot that cannot be made consistent is
    shown as not current, with the time of the one still drawn."""
    gauge = app.branches.gauge

    def texts(tag):
        return " ".join(gauge.itemcget(i, "text") for i in gauge.find_withtag(tag))
    until(app.root, lambda: texts("gauge-note").startswith("a consistent snapshot, as of"),
          "a dated gauge")
    delhi = bank.member("Delhi").proc
    delhi.send_signal(signal.SIGSTOP)
    try:
        until(app.root, lambda: "Delhi not read" in texts("gauge-total"), "Delhi named",
              timeout=30)
        assert app.branches.split["unreachable"] == 15_000_00       # Delhi's, as last seen
        assert app.branches.split["available"] == 15_000_00         # Mumbai's only
        assert texts("gauge-note").startswith("a consistent snapshot, as of")
        app.branches.got_money(None, None)          # what fetch_money says when it gives up
        assert texts("gauge-note").startswith("NOT CURRENT: transfers kept changing the "
                                              "books") and "showing the snapshot of" in \
            texts("gauge-note")
    finally:
        delhi.send_signal(signal.SIGCONT)
    until(app.root, lambda: app.branches.split["unread"] == [], "Delhi read again", timeout=30)


@pytest.mark.slow
@pytest.mark.skipif(sys.platform == "win32", reason="pauses a branch with SIGSTOP")
def test_an_unknown_deposit_is_asked_again_until_its_outcome_is_known(app, bank, tmp_path):
    """Rule O6 for a deposit: with Delhi paused, the deposit's outcome is not known. Delhi
    is then killed (the deposit never ran): the window's repeats are refused with
    "Nothing was done", which speaks of the repeat only, so it stays "not known" (it
    said "Refused" once, even for a deposit applied before the crash). Restarted, Delhi
    applies the repeat, once, and the Result and the activity log say so."""
    bank.coordinator().call("account", "Delhi/1002")   # it knows who Delhi is: else,
    delhi = bank.member("Delhi").proc                  # with Delhi paused, the deposit is
    delhi.send_signal(signal.SIGSTOP)                  # never sent (a definite "no")
    app.left_tabs.select(1)
    app.operations.deposit.account.set("Delhi/1002")
    app.operations.deposit.amount.set("4")
    app.operations.deposit.button.invoke()
    try:
        until(app.root, lambda: "is not known" in app.result.cget("text"),
              "an unknown outcome", timeout=40)
    finally:
        bank.kill("Delhi")                       # it never ran the deposit
    until(app.root, lambda: app.seen.branch_state("Delhi") == "down", "Delhi shown down")
    request_id = app.operations.deposit.following[0][3]

    def repeats():                                   # messages the coordinator sent for it
        trace = bank.coordinator().call("transaction", request_id)["trace"]
        return sum(1 for m in trace if m["to"] == "Delhi")
    first = repeats()
    until(app.root, lambda: repeats() > first and f"follow {request_id}" not in app.busy,
          "a repeat sent, and answered, while Delhi is down")
    assert "is not known" in app.result.cget("text")
    bank.start_member("Delhi")
    until(app.root, lambda: app.result.cget("text").startswith("Done: deposited 4.00"),
          "the outcome learned", timeout=30)
    assert bank.client("Delhi").call("account", "1002")["balance"] == "5004.00"  # once
    log = (tmp_path / "activity.csv").read_text(encoding="utf-8")
    assert "Outcome now known: Done: deposited 4.00" in log and "Refused" not in log


def test_a_cluster_stopped_under_the_window_is_said_and_not_half_restarted(app, bank, tmp_path):
    """`python cluster.py stop` while the window is open: the status line says the
    cluster was stopped and how to start it again (it looked like every member had
    crashed), and the Lab's Restart refuses in words instead of starting one member
    alone (half a bank, left running after the window closed)."""
    from bank import local_cluster
    assert local_cluster.stop_running(tmp_path)
    until(app.root, lambda: "was stopped" in app.status.cget("text"), "the status line")
    app.lab.restart("Delhi")
    until(app.root, lambda: "was stopped" in app.result.cget("text"), "the refusal")
    from polling import wait_for
    wait_for(lambda: all(m.proc is None or m.proc.poll() is not None
                         for m in bank.members.values()), 10, "no member started again")
