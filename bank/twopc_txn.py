"""One transaction the coordinator drives, with its trace, and what the API shows of them.

Role: keep, for each transaction, the coordinator core's state (bank/core/coordinator.py)
together with what people are shown: its trace (every message sent and received, with
times, for the shell's and the window's sequence diagrams), its votes in words, and its
counters of writes and messages. bank/twopc.py drives the protocol; this file only
remembers and describes.

Rules:
  * D5 (of bank/twopc.py) - say what is known, no more: every answer in the trace keeps
    its kind; a message refused before it left is marked "sent": False.
  * A long outage (retries every second) keeps the first TRACE_HEAD and the last
    TRACE_TAIL messages of a trace, so its memory is bounded and its end always shown.
  * A decision is shown only once it is durable (D1): every view reads
    ``visible_state``, the core's state as of its last step whose records are on
    disk, never the core's own state, which moves before its records are written.

Glossary:
  trace     the list of messages of one transaction: who, to whom, what, when
  summary   one row of transactions(): txid, state, accounts, amount, who we wait for
"""

import collections
import threading
import time

from bank.clock import now
from bank.core.coordinator import DECIDED, CoordinatorTxn, Presumption
from bank.core.messages import Vote
from bank.errors import BankError, FaultCode
from bank.txn_counters import TxnCounters

TRACE_HEAD, TRACE_TAIL = 200, 300   # messages kept per trace: the first and the last
COORDINATOR = "coordinator"
LOG = "log"                  # the recovery log, drawn as a party in diagrams


# ---- one transaction, with its trace -----------------------------------------------------

class Txn:
    """A transaction the coordinator drives: the protocol core plus what to show."""

    def __init__(self, txid: str, plan: dict, info: dict, url: str = COORDINATOR):
        self.core = CoordinatorTxn(txid, plan, url,  # decides; see bank/core/coordinator.py
                                   info.get("presumption", Presumption.ABORT.value))
        self.info = info                   # src, dst, amount, request_id, presumption
        self.visible_state = self.core.state   # the core's state once durable (D1): what
                                               # views and the client may see (settle())
        self.counts = TxnCounters()        # writes and messages, per party (N1, N2)
        self.began = now()
        self.ended = ""
        self._head, self._tail = [], collections.deque(maxlen=TRACE_TAIL)
        self._dropped = 0
        self.done = threading.Event()      # set when the client has its answer
        self.result = None
        self.phase2_lock = threading.Lock()   # one phase-2 round at a time
        self.lock = threading.Lock()          # guards the core: votes and acks arrive
        self._trace_lock = threading.Lock()   # on several threads at once
        self._t0 = time.monotonic()
        self.vote_words = {}                  # branch -> its vote or silence, in words
        self.voted_at = {}                    # branch -> Unix time its vote arrived
        self.implied_votes = {}               # branch -> words: yes implied by a logged
                                              # commit, after a restart (twopc_recovery)
        self.damaged = []                     # branches that acknowledged with heuristic
                                              # damage (P11): the books do not balance
        self.unacknowledged_said = set()      # branches whose missing ack was logged

    @property
    def txid(self) -> str:
        return self.core.txid

    def settle(self) -> None:
        """The core's records are on disk (TwoPhaseCommit._step): its state may be seen.
        Until then a view shows the state before (a commit being forced is still
        "preparing"; if the disk refuses it, it never looked committed: C3)."""
        self.visible_state = self.core.state

    @property
    def published(self):
        """The decision others may see: set only once it is durable (D1), else None."""
        return self.core.decision if self.visible_state in DECIDED else None

    def note(self, sender: str, receiver: str, msg: str, detail: str = "", **extra) -> dict:
        """Add one message to the trace and return its entry (D5 may mark it never sent).
        A long outage (retries every second) keeps the first TRACE_HEAD and the last
        TRACE_TAIL messages, so the end is always shown. extra: "kind" of an answer."""
        entry = {"at": now(), "ms": int((time.monotonic() - self._t0) * 1000),
                 "from": sender, "to": receiver, "msg": msg, "detail": detail, **extra}
        with self._trace_lock:
            if len(self._head) < TRACE_HEAD:
                self._head.append(entry)
                return entry
            if len(self._tail) == self._tail.maxlen:
                self._dropped += 1
            self._tail.append(entry)
        return entry

    def never_sent(self, entry: dict, why: str, kind: str) -> None:
        """D5: the message of `entry` was refused before it left (a partition, a refused
        connection): the diagram draws it at the sender only, with the reason and its
        kind ("cut-off" or "unreachable"), which the views mark as a partition or a
        branch that is down (bank/views.py, trace_mark)."""
        with self._trace_lock:
            entry.update(sent=False, kind=kind, detail=(entry["detail"] + "; " if entry["detail"]
                                             else "") + "never sent: " + why)

    def rides(self, entry: dict, how: str) -> None:
        """The message of `entry` did not leave at once (bank/batching.py): how is
        "held" (B6) or "queued" (B5) when it is posted; "left" when its batch leaves,
        which becomes its time and its place in the trace. The views say how it went
        (bank/views.py, rides_text)."""
        with self._trace_lock:
            if how != "left":
                entry["rides"] = how
                return
            entry.update(at=now(), ms=int((time.monotonic() - self._t0) * 1000), left=True)
            for rows in (self._tail, self._head):         # to the end: in time order
                for i, row in enumerate(rows):
                    if row is entry:
                        del rows[i]
                        (self._tail if self._tail else self._head).append(entry)
                        return

    @property
    def trace(self) -> list:
        with self._trace_lock:
            gap = [{"at": self._tail[0]["at"], "ms": self._tail[0]["ms"],
                    "from": COORDINATOR, "to": COORDINATOR, "msg": "skipped",
                    "detail": f"{self._dropped} messages (retries) not kept"}] \
                if self._dropped else []
            return self._head + gap + list(self._tail)

    def votes(self) -> dict:
        """branch -> what came back, in words: "yes", "no: reason", "no answer in time
        (5 s)", "cut off (lab partition)", ... (D5: a missing vote is never a "no")."""
        with self.lock:
            return {**self.implied_votes, **{b: self.vote_words.get(b, v.value)
                                             for b, v in self.core.votes.items()}}

    def vote_kinds(self) -> dict:
        """branch -> "yes", "no", "timeout", "unreachable", "cut-off" or "error"."""
        with self.lock:
            return {**{b: "yes" for b in self.implied_votes},
                    **{b: kind_of(v) for b, v in self.core.votes.items()}}

    def summary(self) -> dict:
        outcome = self.published.value if self.published else ""
        return {"txid": self.txid, "state": self.visible_state.value, "outcome": outcome,
                "src": self.info.get("src", ""), "dst": self.info.get("dst", ""),
                "amount": self.info.get("amount", ""), "reason": self.core.reason,
                "request_id": self.info.get("request_id", ""), "began": self.began,
                "ended": self.ended, "participants": list(self.core.participants),
                "waiting_for": self.core.waiting_for() if self.published else [],
                "damaged": list(self.damaged)}


