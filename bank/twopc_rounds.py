"""One round of 2PC messages: each rides a busy line, or leaves now (a mixin).

Role: the coordinator's 2PC driver (bank/twopc.py) sends each round of a transaction
(its prepares, then its decision) through Rounds._round, and takes each answer in
with its own function (_voted, _told). This file only moves the messages: whether a
message rides the next batch to a branch that already has one on its way
(bank/batching.py, B5) or leaves now; how the answers of those that left now are
read (all sent first, then each taken in as it arrives, on one thread: D2); and
when the round is over (a Countdown, bank/handoff.py H5). A student may read
twopc.py alone: with --no-batching every message simply leaves now.

Rules (twopc.py's, carried out here):
  * D2 - the sends of a round all leave before any answer is awaited, each with a
    timeout; this thread then takes in each answer (or its absence) as it arrives.
    No thread is handed a message to wait for: the branches work in parallel while
    one thread waits for all of them (a selector), so a lone transfer runs on the
    thread that received it.
  * B5 - a message for a busy line rides its next batch; its answer is taken in by
    the thread that carries that batch, and the round ends once the last one is in.
    A read through the coordinator first waits for the messages riding to its
    branch (settle), so it sees every transfer already answered.

Glossary:
  round    the messages one step of the protocol sends: the prepares, or the decision
  take     the driver's function that feeds an answer, or its absence, to the core
  rider    a message posted to ride a busy line
  reply    a message that left now and whose answer is awaited (finish() reads it)
"""

import selectors
import time

from bank.core.messages import Prepare, Send
from bank.handoff import Countdown
from bank.money import format_delta
from bank.twopc_txn import COORDINATOR, Txn

SETTLE_WAIT = 5.0            # seconds a read waits at most for messages riding (B5)
STOP_WAIT = 2.0              # seconds a stop waits at most for them, in all


