"""One round of 2PC messages: each rides a busy line, or leaves now (a mixin).

Role: the coordinator's 2PC driver (bank/twopc.py) sends each round of a transaction
(its prepares, then its decision) through Rounds._round, and takes each answer in
with its own function (_voted, _told). This file only moves the messages: whether a
message rides the next batch to a branch that already has one on its way
(bank/batching.py, B5) or leaves now, in parallel with the others (D2), and when the
round is over (a Countdown, bank/handoff.py H5). A student may read twopc.py alone:
with --no-batching every message simply leaves now.

Rules (twopc.py's, carried out here):
  * D2 - the sends of a round go out in parallel, each with a timeout; each answer
    (or its absence) is taken in by the driver.
  * B5 - a message for a busy line rides its next batch; its answer is taken in by
    the thread that carries that batch, and the round ends once the last one is in.
    A read through the coordinator first waits for the messages riding to its
    branch (settle), so it sees every transfer already answered.

Glossary:
  round    the messages one step of the protocol sends: the prepares, or the decision
  take     the driver's function that feeds an answer, or its absence, to the core
  rider    a message posted to ride a busy line
"""

from bank.core.messages import Prepare, Send
from bank.handoff import Countdown, run_all
from bank.twopc_txn import COORDINATOR, Txn

SETTLE_WAIT = 5.0            # seconds a read waits at most for messages riding (B5)


class Rounds:
    """Mixed into TwoPhaseCommit (which has links and _pool): sends one round."""

    def _round(self, txn: Txn, sends: list, take, all_taken) -> None:
        """Send one round of messages (D2). One for a branch that already has a message
        on its way rides the next batch there (bank/batching.py, B5); the others leave
        now, in parallel, and this returns when they are answered. take() feeds each
        answer, or its absence, to the core, on whichever thread receives it; once every
        message of the round has been taken in, all_taken() is called."""
        count = Countdown(all_taken)
        try:
            now = []
            for send in sends:
                asked = self._note_sent(txn, send)
                if not self._ride(txn, send, asked, take, count):
                    now.append((send, asked))
            run_all(self._pool, lambda job: self._call(txn, *job, take), now)
        finally:
            count.done()                   # this thread's own share; riders may be out

    def _ride(self, txn: Txn, send: Send, asked: dict, take, count) -> bool:
        """B5: post the message to ride the next batch to its branch, if a message is on
        its way there (True); its answer is taken in by the thread that carries it."""
        post = getattr(self.links[send.to], "post", None)        # None: --no-batching
        if post is None:
            return False

        def answered(answer, exc):                               # on the carrier's thread
            try:
                take(txn, send, asked, answer, exc)
            finally:
                count.done()
        count.add()
        if post(method_of(send), self._arguments(txn, send), answered):
            return True
        count.done()
        return False

    def _call(self, txn: Txn, send: Send, asked: dict, take) -> None:
        """Send one message now and wait for its answer; take() it in, or its absence."""
        try:
            answer = self.links[send.to].call(method_of(send), *self._arguments(txn, send))
        except Exception as exc:                # noqa: BLE001 - every failure is a silence
            take(txn, send, asked, None, exc)
            return
        take(txn, send, asked, answer, None)

    def _arguments(self, txn: Txn, send: Send) -> tuple:
        """What a Send carries to the branch: a prepare's ops and participants, or only
        the txid (commit, abort)."""
        message = send.message
        if isinstance(message, Prepare):
            return txn.txid, message.coordinator, list(message.ops), self._participants(message)
        return (txn.txid,)

    @staticmethod
    def _note_sent(txn: Txn, send: Send) -> dict:
        """The trace's row for a message as it leaves (a prepare shows its ops)."""
        ops = getattr(send.message, "ops", ())
        return txn.note(COORDINATOR, send.to, method_of(send),
                        ", ".join(f"{o['account']} {o['delta']}" for o in ops))

    def _participants(self, prepare) -> dict:
        """The prepare's participants as {name: URL} (P9: whom an in-doubt branch asks)."""
        return {name: self.links[name].url for name in prepare.participants
                if getattr(self.links.get(name), "url", "")}

    def _timeout(self, branch: str):
        """Seconds a call to `branch` waits for an answer (None if unknown)."""
        return getattr(getattr(self.links.get(branch), "client", None), "timeout", None)

    def settle(self, branch: str) -> None:
        """B5: wait until the messages riding to `branch` have been carried, so that a
        read of it sees every transfer this coordinator has answered."""
        wait = getattr(self.links.get(branch), "wait_for_posted", None)
        if wait is not None:
            wait(SETTLE_WAIT)


def method_of(send: Send) -> str:
    """The call a Send stands for: prepare, commit or abort."""
    return type(send.message).__name__.lower()
