"""The money gauge of the desktop window: all the bank's money in one bar.

Role: count every branch's money, read at one moment, into the parts of one bar
(available, held by prepared transactions, in doubt: sent but not yet credited) and
draw them with the amounts written under it. The branches panel
(bank/window/branches.py) owns the Canvas; this file only counts and draws.

Rules:
  * Rule G1 - money is counted in integer minor units (money.py), never floats; the
    gauge's parts always add up to its total.
  * Rule G4 - a total is shown only when every branch was read. A branch that is down
    (or does not answer) makes the total "not known": its money, and any money on its
    way to or from it, cannot be counted, and adding its last seen balances to the
    others' read now would show money created or lost (a transfer that moved money in
    between). Its part of the bar is a grey hatch with its name and no amount; the
    in-doubt amount is "not known" too; the branches tree keeps its last seen
    balances, greyed.
  * Rule G2 - the picture follows the font: the bar, its callouts and its legend grow
    with --font-size (the window's Rule L4), so held money is never an unlabelled sliver.
    In a narrow column the legend keeps two parts per row with short names (held, in
    doubt, not read), the long ones on hover, so the branches tree keeps its rows.
  * Rule G3 - the presumption counters (forced writes and messages per transfer) are
    written under the bar when the coordinator counts them, read as the shell's
    `counters` reads them (bank/counters.py): the same numbers in both.
  * Canvas items carry tags a test can search: ``gauge-held`` is the held segment,
    ``callout-held`` its amount, ``legend``, ``gauge-note`` when it was read.

Glossary:
  split      the gauge's numbers, in minor units: available, held, in_flight (and
             unreachable: only the width of the grey part of the branches not read);
             "total" (None when a branch was not read) and "unread" (their names)
  in flight  money already taken off a committed source but not yet credited by a
             destination that is still prepared: it is in no balance right now
"""

from tkinter import font as tkfont

from bank.counters import per_transfer
from bank.money import format_amount, parse_delta
from bank.views import minor
from bank.window.diagram import GREY, INK, RED, tip
from bank.window.fit import shorten

GAUGE_COLOURS = {"available": "#4caf50", "held": "#5c7cfa", "in_flight": "#f0a500",
                 "unreachable": "#b0b0b0"}
GAUGE_LABELS = {"available": "available",
                "held": "held by prepared transactions",
                "in_flight": "in doubt: sent, not yet credited",
                "unreachable": "not read (down or not answering)"}
SHORT_LABELS = {"available": "available", "held": "held", "in_flight": "in doubt",
                "unreachable": "not read"}       # a narrow column: the long ones on hover


# ---- the money gauge--------------------------------------------------------------------

def money_split(branches: dict) -> dict:
    """Count all the bank's money, in minor units, split into parts that add up to the total.

    `branches`: name -> {"up": bool, "accounts": [account dicts], "prepared": [txns from
    in_doubt(), each with "elsewhere": "committed" if another branch already committed it]},
    all read at one moment (calls.fetch_money). A down branch's accounts are its last
    seen ones: they only size its grey part of the bar ("unreachable"); its money is
    not counted, and the total is None (Rule G4).

    While a transfer runs the total stays the same: before the source commits, the money
    is held there (still in its balance); after the source commits and before the
    destination does, it is in flight; a hold whose credit has already landed elsewhere
    is not counted twice.
    """
    split = dict.fromkeys(GAUGE_COLOURS, 0)
    for snap in branches.values():
        if not snap.get("up"):                      # Rule G4: never added to the rest
            split["unreachable"] += sum(minor(a["balance"])      # a balance: no cap
                                        for a in snap.get("accounts", []))
            continue
        for acct in snap.get("accounts", []):
            balance, held = minor(acct["balance"]), minor(acct["held"])   # no cap
            split["available"] += balance - held
            split["held"] += held
        for txn in snap.get("prepared", []):
            if txn.get("elsewhere") != "committed":
                continue
            for op in txn.get("ops", []):
                delta = parse_delta(op["delta"])
                if delta > 0:
                    split["in_flight"] += delta     # left its source, not yet here
                else:
                    split["held"] += delta          # already credited elsewhere
    split["unread"] = sorted(name for name, snap in branches.items() if not snap.get("up"))
    if not branches:                                # no branch known yet: nothing read
        split["unread"] = ["every branch"]
    split["total"] = None if split["unread"] else sum(
        split[k] for k in ("available", "held", "in_flight"))
    return split


def total_texts(split: dict) -> list:
    """What the bar says, longest first (the gauge writes the longest that fits, the
    first on hover): the total, or with a branch not read that it is not known (G4)."""
    if split.get("total") is not None:
        return [f"total {show_money(split['total'])}"]
    names = " and ".join(split.get("unread") or [])
    return [f"total not known: {names} not read (its money, and money on its way to or "
            f"from it, cannot be counted; its last seen balances are greyed above)",
            f"total not known: {names} not read", "total not known"]


