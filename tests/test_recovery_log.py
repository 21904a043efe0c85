"""The coordinator's recovery log, on real files and with no processes.

Rules checked (design section 5, recovery_log.py Rules 1-4):
  * the commit record is on disk (fsync) before ``commit()`` returns: the commit point;
  * recovery rebuilds what is in flight: commit without end -> re-send commit;
    begin only -> no decision (presumed abort);
  * a torn last record (a crash in the middle of a write) is cut and everything else
    is recovered; a damaged record in the middle (its CRC does not match) is refused
    (Rule 6; tests/test_storage_faults.py checks every kind and place, and
    tests/test_recovery_log_tails.py the tails Rule 6 keeps or refuses);
  * compaction keeps the active log small, so restart time follows work in flight,
    not history.
"""

import os
import pathlib
import sys
import time

import pytest

KIT = pathlib.Path(__file__).resolve().parent.parent
if str(KIT) not in sys.path:
    sys.path.insert(0, str(KIT))

from bank import recovery_log, storage             # noqa: E402  (needs the kit on sys.path first)
from bank.recovery_log import LogDamaged, RecoveryLog     # noqa: E402

INFO = {"src": "Mumbai/1001", "dst": "Delhi/1002", "amount": "50.00", "request_id": "",
        "branches": ["Delhi", "Mumbai"], "began": "2026-11-25T13:01:02.123+00:00"}


# ---- helpers ----------------------------------------------------------------------------

@pytest.fixture
def log_path(tmp_path) -> pathlib.Path:
    """Where the recovery log of one test lives (a fresh folder per test)."""
    return tmp_path / "recovery.log"


def write_sample(path) -> None:
    """T1 committed and ended, T2 committed (no end), T3 begun only; then a clean close."""
    log = RecoveryLog(path)
    log.begin("T1", INFO)
    log.commit("T1")
    log.end("T1", "committed")
    log.begin("T2", INFO)
    log.commit("T2")
    log.begin("T3", INFO)
    log.close()


def lines_of(path) -> list:
    return path.read_bytes().splitlines(keepends=True)


def line_index(lines: list, kind: str, txid: str) -> int:
    """Index of the one line recording `kind` for `txid`."""
    found = [i for i, raw in enumerate(lines) if raw.split()[1:3] == [kind.encode(), txid.encode()]]
    assert len(found) == 1, (kind, txid, lines)
    return found[0]


def assert_sample_recovered(log: RecoveryLog) -> None:
    assert log.outcome("T1") == "committed"
    assert "T1" not in log.in_flight
    assert log.in_flight["T2"] == {"info": INFO, "decision": "commit"}
    assert log.in_flight["T3"] == {"info": INFO, "decision": None}


# ---- recovery of what is in flight -------------------------------------------------------

def test_commit_without_end_is_recovered_as_committed(log_path):
    """A txid with a commit record but no end is in flight after a restart, with decision
    commit: recovery must re-send commit to its participants (never abort it)."""
    log = RecoveryLog(log_path)
    log.begin("T1", INFO)
    log.commit("T1")
    log.close()                           # the coordinator dies before phase 2 finishes

    again = RecoveryLog(log_path)
    assert again.in_flight == {"T1": {"info": INFO, "decision": "commit"}}
    assert again.outcome("T1") == "committed"
    again.close()


def test_begin_only_is_recovered_without_a_decision(log_path):
    """A txid with a begin but no commit record has no decision after a restart:
    presumed abort (the coordinator may only abort it), and outcome() knows nothing final."""
    log = RecoveryLog(log_path)
    log.begin("T1", INFO)
    log.close()

    again = RecoveryLog(log_path)
    assert again.in_flight == {"T1": {"info": INFO, "decision": None}}
    assert again.outcome("T1") is None
    again.close()


def test_abort_and_end_are_recovered(log_path):
    """An abort record is recovered as decision abort; an ended txid is finished, not
    in flight, and keeps its outcome (for request ids and history)."""
    log = RecoveryLog(log_path)
    log.begin("TA", INFO)
    log.abort("TA")
    log.begin("TE", INFO)
    log.commit("TE")
    log.end("TE", "committed")
    log.close()

    again = RecoveryLog(log_path)
    assert again.in_flight == {"TA": {"info": INFO, "decision": "abort"}}
    assert again.outcome("TA") == "aborted"
    assert again.outcome("TE") == "committed"
    assert again.finished["TE"]["request_id"] == "" and again.finished["TE"]["src"] == INFO["src"]
    again.close()


