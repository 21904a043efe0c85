"""The coordinator: one transaction as the coordinator sees it, as a table that decides.

Role: decide every step of Two-Phase Commit for one transaction: when to ask for
votes, what to decide, what to log (and whether to force it), whom to tell, what to
answer a client or a participant that asks. It is pure: no log file, no sockets, no
threads, no clock. bank/twopc.py carries out the effects (bank/recovery_log.py makes
the records durable) and feeds the answers back in.

The table (the README's copy is generated from it):

    COORDINATOR[(state, event)] = Step(rule, next state, effects in order)

Rules:
  * C1 - begin: log an unforced "begin" (so recovery can abort what it finds
    unfinished), then send prepare to every participant at once.
  * C2 - collect every vote (each has a timeout). A vote that arrives after the
    decision changes nothing.
  * C3 - the commit point: commit only if every participant voted yes, and force the
    commit record to disk BEFORE any commit is sent or the client is told. If the
    record certainly could not be written (a full disk), nobody has seen the commit
    yet: abort instead.
  * C4 - any no, or any vote that did not arrive (timeout, unreachable, error), means
    abort. The abort record is not forced (presumed abort, C8).
  * C5 - phase 2: once every participant has acknowledged, log "end" (unforced).
  * C6 - a participant that has not acknowledged is told the decision again, until it
    acknowledges (retries in the background).
  * C7 - a participant that asks gets only a durable decision: "pending" while the
    votes are being collected, never a guess.
  * C8 - presumed abort: after a restart a transaction with no commit record is
    aborted, and a txid the coordinator does not know at all was aborted.
  * C9 - a transaction whose records were damaged is in doubt: never presumed either
    way, every query answered "in-doubt", until an operator restores the log.

The presumption (issue 14; Mohan, Lindsay and Obermarck, R*, 1986) picks the table.
C1-C9 above are presumed abort, the default (COORDINATOR). The other two change a few
rows each (PRESUMED_NOTHING, PRESUMED_COMMIT; TABLES holds all three):
  * C10 - presumed nothing: nothing is presumed, so every decision is forced: an
    abort like a commit (after a no, and after a restart that found no decision),
    and every participant acknowledges it before end.
  * C11 - presumed commit: begin (the "collecting" record, naming every participant)
    is forced BEFORE any prepare leaves: after a crash it is the only trace of a
    transaction that may still be undecided, which must not be presumed committed.
  * C12 - presumed commit: once commit is forced the transaction is finished: no
    acknowledgement is awaited, no end is logged, and a txid the coordinator does
    not know was committed (C8 turned round).
  * C13 - presumed commit: abort is forced (without it the txid would be presumed
    committed), every participant acknowledges it, then end; after a restart, a
    begin with no decision is aborted the same way.

Under every presumption:
  * C14 - a log presumes only about its own transactions. A txid stamped before the
    log was created (the log was deleted, emptied or replaced by a new one while a
    branch held a transaction in doubt) was decided, or not, in a log that is gone:
    it is answered "in-doubt", never presumed either way. The branch then asks the
    other participants (P9), or waits for an operator.

Glossary:
  presumption  what the coordinator answers for a txid it has no record of: nothing
               (it never forgets an undecided one), abort (default) or commit
  participant  a branch taking part in the transaction
  plan         branch -> the ops that branch is asked to prepare: ((account, paise), ...)
  waiting_for  participants that have not acknowledged the decision yet
"""

import enum
import re
from dataclasses import dataclass

from bank.core.messages import (IN_DOUBT, Abort, Commit, CoordState, DecisionAnswer, Outcome,
                                Prepare, ProtocolViolation, Record, Reply, Send, Silence,
                                TxState, Vote)


class Event(str, enum.Enum):
    """What can happen to a transaction at the coordinator."""
    BEGIN = "begin"
    VOTE = "a vote (or its absence)"
    ALL_YES = "every vote is yes"
    NOT_ALL_YES = "a no, or a vote missing"
    ACK = "an acknowledgement"
    LAST_ACK = "the last acknowledgement"
    RETRY = "retry timer"
    QUERY = "a decision query"
    RESTART_COMMIT = "restart: commit logged"
    RESTART_ABORT = "restart: abort logged"
    RESTART_NONE = "restart: no decision logged"
    RESTART_DAMAGED = "restart: its records are damaged"
    COMMIT_NOT_LOGGED = "the commit record could not be written"


