"""The logs panel of the desktop window: the activity log and the branch journals.

Role: two tabs of the right notebook. "Activity log" shows what people did from the
shell and this window (filtered by account, exported as CSV, cleared after asking).
"Branch journals" shows every balance change recorded in the branches' own databases
(one account, one branch or all; exported as CSV; never cleared).

Rules:
  * Rule G1 - the activity log is a convenience, the journals are the bank's record: the
    window may clear the first (after asking), never the second.
  * Rule G2 - the activity log is a small local file, read and written on the Tk thread;
    journals come from the branches, so they are fetched on a worker (``app.start``).
  * Rule G3 - the activity table is reloaded only when the file changed (its mtime), so
    a refresh every second costs one stat() when nothing happened.
  * Rule G4 - an export writes exactly the rows shown (the same filter, the same scope),
    and says how many rows went where; a failure to write is a sentence, not a traceback.
  * Rule G5 - an amount is never cut (fit.py, Rule F5): once the rows are in, the
    journal's amount and balance, and the activity log's command and result (their
    words hold the amounts), are as wide as their widest text; the tables scroll
    sideways instead.

Glossary:
  activity   a row of logs/activity.csv: ts, source (shell or gui), command, ok (yes,
             no, or unknown: the outcome was not known when it was logged), result
  journal    a branch's append-only record of balance changes: kind, amount, balance after
  scope      whose journal: "All", a branch name, or BRANCH/NUMBER
  stamp      the activity file's mtime when it was last shown (Rule G3)
"""

import re
import tkinter as tk
from tkinter import filedialog, messagebox, ttk

from bank.activity import JOURNAL_FIELDS, write_csv
from bank.views import minor
from bank.window import diagram as draw
from bank.window import fit
from bank.window.gauge import show_money
from bank.window.calls import ALL, fetch_journal
from bank.window.look import RIGHT_ALIGNED

ACTIVITY_SHOWN = 1000              # newest rows in the table; the file keeps them all
JOURNAL_MAX = 10000                # the most rows one journal request may ask for
ACTIVITY_COLUMNS = (("ts", "time (UTC)", 15), ("source", "from", 5),
                    ("command", "command", 30), ("ok", "ok", 4), ("result", "result", 60))
ACTIVITY_MONEY = ("command", "result")          # amounts in their words (Rule G5)
JOURNAL_COLUMNS = (("ts", "time (UTC)", 19), ("branch", "branch", 8),
                   ("account", "account", 8), ("kind", "kind", 9), ("amount", "amount", 10),
                   ("balance_after", "balance", 10), ("txid", "transaction id", 25),
                   ("detail", "detail", 20))
WIRE_MONEY = re.compile(r"[+-]?[0-9]+\.[0-9]{2}")    # a journal's amount or balance