class Rounds:
    """Mixed into TwoPhaseCommit (which has links): sends one round."""

    def _round(self, txn: Txn, sends: list, take, all_taken) -> None:
        """Send one round of messages (D2). One for a branch that already has a message
        on its way rides the next batch there (bank/batching.py, B5); the others leave
        now, all of them, and this thread then takes in their answers as they arrive.
        take() feeds each answer, or its absence, to the core; once every message of
        the round has been taken in (riders too, on the threads that carry them),
        all_taken() is called."""
        count, out = Countdown(all_taken), []
        try:
            for send in sends:
                asked = self._note_sent(txn, send)
                try:
                    reply = self._send(txn, send, asked, take, count)
                except Exception as exc:        # noqa: BLE001 - every failure is a silence
                    take(txn, send, asked, None, exc)
                    continue
                if reply is not None:
                    out.append((reply, send, asked))
        finally:
            try:
                self._take_answers(txn, out, take)    # even after an error: every line
            finally:                                  # sent on is let go (H3)
                count.done()               # this thread's own share; riders may be out

    def _send(self, txn: Txn, send: Send, asked: dict, take, count):
        """Send the message now (its reply, to finish), or post it to ride a busy line
        (B5) or to wait on a free one for company (a decision held, B6): None, and its
        answer is taken in by the thread that carries it."""
        link, method, args = self.links[send.to], method_of(send), self._arguments(txn, send)
        if not hasattr(link, "send_or_post"):                    # --no-batching
            return link.send(method, *args)

        def answered(answer, exc):                               # on the carrier's thread
            try:
                take(txn, send, asked, answer, exc)
            finally:
                count.done()
        count.add()
        try:
            reply = link.send_or_post(method, args, answered,
                                      lambda how: txn.rides(asked, how))     # B5, B6
        except BaseException:
            count.done()
            raise
        if reply is not None:
            count.done()                                         # it left now
        return reply

    @staticmethod
    def _take_answers(txn: Txn, out: list, take) -> None:
        """D2: wait for the answers of the messages sent now, and take in each as soon
        as it arrives; one not answered by its deadline is a silence. Every answer is
        read before an error in taking one in is raised (H3); if this thread stops
        early anyway (an error waiting, Ctrl-C), each reply left is abandoned, which
        lets its line go: no later message waits behind it for ever."""
        failure = None
        try:
            while out:
                for entry in _arrived(out):
                    out.remove(entry)
                    reply, send, asked = entry
                    try:
                        _take_answer(txn, send, asked, take, reply.finish)
                    except Exception as exc:        # noqa: BLE001 - raised once all are in
                        failure = failure or exc
        finally:
            for reply, _, _ in out:
                reply.abandon()
        if failure is not None:
            raise failure

    def _call(self, txn: Txn, send: Send, asked: dict, take) -> None:
        """Send one message now and wait for its answer; take() it in, or its absence."""
        link, method = self.links[send.to], method_of(send)
        _take_answer(txn, send, asked, take,
                     lambda: link.call(method, *self._arguments(txn, send)))

    def _arguments(self, txn: Txn, send: Send) -> tuple:
        """What a Send carries to the branch: a prepare's ops and participants, or only
        the txid (commit, abort)."""
        message = send.message
        if isinstance(message, Prepare):                 # money as text on the wire
            ops = [{"account": account, "delta": format_delta(paise)}
                   for account, paise in message.ops]
            return txn.txid, message.coordinator, ops, self._participants(message)
        return (txn.txid,)

    @staticmethod
    def _note_sent(txn: Txn, send: Send) -> dict:
        """The trace's row for a message as it leaves (a prepare shows its ops)."""
        ops = getattr(send.message, "ops", ())
        return txn.note(COORDINATOR, send.to, method_of(send),
                        ", ".join(f"{account} {format_delta(paise)}" for account, paise in ops))

    def _participants(self, prepare) -> dict:
        """The prepare's participants as {name: URL} (P9: whom an in-doubt branch asks)."""
        return {name: self.links[name].url for name in prepare.participants
                if getattr(self.links.get(name), "url", "")}

    def _timeout(self, branch: str):
        """Seconds a call to `branch` waits for an answer (None if unknown)."""
        return getattr(getattr(self.links.get(branch), "client", None), "timeout", None)

    def settle(self, branch: str) -> None:
        """B5: wait until the messages riding to `branch` (and those held there, B6) have
        been carried, so that a read of it, or a deposit, withdrawal or local transfer,
        sees every transfer this coordinator has answered."""
        wait = getattr(self.links.get(branch), "wait_for_posted", None)
        if wait is not None:
            wait(SETTLE_WAIT)

    def send_what_waits(self, timeout: float) -> None:
        """At a stop (B5, B6): send the decisions held on every line now, then wait until
        everything posted has been carried, `timeout` seconds at most in all."""
        lines = [line for line in self.links.values() if hasattr(line, "stop_holding")]
        for line in lines:
            line.stop_holding()
        deadline = time.monotonic() + timeout
        for line in lines:
            line.wait_for_posted(max(0.0, deadline - time.monotonic()))


# A round makes a selector, uses it once and drops it. poll() needs no file of its own:
# epoll (the default on Linux) costs four more system calls per round (create, two
# registrations, close) and, measured, about 15 µs of the coordinator's CPU (issue
# 13). Both have no limit on descriptor numbers; where poll() is missing (Windows),
# the default selector as before.
_Selector = getattr(selectors, "PollSelector", selectors.DefaultSelector)


def _arrived(out: list) -> list:
    """The (reply, send, asked) entries whose answer has begun to arrive, waiting for
    the first one; if none arrives by the soonest deadline, the entry that has it (its
    finish() then reads what is there, or reports the silence)."""
    if len(out) == 1:
        return out[:]                        # finish() itself waits until its deadline
    soonest = min(out, key=lambda entry: entry[0].deadline)
    with _Selector() as selector:
        for entry in out:
            selector.register(entry[0], selectors.EVENT_READ, entry)
        ready = selector.select(max(0.0, soonest[0].deadline - time.monotonic()))
    return [key.data for key, _ in ready] or [soonest]


def _take_answer(txn: Txn, send: Send, asked: dict, take, answer_of) -> None:
    """Take in the message's answer, answer_of(), or its failure as a silence."""
    try:
        answer = answer_of()
    except Exception as exc:                    # noqa: BLE001 - every failure is a silence
        take(txn, send, asked, None, exc)
        return
    take(txn, send, asked, answer, None)


def method_of(send: Send) -> str:
    """The call a Send stands for: prepare, commit or abort."""
    return type(send.message).__name__.lower()
