"""The desktop window's app: worker threads, the queue pump, the refresh, and the panels.

Role: show a classroom what a dashboard shows (branches, balances, operations, logs) and
what no banking demo shows: the protocol itself, message by message, and where money is
while a transaction is in doubt. The window is a client like any lab script: it only
calls the coordinator's and the branches' public XML-RPC methods.

This file keeps the plumbing; each panel (a module of bank/window/) owns its widgets
and its handlers, and the app hands it the answers it asked for:
  branches.py      members, replicas, accounts, and the money gauge
  operations.py    the transfer, deposit, withdraw and open-account forms
  transactions.py  the list of transactions and the selected one's sequence diagram
  logs.py          the activity log and the branch journals, CSV export
  lab.py           crash, restart, fault points, partition/heal, failover
  seen.py          what the window last heard (plain data);  look.py  fonts and styles
  calls.py         what runs on worker threads
  diagram.py       the sequence diagram (layout.py: its sizes);  gauge.py  the money gauge
  fit.py           fitting a small screen: the tree keeps its rows, forms scroll, short tabs

Rules (the window's, carried out here and in every panel):
  * Rule W1 - only the Tk thread touches widgets. Every network call runs on a few worker
    threads (``Workers``); its result goes on a ``queue.Queue`` and the Tk thread picks
    it up every 50 ms (``after()`` polling, ``pump``), then a panel updates its widgets.
  * Rule W2 - the window never waits on the network. Calls have short socket timeouts, an
    unreachable branch is shown as down while the rest keeps working, and a refresh
    (about once a second) is skipped for a source whose previous one is still running
    (``start``), so slow calls never pile up.
  * Rule W3 - one callback that fails is logged and the pump goes on: a bug in one panel
    never stops the window from updating.
  * Rule W4 - if the window started the local cluster, it stops it when it closes
    (unless another program attached to it since: bank/local_cluster.py, Rule L1); a
    cluster it merely attached to keeps running.
  * Local files (the activity log and CSV exports) are read and written on the Tk thread:
    they are small and on this machine. Only the network is kept off it.

Glossary (more in bank/core/messages.py and bank/twopc.py):
  source     something the window refreshes: the coordinator, or one branch
  job        (fn, args, done): fn(*args) runs on a worker, done(result, error) on Tk
  busy       the sources with a call in flight (not asked again until it answers)
  panel      a part of the window with its own widgets and handlers (see the list above)
"""

import logging
import pathlib
import queue
import time
import tkinter as tk
from tkinter import ttk

from bank import rpc
from bank.activity import ActivityLog
from bank.money import with_thousands
from bank.local_cluster import COORDINATOR as COORD
from bank.local_cluster import stopped_under
from bank.window import fit
from bank.window.branches import BranchesPanel
from bank.window.calls import (WORKERS, Workers, fetch_branch, fetch_coordinator,
                               fetch_money, fetch_routes)
from bank.window.lab import LabPanel
from bank.window.logs import LogsPanel
from bank.window.look import Look
from bank.window.operations import OperationsPanel
from bank.window.seen import Seen, blocking_map
from bank.window.transactions import TransactionsPanel

log = logging.getLogger("gui")

POLL_MS = 50               # how often the Tk thread collects finished calls
REFRESH_MS = 1000          # how often each source is refreshed
CALL_TIMEOUT = 3           # seconds: refresh calls give up quickly
FONT_SIZE = 10             # points; --font-size 14 for a big projector
LEFT_SHARE = 0.53          # the most of the window's width the left column takes...
LEFT_MOST = 0.58           # ...unless the branches tree needs more (large fonts)
RIGHT_LEAST = 38           # digits: the least the right column keeps (the diagram)
GAP = 6                    # pixels between the boxes of the left column
RESULT_LINES = 2           # the result shows this many lines at most, then scrolls
ABOUT = "branches, balances and the Two-Phase Commit protocol, live"
SHORT_TABS = {"Open account": "Open", "Activity log": "Activity",    # on a narrow screen
              "Branch journals": "Journals"}                         # (fit.py, Rule F2)


