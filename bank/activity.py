"""The activity log: every operation a person ran from the shell or the window.

Role: keep, across sessions, what users did and what happened, as the original kit's
"operation logs" promised; show it, filter it by account, export it as CSV, and
clear it. It is a convenience for people, NOT the bank's record: the branch
journals (append-only, in each branch's SQLite) are the truth and are never cleared.

Rules:
  * One CSV file, logs/activity.csv by default, appended one row per operation.
  * Exports are plain CSV that any spreadsheet (and Python's csv module) reads.
  * Rule E1 - an export never overwrites an existing file unless asked (force=True,
    after the person said yes); the check and the creation are one step (mode "x").
  * Rule E2 - an export never writes a running server's files, even with force: a
    database and its WAL, a log, a lock, a URL or secret file, the activity log being
    kept, or anything in a folder that holds a branch database (a cluster home's data/).
  * Rule E3 - an export is a file named *.csv, and nothing else: even with force it
    never replaces a program, a document or a system file (a script's `export
    /etc/passwd --force`, run as root, once replaced the machine's list of users).
  * Clearing empties this file only.
  * Rule A1 - one file may serve several clusters (a shell attached by URL keeps the
    kit's logs/activity.csv): each row names its cluster (the coordinator's URL), and a
    log made for a cluster shows only that cluster's rows unless asked for all.
  * Rule A2 - a file written before rows named their cluster is rewritten once with the
    new header (its old rows keep an empty cluster), never appended to out of step.

Glossary:
  activity row   {"ts", "source", "command", "accounts", "ok", "result", "cluster"}
  cluster        the coordinator's URL the operation was sent to ("" in rows made before A1)
  protected file a file a server or the kit is using (Rule E2): never an export target
"""

import csv
import errno
import pathlib
import threading

from bank import storage
from bank.ledger import now

FIELDS = ("ts", "source", "command", "accounts", "ok", "result", "cluster")
JOURNAL_FIELDS = ("seq", "ts", "branch", "account", "kind", "amount", "balance_after",
                  "txid", "request_id", "detail")
# Rule E2: what servers and the kit keep open or rely on. Compared in lower case.
PROTECTED_SUFFIXES = (".db", ".db-wal", ".db-shm", ".db-journal", ".wal", ".shm", ".log",
                      ".lock", ".out", ".url", ".secret", ".pid")
PROTECTED_NAMES = ("cluster.json", "cluster.secret", "cluster.ini")
HOME_LOG_NAMES = ("activity.csv", ".shell_history")   # protected in a cluster home's logs/


class ExportRefused(OSError):
    """An export that was not written; str() is the sentence to show. `exists` is True
    when only Rule E1 stopped it (asking the person, then force=True, may go on)."""

    def __init__(self, sentence: str, exists: bool = False):
        super().__init__(errno.EEXIST if exists else errno.EPERM, sentence)
        self.sentence, self.exists = sentence, exists

    def __str__(self) -> str:
        return self.sentence


class ActivityLog:
    """The activity of one cluster (`cluster`: its coordinator's URL; "" for every row)."""

    def __init__(self, path="logs/activity.csv", cluster: str = ""):
        self.path = pathlib.Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.cluster = cluster
        self._lock = threading.Lock()

    def record(self, source: str, command: str, accounts=(), ok=True, result="") -> None:
        """Append one operation and its result, naming this log's cluster (A1). `ok`:
        True (done), False (refused, not done) or None (its outcome is not known)."""
        said = "unknown" if ok is None else "yes" if ok else "no"
        row = {"ts": now(), "source": source, "command": command,
               "accounts": " ".join(accounts), "ok": said, "result": result,
               "cluster": self.cluster}
        with self._lock:
            self._upgrade_old_header()
            new = not self.path.exists() or self.path.stat().st_size == 0
            with open(self.path, "a", newline="", encoding="utf-8") as f:
                writer = csv.DictWriter(f, FIELDS)
                if new:
                    writer.writeheader()
                writer.writerow(row)

    def _upgrade_old_header(self) -> None:
        """A2: rewrite a file whose header lacks a column (made before A1) with FIELDS."""
        if not self.path.exists() or self.path.stat().st_size == 0:
            return
        with open(self.path, newline="", encoding="utf-8") as f:
            header = next(csv.reader(f), [])
        if tuple(header) == FIELDS:
            return
        rows = self._read_all()
        tmp = self.path.with_suffix(".upgrading")
        with open(tmp, "w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, FIELDS, extrasaction="ignore", restval="")
            writer.writeheader()
            writer.writerows(rows)
        storage.replace(tmp, self.path)            # whole, or not at all

    def _read_all(self) -> list:
        if not self.path.exists():
            return []
        with open(self.path, newline="", encoding="utf-8") as f:
            return [{k: v or "" for k, v in r.items() if k is not None}
                    for r in csv.DictReader(f, restval="")]

    def rows(self, account: str = "", every: bool = False) -> list:
        """This cluster's rows (every cluster's if `every` or no cluster), oldest first;
        only those naming `account` (e.g. Mumbai/1001) if given (A1)."""
        rows = self._read_all()
        if self.cluster and not every:
            rows = [r for r in rows if r.get("cluster", "") == self.cluster]
        if account:
            rows = [r for r in rows if account in (r.get("accounts") or "").split()]
        return rows

    def export(self, target, account: str = "", force: bool = False) -> int:
        """Write the (filtered) activity as CSV to `target`; returns the number of rows.

        An existing target is refused unless force; a protected one always (Rules E1, E2).
        """
        if pathlib.Path(target).expanduser().resolve() == self.path.resolve():
            raise ExportRefused(f"Not written: {target} is the activity log itself; "
                                "export to another file.")
        return write_csv(self.rows(account), target, FIELDS, force=force)

    def clear(self) -> int:
        """Empty the activity log (the branch journals are untouched); rows removed."""
        with self._lock:
            count = len(self.rows(every=True))
            self.path.write_text("", encoding="utf-8")
        return count


def write_csv(rows: list, target, fields=JOURNAL_FIELDS, force: bool = False) -> int:
    """Write dicts as CSV with a header row; returns the number of rows written.

    Raises ExportRefused for a protected target (always) or an existing one (unless
    force): Rules E1 and E2. Nothing is written then.
    """
    target = pathlib.Path(target)
    why = protected_reason(target)
    if why:
        raise ExportRefused(f"Not written: {target} {why}; export to another file.")
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        f = open(target, "w" if force else "x", newline="", encoding="utf-8")
    except FileExistsError:
        raise ExportRefused(f"Not written: {target} already exists; choose another name "
                            "or confirm overwriting it.", exists=True) from None
    with f:
        writer = csv.DictWriter(f, fields, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    return len(rows)


def protected_reason(target: pathlib.Path) -> str:
    """Why `target` must never be an export (Rules E2, E3), or "" if it may be written."""
    path = target.expanduser().resolve()
    name = path.name.lower()
    if not name.endswith(".csv"):
        return "is not a .csv file (an export writes only files whose name ends in .csv)"
    if name.endswith(PROTECTED_SUFFIXES) or name in PROTECTED_NAMES:
        return "is a file the servers or the kit use (a database, a log, a lock, a secret)"
    if name in HOME_LOG_NAMES and path.parent.name == "logs" and \
            (path.parent.parent / "data").is_dir():
        return "is the activity log (or history) of a cluster's home"
    if path.parent.is_dir() and (any(path.parent.glob("*.db")) or
                                 (path.parent / "cluster.secret").exists()):
        return "is in a folder that holds a branch's database (a cluster's data/ folder)"
    return ""
