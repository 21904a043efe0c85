"""The lengths of the window's sequence diagram: measured from the fonts, fitted to a width.

Role: say where everything of a diagram goes before bank/window/diagram.py draws it:
the sizes of boxes, rows and gaps (``sizes``, from the window's fonts) and the place of
each lifeline (``place``, from the width there is). No drawing happens here.

Rules:
  * Rule 4 (of the diagram) - every length follows the font: with ``--font-size 14`` on
    a projector the boxes, rows and gaps grow with the text, so no box overlaps another.
  * Rule 4b - the drawing fits its width when it can: with room to spare the lifelines
    spread out; with less (1024x768) they pack as tight as the boxes allow, a two-word
    title on two lines and the times under one "ms" heading, so a transfer between two
    branches needs no sideways scrolling. Labels that no longer fit are shortened with
    "…" by the drawing, which keeps their full text for the hover.
  * Rule 4c - packed and still too wide (1024x768 at font 14): the log and the
    coordinator take their short titles (SHORT_TITLES) and the decision box says
    "commit…" (each in full on hover); if even that is too wide, every distance from
    the time column is scaled down to the width there is, boxes included (a title too
    long for its box ends with "…"). The time column is as wide as the trace's
    longest time. The drawing never needs a sideways scroll.

Glossary:
  party     a column of the diagram: "log", "coordinator", and each branch taking part
  half      half the width of a party's box
  gap       the distance between two neighbouring lifelines
  packed    the layout for a narrow window: each gap as small as its two boxes allow
"""

from dataclasses import dataclass, replace
from tkinter import font as tkfont

PARTY_TITLES = {"log": "recovery log", "coordinator": "coordinator"}
SHORT_TITLES = {"log": "log", "coordinator": "coord."}    # packed still too wide (4c)


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
    right: float = 0.0   # the right edge of the drawing (set by ``place``)
    unit: str = " ms"    # after each time; "" when packed (the column's head says ms)


def sizes(canvas, titles=("recovery log", "coordinator"), digits: int = 5) -> Sizes:
    """Measure the fonts on `canvas` so boxes, labels and gaps never overlap (Rule 4);
    the time column as wide as `digits` digits (the trace's longest time)."""
    plain = tkfont.nametofont("TkDefaultFont", root=canvas)
    bold = tkfont.nametofont("TkHeadingFont", root=canvas)
    fixed = tkfont.nametofont("TkFixedFont", root=canvas)
    char, line = plain.measure("0"), bold.metrics("linespace")
    half = max(58, max(bold.measure(t) for t in titles) / 2 + char)
    box_half = bold.measure("commit: on disk") / 2 + char
    # Between two lifelines: two half boxes, or the decision box and its arrow's label.
    gap = max(130, 2 * half + 2 * char, box_half + plain.measure("decision") + 4 * char)
    # The time column, then room for the phase bands' names, written upwards.
    time = fixed.measure("9" * max(3, digits) + " ms") + char
    return Sizes(left=max(64, time) + line, head_h=line + 12,
                 half=half, row_h=max(27, plain.metrics("linespace") + 12), gap=gap,
                 box_half=box_half, wait_half=bold.measure("in doubt") / 2 + char, char=char)


def place(canvas, parties: list, width: float, size: Sizes) -> tuple:
    """(x of each lifeline, (title, half box width) of each party, sizes): spread over
    `width` when there is room for the roomy layout, else packed as tight as the boxes
    allow, a two-word title on two lines (Rule 4: at 1024x768 a transfer between two
    branches is drawn without sideways scrolling; labels too long are shortened with
    "…" and shown in full on hover); else short titles, then scaled down (Rule 4c)."""
    titles = {p: PARTY_TITLES.get(p, p) for p in parties}
    gaps = len(parties) - 1
    roomy = (width - size.left - 2 * size.half - 12) / max(1, gaps)
    if roomy >= size.gap:                   # room to spare: every box as wide as the widest
        xs = {p: size.left + size.half + 4 + i * roomy for i, p in enumerate(parties)}
        size = replace(size, right=xs[parties[-1]] + size.half + 8)
        return xs, {p: (t, size.half) for p, t in titles.items()}, size
    xs, boxes, packed = _pack(canvas, parties, titles, width, size)
    if packed.right <= width or not gaps:
        return xs, boxes, packed
    short = {p: SHORT_TITLES.get(p, p) for p in parties}
    bold = tkfont.nametofont("TkHeadingFont", root=canvas)     # the decision box: "commit…"
    size = replace(size, box_half=bold.measure("commit…") / 2 + size.char / 2)
    xs, boxes, packed = _pack(canvas, parties, short, width, size)
    return _scaled(xs, boxes, packed, width) if packed.right > width else (xs, boxes, packed)


def _scaled(xs: dict, boxes: dict, size: Sizes, width: float) -> tuple:
    """Every distance from the time column's edge, and every box, scaled so the drawing
    ends at `width` (Rule 4c)."""
    edge = size.left
    scale = max(0.3, (width - edge) / (size.right - edge))
    xs = {p: edge + (x - edge) * scale for p, x in xs.items()}
    boxes = {p: (title, half * scale) for p, (title, half) in boxes.items()}
    return xs, boxes, replace(size, right=width, box_half=size.box_half * scale,
                              wait_half=min(size.wait_half, size.half * scale))


def _pack(canvas, parties: list, titles: dict, width: float, size: Sizes) -> tuple:
    """The packed layout: each gap as small as its two boxes allow (Rule 4b)."""
    bold = tkfont.nametofont("TkHeadingFont", root=canvas)
    fixed = tkfont.nametofont("TkFixedFont", root=canvas)
    gaps = len(parties) - 1
    size = replace(size, unit="", left=size.left - fixed.measure("999 ms") + fixed.measure("999"))
    if any(bold.measure(t) / 2 + size.char > size.half * 0.8 for t in titles.values()):
        titles = {p: t.replace(" ", "\n", 1) for p, t in titles.items()}
        size = replace(size, head_h=2 * bold.metrics("linespace") + 10)
    pad = size.char / 2                      # between a title and its box; between boxes
    halves = {p: max(3 * size.char, max(map(bold.measure, t.split("\n"))) / 2 + pad)
              for p, t in titles.items()}
    least = [halves[a] + halves[b] + pad for a, b in zip(parties, parties[1:])]
    x0 = size.left + halves[parties[0]] + 4
    if parties[:2] == ["log", "coordinator"] and least:   # the decision box and its arrow,
        plain = tkfont.nametofont("TkDefaultFont", root=canvas)   # with its label if room
        labelled = size.box_half + plain.measure("decision") + 3 * size.char
        room = width - x0 - sum(least[1:]) - halves[parties[-1]] - 8
        least[0] = max(least[0], min(labelled, room), size.box_half + 3 * size.char)
    spare = max(0.0, width - x0 - sum(least) - halves[parties[-1]] - 8) / max(1, gaps)
    xs, x = {}, x0
    for i, name in enumerate(parties):
        xs[name] = x
        x += least[i] + spare if i < gaps else 0
    size = replace(size, right=xs[parties[-1]] + halves[parties[-1]] + 8)
    return xs, {p: (t, halves[p]) for p, t in titles.items()}, size
