"""The desktop window's drawing of one transfer: the 2PC sequence diagram.

Role: turn plain data (a transaction's trace, as coordinator.transaction() answers it)
into a picture on a Tk Canvas. The panels own the window; this file only draws. (The
money gauge is drawn by bank/window/gauge.py.)

Rules:
  * Rule 1 - no network, no threads: every function here gets plain dicts and lists
    and is called on the Tk thread (the only thread that touches widgets).
  * Rule 2 - the picture follows the trace. One lifeline per party, one arrow per
    message in the order the coordinator noted them; nothing is invented. Where the
    trace says a message failed, the arrow is red and cut with a cross; a message the
    trace marks never sent ("sent": False) is a short stub at its sender with a cross
    and the reason, tagged ``never-sent`` (not ``arrow``): it reached nobody.
  * Rule 3 - the events are marked where they happened (``marks``): a crash, a
    partition, a retry and a decision query each get their own labelled sign on the
    lifeline of the party concerned, at its row (so inside its phase band). What is an
    event is read by bank/views.py (trace_mark), the same reading as the shell's text
    diagram: the window invents no second one. Tags ``mark`` + ``mark-crash``, ...
  * Rule 3b - rows the coordinator rebuilt from its recovery log after a restart (the
    trace says "rebuilt") are drawn with dotted arrows, "? ms" where the log holds no
    time, tag ``rebuilt``; the restart is the cut line between the two stories, and it
    says the rows above it are rebuilt from the recovery log.
  * The two phases are light bands behind the rows (``phases``): phase 1 (voting) up
    to the decision, the decision's own row (the commit point: "commit: on disk"), and
    phase 2 (completion) after it; tags ``phase-voting``, ``phase-decision``, ...
  * Rule 4 - every length follows the font and the width (bank/window/layout.py): the
    boxes, rows and gaps grow with ``--font-size 14``, so no box overlaps another, and
    pack (then scale down) at 1024x768 so a 2-branch transfer needs no sideways
    scrolling, even at font 14. A label too
    long for its room is shortened with a visible "…" and keeps its full text for the
    hover (``tip``; look.CanvasHover), as do the boxes.
  * Canvas items carry tags a test (or a curious student) can search:
    ``arrow`` + ``msg-prepare`` + ``from-coordinator`` + ``to-Mumbai``; ``cut`` marks
    where a crash or an error cut the protocol; ``rebuilt`` the rows from the log.

Glossary:
  party      a column of the diagram: "log" (the coordinator's recovery log),
             "coordinator", and each branch taking part
  lifeline   the dashed vertical line under a party; time runs downwards
  trace row  {"at", "ms", "from", "to", "msg", "detail"}: one message the coordinator saw
  mark       an event pointed out on a lifeline: crash, partition, retry, query
"""

import re
from tkinter import font as tkfont

from bank import views
from bank.money import with_thousands
from bank.window.layout import PARTY_TITLES, Sizes, place, sizes

# ---- palette -------------------------------------------------------------------

GREEN, RED, AMBER, BLUE = "#2e7d32", "#c62828", "#b26a00", "#1f5fbf"
GREY, PURPLE, INK, PAPER = "#6b6b6b", "#7b1fa2", "#222222", "#ffffff"
STATE_BG = {"committed": "#dcefdc", "aborted": "#f7d9d9", "in-doubt": "#fff0c2"}

TOP = 12             # pixels above the party boxes
MAX_ROWS = 220       # a long outage is summarised, not drawn forever

MSG_COLOUR = {"begin": GREY, "prepare": BLUE, "vote": GREEN, "decision": GREEN,
              "commit": GREEN, "abort": RED, "ack": GREY, "end": GREY, "error": RED,
              "retry": AMBER, "query": PURPLE, "recovered": AMBER}


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