class AppFrame:
    """Mixed into App: the frame of the window, a header, two columns of panels and a
    status line, and how the columns share its width (Rule F1)."""

    def _build(self, source: str) -> None:
        self._build_header(source)
        self.status = ttk.Label(self.root, padding=(10, 2), style="Dim.TLabel",
                                text="Connecting...")
        self.status.pack(side="bottom", fill="x")
        panes = ttk.PanedWindow(self.root, orient="horizontal")
        panes.pack(fill="both", expand=True, padx=8, pady=4)
        left, right = ttk.Frame(panes), ttk.Frame(panes)
        panes.add(left, weight=0)             # the left column keeps its natural width...
        panes.add(right, weight=1)
        self.left = left
        self._build_left(left)
        self._build_right(right)
        self.panes = panes
        panes.bind("<Configure>", lambda e: self._place_sash(e.width, left), add="+")
        panes.bind("<ButtonRelease-1>", lambda e: setattr(self, "_sash_moved", True), add="+")

    def _build_header(self, source: str) -> None:
        """The title, what the window shows, and where the bank is: on a narrow screen
        the middle text is shortened (or left out), then the source (fit.py, Rule F3)."""
        top = ttk.Frame(self.root, padding=(10, 6, 10, 2))
        top.pack(fill="x")
        title = ttk.Label(top, text="Distributed bank", style="Title.TLabel")
        title.pack(side="left")
        self.source_label = ttk.Label(top, text=source, style="Dim.TLabel")
        self.source_label.pack(side="right")
        about = ttk.Label(top, style="Dim.TLabel", text=ABOUT)
        about.pack(side="left", padx=(self.look.px(1.5), 0))
        self.header = (fit.Shortened(about, ABOUT), fit.Shortened(self.source_label, source))
        top.bind("<Configure>", lambda e: fit.fit_line(
            e.width - 24 - title.winfo_reqwidth() - self.look.px(1.5), *self.header,
            gap=self.look.px(2)), add="+")

    def widen_left(self, pixels: int) -> None:
        """The branches tree needs `pixels` more (its columns at their least, Rule B5):
        move the sash right, up to LEFT_MOST of the window, unless the user moved it,
        and never so far that the right column gets less than RIGHT_LEAST digits (the
        diagram of a transfer between two branches needs them at 1024x768, font 14)."""
        if getattr(self, "_sash_moved", False) or not getattr(self, "_sash_placed", False):
            return
        width, now = self.panes.winfo_width(), self.panes.sashpos(0)
        wanted = min(now + pixels, int(width * LEFT_MOST), width - self.look.px(RIGHT_LEAST))
        if wanted > now:
            self.panes.sashpos(0, wanted)

    def _place_sash(self, width: int, left) -> None:
        """...but on a small screen (1024x768) it gives up room so the diagram keeps at
        least 47% of the window. Done once, when the window first gets its size: after
        that the sash is the user's."""
        if width < 100 or getattr(self, "_sash_placed", False):
            return
        self._sash_placed = True
        wanted = left.winfo_reqwidth()
        if wanted > width * LEFT_SHARE:
            self.panes.sashpos(0, int(width * LEFT_SHARE))

    def _build_left(self, left) -> None:
        """The result at the bottom, then top down: the branches tree, the gauge, and the
        forms, which get what is left (fit.py, Rule F1: the tree keeps its rows)."""
        self.result = self._build_result(left)
        self.branches = BranchesPanel(left, self)
        self.left_tabs = ttk.Notebook(left)
        self.left_tabs.pack(side="top", fill="both", expand=True, pady=(GAP, 0))
        self.operations = OperationsPanel(self.left_tabs, self)    # tabs 0-3
        self.lab = LabPanel(self.left_tabs, self)                  # tab 4
        self.left_names = fit.Tabs(self.left_tabs, SHORT_TABS, self.look.tab_pad)   # F2
        left.bind("<Configure>", lambda e: self.share_left(), add="+")
        self.left_tabs.bind("<<NotebookTabChanged>>", lambda e: self.share_left(), add="+")

    def share_left(self) -> None:
        """Soon (once, however often asked): give the tree the rows Rule F1 allows."""
        if self._share_id is None and not self.closed:
            self._share_id = self.root.after_idle(self._share_left_now)

    def _share_left_now(self) -> None:
        if not self.closed:                # (asked again meanwhile: once is enough)
            fit.share_left_column(self.left, self.branches.tree, self.branches.box,
                                  (self.branches.gauge_box, self.result_box),
                                  self.left_tabs, GAP, self.branches.show_rows)
        self._share_id = None

    def _build_right(self, right) -> None:
        self.right_tabs = ttk.Notebook(right)
        self.right_tabs.pack(fill="both", expand=True)
        self.transactions = TransactionsPanel(self.right_tabs, self)
        self.logs = LogsPanel(self.right_tabs, self)
        self.right_names = fit.Tabs(self.right_tabs, SHORT_TABS, self.look.tab_pad)  # F2

    def _build_result(self, parent) -> ttk.Label:
        """The answer to the last operation, in plain words (packed first: never cut). It
        shows RESULT_LINES lines at most and scrolls beyond them, so a long answer never
        pushes the form's button out of sight (fit.py, Rule F1). No title: the sentence
        says what it is, and a short screen needs the line."""
        box = ttk.Frame(parent, style="Result.TFrame", padding=1)
        box.pack(side="bottom", fill="x", pady=(GAP, 0))
        self.result_box = box
        pane = fit.Scrolled(box, padding=(6, 3),
                            most=lambda: RESULT_LINES * self.look.line_px + 6)
        pane.outer.pack(fill="x")
        result = ttk.Label(pane.inner, text="Each operation's result is explained here.",
                           style="Dim.TLabel", wraplength=500, justify="left")
        result.pack(fill="x")
        pane.canvas.bind("<Configure>", lambda e: result.configure(
            wraplength=max(200, e.width - 16)), add="+")
        return result


