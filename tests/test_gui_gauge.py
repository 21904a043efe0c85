"""The window's money bar (bank/window/gauge.py): its arithmetic, and its label.

Rules checked (gauge.py Rules G1, G2 and G4): at every step of a transfer the bar's
parts add up to the same total; with a branch not read, the total is not known (its
last seen balances are never added to the others'), said in the longest of its
sentences that fits the bar, the full one on hover. The label is drawn on a real Tk
canvas (the display fixture of tests/test_gui.py); the arithmetic needs no display.
"""

import pathlib
import sys

import pytest

KIT = pathlib.Path(__file__).resolve().parent.parent
if str(KIT) not in sys.path:
    sys.path.insert(0, str(KIT))

tk = pytest.importorskip("tkinter")
from bank.window import gauge                                  # noqa: E402
from test_gui import _acct, display                    # noqa: E402,F401 (display: a fixture)


def _prepared(delta, elsewhere=""):
    return [{"txid": "C1-t", "ops": [{"account": "1001", "delta": delta}],
             "elsewhere": elsewhere}]


GAUGE_CASES = [
    # (the moment of a 100.00 transfer Mumbai -> Delhi, Mumbai's books, Delhi's books,
    #  expected (available, held, in flight, unreachable))
    ("before", {"accounts": [_acct("1001", "500.00")]},
     {"accounts": [_acct("1001", "500.00")]}, (1000_00, 0, 0, 0)),
    ("both prepared: the debit is held", {"accounts": [_acct("1001", "500.00", "100.00")],
                                          "prepared": _prepared("-100.00")},
     {"accounts": [_acct("1001", "500.00")], "prepared": _prepared("+100.00")},
     (900_00, 100_00, 0, 0)),
    ("source committed, destination prepared: in flight",
     {"accounts": [_acct("1001", "400.00")]},
     {"accounts": [_acct("1001", "500.00")], "prepared": _prepared("+100.00", "committed")},
     (900_00, 0, 100_00, 0)),
    ("destination committed, source still holds it: counted once",
     {"accounts": [_acct("1001", "500.00", "100.00")],
      "prepared": _prepared("-100.00", "committed")},
     {"accounts": [_acct("1001", "600.00")]}, (1000_00, 0, 0, 0)),
]


@pytest.mark.parametrize("moment, mumbai, delhi, expected", GAUGE_CASES,
                         ids=[c[0] for c in GAUGE_CASES])
def test_the_gauge_counts_every_rupee_once(moment, mumbai, delhi, expected):
    """At every step of a transfer the gauge's parts add up to the same total: held money
    is still in its source's balance, money in flight is in no balance, and a hold whose
    credit already landed is not counted twice."""
    books = {"Mumbai": {"up": True, **mumbai}, "Delhi": {"up": True, **delhi}}
    split = gauge.money_split(books)
    assert (split["available"], split["held"], split["in_flight"],
            split["unreachable"]) == expected
    assert split["total"] == 1000_00


def _crash_before_commit():
    """700.00 from Mumbai to Delhi; Delhi crashed before its commit: Mumbai has been
    debited (committed), Delhi is down with its balances as last seen before the credit."""
    return {"Mumbai": {"up": True, "accounts": [_acct("1001", "9300.00"),
                                                _acct("1002", "5000.00")], "prepared": []},
            "Delhi": {"up": False, "accounts": [_acct("1001", "10000.00"),
                                                _acct("1002", "5000.00")]}}


def test_a_branch_not_read_makes_the_total_not_known():
    """Rule G4: with Delhi down in the middle of a transfer, its last seen balances are
    not added to Mumbai's read now (that made 29,300.00: money lost) and the 700.00 on
    its way to Delhi is not called 0.00 in doubt: the total is not known, the in-doubt
    amount is not known, and Delhi is named; what was read is counted as read."""
    split = gauge.money_split(_crash_before_commit())
    assert split["total"] is None and split["unread"] == ["Delhi"]
    assert (split["available"], split["held"], split["in_flight"]) == (14_300_00, 0, 0)
    said = gauge.total_texts(split)
    assert all(text.startswith("total not known") for text in said), said
    assert not any(ch.isdigit() for text in said for ch in text), said   # no amount
    assert "Delhi not read" in said[1]
    assert gauge.legend_text("in_flight", split, gauge.GAUGE_LABELS) == "in doubt: not known"
    assert gauge.legend_text("unreachable", split, gauge.SHORT_LABELS) == "Delhi not read"


@pytest.mark.parametrize("width", [900, 420, 300])
def test_the_gauge_says_the_longest_not_known_total_that_fits(display, width):
    """Rules G2 and G4: with a branch not read, the bar says the total is not known, in
    the longest of its sentences that fits the bar (naming the branch when there is
    room), with no amount in it, and the full sentence on hover; nothing the gauge
    writes is a sum that adds the branch's last seen balances."""
    import tkinter.font as tkfont
    root = tk.Tk()
    try:
        canvas = tk.Canvas(root, width=width, height=200)
        split = gauge.money_split(_crash_before_commit())
        gauge.draw_gauge(canvas, split, width)
        (item,) = canvas.find_withtag("gauge-total")
        text = canvas.itemcget(item, "text")
        assert text.startswith("total not known") and not any(c.isdigit() for c in text)
        bar = width - 20                                    # the bar: 10 px each side
        measure = tkfont.nametofont("TkHeadingFont", root=canvas).measure
        said = gauge.total_texts(split)
        assert text == next(t for t in said if measure(t) <= bar), (text, width)
        assert "last seen balances are greyed" in canvas.tips[item]
        written = " ".join(canvas.itemcget(i, "text") for i in canvas.find_all()
                           if canvas.type(i) == "text")
        for wrong in ("29,300.00", "15,000.00", "0.00 in doubt"):
            assert wrong not in written, written
    finally:
        root.destroy()


def test_with_no_branch_read_the_total_is_not_known():
    """Rule G4: a window that has read no branch (its coordinator does not answer and it
    knows no branch's address) says the total is not known; never "total 0.00"."""
    split = gauge.money_split({})
    assert split["total"] is None
    assert gauge.total_texts(split)[-1] == "total not known"
    assert "every branch not read" in gauge.total_texts(split)[1]