def visible_width(canvas) -> int:
    """The width a drawing on `canvas` can use without a sideways scroll (inside its
    border and focus ring)."""
    edge = sum(canvas.winfo_pixels(canvas.cget(option))      # a screen distance, in
               for option in ("highlightthickness", "borderwidth"))   # whole pixels
    return canvas.winfo_width() - 2 * edge


NO_MESSAGES = ("No messages kept for this transaction: it finished before the coordinator "
               "last restarted, so only its outcome is in the recovery log.")


def draw_sequence(canvas, txn: dict, width: int, ending: bool = True,
                  empty: str = NO_MESSAGES) -> int:
    """Draw `txn` (coordinator.transaction() reply) as a sequence diagram; returns its height.
    A replay that stops half way leaves out the `ending` (how the transfer stands now),
    and says its own `empty` words at its start (nothing is drawn yet, though the
    trace holds messages: NO_MESSAGES would be untrue there)."""
    canvas.delete("all")
    canvas.tips = {}                          # item -> its full text, for the hover
    parties = parties_of(txn)
    digits = max((len(str(row.get("ms", ""))) for row in txn.get("trace") or []), default=1)
    size = sizes(canvas, [PARTY_TITLES.get(name, name) for name in parties], digits)
    xs, titles, size = place(canvas, parties, width, size)
    rows = compress(txn.get("trace") or [])
    shown = rows[:MAX_ROWS]
    extra = sum(1 for row, _, _ in shown if row["msg"] == "recovered" or views.trace_mark(row))
    bottom = TOP + size.head_h + 20 + size.row_h * (len(shown) + extra + 2)
    for name in parties:
        _draw_party(canvas, name, titles[name], xs[name], bottom, size)
    if not size.unit:                         # packed: the time column says its unit once
        canvas.create_text(4, TOP + size.head_h / 2, anchor="w", text="ms", fill=GREY,
                           font=("TkFixedFont",), tags=("time",))
    y = _draw_rows(canvas, rows, shown, xs, TOP + size.head_h + size.row_h - 1, size, empty)
    if ending:
        y = _draw_ending(canvas, txn, xs, y + size.row_h, size)
    height = max(bottom, y + size.row_h)
    canvas.configure(scrollregion=(0, 0, max(width, int(size.right)), height))
    return height


def _draw_rows(canvas, rows: list, shown: list, xs: dict, y: float, size: Sizes,
               empty: str) -> float:
    """One arrow per shown row, a cut where the coordinator restarted; the last y. No
    row at all: the `empty` words instead."""
    if not rows:                             # wrapped within the drawing: never cut (F3)
        canvas.create_text(size.left + 8, y + 10, anchor="w", fill=GREY, tags=("note",),
                           text=empty, width=max(size.right - size.left - 16, 120))
    ys = []                                  # (message, y) of every drawn row
    for row, times, last_ms in shown:
        if row["msg"] == "recovered":        # the coordinator restarted: cut across all
            y += size.row_h
            _cut_line(canvas, xs, y, RESTART_WORDS if any(r.get("rebuilt") for r, _, _ in shown)
                      else "coordinator restarted: it knows only its recovery log", size)
        y += size.row_h
        _draw_message(canvas, row, times, last_ms, xs, y, size)
        ys.append((row["msg"], y))
        mark = views.trace_mark(row)
        if mark:                             # Rule 3: the event, with its words under it
            _draw_mark(canvas, mark, xs, y, size)
            y += size.row_h * MARK_ROW
            ys.append(("mark", y))
    _draw_phases(canvas, ys, size)
    if len(rows) > len(shown):
        y += size.row_h
        canvas.create_text(size.left + 8, y, anchor="w", fill=GREY, tags=("note",),
                           text=f"... {len(rows) - len(shown)} more rows not drawn")
    return y


RESTART_WORDS = "coordinator restarted: the rows above are rebuilt from its recovery log"

# ---- marks: a crash, a partition, a retry, a decision query (Rule 3) -------------------------

