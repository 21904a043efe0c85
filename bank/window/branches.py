"""The branches panel of the desktop window: members, replicas, accounts, and the gauge.

Role: show every member (the coordinator and each branch) up or down with its role,
epoch, transactions in doubt, armed fault and lab partition; under each branch its
replicas (in sync or not, and their lag) and its accounts (balance, held, available);
and below, the gauge that counts all the money in the bank.

Rules:
  * Rule B1 - only the Tk thread runs this code; it draws what ``app.seen`` holds and
    never calls the network itself (the app's refresh does, on workers).
  * Rule B2 - a branch that is down keeps its last accounts, greyed ("stale"): the
    money is still there, the window just cannot see it move.
  * Rule B3 - the gauge is drawn only from a consistent snapshot of every branch
    (calls.fetch_money), and says when it was read. When the books kept moving (None)
    or the read failed, the last gauge stays (its total never jumps) but says so in
    red: "NOT CURRENT: ..., showing the snapshot of 10:42:07". A branch it could not
    read is named, and its part (its last seen accounts) called approximate.
  * Rule B5 - a member's state is never cut: on a small screen (1024x768) the tree
    leaves out its Available column (balance - held, both still shown) before the
    state column would get narrower than its longest state.
  * Rule B4 - rows are updated in place (``_upsert``), never cleared and rebuilt, so a
    refresh every second neither flickers nor loses the user's scroll position.

Glossary:
  row id   "m:NAME" a member, "r:NAME/K" its K-th replica, "a:NAME/NUMBER" an account
  gauge    the bar that counts all the money: available, held, in doubt, unreachable
  split    the gauge's numbers, in minor units (diagram.money_split)
"""

import time
import tkinter as tk
from tkinter import font as tkfont
from tkinter import ttk

from bank.local_cluster import COORDINATOR as COORD
from bank.money import parse_amount
from bank.window import diagram as draw
from bank.window import gauge as money_gauge
from bank.window.fit import MIN_TREE_ROWS
from bank.window.look import Hover

MONEY_COLUMNS = ("balance", "held", "available")
TAG_COLOURS = {"up": draw.GREEN, "down": draw.RED, "cut": draw.AMBER}


def _minor(text: str) -> int:
    return parse_amount(text, allow_zero=True)


