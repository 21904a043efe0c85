"""The window for a classroom wall (issue 15), on a real Tk under Xvfb: what it says.

Rules checked: crashes, partitions, retries and decision queries are each marked on the
lifeline concerned, with a sign of their own and their words, inside their phase band,
read from the trace by the same function as the shell's text diagram (bank/views.py,
trace_mark); a recovered transfer is drawn from its recovery log (begin, prepares, yes
votes, the forced decision) above the restart, then its recovery (diagram Rule 3b,
bank/twopc_recovery.py TR1-TR3); a label too long for its arrow ends in "…" and shows in
full on hover, and so do the boxes; the gauge writes the presumption counters the
shell's `counters` prints; a withdrawal refused because money is held names the
transaction in doubt that holds it (bank/ledger.py), in the window and in the shell.
The fixtures (a display, a cluster, the app) are those of tests/test_gui.py.
"""

import os
import pathlib
import struct
import sys

import pytest

KIT = pathlib.Path(__file__).resolve().parent.parent
if str(KIT) not in sys.path:
    sys.path.insert(0, str(KIT))

tk = pytest.importorskip("tkinter")
from tkinter import ttk  # noqa: E402
from bank import views  # noqa: E402
from bank.window import diagram as draw  # noqa: E402
from bank.window.look import CanvasHover, Hover, Look  # noqa: E402
from test_gui import (app, arm_coordinator_crash, arrows, bank,  # noqa: E402,F401
                      display, transfer, until)
from x11shot import X11  # noqa: E402


def row(ms, src, dst, msg, detail="", **extra) -> dict:
    return {"at": "", "ms": ms, "from": src, "to": dst, "msg": msg, "detail": detail, **extra}


EVENTS = [  # (trace row, the mark views.trace_mark reads in it: kind, party)
    (row(5000, "coordinator", "log", "recovered", "found after a restart: committed"),
     ("crash", "coordinator")),
    (row(5002, "coordinator", "Delhi", "commit", "never sent: cut off (lab partition)",
         sent=False, kind="cut-off"), ("partition", "Delhi")),
    (row(6000, "coordinator", "coordinator", "retry", "waiting for Delhi"),
     ("retry", "coordinator")),
    (row(6001, "coordinator", "Delhi", "commit", "never sent: cannot be reached "
         "(connection refused)", sent=False, kind="unreachable"), ("crash", "Delhi")),
    (row(7000, "Delhi", "coordinator", "query", "decision? -> committed"),
     ("query", "Delhi")),
    (row(7001, "Delhi", "coordinator", "error", "ack not received: no answer in time (5 s)",
         kind="timeout"), None),                               # slow is not down
    (row(7002, "coordinator", "Mumbai", "commit"), None),
]


@pytest.mark.parametrize("trace_row, mark", EVENTS, ids=[e[0]["msg"] + "-" + str(e[1])
                                                         for e in EVENTS])
def test_the_trace_says_which_rows_are_events(trace_row, mark):
    """views Rule 2c: a restart is a crash of the coordinator, a refused connection a
    branch that is down, a lab partition a partition, a retry and a query themselves;
    a timeout is no mark (the branch may only be slow)."""
    found = views.trace_mark(trace_row)
    assert (found[:2] if found else None) == mark
    assert found is None or found[2]                          # with its words


def _transfer_with_every_event() -> dict:
    trace = [row(0, "coordinator", "log", "begin", "Mumbai/1001 -> Delhi/1002 10.00"),
             row(1, "coordinator", "Mumbai", "prepare", "1001 -10.00"),
             row(1, "coordinator", "Delhi", "prepare", "1002 +10.00"),
             row(3, "Mumbai", "coordinator", "vote", "yes", kind="yes"),
             row(4, "Delhi", "coordinator", "vote", "yes", kind="yes"),
             row(5, "coordinator", "log", "decision", "commit (forced to disk)"),
             row(6, "coordinator", "Mumbai", "commit"),
             row(7, "Mumbai", "coordinator", "ack", "commit", kind="ack")]
    trace += [e[0] for e in EVENTS[:5]]
    return {"txid": "C1-t", "src": "Mumbai/1001", "dst": "Delhi/1002", "amount": "10.00",
            "outcome": "committed", "state": "committing", "participants": ["Mumbai", "Delhi"],
            "waiting_for": ["Delhi"], "trace": trace, "votes": {}}


