"""The coordinator in one process, against stand-in branches of the test's choosing.

Rules checked (bank/twopc.py, bank/twopc_rounds.py, bank/batching.py):
  * D2 with H3: a round lets every line go when taking an answer in fails;
  * a retried request id never reports a committed transfer as aborted, however many
    transfers ran since (issue 10);
  * memory stays flat behind a stuck transaction, and the retry loop looks only at the
    open ones (issue 13); ending a transaction never waits for the driver's lock;
  * a transfer whose log compaction fails is committed and not left open (Rule 4);
  * D1: no view shows a commit before its record is on disk, nor ever if the disk
    refuses it (C3);
  * B6: a clean stop sends the decisions held for company;
  * the core's Prepare carries (account, paise) ops; text money only on the wire;
  * a forced record whose fsync fails, or a commit whose half line cannot be cut off
    again, stops the coordinator before any decision is told (Rules 6, 7 of the log);
  * a missing acknowledgement is narrated once, not at every retry (C6).

The stand-ins are real XML-RPC servers (the kit's rpc.Server) on ports from the OS,
answering prepare, commit, abort and batch as each test says; the coordinator is a
coordinator_service.Coordinator in this process, with its real recovery log in
tmp_path. Waiting is polling with a deadline.
"""

import pathlib
import sys
import threading

import pytest

KIT = pathlib.Path(__file__).resolve().parent.parent
if str(KIT) not in sys.path:
    sys.path.insert(0, str(KIT))

from bank import coordinator_service as coordinator_module   # noqa: E402
from bank import rpc                                    # noqa: E402
from bank.batching import BatchingLink                  # noqa: E402
from bank.twopc_rounds import Rounds                    # noqa: E402
from bank import twopc_memory                           # noqa: E402
from bank import recovery_log, storage                 # noqa: E402
from bank.errors import BankError, FaultCode      # noqa: E402
from polling import wait_for                  # noqa: E402

SRC, DST = "Mumbai/1001", "Delhi/1002"


class StandInBranch:
    """A stand-in branch on a real XML-RPC server (the kit's own, rpc.Server, on a port
    from the OS): prepare, commit and abort are answered by answer(method, txid); a
    batch item by the same. Lets a test drive an in-process coordinator's 2PC with
    answers of its choosing, over the same wire as a real branch."""

    PUBLIC_METHODS = ("prepare", "commit", "abort", "batch")

    def __init__(self, name, answer):
        self.name, self.answer = name, answer
        self.server = rpc.Server(self, "127.0.0.1", 0)
        threading.Thread(target=self.server.serve_forever, args=(0.1,), daemon=True).start()
        self.url = self.server.url

    def prepare(self, txid, coordinator, ops, participants=None):
        return self.answer("prepare", txid)

    def commit(self, txid):
        return self.answer("commit", txid)

    def abort(self, txid):
        return self.answer("abort", txid)

    def batch(self, items):
        slots = []
        for method, args in items:
            try:
                slots.append({"result": self.answer(method, args[0])})
            except BankError as exc:
                slots.append({"fault": int(exc.code), "message": exc.message})
        return slots

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def stand_ins():
    """stand_ins(answer_for_mumbai, answer_for_delhi) -> {name: url}; closed after."""
    made = []

    def start(mumbai, delhi):
        made.extend([StandInBranch("Mumbai", mumbai), StandInBranch("Delhi", delhi)])
        return {branch.name: branch.url for branch in made[-2:]}
    yield start
    for branch in made:
        branch.close()


def yes_and_ack(method, txid):
    """A branch that votes yes to every prepare and acknowledges every decision."""
    return {"vote": "yes", "reason": ""} if method == "prepare" else {"txid": txid}


