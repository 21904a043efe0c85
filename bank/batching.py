"""Batched 2PC messages: concurrent transfers share their round trips to a branch.

Role: an optional layer between the coordinator's 2PC driver (bank/twopc.py) and a
branch. While one prepare, commit or abort is on its way to a branch, the ones that
other transfers want to send there wait (posted with a function for their answer,
B5, or with their caller's thread waiting); when it returns, they all leave together
in ONE call, ``batch([[method, args], ...])``, and each gets its own answer.
A student may skip this file: without it (coordinator.py --no-batching) every
message is its own call, and the protocol is exactly the same.

Rules:
  * B1 - a batch is only a carrier: the branch runs every item exactly as the call it
    stands for (same checks, same faults, same durable write before its answer), so
    each transaction's vote is its own.
  * B2 - one item's failure is that item's answer, never another's: a "no" vote, a
    refusal or an error comes back in its own slot. Only a failure of the whole call
    (the branch unreachable, a timeout) reaches every item, as it would have reached
    each call alone: a missing vote or a missing ack, never a "no".
  * B3 - no waiting added when the line is free: a message with nothing in flight to
    its branch leaves at once, alone (with the decisions held there, B6). Batches
    form only behind a message in flight, or around held decisions.
  * B4 - at the branch, a batch is carried out in three passes on the thread that
    received it: every item's write, one after the other in ONE held group
    (bank/group_commit.py, G5); that group's COMMIT and one push to the in-sync
    replicas; then every item's answer (its narration, its crash-after faults). So
    the items share one fsync and one push (fewer round trips AND fewer fsyncs), no
    item is answered before its write is durable, and a COMMIT that fails fails
    every item that wrote, as it would have failed each of them alone (G4).
  * B5 - a message rides a busy line: one for a branch with a message already in
    flight there is posted, with a function for its answer, instead of a thread
    waiting for its turn. It leaves in the next batch to that branch, and its answer
    reaches the 2PC driver on the thread that carries that batch (a batch of posted
    messages alone is carried by one of the line's own two carrier threads: never by
    a caller, whose own answer would wait behind it, nor by the coordinator's pool,
    whose jobs may be waiting in this very line). The driver waits for the votes it
    posted, not for the decisions: under load the client hears the outcome at the
    forced decision (twopc.py, D3). On a free line a message goes at once (B3). A
    read through the coordinator (and a deposit, a withdrawal or a local transfer)
    first waits until the messages posted before it have been carried, so it sees
    every transfer the coordinator answered.
  * B6 - a decision may wait for company (coordinator.py --hold-decisions MS; off by
    default): a commit or abort for a free line is held up to MS milliseconds and
    leaves with the next prepare, commit or abort a round sends to that branch, in one
    batch (one round trip and one fsync for all); if none comes in time it leaves
    alone. (A retry's call leaves alone; the held ones follow it, as riders.)
    Delaying phase 2 is always safe: the decision is durable before it is held (D1),
    and a crash with decisions held is a crash after the decision (recovery sends
    them, C8). The driver does not wait for a held decision (B5): the client hears
    the outcome at the forced decision, with the branches in ``waiting_for``. A read
    (or a deposit...) through the coordinator sends what is held for its branch at
    once, and a clean stop (Ctrl-C) sends it all; a killed coordinator leaves it to
    recovery. A batch holds at most MAX_BATCH messages.

Glossary:
  item     one message in a batch: [method, [args...]]; method is prepare|commit|abort
  slot     an item's answer: {"result": ...} or {"fault": code, "message": sentence}
  step     a participant call in two halves around its write (Branch.prepare_step...)
  leader   the caller whose turn it is to carry the waiting messages to the branch
  posted   a message queued with a function to call with its answer (B5), and no
           caller waiting for it
  held     a posted decision waiting on a free line for company (B6)
"""

import logging
import threading
import time

from bank.errors import BankError, FaultCode
from bank.handoff import Latch, Workers
from bank.rpc import time_arg

