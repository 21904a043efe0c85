"""The transactions panel of the desktop window: the list, and the chosen one's diagram.

Role: list the coordinator's recent transactions, coloured and marked by how they stand
(✓ committed green, ✗ aborted red, … in doubt amber), and draw the selected one as a sequence diagram:
one arrow per Two-Phase Commit message, as the coordinator's trace recorded it.

Rules:
  * Rule T1 - the list is the coordinator's answer, updated in place and in its order;
    a row is never coloured by a guess, only by the state the coordinator reported.
  * Rule T2 - the selected transaction is fetched again on every refresh while it is in
    doubt, and once more when its listed state changes, so its diagram follows the
    protocol to the end. A finished one is not asked again.
  * Rule T3 - an answer for a transaction the user has moved away from is dropped: the
    diagram always shows the selected one.
  * Rule T4 - while a transaction is in doubt, the diagram keeps its latest messages in
    view, unless the user has scrolled up to read.
  * Rule T6 - in a narrow panel the State (and a blocked branch's "Waiting for") stays
    in sight: the transaction id is left out first (it is in the diagram's title), then
    the transfer column gets narrower, whole on hover (fit.py, Rule F4). An amount is
    never cut: the Amount and Money held columns are as wide as their widest amount
    (fit.py, Rule F5); the list scrolls sideways instead, and the blocked map narrows
    its money only after the id and the time are left out, to its first words and "…"
    (an amount whole or not at all; whole on hover).
  * Rule T5 - what a blocked bank looks like is read from the branches, not from the
    coordinator: every transaction a branch holds prepared is listed (the blocking map:
    branch, money held, since when, what it waits for), so a transfer left in doubt by a
    crashed coordinator is on screen; and while the coordinator is down the last diagram
    says it is not current instead of staying green, until its first answer after.

Glossary:
  txid       a transaction id, e.g. "coordinator-20240102-ab12cd"; the row id in the list
  row        a summary from transactions(): txid, src, dst, amount, state, waiting_for
  shown      the full transaction() reply (with its trace) that the diagram draws
  in doubt   decided or not, some participant has not been told yet
"""

import tkinter as tk
from tkinter import font as tkfont
from tkinter import ttk

from bank.money import parse_amount, with_thousands
from bank.views import txn_category, txn_state_text
from bank.window import diagram as draw
from bank.window import fit
from bank.window import gauge
from bank.window import trace_replay
from bank.window.look import CanvasHover, Hover, scrolled

HINT = ("Make a transfer between two branches, or select one above: "
        "its Two-Phase Commit is drawn here, one arrow per message, "
        "with the time each one was sent (ms after it began).")
# What a class reads first comes first; the long id last (Rule L4: hover shows cut text).
LIST_COLUMNS = (("transfer", "From → to", 23), ("amount", "Amount", 10),
                ("state", "State", 30), ("txid", "Transaction id", 25))


MARKS = {"committed": "✓ ", "aborted": "✗ ", "in-doubt": "… "}   # not colour alone

BLOCKED_COLUMNS = (("branch", "Branch", 9), ("money", "Money held", 20),
                   ("since", "Since (UTC)", 10), ("waiting", "Waiting for", 30),
                   ("txid", "Transaction id", 25))