def legend_text(key: str, split: dict, labels: dict) -> str:
    """One part's name in the legend (its colour's key; the amounts are under the bar);
    with a branch not read, the branches not read by name, and the in-doubt amount
    "not known" (Rule G4)."""
    unread = split.get("unread") or []
    if key == "unreachable" and unread:
        return f"{', '.join(unread)} not read"
    if key == "in_flight" and unread:
        return "in doubt: not known"
    return labels[key]


def legend_tip(key: str, split: dict) -> str:
    """What hovering over a part's name in the legend says: its amount in full words."""
    unread = " and ".join(split.get("unread") or [])
    if key == "unreachable":
        return (f"{unread} not read (down or not answering): its money is not counted"
                if unread else "every branch was read")
    if key == "in_flight" and unread:
        return f"in doubt: not known while {unread} is not read"
    return f"{show_money(split.get(key, 0))} {GAUGE_LABELS[key]}"


def show_money(minor: int) -> str:
    """Minor units for people: 12345678 -> '123,456.78' (thousands separated)."""
    units, cents = format_amount(minor).split(".")
    sign = "-" if units.startswith("-") else ""
    return f"{sign}{int(units.lstrip('-')):,}.{cents}"


def cost_text(now, coordinator_up: bool = True, then=None, since: str = "") -> tuple:
    """The presumption counters, (in full, short, shortest): forced writes and messages
    per transfer since `then` (the window's first reading, at `since`), from the rows the shell's
    `counters` prints (bank/counters.py, per_transfer); ("", "", "") when the
    coordinator does not count them (`now` is None: no counters in its ping). The gauge
    writes the longest that fits on one line."""
    if not now:
        return "", "", ""
    rows = {what.strip(): value for what, value, _ in per_transfer(now, then)}
    if rows["transfers between branches"] == "0":
        none = "no transfer between branches" + (f" since {since}" if since else " yet")
        return (f"cost per transfer: {none}",) * 2 + (none,)
    old, brief = ("", "") if coordinator_up else (
        " (as last counted: the coordinator is down)", " (as last counted)")
    short = (f"per transfer, {rows['transfers between branches']} since this window opened: "
             f"{rows['messages per transfer']} messages, {rows['fsyncs per transfer']} "
             "forced writes")
    shortest = (f"{rows['messages per transfer']} messages, {rows['fsyncs per transfer']} "
                f"forced writes per transfer{brief}")
    return (f"cost {short} (recovery log {rows['of which the recovery log']}, branches "
            f"{rows['of which branch COMMITs']}){old}", short + brief, shortest)


def draw_gauge(canvas, split: dict, width: int, note: str = "", costs=("", "", "")) -> int:
    """A horizontal bar: one coloured segment per part of the money, in proportion, with
    the amount of every part that is not zero written under its segment (so a hold of
    1% is a sliver with its number beside it), the legend (each colour's name), and
    under it `note`: when the numbers were read, or why they are old (tag gauge-note),
    and the `costs` (cost_text: tag gauge-costs, the longest that fits on one line,
    else the shortest shortened with "…"; the full one on hover). Returns the height
    the drawing needs: it grows with the font (Rule G2), never with what the texts say
    (an amount held, or a coordinator going down, pushed the form down by a line)."""
    canvas.delete("all")
    canvas.tips = {}                          # item -> its long text, for the hover
    plain = tkfont.nametofont("TkDefaultFont", root=canvas)
    line = plain.metrics("linespace")
    x0, x1, y0, y1 = 10, max(60, width - 10), 6, 6 + line + 10
    canvas.create_rectangle(x0, y0, x1, y1, fill="#f2f2f2", outline=GREY, tags=("gauge",))
    segments = _gauge_segments(split, x0, x1)
    for key, left, right in segments:
        canvas.create_rectangle(left, y0, right, y1, fill=GAUGE_COLOURS[key], outline="",
                                stipple="gray50" if key == "unreachable" else "",
                                tags=("gauge", f"gauge-{key}"))
    said = total_texts(split)
    heading = tkfont.nametofont("TkHeadingFont", root=canvas)   # the longest that fits
    item = canvas.create_text((x0 + x1) / 2, (y0 + y1) / 2, tags=("gauge", "gauge-total"),
                              text=next((t for t in said if heading.measure(t) <= x1 - x0 - 8),
                                        said[-1]), font=("TkHeadingFont",))
    tip(canvas, item, said[0])
    y = y1 + line / 2 + 3
    _gauge_callouts(canvas, plain, segments, split, (x0, x1), y, line)
    y += line + 4                             # the amounts' line, kept even when empty
    y = _draw_legend(canvas, plain, split, (x0, x1), y, line)
    if note:
        canvas.create_text(x0, y, anchor="w", text=note, tags=("gauge-note",),
                           fill=RED if note.startswith("NOT") else GREY)
        y += line + 2
    if costs[0]:                              # one line, whatever it says (Rule G2)
        text = next((c for c in costs if plain.measure(c) <= x1 - x0), None) or \
            shorten(costs[-1], x1 - x0, plain.measure) or costs[-1]
        item = canvas.create_text(x0, y, anchor="w", text=text, fill=INK,
                                  tags=("gauge-costs",))
        tip(canvas, item, costs[0])           # the full one, with its split, on hover
        y += line + 2
    return int(y - line / 2 + 6 if note or costs[0] else y + line / 2 + 6)


