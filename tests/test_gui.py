"""The desktop window (gui_tk.py and bank/window/), driven for real: real Tk on an X
display, real processes.

Rules checked here: the window shows the bank and the protocol as they are; input is
checked before it is sent; logs export as CSV that reads back; and a window that
started the local cluster leaves no process behind when it closes. The window under
faults (crashes, failover, a slow or frozen branch, a blocked bank): test_gui_faults.py.

How: Tk needs an X display. If DISPLAY is unset, the ``display`` fixture starts Xvfb
on a free display number (``-displayfd``: the server picks it and says so once it
accepts connections) and kills it by pid at the end. Tests skip only when there is no
display and no Xvfb. Waiting is always polling with a deadline: ``until()`` runs Tk's
event loop (``root.update()``) until a condition holds.

The X11 helpers at the bottom talk to the X server through libX11 (ctypes, no extra
tools): a screenshot of the screen (written as PNG with zlib) and the WM_DELETE_WINDOW
message a window manager sends when a user clicks the close button.
"""

import csv
import json
import os
import pathlib
import select
import shutil
import struct
import subprocess
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
from bank.window import diagram as draw  # noqa: E402
from bank.window import gauge  # noqa: E402
from bank.window import logs as logs_panel  # noqa: E402
from bank.window.app import App  # noqa: E402
from bank.window.calls import ALL  # noqa: E402
from bank.window.look import TITLE  # noqa: E402
from bank.window.seen import Seen  # noqa: E402
from x11shot import X11  # noqa: E402

SCREENSHOT = KIT / "docs" / "screenshot.png"   # rewritten only with BANK_SCREENSHOT=1


# ---- fixtures: a display, a cluster, the app ----------------------------------------------

