"""Drawings for the desktop window: the 2PC sequence diagram and the money gauge.

Role: turn plain data (a transaction's trace, the branches' accounts) into pictures on
a Tk Canvas. The panels own the window; this file only draws and counts.

Rules:
  * Rule 1 - no network, no threads: every function here gets plain dicts and lists
    and is called on the Tk thread (the only thread that touches widgets).
  * Rule 2 - the picture follows the trace. One lifeline per party, one arrow per
    message in the order the coordinator noted them; nothing is invented. Where the
    trace says a message failed, the arrow is red and cut with a cross; a message the
    trace marks never sent ("sent": False) is a short stub at its sender with a cross
    and the reason, tagged ``never-sent`` (not ``arrow``): it reached nobody.
  * Rule 3 - money is counted in integer minor units (money.py), never floats; the
    gauge's parts always add up to its total.
  * The two phases are light bands behind the rows (``phases``): phase 1 (voting) up
    to the decision, the decision's own row (the commit point: "commit: on disk"), and
    phase 2 (completion) after it; tags ``phase-voting``, ``phase-decision``, ...
  * Rule 4 - every length follows the font (``sizes``): with ``--font-size 14`` on a
    projector the boxes, rows and gaps grow with the text, so no box overlaps another
    and a label is shortened with a visible "…" only when its arrow is too short.
  * Canvas items carry tags a test (or a curious student) can search:
    ``arrow`` + ``msg-prepare`` + ``from-coordinator`` + ``to-Mumbai``; ``cut`` marks
    where a crash or an error cut the protocol; ``gauge-held`` is the held segment.

Glossary:
  party      a column of the diagram: "log" (the coordinator's recovery log),
             "coordinator", and each branch taking part
  lifeline   the dashed vertical line under a party; time runs downwards
  trace row  {"at", "ms", "from", "to", "msg", "detail"}: one message the coordinator saw
  in flight  money already taken off a committed source but not yet credited by a
             destination that is still prepared: it is in no balance right now
"""

import re
from dataclasses import dataclass
from tkinter import font as tkfont

from bank.money import format_amount, parse_amount, parse_delta

# ---- palette and sizes -------------------------------------------------------------------

GREEN, RED, AMBER, BLUE = "#2e7d32", "#c62828", "#b26a00", "#1f5fbf"
GREY, PURPLE, INK, PAPER = "#6b6b6b", "#7b1fa2", "#222222", "#ffffff"
STATE_BG = {"committed": "#dcefdc", "aborted": "#f7d9d9", "in-doubt": "#fff0c2"}
GAUGE_COLOURS = {"available": "#4caf50", "held": "#5c7cfa", "in_flight": "#f0a500",
                 "unreachable": "#b0b0b0"}
GAUGE_LABELS = {"available": "available",
                "held": "held by prepared transactions",
                "in_flight": "in doubt: sent, not yet credited",
                "unreachable": "down (last seen)"}

TOP = 12             # pixels above the party boxes
MAX_ROWS = 220       # a long outage is summarised, not drawn forever

MSG_COLOUR = {"begin": GREY, "prepare": BLUE, "vote": GREEN, "decision": GREEN,
              "commit": GREEN, "abort": RED, "ack": GREY, "end": GREY, "error": RED,
              "retry": AMBER, "query": PURPLE, "recovered": AMBER}


# ---- sizes: every length of the drawing follows the font (Rule 4) ------------------------

@dataclass(frozen=True)
class Sizes:
    """The lengths of one drawing, in pixels, measured from the window's fonts."""
    left: float          # room for the time column
    head_h: float        # party header boxes
    half: float          # half the width of a party box
    row_h: float         # one message per row
    gap: float           # the least distance between two lifelines
    box_half: float      # half the width of the decision box ("commit: on disk")
    wait_half: float     # half the width of an "in doubt" mark
    char: float          # one digit of the default font