class Presumption(str, enum.Enum):
    """What a missing record means; the coordinator's --presumption picks one."""
    NOTHING = "nothing"
    ABORT = "abort"
    COMMIT = "commit"


class Do(str, enum.Enum):
    """The effects a row can name; CoordinatorTxn turns each into effect values."""
    LOG_BEGIN = "log begin"
    FORCE_BEGIN = "force begin to disk"
    FORCE_COMMIT = "force commit to disk"
    LOG_ABORT = "log abort"
    FORCE_ABORT = "force abort to disk"
    LOG_END = "log end"
    SEND_PREPARE = "send prepare to all"
    SEND_DECISION = "send the decision to those not acknowledged"
    TELL_CLIENT = "answer the client"
    ANSWER = "answer the query"


@dataclass(frozen=True)
class Step:
    rule: str
    next: CoordState
    effects: tuple


N, P, CG, AG = CoordState.NEW, CoordState.PREPARING, CoordState.COMMITTING, CoordState.ABORTING
CD, AD, DB = CoordState.COMMITTED, CoordState.ABORTED, CoordState.IN_DOUBT
E = Event

COORDINATOR = {
    (N, E.BEGIN):            Step("C1", P, (Do.LOG_BEGIN, Do.SEND_PREPARE)),
    (P, E.VOTE):             Step("C2", P, ()),
    (CG, E.VOTE):            Step("C2", CG, ()),
    (AG, E.VOTE):            Step("C2", AG, ()),
    (CD, E.VOTE):            Step("C2", CD, ()),
    (AD, E.VOTE):            Step("C2", AD, ()),
    (P, E.ALL_YES):          Step("C3", CG, (Do.FORCE_COMMIT, Do.SEND_DECISION, Do.TELL_CLIENT)),
    (P, E.NOT_ALL_YES):      Step("C4", AG, (Do.LOG_ABORT, Do.SEND_DECISION, Do.TELL_CLIENT)),
    (CG, E.COMMIT_NOT_LOGGED): Step("C3", AG, (Do.LOG_ABORT, Do.SEND_DECISION, Do.TELL_CLIENT)),
    (CG, E.ACK):             Step("C5", CG, ()),
    (AG, E.ACK):             Step("C5", AG, ()),
    (CG, E.LAST_ACK):        Step("C5", CD, (Do.LOG_END,)),
    (AG, E.LAST_ACK):        Step("C5", AD, (Do.LOG_END,)),
    (CD, E.ACK):             Step("C5", CD, ()),
    (AD, E.ACK):             Step("C5", AD, ()),
    (CG, E.RETRY):           Step("C6", CG, (Do.SEND_DECISION,)),
    (AG, E.RETRY):           Step("C6", AG, (Do.SEND_DECISION,)),
    (N, E.QUERY):            Step("C7", N, (Do.ANSWER,)),
    (P, E.QUERY):            Step("C7", P, (Do.ANSWER,)),
    (CG, E.QUERY):           Step("C7", CG, (Do.ANSWER,)),
    (AG, E.QUERY):           Step("C7", AG, (Do.ANSWER,)),
    (CD, E.QUERY):           Step("C7", CD, (Do.ANSWER,)),
    (AD, E.QUERY):           Step("C7", AD, (Do.ANSWER,)),
    (N, E.RESTART_COMMIT):   Step("C8", CG, ()),
    (N, E.RESTART_ABORT):    Step("C8", AG, ()),
    (N, E.RESTART_NONE):     Step("C8", AG, (Do.LOG_ABORT,)),
    (N, E.RESTART_DAMAGED):  Step("C9", DB, ()),
    (DB, E.QUERY):           Step("C9", DB, (Do.ANSWER,)),
}

# Presumed nothing: the rows of presumed abort, with every abort forced (C10).
PRESUMED_NOTHING = {
    **COORDINATOR,
    (P, E.NOT_ALL_YES):      Step("C10", AG, (Do.FORCE_ABORT, Do.SEND_DECISION, Do.TELL_CLIENT)),
    (CG, E.COMMIT_NOT_LOGGED): Step("C10", AG, (Do.FORCE_ABORT, Do.SEND_DECISION,
                                                Do.TELL_CLIENT)),
    (N, E.RESTART_NONE):     Step("C10", AG, (Do.FORCE_ABORT,)),
}

