"""Replaying one transfer's trace: step through its messages, forward and back.

Role: open a transfer as the coordinator's ``transaction(txid)`` reported it (from the
transactions panel's "Replay" button, or a file saved with "Save trace" and opened with
``python gui_tk.py --replay FILE``) and show it one message at a time: the sequence
diagram up to that message, the message itself marked, and what every party holds
after it: the coordinator's recovery log and what it is doing, each branch's durable
state, the money it holds and the change to its balances.

Rules:
  * Rule RP1 - nothing is invented: every state shown is what the trace's messages imply
    (a vote yes is only sent after the branch made "prepared" durable; an ack only after
    it made the decision durable). Where the trace cannot say (a message that got no
    answer), the state stays as it last was and the step says "no answer".
  * Rule RP2 - a file that is not a saved trace (nor a run saved by the explorer, which
    opens in the explorer's replay window) is refused with one sentence, no traceback.
  * Rule RP3 - only the Tk thread touches widgets, and nothing here uses the network:
    the trace is already here, so a replay works with the bank stopped.

Glossary:
  step       one row of the trace: a message, a record forced to the log, a restart
  held       money a prepared branch keeps aside for the transfer (debits only)
  change     what the transfer did to a branch's balances once it committed there
"""

import json
import pathlib
import tkinter as tk
from tkinter import ttk

from bank.errors import BankError
from bank.money import parse_delta, with_thousands
from bank.window import diagram as draw
from bank.window import gauge, run_until_closed
from bank.window.look import CanvasHover, Look, scrolled

TITLE = "Replay of a transfer"
START = "The start: no message sent yet. Press Next (or →) to send the first one."
FIELDS = ("txid", "trace")             # what every saved trace has
ROW_TEXTS = ("from", "to", "msg", "detail")   # and every row of it, with its "ms"


# ---- the trace as a file ------------------------------------------------------------------

def save_trace(txn: dict, path) -> pathlib.Path:
    """Write a transaction() reply to `path` as JSON (what ``--replay FILE`` opens)."""
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(txn, indent=1), encoding="utf-8")
    return path


def load_trace(path) -> dict:
    """A saved trace, checked (Rule RP2): raises ValueError with one sentence."""
    try:
        txn = json.loads(pathlib.Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"Cannot read {path} as a saved trace: {exc}.") from None
    rows = txn.get("trace") if isinstance(txn, dict) else None
    if not isinstance(rows, list) or not all(isinstance(txn.get(f), (str, list))
                                             for f in FIELDS) or not all(map(_a_row, rows)):
        raise ValueError(f"{path} is not a transfer's trace (save one with the "
                         "transactions panel's Save trace button).")
    return txn


def _a_row(row) -> bool:
    """Is this a trace row as the coordinator writes it (texts, and a time in ms)?"""
    return isinstance(row, dict) and all(isinstance(row.get(k), str) for k in ROW_TEXTS) \
        and isinstance(row.get("ms"), (int, float)) and not isinstance(row["ms"], bool)


# ---- what every party holds after each step (Rule RP1) -----------------------------------

def _ops(txn: dict) -> dict:
    """branch -> [(account, delta in minor units)], from the prepare messages."""
    ops = {}
    for row in txn["trace"]:
        if row["msg"] == "prepare" and row.get("sent") is not False:
            account, _, delta = row.get("detail", "").partition(" ")
            try:
                ops.setdefault(row["to"], []).append((account, parse_delta(delta)))
            except BankError:              # an odd detail: that op is simply not shown
                continue
    return ops


def trace_states(txn: dict) -> list:
    """The parties' states before the first step and after each: a list of
    {party: [lines]} with len(trace) + 1 items."""
    ops, branches = _ops(txn), sorted(txn.get("participants") or [])
    coord = {"log": [], "doing": "not started"}
    durable = {b: "nothing yet" for b in branches}
    held = {b: 0 for b in branches}
    applied = {b: False for b in branches}
    states = [_snapshot(coord, durable, held, applied, ops)]
    for row in txn["trace"]:
        _apply(row, coord, durable, held, applied, ops)
        states.append(_snapshot(coord, durable, held, applied, ops))
    return states


