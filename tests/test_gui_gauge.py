"""The window's money bar (bank/window/gauge.py): its arithmetic, and its label.

Rules checked (gauge.py Rules G1-G2): at every step of a transfer the bar's parts add
up to the same total; with a branch not read, the total's label is the longest of its
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
    ("a branch is down: its last seen money", {"accounts": [_acct("1001", "500.00")]},
     {"up": False, "accounts": [_acct("1001", "500.00")]}, (500_00, 0, 0, 500_00)),
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


@pytest.mark.parametrize("width", [900, 420, 300])
def test_the_gauge_says_the_longest_approximate_total_that_fits(display, width):
    """Rule G2: with a branch not read, the total's label is the longest of its sentences
    that fits the bar, always naming the branch, and the full one is on hover (it ran
    past the bar in a narrow window)."""
    import tkinter.font as tkfont
    root = tk.Tk()
    try:
        canvas = tk.Canvas(root, width=width, height=200)
        split = dict(gauge.money_split({"Mumbai": {"up": True, "accounts": [
            {"balance": "1000.00", "held": "0.00"}]}}), unread=["Delhi"])
        gauge.draw_gauge(canvas, split, width)
        (item,) = canvas.find_withtag("gauge-total")
        text = canvas.itemcget(item, "text")
        assert "Delhi" in text and text.startswith("total 1,000.00"), text
        bar = width - 20                                    # the bar: 10 px each side
        assert tkfont.nametofont("TkHeadingFont", root=canvas).measure(text) <= bar, text
        assert ("its part is as last seen" in text) == (width == 900), text
        assert "its part is as last seen" in canvas.tips[item]
    finally:
        root.destroy()