log = logging.getLogger("batching")

BATCHED = ("prepare", "commit", "abort")
DECISIONS = ("commit", "abort")
MAX_BATCH = 64                  # items per call at most
MAX_HOLD_MS = 60_000           # --hold-decisions at most (B6): a minute, for a lab


hold_ms_arg = time_arg(0, MAX_HOLD_MS, "milliseconds")   # argparse type: --hold-decisions


# ---- the coordinator's side: a link that batches ------------------------------------

class _Message:
    """One caller's message, waiting for its turn (to lead) or for its answer; or a
    posted one (B5), whose answer goes to `then` instead."""

    def __init__(self, method: str, args: tuple, then=None, note=None):
        self.method, self.args, self.then, self.note = method, args, then, note
        self.wake = Latch()
        self.batch = None            # set when this caller leads a batch
        self.result, self.error = None, None

    def answered(self) -> None:
        if self.then is None:
            self.wake.set()
            return
        try:
            self.then(self.result, self.error)
        except Exception:                   # noqa: BLE001 - never strand the others
            log.exception("a posted %s's answer could not be taken in", self.method)


class BatchingLink:
    """Wraps a coordinator_service.BranchLink: prepare/commit/abort may ride in a batch (B1-B6).

    Everything else (reads, pings, a branch with replicas) goes straight to the link.
    hold: seconds a decision for a free line waits for company (B6; 0: it leaves now).
    """

    def __init__(self, link, max_batch: int = MAX_BATCH, hold: float = 0.0):
        self.link, self.max_batch, self.hold = link, max_batch, hold
        # B5: this line's own carriers, never the coordinator's pool: the pool's jobs may
        # wait in this line, so its progress must not wait for them (bank/handoff.py H4)
        self.carriers = Workers(2, f"carrier-{getattr(link, 'name', '')}")
        self._lock = threading.Lock()
        self._in_flight = False          # a call to this branch is on its way
        self._waiting = []               # _Message, oldest first; on a free line: held
        self._posted = self._carried = 0   # posted messages so far, and carried (B5)
        self._carried_more = threading.Condition(self._lock)
        self._send_held_at = None        # B6: when the held decisions leave alone
        self._held_more = threading.Condition(self._lock)
        self._closed = False
        self.hold_thread = threading.Thread(target=self._send_held_in_time, daemon=True,
                                            name=f"held-{getattr(link, 'name', '')}")
        if hold:
            self.hold_thread.start()

    def __getattr__(self, name):         # url, partitioned, find_primary... of the link
        return getattr(self.link, name)

    def call(self, method: str, *args):
        if method not in BATCHED or len(self.link.urls) > 1:    # replicas: plain calls
            return self.link.call(method, *args)
        mine = _Message(method, args)
        with self._lock:
            alone = not self._in_flight
            self._in_flight = True
            if not alone:
                self._waiting.append(mine)
        if alone:                                               # B3
            try:
                return self.link.call(method, *args)
            finally:
                self._pass_the_turn()
        mine.wake.wait()
        if mine.batch is not None:                              # our turn to carry them
            self._carry(mine.batch)
        if mine.error is not None:
            raise mine.error
        return mine.result

    def send_or_post(self, method: str, args: tuple, then, note=None):
        """B3, B5 or B6: if the line is free, send the message now and return its reply
        (whose finish() reads the answer, then lets the next batch go); if a message is
        in flight to this branch, or the message is a decision to hold (B6), post it to
        ride the next batch and return None: `then(result, error)` gets its answer, on
        the thread that carries it. A message for a free line with decisions held there
        takes them along, in one batch. note(how), if given, is told how a posted
        message goes: "held" or "queued" as it is posted, "left" as its batch leaves."""
        if method not in BATCHED or len(self.link.urls) > 1:    # replicas: plain calls
            return self.link.send(method, *args)
        message = _Message(method, args, then, note)
        with self._lock:
            if self._in_flight:
                self._post(message, "queued")       # B5: it rides the next batch
                return None
            if self.hold and method in DECISIONS:
                self._post(message, "held")         # B6: held, waiting for company
                if self._send_held_at is None:
                    self._send_held_at = time.monotonic() + self.hold
                    self._held_more.notify()
                return None
            held = self._take_held(room_for=1) or []   # B6: it takes the held along
            self._in_flight = True                  # B3: or it leaves now, alone
        try:                                   # once it is answered, the next batch
            if held:
                return _TakingHeld(self, held, message)
            return self.link.send(method, *args, then=self._pass_the_turn)
        except BaseException as exc:
            self._pass_the_turn()
            self.hand_out(held, _failed(exc, len(held)))     # not sent: retried (C6)
            raise

    def _post(self, message: _Message, how: str) -> None:
        """B5, B6 (with the lock held): queue a message for the next batch to carry; its
        note is told how (before any thread can carry it, so before its answer)."""
        self._waiting.append(message)
        self._posted += 1
        if message.note is not None:
            message.note(how)

    def _take_held(self, room_for: int = 0):
        """B6 (with the lock held): the messages waiting on a free line, as the next
        batch (leaving room for `room_for` more), the line now in flight; None if the
        line is busy or nothing waits, or there is no room. A busy line needs no timer:
        whatever waits rides its next batch, handed on by _pass_the_turn."""
        self._send_held_at = None
        if self._in_flight or not self._waiting or self.max_batch <= room_for:
            return None
        self._in_flight = True
        return self._next_batch(self.max_batch - room_for)

    def _next_batch(self, most: int = None) -> list:
        """The oldest waiting messages, at most `most` (max_batch), with the lock held."""
        most = self.max_batch if most is None else most
        batch = self._waiting[:most]
        del self._waiting[:most]
        if not self._waiting:
            self._send_held_at = None
        return batch

    def _send_held_in_time(self) -> None:
        """B6, on the line's own thread: held decisions that found no company in time
        leave alone, carried like any batch of posted messages."""
        with self._lock:
            while not self._closed:
                due = self._send_held_at
                if due is None or due > time.monotonic():
                    self._held_more.wait(None if due is None else due - time.monotonic())
                    continue
                batch = self._take_held()
                if batch:
                    self.carriers.start(self._carry, batch)

    def send_held(self) -> None:
        """B6: send the decisions held on this line now (a read or a stop is coming)."""
        with self._lock:
            batch = self._take_held()
        if batch:
            self.carriers.start(self._carry, batch)

    def stop_holding(self) -> None:
        """At a stop: send what is held (B6) and end the line's hold thread; posted
        messages are still carried, and a decision leaves at once from now on."""
        with self._lock:
            self._closed, self.hold = True, 0.0
            self._held_more.notify()
        self.send_held()

    def wait_for_posted(self, timeout: float) -> None:
        """B5: return once every message posted so far has been carried (or after
        `timeout` seconds: a read is never stuck behind a branch that does not answer).
        Held decisions (B6) are sent first: a read does not wait out their hold."""
        self.send_held()
        with self._lock:
            target = self._posted
            self._carried_more.wait_for(lambda: self._carried >= target, timeout)

    def _pass_the_turn(self) -> None:
        """The call in flight returned: the oldest waiting caller carries the next batch;
        a batch of posted messages only (no caller waits for them) goes to a carrier."""
        with self._lock:
            if not self._waiting:
                self._in_flight = False
                return
            batch = self._next_batch()
        leader = next((m for m in batch if m.then is None), None)
        if leader is None:
            self.carriers.start(self._carry, batch)
            return
        leader.batch = batch
        leader.wake.set()

    def _carry(self, batch: list) -> None:
        """Send the batch as one call; let the next batch go; then hand every item its
        own slot (B2), while that next batch is on its way."""
        _leaving(batch)
        try:
            slots = self._send(batch)
        finally:
            self._pass_the_turn()
        self.hand_out(batch, slots)

    def hand_out(self, batch: list, slots: list) -> None:
        """Give every message of a carried batch its own slot (B2), and count the posted
        ones as carried (B5)."""
        for message, slot in zip(batch, slots):
            try:
                message.result = _result_of(slot)
            except BankError as exc:
                message.error = exc
            message.answered()
        posted = sum(1 for message in batch if message.then is not None)
        if posted:
            with self._lock:
                self._carried += posted
                self._carried_more.notify_all()

    def _send(self, batch: list) -> list:
        """The batch as one call (one message alone as itself): a slot per item."""
        try:
            if len(batch) == 1:
                return [{"result": self.link.call(batch[0].method, *batch[0].args)}]
            return _slots(self.link.call("batch", _items(batch)), len(batch))
        except Exception as exc:                # noqa: BLE001 - the whole call failed
            return _failed(exc, len(batch))