def sizes(canvas, titles=("recovery log", "coordinator")) -> Sizes:
    """Measure the fonts on `canvas` so boxes, labels and gaps never overlap (Rule 4)."""
    plain = tkfont.nametofont("TkDefaultFont", root=canvas)
    bold = tkfont.nametofont("TkHeadingFont", root=canvas)
    fixed = tkfont.nametofont("TkFixedFont", root=canvas)
    char, line = plain.measure("0"), bold.metrics("linespace")
    half = max(58, max(bold.measure(t) for t in titles) / 2 + char)
    box_half = bold.measure("commit: on disk") / 2 + char
    # Between two lifelines: two half boxes, or the decision box and its arrow's label.
    gap = max(130, 2 * half + 2 * char, box_half + plain.measure("decision") + 4 * char)
    # The time column, then room for the phase bands' names, written upwards.
    return Sizes(left=max(64, fixed.measure("99999 ms") + char) + line, head_h=line + 12,
                 half=half, row_h=max(27, plain.metrics("linespace") + 12), gap=gap,
                 box_half=box_half, wait_half=bold.measure("in doubt") / 2 + char, char=char)


# ---- the sequence diagram ---------------------------------------------------------------------

def parties_of(txn: dict) -> list:
    """Column order: the recovery log, the coordinator, then the branches."""
    names = ["log", "coordinator"] + sorted(txn.get("participants") or [])
    for row in txn.get("trace") or []:
        for who in (row["from"], row["to"]):
            if who not in names:
                names.append(who)
    return names


def compress(trace: list) -> list:
    """Fold messages repeated back to back (a retry round, a query) into one drawn block.

    Returns (row, times, last_ms) items: `times` > 1 means the block this row starts
    was repeated `times` times, the last one at `last_ms`.
    """
    key = [(r["from"], r["to"], r["msg"], r["detail"]) for r in trace]
    out, i = [], 0
    while i < len(trace):
        for size in (1, 2, 3, 4):
            if size > 1 and trace[i]["msg"] != "retry":
                continue                    # a repeated round starts with a retry
            block = key[i:i + size]
            times = 1
            while len(block) == size and key[i + times * size:i + (times + 1) * size] == block:
                times += 1
            if times > 1:
                last = trace[i + (times - 1) * size]["ms"]
                out.extend((row, times if j == 0 else 1, last)
                           for j, row in enumerate(trace[i:i + size]))
                i += times * size
                break
        else:
            out.append((trace[i], 1, trace[i]["ms"]))
            i += 1
    return out


def draw_sequence(canvas, txn: dict, width: int, ending: bool = True) -> int:
    """Draw `txn` (coordinator.transaction() reply) as a sequence diagram; returns its height.
    A replay that stops half way leaves out the `ending` (how the transfer stands now)."""
    canvas.delete("all")
    parties = parties_of(txn)
    size = sizes(canvas, [PARTY_TITLES.get(name, name) for name in parties])
    gap = max(size.gap, (width - size.left - 2 * size.half - 20) / max(1, len(parties) - 1))
    xs = {name: size.left + size.half + 4 + i * gap for i, name in enumerate(parties)}
    rows = compress(txn.get("trace") or [])
    shown = rows[:MAX_ROWS]
    cuts = sum(1 for row, _, _ in shown if row["msg"] == "recovered")
    bottom = TOP + size.head_h + 20 + size.row_h * (len(shown) + cuts + 2)
    for name in parties:
        _draw_party(canvas, name, xs[name], bottom, size)
    y = _draw_rows(canvas, rows, shown, xs, TOP + size.head_h + size.row_h - 1, size)
    if ending:
        y = _draw_ending(canvas, txn, xs, y + size.row_h, size)
    height = max(bottom, y + size.row_h)
    canvas.configure(scrollregion=(0, 0, max(width, xs[parties[-1]] + size.half + 30), height))
    return height


def _draw_rows(canvas, rows: list, shown: list, xs: dict, y: float, size: Sizes) -> float:
    """One arrow per shown row, a cut where the coordinator restarted; the last y."""
    if not rows:
        canvas.create_text(size.left + 8, y + 10, anchor="w", fill=GREY, tags=("note",),
                           text="No messages kept for this transaction: it finished before "
                                "the coordinator last restarted,\nso only its outcome is in "
                                "the recovery log.")
    ys = []                                  # (message, y) of every drawn row
    for row, times, last_ms in shown:
        if row["msg"] == "recovered":        # the coordinator restarted: cut across all
            y += size.row_h
            _cut_line(canvas, xs, y, "coordinator restarted: it knows only its recovery log",
                      size)
        y += size.row_h
        _draw_message(canvas, row, times, last_ms, xs, y, size)
        ys.append((row["msg"], y))
    _draw_phases(canvas, ys, size)
    if len(rows) > len(shown):
        y += size.row_h
        canvas.create_text(size.left + 8, y, anchor="w", fill=GREY, tags=("note",),
                           text=f"... {len(rows) - len(shown)} more rows not drawn")
    return y


