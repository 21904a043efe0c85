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
    read is named, and the total is then "not known" (gauge.py, Rule G4): its last
    seen balances are never added to the others' read now.
  * Rule B5 - a member's state is never cut mid-word: the money columns are as wide as
    their amounts (fit.py, Rule F5); on a small screen (1024x768) the tree leaves out
    its Available column (balance - held, both still shown) before the state column
    would get narrower than its longest state, and heads the state column "State"
    rather than cut Held; if a state still does not fit, it keeps its first words and
    "…" and shows whole on hover. A state says first what a class must see
    (up or down, in doubt, cut off, armed), then the branch's role and epoch when it
    has replicas; the coordinator's transfers in flight when there are some.
  * Rule B4 - rows are updated in place (``_upsert``), never cleared and rebuilt, so a
    refresh every second neither flickers nor loses the user's scroll position.
  * Rule B6 - with a local cluster, servers are named as the Lab rows name them: a
    branch's row says which server is its primary when it is not the one named for
    the branch ("primary Mumbai-replica1" after a failover), and each replica's row
    is that server's name, its role and its sync state, so the tree and the Lab
    never seem to disagree about "Mumbai".

Glossary:
  row id   "m:NAME" a member, "r:NAME/K" its K-th replica, "a:NAME/NUMBER" an account
  gauge    the bar that counts all the money: available, held, in doubt, unreachable
  split    the gauge's numbers, in minor units (gauge.money_split)
