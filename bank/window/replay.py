"""The replay window: step through a run saved by the explorer, message by message.

Role: open a run file (``python explore.py --save FILE``), carry it out again with the
explorer's simulator (the kit's own cores), and show it one step at a time: the
sequence diagram up to the current step, with the current step's lines marked, and
the state of every party after it (up or down, balances and holds, each branch's
durable transaction rows, the coordinator's log and its transactions in memory).
Forward and back with the buttons or the arrow keys.

Run it:  python explore.py --replay run.json --window

Rules:
  * V1 - nothing shown is computed here: the states and the diagram lines come from
    the explorer's replay (bank/explorer/search.py), which runs the real cores.
  * V2 - a file that is not a saved run is refused with one sentence (traces.load).
  * V3 - only the Tk thread touches widgets; nothing here waits on the network.
  * V4 - readable on a projector: --font-size sizes every font (gui_tk.py --replay RUN
    --font-size 14), the window takes most of the screen, and a diagram wider than
    the window scrolls sideways instead of being cut.

Glossary:
  step   one action of the run (a delivery, a loss, a crash, a timeout ...)
  note   a line of the diagram that a step produced
"""

import tkinter as tk
from tkinter import font as tkfont
from tkinter import ttk

from bank.explorer import render, search, traces
from bank.explorer.world import World
from bank.window import run_until_closed

TITLE = "Replay of an explored run"


def paise(amount: int) -> str:
    sign = "-" if amount < 0 else ""
    return f"{sign}{abs(amount) // 100:,}.{abs(amount) % 100:02d}"


def party_states(world: World, state) -> dict:
    """What each party holds after a step, in words: party name -> list of lines."""
    coord = state.coordinator
    lines = {"coordinator": [
        "up" if coord.up else "DOWN (crashed)",
        "log (durable): " + (", ".join(f"{kind} {txid}" for txid, kind in sorted(coord.log))
                             or "empty"),
        "not yet forced: " + (", ".join(f"{kind} {txid}"
                                         for txid, kind in sorted(coord.unflushed)) or "none"),
        *[f"{txid}: {_value(st)} (in memory)" for txid, st, *_ in coord.memory]]}
    for name, branch in zip(world.names, state.branches):
        rows = [f"{number}: balance {paise(balance)}, held {paise(held)}"
                for number, balance, held in branch.accounts]
        rows += [f"{txid}: {_value(st)}" + (f" ({reason})" if reason else "")
                 for txid, st, _coord, _ops, reason, *_peers in branch.rows]
        lines[name] = ["up" if branch.up else "DOWN (crashed)", *rows]
    if state.told:
        lines["client"] = [f"told {txid}: {outcome}" for txid, outcome in sorted(state.told)]
    return lines


def _value(x) -> str:
    return getattr(x, "value", str(x))


class Replay:
    """One saved run on screen; `show(k)` displays the state after step k (0: start)."""

    def __init__(self, root, path):
        self.root = root
        config, actions = traces.load(path)                            # V2
        self.world = World(config)
        self.states, self.notes, self.violation = search.replay(self.world, actions)  # V1
        self.step = 0
        root.title(f"{TITLE}: {path}")
        self._build()
        self.show(0)

    # ---- widgets -------------------------------------------------------------------------

    def _build(self) -> None:
        bar = ttk.Frame(self.root, padding=4)
        bar.pack(fill="x")
        for text, command in (("|< First", lambda: self.show(0)),
                              ("< Back", lambda: self.show(self.step - 1)),
                              ("Next >", lambda: self.show(self.step + 1)),
                              ("Last >|", lambda: self.show(len(self.notes)))):
            ttk.Button(bar, text=text, command=command).pack(side="left", padx=2)
        self.where = ttk.Label(bar, text="")
        self.where.pack(side="left", padx=12)
        verdict = (f"violation of {self.violation.invariant}: {self.violation.detail}"
                   if self.violation else "no invariant broken")
        ttk.Label(self.root, text=verdict, padding=(6, 0),
                  foreground="#b00020" if self.violation else "#1b5e20").pack(fill="x")
        panes = ttk.PanedWindow(self.root, orient="vertical")
        panes.pack(fill="both", expand=True)
        drawing = ttk.Frame(panes)
        self.diagram = tk.Text(drawing, height=18, wrap="none", font="TkFixedFont")
        self.diagram.tag_configure("now", background="#fff0c2")
        sideways = ttk.Scrollbar(drawing, orient="horizontal", command=self.diagram.xview)
        self.diagram.configure(xscrollcommand=sideways.set)       # V4: never cut
        sideways.pack(side="bottom", fill="x")
        self.diagram.pack(fill="both", expand=True)
        self.parties = tk.Text(panes, height=14, wrap="word", font="TkFixedFont")
        panes.add(drawing, weight=3)
        panes.add(self.parties, weight=2)
        self.root.bind("<Right>", lambda _e: self.show(self.step + 1))
        self.root.bind("<Left>", lambda _e: self.show(self.step - 1))

    # ---- showing a step ------------------------------------------------------------------

    def show(self, step: int) -> None:
        """Draw the run up to `step` and every party's state after it."""
        self.step = max(0, min(step, len(self.notes)))
        self.where.configure(text=f"step {self.step} of {len(self.notes)}")
        shown = self.notes[:self.step]
        self._write(self.diagram, render.diagram(self.world, shown) if shown else
                    "(the start: nothing has happened yet; press Next)")
        if shown:                                   # mark the current step's lines
            mine = len(self.notes[self.step - 1])
            last = int(self.diagram.index("end-1c").split(".")[0])   # the closing lifelines
            self.diagram.tag_add("now", f"{last - mine}.0", f"{last}.0")
            self.diagram.see(f"{last}.0")
        text = []
        for party, lines in party_states(self.world, self.states[self.step]).items():
            text.append(f"{party}:")
            text += [f"    {line}" for line in lines]
        self._write(self.parties, "\n".join(text))

    def state_text(self) -> str:
        """What the parties panel shows now (for tests and for copying)."""
        return self.parties.get("1.0", "end-1c")

    @staticmethod
    def _write(widget, text: str) -> None:
        widget.configure(state="normal")
        widget.delete("1.0", "end")
        widget.insert("1.0", text)
        widget.configure(state="disabled")


def open_window(path, font_size: int = 0) -> int:
    """Open the replay window on a saved run (fonts of `font_size` points if given, V4);
    returns when it is closed."""
    root = tk.Tk()
    if font_size:
        for name in ("TkDefaultFont", "TkTextFont", "TkFixedFont", "TkHeadingFont"):
            tkfont.nametofont(name).configure(size=font_size)
    root.geometry(f"{root.winfo_screenwidth() * 9 // 10}x{root.winfo_screenheight() * 8 // 10}")
    try:
        Replay(root, path)
    except ValueError as exc:
        root.destroy()
        print(exc)
        return 2
    run_until_closed(root)            # Ctrl-C closes it (Rule W1)
    return 0