MARK_ROW = 0.9       # a mark's own line under its message, in rows
MARK_LOOK = {"crash": ("✕", RED), "partition": ("‖", AMBER), "retry": ("↻", AMBER),
             "query": ("?", PURPLE)}


def _draw_mark(canvas, mark: tuple, xs: dict, y: float, size: Sizes) -> None:
    """One event, as bank/views.py reads it, on a line of its own just under the row `y`
    of its message: a sign of its own shape on the lifeline of the party concerned, and
    its words beside it (tags ``mark``, ``mark-KIND``, ``mark-at-PARTY``)."""
    kind, party, words = mark
    symbol, colour = MARK_LOOK[kind]
    x, y = xs.get(party, xs["coordinator"]), y + MARK_ROW * size.row_h / 2 + size.row_h / 2
    r = MARK_ROW * size.row_h / 2 - 3
    tags = ("mark", f"mark-{kind}", f"mark-at-{party}")
    shape = {"crash": [(-1, -.4), (-.4, -1), (.4, -1), (1, -.4), (1, .4), (.4, 1), (-.4, 1),
                       (-1, .4)],                                   # an octagon: a stop
             "partition": [(-.6, -1), (.6, -1), (.6, 1), (-.6, 1)],  # a wall
             "query": [(0, -1.1), (1.1, 0), (0, 1.1), (-1.1, 0)]}.get(kind)
    if shape:
        canvas.create_polygon(*[c for dx, dy in shape for c in (x + dx * r, y + dy * r)],
                              fill=colour, outline=PAPER, tags=tags)
    else:                                                         # a retry: a circle
        canvas.create_oval(x - r, y - r, x + r, y + r, fill=colour, outline=PAPER, tags=tags)
    canvas.create_text(x, y, text=symbol, fill=PAPER, font=("TkHeadingFont",), tags=tags)
    label = canvas.create_text(x + r + 4, y, anchor="w", text=words, fill=colour,
                               tags=(*tags, "mark-label", "label"))
    left, _, end, _ = canvas.bbox(label)
    if end > size.right and x - r - 4 - size.left > size.right - x - r - 4:
        canvas.itemconfigure(label, anchor="e")     # more room on the left of the sign
        canvas.coords(label, x - r - 4, y)
        _fit(canvas, label, x - r - 4 - size.left)
    else:
        _fit(canvas, label, size.right - x - r - 4)


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


PARTY_TIPS = {"log": "recovery log: the coordinator's file on disk (begin, decision, end)",
              "coordinator": "coordinator: runs Two-Phase Commit for the transfer"}


def _draw_party(canvas, name: str, title: tuple, x: float, bottom: float,
                size: Sizes) -> None:
    """A party's box (its title, perhaps on two lines) and its lifeline."""
    text, half = title
    fill = {"log": "#ececec", "coordinator": "#e3ecfa"}.get(name, "#e7f3e7")
    tags = ("party", f"party-{name}")
    box = canvas.create_rectangle(x - half, TOP, x + half, TOP + size.head_h, fill=fill,
                                  outline=GREY, tags=(*tags, "party-box"))
    title = canvas.create_text(x, TOP + size.head_h / 2, text=text, font=("TkHeadingFont",),
                               justify="center", tags=(*tags, "party-title"))
    _fit(canvas, title, 2 * half - 4)         # a box scaled down (layout.py, Rule 4c)
    for item in (box, title):
        tip(canvas, item, PARTY_TIPS.get(name, f"branch {name}: a participant"))
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
        text += {"held": " (held, B6)", "queued": " (rides a batch)"}.get(row.get("rides"), "")
    text = with_thousands(text)               # money as the whole window writes it
    if times > 1:
        text += f"   ×{times}" + (f" (until {last_ms / 1000:.1f} s)"
                                   if isinstance(last_ms, int) else "")
    return text


def _colour(row: dict) -> str:
    msg, detail = row["msg"], row["detail"]
    if msg in ("vote", "decision") and (detail.startswith("no") or detail.startswith("abort")):
        return RED
    return MSG_COLOUR.get(msg, INK)


