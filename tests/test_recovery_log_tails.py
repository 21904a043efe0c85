"""Rule 6 of the recovery log at its tail, on real files and with no processes.

Rules checked (bank/recovery_log.py Rule 6, bank/recovery_log_reading.py):
  * a torn last line that can be no forced record is cut; one that lacks only its end
    of line is kept whole;
  * a torn commit naming one transaction in flight by its whole txid is kept as that
    commit, and so is a torn begin under presumed commit (recovery aborts it, C13),
    surviving a crash during the start that keeps them;
  * a torn commit or begin that more than one txid may be, a torn config of a
    configured branch, and a torn done line are damage;
  * a crash's zeros lie on whole sectors: other zeros (in place of an end of line,
    inside a whole commit) are damage, and so are a whole line whose txid was changed to
    the next line's and a torn commit line longer than a commit (each had lost a
    commit); a damaged line may hide a decision; unforced records that lost a sector
    are cut;
  * on an accepted damaged log, only what the damage may hide is kept in doubt, a kept
    record written again whole is one record at the next start, and begins are forced.
Other damage (a bad line in the middle) is in tests/test_recovery_log.py and
tests/test_storage_faults.py.
"""

import pathlib
import sys

import pytest

KIT = pathlib.Path(__file__).resolve().parent.parent
if str(KIT) not in sys.path:
    sys.path.insert(0, str(KIT))

from bank.recovery_log import LogDamaged, RecoveryLog     # noqa: E402
from test_recovery_log import (INFO, assert_sample_recovered, line_index,  # noqa: E402
                               lines_of, write_sample)


@pytest.fixture
def log_path(tmp_path) -> pathlib.Path:
    """Where the recovery log of one test lives (a fresh folder per test)."""
    return tmp_path / "recovery.log"


def test_a_torn_commit_of_no_transaction_in_flight_is_cut(log_path):
    """Half a line at the end of the log (no newline: the write never finished) that
    can be the decision of no transaction in flight is cut, and every complete record
    is recovered (as lab 11 shows)."""
    write_sample(log_path)
    with open(log_path, "ab") as f:
        f.write(b"2026-11-25T13:01:02.999+00:00 commit T9 {} crc=12")

    log = RecoveryLog(log_path)
    assert log.torn == 1 and not log.damage
    assert_sample_recovered(log)
    log.close()


def pad_to_sector(log_path, then: int) -> None:
    """Append a whole begin record of padding so that `then` more bytes written end on
    a 512-byte sector boundary (where a crash's zeros start or end)."""
    log = RecoveryLog(log_path)
    log.begin("PAD", {"pad": ""})
    log.close()
    size = log_path.stat().st_size
    short = (-(size + then)) % 512
    lines = lines_of(log_path)
    lines[-1] = b""
    log_path.write_bytes(b"".join(lines))
    log = RecoveryLog(log_path)
    log.begin("PAD", {"pad": "x" * short})
    log.close()
    assert (log_path.stat().st_size + then) % 512 == 0


@pytest.mark.parametrize("tail", [b"{} crc=12", b"{} crc=\0\0\0\0\0\0\0\0", b"",
                                  b"{} c" + b"\0" * 12])       # zeros over its end of line too
def test_a_torn_commit_naming_one_transaction_in_flight_is_kept_as_its_commit(log_path,
                                                                             tail):
    """Rule 6: a torn last line that reads as the commit of a transaction in flight, its
    whole txid legible, may be a crash during its write (never acknowledged) or damage
    after it was forced and sent. Cutting it would presume abort of a transfer a branch
    may have committed (money created); keeping it is safe either way (a commit is
    written only after every yes vote), so it is replayed, and compaction writes it
    whole: after another restart the transaction is still committed."""
    write_sample(log_path)
    torn = b"2026-11-25T13:01:02.999+00:00 commit T3 " + tail
    if b"\0" in tail:                   # a crash's zeros start on a sector boundary
        pad_to_sector(log_path, torn.index(b"\0"))
    with open(log_path, "ab") as f:
        f.write(torn)

    log = RecoveryLog(log_path)
    assert not log.damage and not log.in_doubt
    assert log.in_flight["T3"]["decision"] == "commit"
    assert log.describe()["torn_kept"] == ["commit T3"]
    log.close()
    again = RecoveryLog(log_path)
    assert again.in_flight["T3"]["decision"] == "commit" and again.torn == 0
    again.close()