PHASE_BG = {"voting": "#eef3fb", "decision": "#fff7d6", "completion": "#eef7ee"}
PHASE_NAMES = {"voting": ("phase 1: voting", "voting"),
               "completion": ("phase 2: completion", "phase 2")}


def phases(ys: list) -> list:
    """(phase, first y, last y) from the drawn rows' (message, y): voting runs from the
    first row to the last before the decision, the decision is its own row (the commit
    point), completion runs from the row after it to the end. No decision: all voting."""
    decided = [y for msg, y in ys if msg == "decision"]
    if not ys:
        return []
    if not decided:
        return [("voting", ys[0][1], ys[-1][1])]
    point = decided[0]
    before = [y for _, y in ys if y < point]
    after = [y for _, y in ys if y > point]
    out = [("voting", before[0], before[-1])] if before else []
    out.append(("decision", point, point))
    return out + ([("completion", after[0], after[-1])] if after else [])


def _draw_phases(canvas, ys: list, size: Sizes) -> None:
    """Light bands behind the rows, one per phase, each named in the left margin
    (written upwards); the decision's band is the commit point itself."""
    plain = tkfont.nametofont("TkDefaultFont", root=canvas)
    x0, x1 = size.left - plain.metrics("linespace") - 2, 10_000
    for phase, first, last in phases(ys):
        top, bottom = first - size.row_h / 2, last + size.row_h / 2
        band = canvas.create_rectangle(x0, top, x1, bottom, fill=PHASE_BG[phase], outline="",
                                       tags=("phase", f"phase-{phase}", "phase-band"))
        canvas.tag_lower(band)
        names = PHASE_NAMES.get(phase, ())
        name = next((n for n in names if plain.measure(n) < bottom - top - 4), "")
        if name:
            canvas.create_text(x0 + plain.metrics("linespace") / 2 + 1, (top + bottom) / 2,
                               text=name, angle=90, fill=GREY,
                               tags=("phase", f"phase-name-{phase}"))


PARTY_TITLES = {"log": "recovery log", "coordinator": "coordinator"}


def _draw_party(canvas, name: str, x: float, bottom: float, size: Sizes) -> None:
    title = PARTY_TITLES.get(name, name)
    fill = {"log": "#ececec", "coordinator": "#e3ecfa"}.get(name, "#e7f3e7")
    tags = ("party", f"party-{name}")
    canvas.create_rectangle(x - size.half, TOP, x + size.half, TOP + size.head_h, fill=fill,
                            outline=GREY, tags=(*tags, "party-box"))
    canvas.create_text(x, TOP + size.head_h / 2, text=title, font=("TkHeadingFont",),
                       tags=(*tags, "party-title"))
    canvas.create_line(x, TOP + size.head_h, x, bottom, dash=(4, 4), fill="#9a9a9a",
                       tags=("lifeline", f"party-{name}"))


def _label(row: dict, times: int, last_ms: int) -> str:
    msg, detail = row["msg"], row["detail"]
    if msg == "vote":
        text = f"vote {detail}"
    elif msg == "decision":
        text = "decision"
    elif msg == "query":
        text = detail.replace("decision? ->", "decision? →")
    elif msg == "begin":
        text = "begin (logged)"
    elif msg == "end":
        text = "end (all acknowledged)"
    elif msg == "recovered":
        text = "recovered: " + detail.replace("found after a restart: ", "")
    elif row.get("sent") is False:
        text = f"{msg}: " + detail[detail.find("never sent"):]
    elif msg == "error":
        text = re.sub(r"branch \S+ at \S+ cannot be reached", "unreachable", detail)
    elif msg == "ack":
        text = f"ack ({detail})" if detail else "ack"
    else:
        text = f"{msg} {detail}".strip().replace(" -> ", " → ")
    if times > 1:
        text += f"   ×{times} (until {last_ms / 1000:.1f} s)"
    return text