def _draw_message(canvas, row, times, last_ms, xs, y, size: Sizes) -> None:
    src, dst, msg = row["from"], row["to"], row["msg"]
    colour, lift = _colour(row), size.row_h / 2 - 4      # a label sits just above its arrow
    rebuilt = ("rebuilt",) if row.get("rebuilt") else ()     # Rule 3b: from the log
    tags = ("arrow", f"msg-{msg}", f"from-{src}", f"to-{dst}", *rebuilt)
    canvas.create_text(4, y, anchor="w", text=f"{row['ms']}{size.unit}", fill=GREY,
                       font=("TkFixedFont",), tags=("time", *rebuilt))
    x1, x2 = xs[src], xs[dst]
    label_tags = ("label", f"msg-{msg}")
    if row.get("sent") is False:             # refused before it left: at the sender only
        _draw_never_sent(canvas, row, (x1, x2), y, _label(row, times, last_ms), size)
        return
    if x1 == x2:                             # a message to itself: a small loop
        canvas.create_line(x1, y - 8, x1 + 26, y - 8, x1 + 26, y + 4, x1 + 3, y + 4,
                           arrow="last", fill=colour, width=2, tags=tags)
        label = canvas.create_text(x1 + 32, y - 2, anchor="w", fill=colour, tags=label_tags,
                                   text=_label(row, times, last_ms))
        _fit(canvas, label, size.right - x1 - 32)
        return
    dashed = msg in ("query", "error", "ack", "vote") or bool(rebuilt)
    if msg == "decision":                    # the commit point: a box on the log's lifeline
        _decision_box(canvas, row, colour, xs[dst], y, size)
        edge = size.box_half                     # the arrow stops at the box
        x2 = x2 + edge if x2 < x1 else x2 - edge
    canvas.create_line(x1, y, x2, y, arrow="last", fill=colour, width=3 if msg == "decision"
                       else 2, dash=((2, 4) if rebuilt else (6, 3)) if dashed else (),
                       tags=tags)
    if "log" in (src, dst):                  # the log is leftmost: use the room beside it
        right = max(x1, x2) - 8
        label = canvas.create_text(right, y - lift, anchor="e", fill=colour, tags=label_tags,
                                   text=_label(row, times, last_ms))
        _fit(canvas, label, right - (min(x1, x2) + 4 if msg == "decision"   # the box's edge
                                     else size.left + 4))     # past the log's lifeline
    else:
        label = canvas.create_text((x1 + x2) / 2, y - lift, text=_label(row, times, last_ms),
                                   fill=colour, tags=label_tags)
        _fit(canvas, label, abs(x2 - x1) + 40)
    if msg == "error":                       # the reply never came: cut the arrow
        _cross(canvas, x1, y)


def _draw_never_sent(canvas, row: dict, ends: tuple, y: float, text: str,
                     size: Sizes) -> None:
    """A stub from the sender towards the receiver, crossed, with why it never left
    (its mark, a partition or a branch that is down, stands on the line under it)."""
    x1, x2 = ends
    way = 1 if x2 > x1 else -1
    stub = x1 + way * 3 * size.char
    tags = ("never-sent", f"msg-{row['msg']}", f"from-{row['from']}", f"to-{row['to']}")
    canvas.create_line(x1, y, stub, y, fill=RED, width=2, tags=tags)
    _cross(canvas, stub, y)
    label = canvas.create_text(stub + way * 10, y, anchor="w" if way > 0 else "e",
                               text=text, fill=RED, tags=("label", "never-sent"))
    _fit(canvas, label, (size.right - stub - 10) if way > 0 else (stub - 10 - size.left))