"""

import time
import tkinter as tk
from tkinter import font as tkfont
from tkinter import ttk

from bank.local_cluster import COORDINATOR as COORD
from bank.window import diagram as draw
from bank.window import gauge as money_gauge
from bank.views import minor
from bank.window.fit import MIN_TREE_ROWS, fit_money, shorten
from bank.window.look import CanvasHover, Hover

MONEY_COLUMNS = ("balance", "held", "available")
OWNER_HEADING = "Owner / state"          # "State" in a narrow tree (Rule B5)
TAG_COLOURS = {"up": draw.GREEN, "down": draw.RED, "cut": draw.AMBER}


class BranchesPanel:
    """The tree of members and accounts (``tree``) and the money gauge (``gauge``)."""

    def __init__(self, parent, app):
        self.app, self.seen = app, app.seen
        self.box = ttk.LabelFrame(parent, text="Branches and accounts",
                                  style="Panel.TLabelframe", padding=4)
        self.tree = self._build_tree(self.box, app.look)
        self.states = {}                 # row id -> its whole state (Rule B5: for the hover)
        Hover(self.tree, full=self._whole_state)   # a state cut short shows in full
        self.tree.bind("<Configure>", lambda e: self.fit_columns(), add="+")
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
        CanvasHover(self.gauge)          # a short legend name, in full (gauge.py, G2)
        self.gauge.bind("<Configure>", lambda e: self.draw_gauge())
        self.split = money_gauge.money_split({})
        self.money_at, self.gauge_note = "", ""     # when the split was read; what to say

    @staticmethod
    def _build_tree(box, look) -> ttk.Treeview:
        tree = ttk.Treeview(box, columns=("owner", *MONEY_COLUMNS), height=MIN_TREE_ROWS,
                            selectmode="browse")
        look.column(tree, "#0", "Branch", 14)
        for col, text, width in (("owner", OWNER_HEADING, 19), ("balance", "Balance", 11),
                                 ("held", "Held", 9), ("available", "Available", 11)):
            look.column(tree, col, text, width, "w" if col == "owner" else "e",
                        stretch=col == "owner")
        for tag, colour in TAG_COLOURS.items():
            tree.tag_configure(tag, foreground=colour, font="TkHeadingFont")
        tree.tag_configure("stale", foreground="#9a9a9a")
        tree.tag_configure("holding", foreground=draw.AMBER)
        tree.pack(fill="both", expand=True)
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

    def fit_columns(self) -> None:
        """Rule B5: the money columns as wide as their amounts (never narrower than their
        headings); Available left out when the state column would be too narrow for the
        longest state, shown again when the tree is wide enough; a state that still does
        not fit keeps its first words and "…" (fit.py, Rule F3)."""
        tree, look = self.tree, self.app.look
        if tree.winfo_width() < 50:                      # not laid out yet
            return
        self._fit_money_columns()
        self._fit_name_column()
        need = max((self._font(iid).measure(text) for iid, text in self.states.items()),
                   default=0) + look.px(2)
        fixed = sum(tree.column(c, "width") for c in ("#0", "balance", "held"))
        room = tree.winfo_width() - fixed - 4            # the tree's border
        wide = room - tree.column("available", "width") >= need
        shown = ("owner", *MONEY_COLUMNS) if wide else ("owner", "balance", "held")
        if tuple(tree.cget("displaycolumns")) != shown:
            tree.configure(displaycolumns=shown)
        # Tk shares out the width only when the tree is resized: give the state the rest.
        rest = room - (tree.column("available", "width") if wide else 0)
        self._name_state_column(rest)
        if rest > tree.column("owner", "minwidth") and rest != tree.column("owner", "width"):
            tree.column("owner", width=rest)
        self._shorten_states(tree.column("owner", "width") - look.px(2))
        over = sum(tree.column(c, "width") for c in ("#0", *shown)) - (tree.winfo_width() - 4)
        if over > 0:                                     # even at its least: more room
            self.app.widen_left(over)

    def _fit_money_columns(self) -> None:
        """Each money column as wide as its widest amount, a member's and an account's,
        in the row's font (a member's row is bold), and never narrower than its heading
        (fit.py, Rule F5)."""
        tree = self.tree
        rows = [*tree.get_children(""),
                *(iid for m in tree.get_children("") for iid in tree.get_children(m))]
        fit_money(tree, MONEY_COLUMNS, rows)

    def _name_state_column(self, room: int) -> None:
        """Its heading "Owner / state", or "State" when `room` is narrower than that
        (1024x768 at font 14): a long heading made the tree cut its Held column."""
        tree, look = self.tree, self.app.look
        heading = OWNER_HEADING if room >= look.heading_px(OWNER_HEADING) else "State"
        if tree.heading("owner", "text") != heading:
            tree.heading("owner", text=heading)
            tree.column("owner", minwidth=look.heading_px(heading))

    def _fit_name_column(self) -> None:
        """The Branch column as wide as its widest name at its depth (a member's bold,
        an account's or replica's one indent in), never narrower than its heading: a
        fixed width took room the states and Held need at 1024x768, font 14."""
        tree, look = self.tree, self.app.look
        indent = int(ttk.Style(tree).lookup("Treeview", "indent") or 20)
        widest = 0
        for member in tree.get_children(""):
            widest = max(widest, self._font(member).measure(tree.item(member, "text")))
            for child in tree.get_children(member):
                widest = max(widest, indent + self._font(child).measure(
                    tree.item(child, "text")))
        width = max(look.heading_px(tree.heading("#0", "text")),
                    widest + indent + look.px(1))
        if tree.column("#0", "width") != width:
            tree.column("#0", width=width)

    def _shorten_states(self, room: int) -> None:
        """Each state whole if it fits `room`, else its first words and "…" (F3)."""
        for iid, whole in self.states.items():
            if self.tree.exists(iid):
                text = shorten(whole, room, self._font(iid).measure, sep=" · ") or \
                    whole.split(" · ")[0]
                if self.tree.set(iid, "owner") != text:
                    self.tree.set(iid, "owner", text)

    def _font(self, iid: str):
        """The font of a row: bold for a member or replica with a state colour."""
        tags = self.tree.item(iid, "tags")
        bold = bool(tags) and tags[0] in TAG_COLOURS
        return tkfont.nametofont("TkHeadingFont" if bold else "TkDefaultFont")

    def _whole_state(self, row: str, col: str) -> str:
        """For the hover: the whole state of a member's or replica's row."""
        return self.states.get(row, "") if self.tree.column(col, "id") == "owner" else ""

    # ---- the tree -------------------------------------------------------------------------

    def render(self) -> None:
        """Show what was last seen: one row per member, replica and account (Rule B4)."""
        wanted = [self._upsert("m:" + COORD, "", "coordinator",
                               (self._state("m:" + COORD, self.member_text(COORD)), "", "", ""),
                               self.member_tag(COORD))]
        for name in sorted(self.seen.routes):
            wanted += self._render_branch(name)
        self._drop_rows_except(set(wanted))
        self.states = {iid: text for iid, text in self.states.items() if iid in wanted}
        self.fit_columns()                                   # Rule B5: a longer state

    def _render_branch(self, name: str) -> list:
        """The branch's row, then its replicas and accounts under it; their row ids."""
        accounts = self.seen.accounts(name)
        totals = [sum(minor(a[k]) for a in accounts) for k in MONEY_COLUMNS]
        iid = self._upsert("m:" + name, "", name, (
            self._state("m:" + name, self.member_text(name)),
            *(money_gauge.show_money(t) if accounts else "" for t in totals)),
            self.member_tag(name))
        return [iid, *self._render_replicas(name, iid), *self._render_accounts(name, iid)]

    def _render_replicas(self, name: str, parent: str) -> list:
        """A row per replica: the server's name (Rule B6) or role, its sync state and lag."""
        rows = []
        for k, rep in enumerate(self.seen.replication.get(name, (0, []))[1]):
            server = self._server_at(rep["url"])
            role = rep["role"] or "server"
            if not rep["up"]:
                state = "○ down"                         # a shape of its own, not colour only
            elif role == "fenced":                       # replaced: out of the set, no lag
                state = "▲ fenced (refuses writes)"
            else:
                state = (f"{'● in sync' if rep['in_sync'] else '▲ OUT OF SYNC'} · "
                         f"lag {rep['lag']}")
            if server and rep["up"] and role != "fenced":
                state = f"{role} · {state}"              # its name is in the first column
            tag = ("cut" if role == "fenced" else "up" if rep["in_sync"] else "down") \
                if rep["up"] else "down"                 # fenced: amber, as in the Lab
            rows.append(self._upsert(f"r:{name}/{k}", parent, server or role,
                                     (self._state(f"r:{name}/{k}", state), "", "", ""), tag))
        return rows

    def _server_at(self, url: str) -> str:
        """Rule B6: the local cluster's name for the server at `url`, or ""."""
        cluster = self.app.cluster
        name = cluster.server_at(url) if cluster is not None else ""
        return "" if name == url else name

    def _render_accounts(self, name: str, parent: str) -> list:
        """A row per account; greyed if the branch is down (Rule B2), amber if held."""
        up, rows = self.seen.snaps.get(name, {}).get("up"), []
        for acct in self.seen.accounts(name):
            tag = "stale" if not up else ("holding" if minor(acct["held"]) else "")
            rows.append(self._upsert(f"a:{name}/{acct['number']}", parent, acct["number"], (
                acct["owner"],
                *(money_gauge.show_money(minor(acct[k])) for k in MONEY_COLUMNS)),
                tag))
        return rows

    def _state(self, iid: str, whole: str) -> str:
        """Remember a row's whole state; the text shown (shortened if it was, Rule B5)."""
        self.states[iid] = whole
        shown = self.tree.set(iid, "owner") if self.tree.exists(iid) else ""
        return shown if shown.endswith("…") and whole.startswith(shown[:-1]) else whole

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
        if state == "down" and self.seen.key_refused(name):
            return "● runs, but refuses this window's key (--secret-file)"
        if state == "down":
            doubt = "" if name == COORD else self.seen.in_doubt_text(name, time.time())
            return "○ down" + ("" if doubt in ("", "0", "?") or doubt.startswith("0 ")
                               else f" · in doubt: {doubt}")
        if state == "":
            return "..."
        armed = [f"armed: {self.seen.armed(name)}"] if self.seen.armed(name) else []
        if name == COORD:                  # what is in flight, when something is
            in_flight = self.seen.coord.get("ping", {}).get("in_flight", 0)
            return " · ".join(["● up", *([f"{in_flight} in flight"] if in_flight else []),
                               *armed])
        return " · ".join(["● up", *self._branch_news(name), *armed, *self._branch_role(name)])

    def _branch_news(self, name: str) -> list:
        """What a class should see first about a branch: in doubt, cut off."""
        snap = self.seen.snaps.get(name, {})
        news = [f"{snap['in_doubt']} in doubt"] if snap.get("in_doubt") else []
        return news + (["cut off"] if self.seen.partitioned.get(name) else [])

    def _branch_role(self, name: str) -> list:
        """Its role and epoch when it has replicas (without, it is always the primary);
        shortened first (Rule B5)."""
        role = self.seen.snaps.get(name, {}).get("role", "")
        epoch, replicas = self.seen.replication.get(name, (0, []))
        server = self._server_at(self.seen.routes.get(name, ""))      # Rule B6
        if role and server and server != name:
            role = f"{role} {server}"                   # "primary Mumbai-replica1"
        return [*([role] if role else []), f"epoch {epoch}"] if replicas else []

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
        now, then = self.seen.counters_since_opened()
        costs = money_gauge.cost_text(now, self.seen.coord.get("up") is not False, then,
                                      self.seen.counted_at)
        height = money_gauge.draw_gauge(self.gauge, self.split, self.gauge.winfo_width(),
                                        self.gauge_note, costs)
        if abs(int(self.gauge.cget("height")) - height) > 2:
            self.gauge.configure(height=height)
            self.app.share_left()          # the tree gives or takes rows (fit.py, F1)
