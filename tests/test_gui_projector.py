"""The window for a classroom wall (issue 15), on a real Tk under Xvfb: projector mode.

Rules checked: every size follows the font size and never passes the screen; no table
column is narrower than its heading and no diagram box overlaps another, at 1024x768
and at font size 14; the diagram draws the phases around the commit point; money is
formatted like the branches tree, and no amount is cut (fit.py, Rule F5); a blocked
bank is visible on the projector. The fixtures (a display, a cluster) and helpers are
those of tests/test_gui.py.
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
from tkinter import font as _font  # noqa: E402,F401  (tk.font)
from tkinter import ttk  # noqa: E402

from bank.activity import ActivityLog  # noqa: E402
from bank.window import diagram as draw  # noqa: E402
from bank.window import fit  # noqa: E402
from bank.window import logs as logs_panel  # noqa: E402
from bank.window.app import App  # noqa: E402
from test_gui import (_all_widgets, arm_coordinator_crash, arrows, bank,  # noqa: E402,F401
                      display, transfer, until)
from x11shot import X11  # noqa: E402



@pytest.mark.parametrize("scale, screen, expected", [
    (1.0, (1920, 1080), (1280, 800)), (1.4, (1920, 1080), (1792, 1080)),
    (1.0, (1024, 768), (1024, 768)), (1.6, (1280, 800), (1280, 800))])
def test_the_window_grows_with_the_font_but_never_past_the_screen(scale, screen, expected):
    """Rule L4: the window opens at 1280x800 times font-size / 10, within the screen."""
    from bank.window.look import window_size
    assert window_size(scale, screen) == expected


@pytest.mark.parametrize("wire, shown", [("-1200.00", "-1,200.00"), ("1200.00", "1,200.00"),
                                          ("0.00", "0.00"), ("+3.50", "3.50"),
                                          ("5000000.00", "5,000,000.00"), ("odd", "odd"),
                                          ("2000009999.98", "2,000,009,999.98")])
def test_the_journal_tab_shows_money_like_the_branches_tree(wire, shown):
    """The journal tab formats money as the tree does (thousands separated, never a
    float), a balance above the most one operation may move too; the CSV export keeps
    the wire form; anything odd is shown as it came."""
    assert logs_panel.money_text(wire) == shown


@pytest.mark.parametrize("said, shown", [
    ("Done: 20000.00 moved from Mumbai/1001 to Delhi/1002 (C1-20261129T173327-c3386d).",
     "Done: 20,000.00 moved from Mumbai/1001 to Delhi/1002 (C1-20261129T173327-c3386d)."),
    ("prepare 1001 -1200.00", "prepare 1001 -1,200.00"), ("held 400.00", "held 400.00"),
    ("9600.00 available, 1234567.89 needed", "9,600.00 available, 1,234,567.89 needed"),
    ("at 17:33:28, 1,200.00 already", "at 17:33:28, 1,200.00 already")])
def test_the_window_writes_every_amount_with_thousands_separated(said, shown):
    """One format for money in the window (bank/money.py, with_thousands): the result
    sentences, a branch's refusal and the diagram's labels write 20,000.00 as the tree
    does (they said 20000.00); account numbers, txids and times are left alone."""
    from bank.money import with_thousands
    assert with_thousands(said) == shown


@pytest.mark.parametrize("room, others, expected", [
    (700, 300, 7), (700, 480, 6), (700, 520, 4), (700, 550, 3), (700, 560, 5),
    (400, 500, 5)])
def test_the_tree_keeps_its_rows_and_gives_the_rest_to_the_form(room, others, expected):
    """fit.py Rule F1: the tree shows every row (7) when the column has room and gives
    up rows to the other parts (the form shown whole, its button in sight) down to
    LEAST_TREE_ROWS (3); when even that would not make the form whole, it keeps
    MIN_TREE_ROWS (every member and two accounts) and the form scrolls."""
    assert fit.tree_rows(room, others, overhead=70, row_h=25, wanted=7) == expected


@pytest.mark.parametrize("text, room, expected", [
    ("local cluster, attached", 30, "local cluster, attached"),
    ("local cluster, started by this window", 17, "local cluster…"),
    ("local cluster, started by this window", 26, "local cluster, started by…"),
    ("branches · balances", 12, "branches…"), ("coordinator", 5, "")])
def test_a_long_line_is_shortened_between_words_with_a_mark(text, room, expected):
    """fit.py Rule F3: a line too long for its room keeps its whole words that fit and
    ends with "…" (never a word cut, never a trailing comma or dot); "" if none fits."""
    assert fit.shorten(text, room, len) == expected


def test_a_state_is_shortened_between_its_parts():
    """Branches Rule B5 (with fit.py F3): a member's state keeps whole parts, the first
    ones, so "0 in flight" is never shown as "0…"."""
    assert fit.shorten("● up · 0 in flight", 10, len, sep=" · ") == "● up…"
    assert fit.shorten("● up · 1 in doubt · primary", 20, len, sep=" · ") == \
        "● up · 1 in doubt…"


@pytest.mark.parametrize("rows, expected", [
    ([("begin", 1), ("prepare", 2), ("vote", 3), ("decision", 4), ("commit", 5), ("end", 6)],
     [("voting", 1, 3), ("decision", 4, 4), ("completion", 5, 6)]),
    ([("begin", 1), ("prepare", 2), ("error", 3)], [("voting", 1, 3)]),
    ([("recovered", 1), ("decision", 2), ("commit", 3)],
     [("voting", 1, 1), ("decision", 2, 2), ("completion", 3, 3)]),
    ([], [])])
def test_the_diagram_draws_the_phases_around_the_commit_point(rows, expected):
    """Diagram: voting runs up to the decision, the decision row is the commit point,
    completion follows it; with no decision yet, everything drawn is voting."""
    assert draw.phases(rows) == expected


def _overlap(a, b) -> bool:
    """Two canvas bounding boxes (x0, y0, x1, y1) share more than a pixel's edge."""
    return a[0] < b[2] - 1 and b[0] < a[2] - 1 and a[1] < b[3] - 1 and b[1] < a[3] - 1