def _apply(row, coord, durable, held, applied, ops) -> None:
    """Change the states by one trace row (Rule RP1)."""
    msg, src = row["msg"], row["from"]
    detail = row.get("detail", "")
    if row.get("sent") is False:
        return                                          # it never left: nothing changed
    if msg == "begin":
        coord["log"].append("begin")
        coord["doing"] = "asking for votes"
    elif msg == "vote" and src in durable:
        if detail.startswith("yes"):
            durable[src] = "prepared (durable): waiting for the decision"
            held[src] = sum(-d for _, d in ops.get(src, []) if d < 0)
        else:
            durable[src] = "aborted: it voted no"
    elif msg == "decision":
        word = "commit" if "commit" in detail else "abort"
        coord["log"].append(f"{word} (forced)" if word == "commit" else word)
        coord["doing"] = f"decided {word}: telling the branches"
    elif msg == "ack" and src in durable:
        word = "committed" if "commit" in detail else "aborted"
        durable[src] = f"{word} (durable)"
        held[src], applied[src] = 0, word == "committed"
    elif msg == "end":
        coord["log"].append("end")
        coord["doing"] = "finished: every branch acknowledged"
    elif msg == "recovered":
        coord["doing"] = "restarted: it knows only its recovery log, and finishes from it"


def _snapshot(coord, durable, held, applied, ops) -> dict:
    lines = {"coordinator": [f"recovery log: {', '.join(coord['log']) or 'empty'}",
                             f"doing: {coord['doing']}"]}
    for branch, state in durable.items():
        change = ", ".join(f"{acct} {'+' if d > 0 else '-'}{gauge.show_money(abs(d))}"
                           for acct, d in ops.get(branch, [])) or "none"
        lines[branch] = [f"durable state: {state}",
                         f"held: {gauge.show_money(held[branch])}",
                         f"balance change: {change if applied[branch] else 'none yet'}"]
    return lines


def step_text(row: dict, index: int) -> str:
    """One step in words: 'step 3: Delhi → coordinator  vote yes  (16 ms)'."""
    if row is None:
        return "the start: nothing has happened yet (press Next or →)"
    words = f"{row['msg']} {row.get('detail', '')}".strip()
    if row.get("sent") is False:
        words += "  (never sent)"
    if row["msg"] == "error":
        words = f"no answer: {row.get('detail', '')}"
    return with_thousands(f"step {index}: {row['from']} → {row['to']}   {words}   "
                          f"({row.get('ms', 0)} ms)")


# ---- the window ---------------------------------------------------------------------------