def test_a_kept_torn_commit_survives_a_crash_during_the_start_that_keeps_it(log_path,
                                                                          monkeypatch):
    """Rule 6: the start that keeps a torn commit changes nothing in the file before
    compaction replaces it whole; a crash (or a full disk) in between leaves the torn line
    as it was, and the next start keeps it again (it was given an end of line first,
    and read as damage: the coordinator refused to start, the transfer blocked)."""
    write_sample(log_path)
    with open(log_path, "ab") as f:
        f.write(b"2026-11-25T13:01:02.999+00:00 commit T3 {} crc=12")
    before = log_path.read_bytes()

    def crash(self):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(RecoveryLog, "compact", crash)
    with pytest.raises(OSError):
        RecoveryLog(log_path)
    monkeypatch.undo()
    assert log_path.read_bytes() == before
    log = RecoveryLog(log_path)
    assert log.in_flight["T3"]["decision"] == "commit" and not log.damage
    log.close()


def test_a_kept_torn_commit_on_an_accepted_damaged_log_is_written_whole(log_path):
    """Rule 6 on a log accepted with damage (never compacted): the torn commit kept is
    written again, whole and forced, so the next start still reads T3 as committed."""
    write_sample(log_path)
    lines = lines_of(log_path)
    i = line_index(lines, "end", "T1")
    lines[i] = lines[i].replace(b"committed", b"commitxed")
    log_path.write_bytes(b"".join(lines) + b"2026-11-25T13:01:02.999+00:00 commit T3 {} cr")
    for start in ("first", "second"):
        log = RecoveryLog(log_path, accept_damage=True)
        assert log.in_flight["T3"]["decision"] == "commit", start
        assert "T3" not in log.in_doubt, start
        log.close()


def test_a_torn_commit_more_than_one_transaction_may_be_is_damage(log_path):
    """Rule 6: a torn commit whose txid is cut short may be the commit of any transaction
    in flight whose id starts so: which one cannot be told, so the log refuses to open
    and changes nothing; accepted, every candidate is kept in doubt, never presumed
    aborted, and the line stays as evidence (the next record starts a line of its own)."""
    write_sample(log_path)
    log = RecoveryLog(log_path)
    log.begin("T30", INFO)
    log.close()
    with open(log_path, "ab") as f:
        f.write(b"2026-11-25T13:01:02.999+00:00 commit T3")
    before = log_path.read_bytes()

    with pytest.raises(LogDamaged, match="last record is cut short"):
        RecoveryLog(log_path)
    assert log_path.read_bytes() == before

    log = RecoveryLog(log_path, accept_damage=True)
    assert {"T3", "T30"} <= log.in_doubt and log.outcome("T3") is None
    assert not log.hides_request_ids()          # a commit holds no request id
    log.begin("T4", INFO)
    log.close()
    again = RecoveryLog(log_path, accept_damage=True)
    assert {"T3", "T30"} <= again.in_doubt and "T4" in again.in_flight
    again.close()


def test_a_last_record_missing_only_its_end_of_line_is_kept(log_path):
    """Rule 6: a last line whose checksum and grammar are good lacks only its end of
    line: it is a whole record and is kept (it was cut as torn: a forced commit that a
    branch had already applied was then presumed aborted). Keeping it is safe: a
    commit is written only after every yes vote."""
    write_sample(log_path)
    log = RecoveryLog(log_path)
    log.commit("T3")
    log.close()
    log_path.write_bytes(log_path.read_bytes().rstrip(b"\n"))

    log = RecoveryLog(log_path)
    assert log.torn == 0 and not log.damage
    assert log.in_flight["T3"]["decision"] == "commit"
    log.begin("T4", INFO)
    log.close()
    again = RecoveryLog(log_path)
    assert again.in_flight["T3"]["decision"] == "commit" and "T4" in again.in_flight
    again.close()