@pytest.mark.parametrize("font_size, width", [(10, 440), (10, 900), (14, 1300)])
def test_crashes_partitions_retries_and_queries_are_marked_in_their_phase(display, font_size,
                                                                          width):
    """Diagram Rule 3: each event gets a sign on the lifeline of the party concerned
    (a crash an octagon, a partition a wall, a retry a circle, a query a diamond), at
    its row inside its phase band, and its words under it; the shell's text diagram
    names the same events on the same rows (one reading of the trace)."""
    root = tk.Tk()
    try:
        Look(root, font_size)
        canvas = tk.Canvas(root, width=width, height=700)
        canvas.pack()
        root.update()
        txn = _transfer_with_every_event()
        draw.draw_sequence(canvas, txn, width)
        signs = {}
        for item in canvas.find_withtag("mark"):
            tags = canvas.gettags(item)
            kind = next(t[5:] for t in tags if t.startswith("mark-") and t[5:] in views.MARK_KINDS)
            party = next(t[8:] for t in tags if t.startswith("mark-at-"))
            signs.setdefault((kind, party), []).append((canvas.type(item), item))
        expected = [e[1] for e in EVENTS if e[1]]
        assert sorted(signs) == sorted(expected)
        shapes = {kind: {t for t, _ in items if t != "text"} for (kind, _), items in signs.items()}
        assert shapes == {"crash": {"polygon"}, "partition": {"polygon"}, "retry": {"oval"},
                          "query": {"polygon"}}
        colours = {kind: canvas.itemcget(items[0][1], "fill")
                   for (kind, _), items in signs.items()}
        assert len({colours["crash"], colours["partition"], colours["query"]}) == 3
        bands = [canvas.coords(i) for i in canvas.find_withtag("phase-band")]
        for (kind, party), items in signs.items():
            shape = next(i for t, i in items if t != "text")
            x0, y0, x1, y1 = canvas.bbox(shape)
            assert any(b[1] <= (y0 + y1) / 2 <= b[3] for b in bands), (kind, party)
            lifeline = canvas.coords(canvas.find_withtag(f"lifeline&&party-{party}")[0])[0]
            assert x0 < lifeline < x1, (kind, party)
            words = [canvas.itemcget(i, "text") for t, i in items if t == "text"
                     and "mark-label" in canvas.gettags(i)]
            assert words and all(w for w in words), (kind, party)
        assert canvas.find_withtag("mark-at-coordinator&&mark-label") and \
            canvas.find_withtag("phase-completion")
        text = views.sequence_diagram(txn)
        for kind in ("crash", "partition", "retry", "query"):
            assert f"[{kind}: " in text, text
        assert "Retries by the coordinator: 1; decision queries from branches: 1; crash " \
               "marks (a restart, or a connection refused): 2; messages kept back by a " \
               "partition: 1" in text
    finally:
        root.destroy()


@pytest.mark.parametrize("width", [440, 560])
def test_the_no_messages_note_is_wrapped_within_the_drawing(display, width):
    """Diagram Rule 4 (and fit Rule F3): a transfer with no messages kept (it finished
    before the coordinator last restarted) says so in a note that wraps between words
    inside the diagram's width; it is never cut at the canvas edge, mid-word."""
    root = tk.Tk()
    try:
        Look(root, 10)
        canvas = tk.Canvas(root, width=width, height=400)
        canvas.pack()
        root.update()
        txn = dict(_transfer_with_every_event(), trace=[], state="committed",
                   waiting_for=[])
        draw.draw_sequence(canvas, txn, width)
        [note] = [i for i in canvas.find_withtag("note")
                  if "No messages kept" in canvas.itemcget(i, "text")]
        assert canvas.bbox(note)[2] <= width, (canvas.bbox(note), width)
        assert canvas.itemcget(note, "text") == draw.NO_MESSAGES     # whole, not shortened
    finally:
        root.destroy()