def _projector_window(bank, tmp_path, font_size: int, geometry: str, source=""):
    root = tk.Tk()
    window = App(root, bank.coordinator(timeout=15), cluster=bank, font_size=font_size,
                 activity=ActivityLog(tmp_path / f"activity-{font_size}.csv"), source=source)
    if geometry:
        root.geometry(geometry)
    until(root, lambda: len(window.seen.account_refs()) == 4, "the accounts")
    return window


@pytest.mark.slow
@pytest.mark.parametrize("font_size, geometry, least_width", [
    (10, "1024x768", 1024), (14, "", 1700)])
def test_projector_mode_cuts_no_heading_and_overlaps_no_box(display, bank, tmp_path,
                                                            font_size, geometry, least_width):
    """Rule L4 and diagram Rule 4: at 1024x768, and at --font-size 14 on a 1920x1080
    screen (where the window grows with the font), no column of any table is narrower
    than its heading, and the diagram's boxes (parties, the decision) overlap neither
    each other nor the labels beside them; a party's name fits in its box."""
    app = _projector_window(bank, tmp_path, font_size, geometry)
    try:
        transfer(app, "Mumbai/1001", "Delhi/1002", "1200")
        until(app.root, lambda: "Done" in app.result.cget("text"), "the transfer")
        txid = until(app.root, lambda: next(iter(app.transactions.txns), ""), "listed")
        app.transactions.tree.selection_set(txid)
        canvas = app.transactions.diagram
        until(app.root, lambda: arrows(canvas, "end", "coordinator", "log"), "the diagram")
        until(app.root, lambda: app.root.winfo_width() >= least_width, "the window's size")
        app.root.update()
        _assert_no_heading_is_cut(app, font_size)
        assert {canvas.gettags(i)[1] for i in canvas.find_withtag("phase")} >= {
            "phase-voting", "phase-decision", "phase-completion"}
        boxes = [canvas.bbox(i) for i in canvas.find_withtag("party-box")]
        boxes += [canvas.bbox(canvas.find_withtag("decision-box")[0])]
        assert len(boxes) == 5
        for i, a in enumerate(boxes):
            assert not any(_overlap(a, b) for b in boxes[i + 1:]), (a, font_size)
        for label in canvas.find_withtag("label"):
            assert not _overlap(canvas.bbox(label), boxes[-1]), canvas.itemcget(label, "text")
        for title in canvas.find_withtag("party-title"):
            name = canvas.gettags(title)[1]
            box = canvas.bbox(canvas.find_withtag(f"{name}&&party-box")[0])
            tx0, _, tx1, _ = canvas.bbox(title)
            assert box[0] <= tx0 and tx1 <= box[2], name
        if geometry == "1024x768":
            _assert_fits_a_small_screen(app, canvas)
    finally:
        app.close()


