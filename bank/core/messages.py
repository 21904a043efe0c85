"""The vocabulary of the protocol, in one place: states, messages and effects.

Role: name everything the three roles (participant, coordinator, replica) say to each
other and everything they ask their server to do. Read this file first: the whole
protocol's vocabulary fits on two screens (AOSA's "Clustering by Consensus" habit).
It has no I/O and no logic beyond building values.

Rules:
  * Messages and effects are frozen dataclasses: a value, never changed after it is
    made, so a simulator can hash it and replay it exactly.
  * Money in a message is integer minor units (paise); text money exists only on the
    wire (bank/money.py).

Glossary:
  message   what one process sends another (Prepare, VoteMsg, Commit, Abort, Ack, ...)
  event     what happens to a role: a message arrives, a timer fires, the process restarts
  effect    what a role asks its server to carry out, in order: make a record durable,
            reserve or release money, send a message, answer the caller
  forced    a record made durable (fsync) before the next effect is carried out
"""

import enum
from dataclasses import dataclass


# ---- states ---------------------------------------------------------------------------

class TxState(str, enum.Enum):
    """A participant's durable state for one txid (``status(txid)`` answers this)."""
    UNKNOWN = "unknown"
    PREPARED = "prepared"
    COMMITTED = "committed"
    ABORTED = "aborted"


class CoordState(str, enum.Enum):
    """The coordinator's view of one transaction."""
    NEW = "new"                 # created, nothing sent yet
    PREPARING = "preparing"     # phase 1: votes are being collected
    COMMITTING = "committing"   # commit is logged (forced); telling participants
    ABORTING = "aborting"       # abort decided; telling participants
    COMMITTED = "committed"     # every participant acknowledged commit (end logged);
                                # presumed commit: the commit record is forced (C12)
    ABORTED = "aborted"         # every participant acknowledged abort (end logged)
    IN_DOUBT = "in doubt"       # its log records were damaged: never presumed either way


class Role(str, enum.Enum):
    """A branch server's replication role."""
    PRIMARY = "primary"         # serves writes; pushes every change to its replicas
    REPLICA = "replica"         # copies its primary; serves reads only
    FENCED = "fenced"           # a former primary that saw a higher epoch: no writes


class Vote(str, enum.Enum):
    YES = "yes"
    NO = "no"


class Silence(str, enum.Enum):
    """How a vote or an acknowledgement failed to arrive: never the same as a "no"."""
    TIMEOUT = "no answer in time"
    UNREACHABLE = "cannot be reached"
    CUT_OFF = "cut off (lab partition)"
    ERROR = "an error instead of an answer"


# ---- messages between processes ---------------------------------------------------------

@dataclass(frozen=True)
class Prepare:
    """Coordinator -> participant: can you apply these ops? ops: ((account, paise), ...),
    the same shape on the servers and in the explorer (text only on the wire).
    participants: the names of every participant of the transaction, so that one in
    doubt knows whom else to ask (cooperative termination, P9)."""
    txid: str
    coordinator: str
    ops: tuple
    participants: tuple = ()


@dataclass(frozen=True)
class VoteMsg:
    """Participant -> coordinator: the answer to Prepare."""
    txid: str
    branch: str
    vote: Vote
    reason: str = ""


@dataclass(frozen=True)
class Commit:
    """Coordinator -> participant: the decision is commit (it is already forced)."""
    txid: str


@dataclass(frozen=True)
class Abort:
    """Coordinator -> participant: the decision is abort (or: forget this txid)."""
    txid: str


@dataclass(frozen=True)
class Ack:
    """Participant -> coordinator: the decision is applied and durable here. again: the
    decision was already applied here before this message (a repeat: acknowledged
    again, nothing done, P3). heuristic: what the operator forced here before the
    decision came (P10, P11), or ""."""
    txid: str
    branch: str
    state: TxState
    again: bool = False
    heuristic: str = ""


@dataclass(frozen=True)
class DecisionQuery:
    """Participant -> coordinator (termination protocol): what was decided?"""
    txid: str
    asker: str


@dataclass(frozen=True)
class DecisionAnswer:
    """Coordinator -> participant: "committed", "aborted", or "pending" (not decided yet)."""
    txid: str
    outcome: str


@dataclass(frozen=True)
class OutcomeQuery:
    """Participant -> participant (cooperative termination, P9): what do you know of txid?"""
    txid: str
    asker: str


@dataclass(frozen=True)
class OutcomeAnswer:
    """Participant -> participant (P8): "committed", "aborted", or "in-doubt" (I do not
    know either). A participant that had not voted answers "aborted", recorded first."""
    txid: str
    branch: str
    outcome: str


IN_DOUBT = "in-doubt"              # a peer's "I do not know either" (P8)


@dataclass(frozen=True)
class Outcome:
    """Coordinator -> client: the transfer's outcome, "committed" or "aborted"."""
    txid: str
    outcome: str
    reason: str = ""


# ---- effects: what a role asks its server to carry out, in order -----------------------------

@dataclass(frozen=True)
class Record:
    """Make a record durable. forced: durable before the next effect is carried out."""
    txid: str
    kind: str                   # participant: a TxState value; coordinator: a log record
    forced: bool
    reason: str = ""
    heuristic: str = ""         # participant: the operator's heuristic decision (P10)
    told: str = ""              # participant: the coordinator's decision after it (P11)


@dataclass(frozen=True)
class Hold:
    """Reserve (amount > 0) or release (amount < 0) money of an account."""
    account: str
    amount: int


@dataclass(frozen=True)
class Apply:
    """Change an account's balance by delta (journaled)."""
    account: str
    delta: int
    txid: str


@dataclass(frozen=True)
class Send:
    """Send a message to a party (a branch name, "coordinator", or a URL)."""
    to: str
    message: object


@dataclass(frozen=True)
class Reply:
    """Answer the caller (a vote, an acknowledgement, a decision, an outcome)."""
    message: object


# ---- named fault points: the protocol steps a lab may crash at (the one list) --------------

BRANCH_POINTS = ("vote-no", "crash-before-vote", "crash-after-vote",
                 "crash-before-commit", "crash-after-commit", "cut-replication")
SWITCHES = ("cut-replication",)      # points that stay on until disarmed (not once)
COORDINATOR_POINTS = ("crash-after-prepare", "crash-after-decision", "crash-mid-commit")


# ---- refusals ------------------------------------------------------------------------------

class ProtocolViolation(Exception):
    """An illegal step: names the role, the state and the event; changes nothing."""

    def __init__(self, role: str, state, event: str, rule: str = ""):
        self.role, self.state, self.event, self.rule = role, state, event, rule
        state_text = getattr(state, "value", state)
        super().__init__(f"{role}: '{event}' is not allowed when it is {state_text}"
                         + (f" ({rule})" if rule else ""))