class TraceReplay:
    """One transfer on screen; ``show(k)`` displays it after step k (0: the start)."""

    def __init__(self, top, txn: dict):
        self.top, self.txn = top, txn
        self.states = trace_states(txn)
        self.step = 0
        top.title(f"{TITLE}: {txn['txid']}")
        self._build()
        self.top.after_idle(lambda: self.show(self.step))

    def _build(self) -> None:
        bar = ttk.Frame(self.top, padding=4)
        bar.pack(fill="x")
        for text, command in (("|< First", lambda: self.show(0)),
                              ("< Back", lambda: self.show(self.step - 1)),
                              ("Next >", lambda: self.show(self.step + 1)),
                              ("Last >|", lambda: self.show(len(self.states) - 1))):
            ttk.Button(bar, text=text, command=command).pack(side="left", padx=2)
        self.where = ttk.Label(bar, text="", style="Info.TLabel")
        self.where.pack(side="left", padx=12)
        panes = ttk.PanedWindow(self.top, orient="horizontal")
        panes.pack(fill="both", expand=True, padx=4, pady=4)
        holder = ttk.Frame(panes)
        self.diagram = tk.Canvas(holder, background=draw.PAPER, highlightthickness=0,
                                 width=int(self.top.winfo_screenwidth() * 0.45))
        scrolled(holder, self.diagram)
        self.hover = CanvasHover(self.diagram)      # a shortened label in full
        self.diagram.bind("<Configure>", lambda e: self._draw())
        self.parties = tk.Text(panes, width=36, wrap="word", font="TkDefaultFont")
        self.parties.tag_configure("party", font="TkHeadingFont")
        self.parties.tag_configure("changed", background="#fff0c2")
        panes.add(holder, weight=3)
        panes.add(self.parties, weight=1)
        self.top.bind("<Right>", lambda _e: self.show(self.step + 1))
        self.top.bind("<Left>", lambda _e: self.show(self.step - 1))

    def show(self, step: int) -> None:
        """The diagram up to `step`, that step marked, and every party's state after it."""
        self.step = max(0, min(step, len(self.states) - 1))
        row = self.txn["trace"][self.step - 1] if self.step else None
        self.where.configure(text=f"{step_text(row, self.step)}   ·   "
                                  f"{self.step} of {len(self.states) - 1}")
        self._draw()
        self._write_parties()

    def _draw(self) -> None:
        shown = dict(self.txn, trace=self.txn["trace"][:self.step])
        if self.step < len(self.states) - 1:
            shown["state"] = "replaying"          # no ending drawn before the last step
        draw.draw_sequence(self.diagram, shown, draw.visible_width(self.diagram),
                           ending=self.step == len(self.states) - 1, empty=START)
        items = self.diagram.find_withtag("arrow") + self.diagram.find_withtag("never-sent")
        if self.step and items:                   # mark the step just taken
            x0, y0, x1, y1 = self.diagram.bbox(max(items))
            mark = self.diagram.create_rectangle(0, y0 - 16, max(x1, 2000), y1 + 4,
                                                 fill="#fff0c2", outline="", tags=("now",))
            self.diagram.tag_lower(mark)
            for band in self.diagram.find_withtag("phase-band"):
                self.diagram.tag_raise(mark, band)      # over the phase bands, under the rest

    def _write_parties(self) -> None:
        before = self.states[self.step - 1] if self.step else {}
        text = self.parties
        text.configure(state="normal")
        text.delete("1.0", "end")
        for party, lines in self.states[self.step].items():
            text.insert("end", f"{party}\n", ("party",))
            for line in lines:
                changed = line not in before.get(party, [line])
                text.insert("end", f"    {line}\n", ("changed",) if changed else ())
        text.configure(state="disabled")

    def state_text(self) -> str:
        """What the parties panel shows now (for tests and for copying)."""
        return self.parties.get("1.0", "end-1c")


def open_window(master, txn: dict) -> TraceReplay:
    """A replay of `txn` in a new top-level window over `master` (the main window)."""
    top = tk.Toplevel(master)
    top.geometry(f"{int(master.winfo_screenwidth() * 0.7)}x"
                 f"{int(master.winfo_screenheight() * 0.7)}")
    return TraceReplay(top, txn)


def open_file(path, font_size: int) -> int:
    """``gui_tk.py --replay FILE``: a saved trace, or a run saved by the explorer (which
    opens in the explorer's replay window); returns when the window is closed."""
    from bank.explorer import traces                   # the explorer's own file check
    try:
        traces.load(path)
    except ValueError:
        pass
    else:
        from bank.window.replay import open_window as open_run
        return open_run(path, font_size)
    try:
        txn = load_trace(path)
    except ValueError as exc:
        print(exc)
        return 2
    root = tk.Tk()
    Look(root, font_size)                              # fonts and styles, as the window's
    root.title(f"{TITLE}: {txn['txid']}")
    TraceReplay(root, txn)
    run_until_closed(root)            # Ctrl-C closes it (Rule W1)
    return 0