def test_a_torn_config_keeps_its_branch_in_doubt_and_unchanged(log_path):
    """Rule 6 and 8: a torn last line that reads as a branch's config may have been
    forced and acted on (a replica dropped from the in-sync set, writes acknowledged
    without it). Falling back to the config before it could promote a replica that
    misses those writes: the log refuses to open; accepted, the branch is in doubt and
    the configuration manager refuses every change to it (no failover) in one sentence,
    at this start and the next (the line, ended, then read as damage that may be any
    record). ping() names it among the configurations in doubt, not the transactions.
    """
    from bank.config_manager import ConfigManager
    from bank.errors import BankError, FaultCode
    log = RecoveryLog(log_path)
    log.config("Mumbai", {"primary": "http://p", "in_sync": ["http://r"], "epoch": 1,
                          "version": 2})
    log.close()
    with open(log_path, "ab") as f:
        f.write(b'2026-11-25T13:01:02.999+00:00 config Mum')      # torn in the name

    with pytest.raises(LogDamaged):
        RecoveryLog(log_path)
    for start in ("first", "second"):        # the next start decides the same way
        log = RecoveryLog(log_path, accept_damage=True)
        assert "Mumbai" in log.in_doubt, start
        assert log.describe()["configs_in_doubt"] == ["Mumbai"]      # named as a branch,
        assert "Mumbai" not in log.describe()["in_doubt"]            # not as a transaction
        # First a torn config (only Mumbai's); then the line, ended, is damage that may
        # be any record: it may hide a request id too.
        assert log.hides_request_ids() == (start == "second"), start
        manager = ConfigManager(log, links={})
        with pytest.raises(BankError) as refused:
            manager.install("Mumbai", "http://r", 2)
        assert refused.value.code == FaultCode.UNAVAILABLE
        assert "Mumbai's configuration" in refused.value.message
        log.close()


def test_a_torn_first_config_of_a_branch_is_cut(log_path):
    """Rule 6: a torn config of a branch never configured before can only have recorded
    the first primary that asked (M1), which asks again: it is cut like any torn tail,
    and no branch (nor a cut-short name) is put in doubt."""
    write_sample(log_path)
    with open(log_path, "ab") as f:
        f.write(b'2026-11-25T13:01:02.999+00:00 config Mumb')
    log = RecoveryLog(log_path)
    assert log.torn == 1 and not log.damage and not log.in_doubt and log.configs == {}
    log.close()