def _draw_legend(canvas, plain, split: dict, span: tuple, y: float, line: float) -> float:
    """Each part's colour and name, as many per row as fit (Rule G2); the next y."""
    x0, x1 = span
    box = line / 2 - 1
    texts, per_row = _legend_texts(split, plain, x1 - x0, 2 * box + 5 + plain.measure("  "))
    column = (x1 - x0) / per_row
    for i, key in enumerate(GAUGE_COLOURS):
        lx, ly = x0 + (i % per_row) * column, y + (i // per_row) * (line + 4)
        canvas.create_rectangle(lx, ly - box, lx + 2 * box, ly + box, fill=GAUGE_COLOURS[key],
                                outline=GREY, tags=("legend", f"legend-{key}"))
        item = canvas.create_text(lx + 2 * box + 5, ly, anchor="w", tags=("legend",),
                                  text=texts[key])
        tip(canvas, item, legend_tip(key, split))
    return y + -(-len(GAUGE_COLOURS) // per_row) * (line + 4)


def _legend_texts(split: dict, plain, room: float, beside: float) -> tuple:
    """(the legend's names, how many per row): all four on one row if they fit, with
    the long names, else the short ones (the long ones are the hover's); else two per
    row; else one per row with the long names (Rule G2). `beside`: a colour box and
    the gap after a name."""
    for per_row in (4, 2):
        for labels in (GAUGE_LABELS, SHORT_LABELS):
            texts = {key: legend_text(key, split, labels) for key in GAUGE_COLOURS}
            if max(map(plain.measure, texts.values())) + beside <= room / per_row:
                return texts, per_row
    return {key: legend_text(key, split, GAUGE_LABELS) for key in GAUGE_COLOURS}, 1


def _gauge_segments(split: dict, x0: float, x1: float) -> list:
    """(part, left, right) for each part of the money that is not zero, in proportion
    (the last one ends at the bar's end, so rounding never leaves a gap). A branch not
    read is drawn by its last seen balances: its width only, never a number (G4)."""
    parts = [k for k in GAUGE_COLOURS if split.get(k)]
    total = sum(split[k] for k in parts)
    out, x = [], x0
    for i, key in enumerate(parts):
        share = split[key] * (x1 - x0) / total if total else 0
        end = x1 if i == len(parts) - 1 else min(x1, x + max(4, share))
        out.append((key, x, end))
        x = end
    return out


def _gauge_callouts(canvas, plain, segments: list, split: dict, span: tuple, y: float,
                    line: float) -> None:
    """Under the bar: the amount of each part, centred under its segment (kept inside the
    bar, and never on top of the previous amount); with its name if they all fit, else
    the amounts alone (the names are the legend's; in full on hover)."""
    unread = " and ".join(split.get("unread") or [])
    named = {key: f"{unread} not read" if key == "unreachable" else
             f"{SHORT_LABELS[key]} {show_money(split[key])}" for key, _, _ in segments}
    bare = {key: unread if key == "unreachable" else show_money(split[key])
            for key, _, _ in segments}
    texts, places = named, _callout_places(plain, segments, named, span)
    if places and places[-1][1] + plain.measure(named[places[-1][0]]) > span[1]:
        texts, places = bare, _callout_places(plain, segments, bare, span)    # crowded
    for key, at in places:
        left, right = next((l, r) for k, l, r in segments if k == key)
        canvas.create_line((left + right) / 2, y - line / 2 - 2, (left + right) / 2,
                           y - line / 2 + 2, fill=GAUGE_COLOURS[key], width=3,
                           tags=("callout", f"callout-{key}"))
        item = canvas.create_text(at, y, anchor="w", text=texts[key],
                                  fill=INK if key != "unreachable" else GREY,
                                  tags=("callout", f"callout-{key}"))
        tip(canvas, item, named[key])


def _callout_places(plain, segments: list, texts: dict, span: tuple) -> list:
    """(part, x) of each amount: centred under its segment, inside the bar, after the
    previous amount."""
    x0, x1 = span
    places, nxt = [], x0
    for key, left, right in segments:
        width = plain.measure(texts[key])
        at = max(nxt, min(x1 - width, (left + right) / 2 - width / 2))
        places.append((key, at))
        nxt = at + width + plain.measure("  ")
    return places