def _colour(row: dict) -> str:
    msg, detail = row["msg"], row["detail"]
    if msg in ("vote", "decision") and (detail.startswith("no") or detail.startswith("abort")):
        return RED
    return MSG_COLOUR.get(msg, INK)


def _draw_message(canvas, row, times, last_ms, xs, y, size: Sizes) -> None:
    src, dst, msg = row["from"], row["to"], row["msg"]
    colour, lift = _colour(row), size.row_h / 2 - 4      # a label sits just above its arrow
    tags = ("arrow", f"msg-{msg}", f"from-{src}", f"to-{dst}")
    canvas.create_text(4, y, anchor="w", text=f"{row['ms']} ms", fill=GREY,
                       font=("TkFixedFont",), tags=("time",))
    x1, x2 = xs[src], xs[dst]
    label_tags = ("label", f"msg-{msg}")
    if row.get("sent") is False:             # refused before it left: at the sender only
        _draw_never_sent(canvas, row, x1, x2, y, _label(row, times, last_ms), size)
        return
    if x1 == x2:                             # a message to itself: a small loop
        canvas.create_line(x1, y - 8, x1 + 26, y - 8, x1 + 26, y + 4, x1 + 3, y + 4,
                           arrow="last", fill=colour, width=2, tags=tags)
        canvas.create_text(x1 + 32, y - 2, anchor="w", text=_label(row, times, last_ms),
                           fill=colour, tags=label_tags)
        return
    dashed = msg in ("query", "error", "ack", "vote")
    if msg == "decision":                    # the commit point: a box on the log's lifeline
        _decision_box(canvas, row, colour, xs[dst], y, size)
        edge = size.box_half                     # the arrow stops at the box
        x2 = x2 + edge if x2 < x1 else x2 - edge
    canvas.create_line(x1, y, x2, y, arrow="last", fill=colour, width=3 if msg == "decision"
                       else 2, dash=(6, 3) if dashed else (), tags=tags)
    if "log" in (src, dst):                  # the log is leftmost: use the room beside it
        right = max(x1, x2) - 8
        label = canvas.create_text(right, y - lift, anchor="e", fill=colour, tags=label_tags,
                                   text=_label(row, times, last_ms))
        _fit(canvas, label, right - max(size.left, min(x1, x2) + (
            size.box_half if msg == "decision" else 0) + 4))
    else:
        label = canvas.create_text((x1 + x2) / 2, y - lift, text=_label(row, times, last_ms),
                                   fill=colour, tags=label_tags)
        _fit(canvas, label, abs(x2 - x1) + 40)
    if msg == "error":                       # the reply never came: cut the arrow
        _cross(canvas, x1, y)


def _draw_never_sent(canvas, row: dict, x1: float, x2: float, y: float, text: str,
                     size: Sizes) -> None:
    """A stub from the sender towards the receiver, crossed, with why it never left."""
    tip = x1 + (1 if x2 > x1 else -1) * 3 * size.char
    tags = ("never-sent", f"msg-{row['msg']}", f"from-{row['from']}", f"to-{row['to']}")
    canvas.create_line(x1, y, tip, y, fill=RED, width=2, tags=tags)
    _cross(canvas, tip, y)
    canvas.create_text(tip + (10 if x2 > x1 else -10), y, anchor="w" if x2 > x1 else "e",
                       text=text, fill=RED, tags=("label", "never-sent"))


def _decision_box(canvas, row: dict, colour: str, x: float, y: float, size: Sizes) -> None:
    """The decision as written to the recovery log: "commit: on disk" or "abort: logged"."""
    logged = "commit: on disk" if "commit" in row["detail"] else "abort: logged"
    half_h = size.row_h / 2 - 3
    canvas.create_rectangle(x - size.box_half, y - half_h, x + size.box_half, y + half_h, fill="#fff7d6", outline=colour,
                            width=2, tags=("decision-box",))
    canvas.create_text(x, y, text=logged, fill=colour, font=("TkHeadingFont",),
                       tags=("decision-box",))


def _fit(canvas, item, room: float) -> None:
    """Shorten a label (keeping its start) until it fits in `room` pixels."""
    text = canvas.itemcget(item, "text")
    while len(text) > 8:
        left, _, right, _ = canvas.bbox(item)
        if right - left <= room:
            return
        text = text[:max(8, int(len(text) * room / (right - left)) - 2)].rstrip() + "…"
        canvas.itemconfigure(item, text=text)
        text = text[:-1]