LONG_SOURCE = ("local cluster, started by this window (stops when it closes) · "
               "http://127.0.0.1:43067")


@pytest.mark.slow
@pytest.mark.parametrize("font_size", [10, 14])
def test_a_1024x768_projector_shows_every_member_and_cuts_no_label(display, bank, tmp_path,
                                                                   font_size):
    """fit.py Rules F1-F3 and branches Rule B5 on an ordinary projector (1024x768), with
    the default font and with --font-size 14, whichever left tab is shown: the branches
    tree shows at least every branch, the coordinator and two accounts (5 rows) whole,
    no member's state cut, no transaction's From → to or State cut without "…"; a form
    cut short has a scrollbar; no notebook tab's label is
    wider than its tab; no tree column is narrower than its heading; the header's texts
    are whole or end with "…" and do not overlap. At font 14, with BANK_SCREENSHOT=1,
    the window after a transfer replaces docs/projector-1024.png (else a temp file)."""
    app = _projector_window(bank, tmp_path, font_size, "1024x768+0+0", source=LONG_SOURCE)
    try:
        root = app.root
        _transfer_and_select(app)
        until(root, lambda: arrows(app.transactions.diagram, "end", "coordinator", "log"),
              "the diagram")
        until(root, lambda: (root.winfo_width(), root.winfo_height()) == (1024, 768),
              "the window at 1024x768")
        for tab in range(len(app.left_tabs.tabs())):
            app.left_tabs.select(tab)
            _settle(root)
            assert _visible_rows(app.branches.tree) >= 5, (font_size, tab)
            _assert_no_state_is_cut(app)
            _assert_no_transfer_is_cut(app)
            form = root.nametowidget(app.left_tabs.select()).winfo_children()
            canvas, bar = form[0], form[1]
            assert canvas.winfo_height() + 1 >= canvas.winfo_reqheight() or \
                bar.winfo_ismapped(), (font_size, tab)
        _assert_every_lab_button_in_reach(app)
        font = tk.font.nametofont("TkDefaultFont")          # the tabs' font
        for notebook in (app.left_tabs, app.right_tabs):
            for text, width in _tab_widths(notebook):
                assert font.measure(text) + 4 <= width, (text, width, font_size)
        _assert_no_heading_is_cut(app, font_size)
        _assert_header_whole_or_marked(app)
        if font_size == 14:
            app.left_tabs.select(0)
            _settle(root)
            _screenshot(display, (1024, 768), "projector-1024.png", tmp_path)
    finally:
        app.close()


@pytest.mark.slow
@pytest.mark.parametrize("font_size, geometry", [
    (10, "1280x800"), (10, "1024x768"), (14, "1280x720"), (14, "")])