class _TakingHeld:
    """B6: a message sent now with the decisions held on its line, in one batch call,
    read like a reply of its own (a selector waits on it; D2): finish() hands the held
    decisions their slots and returns the message's own answer, or raises its fault."""

    def __init__(self, line: BatchingLink, held: list, message: _Message):
        self.line, self.held = line, held
        _leaving(held)
        self.reply = line.link.send("batch", _items(held + [message]),
                                    then=line._pass_the_turn)

    @property
    def deadline(self) -> float:
        return self.reply.deadline

    def fileno(self) -> int:
        return self.reply.fileno()

    def finish(self):
        """The held decisions' answers are taken in first, on this thread (for another
        transaction: its acknowledgement, perhaps its end record), then this message's
        own answer is returned (or its fault raised) for its round to take in."""
        try:
            slots = _slots(self.reply.finish(), len(self.held) + 1)
        except Exception as exc:                # noqa: BLE001 - the whole call failed
            slots = _failed(exc, len(self.held) + 1)
        self.line.hand_out(self.held, slots[:-1])
        return _result_of(slots[-1])

    def abandon(self) -> None:
        """Its reader stopped early: the held decisions are told so (not acknowledged,
        so retried later, C6), and the line is let go."""
        try:
            self.reply.abandon()
        finally:
            self.line.hand_out(self.held, _failed(BankError(
                FaultCode.UNAVAILABLE, "the answer to a batch was not read"), len(self.held)))


