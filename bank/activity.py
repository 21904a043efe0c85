"""The activity log: every operation a person ran from the shell or the window.

Role: keep, across sessions, what users did and what happened, as the original kit's
"operation logs" promised; show it, filter it by account, export it as CSV, and
clear it. It is a convenience for people, NOT the bank's record: the branch
journals (append-only, in each branch's SQLite) are the truth and are never cleared.

Rules:
  * One CSV file, logs/activity.csv by default, appended one row per operation.
  * Exports are plain CSV that any spreadsheet (and Python's csv module) reads.
  * Clearing empties this file only.

Glossary:
  activity row  {"ts", "source", "command", "accounts", "ok", "result"}
"""

import csv
import pathlib
import threading

from bank.ledger import now

FIELDS = ("ts", "source", "command", "accounts", "ok", "result")
JOURNAL_FIELDS = ("seq", "ts", "branch", "account", "kind", "amount", "balance_after",
                  "txid", "request_id", "detail")


class ActivityLog:
    def __init__(self, path="logs/activity.csv"):
        self.path = pathlib.Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()

    def record(self, source: str, command: str, accounts=(), ok=True, result="") -> None:
        """Append one operation and its result."""
        row = {"ts": now(), "source": source, "command": command,
               "accounts": " ".join(accounts), "ok": "yes" if ok else "no", "result": result}
        with self._lock:
            new = not self.path.exists() or self.path.stat().st_size == 0
            with open(self.path, "a", newline="", encoding="utf-8") as f:
                writer = csv.DictWriter(f, FIELDS)
                if new:
                    writer.writeheader()
                writer.writerow(row)

    def rows(self, account: str = "") -> list:
        """All rows, oldest first; only those naming `account` (e.g. Mumbai/1001) if given."""
        if not self.path.exists():
            return []
        with open(self.path, newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
        if account:
            rows = [r for r in rows if account in (r.get("accounts") or "").split()]
        return rows

    def export(self, target, account: str = "") -> int:
        """Write the (filtered) activity as CSV to `target`; returns the number of rows."""
        return write_csv(self.rows(account), target, FIELDS)

    def clear(self) -> int:
        """Empty the activity log (the branch journals are untouched); rows removed."""
        with self._lock:
            count = len(self.rows())
            self.path.write_text("", encoding="utf-8")
        return count


def write_csv(rows: list, target, fields=JOURNAL_FIELDS) -> int:
    """Write dicts as CSV with a header row; returns the number of rows written."""
    target = pathlib.Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fields, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    return len(rows)
