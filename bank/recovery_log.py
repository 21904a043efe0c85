"""The coordinator's recovery log: an append-only text file a student can read.

Role: remember, across crashes, which transactions the coordinator decided to
commit and which it has finished. Nothing else about the coordinator survives a
crash, and nothing else needs to. Reading the file back at start (Rules 3 and 6:
checksums, a torn tail, damage) is in bank/recovery_log_reading.py.

One record per line (open logs/recovery.log in any editor):

    2026-11-25T13:00:58.001+00:00 created log {"txids_from": "20261125T130059"} crc=...
    2026-11-25T13:01:02.123+00:00 begin  C1-20261125T130102-9f3a2c {"branches": [...], ...} crc=1a2b3c4d
    2026-11-25T13:01:02.140+00:00 commit C1-20261125T130102-9f3a2c {} crc=...
    2026-11-25T13:01:02.152+00:00 end    C1-20261125T130102-9f3a2c {"outcome": "committed"} crc=...
    2026-11-25T13:01:03.001+00:00 config Mumbai {"epoch": 2, "in_sync": [], "primary": "http://...", "version": 5} crc=...

Rules:
  * Rule 1 - the commit point. ``commit()`` returns only after the record is on
    disk (fsync). The coordinator sends no commit, and tells no client, before that.
  * Rule 2 - presumed abort. ``begin``, ``abort`` and ``end`` are written but not
    forced: losing them is safe, because a txid without a commit record is aborted.
    Under the other presumptions (bank/core/coordinator.py C10-C13) the core asks
    for more: ``begin(forced=True)`` (presumed commit) and ``abort(forced=True)``
    (presumed nothing and presumed commit) return only once the record is on disk.
    A transaction whose begin says {"presumption": "commit"} is finished by its
    commit record: it needs, and gets, no end (C12).
  * Rule 3 - every line ends with a CRC-32 of the rest of the line.
  * Rule 4 - compaction. When the log grows past ``COMPACT_AFTER`` records (and at
    every start), it is rewritten to hold only unfinished transactions and a one-line
    summary of the last ``KEEP_FINISHED`` finished ones; the old lines are appended to
    recovery.history.log. So restart time follows work in flight, not history.
    Compaction is housekeeping: one the disk refuses (full) fails no transaction, the
    log goes on as it was, and it is tried again after another COMPACT_AFTER records.
  * Rule 5 - group commit. Concurrent ``commit()`` calls share one fsync: whoever
    syncs first makes everything written so far durable.
  * Rule 6 - a torn tail is cut; damage stops the coordinator. A crash can only cut
    the LAST write short: a last line without its end of line (or holding the zero
    bytes of a write that never reached the disk) is a torn tail. It was never
    acknowledged, so it is cut off and reported. Unless cutting could change history
    (damage to a forced record a branch acted on looks the same): a last line that
    lacks only its end of line is a whole record, kept; a torn commit naming one
    transaction in flight by its whole txid is kept as that commit (safe either way:
    a commit follows every yes vote), and so is a torn begin under presumed commit
    (recovery aborts it, C13); a torn commit or begin more than one transaction may
    be, or a torn config of a branch configured before, is damage. Anything
    else is damage too: a complete
    line failing its checksum or its grammar, or a record that contradicts the ones
    before it (a commit for a transaction never begun, two different decisions).
    Reading on as if the line were absent would turn corruption into a different
    history (presume abort of a transaction a branch already committed), so the
    log refuses to open (``LogDamaged``, naming the file, the line and the problem).
    An operator restores the file, or opens it with ``accept_damage=True``
    (coordinator.py ``--accept-damaged-log``): then every transaction the damage
    could touch is kept IN DOUBT, never presumed aborted (``in_doubt_about``), and
    the damaged log is never compacted, so the evidence stays and every restart
    decides the same way.
  * Rule 7 - a failed write changes nothing. A line that cannot be written whole
    (disk full, I/O error) is cut off again and the call raises ``LogWriteError``:
    the operation at hand is refused, the log stays line-clean, and the next write
    tries again (writes resume when space returns). If the cut itself fails, the log
    refuses every later write (``broken``). A failed fsync raises OSError and breaks
    the log too: the record may or may not be on disk (and a retried fsync may say
    yes for writes it lost), so only a restart can tell. So does a compaction that
    failed after its file replaced the log.

  * Rule 8 - configurations (bank/config_manager.py). A ``config`` record holds one
    branch's whole configuration (primary, in-sync replicas, epoch, version); the
    last one of a branch is its configuration. It is forced like a commit, and
    compaction keeps the last one of every branch (one written and not yet fsynced
    too). A config whose version is not higher than the one before it, or whose
    epoch is lower, is damage (Rule 6).

  * Rule 9 - a log knows when it was created. A new log (or one found empty) starts
    with a ``created`` record naming the second from which its txids are stamped
    (bank/twopc_memory.py never stamps one earlier); compaction keeps it first. A
    txid stamped before it belongs to a log that is gone (deleted, emptied, replaced
    while a branch was in doubt): its outcome is not this log's to presume (C14). It
    names the second after the log's creation: the coordinator of the log that is
    gone may have stamped a txid in the very second this one was created. (Only a log
    whose whole life fell in the second this one was made stays indistinguishable.)

Glossary:
  config     a branch's configuration, as its configuration manager recorded it
  forced     written and fsynced before the call returns
  in flight  a txid with a begin but no end: recovery must finish it
  done       a compaction summary of a finished transaction (outcome, accounts, request id)
  torn tail  the last line, cut short by a crash in the middle of its write
  damage     a line that was written whole and is wrong now (Rule 6)
  in doubt   a txid whose outcome a damaged line may have held: neither committed
             nor aborted until an operator decides; or a branch whose configuration
             a damaged line may have held (no lease, no failover)
"""