class TransactionsPanel:
    """The "Transactions" tab: ``tree`` (the list) over ``diagram`` (a Canvas)."""

    def __init__(self, notebook: ttk.Notebook, app):
        self.app = app
        self.txns = {}                     # txid -> summary row, as last listed
        self.selected = ""                 # txid whose diagram is shown
        self.shown = None                  # the transaction() reply drawn
        self.last_seen = ""                # when the coordinator last answered
        self.money_held = {}               # blocked row -> its whole money text (T6)
        self.whole = {}                    # txid -> {column: its whole text} (fit.py F4)
        panes = ttk.PanedWindow(notebook, orient="vertical")
        notebook.add(panes, text="Transactions")
        top, bottom = ttk.Frame(panes, padding=4), ttk.Frame(panes, padding=4)
        self.blocked_box, self.blocked, self.fit_blocked = self._build_blocked(top, app.look)
        self.tree, self.fit_list = self._build_list(top, app.look)
        self.title, self.diagram = self._build_diagram(bottom)
        panes.add(top, weight=1)
        panes.add(bottom, weight=4)

    def _build_blocked(self, frame, look):
        """The blocking map (Rule T5): shown only while some branch holds a transaction;
        its box, its tree and the function that fits its columns again (T6)."""
        box = ttk.LabelFrame(frame, style="Panel.TLabelframe", padding=2,
                             text="Blocked: money held for transactions in doubt "
                                  "(read from the branches)")
        tree = ttk.Treeview(box, columns=[c[0] for c in BLOCKED_COLUMNS], height=3,
                            show="headings", selectmode="none")
        for col, text, width in BLOCKED_COLUMNS:
            look.column(tree, col, text, width, stretch=col == "waiting")
        tree.tag_configure("blocked", background=draw.STATE_BG["in-doubt"])
        tree.pack(fill="x")
        Hover(tree, full=self._whole_money)
        return box, tree, fit.keep_columns_shared(                 # Rules F4 and F5
            tree, "waiting", look.px(13), ("txid", "since"), shrink="money",
            money=("money",), full=self._whole_money)

    def _whole_money(self, row: str, col: str) -> str:
        """A blocked row's whole money text (shown shortened in a narrow map, T6)."""
        return self.money_held.get(row, "") if self.blocked.column(col, "id") == "money" \
            else ""

    def _build_list(self, frame, look):
        """The list of transactions, and the function that fits its columns again (T6)."""
        holder = ttk.Frame(frame)
        holder.pack(fill="both", expand=True)
        tree = ttk.Treeview(holder, columns=[c[0] for c in LIST_COLUMNS], height=5,
                            selectmode="browse", show="headings")
        for col, text, width in LIST_COLUMNS:
            look.column(tree, col, text, width, "e" if col == "amount" else "w",
                        stretch=col == "state")
        for category, colour in draw.STATE_BG.items():
            tree.tag_configure(category, background=colour)
        scrolled(holder, tree)
        Hover(tree, full=self._whole_cell)
        tree.bind("<<TreeviewSelect>>", lambda e: self._on_select())
        return tree, fit.keep_columns_shared(                      # Rules F4 and F5
            tree, "state", look.px(14), ("txid",), shrink="transfer", money=("amount",),
            full=self._whole_cell, marked=("transfer", "state"))

    def _keep_sources_whole(self) -> None:
        """From → to narrows no further than its widest "SOURCE →…" (fit.py, F4): a
        shortened route keeps its whole source account, never cut inside a number."""
        measure = tkfont.nametofont("TkDefaultFont").measure
        need = max((measure(w["transfer"].split(" → ")[0] + " →" + fit.ELLIPSIS)
                    for w in self.whole.values()), default=0) + fit.cell_pad()
        least = max(need, self.app.look.heading_px(LIST_COLUMNS[0][1]))
        if self.tree.column("transfer", "minwidth") != least:
            self.tree.column("transfer", minwidth=least)

    def _whole_cell(self, txid: str, col: str) -> str:
        """A listed transaction's whole From → to or State (shown shortened with "…"
        in a narrow list: fit.py, F4); any other cell's text as it is."""
        col = self.tree.column(col, "id")
        return self.whole.get(txid, {}).get(col) or str(self.tree.set(txid, col))

    def _build_diagram(self, frame):
        """The diagram's title line and its scrolled Canvas."""
        bar = ttk.Frame(frame)
        bar.pack(fill="x")
        self.replay_button = ttk.Button(bar, text="▶ Replay step by step", state="disabled",
                                        style="Small.TButton", command=self.replay)
        self.save_button = ttk.Button(bar, text="Save trace", state="disabled",
                                      style="Small.TButton", command=self.save)
        self.save_button.pack(side="right")
        self.replay_button.pack(side="right", padx=4)
        title = ttk.Label(bar, text="Select a transaction to see its messages.",
                          style="Dim.TLabel")
        title.pack(side="left", fill="x", expand=True)
        bar.bind("<Configure>", lambda e: self._fit_title(title, e.width), add="+")
        holder = ttk.Frame(frame)
        holder.pack(fill="both", expand=True)
        canvas = tk.Canvas(holder, background=draw.PAPER, highlightthickness=1,
                           highlightbackground="#c8c8c8")
        scrolled(holder, canvas)
        self.hover = CanvasHover(canvas)       # a shortened label or a box, in full (L4)
        canvas.bind("<Configure>", lambda e: self.draw())
        canvas.bind("<MouseWheel>", lambda e: canvas.yview_scroll(  # by its sign: on macOS
            -2 if e.delta > 0 else 2, "units"))         # and touchpads a delta is under 120
        canvas.bind("<Button-4>", lambda e: canvas.yview_scroll(-2, "units"))
        canvas.bind("<Button-5>", lambda e: canvas.yview_scroll(2, "units"))
        canvas.create_text(16, 16, anchor="nw", fill=draw.GREY, tags=("note", "hint"),
                           text=HINT, width=400)
        canvas.bind("<Configure>", lambda e: canvas.itemconfigure(      # wrapped to fit
            "hint", width=max(150, e.width - 32)), add="+")
        return title, canvas

    def _fit_title(self, title, width: int) -> None:
        """The diagram's title wraps beside the buttons when there is room for a few
        words there, else above them, across the panel (never cut mid-word)."""
        room = (width - self.replay_button.winfo_reqwidth()
                - self.save_button.winfo_reqwidth() - 16)
        above = room < self.app.look.px(24)
        if above != (title.pack_info().get("side") == "top"):
            if above:
                title.pack(side="top", fill="x", expand=False, before=self.save_button)
            else:
                title.pack(side="left", fill="x", expand=True, after=self.replay_button)
        title.configure(wraplength=max(120, width - 8 if above else room))

    # ---- the blocking map and a coordinator that is down (Rule T5) ------------------------

    def show_blocked(self, rows: list) -> None:
        """Every transaction a branch holds prepared, with its money and what it waits for."""
        tree = self.blocked
        tree.delete(*tree.get_children(""))
        self.money_held = {}
        for row in rows:
            iid = tree.insert("", "end", values=tuple(row[c[0]] for c in BLOCKED_COLUMNS),
                              tags=("blocked",))
            self.money_held[iid] = row["money"]
        tree.configure(height=max(1, min(len(rows), 4)))
        self.fit_blocked()                 # as wide as its widest amount (fit.py, F5)
        if rows and not self.blocked_box.winfo_ismapped():
            self.blocked_box.pack(side="top", fill="x", before=self.tree.master)
        elif not rows and self.blocked_box.winfo_manager():
            self.blocked_box.pack_forget()

    def coordinator_down(self, last_seen: str) -> None:
        """The list and the diagram are the coordinator's: say they are old, not green."""
        self.last_seen = last_seen
        self._show_title()

    # ---- the list (Rule T1) ---------------------------------------------------------------

    def show(self, rows: list) -> None:
        """List the coordinator's transactions, newest first, as it sent them."""
        self.txns = {r["txid"]: r for r in rows}
        for index, row in enumerate(rows):
            self._show_row(index, row)
        for iid in self.tree.get_children(""):
            if iid not in self.txns:
                self.tree.delete(iid)
                self.whole.pop(iid, None)
        self._keep_sources_whole()
        self.fit_list()                    # as wide as its widest amount (fit.py, F5)
        if self.selected in self.txns and self.tree.selection() != (self.selected,):
            self.tree.selection_set(self.selected)     # chosen before its row was listed
        if self.selected in self.txns and self.shown is not None and \
                self.shown.get("state") != self.txns[self.selected]["state"]:
            self._fetch(self.selected)                 # Rule T2: its state moved on
        self._show_title()              # the coordinator answers: no longer NOT CURRENT (T5)

    def _show_row(self, index: int, row: dict) -> None:
        tree, txid = self.tree, row["txid"]
        values = (f"{row['src']} → {row['dst']}",
                  gauge.show_money(parse_amount(row["amount"])) if row.get("amount") else "",
                  MARKS.get(txn_category(row), "") + with_thousands(txn_state_text(row)),
                  txid)
        tags = (txn_category(row),)
        self.whole[txid] = {"transfer": values[0], "state": values[2]}
        if not tree.exists(txid):
            tree.insert("", index, iid=txid, values=values, tags=tags)
            return
        tree.item(txid, values=values, tags=tags)
        if tree.index(txid) != index:
            tree.move(txid, "", index)

    def select(self, txid: str) -> None:
        """Select a transaction in the list (its diagram follows). It is chosen here and
        now: the list's own selection event comes later, and a refresh in between
        would otherwise select the one before again (show() keeps `selected` selected)."""
        if self.tree.exists(txid):
            self.tree.selection_set(txid)
            self.tree.see(txid)
        self._choose(txid)

    def _on_select(self) -> None:
        chosen = self.tree.selection()
        if chosen:
            self._choose(chosen[0])

    def _choose(self, txid: str) -> None:
        """Show this transaction's diagram (fetched), unless it is already the one."""
        if txid == self.selected:
            return
        self.selected, self.shown = txid, None
        self.diagram.delete("all")
        self.title.configure(text=f"{txid}: loading...")
        self._fetch(txid)

    # ---- the diagram (Rules T2-T4) --------------------------------------------------------

    def follow(self) -> None:
        """On each refresh: fetch the selected transaction again while it is in doubt."""
        if self.selected and self._unfinished(self.selected):
            self._fetch(self.selected)

    def _unfinished(self, txid: str) -> bool:
        row = self.txns.get(txid) or self.shown or {}
        return txn_category(row) == "in-doubt"

    def _fetch(self, txid: str) -> None:
        self.app.start(f"txn:{txid}", self.app.poll_client.call, ("transaction", txid),
                       lambda result, error: self._got(txid, result, error))

    def _got(self, txid: str, result, error) -> None:
        if txid != self.selected:
            return                        # Rule T3: the user has moved on
        if error is not None:
            self.title.configure(text=f"{txid}: {error.message}")
            return
        if result == self.shown:
            return
        new = self.shown is None or self.shown["txid"] != txid
        following = new or self.diagram.yview()[1] > 0.99
        self.shown = result
        self.draw()
        if following and txn_category(result) == "in-doubt":
            self.diagram.yview_moveto(1.0)   # Rule T4: keep the latest messages in view

    def draw(self) -> None:
        """Draw the shown transaction: its title line, coloured, and its diagram."""
        txn = self.shown
        if txn is None:
            return
        self._show_title()
        draw.draw_sequence(self.diagram, txn, draw.visible_width(self.diagram))
        for button in (self.replay_button, self.save_button):
            button.configure(state="normal" if txn.get("trace") else "disabled")

    def _show_title(self) -> None:
        """The diagram's title: the transfer and its state, coloured; or, while the
        coordinator is down, that this is as last seen (Rule T5)."""
        txn = self.shown
        if txn is None:
            return
        text = with_thousands(f"{txn['txid']}:  {txn['src']} → {txn['dst']}  "
                              f"{txn['amount']}  ·  {txn_state_text(txn)}")
        if self.app.seen.coord.get("up") is False:
            when = f" at {self.last_seen}" if self.last_seen else ""
            text = f"NOT CURRENT: the coordinator is down; as last seen{when}: {text}"
            style = "Dim.TLabel"
        else:
            style = {"committed": "Ok.TLabel", "aborted": "Bad.TLabel"}.get(
                txn_category(txn), "Unknown.TLabel")
        if (self.title.cget("text"), str(self.title.cget("style"))) != (text, style):
            self.title.configure(text=text, style=style)     # (asked every refresh)

    # ---- replaying the shown transaction, or saving it to replay later ---------------------

    def replay(self):
        """Open the shown transfer in a replay window: one message at a time."""
        if self.shown is not None and self.shown.get("trace"):
            return trace_replay.open_window(self.app.root, self.shown)
        return None

    def save(self) -> None:
        """Save the shown transfer's trace next to the activity log, for --replay FILE."""
        if self.shown is None:
            return
        name = "trace-" + (self.shown["txid"] or self.shown.get("request_id", "")) + ".json"
        try:
            path = trace_replay.save_trace(self.shown, self.app.activity.path.parent / name)
        except OSError as exc:
            self.app.say(f"Cannot save the trace: {exc}", "bad")
            return
        self.app.say(f"Saved to {path}; replay it with: python gui_tk.py --replay {path}",
                     "ok")