# Presumed commit: begin forced (C11); a forced commit finishes the transaction, so
# "committing" is never a state (C12); abort forced and acknowledged (C13).
PRESUMED_COMMIT = {
    **{key: step for key, step in COORDINATOR.items() if key[0] is not CG},
    (N, E.BEGIN):            Step("C11", P, (Do.FORCE_BEGIN, Do.SEND_PREPARE)),
    (P, E.ALL_YES):          Step("C12", CD, (Do.FORCE_COMMIT, Do.SEND_DECISION,
                                              Do.TELL_CLIENT)),
    (P, E.NOT_ALL_YES):      Step("C13", AG, (Do.FORCE_ABORT, Do.SEND_DECISION, Do.TELL_CLIENT)),
    (CD, E.COMMIT_NOT_LOGGED): Step("C3", AG, (Do.FORCE_ABORT, Do.SEND_DECISION,
                                               Do.TELL_CLIENT)),
    (N, E.RESTART_COMMIT):   Step("C12", CD, ()),
    (N, E.RESTART_NONE):     Step("C13", AG, (Do.FORCE_ABORT,)),
}
del N, P, CG, AG, CD, AD, DB, E

TABLES = {Presumption.NOTHING: PRESUMED_NOTHING, Presumption.ABORT: COORDINATOR,
          Presumption.COMMIT: PRESUMED_COMMIT}

DECIDED = (CoordState.COMMITTING, CoordState.COMMITTED, CoordState.ABORTING,
           CoordState.ABORTED)


def presumed_outcome(presumption: Presumption = Presumption.ABORT,
                     before_this_log: bool = False) -> str:
    """C8, C12: the answer for a txid with no record at all. Presumed nothing answers
    aborted too: it forgets a txid only once every participant has acknowledged its
    decision, so one it does not know was never decided (C10). C14: a txid begun
    before this log was created is not this log's to presume: in-doubt."""
    if before_this_log:
        return IN_DOUBT
    return TxState.COMMITTED.value if Presumption(presumption) is Presumption.COMMIT \
        else TxState.ABORTED.value


TXID_STAMP = re.compile(r"-(\d{8}T\d{6})-[0-9a-f]+$")   # <name>-<UTC second>-<serial> (D7)


def begun_before(txid: str, log_created: str) -> bool:
    """C14: is txid stamped before the second its log's txids start from (both as in a
    txid, e.g. 20261125T130102: bank/clock.py txid_second)? False when either is
    unknown: a txid of another shape, or a log written before logs recorded their
    creation."""
    stamp = TXID_STAMP.search(txid)
    return bool(stamp and log_created) and stamp.group(1) < log_created