def test_a_torn_begin_under_presumed_commit_is_kept_or_damage(log_path):
    """Rule 6 with C11: under presumed commit a begin is forced, and a txid with no
    record is presumed committed. Cutting a torn begin could presume a transfer with a
    no vote committed (damage after its fsync looks like a crash mid-write). With its
    whole txid legible it is kept: no decision follows it, so recovery aborts it (C13),
    right either way; with its txid cut short it is damage (accepted: every unknown
    txid in doubt). Under presumed abort a torn begin is cut (losing a begin is safe)."""
    def pc_log(path, tail):
        log = RecoveryLog(path)
        log.begin("T1", {"branches": ["Mumbai"], "presumption": "commit"}, forced=True)
        log.commit("T1")
        log.close()
        with open(path, "ab") as f:
            f.write(b"2026-11-25T13:01:02.999+00:00 begin  " + tail)

    pc_log(log_path, b'T2 {"amount": "1')
    log = RecoveryLog(log_path)
    assert log.in_flight["T2"] == {"info": {"presumption": "commit"}, "decision": None}
    assert log.describe()["torn_kept"] == ["begin T2"] and not log.damage
    log.close()

    torn_late = log_path.with_name("late.log")      # torn after its branches: they are
    pc_log(torn_late, b'T2 {"amount": "1.00", "began": "x", "branches": ["Delhi", "Mumbai"], '
                      b'"dst": "Del')                # kept, so recovery tells them (C13)
    log = RecoveryLog(torn_late)
    assert log.in_flight["T2"]["info"] == {"presumption": "commit",
                                           "branches": ["Delhi", "Mumbai"]}
    log.close()

    cut = log_path.with_name("cut.log")
    pc_log(cut, b"T")
    with pytest.raises(LogDamaged):
        RecoveryLog(cut)
    log = RecoveryLog(cut, accept_damage=True)
    assert log.in_doubt_about("T2")
    log.close()

    first = log_path.with_name("first.log")           # no transaction yet: the
    first.write_bytes(b"2026-11-25T13:01:02.999+00:00 begin  T")   # coordinator says
    with pytest.raises(LogDamaged):
        RecoveryLog(first, presumed_commit=True)

    plain = log_path.with_name("plain.log")
    log = RecoveryLog(plain)
    log.begin("T1", INFO)
    log.close()
    with open(plain, "ab") as f:
        f.write(b'2026-11-25T13:01:02.999+00:00 begin  T2 {"amount": "1')
    log = RecoveryLog(plain)
    assert log.torn == 1 and not log.damage
    log.close()


def test_accepted_damage_keeps_in_doubt_only_what_it_may_hide(log_path):
    """Rule 6 on an accepted damaged log: a torn commit whose txid is cut short keeps in
    doubt only the transactions it may be (their ids start so), not an unrelated one in
    flight (every undecided transaction was kept in doubt: a power cut blocked them
    all). A torn record kept and written again whole is not damage at the next start,
    and a begin there is forced, so a txid the log does not know after a crash is one
    the damage may hide, never one begun since."""
    log = RecoveryLog(log_path)
    for txid in ("A1", "A2", "B1"):
        log.begin(txid, INFO)
    log.close()
    with open(log_path, "ab") as f:
        f.write(b"2026-11-25T13:01:02.999+00:00 commit A")
    log = RecoveryLog(log_path, accept_damage=True)
    assert {"A1", "A2"} <= log.in_doubt and "B1" not in log.in_doubt
    before = log.fsyncs
    log.begin("C1", INFO)
    assert log.fsyncs == before + 1                    # forced on a damaged log
    log.close()


def test_a_kept_record_written_again_is_not_damage_at_the_next_start(log_path):
    """Rule 6: on an accepted damaged log a kept torn commit is written again whole,
    right after the torn line; the next start reads that pair as one record, so it adds
    no damaged line and puts nothing more in doubt (an undecided U begun before it was)."""
    write_sample(log_path)
    lines = lines_of(log_path)
    i = line_index(lines, "end", "T1")
    lines[i] = lines[i].replace(b"committed", b"commitxed")         # damage, elsewhere
    log_path.write_bytes(b"".join(lines))
    log = RecoveryLog(log_path, accept_damage=True)
    log.begin("U", INFO)
    log.begin("T4", INFO)
    log.close()
    with open(log_path, "ab") as f:
        f.write(b"2026-11-25T13:01:02.999+00:00 commit T4 {} c")
    first = RecoveryLog(log_path, accept_damage=True)
    assert first.in_flight["T4"]["decision"] == "commit" and "U" not in first.in_doubt
    first.close()
    second = RecoveryLog(log_path, accept_damage=True)
    assert len(second.damage) == 1 and "U" not in second.in_doubt
    assert second.in_flight["T4"]["decision"] == "commit"
    second.close()