def _cross(canvas, x: float, y: float) -> None:
    for dx in (-1, 1):
        canvas.create_line(x - 7, y - 7 * dx, x + 7, y + 7 * dx, fill=RED, width=3,
                           tags=("cut",))


def _cut_line(canvas, xs: dict, y: float, text: str, size: Sizes) -> None:
    x0, x1 = min(xs.values()) - size.half, max(xs.values()) + size.half
    points = []
    for i, x in enumerate(range(int(x0), int(x1), 12)):
        points += [x, y + (4 if i % 2 else -4)]
    canvas.create_line(*points, fill=RED, width=2, tags=("cut",))
    canvas.create_text(x0, y - 10, anchor="w", text="⚡ " + text, fill=RED, tags=("cut",))


def _draw_ending(canvas, txn: dict, xs: dict, y: float, size: Sizes) -> float:
    """How it stands now: finished, or who is still waiting (a cut in the protocol)."""
    state = txn.get("state", "")
    trace = txn.get("trace") or []
    if state in ("committed", "aborted"):
        if trace and not any(r["msg"] == "end" for r in trace):
            canvas.create_text(size.left + 8, y, anchor="w", fill=GREY, tags=("note",),
                               text="(later messages were not kept: the trace holds the "
                                    f"first {len(trace)}) - finished: {state}")
        return y
    waiting = [p for p in txn.get("waiting_for") or [] if p in xs]
    text = ("votes not all in yet" if state == "preparing" else
            f"decision {'commit' if state == 'committing' else 'abort'} is logged; "
            f"waiting for {', '.join(waiting) or 'acknowledgements'}")
    _cut_line(canvas, xs, y, "in doubt: " + text, size)
    top, bottom = y + 12, y + 12 + size.row_h - 6
    for name in waiting:
        canvas.create_rectangle(xs[name] - size.wait_half, top, xs[name] + size.wait_half,
                                bottom, fill="#fff0c2", outline=AMBER, width=2,
                                tags=("cut", "waiting"))
        canvas.create_text(xs[name], (top + bottom) / 2, text="in doubt", fill=AMBER,
                           tags=("cut",))
    return bottom + 8


# ---- the money gauge ------------------------------------------------------------------------

def money_split(branches: dict) -> dict:
    """Count all the bank's money, in minor units, split four ways that add up to the total.

    `branches`: name -> {"up": bool, "accounts": [account dicts], "prepared": [txns from
    in_doubt(), each with "elsewhere": "committed" if another branch already committed it]},
    all read at one moment (calls.fetch_money). A down branch's accounts are its last
    seen ones.

    While a transfer runs the total stays the same: before the source commits, the money
    is held there (still in its balance); after the source commits and before the
    destination does, it is in flight; a hold whose credit has already landed elsewhere
    is not counted twice.
    """
    split = dict.fromkeys(GAUGE_COLOURS, 0)
    for snap in branches.values():
        for acct in snap.get("accounts", []):
            balance = parse_amount(acct["balance"], allow_zero=True)
            held = parse_amount(acct["held"], allow_zero=True)
            if not snap.get("up"):
                split["unreachable"] += balance
                continue
            split["available"] += balance - held
            split["held"] += held
        if not snap.get("up"):
            continue
        for txn in snap.get("prepared", []):
            if txn.get("elsewhere") != "committed":
                continue
            for op in txn.get("ops", []):
                delta = parse_delta(op["delta"])
                if delta > 0:
                    split["in_flight"] += delta     # left its source, not yet here
                else:
                    split["held"] += delta          # already credited elsewhere
    split["total"] = sum(split[k] for k in GAUGE_COLOURS)
    split["unread"] = sorted(name for name, snap in branches.items() if not snap.get("up"))
    return split


def show_money(minor: int) -> str:
    """Minor units for people: 12345678 -> '123,456.78' (thousands separated)."""
    units, cents = format_amount(minor).split(".")
    sign = "-" if units.startswith("-") else ""
    return f"{sign}{int(units.lstrip('-')):,}.{cents}"