class LogsPanel:
    """The "Activity log" and "Branch journals" tabs, their filters and exports."""

    def __init__(self, notebook: ttk.Notebook, app):
        self.app, self.notebook = app, notebook
        self.activity = app.activity                 # the ActivityLog (a local CSV file)
        self.activity_stamp = None
        self.journal_rows, self.journal_loaded = [], ""   # the rows shown, and of what
        self._build_activity(self._tab("Activity log", "What people did from the shell "
                                       "and this window. A convenience, not the bank's "
                                       "record: that is the branch journals."))
        self._build_journals(self._tab("Branch journals", "Every balance change, "
                                       "append-only, in each branch's own database: the "
                                       "bank's record (never cleared)."))
        notebook.bind("<<NotebookTabChanged>>", lambda e: self._on_tab())

    def _tab(self, title: str, note: str) -> ttk.Frame:
        frame = ttk.Frame(self.notebook, padding=6)
        self.notebook.add(frame, text=title)
        ttk.Label(frame, text=note, style="Dim.TLabel", wraplength=620).pack(anchor="w")
        return frame

    def _build_activity(self, frame) -> None:
        bar = ttk.Frame(frame)
        bar.pack(fill="x", pady=(4, 0))
        ttk.Label(bar, text="Account").pack(side="left")
        self.activity_filter = tk.StringVar(value=ALL)
        box = ttk.Combobox(bar, textvariable=self.activity_filter, width=24)
        box.pack(side="left", padx=4)
        box.bind("<<ComboboxSelected>>", lambda e: self.show_activity())
        box.bind("<Return>", lambda e: self.show_activity())
        self.activity_filter_box = box
        self.export_activity_button = ttk.Button(bar, text="Export CSV...", width=12,
                                                 command=self.export_activity)
        self.export_activity_button.pack(side="left", padx=4)
        self.clear_activity_button = ttk.Button(bar, text="Clear...", width=8,
                                                style="Danger.TButton",
                                                command=self.clear_activity)
        self.clear_activity_button.pack(side="left")
        self.activity_tree = self.app.look.table(frame, ACTIVITY_COLUMNS)
        self.activity_tree.tag_configure("unknown", foreground=draw.AMBER)

    def _build_journals(self, frame) -> None:
        bar = ttk.Frame(frame)
        bar.pack(fill="x", pady=(4, 0))
        ttk.Label(bar, text="Journal of").pack(side="left")
        self.journal_scope = tk.StringVar(value=ALL)
        box = ttk.Combobox(bar, textvariable=self.journal_scope, width=24)
        box.pack(side="left", padx=4)
        box.bind("<<ComboboxSelected>>", lambda e: self.load_journal())
        self.journal_scope_box = box
        ttk.Label(bar, text="last").pack(side="left")
        self.journal_limit = tk.StringVar(value="100")
        ttk.Spinbox(bar, from_=10, to=JOURNAL_MAX, increment=50, width=6,
                    textvariable=self.journal_limit).pack(side="left", padx=4)
        ttk.Button(bar, text="Load", width=6, command=self.load_journal).pack(side="left")
        self.export_journal_button = ttk.Button(bar, text="Export CSV...", width=12,
                                                command=self.export_journal)
        self.export_journal_button.pack(side="left", padx=4)
        self.journal_tree = self.app.look.table(frame, JOURNAL_COLUMNS)

    def _on_tab(self) -> None:
        tab = self.notebook.tab(self.notebook.select(), "text")
        if tab == "Branch journals" and not self.journal_rows:
            self.load_journal()
        if tab == "Activity log":
            self.show_activity()

    def offer(self, seen) -> None:
        """Give the two filters the branches and accounts last seen."""
        owners = seen.owners()
        refs = [ALL, *sorted(seen.routes), *owners]
        if list(self.journal_scope_box.cget("values")) != refs:
            self.journal_scope_box.configure(values=refs)
            self.activity_filter_box.configure(values=[ALL, *owners])

    # ---- the activity log (Rules G1-G3) ---------------------------------------------------

    def _stamp(self):
        try:
            return self.activity.path.stat().st_mtime_ns
        except OSError:
            return None

    def reload_activity_if_changed(self) -> None:
        if self._stamp() != self.activity_stamp:
            self.show_activity()

    def activity_account(self) -> str:
        """The filter: '' for every account, else BRANCH/NUMBER."""
        value = self.activity_filter.get().strip()
        return "" if value in ("", ALL) else value.split()[0]

    def show_activity(self) -> None:
        """Reload the activity table from the file, newest first, filtered."""
        self.activity_stamp = self._stamp()
        rows = self.activity.rows(self.activity_account())
        tree = self.activity_tree
        tree.delete(*tree.get_children(""))
        for row in reversed(rows[-ACTIVITY_SHOWN:]):
            tree.insert("", "end", values=(row["ts"][5:19].replace("T", " "), row["source"],
                                           row["command"], row["ok"], row["result"]),
                        tags={"yes": (), "unknown": ("unknown",)}.get(row["ok"], ("refused",)))
        fit.fit_money(tree, ACTIVITY_MONEY)                      # Rule G5

    def export_activity(self) -> None:
        account = self.activity_account()
        path = self._ask_csv_path(f"activity-{account.replace('/', '-') or 'all'}.csv")
        if not path:
            return
        try:
            count = self.activity.export(path, account, force=True)   # the dialog asked
        except OSError as exc:
            self.app.say(f"Could not export the activity log: {exc}", "bad")
            return
        self.app.say(f"Exported {count} activity rows ({account or 'all accounts'}) to "
                     f"{path}.", "ok")

    def clear_activity(self) -> None:
        """Empty the activity log, after asking (Rule G1: the journals stay)."""
        rows = len(self.activity.rows())
        if not messagebox.askyesno(
                "Clear the activity log?",
                f"This removes all {rows} rows from {self.activity.path}.\n\nThe branch "
                "journals (the bank's own record) are not touched.", parent=self.app.root):
            return
        removed = self.activity.clear()
        self.show_activity()
        self.app.say(f"Cleared the activity log ({removed} rows removed).", "ok")

    def _ask_csv_path(self, name: str) -> str:
        return filedialog.asksaveasfilename(
            parent=self.app.root, title="Export as CSV", defaultextension=".csv",
            initialfile=name, filetypes=[("CSV files", "*.csv"), ("All files", "*")]) or ""

    # ---- the branch journals (Rules G2 and G4) --------------------------------------------

    def load_journal(self) -> None:
        """Fetch the chosen journal (an account, a branch or all) into the table."""
        scope = (self.journal_scope.get().split() or [ALL])[0]
        try:
            limit = max(1, min(JOURNAL_MAX, int(self.journal_limit.get())))
        except ValueError:
            self.app.say("The journal limit must be a whole number.", "bad")
            return
        self.app.start("journal", fetch_journal, (dict(self.app.clients), scope, limit),
                       lambda result, error: self._got_journal(scope, result, error))

    def _got_journal(self, scope: str, result, error) -> None:
        if error is not None:
            self.app.say(f"Cannot load the journal of {scope}: {error.message}", "bad")
            return
        self.journal_rows, self.journal_loaded = result, scope
        tree = self.journal_tree
        tree.delete(*tree.get_children(""))
        for row in reversed(result):
            tree.insert("", "end", values=(row["ts"][5:23].replace("T", " "), row["branch"],
                                           row["account"], row["kind"],
                                           money_text(row["amount"]),
                                           money_text(row["balance_after"]), row["txid"],
                                           row["detail"]))
        fit.fit_money(tree, RIGHT_ALIGNED)                       # Rule G5: its money

    def export_journal(self) -> None:
        if not self.journal_rows:
            self.app.say("Load a journal first (choose it above and press Load).", "bad")
            return
        scope = self.journal_loaded
        path = self._ask_csv_path(f"journal-{scope.replace('/', '-')}.csv")
        if not path:
            return
        try:
            count = write_csv(self.journal_rows, path, JOURNAL_FIELDS,
                              force=True)                  # the save dialog asked
        except OSError as exc:
            self.app.say(f"Could not export the journal: {exc}", "bad")
            return
        self.app.say(f"Exported {count} journal rows ({scope}) to {path}.", "ok")


def money_text(text: str) -> str:
    """A journal amount or balance as the branches tree shows money: '-1200.00' ->
    '-1,200.00' (on screen only: the CSV export keeps the wire form). Read as money,
    not checked as an operation's amount: a balance may pass the most one operation
    moves (2000009999.98 was shown as it came). Anything odd is shown as is."""
    text = str(text)
    return show_money(minor(text)) if WIRE_MONEY.fullmatch(text) else text