class BranchesPanel:
    """The tree of members and accounts (``tree``) and the money gauge (``gauge``)."""

    def __init__(self, parent, app):
        self.app, self.seen = app, app.seen
        self.box = ttk.LabelFrame(parent, text="Branches and accounts",
                                  style="Panel.TLabelframe", padding=4)
        self.tree = self._build_tree(self.box, app.look)
        self.bar = ttk.Scrollbar(self.box, orient="vertical", command=self.tree.yview)
        self.tree.configure(yscrollcommand=self.bar.set)
        self.gauge_box = ttk.LabelFrame(parent, text="All the money in the bank",
                                        style="Panel.TLabelframe", padding=2)
        # Top down, before the forms: the tree keeps its rows (fit.py, Rule F1).
        self.box.pack(side="top", fill="x")
        self.gauge_box.pack(side="top", fill="x", pady=(6, 0))
        self.gauge = tk.Canvas(self.gauge_box, height=100, background=draw.PAPER,
                               highlightthickness=0)
        self.gauge.pack(fill="x")
        self.gauge.bind("<Configure>", lambda e: self.draw_gauge())
        self.split = money_gauge.money_split({})
        self.money_at, self.gauge_note = "", ""     # when the split was read; what to say

    @staticmethod
    def _build_tree(box, look) -> ttk.Treeview:
        tree = ttk.Treeview(box, columns=("owner", *MONEY_COLUMNS), height=MIN_TREE_ROWS,
                            selectmode="browse")
        look.column(tree, "#0", "Branch", 14)
        for col, text, width in (("owner", "Owner / state", 19), ("balance", "Balance", 11),
                                 ("held", "Held", 9), ("available", "Available", 11)):
            look.column(tree, col, text, width, "w" if col == "owner" else "e",
                        stretch=col == "owner")
        Hover(tree)                      # a long state shows in full under the pointer
        for tag, colour in TAG_COLOURS.items():
            tree.tag_configure(tag, foreground=colour, font="TkHeadingFont")
        tree.tag_configure("stale", foreground="#9a9a9a")
        tree.tag_configure("holding", foreground=draw.AMBER)
        tree.pack(fill="both", expand=True)
        tree.bind("<Configure>", lambda e: BranchesPanel.fit_columns(tree, look), add="+")
        return tree

    def show_rows(self, rows: int, wanted: int) -> None:
        """Show `rows` rows (the app shares the column, fit.py Rule F1); a scrollbar
        when some of the `wanted` rows are out of sight."""
        if int(self.tree.cget("height")) != rows:
            self.tree.configure(height=rows)
        if rows < wanted and not self.bar.winfo_manager():
            self.bar.pack(side="right", fill="y", before=self.tree)
        elif rows >= wanted and self.bar.winfo_manager():
            self.bar.pack_forget()

    @staticmethod
    def fit_columns(tree: ttk.Treeview, look) -> None:
        """Rule B5: leave out Available when the state column would be too narrow for
        its longest state; show it again when the tree is wide enough."""
        font = tkfont.nametofont("TkDefaultFont")
        members = tree.get_children("")
        states = [tree.set(iid, "owner") for iid in members] + [
            tree.set(iid, "owner") for m in members for iid in tree.get_children(m)
            if iid.startswith("r:")]
        need = max(map(font.measure, states), default=0) + look.px(2)
        fixed = sum(tree.column(c, "width") for c in ("#0", "balance", "held"))
        room = tree.winfo_width() - fixed - 4            # the tree's border
        wide = room - tree.column("available", "width") >= need
        shown = ("owner", *MONEY_COLUMNS) if wide else ("owner", "balance", "held")
        if tuple(tree.cget("displaycolumns")) != shown:
            tree.configure(displaycolumns=shown)
        # Tk shares out the width only when the tree is resized: give the state the rest.
        rest = room - (tree.column("available", "width") if wide else 0)
        if rest > tree.column("owner", "minwidth") and rest != tree.column("owner", "width"):
            tree.column("owner", width=rest)

    # ---- the tree -------------------------------------------------------------------------

    def render(self) -> None:
        """Show what was last seen: one row per member, replica and account (Rule B4)."""
        wanted = [self._upsert("m:" + COORD, "", "coordinator",
                               (self.member_text(COORD), "", "", ""), self.member_tag(COORD))]
        for name in sorted(self.seen.routes):
            wanted += self._render_branch(name)
        self._drop_rows_except(set(wanted))
        self.fit_columns(self.tree, self.app.look)          # Rule B5: a longer state

    def _render_branch(self, name: str) -> list:
        """The branch's row, then its replicas and accounts under it; their row ids."""
        accounts = self.seen.accounts(name)
        totals = [sum(_minor(a[k]) for a in accounts) for k in MONEY_COLUMNS]
        iid = self._upsert("m:" + name, "", name, (
            self.member_text(name),
            *(money_gauge.show_money(t) if accounts else "" for t in totals)),
            self.member_tag(name))
        return [iid, *self._render_replicas(name, iid), *self._render_accounts(name, iid)]

    def _render_replicas(self, name: str, parent: str) -> list:
        """A row per replica: its role, sync state and lag."""
        rows = []
        for k, rep in enumerate(self.seen.replication.get(name, (0, []))[1]):
            state = ("○ down" if not rep["up"] else
                     f"● {'in sync' if rep['in_sync'] else 'OUT OF SYNC'} · lag {rep['lag']}")
            rows.append(self._upsert(f"r:{name}/{k}", parent, rep["role"] or "server",
                                     (state, "", "", ""),
                                     "up" if rep["up"] and rep["in_sync"] else "down"))
        return rows

    def _render_accounts(self, name: str, parent: str) -> list:
        """A row per account; greyed if the branch is down (Rule B2), amber if held."""
        up, rows = self.seen.snaps.get(name, {}).get("up"), []
        for acct in self.seen.accounts(name):
            tag = "stale" if not up else ("holding" if _minor(acct["held"]) else "")
            rows.append(self._upsert(f"a:{name}/{acct['number']}", parent, acct["number"], (
                acct["owner"],
                *(money_gauge.show_money(_minor(acct[k])) for k in MONEY_COLUMNS)),
                tag))
        return rows

    def _drop_rows_except(self, wanted: set) -> None:
        """Delete the rows of members, replicas and accounts that are gone."""
        tree = self.tree
        members = tree.get_children("")
        for iid in [*members, *(child for m in members for child in tree.get_children(m))]:
            if iid not in wanted and tree.exists(iid):
                tree.delete(iid)

    def _upsert(self, iid, parent, text, values, tag) -> str:
        """Update row `iid` in place, or add it (open, so accounts show); returns iid."""
        tags = (tag,) if tag else ()
        if self.tree.exists(iid):
            self.tree.item(iid, text=text, values=values, tags=tags)
        else:
            self.tree.insert(parent, "end", iid=iid, text=text, values=values, tags=tags,
                             open=True)
        return iid

    # ---- a member's state in words ------------------------------------------------------

    def member_text(self, name: str) -> str:
        """The state column of a member's row: '● up · ...', '○ down' or '...'."""
        state = self.seen.branch_state(name)
        if state == "down":
            doubt = "" if name == COORD else self.seen.in_doubt_text(name, time.time())
            return "○ down" + ("" if doubt in ("", "0", "?") or doubt.startswith("0 ")
                               else f" · in doubt: {doubt}")
        if state == "":
            return "..."
        armed = self.seen.armed(name)
        text = self._coordinator_text() if name == COORD else self._branch_text(name)
        return text + (f" · armed: {armed}" if armed else "")

    def _coordinator_text(self) -> str:
        return f"● up · {self.seen.coord.get('ping', {}).get('in_flight', 0)} in flight"

    def _branch_text(self, name: str) -> str:
        snap = self.seen.snaps.get(name, {})
        text = f"● up · {snap.get('role', '')}"
        epoch, replicas = self.seen.replication.get(name, (0, []))
        if replicas:
            text += f" · epoch {epoch}"
        if snap.get("in_doubt"):
            text += f" · {snap['in_doubt']} in doubt"
        if self.seen.partitioned.get(name):
            text += " · cut off"
        return text

    def member_tag(self, name: str) -> str:
        """The row's colour: up (green), down (red), cut off by a partition (amber)."""
        state = self.seen.branch_state(name)
        if state == "up" and self.seen.partitioned.get(name):
            return "cut"
        return {"up": "up", "down": "down"}.get(state, "")

    # ---- the money gauge (Rule B3) ------------------------------------------------------

    def got_money(self, result, error) -> None:
        """A consistent snapshot arrived; or None (the books kept moving) or an error:
        keep the last gauge, marked as not current (Rule B3)."""
        shown = f"showing the snapshot of {self.money_at}" if self.money_at else \
            "no snapshot yet"
        if error is not None:
            self.gauge_note = f"NOT CURRENT: the books could not be read ({error.message}); {shown}"
        elif result is None:
            self.gauge_note = ("NOT CURRENT: transfers kept changing the books, so no "
                               f"consistent snapshot could be made; {shown}")
        else:
            self.split = money_gauge.money_split(self.seen.books(result))
            self.money_at = time.strftime("%H:%M:%S")
            self.gauge_note = f"a consistent snapshot, as of {self.money_at}"
        self.draw_gauge()

    def draw_gauge(self) -> None:
        """Draw the gauge; give it the height its drawing needs (it grows with the font)."""
        costs = money_gauge.cost_text(self.seen.counters(),
                                      self.seen.coord.get("up") is not False)
        height = money_gauge.draw_gauge(self.gauge, self.split, self.gauge.winfo_width(),
                                        self.gauge_note, costs)
        if abs(int(self.gauge.cget("height")) - height) > 2:
            self.gauge.configure(height=height)
            self.app.share_left()          # the tree gives or takes rows (fit.py, F1)