@pytest.mark.parametrize("failure", [ValueError, KeyboardInterrupt])
def test_a_round_lets_every_line_go_when_taking_an_answer_in_fails(stand_ins, failure):
    """D2 with H3: a round's thread reads the answers of the messages it sent now; if
    taking one in fails, the others are still read (ValueError: raised once all are
    in) or abandoned (KeyboardInterrupt: the thread stops at once). Either way every
    line sent on is let go, so no later message to that branch waits for ever."""
    urls = stand_ins(yes_and_ack, yes_and_ack)
    lines = {name: BatchingLink(coordinator_module.BranchLink(name, url, None))
             for name, url in urls.items()}
    out = [(line.send_or_post("prepare", ("t1", "http://127.0.0.1:1", []), None), name, {})
           for name, line in lines.items()]
    taken = []

    def take(txn, send, asked, answer, exc):
        taken.append(send)
        if len(taken) == 1:
            raise failure("taking this answer in failed")
    with pytest.raises(failure):
        Rounds._take_answers(None, out, take)
    assert len(taken) == (2 if failure is ValueError else 1)
    assert not any(line._in_flight for line in lines.values())
    for line in lines.values():                     # the lines carry messages again
        assert line.call("commit", "t1") == {"txid": "t1"}


def test_request_id_retry_never_reports_a_committed_transfer_as_aborted(tmp_path,
                                                                        monkeypatch,
                                                                        stand_ins):
    """A client is never told 'aborted' for a transfer that committed: retrying an old
    request id returns 'committed' with the first txid, or refuses (outcome no longer
    known), however many transfers ran since; it never moves money a second time.

    In-process coordinator with stand-in branches that always vote yes; KEEP_TXNS and
    KEEP_FINISHED are shrunk to 3 so that 'many transfers later' takes 5 transfers.
    """
    monkeypatch.setattr(twopc_memory, "KEEP_TXNS", 3)
    monkeypatch.setattr(recovery_log, "KEEP_FINISHED", 3)
    prepares = []

    def always_yes(method, txid):
        if method == "prepare":
            prepares.append(txid)
        return yes_and_ack(method, txid)

    coord = coordinator_module.Coordinator("C1", stand_ins(always_yes, always_yes),
                                           tmp_path / "recovery.log")
    try:
        first = coord.transfer(SRC, DST, "10", "old-request")
        assert first["outcome"] == "committed"
        for i in range(5):
            assert coord.transfer(SRC, DST, "1", f"later-{i}")["outcome"] == "committed"
        prepared_before_retry = len(prepares)
        try:
            retry = coord.transfer(SRC, DST, "10", "old-request")
        except BankError as exc:                       # "no longer known" is honest
            assert exc.code != FaultCode.INTERNAL, exc
        else:
            assert retry["txid"] == first["txid"]
            assert retry["outcome"] == "committed"     # before b49de93: "aborted"
        assert len(prepares) == prepared_before_retry  # no second transfer was started
    finally:
        coord.close()


def test_a_stuck_transaction_does_not_keep_every_later_one_in_memory(tmp_path, monkeypatch,
                                                                     stand_ins):
    """Memory stays flat with uptime (issue 13): the coordinator keeps at most KEEP_TXNS
    finished transactions, even behind an unfinished one (a commit never acknowledged
    by a branch that is down), which it keeps, with its work still to do. The retry
    loop looks only at the open transactions: the stuck one, until it is acknowledged.

    In-process coordinator with stand-in branches, as above; KEEP_TXNS shrunk to 3.
    """
    monkeypatch.setattr(twopc_memory, "KEEP_TXNS", 3)
    stuck, delhi_back = [], []

    def delhi_never_acks_the_first(method, txid):
        if method == "prepare":
            return {"vote": "yes", "reason": ""}
        if not stuck:
            stuck.append(txid)
        if txid == stuck[0] and not delhi_back:
            raise BankError(FaultCode.UNAVAILABLE, "Delhi cannot be reached (test).")
        return {"txid": txid}

    coord = coordinator_module.Coordinator(
        "C1", stand_ins(yes_and_ack, delhi_never_acks_the_first), tmp_path / "recovery.log")
    try:
        for i in range(20):
            assert coord.transfer(SRC, DST, "1")["outcome"] == "committed"
        kept = coord.twopc.txns
        assert stuck[0] in kept                        # unfinished: kept, still retried
        assert len(kept) <= 3 + 1, len(kept)           # the 19 finished behind it: 3 kept
        wait_for(lambda: list(coord.twopc.open_txns) == stuck, 10,   # a commit may ride
                 "the stuck transaction to be the only open one")   # a line: not awaited
        delhi_back.append(True)
        assert coord.twopc.recover()["unfinished"] == []   # (or the retry loop's pass)
        assert coord.twopc.open_txns == {} and kept[stuck[0]].ended
    finally:
        coord.close()