def test_a_torn_done_line_is_damage(log_path):
    """Rule 6: a `done` line is written only by compaction, into a file on disk before it
    replaces the log, so no crash tears one: a torn one is damage (cut, the request id
    it held was run a second time). Accepted, request ids count as hidden."""
    write_sample(log_path)
    RecoveryLog(log_path).close()                      # compaction: T1 becomes a done line
    data = log_path.read_bytes()
    done = next(l for l in data.splitlines(keepends=True) if b" done " in l)
    log_path.write_bytes(data.replace(done, b"") + done[:len(done) - 20])
    with pytest.raises(LogDamaged):
        RecoveryLog(log_path)
    log = RecoveryLog(log_path, accept_damage=True)
    assert log.hides_request_ids()
    log.close()


def test_a_log_saved_with_windows_line_endings_says_so(log_path):
    """Rule 6: a log an editor saved with \\r\\n line endings is damage on every line (the
    checksum covers the line without its \\r), and the refusal says what happened, so a
    student on Windows knows what to undo."""
    write_sample(log_path)
    log_path.write_bytes(log_path.read_bytes().replace(b"\n", b"\r\n"))
    with pytest.raises(LogDamaged, match="Windows line endings"):
        RecoveryLog(log_path)


# ---- damage that looks like a crash's, found by a nemesis (each lost a commit) ----------

def _commits_of(log_path, *txids) -> list:
    """Begin each txid and commit it, in order, through the log itself."""
    log = RecoveryLog(log_path)
    for txid in txids:
        log.begin(txid, INFO)
    for txid in txids:
        log.commit(txid)
    log.close()
    return lines_of(log_path)


def test_a_commit_line_whose_txid_now_names_the_next_line_is_damage(log_path):
    """Rule 6: a bad line is excused as "a kept torn record written again" only if it is
    a strict beginning of the record after it. A whole commit line of T01 whose txid was
    changed to T02 (the next line's, one character off, as txids that count up are) is
    damage: the coordinator refuses to start, instead of presuming T01 aborted."""
    lines = _commits_of(log_path, "T01", "T02")
    i = line_index(lines, "commit", "T01")
    lines[i] = lines[i].replace(b"T01", b"T02")
    log_path.write_bytes(b"".join(lines))
    with pytest.raises(LogDamaged, match=f"line {i + 1}: its checksum does not match"):
        RecoveryLog(log_path)
    accepted = RecoveryLog(log_path, accept_damage=True)
    assert "T01" in accepted.in_doubt and accepted.outcome("T01") != "aborted"
    accepted.close()


def test_a_zero_byte_in_place_of_an_end_of_line_is_damage_not_a_torn_tail(log_path):
    """Rule 6: a last line with a zero byte is torn only if it holds no whole record. A
    zero byte in place of the end of line between the last two commits (each written
    whole, and fsynced, before anyone heard of it) is damage: the log is not opened, and
    accepted, both commits stay in doubt or committed, never presumed aborted."""
    lines = _commits_of(log_path, "T01", "T02")
    i = line_index(lines, "commit", "T01")
    assert i == len(lines) - 2
    lines[i] = lines[i][:-1] + b"\0"
    log_path.write_bytes(b"".join(lines))
    with pytest.raises(LogDamaged):
        RecoveryLog(log_path)
    accepted = RecoveryLog(log_path, accept_damage=True)
    for txid in ("T01", "T02"):
        assert txid in accepted.in_doubt or accepted.in_flight[txid]["decision"] == "commit"
    accepted.close()


def test_an_accepted_line_that_swallowed_the_next_keeps_its_decision_in_doubt(log_path):
    """Rule 6 accepted: an end of line damaged into a space joins a begin and the commit
    after it into one bad line. Its kind is read as unknown (it holds two records), so
    the commit it may hide keeps its transaction in doubt, never presumed aborted."""
    log = RecoveryLog(log_path)
    log.begin("T01", INFO)
    log.begin("T02", INFO)
    log.commit("T01")
    log.close()
    lines = lines_of(log_path)
    i = line_index(lines, "begin", "T02")
    assert lines[i + 1].split()[1:3] == [b"commit", b"T01"]
    lines[i] = lines[i][:-1] + b" "
    log_path.write_bytes(b"".join(lines))
    accepted = RecoveryLog(log_path, accept_damage=True)
    assert "T01" in accepted.in_doubt and accepted.outcome("T01") != "aborted"
    accepted.close()


