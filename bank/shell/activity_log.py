"""The shell's activity-log commands: log, export and clear.

Role: show, export and clear what people did from the shell and the window
(bank/activity.py keeps it), and export the branch journals as CSV.

Rules:
  * `log` shows this cluster's rows only (Rule A1 in bank/activity.py), unless --all.
  * Rule 5 - the activity log is a convenience; the branch journals are the bank's
    record and nothing here ever clears them.
  * Clearing asks first (y/N), or needs --yes in a script.
  * Exports keep existing files (ask first, or --force) and never touch a server's
    files (Rules E1 and E2 in bank/activity.py); a bare file name goes to logs/.
  * An export that leaves out an unreachable branch says which, and counts as failed.

Glossary:
  activity log  what people did from the shell or the window (logs/activity.csv)
"""

import pathlib
import re

from bank import activity
from bank.errors import BankError, check_branch_name, check_limit
from bank.shell.plumbing import ACCT_RE, ShellError, cut, is_count, when

JOURNAL_ALL = 10_000           # the most journal rows one call returns (per branch)


class ActivityCommands:
    """log, export and clear (a mixin of BankShell)."""

    def do_log(self, arg):
        """log [ACCT] [N] [--all]: the last N (20) operations run from the shell or the window.
        Only this cluster's operations (sent to this coordinator), unless --all is given:
        then every cluster's that this folder's log holds, with a cluster column.
        Example: log Mumbai/1001"""
        words = self._args(arg, 0, 3)
        every = "--all" in words
        account, limit = "", 20
        for word in (w for w in words if w != "--all"):
            if not is_count(word) and re.fullmatch(r"[+-]?[0-9]+", word):   # not a count
                raise ShellError(f"{word!r} is not a number of rows: give a whole number "
                                 "from 1 to 10000, like 10 (log [ACCT] [N] [--all]).")
            account, limit = (account, check_limit(word)) if is_count(word) \
                else (self._acct(word), limit)             # `log 0` as `txns 0`: refused
        rows = self.activity.rows(account, every=every)
        extra = (lambda r: [r.get("cluster") or "?"]) if every else (lambda r: [])
        self._table([[when(r["ts"]), r["source"], r["command"], r["ok"], cut(r["result"], 70),
                      *extra(r)] for r in rows[-limit:]],
                    ["time (UTC)", "from", "command", "ok", "result"] +
                    (["cluster"] if every else []))
        if len(rows) > limit:
            self._print(f"({len(rows) - limit} older rows not shown; "
                        f"`export {account or 'all'}` writes them all)")
        others = len(self.activity.rows(account, every=True)) - len(rows)
        if others and not every:
            self._print(f"({others} rows of other clusters in {self.activity.path} are not "
                        "shown; `log --all` shows them)")

    def do_export(self, arg):
        """export [journal] [ACCT|BRANCH|all] [FILE] [--force]: write activity or journals as CSV.
        `export [ACCT|all] [FILE]` writes the activity log; `export journal
        [ACCT|BRANCH|all] [FILE]` writes the branch journals. A bare FILE name (or none)
        goes to logs/ in the cluster's folder; a path (./f.csv, /tmp/f.csv) is used as
        given. An existing file is kept: the shell asks first, and a script must add
        --force. A server's own files (databases, logs, data/) are never written.
        Example: export journal Mumbai journal.csv"""
        words = self._args(arg, 0, 4)
        force = "--force" in words
        words = [w for w in words if w != "--force"]
        kind = "journal" if words[:1] == ["journal"] else "activity"
        words = words[1:] if kind == "journal" else words
        which = words.pop(0) if words and (ACCT_RE.match(words[0]) or
                                           not re.search(r"[./\\]", words[0])) else "all"
        if len(words) > 1 or (which != "all" and kind == "activity" and "/" not in which):
            raise ShellError("Usage: export [ACCT|all] [FILE] [--force] or export journal "
                             "[ACCT|BRANCH|all] [FILE] [--force] (for example: export "
                             "Mumbai/1001).")
        path = self._export_path(words[0] if words else
                                 f"{kind}-{which.replace('/', '-')}.csv")
        selector = "" if which == "all" else self._acct(which) if "/" in which else \
            check_branch_name(which)
        if activity.protected_reason(path):         # say so before fetching any rows
            raise ShellError(f"Not written: {path} {activity.protected_reason(path)}; "
                             "export to another file.")
        if path.parent != self.home / "logs" and not path.parent.is_dir():
            raise ShellError(f"Not written: there is no folder {path.parent}; create it "
                             "first, or give a bare file name (it goes to logs/).")
        rows, missing = self._journal_rows(selector) if kind == "journal" else (None, [])
        count = self._write_export(rows, path, selector, force)
        done = f"Wrote {count} {kind} rows to {path.resolve()}"
        if missing:
            return self._fail(f"{done}, without the journals of {', '.join(missing)}: "
                              f"{'it' if len(missing) == 1 else 'they'} could not be read.")
        self._say(done + ".")

    def _export_path(self, name: str) -> pathlib.Path:
        """A bare file name goes to the home's logs/ folder; a path is used as given."""
        given = pathlib.Path(name)
        return self.home / "logs" / given if given.name == name else given

    def _journal_rows(self, selector: str) -> tuple:
        """(journal rows, branches that could not be read): one call per branch for
        "all", so a branch that is down is named, not silently left out."""
        if selector:
            rows = self.coord.call("journal", selector, JOURNAL_ALL)
            return rows, []
        rows, missing = [], []
        for branch in self.coord.call("ping")["branches"]:
            try:
                rows += self.coord.call("journal", branch, JOURNAL_ALL)
            except BankError:
                missing.append(branch)
        return sorted(rows, key=lambda r: (r["ts"], r["branch"], r["seq"])), missing

    def _write_export(self, rows, path: pathlib.Path, selector: str, force: bool) -> int:
        """Write the CSV (Rules E1, E2 in bank/activity.py); an existing file is
        overwritten only with --force or after a yes at the prompt."""
        def write(force):
            if rows is None:
                return self.activity.export(path, selector, force=force)
            return activity.write_csv(rows, path, force=force)
        try:
            return write(force)
        except activity.ExportRefused as exc:
            if not exc.exists:
                raise ShellError(str(exc))
            if not self.interactive:
                raise ShellError(f"Not written: {path} already exists; add --force to "
                                 "overwrite it, or choose another name.")
            if not self._yes(f"{path} exists. Overwrite it? [y/N] "):
                raise ShellError(f"Not written: {path} is kept as it was.")
            return write(True)
        except OSError as exc:
            raise ShellError(f"Cannot write {path}: {exc.strerror or exc}.")

    def _yes(self, question: str) -> bool:
        """Ask a y/N question at the prompt; anything but y or yes (Ctrl-D and Ctrl-C
        too: nothing was sent to a server yet) is no."""
        try:
            return self.ask(question).strip().lower() in ("y", "yes")
        except (EOFError, KeyboardInterrupt):
            self._print()
            return False

    def do_clear(self, arg):
        """clear [--yes]: empty the activity log after a y/N question (the journals stay).
        In a script, write `clear --yes`.
        Example: clear"""
        words = self._args(arg, 0, 1)
        if words not in ([], ["--yes"], ["-y"]):
            raise ShellError("Usage: clear [--yes] (for example: clear).")
        if not words and not self.interactive:
            raise ShellError("Not cleared: in a script, confirm with `clear --yes`.")
        question = (f"Clear the activity log ({len(self.activity.rows(every=True))} rows, "
                    "of every cluster it holds)? "
                    "The branch journals are kept. [y/N] ")
        if not words and not self._yes(question):
            return self._say("Not cleared.")
        removed = self.activity.clear()
        self._say(f"Cleared the activity log ({removed} rows); the branch journals are "
                  "untouched.")