import collections
import json
import logging
import os
import pathlib
import threading
import time
import zlib

from bank.clock import txid_second
from bank.errors import NOTHING_DONE, BankError, FaultCode
from bank.ledger import now
from bank.recovery_log_reading import LogDamaged  # noqa: F401 (re-exported)
from bank.recovery_log_reading import REWRITE, ReadAtStart, config_contradiction, ends_a_line
from bank import storage
from bank.storage import fsync_folder, truncate_to

COMPACT_AFTER = 20_000       # records in the active log before it is compacted
KEEP_FINISHED = 10_000       # finished txns remembered (for request ids and history)
IN_DOUBT = "in-doubt"        # what decision() answers for a txid the damage may touch

log = logging.getLogger("recovery-log")


class LogWriteError(BankError):
    """A record could not be written; nothing of it is in the log (Rule 7)."""

    def __init__(self, message: str):
        super().__init__(FaultCode.UNAVAILABLE, message)


# ---- compaction (Rule 4) ------------------------------------------------------------

class Compaction:
    """Mixed into RecoveryLog: Rule 4, compaction. The log is rewritten with only what
    recovery needs, the old lines go to the history file, and every way it can fail
    leaves either the old log working (before the replace) or a broken one that
    refuses writes (after it, Rule 7)."""

    def compact(self) -> None:
        """Rewrite the log with only in-flight txns and recent summaries; archive the rest.

        The new file is complete and on disk before it replaces the old one (closed for
        the replace: Windows renames no file held open; no append can come meanwhile,
        both locks are held). A failure before the replace changes nothing: the new
        file is removed, the history cut back to what it was, the old log reopened. A
        failure after it (the folder's fsync, reopening) breaks the log (Rule 7): what
        we would append to is not the file a restart reads. The history is on disk
        before the old lines leave the active log.
        """
        assert not self.damage, "a damaged log is never compacted (Rule 6)"
        with self._write_lock, self._sync_lock:
            tmp = self.path.with_suffix(".compacting")
            history_size = self._history_size()
            try:
                records = self._write_compacted(tmp)
                self._archive_old_lines()
                if self._file is not None:
                    self._file.close()
                storage.replace(tmp, self.path)  # atomic: old or new, never half
            except OSError:
                self._undo_compaction(tmp, history_size)
                raise
            self._reopen_or_break(sync_folder=True)
            self.records, self._compact_at = records, COMPACT_AFTER
            self._written = self._synced = 0

    def _undo_compaction(self, tmp: pathlib.Path, history_size: int) -> None:
        """Before the replace: the new file's space given back, the history as it was
        (its lines are archived once, later), and the old log open again."""
        try:
            tmp.unlink(missing_ok=True)
        finally:
            self._cut_history_back(history_size)
            if self._file is None or self._file.closed:
                self._reopen_or_break()

    def _reopen_or_break(self, sync_folder: bool = False) -> None:
        """Open the log for appends (after fsyncing its folder, so that a replace
        survives a power cut); if that fails, the log is broken (Rule 7) and the
        failure raised."""
        try:
            if sync_folder:
                fsync_folder(self.path.parent)
            self._open_for_appends()
        except OSError as exc:
            self._break(f"it could not be reopened after compaction: {exc.strerror or exc}")
            raise

    def _write_compacted(self, tmp: pathlib.Path) -> int:
        """The compacted log into tmp, on disk; its number of records. Line by line: a
        multi-MB string left the process bigger after every compaction (issue 13)."""
        records = 0
        with open(tmp, "wb") as f:
            for line in self._compacted_lines():
                f.write(line.encode())
                records += 1
            f.flush()
            storage.fsync(f.fileno())
        return records

    def _compact_when_possible(self) -> None:
        """Rule 4 after an end: compact, unless the disk refuses (full, an I/O error).
        Then the active log is as it was, the transaction that just ended still ended,
        and the next try waits for another COMPACT_AFTER records, so a full disk does
        not rewrite the log at every end. (A failure after the replace broke the log:
        compact() said so, and every later write is refused.)"""
        try:
            self.compact()
        except OSError as exc:
            if self.broken:
                return
            self._compact_at = self.records + COMPACT_AFTER
            log.warning("recovery log %s could not be compacted (%s); it goes on as it is "
                        "and will be compacted later", self.path, exc.strerror or exc)

    def _compacted_lines(self):
        """What a compacted log holds: when it was created, configs, summaries of the
        finished, in-flight."""
        if self.created:
            yield self._line("created", "log", {"txids_from": self.created})
        configs = {**self.configs, **self._configs_written}    # as the lines on disk
        for branch, config in sorted(configs.items()):
            yield self._line("config", branch, config)
        for txid, summary in self.finished.items():
            yield self._line("done", txid, summary)
        for txid, entry in self.in_flight.items():
            yield self._line("begin", txid, entry["info"])
            if entry["decision"]:
                yield self._line(entry["decision"], txid, {})

    def _archive_old_lines(self) -> None:
        """Append the original records (not our own summaries) to the history file,
        and make them durable (file and folder) before the caller drops them."""
        if not self.path.exists():
            return
        new_file = not self.history_path.exists()
        with open(self.path, "rb") as src, open(self.history_path, "ab", buffering=0) as dst:
            for chunk in _history_chunks(src):
                write_whole(dst, chunk)
            storage.fsync(dst.fileno())
        if new_file:
            fsync_folder(self.history_path.parent)

    def _history_size(self) -> int:
        return self.history_path.stat().st_size if self.history_path.exists() else 0

    def _cut_history_back(self, size: int) -> None:
        """After a compaction that failed: the history as it was (lines copied for it
        are still in the active log). The history is for people; if even this fails,
        it may hold some lines twice, which is said in the log."""
        try:
            if self._history_size() > size:
                with open(self.history_path, "r+b") as f:
                    truncate_to(f.fileno(), size)
        except OSError as exc:
            log.warning("recovery history %s could not be cut back (%s): it may hold some "
                        "records twice", self.history_path, exc.strerror or exc)