def test_zeros_inside_a_last_line_that_kept_its_start_and_end_are_damage(log_path):
    """Rule 6: a disk loses whole sectors, so a crash's zeros run from a sector's start
    (or the line's) to a sector's end (or the file's). A zero byte inside the kind
    word of a whole last commit is damage, not a tail to cut (it lost that commit);
    the same line zeroed from its start to the end of the file is a torn tail, cut."""
    lines = _commits_of(log_path, "T01")
    last = lines[-1]
    at = last.index(b"commit") + 3
    log_path.write_bytes(b"".join(lines[:-1]) + last[:at] + b"\0" + last[at + 1:])
    with pytest.raises(LogDamaged):
        RecoveryLog(log_path)
    log_path.write_bytes(b"".join(lines[:-1]) + b"\0" * len(last))
    cut = RecoveryLog(log_path)
    assert cut.torn == 1 and cut.in_flight["T01"]["decision"] is None
    cut.close()


def test_a_crash_that_lost_a_middle_sector_of_unforced_records_is_cut(log_path):
    """Rule 6: begins are not forced, so two can be on their way when the power goes; a
    sector lost between them leaves one line, the first's head, zeros on whole sectors
    and the second's tail. That is a crash (nothing in it was acknowledged), cut."""
    log = RecoveryLog(log_path)
    log.begin("T01", INFO)
    log.close()
    size = log_path.stat().st_size
    log = RecoveryLog(log_path)
    log.begin("T05", dict(INFO, note="x" * 600))
    log.begin("T06", dict(INFO, note="y" * 600))
    log.close()
    data = bytearray(log_path.read_bytes())
    newline = data.index(b"\n", size)                       # T05's end of line
    first = newline // 512 * 512                            # the sector holding it
    assert size < first and first + 512 < len(data) - 20
    data[first:first + 512] = bytes(512)
    log_path.write_bytes(bytes(data))
    log = RecoveryLog(log_path)
    assert not log.damage and log.torn >= 1 and "T01" in log.in_flight
    assert "T05" not in log.in_flight and "T06" not in log.in_flight
    log.close()


def test_a_torn_commit_line_longer_than_its_commit_is_damage(log_path):
    """Rule 6: a torn line kept as a commit is at most one commit long. Zeros from inside
    T01's commit to the end of the file, over T02's forced commit (on sector boundaries,
    as a crash's would be), read as "T01's commit, torn": keeping it and cutting the rest
    would lose T02's commit, which was acknowledged. It is damage: the log is not opened,
    and accepted, T02 is never presumed aborted."""
    log = RecoveryLog(log_path)
    log.begin("T01", INFO)
    log.begin("T02", INFO)
    log.close()
    commit_length = len(RecoveryLog._line("commit", "T01", {}))
    pad_to_sector(log_path, commit_length - 6)              # zeros from inside its crc
    zeros_from = log_path.stat().st_size + commit_length - 6
    log = RecoveryLog(log_path)
    log.commit("T01")
    log.commit("T02")
    log.close()
    data = log_path.read_bytes()
    assert data[zeros_from - commit_length + 6:].startswith(b"20") and zeros_from % 512 == 0
    log_path.write_bytes(data[:zeros_from] + bytes(len(data) - zeros_from))
    with pytest.raises(LogDamaged):
        RecoveryLog(log_path)
    accepted = RecoveryLog(log_path, accept_damage=True)
    assert "T02" in accepted.in_doubt or accepted.in_flight["T02"]["decision"] == "commit"
    accepted.close()