def test_ending_a_transaction_never_waits_for_the_drivers_lock(tmp_path, stand_ins):
    """No deadlock between a transaction ending and a view reading it: a transaction
    ends (its end record, or C12) while its own lock is held, and transaction(txid)
    (TxnViews.detail) holds the driver's lock while it waits for that transaction's
    lock; so ending one must take neither. (It took the driver's lock for a few commits:
    with a window open, the coordinator hung after 20-80 transfers.)

    In-process coordinator with stand-in branches; this test holds the transaction's
    lock as _step does, lets a view block on it, then ends the transaction."""
    coord = coordinator_module.Coordinator("C1", stand_ins(yes_and_ack, yes_and_ack),
                                           tmp_path / "recovery.log")
    try:
        driver = coord.twopc
        txn = driver.txns[coord.transfer(SRC, DST, "1")["txid"]]
        reader = threading.Thread(target=driver.detail, args=(txn.txid,), daemon=True)
        with txn.lock:                                     # as _step holds it
            reader.start()
            wait_for(driver._lock.locked, 5, "the view to hold the driver's lock")
            ending = threading.Thread(target=driver._ended, args=(txn,), daemon=True)
            ending.start()
            ending.join(5)
            assert not ending.is_alive(), "ending a transaction waited for the view"
        reader.join(5)
        assert not reader.is_alive()
    finally:
        coord.close()


def test_a_transfer_whose_log_compaction_fails_is_committed_and_not_left_open(
        tmp_path, monkeypatch, stand_ins):
    """The end record is written before the log compacts itself; if the compaction then
    fails (a full disk), the transfer is still committed and its client is told so (it
    heard the disk's error, a few commits ago), and it leaves the open transactions, so
    the retry loop never looks at it again (it stayed open for ever)."""
    monkeypatch.setattr(recovery_log, "COMPACT_AFTER", 0)          # compact at every end
    coord = coordinator_module.Coordinator("C1", stand_ins(yes_and_ack, yes_and_ack),
                                           tmp_path / "recovery.log")
    try:
        def disk_full():
            raise OSError(28, "No space left on device")
        monkeypatch.setattr(coord.twopc.log, "compact", disk_full)
        assert coord.transfer(SRC, DST, "1")["outcome"] == "committed"
        (txn,) = coord.twopc.txns.values()
        assert txn.ended and coord.twopc.open_txns == {}
        assert coord.twopc.recover() == {"resent": 0, "unfinished": []}
    finally:
        monkeypatch.undo()
        coord.close()


def test_no_view_shows_a_commit_before_its_record_is_on_disk(tmp_path, monkeypatch,
                                                            stand_ins):
    """D1: a decision is visible only once it is durable. While the commit record is
    being forced, transactions() still shows the transfer as collecting votes (the
    core has moved on; the disk has not; transaction(txid) waits for the write, as it
    reads the votes under the transaction's lock). Here the disk then
    refuses the record (full: C3), so the transfer aborts, and no view ever said
    "committed" (before the fix both did, for as long as the write took)."""
    coord = coordinator_module.Coordinator("C1", stand_ins(yes_and_ack, yes_and_ack),
                                           tmp_path / "recovery.log")
    forcing, refuse = threading.Event(), threading.Event()

    def slow_full_disk(txid):
        forcing.set()
        refuse.wait(10)
        raise recovery_log.LogWriteError("No space left on device")
    monkeypatch.setattr(coord.twopc.log, "commit", slow_full_disk)
    answers = []
    try:
        client = threading.Thread(target=lambda: answers.append(
            coord.transfer(SRC, DST, "1")), daemon=True)
        client.start()
        assert forcing.wait(10), "the commit record was never written"
        (row,) = coord.twopc.summaries()
        assert (row["state"], row["outcome"]) == ("preparing", "")
        refuse.set()
        client.join(10)
        assert answers and answers[0]["outcome"] == "aborted"
        assert coord.twopc.detail(row["txid"])["outcome"] == "aborted"
    finally:
        refuse.set()
        monkeypatch.undo()
        coord.close()