def draw_gauge(canvas, split: dict, width: int, note: str = "") -> int:
    """A horizontal bar: one coloured segment per part of the money, in proportion, with
    the amount of every part that is not simply available written under its segment (so
    a hold of 1% is a sliver with its number beside it), a legend, and under it `note`:
    when the numbers were read, or why they are old (tag gauge-note). Returns the height
    the drawing needs: it grows with the font (Rule 4)."""
    canvas.delete("all")
    plain = tkfont.nametofont("TkDefaultFont", root=canvas)
    line, total = plain.metrics("linespace"), split.get("total", 0)
    x0, x1, y0, y1 = 10, max(60, width - 10), 6, 6 + line + 10
    canvas.create_rectangle(x0, y0, x1, y1, fill="#f2f2f2", outline=GREY, tags=("gauge",))
    segments = _gauge_segments(split, x0, x1)
    for key, left, right in segments:
        canvas.create_rectangle(left, y0, right, y1, fill=GAUGE_COLOURS[key], outline="",
                                stipple="gray50" if key == "unreachable" else "",
                                tags=("gauge", f"gauge-{key}"))
    unread = ", ".join(split.get("unread") or [])
    approx = f"  (approximate: {unread} not read; its part is as last seen)" if unread else ""
    canvas.create_text((x0 + x1) / 2, (y0 + y1) / 2, tags=("gauge", "gauge-total"),
                       text=f"total {show_money(total)}{approx}", font=("TkHeadingFont",))
    y = y1 + line / 2 + 3
    y = _gauge_callouts(canvas, plain, segments, split, (x0, x1), y, line)
    box = line / 2 - 1
    texts = {key: f"{show_money(split.get(key, 0))} {GAUGE_LABELS[key]}"
             for key in GAUGE_COLOURS}
    per_row = 2 if max(map(plain.measure, texts.values())) + 3 * box < (x1 - x0) / 2 else 1
    column = (x1 - x0) / per_row
    for i, key in enumerate(GAUGE_COLOURS):
        lx, ly = x0 + (i % per_row) * column, y + (i // per_row) * (line + 4)
        canvas.create_rectangle(lx, ly - box, lx + 2 * box, ly + box, fill=GAUGE_COLOURS[key],
                                outline=GREY, tags=("legend", f"legend-{key}"))
        canvas.create_text(lx + 2 * box + 5, ly, anchor="w", tags=("legend",),
                           text=texts[key])
    y += len(GAUGE_COLOURS) // per_row * (line + 4)
    if note:
        canvas.create_text(x0, y, anchor="w", text=note, tags=("gauge-note",),
                           fill=RED if note.startswith("NOT") else GREY)
    return int(y + line / 2 + 6)


def _gauge_segments(split: dict, x0: float, x1: float) -> list:
    """(part, left, right) for each part of the money that is not zero, in proportion
    (the last one ends at the bar's end, so rounding never leaves a gap)."""
    parts, total = [k for k in GAUGE_COLOURS if split.get(k)], split.get("total", 0)
    out, x = [], x0
    for i, key in enumerate(parts):
        share = split[key] * (x1 - x0) / total if total else 0
        end = x1 if i == len(parts) - 1 else min(x1, x + max(4, share))
        out.append((key, x, end))
        x = end
    return out


def _gauge_callouts(canvas, plain, segments: list, split: dict, span: tuple, y: float,
                    line: float) -> float:
    """Under the bar: the amount of each held, in-doubt or unreachable segment, centred
    under it (kept inside the bar, and never on top of the previous amount); the next y."""
    x0, x1 = span
    placed, nxt = False, x0
    for key, left, right in segments:
        if key == "available":
            continue
        text = f"{GAUGE_LABELS[key].split(':')[0].split(' by ')[0]} {show_money(split[key])}"
        width = plain.measure(text)
        at = max(nxt, min(x1 - width, (left + right) / 2 - width / 2))
        canvas.create_line((left + right) / 2, y - line / 2 - 2, (left + right) / 2,
                           y - line / 2 + 2, fill=GAUGE_COLOURS[key], width=3,
                           tags=("callout", f"callout-{key}"))
        canvas.create_text(at, y, anchor="w", text=text, fill=INK if key != "unreachable"
                           else GREY, tags=("callout", f"callout-{key}"))
        nxt, placed = at + width + plain.measure("  "), True
    return y + line + 4 if placed else y
