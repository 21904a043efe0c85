"""The coordinator's recovery log: an append-only text file a student can read.

Role: remember, across crashes, which transactions the coordinator decided to
commit and which it has finished. Nothing else about the coordinator survives a
crash, and nothing else needs to.

One record per line (open logs/recovery.log in any editor):

    2026-11-25T13:01:02.123+00:00 begin  C1-20261125T130102-9f3a2c {"branches": [...], ...} crc=1a2b3c4d
    2026-11-25T13:01:02.140+00:00 commit C1-20261125T130102-9f3a2c {} crc=...
    2026-11-25T13:01:02.152+00:00 end    C1-20261125T130102-9f3a2c {"outcome": "committed"} crc=...

Rules:
  * Rule 1 - the commit point. ``commit()`` returns only after the record is on
    disk (fsync). The coordinator sends no commit, and tells no client, before that.
  * Rule 2 - presumed abort. ``begin``, ``abort`` and ``end`` are written but not
    forced: losing them is safe, because a txid without a commit record is aborted.
  * Rule 3 - every line ends with a CRC-32 of the rest of the line. A line that is
    cut short or garbled (a crash in the middle of a write) is ignored.
  * Rule 4 - compaction. When the log grows past ``COMPACT_AFTER`` records (and at
    every start), it is rewritten to hold only unfinished transactions and a one-line
    summary of the last ``KEEP_FINISHED`` finished ones; the old lines are appended to
    recovery.history.log. So restart time follows work in flight, not history.
  * Rule 5 - group commit. Concurrent ``commit()`` calls share one fsync: whoever
    syncs first makes everything written so far durable.

Glossary:
  forced    written and fsynced before the call returns
  in flight a txid with a begin but no end: recovery must finish it
  done      a compaction summary of a finished transaction (outcome, accounts, request id)
"""

import collections
import json
import logging
import os
import pathlib
import re
import threading
import zlib

from bank.ledger import now

COMPACT_AFTER = 20_000       # records in the active log before it is compacted
KEEP_FINISHED = 10_000       # finished txns remembered (for request ids and history)
_LINE = re.compile(r"^(\S+) (begin|commit|abort|end|done) +(\S+) (\{.*\}) crc=([0-9a-f]{8})$")

log = logging.getLogger("recovery-log")