def test_a_route_is_shortened_only_when_the_list_has_no_room_for_it(display, bank,
                                                                   tmp_path, font_size,
                                                                   geometry):
    """fit.py Rule F4: From → to gives way only when State would get less than its
    least; while there is room it is as wide as its whole text. At the default window
    (1280x800), the State column had 170 px to spare and every route still read
    'Mumbai/1001 →…', its destination gone (the column kept its 23 digits, a little
    less than the whole route and the cell's padding)."""
    app = _projector_window(bank, tmp_path, font_size,
                            geometry + "+0+0" if geometry else "", source=LONG_SOURCE)
    try:
        txid = _transfer_and_select(app)
        if geometry:
            width, height = map(int, geometry.split("x"))
            until(app.root, lambda: (app.root.winfo_width(), app.root.winfo_height())
                  == (width, height), f"the window at {geometry}")
        _settle(app.root)
        tree = app.transactions.tree
        assert tree.set(txid, "transfer") == "Mumbai/1001 → Delhi/1002", \
            (tree.column("transfer", "width"), tree.column("state", "width"))
        _assert_no_transfer_is_cut(app)
    finally:
        app.close()


def _screenshot(display, size: tuple, name: str, tmp_path) -> None:
    """Capture the screen's top left `size`: docs/NAME with BANK_SCREENSHOT=1, else a
    temp file (a test run never changes the work tree); skipped without libX11."""
    x11 = X11.open(display)
    if x11 is None:
        return
    png = x11.screenshot(0, 0, *size)
    assert struct.unpack(">II", png[16:24]) == size
    target = KIT / "docs" / name if os.environ.get("BANK_SCREENSHOT") == "1" \
        else tmp_path / name
    target.write_bytes(png)


def _assert_every_lab_button_in_reach(app) -> None:
    """Lab Rule A5: every button of the Lab tab is inside the tab's width (in a narrow
    column the buttons go under the member's name), so none is out of reach."""
    app.left_tabs.select(4)
    _settle(app.root)
    tab = app.root.nametowidget(app.left_tabs.select())
    right = tab.winfo_rootx() + tab.winfo_width()
    buttons = [b for row in app.lab.buttons.values() for b in row.values()]
    assert len(buttons) == 14                # the coordinator's 2, each branch's 6
    for button in [*buttons, app.lab.arm_button]:
        assert button.winfo_rootx() + button.winfo_width() <= right, button.cget("text")


def _settle(root, rounds: int = 10) -> None:
    """Let the window lay itself out: a few rounds of Tk's idle work (no waiting)."""
    for _ in range(rounds):
        root.update()


def _visible_rows(tree) -> int:
    """How many of the tree's rows are in sight whole (Treeview.bbox is '' out of sight)."""
    bottom, count = tree.winfo_height(), 0
    pending = list(tree.get_children(""))
    while pending:
        iid = pending.pop(0)
        box = tree.bbox(iid)
        count += bool(box) and box[1] + box[3] <= bottom
        if tree.item(iid, "open"):
            pending[:0] = tree.get_children(iid)
    return count


def _tab_widths(notebook) -> list:
    """(label, width in pixels) of each tab, found by asking the notebook which tab is
    under each pixel of its row of tabs (the row where every tab is)."""
    notebook.update()
    for row in range(1, 80):
        spans = {}
        for x in range(notebook.winfo_width()):
            index = _tab_at(notebook, x, row)
            if index is not None:
                lo, hi = spans.get(index, (x, x))
                spans[index] = (min(lo, x), max(hi, x))
        if len(spans) == len(notebook.tabs()):
            return [(notebook.tab(i, "text"), hi - lo + 1)
                    for i, (lo, hi) in sorted(spans.items())]
    raise AssertionError(f"no row of {notebook} shows all its tabs")