def _decision_box(canvas, row: dict, colour: str, x: float, y: float, size: Sizes) -> None:
    """The decision as written to the recovery log: "commit: on disk" or "abort: logged"."""
    logged = "commit: on disk" if "commit" in row["detail"] else "abort: logged"
    half_h = size.row_h / 2 - 3
    box = canvas.create_rectangle(x - size.box_half, y - half_h, x + size.box_half,
                                  y + half_h, fill="#fff7d6", outline=colour, width=2,
                                  tags=("decision-box",))
    text = canvas.create_text(x, y, text=logged, fill=colour, font=("TkHeadingFont",),
                              tags=("decision-box",))
    _fit(canvas, text, 2 * size.box_half - 6)     # a box scaled down (layout.py, Rule 4c)
    why = ("forced to disk before anyone is told: the commit point" if "commit" in logged
           else "not forced: a lost abort is presumed anyway")
    for item in (box, text):
        tip(canvas, item, f"decision: {row['detail']} - {why}")


def _fit(canvas, item, room: float) -> None:
    """Shorten a label (keeping its start) until it fits in `room` pixels, with a visible
    "…" where it is cut (dropped only if not even "…" fits), and keep its full text for
    the hover (Rule 4; tips)."""
    full = canvas.itemcget(item, "text")
    keep = len(full)
    while True:
        left, _, right, _ = canvas.bbox(item)
        if right - left <= room or keep == 0:
            break
        keep = min(keep - 1, max(0, int(keep * room / (right - left)) - 1))
        space = full.rfind(" ", 0, keep + 1)
        # Cut between words where one fits (never "+1200.…", a number cut short), else
        # inside the only word, keeping at least 4 letters of it.
        keep = space if space > 0 else keep if keep >= 4 else 0
        canvas.itemconfigure(item, text=full[:keep].rstrip() + "…" if keep else "")
    left, _, right, _ = canvas.bbox(item)
    if right - left > room:
        canvas.itemconfigure(item, text="")
    if canvas.itemcget(item, "text") != full:
        tip(canvas, item, full)


def tip(canvas, item, text: str) -> None:
    """Keep `text` as what hovering over `item` shows (bank/window/look.py, CanvasHover)."""
    if not hasattr(canvas, "tips"):
        canvas.tips = {}
    canvas.tips[item] = text


def tip_at(canvas, x: float, y: float) -> str:
    """The hover text of the topmost item at canvas point (x, y) that has one, or ''."""
    tips = getattr(canvas, "tips", {})
    for item in reversed(canvas.find_overlapping(x - 1, y - 1, x + 1, y + 1)):
        if item in tips:
            return tips[item]
    return ""


def _cross(canvas, x: float, y: float) -> None:
    for dx in (-1, 1):
        canvas.create_line(x - 7, y - 7 * dx, x + 7, y + 7 * dx, fill=RED, width=3,
                           tags=("cut",))


def _cut_line(canvas, xs: dict, y: float, text: str, size: Sizes) -> None:
    """A zigzag across every lifeline (a crash or a wait cut the protocol), and why."""
    x0, x1 = max(size.left, min(xs.values()) - size.half), size.right
    points = []
    for i, x in enumerate(range(int(x0), int(x1), 12)):
        points += [x, y + (4 if i % 2 else -4)]
    canvas.create_line(*points, fill=RED, width=2, tags=("cut",))
    words = canvas.create_text(x0, y - 10, anchor="w", text="⚡ " + text, fill=RED,
                               tags=("cut",))
    _fit(canvas, words, x1 - x0)


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
        box = canvas.create_rectangle(xs[name] - size.wait_half, top, xs[name] + size.wait_half,
                                      bottom, fill="#fff0c2", outline=AMBER, width=2,
                                      tags=("cut", "waiting"))
        words = canvas.create_text(xs[name], (top + bottom) / 2, text="in doubt", fill=AMBER,
                                   tags=("cut",))
        _fit(canvas, words, 2 * size.wait_half - 4)
        for item in (box, words):
            tip(canvas, item, f"{name} has not acknowledged the decision yet: {text}")
    return bottom + 8