def test_a_shortened_label_ends_in_an_ellipsis_and_shows_in_full_on_hover(display):
    """Diagram Rule 4: at 1024x768 a label longer than its arrow is cut with a visible
    "…" (never silently), and hovering over it, or over a box, shows the full text."""
    root = tk.Tk()
    try:
        Look(root, 10)
        canvas = tk.Canvas(root, width=440, height=600)
        canvas.pack()
        root.update()
        draw.draw_sequence(canvas, _transfer_with_every_event(), 440)
        assert float(canvas.cget("scrollregion").split()[2]) <= 440     # no sideways scroll
        hover = CanvasHover(canvas)
        cut = [i for i in canvas.find_withtag("label") if "…" in canvas.itemcget(i, "text")]
        assert cut
        for item in canvas.find_withtag("label"):
            shown = canvas.itemcget(item, "text")
            if not shown.endswith("…"):
                continue
            x0, y0, x1, y1 = canvas.bbox(item)
            full = hover.text_at((x0 + x1) // 2, (y0 + y1) // 2)
            assert full.startswith(shown[:-1].rstrip()) and len(full) > len(shown) - 1
        box = canvas.bbox(canvas.find_withtag("decision-box")[0])
        assert "forced to disk" in hover.text_at((box[0] + box[2]) // 2, (box[1] + box[3]) // 2)
        party = canvas.bbox(canvas.find_withtag("party-log&&party-box")[0])
        assert "recovery log" in hover.text_at(party[0] + 3, party[1] + 3)
    finally:
        root.destroy()


@pytest.mark.slow
def test_a_recovered_transfer_is_drawn_from_its_log_then_its_recovery(app):
    """Diagram Rule 3b (twopc_recovery TR1-TR3): the coordinator crashes right after forcing
    its commit; after its restart the window draws, above the restart's cut line, the
    begin, both prepares, both yes votes and the decision box "commit: on disk", rebuilt
    from the recovery log (dotted, tag rebuilt), then the crash mark and the commits
    re-sent: never a diagram without its decision."""
    arm_coordinator_crash(app)
    transfer(app, "Mumbai/1001", "Delhi/1002", "400")
    until(app.root, lambda: app.seen.branch_state("coordinator") == "down", "coordinator down")
    app.lab.buttons["coordinator"]["restart"].invoke()
    txid = until(app.root, lambda: next(iter(app.transactions.txns), ""), "the recovered one")
    until(app.root, lambda: app.transactions.txns[txid]["state"] == "committed", "committed")
    app.transactions.tree.selection_set(txid)
    canvas = app.transactions.diagram
    until(app.root, lambda: arrows(canvas, "end", "coordinator", "log"), "the whole diagram")
    # The box says "commit: on disk", shortened in a narrow pane (layout Rule 4c) but
    # whole on hover: the hover text is what is checked, whatever the pane's width.
    until(app.root, lambda: any(canvas.tips.get(i, "").startswith("decision: commit")
                                and canvas.itemcget(i, "text").startswith("commi")
                                for i in canvas.find_withtag("decision-box")
                                if canvas.type(i) == "text"), "the decision box")
    cut = min(canvas.coords(i)[1] for i in canvas.find_withtag("cut")
              if canvas.type(i) == "line")
    rebuilt = {}
    for item in canvas.find_withtag("rebuilt&&arrow"):
        msg = next(t[4:] for t in canvas.gettags(item) if t.startswith("msg-"))
        rebuilt[msg] = rebuilt.get(msg, 0) + 1
        assert canvas.coords(item)[1] < cut
    assert rebuilt == {"begin": 1, "prepare": 2, "vote": 2, "decision": 1}, rebuilt
    box = canvas.find_withtag("decision-box")
    assert canvas.bbox(box[0])[3] < cut
    crash = canvas.find_withtag("mark-crash&&mark-at-coordinator")
    assert crash and canvas.bbox(crash[0])[1] > cut
    commits = [canvas.coords(i)[1] for i in canvas.find_withtag("arrow&&msg-commit")]
    assert len(commits) >= 2 and min(commits) > cut
    _screenshot(app, "recovered.png")


def _screenshot(app, name: str) -> None:
    """The window as it is, for the README: docs/NAME with BANK_SCREENSHOT=1 (else not
    kept, so a test run never changes the work tree)."""
    x11 = X11.open(os.environ.get("DISPLAY", ""))
    if x11 is None or os.environ.get("BANK_SCREENSHOT") != "1":
        return
    until(app.root, lambda: app.root.winfo_ismapped() and app.root.winfo_width() == 1280,
          "the window drawn at full size")
    app.root.update()
    png = x11.screenshot(0, 0, 1280, 800)
    assert struct.unpack(">II", png[16:24]) == (1280, 800)
    (KIT / "docs" / name).write_bytes(png)


@pytest.mark.slow
def test_the_gauge_writes_the_presumption_counters_the_shell_counts(app, bank):
    """Gauge Rule G3: when the coordinator counts (its ping has "counters"), the gauge
    writes forced writes and messages per transfer since the window opened: the very
    numbers the shell's `counters` prints for the same span (bank/counters.py). Two
    transfers one after the other cost 5 messages and 5 forced writes each; the
    branches' preloaded accounts are not counted in."""
    from bank.counters import per_transfer, totals
    gauge = app.branches.gauge

    def costs():
        return " ".join(gauge.itemcget(i, "text") for i in gauge.find_withtag("gauge-costs"))
    coordinator = bank.coordinator()
    until(app.root, lambda: "no transfer between branches since" in costs(), "no cost yet")
    for amount in ("10", "20"):
        transfer(app, "Mumbai/1001", "Delhi/1002", amount)
        until(app.root, lambda: f"Done: {amount}" in app.result.cget("text"), "a transfer")
    until(app.root, lambda: "2 since this window opened" in costs(),
          "the costs of two transfers")

    def the_shells_numbers():
        """The rows of `counters` for the window's span, if the gauge writes the same
        numbers (the counts settle once the transfers' last records are written)."""
        rows = {what.strip(): value for what, value, _ in per_transfer(totals(
            coordinator.call("ping")["counters"],
            {b["name"]: b.get("counters") or {} for b in coordinator.call("branches")}),
            app.seen.counted_from)}
        written = costs()
        parts = [f"{rows['messages per transfer']} messages",
                 f"{rows['fsyncs per transfer']} forced writes"]
        if "recovery log" in written:                   # in full when it fits one line
            parts += [f"recovery log {rows['of which the recovery log']}",
                      f"branches {rows['of which branch COMMITs']}"]
        return all(part in written for part in parts) and rows
    rows = until(app.root, the_shells_numbers, "the gauge to write the shell's numbers")
    assert rows["messages per transfer"] == "5.00", rows
    # 5 forced writes per transfer (the commit record; a prepare and a commit at each
    # branch), plus at most the configuration the manager records for each branch just
    # after start (one write at the coordinator and one at the branch, 4 in all, so 2.00
    # per transfer here); never the preloaded accounts, which made it 13.00 before the
    # window counted from its opening.
    assert 5.0 <= float(rows["fsyncs per transfer"]) <= 7.0, rows
    x0, _, x1, _ = gauge.bbox(gauge.find_withtag("gauge-costs")[0])
    assert x1 <= gauge.winfo_width()                       # wrapped inside the bar's width


@pytest.mark.slow
def test_a_refusal_because_money_is_held_names_the_transaction_in_doubt(app, bank, dead_url):
    """bank/ledger.py: Mumbai holds 400.00 of 1001 for a transaction whose coordinator is
    gone (prepared, in doubt). A withdrawal that only the held money would cover is
    refused in one sentence naming that transaction and saying it is in doubt, in the
    window's result and in the shell (the sentence comes from the branch's ledger; the
    window writes its amounts as it writes all money, 9,600.00); nothing moves."""
    from shelltest import run, shell_on
    mumbai = bank.client("Mumbai")
    vote = mumbai.call("prepare", "T-held-1", dead_url, [{"account": "1001", "delta": "-400.00"}])
    assert vote["vote"] == "yes"
    until(app.root, lambda: app.branches.tree.exists("a:Mumbai/1001") and
          app.branches.tree.set("a:Mumbai/1001", "held") == "400.00", "the hold shown")
    app.left_tabs.select(2)
    app.operations.withdraw.account.set("Mumbai/1001")
    app.operations.withdraw.amount.set("9700")
    app.operations.withdraw.button.invoke()
    said = until(app.root, lambda: (lambda t: t.startswith("Refused") and t)(
        app.result.cget("text")), "the refusal")
    assert said == ("Refused: Insufficient funds in Mumbai/1001: 9,600.00 available, 9,700.00 "
                    "needed; 400.00 is held by transaction T-held-1 (in doubt: prepared, "
                    "waiting for the coordinator's decision)."), said
    assert said.count(". ") == 0                                  # one sentence
    out = run(shell_on(bank), "withdraw Mumbai/1001 9700")
    assert "400.00 is held by transaction T-held-1 (in doubt" in out, out
    assert mumbai.call("accounts")[0]["balance"] == "10000.00"


def test_a_hovered_cell_shows_its_own_text_when_a_column_before_it_is_hidden(display):
    """Rule L4: hovering over a cut cell shows that cell's whole text, also in a table
    that hides some of its columns (the blocked map drops its time in a narrow panel),
    never the text of the column at the same place among all of them."""
    root = tk.Tk()
    try:
        tree = ttk.Treeview(root, columns=("branch", "since", "waiting"), show="headings")
        tree.pack()
        tree.column("waiting", width=40)
        tree.insert("", "end", iid="r", values=("Mumbai", "10:00:00",
                                                "the coordinator's decision, asked every 2 s"))
        tree.configure(displaycolumns=("branch", "waiting"))
        root.update()
        assert Hover(tree).full_text("r", "#2") == "the coordinator's decision, asked every 2 s"
    finally:
        root.destroy()