def _tab_at(notebook, x: int, y: int):
    try:
        index = notebook.index(f"@{x},{y}")
    except tk.TclError:
        return None
    return index if isinstance(index, int) else None


def _assert_no_heading_is_cut(app, font_size) -> None:
    """Rule L4: no column of any table is narrower than its heading."""
    trees = [w for w in _all_widgets(app.root) if isinstance(w, tk.ttk.Treeview)]
    assert len(trees) >= 4                  # branches, transactions, activity, journals
    for tree in trees:
        for col in ("#0", *tree.cget("columns")):
            heading = tree.heading(col, "text")
            if heading and (col != "#0" or "tree" in str(tree.cget("show"))):
                assert tree.column(col, "width") >= \
                    app.look.heading_font.measure(heading), (heading, font_size)


def _assert_header_whole_or_marked(app) -> None:
    """fit.py Rule F3: each text of the header is whole, or its words that fit and "…"
    (the whole text on hover); the texts do not overlap and none passes the window."""
    font = tk.font.nametofont("TkDefaultFont")
    labels = [w for w in _all_widgets(app.root) if isinstance(w, ttk.Label)
              and w.master == app.source_label.master]
    assert len(labels) == 3                 # the title, what it shows, the source
    for shortened in app.header:
        text = shortened.label.cget("text")
        assert text == shortened.full or (text.endswith("…") and shortened.full.startswith(
            text[:-1]) and shortened.full[len(text) - 1] in " ,·;:-") or text == ""
        assert font.measure(text) <= shortened.label.winfo_width() or not text
    assert app.source_label.cget("text"), "the source is never left out"
    spans = sorted((w.winfo_x(), w.winfo_x() + w.winfo_width()) for w in labels
                   if w.cget("text"))
    assert all(a[1] <= b[0] for a, b in zip(spans, spans[1:])), spans
    assert spans[-1][1] <= app.source_label.master.winfo_width()


def _assert_fits_a_small_screen(app, canvas) -> None:
    """Diagram Rule 4 and branches Rule B5 at 1024x768: the 2-branch transfer's diagram
    needs no sideways scrolling (its drawing ends inside the canvas) and no member's
    state is cut in the branches tree (its column is as wide as its longest state)."""
    drawn = canvas.bbox("party-box || lifeline || arrow || decision-box || label")
    assert float(canvas.cget("scrollregion").split()[2]) <= canvas.winfo_width()
    assert drawn[2] <= canvas.winfo_width(), (drawn, canvas.winfo_width())
    assert canvas.xview() == (0.0, 1.0)
    _assert_no_state_is_cut(app)


def _assert_no_transfer_is_cut(app) -> None:
    """fit.py Rule F4: the transactions list shows each From → to and State whole, or
    shortened with "…" (whole on hover), never cut at the column's edge, and a route
    keeps its whole source account."""
    panel = app.transactions
    tree, font = panel.tree, tk.font.nametofont("TkDefaultFont")
    assert tree.get_children("")
    for txid in tree.get_children(""):
        for col in ("transfer", "state"):
            shown, whole = tree.set(txid, col), panel.whole[txid][col]
            marked = shown.endswith("…") and whole.startswith(shown[:-1])
            assert shown == whole or marked, (shown, whole)
            assert font.measure(shown) <= tree.column(col, "width"), (col, shown)
        source = panel.whole[txid]["transfer"].split(" → ")[0]
        assert tree.set(txid, "transfer").startswith(source)      # never "Mumbai/100…"


def _assert_no_state_is_cut(app) -> None:
    """Branches Rule B5: every member's state fits its column (shown, and wide enough, in
    the row's bold font), whole or its first words and "…" (whole on hover)."""
    tree, bold = app.branches.tree, tk.font.nametofont("TkHeadingFont")
    members = tree.get_children("")
    assert len(members) == 3 and all(tree.set(iid, "owner") for iid in members)
    assert "owner" in tree.cget("displaycolumns") or tree.cget("displaycolumns") == ("#all",)
    for iid in members:
        shown, whole = tree.set(iid, "owner"), app.branches.states[iid]
        assert shown == whole or (shown.endswith("…") and whole.startswith(shown[:-1])
                                  and whole[len(shown) - 1] in " ·"), (shown, whole)
        assert bold.measure(shown) + 8 <= tree.column("owner", "width"), shown


