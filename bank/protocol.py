"""Two-Phase Commit: the vocabulary and the rules, with no I/O at all.

Role: decide what a participant or a coordinator may do next. The branch and the
coordinator move these decisions through SQLite and XML-RPC; this file never
touches a socket, a file or a clock, so every step can be tested (and printed by a
lab) on its own.

Rules:
  * Rule 1 - transitions are a table. ``PARTICIPANT[(state, event)]`` is the next
    state; a missing entry is a protocol violation that changes nothing.
  * Rule 2 - a participant that voted yes (``prepared``) never decides by itself. Only
    the coordinator's decision moves it on. That is 2PC's famous blocking.
  * Rule 3 - the coordinator decides commit only if *every* participant voted yes.
    Any no, error or silence means abort.
  * Rule 4 - presumed abort: a txid with no commit record is aborted.

Glossary:
  txid         a transaction's globally unique, readable id: ``C1-20261125T130102-9f3a2c``
  participant  a branch taking part in a transaction
  op           one account change inside a txn: {"account": "1001", "delta": "-50.00"}
  vote         a participant's answer to prepare: yes (I can and will commit) or no
  hold         money reserved at prepare so that a later commit cannot fail
  decision     the coordinator's commit/abort, durable in its log before anyone hears it
  in doubt     prepared, decision not yet known: the participant must wait
"""

import enum
from dataclasses import dataclass, field


class TxState(str, enum.Enum):
    """A participant's durable state for one txid (``status(txid)`` answers this)."""
    UNKNOWN = "unknown"
    PREPARED = "prepared"
    COMMITTED = "committed"
    ABORTED = "aborted"


class Event(str, enum.Enum):
    """What can happen to a participant's txn."""
    PREPARE_OK = "prepare (all ops valid)"
    PREPARE_FAIL = "prepare (an op is invalid)"
    COMMIT = "commit"
    ABORT = "abort"


class Vote(str, enum.Enum):
    YES = "yes"
    NO = "no"


class _Step(str):
    """A coordinator event named by a phrase (it has .value like the Enums above)."""

    @property
    def value(self) -> str:
        return str(self)


class ProtocolViolation(Exception):
    """An illegal step: names the role, the state and the event; changes nothing."""

    def __init__(self, role: str, state, event):
        self.role, self.state, self.event = role, state, event
        super().__init__(f"{role}: '{event.value}' is not allowed when the transaction "
                         f"is {state.value}")


# ---- Rule 1: the participant's transitions -------------------------------------------
# Repeats are legal and change nothing: messages can be duplicated by retries.

PARTICIPANT = {
    (TxState.UNKNOWN, Event.PREPARE_OK): TxState.PREPARED,
    (TxState.UNKNOWN, Event.PREPARE_FAIL): TxState.ABORTED,
    (TxState.UNKNOWN, Event.ABORT): TxState.ABORTED,     # so that a late prepare votes no
    (TxState.PREPARED, Event.COMMIT): TxState.COMMITTED,
    (TxState.PREPARED, Event.ABORT): TxState.ABORTED,
    (TxState.COMMITTED, Event.COMMIT): TxState.COMMITTED,
    (TxState.ABORTED, Event.ABORT): TxState.ABORTED,
    # (UNKNOWN, COMMIT), (ABORTED, COMMIT) and (COMMITTED, ABORT) are violations.
}


def participant_next(state: TxState, event: Event) -> TxState:
    """The participant's next state, or ProtocolViolation."""
    try:
        return PARTICIPANT[(state, event)]
    except KeyError:
        raise ProtocolViolation("participant", state, event) from None


def repeated_vote(state: TxState) -> Vote:
    """A prepare for a txid already known is answered with the vote on record."""
    return Vote.YES if state in (TxState.PREPARED, TxState.COMMITTED) else Vote.NO


# ---- Rules 3 and 4: the coordinator ---------------------------------------------------

class CoordState(str, enum.Enum):
    """The coordinator's view of one transaction."""
    PREPARING = "preparing"     # phase 1: votes are being collected
    COMMITTING = "committing"   # commit is logged; telling participants
    ABORTING = "aborting"       # abort decided; telling participants
    COMMITTED = "committed"     # every participant acknowledged commit (end logged)
    ABORTED = "aborted"         # every participant acknowledged abort (end logged)


COORDINATOR = {
    (CoordState.PREPARING, "all voted yes"): CoordState.COMMITTING,
    (CoordState.PREPARING, "a no, error or timeout"): CoordState.ABORTING,
    (CoordState.COMMITTING, "all acknowledged"): CoordState.COMMITTED,
    (CoordState.ABORTING, "all acknowledged"): CoordState.ABORTED,
}


@dataclass
class CoordinatorTxn:
    """One transaction as the coordinator sees it: feed it votes and acks.

    It only decides; the caller logs the decision durably and sends messages.
    """
    txid: str
    participants: tuple
    state: CoordState = CoordState.PREPARING
    votes: dict = field(default_factory=dict)
    acks: set = field(default_factory=set)
    reason: str = ""

    def on_vote(self, branch: str, vote: Vote, reason: str = "", answered=True) -> None:
        """Record one vote. A timeout or error (answered=False) counts as NO (Rule 3)."""
        if self.state is not CoordState.PREPARING:
            return                      # a late vote changes nothing
        self.votes[branch] = vote
        if vote is Vote.NO and not self.reason:
            said = "voted no" if answered else "gave no vote"
            self.reason = f"{branch} {said}: {reason}" if reason else f"{branch} {said}"

    def decide(self) -> CoordState:
        """Rule 3: commit only if every participant voted yes; call once all votes are in."""
        all_yes = all(self.votes.get(p) is Vote.YES for p in self.participants)
        self.state = self._next("all voted yes" if all_yes else "a no, error or timeout")
        return self.state

    def _next(self, event: str) -> CoordState:
        try:
            return COORDINATOR[(self.state, event)]
        except KeyError:
            raise ProtocolViolation("coordinator", self.state, _Step(event)) from None

    @property
    def decision(self) -> TxState:
        """The decision to send in phase 2."""
        committing = self.state in (CoordState.COMMITTING, CoordState.COMMITTED)
        return TxState.COMMITTED if committing else TxState.ABORTED

    def on_ack(self, branch: str) -> bool:
        """Record an acknowledgement; True once every participant has acknowledged."""
        self.acks.add(branch)
        if self.state in (CoordState.COMMITTING, CoordState.ABORTING) and \
                self.acks >= set(self.participants):
            self.state = self._next("all acknowledged")
            return True
        return False

    def waiting_for(self) -> list:
        """Participants that have not acknowledged the decision yet."""
        return [p for p in self.participants if p not in self.acks]


def state_diagram() -> str:
    """The participant's transition table as aligned text (the README shows this exactly)."""
    lines = [f"{'state':<10} {'event':<27} next state"]
    for (state, event), nxt in PARTICIPANT.items():
        lines.append(f"{state.value:<10} {event.value:<27} {nxt.value}")
    lines.append("(any other step is refused as a protocol violation, Fault 409)")
    return "\n".join(lines)