class CoordinatorTxn:
    """One transaction at the coordinator. Feed it events; carry out what it returns.

    plan: branch -> the ops for that branch, ((account, paise), ...), carried in Prepare.
    presumption: which table decides (C10-C13); presumed abort unless told.
    """

    def __init__(self, txid: str, plan: dict, coordinator: str = "coordinator",
                 presumption: Presumption = Presumption.ABORT):
        self.txid, self.plan, self.coordinator = txid, dict(plan), coordinator
        self.presumption = Presumption(presumption)
        self.table = TABLES[self.presumption]
        self.participants = tuple(sorted(plan))
        self.state = CoordState.NEW
        self.votes = {}                 # branch -> Vote, or Silence when none arrived
        self.acks = set()
        self.reason = ""

    # ---- events ------------------------------------------------------------------------

    def begin(self) -> list:
        return self._step(Event.BEGIN)

    def on_vote(self, branch: str, vote, reason: str = "") -> list:
        """A Vote, or a Silence for a vote that did not arrive (C2). Never decides alone."""
        assert isinstance(vote, (Vote, Silence)), vote
        if self.state is CoordState.PREPARING and branch in self.participants:
            self.votes[branch] = vote
            if vote is not Vote.YES and not self.reason:
                said = "voted no" if vote is Vote.NO else f"gave no vote ({vote.value})"
                self.reason = f"{branch} {said}" + (f": {reason}" if reason else "")
        return self._step(Event.VOTE)

    def decide(self) -> list:
        """Phase 1 is over: every participant answered or timed out (C3 or C4)."""
        all_yes = all(self.votes.get(p) is Vote.YES for p in self.participants)
        if not all_yes and not self.reason:
            missing = [p for p in self.participants if p not in self.votes]
            self.reason = f"no vote from {', '.join(missing)}"
        return self._step(Event.ALL_YES if all_yes else Event.NOT_ALL_YES)

    def on_ack(self, branch: str) -> list:
        if self.state in (CoordState.COMMITTING, CoordState.ABORTING):
            self.acks.add(branch)
        last = not self.waiting_for() and self.state in (CoordState.COMMITTING,
                                                         CoordState.ABORTING)
        return self._step(Event.LAST_ACK if last else Event.ACK)

    def on_retry(self) -> list:
        return self._step(Event.RETRY)

    def on_query(self) -> list:
        return self._step(Event.QUERY)

    @staticmethod
    def answer_unknown(txid: str, presumption: Presumption, log_created: str) -> str:
        """C8, C12, C14: the answer to a query about a txid the log holds no record of
        (bank/twopc.py asks it, and so does the explorer's world): the presumption's,
        unless the txid was stamped before this log was created: then in-doubt."""
        return presumed_outcome(presumption, begun_before(txid, log_created))

    def on_commit_not_logged(self, why: str) -> list:
        """C3: the forced commit record did not reach the log: abort while nobody knows."""
        self.reason = f"the commit record could not be written: {why}"
        return self._step(Event.COMMIT_NOT_LOGGED)

    def on_restart(self, decision: str, damaged: bool = False) -> list:
        """Rebuild from the log: decision is "commit", "abort" or "" (none logged)."""
        if damaged:
            return self._step(Event.RESTART_DAMAGED)
        return self._step({"commit": Event.RESTART_COMMIT, "abort": Event.RESTART_ABORT}
                          .get(decision, Event.RESTART_NONE))

    # ---- what others may see ---------------------------------------------------------

    @property
    def decision(self) -> TxState:
        """committed or aborted once decided (UNKNOWN before)."""
        if self.state in (CoordState.COMMITTING, CoordState.COMMITTED):
            return TxState.COMMITTED
        if self.state in (CoordState.ABORTING, CoordState.ABORTED):
            return TxState.ABORTED
        return TxState.UNKNOWN

    def waiting_for(self) -> list:
        """Participants whose acknowledgement is still awaited: none once the transaction
        is finished (under presumed commit, as soon as commit is forced: C12)."""
        if self.state in (CoordState.COMMITTED, CoordState.ABORTED):
            return []
        return self._not_acknowledged()

    def _not_acknowledged(self) -> list:
        return [p for p in self.participants if p not in self.acks]

    # ---- the table at work -------------------------------------------------------------

    def _step(self, event: Event) -> list:
        row = self.table.get((self.state, event))
        if row is None:
            raise ProtocolViolation("coordinator", self.state, event.value)
        self.state = row.next
        return [e for do in row.effects for e in self._effects(do)]

    def _effects(self, do: Do) -> list:
        if do in (Do.LOG_BEGIN, Do.FORCE_BEGIN):
            return [Record(self.txid, "begin", forced=do is Do.FORCE_BEGIN)]
        if do is Do.FORCE_COMMIT:
            return [Record(self.txid, "commit", forced=True)]
        if do in (Do.LOG_ABORT, Do.FORCE_ABORT):
            return [Record(self.txid, "abort", forced=do is Do.FORCE_ABORT,
                           reason=self.reason)]
        if do is Do.LOG_END:
            return [Record(self.txid, "end", forced=False, reason=self.reason)]
        if do is Do.SEND_PREPARE:
            return [Send(b, Prepare(self.txid, self.coordinator, tuple(self.plan[b]),
                                    tuple(self.participants)))
                    for b in self.participants]
        if do is Do.SEND_DECISION:
            message = Commit if self.decision is TxState.COMMITTED else Abort
            return [Send(b, message(self.txid)) for b in self._not_acknowledged()]
        if do is Do.TELL_CLIENT:
            return [Reply(Outcome(self.txid, self.decision.value, self.reason))]
        assert do is Do.ANSWER, do
        answer = self.decision.value if self.state in DECIDED else \
            "in-doubt" if self.state is CoordState.IN_DOUBT else "pending"
        return [Reply(DecisionAnswer(self.txid, answer))]