@pytest.mark.slow
def test_projector_screenshot_of_a_blocked_bank(display, bank, tmp_path):
    """At --font-size 14 on a 1920x1080 screen the window grows to 1792x1080 and can be
    captured: a committed transfer's diagram, then the coordinator crashed after its
    decision, the blocking map and the held money on the gauge, and no member's state
    cut in the branches tree (Rule B5). With BANK_SCREENSHOT=1
    the capture replaces docs/projector.png for the README (else a temp file)."""
    x11 = X11.open(display)
    if x11 is None:
        pytest.skip("libX11 cannot be loaded here: no screenshot")
    app = _projector_window(bank, tmp_path, 14, "+0+0")
    try:
        transfer(app, "Mumbai/1001", "Delhi/1002", "1200")
        until(app.root, lambda: "Done" in app.result.cget("text"), "a first transfer")
        txid = until(app.root, lambda: next(iter(app.transactions.txns), ""), "listed")
        app.transactions.tree.selection_set(txid)
        until(app.root, lambda: arrows(app.transactions.diagram, "end", "coordinator", "log"),
              "the diagram")
        arm_coordinator_crash(app)
        transfer(app, "Delhi/1001", "Mumbai/1002", "400")
        until(app.root, lambda: len(app.transactions.blocked.get_children()) == 2
              and app.branches.split["held"] == 400_00
              and "NOT CURRENT" in app.transactions.title.cget("text")
              and all("DOWN" in app.transactions.blocked.set(i, "waiting")
                      for i in app.transactions.blocked.get_children()), "the blocked bank")
        size = app.look.size
        until(app.root, lambda: (app.root.winfo_width(), app.root.winfo_height()) == size,
              "the window at its full size")
        app.root.update()
        assert any("1 in doubt" in app.branches.tree.set(m, "owner")
                   for m in app.branches.tree.get_children(""))
        _assert_no_state_is_cut(app)                 # Rule B5, with the longer states
        png = x11.screenshot(0, 0, *size)
        assert struct.unpack(">II", png[16:24]) == size == (1792, 1080)
        target = KIT / "docs" / "projector.png" if os.environ.get("BANK_SCREENSHOT") == "1" \
            else tmp_path / "projector.png"
        target.write_bytes(png)
    finally:
        app.close()