def test_commit_is_forced_to_disk_before_it_returns(log_path, monkeypatch):
    """The commit point: commit() returns only after an fsync that covers the commit
    record (begin/abort/end need not be forced: presumed abort makes losing them safe)."""
    real_fsync = storage.fsync
    synced_contents = []                  # the file as it was at each fsync

    def spying_fsync(fd):
        real_fsync(fd)
        synced_contents.append(log_path.read_bytes() if log_path.exists() else b"")

    log = RecoveryLog(log_path)
    log.begin("T1", INFO)
    monkeypatch.setattr(storage, "fsync", spying_fsync)
    log.commit("T1")
    monkeypatch.setattr(storage, "fsync", real_fsync)

    lines = lines_of(log_path)
    commit_line = lines[line_index(lines, "commit", "T1")]
    assert any(commit_line in content for content in synced_contents), \
        "commit() returned without an fsync covering its commit record"
    log.close()


# ---- damaged records ------------------------------------------------------------------

def test_torn_last_record_is_ignored_and_the_rest_recovered(log_path):
    """A last record cut short by a crash mid-write is ignored; every complete record
    before it is recovered, and the log stays usable (later records read back cleanly)."""
    write_sample(log_path)
    data = log_path.read_bytes()
    last_start = data.rstrip(b"\n").rfind(b"\n") + 1
    assert data[last_start:].split()[1:3] == [b"begin", b"T3"]
    log_path.write_bytes(data[:last_start + (len(data) - last_start) // 2])

    log = RecoveryLog(log_path)
    assert log.torn == 1
    assert log.outcome("T1") == "committed"
    assert log.in_flight == {"T2": {"info": INFO, "decision": "commit"}}   # T3 was torn

    log.begin("T4", INFO)                 # the next writes must not join the torn fragment
    log.commit("T4")
    log.close()
    again = RecoveryLog(log_path)
    assert again.torn == 0
    assert set(again.in_flight) == {"T2", "T4"}
    assert again.in_flight["T4"]["decision"] == "commit"
    again.close()


@pytest.mark.parametrize("damage", [
    "wrong crc digits",
    "body changed, crc kept",
    "crc field missing",
])
def test_middle_record_with_a_bad_crc_is_damage_and_refused(log_path, damage):
    """A complete line in the MIDDLE of the log whose CRC-32 does not match its text is
    damage, not a torn write: the log refuses to open, naming the file and the line, and
    changes nothing. (Ignoring it would presume abort of T2, which may have committed.)
    Accepted, what it may hide is in doubt: T2, not T3 or T4, begun after it (an accepted
    log kept every later transfer blocked after any crash)."""
    write_sample(log_path)
    lines = lines_of(log_path)
    i = line_index(lines, "commit", "T2")
    body, crc = lines[i].rstrip(b"\n").rsplit(b" crc=", 1)
    if damage == "wrong crc digits":
        bad_crc = b"%08x" % (int(crc, 16) ^ 0x1)
        lines[i] = body + b" crc=" + bad_crc + b"\n"
    elif damage == "body changed, crc kept":
        lines[i] = body.replace(b" T2 ", b" T9 ") + b" crc=" + crc + b"\n"
    else:
        lines[i] = body + b"\n"
    log_path.write_bytes(b"".join(lines))
    before = log_path.read_bytes()

    with pytest.raises(LogDamaged) as refused:
        RecoveryLog(log_path)
    assert str(log_path) in refused.value.message
    assert f"line {i + 1}:" in refused.value.message
    assert "--accept-damaged-log" in refused.value.message
    assert log_path.read_bytes() == before

    accepted = RecoveryLog(log_path, accept_damage=True)
    assert accepted.outcome("T1") == "committed"
    assert "T2" in accepted.in_doubt                   # never presumed aborted
    assert "T3" not in accepted.in_doubt               # begun after the damaged line,
    assert accepted.outcome("T2") is None and accepted.in_doubt_about("T2")  # it cannot
    accepted.close()                                   # hold T3's decision

    again = RecoveryLog(log_path, accept_damage=True)  # a new transfer after the damage,
    again.begin("T4", INFO)                            # then a crash: it is not in doubt
    again.close()
    again = RecoveryLog(log_path, accept_damage=True)
    assert "T4" in again.in_flight and "T4" not in again.in_doubt
    again.close()


@pytest.mark.parametrize("damage", ["a changed byte", "a second created record"])
def test_a_damaged_created_record_keeps_no_transaction_named_log_in_doubt(log_path, damage):
    """Rule 9 with Rule 6: the created record is damaged (a student edits line 1 in lab
    11, or the log holds a second one). Accepted, the damage is reported and every txid
    the log does not know is in doubt; but "log", the word where a created record puts
    its txid, is no transaction and is not listed as one kept in doubt (it was: "1
    transaction(s) kept in doubt: log", and ping's in_doubt said ["log"])."""
    write_sample(log_path)
    lines = lines_of(log_path)
    assert b" created log " in lines[0]
    if damage == "a changed byte":
        lines[0] = lines[0].replace(b"txids_from", b"txids_frox")
    else:
        lines.insert(1, lines[0])
    log_path.write_bytes(b"".join(lines))
    accepted = RecoveryLog(log_path, accept_damage=True)
    try:
        described = accepted.describe()
        assert [p.split(":")[0] for p in described["damaged"]] == \
            ["line 1" if damage == "a changed byte" else "line 2"]
        assert described["in_doubt"] == []
        assert accepted.outcome("T1") == "committed"
        assert accepted.in_doubt_about("C1-20261125T130102-9f3a2c")     # unknown: in doubt
    finally:
        accepted.close()


def test_record_with_a_non_utf8_byte_is_damage(log_path):
    """A garbled record (here one byte flipped to 0xff, as disk corruption would) in the
    middle of the log is damage: refused with the line named, never a traceback."""
    write_sample(log_path)
    lines = lines_of(log_path)
    i = line_index(lines, "commit", "T2")
    lines[i] = lines[i].replace(b"{}", b"{\xff}")
    log_path.write_bytes(b"".join(lines))

    with pytest.raises(LogDamaged) as refused:
        RecoveryLog(log_path)
    assert f"line {i + 1}:" in refused.value.message


# ---- compaction ---------------------------------------------------------------------------

def config_of(primary: str, version: int) -> dict:
    return {"primary": primary, "in_sync": [], "epoch": version, "version": version}


def test_a_config_written_just_before_a_compaction_is_kept(log_path, monkeypatch):
    """Rule 8 with Rule 4: a config record is forced; if another thread compacts the
    log between its line and its fsync, the compacted log keeps it (it used to hold
    the branch's previous config, and a restart brought the old primary back)."""
    log = RecoveryLog(log_path)
    log.config("Delhi", config_of("http://127.0.0.1:1", 1))
    real_sync_to = RecoveryLog._sync_to

    def compaction_first(self, line_no):            # as another thread's end() would
        monkeypatch.setattr(RecoveryLog, "_sync_to", real_sync_to)
        self.compact()
        real_sync_to(self, line_no)
    monkeypatch.setattr(RecoveryLog, "_sync_to", compaction_first)
    log.config("Delhi", config_of("http://127.0.0.1:2", 2))
    assert RecoveryLog(log_path).configs["Delhi"]["primary"] == "http://127.0.0.1:2"


def test_the_log_is_not_held_open_while_compaction_replaces_it(log_path, monkeypatch):
    """Portability of Rule 4: Windows renames no file that is held open, so the log is
    closed for the replace (no append can come meanwhile: both locks are held), then
    reopened; appends go on to the compacted file."""
    monkeypatch.setattr(recovery_log, "COMPACT_AFTER", 3)
    log = RecoveryLog(log_path)
    real_replace, held_open = os.replace, []

    def as_windows_would(src, dst):
        held_open.append(log._file is not None and not log._file.closed)
        real_replace(src, dst)
    monkeypatch.setattr(os, "replace", as_windows_would)
    log.begin("C1-a", INFO)
    log.commit("C1-a")
    log.end("C1-a", "committed")                   # compacts
    log.begin("C1-b", INFO)
    log.commit("C1-b")
    assert held_open == [False]
    again = RecoveryLog(log_path)
    assert set(again.finished) == {"C1-a"} and set(again.in_flight) == {"C1-b"}


def test_a_failed_fsync_breaks_the_log(log_path, monkeypatch):
    """Rule 7: after an fsync of the log fails, what reached the disk is unknown (and a
    retried fsync may report success for lost writes), so the log is broken: the
    caller gets the error (for a commit the coordinator stops, C8), every later write
    is refused in a sentence, and no compaction runs on it."""
    monkeypatch.setattr(recovery_log, "COMPACT_AFTER", 3)
    log = RecoveryLog(log_path)
    log.begin("C1-a", INFO)
    real_fsync = storage.fsync

    def failing_fsync(fd):
        raise OSError(5, "Input/output error")
    monkeypatch.setattr(storage, "fsync", failing_fsync)
    with pytest.raises(OSError):
        log.commit("C1-a")
    monkeypatch.setattr(storage, "fsync", real_fsync)
    log.end("C1-a", "committed")                   # past COMPACT_AFTER: no compaction
    assert log._file.closed
    with pytest.raises(recovery_log.LogWriteError) as refused:
        log.begin("C1-b", INFO)
    assert "an fsync failed" in refused.value.message

@pytest.mark.parametrize("where", ["reopening", "syncing the folder"])
def test_a_log_that_cannot_be_reopened_after_compaction_refuses_writes_in_a_sentence(
        log_path, monkeypatch, where):
    """Rule 7 after Rule 4: if the compacted log replaced the old one, but the folder's
    fsync or reopening it for appends then fails, every later write is refused with
    LogWriteError and a sentence, and a line written before and still waiting for its
    fsync gets an OSError (for a commit record the coordinator then stops: C8). Lines
    appended to the old file (closed, or still open but replaced) would be read by no
    restart: a lost commit record. A restart reads the compacted log whole."""
    monkeypatch.setattr(recovery_log, "COMPACT_AFTER", 3)
    log = RecoveryLog(log_path)

    def no_handles_left(self):
        self._file.close()
        raise OSError(24, "Too many open files")

    def folder_refuses(folder):                    # once the compacted file is in place
        if not log_path.with_suffix(".compacting").exists():
            raise OSError(5, "Input/output error")
    if where == "reopening":
        monkeypatch.setattr(RecoveryLog, "_open_for_appends", no_handles_left)
    else:
        monkeypatch.setattr(recovery_log, "fsync_folder", folder_refuses)
    log.begin("C1-a", INFO)
    log.commit("C1-a")
    log.begin("C1-p", INFO)                        # written, not yet fsynced
    pending = log._written
    log.end("C1-a", "committed")                   # compacts, then fails
    with pytest.raises(recovery_log.LogWriteError) as refused:
        log.begin("C1-b", INFO)
    assert "cannot be written any more" in refused.value.message
    assert "reopened after compaction" in refused.value.message
    with pytest.raises(OSError):
        log._sync_to(pending)                      # as commit() would, next
    log.end("C1-p", "aborted")                     # a broken log is not compacted again
    assert log._file.closed
    monkeypatch.undo()
    again = RecoveryLog(log_path)
    assert set(again.finished) == {"C1-a"} and set(again.in_flight) == {"C1-p"}
    assert not log_path.with_suffix(".compacting").exists()


@pytest.mark.parametrize("where", ["writing the history", "replacing the log"])
def test_a_compaction_that_fails_before_the_replace_changes_nothing(log_path, monkeypatch,
                                                                     where):
    """Rule 4: until the compacted file replaces the log, a failure (a full disk while
    the old lines are archived, a refused rename) changes nothing: the half-made file
    is removed, the history is cut back to what it was (no half copy, so the next
    compaction archives the lines once), the log keeps taking records, and a restart
    finds every transaction."""
    monkeypatch.setattr(recovery_log, "COMPACT_AFTER", 6)
    log = RecoveryLog(log_path)
    history = log.history_path
    before = history.stat().st_size if history.exists() else 0
    real_replace = os.replace

    def refuse(*args):
        raise OSError(28, "No space left on device")
    real_write_whole = recovery_log.write_whole

    def history_fills_up(f, data):                 # a few bytes reach the disk, then full
        if f.name != str(history):
            return real_write_whole(f, data)
        f.write(data[:10])
        refuse()
    if where == "writing the history":
        monkeypatch.setattr(recovery_log, "write_whole", history_fills_up)
    else:
        monkeypatch.setattr(os, "replace", refuse)
    for i in range(2):                             # the second end compacts, and fails
        log.begin(f"C1-{i}", INFO)
        log.commit(f"C1-{i}")
        log.end(f"C1-{i}", "committed")
    assert not log_path.with_suffix(".compacting").exists()
    assert (history.stat().st_size if history.exists() else 0) == before
    monkeypatch.setattr(os, "replace", real_replace)
    monkeypatch.undo()
    log.begin("C1-2", INFO)                        # the log goes on
    log.commit("C1-2")
    again = RecoveryLog(log_path)
    assert set(again.finished) == {"C1-0", "C1-1"} and set(again.in_flight) == {"C1-2"}
    lines = history.read_bytes().splitlines()
    assert len(lines) == len(set(lines)), "every old line archived once"

def test_a_compaction_the_disk_refuses_fails_no_transaction(log_path, monkeypatch):
    """Rule 4 with Rule 7: compaction is housekeeping. When the disk refuses it (full),
    end() still returns, no half-written compacted file is left taking space, the
    active log keeps every record (a restart finds all the transactions), and the next
    try waits for another COMPACT_AFTER records instead of coming at every end."""
    monkeypatch.setattr(recovery_log, "COMPACT_AFTER", 6)     # begin + commit + end: 3
    log = RecoveryLog(log_path)
    tries = []

    def disk_full(self):
        tries.append(len(self.finished))
        yield self._line("config", "Mumbai", {"url": "http://127.0.0.1:1"})
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(RecoveryLog, "_compacted_lines", disk_full)
    for i in range(4):
        txid = f"C1-full-{i}"
        log.begin(txid, INFO)
        log.commit(txid)
        log.end(txid, "committed")                 # never raises
    assert tries == [2, 4]                         # at 6 records, then 6 more
    assert not log_path.with_suffix(".compacting").exists()
    monkeypatch.undo()
    again = RecoveryLog(log_path)
    assert set(again.finished) == {f"C1-full-{i}" for i in range(4)}
    assert again.in_flight == {}

@pytest.mark.slow
def test_compaction_keeps_restart_proportional_to_work_in_flight(log_path, monkeypatch):
    """Compaction keeps the active log small: after ten times KEEP_FINISHED finished
    transactions (15 compactions) it holds at most COMPACT_AFTER + KEEP_FINISHED records
    plus those of the txns in flight, and a restart recovers every in-flight txn with its
    decision. The restart time is printed (not asserted: it depends on the machine).

    Speed only: the log's sizes are a tenth of the real ones (the same proportions: 10,000
    transactions instead of 100,000, 30 s of CPU), and storage.fsync is a no-op in THIS
    test, because that many forced commits would take minutes on a real disk; durability
    is checked by test_commit_is_forced_to_disk_before_it_returns.
    """
    monkeypatch.setattr(storage, "fsync", lambda fd: None)
    monkeypatch.setattr(recovery_log, "COMPACT_AFTER", recovery_log.COMPACT_AFTER // 10)
    monkeypatch.setattr(recovery_log, "KEEP_FINISHED", recovery_log.KEEP_FINISHED // 10)
    total = 10 * recovery_log.KEEP_FINISHED
    every = total // 10
    expected_in_flight = {}
    log = RecoveryLog(log_path)
    write_started = time.monotonic()
    for i in range(total):
        txid = f"C1-done-{i:06d}"
        log.begin(txid, dict(INFO, request_id=f"req-{i}"))
        log.commit(txid)
        log.end(txid, "committed")
        if i % every == every // 2:       # a few txns stay unfinished, spread over history
            committed, undecided = f"C1-open-commit-{i:06d}", f"C1-open-begin-{i:06d}"
            log.begin(committed, INFO)
            log.commit(committed)
            log.begin(undecided, INFO)
            expected_in_flight[committed] = "commit"
            expected_in_flight[undecided] = None
    write_seconds = time.monotonic() - write_started
    in_flight_records = sum(2 if d else 1 for d in expected_in_flight.values())
    bound = recovery_log.COMPACT_AFTER + recovery_log.KEEP_FINISHED + in_flight_records
    active_before = len(lines_of(log_path))
    log.close()

    restart_started = time.monotonic()
    again = RecoveryLog(log_path)                       # the restart
    restart_seconds = time.monotonic() - restart_started
    print(f"\nrecovery log: wrote {total} finished txns in {write_seconds:.1f} s; "
          f"active log {active_before} records before restart, "
          f"{len(lines_of(log_path))} after; restart took {restart_seconds * 1000:.0f} ms")

    assert active_before <= bound
    assert len(lines_of(log_path)) <= 1 + recovery_log.KEEP_FINISHED + in_flight_records  # + created
    assert {t: e["decision"] for t, e in again.in_flight.items()} == expected_in_flight
    assert again.torn == 0
    newest = f"C1-done-{total - 1:06d}"
    assert again.outcome(newest) == "committed"
    assert again.finished[newest]["request_id"] == f"req-{total - 1}"
    assert len(again.finished) == recovery_log.KEEP_FINISHED
    again.close()


def test_forced_writes_of_configuration_alone_are_not_counted_as_a_transfers(log_path):
    """Counters: a forced write that carried only a configuration record (a replica
    dropped, a failover) is counted apart (config_fsyncs), so a lab's forced writes per
    transfer do not move with the configuration; one that carried a transaction's
    record counts for transfers (fsyncs)."""
    log = RecoveryLog(log_path)
    log.config("Mumbai", {"version": 1, "epoch": 1, "primary": "http://127.0.0.1:9100",
                          "in_sync": []})
    assert (log.fsyncs, log.config_fsyncs) == (0, 1)
    log.begin("C1-a", INFO)
    log.commit("C1-a")
    assert (log.fsyncs, log.config_fsyncs) == (1, 1)
    log.close()