def test_the_cores_prepare_carries_money_as_paise_and_the_wire_as_text(tmp_path, stand_ins):
    """The core's vocabulary (bank/core/messages.py): a Prepare's ops are ((account,
    paise), ...) on the coordinator as in the explorer and the participant, so the
    message is a value (hashable); only the wire carries text money, as the branch's
    prepare(ops) documents: [{"account": "1001", "delta": "-1.00"}]."""
    seen = []

    class Recording(StandInBranch):
        def prepare(self, txid, coordinator, ops, participants=None):
            seen.append(ops)
            return super().prepare(txid, coordinator, ops, participants)
    made = [Recording("Mumbai", yes_and_ack), Recording("Delhi", yes_and_ack)]
    coord = coordinator_module.Coordinator("C1", {b.name: b.url for b in made},
                                           tmp_path / "recovery.log")
    try:
        txid = coord.transfer(SRC, DST, "1")["txid"]
        core = coord.twopc.txns[txid].core
        assert core.plan == {"Mumbai": (("1001", -100),), "Delhi": (("1002", 100),)}
        prepares = [e.message for e in type(core)(txid, core.plan).begin()
                    if hasattr(e, "message")]
        assert all(hash(p) for p in prepares)
        assert sorted(seen, key=str) == [[{"account": "1001", "delta": "-1.00"}],
                                         [{"account": "1002", "delta": "+1.00"}]]
    finally:
        coord.close()
        for branch in made:
            branch.close()


def test_a_missing_acknowledgement_is_logged_once_not_at_every_retry(tmp_path, stand_ins,
                                                                     caplog):
    """The coordinator narrates a decision a branch has not acknowledged (C6) once per
    transaction and branch, and once more when every participant has it: not at every
    retry, which would add a line a second for as long as the branch is down."""
    acking = threading.Event()

    def late_delhi(method, txid):
        if method == "commit" and not acking.is_set():
            raise BankError(FaultCode.UNAVAILABLE, "Delhi is busy")
        return yes_and_ack(method, txid)
    coord = coordinator_module.Coordinator("C1", stand_ins(yes_and_ack, late_delhi),
                                           tmp_path / "recovery.log")
    try:
        with caplog.at_level("INFO", logger="coordinator"):
            txid = coord.transfer(SRC, DST, "1")["txid"]
            for _ in range(3):
                coord.twopc.recover()                # three more rounds of retries
            acking.set()
            assert coord.twopc.recover()["unfinished"] == []
        said = [r.getMessage() for r in caplog.records if txid in r.getMessage()]
        assert len([m for m in said if "was not acknowledged" in m]) == 1, said
        assert any("every participant has acknowledged the decision (committed)" in m
                   for m in said), said
    finally:
        coord.close()


class Stopped(Exception):
    """Stands in for the process ending (faults.crash_now is os._exit)."""