def summary_from_log(txid: str, data: dict) -> dict:
    """A finished transaction known only from the recovery log (after a restart)."""
    return {"txid": txid, "state": data.get("outcome", ""), "outcome": data.get("outcome", ""),
            "src": data.get("src", ""), "dst": data.get("dst", ""),
            "amount": data.get("amount", ""), "reason": data.get("reason", ""),
            "request_id": data.get("request_id", ""), "began": data.get("began", ""),
            "ended": data.get("ended", ""), "participants": data.get("branches", []),
            "waiting_for": [], "damaged": list(data.get("damaged", []))}


def kind_of(answer) -> str:
    """The kind of an answer, one word for tests and views: yes, no, timeout,
    unreachable, cut-off, error."""
    return answer.value if isinstance(answer, Vote) else answer.name.lower().replace("_", "-")


# ---- what the API shows -------------------------------------------------------------------

class TxnViews:
    """Read-only views of the driver's transactions (a mixin of TwoPhaseCommit): its
    ``txns`` (in memory, with traces) and its recovery log's finished ones."""

    def held_at(self, branch: str) -> tuple:
        """(count, when): transactions `branch` voted yes to and has not acknowledged the
        decision of, so it holds them prepared as of its last vote (Unix time; 0: none).
        What a branch that does not answer now last told us (views.in_doubt_text)."""
        txns = self._open_now()
        held = [t.voted_at[branch] for t in txns if branch in t.voted_at and
                t.core.votes.get(branch) is Vote.YES and branch not in t.core.acks]
        return len(held), max(held, default=0.0)

    def summaries(self) -> list:
        """Every transaction remembered, in memory or in the log's recent history."""
        with self._lock:
            rows = [t.summary() for t in self.txns.values()]
            known = set(self.txns)
        rows += [summary_from_log(t, d) for t, d in self.log.finished.copy().items()
                 if t not in known]
        return rows

    def detail(self, txid: str) -> dict:
        """One transaction with its votes and its trace."""
        with self._lock:
            txn = self.txns.get(txid)
            if txn is not None:
                return dict(txn.summary(), trace=txn.trace, votes=txn.votes(),
                            vote_kinds=txn.vote_kinds(), counts=txn.counts.as_dict())
        if txid in self.log.finished:
            return dict(summary_from_log(txid, self.log.finished[txid]), trace=[], votes={},
                        vote_kinds={})
        raise BankError(FaultCode.UNKNOWN_TXN, f"The coordinator knows no transaction {txid}.")