class RecoveryLog:
    """Read at start, appended while running, compacted now and then."""

    def __init__(self, path):
        self.path = pathlib.Path(path)
        self.history_path = self.path.with_name(self.path.stem + ".history" + self.path.suffix)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.in_flight = {}           # txid -> {"info": begin data, "decision": str|None}
        self.finished = collections.OrderedDict()   # txid -> summary, oldest first
        self.records = 0
        self.torn = 0
        self._write_lock = threading.Lock()     # one writer of lines at a time
        self._sync_lock = threading.Lock()      # one fsync at a time (group commit)
        self._written = 0                       # lines written so far
        self._synced = 0                        # lines known to be on disk
        self._read_existing()
        self._file = None
        self.compact()

    # ---- appending ----------------------------------------------------------------

    def begin(self, txid: str, info: dict) -> None:
        """A transaction starts (not forced: Rule 2)."""
        with self._write_lock:
            self.in_flight[txid] = {"info": info, "decision": None}
            self._append("begin", txid, info)

    def commit(self, txid: str) -> None:
        """THE commit point: returns only once the commit record is on disk (Rule 1)."""
        with self._write_lock:
            self._entry(txid)["decision"] = "commit"
            line_no = self._append("commit", txid, {})
        self._sync_to(line_no)

    def abort(self, txid: str) -> None:
        """The abort decision (not forced: presumed abort makes it safe to lose)."""
        with self._write_lock:
            self._entry(txid)["decision"] = "abort"
            self._append("abort", txid, {})

    def end(self, txid: str, outcome: str, reason: str = "") -> None:
        """Every participant acknowledged: the transaction needs no more work."""
        data = {"outcome": outcome, "reason": reason, "ended": now()}
        with self._write_lock:
            entry = self.in_flight.pop(txid, {"info": {}})
            self._remember_finished(txid, dict(entry["info"], **data))
            self._append("end", txid, data)
        if self.records >= COMPACT_AFTER:
            self.compact()

    def outcome(self, txid: str):
        """'committed', 'aborted', or None if this log knows nothing final yet."""
        with self._write_lock:
            if txid in self.finished:
                return self.finished[txid]["outcome"]
            decision = self.in_flight.get(txid, {}).get("decision")
        return {"commit": "committed", "abort": "aborted"}.get(decision)

    def _entry(self, txid: str) -> dict:
        return self.in_flight.setdefault(txid, {"info": {}, "decision": None})

    def _append(self, kind: str, txid: str, data: dict) -> int:
        """Write one line (caller holds _write_lock); it is in the OS, not yet on disk."""
        self._file.write(self._line(kind, txid, data).encode())   # all of it, then
        self._file.flush()                                         # into the OS now
        self._written += 1
        self.records += 1
        return self._written

    def _sync_to(self, line_no: int) -> None:
        """Make sure line `line_no` is on disk, sharing the fsync with others (Rule 5)."""
        with self._sync_lock:
            if self._synced >= line_no:
                return                           # someone else's fsync covered us
            target = self._written
            os.fsync(self._file.fileno())
            self._synced = target

    # ---- reading at start ---------------------------------------------------------

    def _read_existing(self) -> None:
        if not self.path.exists():
            return
        with open(self.path, "rb") as f:
            for raw in f:
                record = self._parse(raw)
                if record is None:
                    self.torn += 1
                    continue
                self._replay(*record)
        if self.torn:
            log.warning("ignored %d torn or garbled record(s) in %s", self.torn, self.path)

    @staticmethod
    def _parse(raw: bytes):
        """(kind, txid, data) from one line, or None if it is torn or garbled (Rule 3)."""
        if not raw.endswith(b"\n"):
            return None                          # the write was cut short by a crash
        body, _, crc = raw.rstrip(b"\n").rpartition(b" crc=")
        if f"{zlib.crc32(body):08x}".encode() != crc:
            return None                          # garbled: the checksum does not match
        try:
            match = _LINE.match(raw.decode("utf-8").rstrip("\n"))
            return (match.group(2), match.group(3), json.loads(match.group(4))) if match \
                else None
        except (UnicodeDecodeError, ValueError):
            return None

    def _replay(self, kind: str, txid: str, data: dict) -> None:
        if kind == "begin":
            self.in_flight[txid] = {"info": data, "decision": None}
        elif kind in ("commit", "abort"):
            self._entry(txid)["decision"] = kind
        elif kind == "end":
            entry = self.in_flight.pop(txid, {"info": {}})
            self._remember_finished(txid, dict(entry["info"], **data))
        elif kind == "done":
            self._remember_finished(txid, data)

    def _remember_finished(self, txid: str, summary: dict) -> None:
        self.finished[txid] = summary
        while len(self.finished) > KEEP_FINISHED:
            self.finished.popitem(last=False)

    # ---- compaction (Rule 4) -------------------------------------------------------

    def compact(self) -> None:
        """Rewrite the log with only in-flight txns and recent summaries; archive the rest.

        The new file is complete and on disk before it replaces the old one, and the
        old one stays open for appends until then: a failure leaves a working log.
        """
        with self._write_lock, self._sync_lock:
            tmp = self.path.with_suffix(".compacting")
            lines = [self._line("done", t, s) for t, s in self.finished.items()]
            for txid, entry in self.in_flight.items():
                lines.append(self._line("begin", txid, entry["info"]))
                if entry["decision"]:
                    lines.append(self._line(entry["decision"], txid, {}))
            with open(tmp, "wb") as f:
                f.write("".join(lines).encode())
                f.flush()
                os.fsync(f.fileno())
            self._archive_old_lines()
            os.replace(tmp, self.path)           # atomic: old or new, never half
            _fsync_directory(self.path.parent)
            if self._file is not None:
                self._file.close()
            self._file = open(self.path, "ab")
            self.records = len(lines)
            self._written = self._synced = 0

    def _archive_old_lines(self) -> None:
        """Append the original records (not our own summaries) to the history file."""
        if not self.path.exists():
            return
        with open(self.path, "rb") as src, open(self.history_path, "ab") as dst:
            for raw in src:
                if b" done " not in raw[:40]:
                    dst.write(raw if raw.endswith(b"\n") else raw + b"  (torn)\n")

    @staticmethod
    def _line(kind: str, txid: str, data: dict) -> str:
        body = f"{now()} {kind:<6} {txid} {json.dumps(data, sort_keys=True)}"
        return f"{body} crc={zlib.crc32(body.encode()):08x}\n"

    def close(self) -> None:
        with self._write_lock:
            if self._file is not None:
                self._file.close()
                self._file = None


def _fsync_directory(folder: pathlib.Path) -> None:
    """Make a rename durable (POSIX); Windows has no directory fsync."""
    if os.name == "nt":
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