def _leaving(batch: list) -> None:
    """Tell the posted messages of a batch that it is leaving now (their trace time)."""
    for message in batch:
        if message.note is not None:
            try:
                message.note("left")
            except Exception:                   # noqa: BLE001 - a trace row, never the batch
                log.exception("noting that a %s left", message.method)


def _items(batch: list) -> list:
    """A batch's items as the batch call carries them: [[method, [args...]], ...]."""
    return [[m.method, list(m.args)] for m in batch]


def _slots(answer, count: int) -> list:
    """A batch call's answer, if it is what B2 promises: a slot (a dict) per item, in
    order. Anything else (another version of the kit, say) fails the whole call, so
    that no message is left without an answer or given another's."""
    if not (isinstance(answer, list) and len(answer) == count
            and all(isinstance(slot, dict) and ("result" in slot or "fault" in slot)
                    for slot in answer)):
        raise ValueError(f"{count} slots expected, got {str(answer)[:80]}")
    return answer


def _failed(exc: Exception, count: int) -> list:
    """The slots of a batch call that failed as a whole: each item alike (B2)."""
    if isinstance(exc, BankError):
        slot = {"fault": int(exc.code), "message": exc.message, "not_sent": exc.not_sent,
                "why": exc.why}
    else:                                   # a strange answer, for all
        slot = {"fault": int(FaultCode.INTERNAL),
                "message": f"a strange answer to a batch ({exc!r})"}
    return [slot] * count


def _result_of(slot: dict):
    """An item's result, or its fault raised as a BankError."""
    if "fault" in slot:
        raise BankError(_code(slot["fault"]), str(slot.get("message", "refused")),
                        not_sent=slot.get("not_sent", False), why=slot.get("why", ""))
    return slot["result"]