@pytest.fixture(scope="session")
def display():
    """An X display for Tk: $DISPLAY if set, else a private Xvfb (killed by pid at the end)."""
    if os.environ.get("DISPLAY"):
        yield os.environ["DISPLAY"]
        return
    xvfb = shutil.which("Xvfb")
    if xvfb is None:
        pytest.skip("no X display and no Xvfb to start one")
    read_end, write_end = os.pipe()
    proc = subprocess.Popen([xvfb, "-displayfd", str(write_end), "-screen", "0",
                             "1920x1080x24", "-nolisten", "tcp"], pass_fds=(write_end,),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.close(write_end)
    number, deadline = b"", time.monotonic() + 20
    while not number.endswith(b"\n") and time.monotonic() < deadline:
        ready, _, _ = select.select([read_end], [], [], deadline - time.monotonic())
        chunk = os.read(read_end, 16) if ready else b""
        if not chunk:
            break
        number += chunk
    os.close(read_end)
    if not number.strip().isdigit():
        proc.kill()
        proc.wait()
        pytest.fail("Xvfb did not report a display number within 20 s")
    os.environ["DISPLAY"] = f":{number.decode().strip()}"   # Xvfb accepts connections now
    try:
        yield os.environ["DISPLAY"]
    finally:
        del os.environ["DISPLAY"]
        proc.kill()
        proc.wait(timeout=10)


@pytest.fixture
def bank(tmp_path):
    """A real local cluster (Mumbai, Delhi, coordinator) in tmp_path, stopped at the end."""
    local = cluster.LocalCluster(home=tmp_path).start()
    try:
        yield local
    finally:
        local.stop()


@pytest.fixture
def app(display, bank, tmp_path):
    """The window built on that cluster, with its own activity log; closed at the end."""
    root = tk.Tk()
    window = App(root, bank.coordinator(timeout=15), cluster=bank,
                 activity=ActivityLog(tmp_path / "activity.csv"),
                 source=f"local cluster · {bank.coordinator_url}")
    until(root, lambda: window.seen.branch_state("Mumbai") == "up"
          and window.seen.branch_state("Delhi") == "up" and window.seen.branch_state("coordinator")
          == "up" and len(window.seen.account_refs()) == 4, "the cluster to show up")
    yield window
    window.close()          # its garbage is collected on this thread: conftest.py


def totals_drawn(app) -> list:
    """A list that every total the window's money gauge computes from now on is added
    to (None: not known, Rule G4)."""
    totals, shown = [], app.branches.got_money

    def spy(result, error):
        shown(result, error)
        if result is not None:
            totals.append(app.branches.split["total"])
    app.branches.got_money = spy
    return totals


def until(root, condition, what: str, timeout: float = 20.0):
    """Run Tk's event loop until condition() is true; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        root.update()
        value = condition()
        if value:
            return value
        time.sleep(0.02)                      # poll, don't spin
    said = [w.cget("text") for w in _all_widgets(root) if w.winfo_class() == "TLabel"
            and str(w.cget("style")) in ("Ok.TLabel", "Bad.TLabel", "Unknown.TLabel")]
    pytest.fail(f"timed out after {timeout} s waiting for {what} (the window says: {said})")


def _all_widgets(widget):
    yield widget
    for child in widget.winfo_children():
        yield from _all_widgets(child)


def tree_values(tree, iid: str) -> dict:
    """A Treeview row as {column: value}."""
    return dict(zip(tree.cget("columns"), tree.item(iid, "values")))


def balance(app, acct: str) -> str:
    iid = f"a:{acct}"
    return tree_values(app.branches.tree, iid)["balance"] if app.branches.tree.exists(iid) else ""


def transfer(app, src, dst, amount):
    app.left_tabs.select(0)
    app.operations.transfer.src.set(src)
    app.operations.transfer.dst.set(dst)
    app.operations.transfer.amount.set(amount)
    app.operations.transfer.button.invoke()


def arm_from_lab(app, member: str, point: str) -> None:
    """Arm a fault point (a crash, a delay) at a member from the Lab tab, as a teacher
    would, and wait until the window says it is armed."""
    app.left_tabs.select(4)
    app.lab.fault_member.set(member)
    app.lab.fault_point.set(point)
    app.lab.arm_button.invoke()
    until(app.root, lambda: f"armed on {member}" in app.result.cget("text"), "armed")


def arm_coordinator_crash(app, point="crash-after-decision"):
    """Arm a crash point at the coordinator from the Lab tab."""
    arm_from_lab(app, "coordinator", point)


def arrows(canvas, msg: str, src: str, dst: str) -> tuple:
    return canvas.find_withtag(f"arrow&&msg-{msg}&&from-{src}&&to-{dst}")


# ---- the drawings' arithmetic (no display needed) ----------------------------------------

def _acct(number, balance, held="0.00"):
    return {"number": number, "owner": "x", "balance": balance, "held": held}


def test_repeated_retries_are_drawn_once_with_a_count():
    """A branch that stays down makes the coordinator retry every second: the diagram
    folds identical rounds into one, labelled with how many times and until when."""
    def row(ms, src, dst, msg, detail=""):
        return {"at": "", "ms": ms, "from": src, "to": dst, "msg": msg, "detail": detail}
    trace = [row(0, "coordinator", "Delhi", "commit"),
             row(1, "Delhi", "coordinator", "error", "no ack: refused")]
    for second in range(1, 6):
        trace += [row(second * 1000, "coordinator", "coordinator", "retry", "waiting for Delhi"),
                  row(second * 1000, "coordinator", "Delhi", "commit"),
                  row(second * 1000 + 1, "Delhi", "coordinator", "error", "no ack: refused")]
    folded = draw.compress(trace)
    assert [(r["msg"], times) for r, times, _ in folded] == [
        ("commit", 1), ("error", 1), ("retry", 5), ("commit", 1), ("error", 1)]
    assert folded[2][2] == 5000                      # the last retry, in ms
    assert draw.compress(trace[:2]) == [(trace[0], 1, 0), (trace[1], 1, 1)]


def test_a_branch_that_stops_answering_keeps_its_last_accounts():
    """A branch that stops answering is shown down with its last seen accounts (seen.py
    Rule S2); the gauge gives it a grey part that size but no total (gauge.py Rule G4)."""
    seen = Seen({"Mumbai": "http://127.0.0.1:1", "Delhi": "http://127.0.0.1:2"})
    accounts = [_acct("1001", "500.00")]
    seen.got_branch("Mumbai", {"ping": {"role": "primary"}, "accounts": accounts}, None)
    assert seen.branch_state("Mumbai") == "up" and seen.branch_state("Delhi") == ""
    seen.got_branch("Mumbai", None, BankError(FaultCode.UNAVAILABLE, "Mumbai is down."))
    assert seen.branch_state("Mumbai") == "down"
    assert seen.account_refs() == ["Mumbai/1001"]
    books = seen.books({"Delhi": {"accounts": [_acct("1001", "300.00")], "prepared": []}})
    assert books["Mumbai"] == {"up": False, "accounts": accounts}
    split = gauge.money_split(books)
    assert (split["available"], split["unreachable"], split["total"]) == (300_00, 500_00,
                                                                          None)


ROUTE_CASES = [  # (a local cluster?, the coordinator reports Mumbai up?, URL followed?)
    (True, False, False), (True, True, True), (False, False, True), (False, True, True)]


@pytest.mark.parametrize("local, up, follows", ROUTE_CASES)
def test_the_window_follows_a_failover_to_the_new_primary(local, up, follows):
    """With a local cluster the window keeps a branch's own address unless the
    coordinator reports it up elsewhere (a failover); with a remote coordinator it
    always uses the coordinator's routes (seen.py Rule S3)."""
    seen = Seen({"Mumbai": "http://127.0.0.1:1"})
    seen.got_routes([{"name": "Mumbai", "url": "http://127.0.0.1:9", "up": up,
                      "partitioned": False, "epoch": 2, "replicas": []}], local=local)
    assert seen.routes["Mumbai"] == ("http://127.0.0.1:9" if follows else "http://127.0.0.1:1")
    assert seen.replication["Mumbai"] == (2, [])


def test_each_server_of_a_replicated_branch_answers_for_itself():
    """A server of a replicated branch is shown by its own answer (seen.py Rule S5):
    its role whatever its name, down when it stops answering, never down when it only
    refuses this window's key (S4); a fault armed there is its own, not its branch's."""
    seen = Seen({"Mumbai": "http://127.0.0.1:1"})
    assert seen.server_state("Mumbai-replica1") == ""               # not heard from yet
    seen.got_server("Mumbai-replica1", {"role": "primary", "faults": "crash-before-vote"},
                    None)
    seen.got_server("Mumbai", {"role": "fenced", "faults": ""}, None)
    assert seen.server_state("Mumbai-replica1") == "primary"
    assert seen.server_state("Mumbai") == "fenced"
    assert seen.armed("Mumbai-replica1") == "crash-before-vote" and not seen.armed("Mumbai")
    seen.got_server("Mumbai-replica1", None, BankError(FaultCode.UNAVAILABLE, "down."))
    assert seen.server_state("Mumbai-replica1") == "down"
    assert not seen.armed("Mumbai-replica1")
    seen.got_server("Mumbai", None, BankError(FaultCode.UNAUTHORIZED, "not your key."))
    assert seen.server_state("Mumbai") == ""


# ---- the window, for real ----------------------------------------------------------------

def test_failover_is_disabled_with_its_reason_for_a_branch_without_replica(app):
    """Issue 12: a branch with no replica has nothing to promote, so its Failover (and
    Rejoin) button is disabled and the reason is written under it (Rule A5), whole:
    the label is as wide as its text needs, within the Lab tab (it was cut to "Mu")."""
    app.left_tabs.select(4)
    until(app.root, lambda: str(app.lab.buttons["Mumbai"]["failover"].cget("state"))
          == "disabled", "Failover disabled for Mumbai")
    reason = app.lab.reasons["Mumbai"]
    assert "no replica" in reason.cget("text")
    until(app.root, lambda: reason.winfo_ismapped() and reason.winfo_width() > 1, "shown")
    assert reason.winfo_width() >= reason.winfo_reqwidth() - 1, "cut"
    right = reason.winfo_rootx() + reason.winfo_width()
    tab = app.lab.rows.winfo_toplevel()
    assert right <= tab.winfo_rootx() + tab.winfo_width()
    assert reason.winfo_rooty() > app.lab.buttons["Mumbai"]["failover"].winfo_rooty()
    assert str(app.lab.buttons["Mumbai"]["rejoin"].cget("state")) == "disabled"


@pytest.mark.slow
def test_a_long_result_shows_two_whole_lines_and_scrolls(app):
    """A result longer than two lines shows exactly two, whole, and scrolls for the rest
    (fit.py Rule F1): the scroll bar's own least height made the box taller, and the
    top of a cut third line showed under the second."""
    from bank.window.app import RESULT_LINES
    app.say("A sentence long enough to take more than two lines of the result box, as "
            "a fenced server's restart does: " + "it refuses writes until it rejoins. " * 6)
    canvas = app.result.master.master                 # the Scrolled pane's canvas
    until(app.root, lambda: app.result.winfo_reqheight() > 2.5 * app.look.line_px
          and canvas.winfo_height() > 1, "a long result laid out")
    app.root.update()
    assert canvas.winfo_height() <= RESULT_LINES * app.look.line_px + 6   # no third line


def test_transfer_updates_balances_list_and_diagram(app):
    """A transfer from the form moves the money on screen, lists the transaction as
    committed, and its diagram has one arrow per 2PC message: prepare, vote, commit and
    ack for every branch, with the decision logged before any commit."""
    transfer(app, "Mumbai/1001  Asha Rao", "Delhi/1002", "250")
    until(app.root, lambda: balance(app, "Mumbai/1001") == "9,750.00"
          and balance(app, "Delhi/1002") == "5,250.00", "the balances to move")
    until(app.root, lambda: "Done: 250.00 moved from Mumbai/1001 to Delhi/1002" in
          app.result.cget("text"), "the result in plain words")
    txid = until(app.root, lambda: next(iter(app.transactions.txns), ""), "the transaction list")
    until(app.root, lambda: tree_values(app.transactions.tree, txid)["state"] == "✓ committed",
          "the transaction listed as committed (marked, not by colour alone)")
    assert "committed" in app.transactions.tree.item(txid, "tags")          # drawn green
    app.transactions.tree.selection_set(txid)
    until(app.root, lambda: arrows(app.transactions.diagram, "end", "coordinator", "log"),
          "the sequence diagram")
    canvas = app.transactions.diagram
    for branch in ("Mumbai", "Delhi"):
        assert len(arrows(canvas, "prepare", "coordinator", branch)) == 1
        assert len(arrows(canvas, "vote", branch, "coordinator")) == 1
        assert len(arrows(canvas, "commit", "coordinator", branch)) == 1
        assert len(arrows(canvas, "ack", branch, "coordinator")) == 1
    decision, = arrows(canvas, "decision", "coordinator", "log")
    first_commit = min(canvas.coords(i)[1] for i in canvas.find_withtag("msg-commit&&arrow"))
    assert canvas.coords(decision)[1] < first_commit          # logged before it is sent
    assert not canvas.find_withtag("cut")


@pytest.mark.slow
def test_the_money_gauge_stays_constant_while_transfers_run(app):
    """Transfers only move money: every gauge the window draws while several run at
    once adds up to the same total (held and in-flight money included)."""
    totals = totals_drawn(app)
    for amount in ("11", "12.50", "13", "14", "15.25", "16"):
        transfer(app, "Mumbai/1001", "Delhi/1001", amount)
        transfer(app, "Delhi/1002", "Mumbai/1002", amount)

    def landed():
        app.refresh()                        # ask again as soon as the last answer is in
        return balance(app, "Mumbai/1002") == "5,081.75" and \
            balance(app, "Delhi/1001") == "10,081.75"
    until(app.root, landed, "every transfer to land", 30)
    count = len(totals)
    until(app.root, lambda: len(totals) >= count + 2, "two more gauges")
    assert set(totals) == {30_000_00}, totals
    assert app.branches.split["available"] == 30_000_00


@pytest.mark.slow
def test_input_is_checked_before_sending(app):
    """A bad amount or account is refused on the spot with a sentence; nothing is sent.
    An amount typed as the window writes money ("1,200.50") is taken."""
    cases = [  # (src, dst, amount, words in the answer)
        ("Mumbai/1001", "Delhi/1002", "12.345", "at most two decimals"),
        ("Mumbai/1001", "Delhi/1002", "-5", "positive"),
        ("Mumbai/1001", "Delhi/1002", "", "Type an amount"),
        ("Mumbai/1001", "Delhi/1002", "1e3", "not a plain decimal"),
        ("Mumbai/1001", "Delhi/1002", "1,2", "not a plain decimal"),
        ("Mumbai/1001", "Mumbai/1001", "5", "the same"),
        ("", "Delhi/1002", "5", "Choose the from account"),
        ("Mumbai-1001", "Delhi/1002", "5", "BRANCH/NUMBER"),
        ("Pune/1001", "Delhi/1002", "5", "no branch 'Pune'"),
    ]
    for src, dst, amount, words in cases:
        app.operations.transfer.src.set(src)
        app.operations.transfer.dst.set(dst)
        app.operations.transfer.amount.set(amount)
        assert app.operations.transfer.entry_ok() is None, (src, dst, amount)
        assert words in app.result.cget("text"), (words, app.result.cget("text"))
    app.operations.transfer.amount.set("0.5")
    app.operations.transfer.src.set("Mumbai/1001")
    app.operations.transfer.dst.set("Delhi/1002  Vikram Shah")
    assert app.operations.transfer.entry_ok() == ("Mumbai/1001", "Delhi/1002", "0.50")
    app.operations.transfer.amount.set("1,200.50")    # as the window writes money
    assert app.operations.transfer.entry_ok() == ("Mumbai/1001", "Delhi/1002", "1200.50")
    app.operations.transfer.amount.set("0.5")
    app.operations.transfer.button.invoke()          # ... and this one goes through
    until(app.root, lambda: balance(app, "Delhi/1002") == "5,000.50", "the transfer")


@pytest.mark.slow
def test_activity_and_journal_export_as_csv(app, tmp_path, monkeypatch):
    """Every operation lands in the activity log; the log (one account or all) and a
    branch journal export through the file dialog as CSV that reads back."""
    transfer(app, "Mumbai/1001", "Delhi/1002", "10")
    until(app.root, lambda: "Done" in app.result.cget("text"), "the transfer")
    app.left_tabs.select(1)
    app.operations.deposit.account.set("Mumbai/1002")
    app.operations.deposit.amount.set("5")
    app.operations.deposit.button.invoke()
    until(app.root, lambda: "deposited 5.00" in app.result.cget("text"), "the deposit")
    until(app.root, lambda: len(app.logs.activity_tree.get_children()) == 2, "activity rows")
    target = tmp_path / "export" / "activity.csv"
    monkeypatch.setattr(logs_panel.filedialog, "asksaveasfilename", lambda **kw: str(target))
    app.logs.activity_filter.set("Mumbai/1002")
    app.logs.show_activity()
    assert len(app.logs.activity_tree.get_children()) == 1
    app.logs.export_activity_button.invoke()
    rows = list(csv.DictReader(open(target, newline="", encoding="utf-8")))
    assert [r["command"] for r in rows] == ["deposit Mumbai/1002 5.00"]
    app.logs.activity_filter.set(ALL)
    app.logs.export_activity_button.invoke()
    rows = list(csv.DictReader(open(target, newline="", encoding="utf-8")))
    assert [r["command"] for r in rows] == ["transfer Mumbai/1001 Delhi/1002 10.00",
                                            "deposit Mumbai/1002 5.00"]
    assert all(r["ok"] == "yes" and r["source"] == "gui" for r in rows)
    # the branch journal of one account
    app.logs.journal_scope.set("Delhi/1002")
    app.logs.load_journal()
    until(app.root, lambda: len(app.logs.journal_rows) == 2, "the journal of Delhi/1002")
    app.logs.export_journal_button.invoke()
    rows = list(csv.DictReader(open(target, newline="", encoding="utf-8")))
    assert [(r["kind"], r["amount"], r["balance_after"]) for r in rows] == [
        ("open", "5000.00", "5000.00"), ("2pc-credit", "10.00", "5010.00")]
    # clearing asks first; "no" keeps everything
    monkeypatch.setattr(logs_panel.messagebox, "askyesno", lambda *a, **kw: False)
    app.logs.clear_activity_button.invoke()
    assert len(app.activity.rows()) == 2
    monkeypatch.setattr(logs_panel.messagebox, "askyesno", lambda *a, **kw: True)
    app.logs.clear_activity_button.invoke()
    assert app.activity.rows() == [] and not app.logs.activity_tree.get_children()


@pytest.mark.slow
def test_screenshot_for_the_readme(app, bank, display, tmp_path):
    """The window fits 1280x800 and can be captured as a PNG. With BANK_SCREENSHOT=1 the
    capture replaces docs/screenshot.png for the README; otherwise it goes to a temp
    folder, so a test run never changes the work tree."""
    x11 = X11.open(display)
    if x11 is None:
        pytest.skip("libX11 cannot be loaded here: no screenshot")
    transfer(app, "Mumbai/1001", "Delhi/1002", "1200")
    until(app.root, lambda: "Done" in app.result.cget("text"), "a first transfer")
    transfer(app, "Delhi/1002", "Mumbai/1001", "99999")
    until(app.root, lambda: "Not done" in app.result.cget("text"), "an aborted transfer")
    transfer(app, "Delhi/1001", "Mumbai/1002", "450.50")
    until(app.root, lambda: "Done: 450.50" in app.result.cget("text"), "a third transfer")
    until(app.root, lambda: len(app.transactions.txns) == 3, "three transactions listed")
    txid = app.transactions.tree.get_children()[2]
    app.transactions.tree.selection_set(txid)
    until(app.root, lambda: arrows(app.transactions.diagram, "end", "coordinator", "log"),
          "the diagram")
    app.left_tabs.select(0)
    until(app.root, lambda: app.root.winfo_ismapped() and app.root.winfo_width() == 1280,
          "the window drawn at full size")
    app.root.update()
    png = x11.screenshot(0, 0, 1280, 800)
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert struct.unpack(">II", png[16:24]) == (1280, 800)
    target = SCREENSHOT if os.environ.get("BANK_SCREENSHOT") == "1" else tmp_path / "shot.png"
    target.parent.mkdir(exist_ok=True)
    target.write_bytes(png)


@pytest.mark.slow
def test_closing_the_window_stops_the_cluster_it_started(display, tmp_path):
    """`python gui_tk.py --home DIR` starts a local cluster; closing its window the way
    a user does (the window manager's WM_DELETE_WINDOW) stops every process it started."""
    x11 = X11.open(display)
    if x11 is None:
        pytest.skip("libX11 cannot be loaded here")
    proc = subprocess.Popen([sys.executable, str(KIT / "gui_tk.py"), "--home", str(tmp_path)],
                            cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    state_file, pids = tmp_path / "data" / "cluster.json", []
    try:
        deadline = time.monotonic() + 30
        window = None
        while window is None and time.monotonic() < deadline and proc.poll() is None:
            window = x11.find_window(TITLE)
            time.sleep(0.05)
        assert window, f"no window appeared: {proc.stdout.read1().decode()!r}"
        state = json.loads(state_file.read_text())
        pids = [m["pid"] for m in state["members"].values()]
        assert len(pids) == 3 and all(_running(pid) for pid in pids)
        x11.close_window(window)
        assert proc.wait(timeout=20) == 0
        assert not any(_running(pid) for pid in pids)
        assert not state_file.exists()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for pid in pids:                      # only the pids this test's window started
            if _running(pid):
                os.kill(pid, 9)


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_a_coordinator_that_refuses_the_key_is_not_shown_down(display, bank, tmp_path):  # noqa: F811
    """A window started with the wrong keys (or none) against a running coordinator
    shows it running but refusing this window's key, with the option that fixes it,
    never "down" in red beside a status line that says otherwise (Rule S4)."""
    from bank import keys, rpc
    from bank.local_cluster import COORDINATOR as COORD
    root = tk.Tk()
    window = App(root, rpc.Client(bank.coordinator_url, keys.new_keyring(), timeout=5),
                 activity=ActivityLog(tmp_path / "activity.csv"), source="wrong keys")
    try:
        until(root, lambda: "refuses this window's key" in window.branches.member_text(COORD),
              "the coordinator's row")
        assert window.seen.branch_state(COORD) == "down"      # it answers nothing we may read
    finally:
        window.close()