# ---- the log -----------------------------------------------------------------------------

class RecoveryLog(ReadAtStart, Compaction):
    """Read at start, appended while running, compacted now and then.

    accept_damage: open a damaged log anyway, keeping every transaction the damage
    could touch in doubt (Rule 6); without it a damaged log raises LogDamaged.
    presumed_commit: the coordinator runs presumed commit (a begin is forced: Rule 6
    reads a torn begin as such even in a log that holds no transaction yet).
    """

    def __init__(self, path, accept_damage: bool = False, presumed_commit: bool = False):
        self.path = pathlib.Path(path)
        self.history_path = self.path.with_name(self.path.stem + ".history" + self.path.suffix)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.in_flight = {}           # txid -> {"info": begin data, "decision": str|None}
        self.finished = collections.OrderedDict()   # txid -> summary, oldest first
        self.records = 0
        self._compact_at = COMPACT_AFTER         # records: the next compaction (Rule 4)
        self.torn = 0                 # lines of torn tail cut at start
        self.torn_kept = []           # (kind, txid, data) of torn records kept (Rule 6)
        self.damage = []              # [Problem]: what recovery found damaged (Rule 6)
        self.in_doubt = set()         # txids the damage may touch: never presumed aborted
        self.configs = {}             # branch -> its last config record (Rule 8)
        self.created = ""             # the second its txids start from (Rule 9); "" if
                                      # written before logs recorded it
        self._configs_written = {}    # branch -> its last config line, maybe not synced
        self.broken = ""              # why no write is possible any more (Rule 7)
        self._write_lock = threading.Lock()     # one writer of lines at a time
        self._sync_lock = threading.Lock()      # one fsync at a time (group commit)
        self._written = 0                       # lines written so far
        self._synced = 0                        # lines known to be on disk
        self.fsyncs = 0               # forced writes with a transaction's record (counters)
        self.config_fsyncs = 0        # forced writes of configuration records only
        self._last_txn_line = 0       # the last line written for a transaction
        self._file = None
        self._size = 0                          # bytes in the file: a failed write is cut back here
        self.presumed_commit = presumed_commit
        self._read_existing(accept_damage)
        if self.records == 0 and not self.damage:
            # a new log (compact() writes it): its txids from the next second (Rule 9)
            self.created = txid_second(time.time() + 1)
        if self.damage:
            self._open_for_appends()            # never compacted: keep the evidence
            self._write_kept_records_whole()
        else:
            self.compact()                      # (writes a kept torn commit whole too)

    def _write_kept_records_whole(self) -> None:
        """Rule 6 on a damaged log (not compacted): a torn record that was kept is
        written again, whole and forced, so the next start reads it as a record, marked
        in its checksummed data as the rewrite of the torn line just before it (REWRITE:
        only that line is excused at the next start). The torn line's end of line goes
        in the same write. (A crash during it may still leave the end of line without
        the record: then the torn line is damage at the next start, and what it may be
        is kept in doubt: safe, if less convenient.)"""
        ended = ends_a_line(self.path)
        for kind, txid, data in self.torn_kept:
            marked = dict(data, **{REWRITE: True})
            self._sync_to(self._append(kind, txid, marked, prefix=b"" if ended else b"\n"))
            ended = True

    # ---- appending ----------------------------------------------------------------

    def begin(self, txid: str, info: dict, forced: bool = False) -> None:
        """A transaction starts (not forced: Rule 2, unless presumed commit asks: C11).
        On a damaged log every begin is forced (Rule 6): a txid it does not know is then
        one the damage may hide, never one begun since whose begin a crash lost.
        LogWriteError if it cannot be written."""
        with self._write_lock:
            line_no = self._append("begin", txid, info)
            self.in_flight[txid] = {"info": info, "decision": None}
        if forced or self.damage:
            self._sync_to(line_no)

    def commit(self, txid: str) -> None:
        """THE commit point: returns only once the commit record is on disk (Rule 1).

        LogWriteError: the record is certainly NOT in the log (the commit did not happen).
        OSError: the fsync failed; the record may or may not be on disk.
        """
        with self._write_lock:
            line_no = self._append("commit", txid, {})
            self._entry(txid)["decision"] = "commit"
            self._finish_if_presumed_commit(txid)
        self._sync_to(line_no)

    def abort(self, txid: str, forced: bool = False) -> None:
        """The abort decision (not forced: presumed abort makes it safe to lose, so a
        failed write is only reported). forced (C10, C13): on disk before it returns,
        if it could be written; if not, a restart finds begin without a decision and
        aborts again, so it is still only reported."""
        with self._write_lock:
            self._entry(txid)["decision"] = "abort"
            written = self._append_if_possible("abort", txid, {})
        if forced and written:
            self._sync_to(written)

    def end(self, txid: str, outcome: str, reason: str = "", damaged=()) -> None:
        """Every participant acknowledged: the transaction needs no more work.
        damaged: the branches that acknowledged with heuristic damage (P11), kept so
        that the transaction is still shown with it after a restart.

        Not forced; if it cannot be written, a restart only re-sends the decision.
        """
        data = {"outcome": outcome, "reason": reason, "ended": now()}
        if damaged:
            data["damaged"] = sorted(damaged)
        with self._write_lock:
            entry = self.in_flight.pop(txid, {"info": {}})
            self._remember_finished(txid, dict(entry["info"], **data))
            self._append_if_possible("end", txid, data)
        if self.records >= self._compact_at and not (self.damage or self.broken):
            self._compact_when_possible()

    def config(self, branch: str, data: dict) -> None:
        """Record a branch's new configuration, forced: on disk before it returns (Rule 8).

        LogWriteError: it is certainly not recorded (the change did not happen).
        """
        problem = config_contradiction(branch, data, self.configs.get(branch, {}))
        assert not problem, problem
        with self._write_lock:
            line_no = self._append("config", branch, data)
            self._configs_written[branch] = dict(data)   # a compaction before the fsync
        self._sync_to(line_no)                           # keeps it (Rule 4)
        with self._write_lock:
            self.configs[branch] = dict(data)

    def outcome(self, txid: str):
        """'committed', 'aborted', or None if this log knows nothing final yet."""
        with self._write_lock:
            if txid in self.in_doubt:
                return None
            if txid in self.finished:
                return self.finished[txid]["outcome"]
            decision = self.in_flight.get(txid, {}).get("decision")
        return {"commit": "committed", "abort": "aborted"}.get(decision)

    def hides_request_ids(self) -> bool:
        """May accepted damage hide a request id (Rule 6)? A begin or done line holds
        one; a line too damaged to tell its kind may be either."""
        return any(p.kind in ("", "begin", "done") for p in self.damage)

    def in_doubt_about(self, txid: str) -> bool:
        """May accepted damage have hidden this txid's outcome? (Rule 6)

        True for the txids in ``in_doubt``, and, once the log is damaged, for any txid
        it does not know at all: the damaged line may have been about it, so "no
        commit record" no longer means "aborted".
        """
        with self._write_lock:
            if txid in self.in_doubt:
                return True
            known = txid in self.in_flight or txid in self.finished
        return bool(self.damage) and not known

    def describe(self) -> dict:
        """What recovery found, for ping(): torn tail cut, damage, txids in doubt."""
        return {"torn_tail_cut": self.torn,
                "torn_kept": [f"{kind} {txid}" for kind, txid, _ in self.torn_kept],
                "damaged": [str(p) for p in self.damage],
                **dict(zip(("in_doubt", "configs_in_doubt"), self.doubts())),
                "writable": not self.broken}

    def _entry(self, txid: str) -> dict:
        return self.in_flight.setdefault(txid, {"info": {}, "decision": None})

    def _finish_if_presumed_commit(self, txid: str, ended=None) -> None:
        """C12: under presumed commit the commit record finishes the transaction."""
        entry = self.in_flight.get(txid, {"info": {}})
        if entry["info"].get("presumption") == "commit":
            del self.in_flight[txid]
            self._remember_finished(txid, dict(entry["info"], outcome="committed",
                                               reason="", ended=now() if ended is None else ended))

    def _append(self, kind: str, txid: str, data: dict, prefix: bytes = b"") -> int:
        """Write one whole line (caller holds _write_lock); it is in the OS, not yet on
        disk. A line that cannot be written whole is cut off again (Rule 7). prefix: an
        end of line the torn line before it lacks (Rule 6), in the same write."""
        if self.broken:
            raise LogWriteError(f"The recovery log {self.path} cannot be written any more "
                                f"({self.broken}); restart the coordinator once the disk "
                                "is repaired." + NOTHING_DONE)
        line = prefix + self._line(kind, txid, data).encode()
        try:
            write_whole(self._file, line)
        except OSError as exc:
            self._cut_back()
            raise LogWriteError(f"The recovery log {self.path} could not be written "
                                f"({exc.strerror or exc}), so the coordinator did not "
                                f"record this {kind}: nothing was done. Reads still work; "
                                "writes resume when the disk has room again.") from None
        self._size += len(line)
        self._written += 1
        self.records += 1
        if kind != "config":
            self._last_txn_line = self._written
        return self._written

    def _cut_back(self) -> None:
        """Remove the part of a failed line that did reach the file (Rule 7)."""
        try:
            truncate_to(self._file.fileno(), self._size)
        except OSError as exc:
            self.broken = f"a failed write could not be undone: {exc.strerror or exc}"
            log.critical("recovery log %s: %s", self.path, self.broken)

    def _append_if_possible(self, kind: str, txid: str, data: dict) -> int:
        """For records presumed abort makes safe to lose (Rule 2): the line number
        written, or 0 if it could not be."""
        try:
            return self._append(kind, txid, data)
        except LogWriteError as exc:
            log.warning("%s (%s %s; safe to lose: presumed abort)", exc.message, kind, txid)
            return 0

    def _sync_to(self, line_no: int) -> None:
        """Make sure line `line_no` is on disk, sharing the fsync with others (Rule 5)."""
        with self._sync_lock:
            if self._synced >= line_no:
                return                           # someone else's fsync covered us
            if self.broken:                      # Rule 7: nothing is made durable now;
                raise OSError(f"the recovery log {self.path} cannot be written any more "
                              f"({self.broken})")          # a commit stops the process
            target = self._written
            try:
                storage.fsync(self._file.fileno())
            except OSError as exc:               # what reached the disk is unknown now,
                self._break(f"an fsync failed: {exc.strerror or exc}")   # and a retried
                raise                                                   # fsync may lie
            # shown by the coordinator's ping(): what transfers cost, apart from what a
            # change of configuration costs (a lab's count per transfer must not move
            # because a replica was dropped at that moment)
            if self._synced < self._last_txn_line <= target:
                self.fsyncs += 1
            else:
                self.config_fsyncs += 1
            self._synced = target

    def _remember_finished(self, txid: str, summary: dict) -> None:
        self.finished[txid] = summary
        while len(self.finished) > KEEP_FINISHED:
            self.finished.popitem(last=False)

    def _break(self, why: str) -> None:
        """Rule 7: no write is possible any more; close the file so that nothing can be
        appended to it or fsynced as if it were the log."""
        self.broken = why
        log.critical("recovery log %s: %s", self.path, why)
        if self._file is not None:
            self._file.close()

    def _open_for_appends(self) -> None:
        if self._file is not None:
            self._file.close()
        # Unbuffered: each line goes to the OS in whole writes we control (Rule 7).
        self._file = open(self.path, "ab", buffering=0)
        self._size = os.fstat(self._file.fileno()).st_size

    @staticmethod
    def _line(kind: str, txid: str, data: dict) -> str:
        body = f"{now()} {kind:<6} {txid} {json.dumps(data, sort_keys=True)}"
        return f"{body} crc={zlib.crc32(body.encode()):08x}\n"

    def close(self) -> None:
        with self._write_lock:
            if self._file is not None:
                self._file.close()
                self._file = None


def write_whole(raw_file, data: bytes) -> None:
    """Write all of data to an unbuffered file (a raw write may be partial)."""
    view = memoryview(data)
    while view:
        view = view[raw_file.write(view):]


def _history_chunks(src, size: int = 65536):
    """The active log's own records (not the summaries or the created record that
    compaction writes again), in chunks
    of about `size` bytes; a torn last line is kept, marked."""
    chunk = bytearray()
    for raw in src:
        if b" done " not in raw[:40] and b" created " not in raw[:40]:
            chunk += raw if raw.endswith(b"\n") else raw + b"  (torn)\n"
        if len(chunk) >= size:
            yield bytes(chunk)
            chunk.clear()
    if chunk:
        yield bytes(chunk)