def _code(code) -> FaultCode:
    try:
        return FaultCode(code)
    except ValueError:
        return FaultCode.INTERNAL


def batching_links(links: dict, enabled: bool = True, hold: float = 0.0) -> dict:
    """The links the 2PC driver uses: batching ones, or the plain links (--no-batching);
    hold: seconds a decision waits for company (B6, --hold-decisions)."""
    return {name: BatchingLink(link, hold=hold) for name, link in links.items()} \
        if enabled else links


# ---- the branch's side: carry out a batch in three passes ------------------------------

def run_step(branch, step):
    """Carry out one participant step alone (Branch.prepare_step and the like): its write,
    durable on return (G1); the push to the in-sync replicas; then its answer."""
    written = next(step)
    branch.replicas.after_write()
    return _answer(step, branch._acknowledge(written))


def _answer(step, result):
    """Resume a step after its write (the yield), with the write's result; its answer."""
    try:
        step.send(result)
    except StopIteration as done:
        return done.value
    raise AssertionError("a participant step writes once (one yield)")


class BatchRunner:
    """Carries out a batch's items as the calls they stand for (B1), in three passes (B4)."""

    def __init__(self, branch):
        self.branch = branch

    def run(self, items) -> list:
        """B4: every item's write, one after the other, in ONE held group (G5); its
        COMMIT and one push to the replicas for all; then every item's answer. Each
        slot is its own (B2), and no answer is made before its write is durable."""
        items = check_items(items)
        slots, steps, written = [None] * len(items), {}, {}
        try:
            with self.branch.ledger.one_commit():                       # G5
                for i, (method, args) in enumerate(items):              # 1. the writes
                    try:
                        steps[i] = getattr(self.branch, method + "_step")(*args)
                        written[i] = next(steps[i])
                    except StopIteration as done:                       # nothing to write
                        slots[i] = {"result": done.value}
                    except Exception as exc:        # noqa: BLE001 - its own slot (B2)
                        slots[i] = _fault_slot(method, exc)
            self.branch.replicas.after_write()                          # 2. one push
        except BankError as exc:              # the COMMIT or the push failed: all of them
            for i in written:
                slots[i] = _fault_slot(items[i][0], exc)
            return slots
        for i, value in written.items():                                # 3. the answers
            try:
                slots[i] = {"result": _answer(steps[i], self.branch._acknowledge(value))}
            except Exception as exc:                # noqa: BLE001 - its own slot (B2)
                slots[i] = _fault_slot(items[i][0], exc)
        return slots


def _fault_slot(method: str, exc: Exception) -> dict:
    """An item's failure as its slot: its own fault, never another item's (B2)."""
    if isinstance(exc, BankError):
        return {"fault": int(exc.code), "message": exc.message}
    if isinstance(exc, TypeError):
        return {"fault": int(FaultCode.BAD_INPUT),
                "message": f"{method} in a batch got the wrong number of arguments."}
    log.error("batch item %s failed", method, exc_info=exc)     # a bug: logged
    return {"fault": int(FaultCode.INTERNAL),
            "message": f"{method} failed inside the branch (see its log)."}


def check_items(items) -> list:
    """[(method, args)] from a batch, or BAD_INPUT for the whole batch (nothing done)."""
    if not isinstance(items, list) or not 1 <= len(items) <= MAX_BATCH:
        raise BankError(FaultCode.BAD_INPUT, f"A batch is a list of 1 to {MAX_BATCH} "
                        "[method, [arguments]] items.")
    checked = []
    for item in items:
        if not (isinstance(item, list) and len(item) == 2 and item[0] in BATCHED
                and isinstance(item[1], list)):
            raise BankError(FaultCode.BAD_INPUT, "Each batch item is [method, [arguments]] "
                            f"with method one of {', '.join(BATCHED)}; nothing was done.")
        checked.append((item[0], item[1]))
    return checked