@pytest.mark.parametrize("failing", ["abort", "commit"])
def test_a_forced_record_whose_fsync_fails_stops_the_coordinator(tmp_path, monkeypatch,
                                                                stand_ins, failing):
    """Rule 7 of the log with D1: when the fsync of a forced record (presumed commit's
    abort, any commit) fails, what is on disk is unknown, so nobody may be told
    anything: the coordinator stops (recovery decides from the log) before any decision
    is sent or shown. (A failed forced abort left the transaction half decided: shown
    preparing, never retried.)"""
    def no_vote(method, txid):
        return {"vote": "no", "reason": "no"} if method == "prepare" else {"txid": txid}
    decided = []

    def recording(answer):
        def answer_and_record(method, txid):
            if method in ("commit", "abort"):
                decided.append(method)
            return answer(method, txid)
        return answer_and_record
    second = no_vote if failing == "abort" else yes_and_ack
    coord = coordinator_module.Coordinator(
        "C1", stand_ins(recording(yes_and_ack), recording(second)),
        tmp_path / "recovery.log", presumption="commit")
    real_fsync, calls = storage.fsync, []

    def fsync(fd):                          # 1: the forced begin (C11); 2: the decision
        calls.append(fd)
        if len(calls) == 2:
            raise OSError(5, "Input/output error")
        return real_fsync(fd)

    def stop(point):
        raise Stopped(point)
    monkeypatch.setattr(storage, "fsync", fsync)
    monkeypatch.setattr(coord.twopc.faults, "crash_now", stop)
    try:
        with pytest.raises(Stopped):
            coord.transfer(SRC, DST, "1")
        assert decided == []
        (row,) = coord.twopc.summaries()
        assert row["outcome"] == "", row
    finally:
        monkeypatch.undo()
        coord.close()


def test_a_commit_whose_half_line_cannot_be_cut_stops_the_coordinator(tmp_path, monkeypatch,
                                                                      stand_ins):
    """Rule 6 and 7 of the log: a commit record that could not be written whole is cut
    off again, and the transfer aborts (C3). If the cut fails too, the half line stays,
    and a restart keeps a torn commit as that commit: so no abort may be told now. The
    coordinator stops, before any decision is sent."""
    decided = []

    def record(method, txid):
        if method in ("commit", "abort"):
            decided.append(method)
        return yes_and_ack(method, txid)
    coord = coordinator_module.Coordinator("C1", stand_ins(record, record),
                                           tmp_path / "recovery.log")
    real_write = recovery_log.write_whole

    def half_then_full_disk(raw_file, data):
        if b" commit " in data:
            real_write(raw_file, data[:len(data) // 2])
            raise OSError(28, "No space left on device")
        real_write(raw_file, data)

    def cannot_cut(fd, size):
        raise OSError(5, "Input/output error")

    def stop(point):
        raise Stopped(point)
    monkeypatch.setattr(recovery_log, "write_whole", half_then_full_disk)
    monkeypatch.setattr(recovery_log, "truncate_to", cannot_cut)
    monkeypatch.setattr(coord.twopc.faults, "crash_now", stop)
    try:
        with pytest.raises(Stopped):
            coord.transfer(SRC, DST, "1")
        assert decided == [] and coord.twopc.log.broken
    finally:
        monkeypatch.undo()
        coord.close()


def test_a_clean_stop_sends_the_decisions_held_for_company(tmp_path, stand_ins):
    """B6: with decisions held for a minute (--hold-decisions 60000), the client is
    answered at the forced decision and no commit has left yet; closing the coordinator
    (Ctrl-C) sends the held commits before the log is closed: each branch gets its
    commit, and the transaction ends, so no branch waits for a restart."""
    decided = []

    def record(method, txid):
        decided.append((method, txid))
        return yes_and_ack(method, txid)
    coord = coordinator_module.Coordinator("C1", stand_ins(record, record),
                                           tmp_path / "recovery.log", hold_decisions=60.0)
    try:
        answer = coord.transfer(SRC, DST, "1")
        assert answer["outcome"] == "committed"
        assert answer["waiting_for"] == ["Delhi", "Mumbai"]
        assert [m for m, _ in decided] == ["prepare", "prepare"]
    finally:
        coord.close()
    assert sorted(m for m, _ in decided) == ["commit", "commit", "prepare", "prepare"]
    assert coord.twopc.txns[answer["txid"]].ended
