"""The shell's activity-log commands: log, export and clear.

Role: show, export and clear what people did from the shell and the window
(bank/activity.py keeps it), and export the branch journals as CSV.

Rules:
  * Rule 5 - the activity log is a convenience; the branch journals are the bank's
    record and nothing here ever clears them.
  * Clearing asks first (y/N), or needs --yes in a script.

Glossary:
  activity log  what people did from the shell or the window (logs/activity.csv)
"""

import pathlib
import re

from bank import activity
from bank.errors import check_branch_name
from bank.shell.plumbing import ACCT_RE, ShellError, is_count, when
from bank.shell.records import JOURNAL_ALL


class ActivityCommands:
    """log, export and clear (a mixin of BankShell)."""

    def do_log(self, arg):
        """log [ACCT] [N]: the last N (20) operations run from the shell or the window.
        Example: log Mumbai/1001"""
        account, limit = "", 20
        for word in self._args(arg, 0, 2):
            account, limit = (account, int(word)) if is_count(word) else (self._acct(word), limit)
        rows = self.activity.rows(account)
        self._table([[when(r["ts"]), r["source"], r["command"], r["ok"], r["result"][:70]]
                     for r in rows[-limit:]], ["time (UTC)", "from", "command", "ok", "result"])
        if len(rows) > limit:
            self._print(f"({len(rows) - limit} older rows not shown; "
                        f"`export {account or 'all'}` writes them all)")

    def do_export(self, arg):
        """export [journal] [ACCT|BRANCH|all] [FILE]: write the activity log (or journals) as CSV.
        `export [ACCT|all] [FILE]` writes the activity log; `export journal
        [ACCT|BRANCH|all] [FILE]` writes the branch journals. Files go to logs/ by default.
        Example: export journal Mumbai journal.csv"""
        words = self._args(arg, 0, 3)
        kind = "journal" if words[:1] == ["journal"] else "activity"
        words = words[1:] if kind == "journal" else words
        which = words.pop(0) if words and (ACCT_RE.match(words[0]) or
                                           not re.search(r"[./\\]", words[0])) else "all"
        if len(words) > 1 or (which != "all" and kind == "activity" and "/" not in which):
            raise ShellError("Usage: export [ACCT|all] [FILE] or export journal "
                             "[ACCT|BRANCH|all] [FILE] (for example: export Mumbai/1001).")
        path = pathlib.Path(words[0]) if words else \
            self.home / "logs" / f"{kind}-{which.replace('/', '-')}.csv"
        selector = "" if which == "all" else self._acct(which) if "/" in which else \
            check_branch_name(which)
        rows = self.coord.call("journal", selector, JOURNAL_ALL) if kind == "journal" else None
        try:
            count = activity.write_csv(rows, path) if rows is not None else \
                self.activity.export(path, selector)
        except OSError as exc:
            raise ShellError(f"Cannot write {path}: {exc.strerror}.")
        self._say(f"Wrote {count} {kind} rows to {path.resolve()}.")

    def do_clear(self, arg):
        """clear [--yes]: empty the activity log after a y/N question (the journals stay).
        In a script, write `clear --yes`.
        Example: clear"""
        words = self._args(arg, 0, 1)
        if words not in ([], ["--yes"], ["-y"]):
            raise ShellError("Usage: clear [--yes] (for example: clear).")
        if not words and not self.interactive:
            raise ShellError("Not cleared: in a script, confirm with `clear --yes`.")
        question = (f"Clear the activity log ({len(self.activity.rows())} rows)? "
                    "The branch journals are kept. [y/N] ")
        try:
            if not words and self.ask(question).strip().lower() not in ("y", "yes"):
                return self._say("Not cleared.")
        except EOFError:
            return self._say("\nNot cleared.")
        removed = self.activity.clear()
        self._say(f"Cleared the activity log ({removed} rows); the branch journals are "
                  "untouched.")