@pytest.mark.slow
@pytest.mark.parametrize("geometry", ["1024x768", "1280x720"])
def test_a_small_projector_at_font_14_keeps_the_form_the_diagram_and_the_state(
        display, bank, tmp_path, geometry):
    """fit.py Rules F1 and F4, diagram Rule 4c, at --font-size 14 on 1024x768 and
    1280x720 (what --help suggests for a projector): after a transfer whose result runs
    to three lines, the Transfer button is in sight (the result scrolls, two lines at
    most; it hid the Amount field and the button); the diagram of a transfer between
    two branches ends inside its canvas with every party's title written (only "De" of
    Delhi showed); the transactions list shows its State column whole (the txid gives
    way); and the mouse wheel over a label of the Lab tab scrolls it (only the empty
    space between widgets did)."""
    app = _projector_window(bank, tmp_path, 14, geometry + "+0+0", source=LONG_SOURCE)
    try:
        root = app.root
        _transfer_and_select(app)
        canvas = app.transactions.diagram
        until(root, lambda: arrows(canvas, "end", "coordinator", "log"), "the diagram")
        width, height = map(int, geometry.split("x"))
        until(root, lambda: (root.winfo_width(), root.winfo_height()) == (width, height),
              f"the window at {geometry}")
        app.left_tabs.select(0)
        _settle(root)
        assert app.result.winfo_reqheight() > 2.5 * app.look.line_px       # 3 lines...
        assert app.result_box.winfo_height() < 2.5 * app.look.line_px + 12  # ...2 shown
        tab = root.nametowidget(app.left_tabs.select())
        for widget in (app.operations.transfer.button, *tab.winfo_children()[0]
                       .winfo_children()[0].winfo_children()):
            assert widget.winfo_rooty() + widget.winfo_height() <= \
                tab.winfo_rooty() + tab.winfo_height() + 1, (geometry, widget)
        assert app.operations.transfer.button.winfo_ismapped()
        drawn = canvas.bbox("party-box || lifeline || arrow || decision-box || label")
        assert drawn[2] <= draw.visible_width(canvas), (drawn, canvas.winfo_width())
        assert float(canvas.cget("scrollregion").split()[2]) <= canvas.winfo_width()
        titles = [canvas.itemcget(i, "text") for i in canvas.find_withtag("party-title")]
        assert len(titles) == 4 and all(titles), titles
        tree = app.transactions.tree
        shown = [c for c in tree.cget("displaycolumns")] if tree.cget("displaycolumns") \
            != ("#all",) else list(tree.cget("columns"))
        assert "state" in shown
        right = sum(tree.column(c, "width") for c in shown[:shown.index("state") + 1])
        assert right <= tree.winfo_width(), (right, tree.winfo_width())
        app.left_tabs.select(4)
        _settle(root)
        pane = root.nametowidget(app.left_tabs.select()).winfo_children()[0]
        if pane.yview() != (0.0, 1.0):                     # the Lab tab is cut short here
            label = app.lab.names["Delhi"]
            label.event_generate("<Button-5>")
            _settle(root, 3)
            assert pane.yview()[0] > 0, "the wheel over a label scrolls the Lab tab"
        _screenshot(display, (width, height), f"projector-{width}x{height}-f14.png", tmp_path)
    finally:
        app.close()


def _transfer_and_select(app) -> str:
    """Transfer 1,200.00 Mumbai -> Delhi through the form, wait for it, select it in
    the list (its diagram is then drawn); its txid."""
    transfer(app, "Mumbai/1001", "Delhi/1002", "1200")
    until(app.root, lambda: "Done" in app.result.cget("text"), "the transfer")
    txid = until(app.root, lambda: next(iter(app.transactions.txns), ""), "listed")
    app.transactions.tree.selection_set(txid)
    return txid


MOST = "999,999,999.99"       # the most one operation may move (bank/money.py), as typed