class App(AppFrame):
    """The whole window. Build it with a coordinator client; tests drive it directly.

    ``App(root, bank, cluster=LocalCluster or None, activity=ActivityLog)``. ``pump()``
    runs the callbacks of finished calls; ``refresh()`` asks every source again. The
    panels are ``branches``, ``operations``, ``transactions``, ``logs`` and ``lab``;
    ``seen`` is what the window last heard.
    """

    def __init__(self, root, bank, *, cluster=None, activity=None, started=False,
                 source="", refresh_ms=REFRESH_MS, workers=WORKERS, font_size=FONT_SIZE):
        self.root, self.bank, self.cluster, self.started = root, bank, cluster, started
        self.activity = activity or ActivityLog(pathlib.Path("logs") / "activity.csv")
        self.refresh_ms = refresh_ms
        self.secret = getattr(bank, "secret", None)
        self.poll_client = rpc.Client(bank.url, self.secret, timeout=CALL_TIMEOUT,
                                      label="the coordinator")
        self.workers = Workers(workers)
        self.busy = set()                  # sources with a refresh in flight (Rule W2)
        self.clients = {}                  # branch -> short-timeout rpc.Client
        self.seen = Seen({name: cluster.members[name].url for name in cluster.branch_names}
                         if cluster is not None else {})
        self.closed = False
        self.said = 0                   # results shown so far (say(); operations.py O6)
        self._share_id = None              # a pending share of the left column (Rule F1)
        self.look = Look(root, font_size)
        self._build(source)
        self._update_clients()
        self.root.protocol("WM_DELETE_WINDOW", self.close)
        if self.root.tk.call("tk", "windowingsystem") == "aqua":   # macOS: Cmd-Q, app menu
            self.root.createcommand("::tk::mac::Quit", self.close)   # close as the button does
        self._poll_id = self.root.after(POLL_MS, self._poll)
        self._tick_id = self.root.after(10, self._tick)

    # ---- plumbing: calls off the Tk thread, results back on it (Rules W1-W3) --------------

    def submit(self, fn, args, done) -> None:
        """Run fn(*args) on a worker; done(result, error) runs later on the Tk thread."""
        self.workers.submit(fn, args, done)

    def start(self, key: str, fn, args, done) -> bool:
        """Like submit, but not while the previous call for `key` is still running."""
        if key in self.busy:
            return False
        self.busy.add(key)

        def finish(result, error):
            self.busy.discard(key)
            done(result, error)
        self.submit(fn, args, finish)
        return True

    def pump(self) -> int:
        """Run the callbacks of every finished call (Tk thread only); how many ran."""
        count = 0
        while True:
            try:
                done, result, error = self.workers.results.get_nowait()
            except queue.Empty:
                return count
            count += 1
            if self.closed:
                continue
            try:
                done(result, error)
            except Exception:                 # Rule W3: a bug in one callback
                log.exception("callback failed")

    def _poll(self) -> None:
        if self.closed:
            return
        self.pump()
        self._poll_id = self.root.after(POLL_MS, self._poll)

    def _tick(self) -> None:
        if self.closed:
            return
        self.refresh()
        self._tick_id = self.root.after(self.refresh_ms, self._tick)

    # ---- the refresh: ask every source, hand the answers to the panels --------------------

    def refresh(self) -> None:
        """Ask every source again (skipping those still answering the last time)."""
        slow = []
        if not self.start("coordinator", fetch_coordinator, (self.poll_client,),
                          self._got_coordinator):
            slow.append(COORD)
        self.start("routes", fetch_routes, (self.poll_client,), self._got_routes)
        for name, client in self.clients.items():
            if not self.start(f"branch:{name}", fetch_branch, (name, client, self.poll_client),
                              lambda result, error, n=name: self._got_branch(n, result, error)):
                slow.append(name)
        self.start("money", fetch_money, (dict(self.clients),), self._got_money)
        self.lab.ask_servers()             # each server of a replicated branch (A7)
        self.transactions.follow()
        self.logs.reload_activity_if_changed()
        self._show_status(slow)

    def _show_status(self, slow: list) -> None:
        if self.cluster is not None and self.cluster.stopped_elsewhere():
            self.status.configure(text=stopped_under("window"), style="Bad.TLabel")
            return
        text = f"Refreshed {time.strftime('%H:%M:%S')}"
        if slow:
            text += f" · still waiting for {', '.join(slow)} (not asked again until it answers)"
        if self.seen.coord.get("error"):
            text += f" · coordinator: {self.seen.coord['error']}"
        self.status.configure(text=text, style="Dim.TLabel")

    def _got_coordinator(self, result, error) -> None:
        self.seen.got_coordinator(result, error)
        if error is None:
            self.transactions.show(result["txns"])
            self.operations.learn(result["txns"])
        else:
            self.transactions.coordinator_down(self.seen.coord.get("seen", ""))
        self.render()

    def _got_money(self, result, error) -> None:
        """The branches read directly: the gauge, and the blocking map (the transactions
        each branch holds prepared), which shows even while the coordinator is down."""
        self.branches.got_money(result, error)
        if error is None and result is not None:
            self.transactions.show_blocked(
                blocking_map(self.seen.books(result), self.seen.coord.get("up")))

    def _got_routes(self, result, error) -> None:
        if error is not None:
            return
        self.seen.got_routes(result, local=self.cluster is not None)
        self._update_clients()
        self.render()

    def _got_branch(self, name: str, result, error) -> None:
        self.seen.got_branch(name, result, error)
        self.render()

    def _update_clients(self) -> None:
        """A short-timeout client per branch, following its route; a lab row for each."""
        for name, url in self.seen.routes.items():
            client = self.clients.get(name)
            if client is None or client.url != url:
                self.clients[name] = rpc.Client(url, self.secret, timeout=CALL_TIMEOUT,
                                                label=f"branch {name}")
        self.lab.add_rows(self.lab.members(sorted(self.seen.routes)))

    def render(self) -> None:
        """Show what was last seen in every panel that lists members or accounts."""
        self.branches.render()
        self.lab.render()
        self.share_left()                  # a row more or less in the tree (Rule F1)
        self.operations.offer(self.seen)
        self.logs.offer(self.seen)

    # ---- telling the user -----------------------------------------------------------------

    def say(self, text: str, kind: str = "info") -> None:
        """Show a result in plain words: kind is ok, bad, unknown or info. Money in it is
        written as everywhere in the window, "20,000.00" (a branch's refusal too)."""
        text = with_thousands(text)
        self.said += 1                     # which result is shown (operations.py, Rule O6)
        self.result.configure(text=text, style=f"{kind.capitalize()}.TLabel")
        self.share_left()                  # a longer result takes room (Rule F1)

    def finish(self, command: str, accounts, kind: str, text: str, ok=None,
               shown=True, logged="") -> None:
        """Show the result of an operation (unless `shown` is False: another result has
        replaced it) and add it to the activity log (`logged`, or the same text): done
        (`ok` True, or kind ok), not known (kind unknown: the log says so, never "no"),
        or not done. (operations.py O6 calls it again once an unknown outcome is known.)"""
        if shown:
            self.say(text, kind)
        if ok is None:
            ok = {"ok": True, "unknown": None}.get(kind, False)
        try:
            self.activity.record("gui", command, accounts, ok=ok,
                                 result=with_thousands(logged or text))
        except OSError as exc:
            self.status.configure(text=f"Cannot write the activity log: {exc}")
        self.logs.reload_activity_if_changed()

    # ---- closing (Rule W4) ----------------------------------------------------------------

    def close(self) -> None:
        """Close the window; stop the local cluster if this window started it."""
        if self.closed:
            return
        self.closed = True
        for after_id in (self._poll_id, self._tick_id, self._share_id):
            try:
                if after_id is not None:
                    self.root.after_cancel(after_id)
            except tk.TclError:
                pass
        self.workers.stop()
        if self.started and self.cluster is not None:
            self.root.withdraw()
            self.cluster.stop_unless_kept()     # gui_tk.py says so if it is left running
        self.root.destroy()