@pytest.mark.slow
@pytest.mark.parametrize("font_size, geometry", [(10, ""), (14, "1024x768+0+0")])
def test_a_large_amount_is_never_cut(display, bank, tmp_path, font_size, geometry):
    """fit.py Rule F5, money is never cut: after two deposits of 999,999,999.99 into
    Mumbai/1001 (its balance 2,000,009,999.98), a transfer of as much, and another one
    left in doubt by a coordinator that crashed after its decision, every cell that
    holds money fits its column, in the font its row is drawn in: the transactions
    list's amount, the branch journal's amount and balance, the activity log's command
    and result, the branches tree's money columns, and the blocked map's money held, in
    sight (it cannot scroll sideways): whole, or in a narrow map (1024x768, font 14)
    its first words and "…", whole on hover. At the default size and at --font-size 14
    on 1024x768. (A Treeview cuts a cell silently: 1,234,567,890.12 showed as
    "1,234,567,8", and a class read a wrong amount.)"""
    app = _projector_window(bank, tmp_path, font_size, geometry)
    try:
        root = app.root
        for balance in ("1,000,009,999.99", "2,000,009,999.98"):
            _deposit(app, "Mumbai/1001", MOST)
            until(root, lambda: f"is now {balance}" in app.result.cget("text"), balance)
        transfer(app, "Mumbai/1001", "Delhi/1002", MOST)
        until(root, lambda: f"Done: {MOST} moved" in app.result.cget("text"), "the transfer")
        until(root, lambda: app.transactions.txns, "the transfer listed")
        arm_coordinator_crash(app)
        transfer(app, "Mumbai/1001", "Delhi/1001", MOST)
        blocked = app.transactions.blocked
        until(root, lambda: len(blocked.get_children()) == 2, "the blocked map")
        app.logs.load_journal()
        until(root, lambda: len(app.logs.journal_rows) >= 8, "the journals")
        until(root, lambda: len(app.logs.activity_tree.get_children()) >= 4, "the activity")
        _settle(root)
        _assert_money_whole(app.transactions.tree, ["amount"])
        _assert_money_whole(blocked, ["money"])
        assert _right_edge(blocked, "money") <= blocked.winfo_width(), "out of sight"
        _assert_blocked_money_whole_or_marked(blocked)
        _assert_money_whole(app.logs.journal_tree, ["amount", "balance_after"])
        _assert_money_whole(app.logs.activity_tree, ["command", "result"])
        tree = app.branches.tree
        _assert_money_whole(tree, [c for c in ("balance", "held", "available")
                                   if c in _shown_columns(tree)])
        _assert_no_heading_is_cut(app, font_size)
    finally:
        app.close()


def _deposit(app, account: str, amount: str) -> None:
    app.left_tabs.select(1)
    app.operations.deposit.account.set(account)
    app.operations.deposit.amount.set(amount)
    app.operations.deposit.button.invoke()


def _assert_money_whole(tree, columns) -> None:
    """Each cell of `columns` (shown) fits its column, with the cell's padding (4 px
    each side), measured in its row's font: a tag's (a bold member) or the default."""
    rows = list(tree.get_children(""))
    rows += [child for iid in rows for child in tree.get_children(iid)]
    assert rows and columns
    for col in columns:
        assert col in _shown_columns(tree), col
        for iid in rows:
            text = tree.set(iid, col)
            fonts = [tree.tag_configure(t, "font") for t in tree.item(iid, "tags")]
            font = tk.font.nametofont(str(next((f for f in fonts if f), "TkDefaultFont")))
            assert font.measure(text) + 8 <= tree.column(col, "width"), \
                (col, text, tree.column(col, "width"))


def _assert_blocked_money_whole_or_marked(blocked) -> None:
    """Rule F5 in the blocked map, which cannot scroll sideways: each money text is
    whole, or (a narrow map) its first words and "…", so an amount shows whole or not
    at all; hovering over a shortened one shows it whole."""
    wholes = {"Mumbai": f"holds {MOST} of 1001", "Delhi": f"to credit {MOST} to 1001"}
    for iid in blocked.get_children(""):
        shown, whole = blocked.set(iid, "money"), wholes[blocked.set(iid, "branch")]
        assert shown == whole or (shown.endswith("…") and whole.startswith(shown[:-1])
                                  and whole[len(shown) - 1] == " "), (shown, whole)
        if shown != whole:
            x, y, width, height = blocked.bbox(iid, "money")
            blocked.event_generate("<Motion>", x=x + width // 2, y=y + height // 2)
            tips = [w.cget("text") for w in _all_widgets(blocked)
                    if isinstance(w, tk.Label)]
            assert tips == [whole], tips


def _shown_columns(tree) -> list:
    shown = list(tree.cget("displaycolumns"))
    return list(tree.cget("columns")) if shown == ["#all"] else shown


def _right_edge(tree, col) -> int:
    """Where column `col` ends, in pixels from the tree's left (the tree's border: 2)."""
    shown = _shown_columns(tree)
    return 2 + sum(tree.column(c, "width") for c in shown[:shown.index(col) + 1])
