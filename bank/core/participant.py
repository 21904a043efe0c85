"""The participant: one branch's view of one transaction, as a table that decides.

Role: decide every 2PC step of a branch: how to vote, what to hold, what to apply,
what to record, what to answer. It is pure: no SQL, no sockets, no threads, no
clock. bank/ledger.py carries out the effects inside one SQLite transaction, and
bank/branch_service.py sends the answers; neither decides anything.

The table (the first thing to read; the README's copy is generated from it):

    PARTICIPANT[(state, event)] = Step(rule, next state, effects in order)

Rules:
  * P1 - vote yes only with the money held: a valid prepare holds every debit and
    records "prepared" durably, and only then does the yes vote leave the branch.
  * P2 - a prepare that cannot be applied (no such account, not enough available
    money, a refusal) records "aborted" and votes no with the reason.
  * P3 - messages may be repeated: a prepare for a known txid gets the recorded vote
    again (if it asks for the same ops); a repeated commit or abort is acknowledged
    again and changes nothing.
  * P4 - commit releases the holds and applies every op, durably, then acknowledges.
    It cannot fail: the money was reserved at prepare (P1).
  * P5 - abort releases the holds (if any) and records "aborted". An abort for an
    unknown txid is recorded too, so that a prepare arriving late votes no.
  * P6 - a participant that voted yes never decides alone: on a timeout or after a
    restart it keeps the holds and asks the coordinator (termination protocol).
  * P7 - anything else is a protocol violation, refused, changing nothing: commit of
    an unknown or aborted txid, abort of a committed one, a prepare that reuses a
    known txid for other ops (two transactions sharing an id: answering it the
    recorded vote would tell the second one "yes" for money it never held).
  * P8 - a peer asks what we know of a txid (cooperative termination): committed or
    aborted is answered as it is; prepared answers "in-doubt" (we do not know either);
    a txid we never voted on is recorded "aborted" durably FIRST, then answered
    "aborted": we can never vote yes on it later, so the answer is safe to act on.
  * P9 - an in-doubt participant that cannot reach its coordinator, or whose
    coordinator is in doubt itself (C9: its log is damaged; C14: its log is newer than
    the txid), asks the other
    participants (named in the prepare). A "committed" or "aborted" answer is applied
    as the coordinator's would be (P4, P5); if every peer is in doubt too, nothing
    changes: it keeps its holds and keeps asking (P6).
  * P10 - a heuristic decision: the operator forces an in-doubt transaction to commit
    or abort (a teacher's RPC). It is applied as P4 or P5 and recorded durably as
    heuristic. Only a prepared txid may be decided so.
  * P11 - the coordinator's decision arrives after a heuristic one: it is recorded
    durably next to the heuristic one and acknowledged, so the coordinator stops
    retrying; the same decision again is a repeat (P3). If it contradicts the
    heuristic one, that is the damage (a heuristic mixed outcome) the audit shows;
    nothing is undone: the money already moved. Until
    the coordinator's decision is known, a heuristic txn answers a peer "in-doubt"
    (P8): an operator's guess must not spread to the other participants, and the
    branch keeps asking the coordinator for it as P6 does: a coordinator need not tell
    it again (presumed commit forgets a commit once it is forced, C12), and damage
    nobody records is damage hidden. So, where P9 would, it asks the other
    participants too (a coordinator in doubt about a txid of a log that is gone, C14,
    never learns it): a peer's committed or aborted is the coordinator's decision
    (P8), recorded the same way.

Glossary:
  op        one account change of a transaction: (account number, signed paise)
  hold      money reserved by a prepared transaction; not available to spend
  in doubt  prepared, the decision not yet known here
  peer      another participant of the same transaction
  heuristic a decision taken by an operator instead of the coordinator (P10)
  damage    a heuristic decision the coordinator's decision contradicts (P11)
"""

import enum
from dataclasses import dataclass

from bank.core.messages import (IN_DOUBT, Ack, Apply, DecisionQuery, Hold, OutcomeAnswer,
                                OutcomeQuery, ProtocolViolation, Record, Reply, Send, TxState,
                                Vote, VoteMsg)

MAX_OPS = 64                      # ops in one prepare


class Event(str, enum.Enum):
    """What can happen to a participant's transaction."""
    PREPARE_OK = "prepare (all ops valid)"
    PREPARE_FAIL = "prepare (an op is invalid)"
    PREPARE_AGAIN = "prepare (txid already known)"
    PREPARE_OTHER = "prepare (txid already known, for other ops)"
    COMMIT = "commit"
    ABORT = "abort"
    TIMEOUT = "timeout (no decision yet)"
    RESTART = "restart"
    PEER_ASKS = "a peer asks for the outcome"
    NO_COORDINATOR = "timeout (the coordinator cannot be reached, or is in doubt itself)"
    HEURISTIC_COMMIT = "heuristic commit (operator)"
    HEURISTIC_ABORT = "heuristic abort (operator)"
    UNTOLD_TIMEOUT = "timeout (decided heuristically, the coordinator's decision unknown)"
    UNTOLD_NO_COORDINATOR = ("timeout (decided heuristically, the coordinator cannot be "
                             "reached or is in doubt itself)")
    AFTER_HEURISTIC = "the coordinator's decision, after a heuristic one"
    AFTER_HEURISTIC_AGAIN = "the same decision again, after a heuristic one"


class Do(str, enum.Enum):
    """The effects a row can name; ParticipantTxn turns each into effect values."""
    HOLD_DEBITS = "hold debits"
    RELEASE_HOLDS = "release holds"
    APPLY_OPS = "apply ops"
    RECORD = "record state (durable)"
    VOTE_YES = "vote yes"
    VOTE_NO = "vote no"
    VOTE_AGAIN = "answer the recorded vote"
    ACK = "acknowledge"
    ACK_AGAIN = "acknowledge again (nothing done)"
    ASK = "ask the coordinator"
    ANSWER_PEER = "answer the peer what we know"
    ASK_PEERS = "ask the other participants"
    RECORD_HEURISTIC = "record the heuristic decision (durable)"
    RECORD_DECISION = "record the coordinator's decision next to it (durable)"


@dataclass(frozen=True)
class Step:
    rule: str
    next: TxState
    effects: tuple


U, P, C, A = TxState.UNKNOWN, TxState.PREPARED, TxState.COMMITTED, TxState.ABORTED

PARTICIPANT = {
    (U, Event.PREPARE_OK):    Step("P1", P, (Do.HOLD_DEBITS, Do.RECORD, Do.VOTE_YES)),
    (U, Event.PREPARE_FAIL):  Step("P2", A, (Do.RECORD, Do.VOTE_NO)),
    (P, Event.PREPARE_AGAIN): Step("P3", P, (Do.VOTE_AGAIN,)),
    (C, Event.PREPARE_AGAIN): Step("P3", C, (Do.VOTE_AGAIN,)),
    (A, Event.PREPARE_AGAIN): Step("P3", A, (Do.VOTE_AGAIN,)),
    (P, Event.COMMIT):        Step("P4", C, (Do.RELEASE_HOLDS, Do.APPLY_OPS, Do.RECORD, Do.ACK)),
    (C, Event.COMMIT):        Step("P3", C, (Do.ACK_AGAIN,)),
    (P, Event.ABORT):         Step("P5", A, (Do.RELEASE_HOLDS, Do.RECORD, Do.ACK)),
    (U, Event.ABORT):         Step("P5", A, (Do.RECORD, Do.ACK)),
    (A, Event.ABORT):         Step("P3", A, (Do.ACK_AGAIN,)),
    (P, Event.TIMEOUT):       Step("P6", P, (Do.ASK,)),
    (P, Event.RESTART):       Step("P6", P, (Do.ASK,)),
    (U, Event.PEER_ASKS):     Step("P8", A, (Do.RECORD, Do.ANSWER_PEER)),
    (P, Event.PEER_ASKS):     Step("P8", P, (Do.ANSWER_PEER,)),
    (C, Event.PEER_ASKS):     Step("P8", C, (Do.ANSWER_PEER,)),
    (A, Event.PEER_ASKS):     Step("P8", A, (Do.ANSWER_PEER,)),
    (P, Event.NO_COORDINATOR): Step("P9", P, (Do.ASK_PEERS,)),
    (P, Event.HEURISTIC_COMMIT): Step("P10", C, (Do.RELEASE_HOLDS, Do.APPLY_OPS,
                                                 Do.RECORD_HEURISTIC, Do.ACK)),
    (P, Event.HEURISTIC_ABORT):  Step("P10", A, (Do.RELEASE_HOLDS, Do.RECORD_HEURISTIC, Do.ACK)),
    (C, Event.UNTOLD_TIMEOUT): Step("P11", C, (Do.ASK,)),
    (A, Event.UNTOLD_TIMEOUT): Step("P11", A, (Do.ASK,)),
    (C, Event.UNTOLD_NO_COORDINATOR): Step("P11", C, (Do.ASK_PEERS,)),
    (A, Event.UNTOLD_NO_COORDINATOR): Step("P11", A, (Do.ASK_PEERS,)),
    (C, Event.AFTER_HEURISTIC): Step("P11", C, (Do.RECORD_DECISION, Do.ACK)),
    (A, Event.AFTER_HEURISTIC): Step("P11", A, (Do.RECORD_DECISION, Do.ACK)),
    (C, Event.AFTER_HEURISTIC_AGAIN): Step("P3", C, (Do.ACK_AGAIN,)),
    (A, Event.AFTER_HEURISTIC_AGAIN): Step("P3", A, (Do.ACK_AGAIN,)),
    # Anything else is P7: (U, COMMIT), (A, COMMIT), (C, ABORT), a timeout or restart
    # of a transaction that is not in doubt, a heuristic decision of one not in doubt,
    # and PREPARE_OTHER in any state.
}
del U, P, C, A


def problem_with(ops, accounts: dict, branch: str) -> str:
    """Why these ops cannot be prepared, or '' if they can (rules P1, P2).

    accounts: number -> (balance, held) for the accounts that exist among the ops'.
    """
    if not ops:
        return "no operations for this branch"
    if len(ops) > MAX_OPS:
        return f"too many operations (at most {MAX_OPS})"
    debits = {}
    for number, delta in ops:
        if number not in accounts:
            return f"account {branch}/{number} does not exist"
        if delta < 0:
            debits[number] = debits.get(number, 0) - delta
    for number, amount in debits.items():
        balance, held = accounts[number]
        if balance - held < amount:
            hold = f"; {_money(held)} is held by transactions in doubt" if held else ""
            return (f"insufficient funds in {branch}/{number}: {_money(balance - held)} "
                    f"available, {_money(amount)} needed{hold}")
    return ""


def _others(peers, branch: str) -> tuple:
    """The other participants, as (name, address) pairs sorted by name (P9). The core
    only names them; the address is for the server that sends the query."""
    return tuple(sorted((str(name), str(address)) for name, address in peers
                        if name != branch))


def _money(paise: int) -> str:
    # The core formats its own reasons, so it needs no import from the wire layer.
    sign = "-" if paise < 0 else ""
    return f"{sign}{abs(paise) // 100}.{abs(paise) % 100:02d}"


class ParticipantTxn:
    """One transaction at one branch. Feed it events; carry out the effects it returns.

    Its fields are exactly what the branch keeps durably for the txid (its txns row),
    so recovery rebuilds it from that row alone. peers: ((name, address), ...) of the
    other participants (P9); heuristic: the operator's decision (P10); told: the
    coordinator's decision when it arrived after the heuristic one (P11).
    """

    def __init__(self, branch: str, txid: str, state: TxState = TxState.UNKNOWN,
                 coordinator: str = "", ops: tuple = (), reason: str = "",
                 peers: tuple = (), heuristic: str = "", told: str = ""):
        self.branch, self.txid, self.state = branch, txid, state
        self.coordinator, self.ops, self.reason = coordinator, tuple(ops), reason
        self.peers = _others(peers, branch)                       # whom to ask (P9)
        self.heuristic, self.told = heuristic, told               # P10, P11

    # ---- events ----------------------------------------------------------------------

    def on_prepare(self, coordinator: str, ops, accounts: dict, refuse: str = "",
                   peers: tuple = ()) -> list:
        """A prepare: P1 or P2 for a new txid (accounts as in problem_with), P3 if known
        (P7 if known for other ops).
        peers: the transaction's participants as (name, address) pairs (kept for P9)."""
        if self.state is not TxState.UNKNOWN:
            same = not self.ops or sorted(map(tuple, ops)) == sorted(self.ops)   # none: P5, P8
            return self._step(Event.PREPARE_AGAIN if same else Event.PREPARE_OTHER)
        problem = refuse or problem_with(ops, accounts, self.branch)
        self.coordinator, self.ops, self.reason = coordinator, tuple(ops), problem
        self.peers = _others(peers, self.branch)
        return self._step(Event.PREPARE_FAIL if problem else Event.PREPARE_OK)

    def on_commit(self) -> list:
        if self.heuristic:                                             # P11
            return self._after_heuristic(TxState.COMMITTED.value)
        return self._step(Event.COMMIT)

    def on_abort(self, coordinator: str = "") -> list:
        if self.heuristic:                                             # P11
            return self._after_heuristic(TxState.ABORTED.value)
        if self.state is TxState.UNKNOWN:
            self.coordinator, self.reason = coordinator, "aborted before any prepare arrived"
        return self._step(Event.ABORT)

    def _after_heuristic(self, decided: str) -> list:
        """P11: the coordinator's decision reaches a txid decided heuristically here: it
        is recorded beside the heuristic one; the same decision again is a repeat (P3)."""
        again = self.told == decided
        self.told = decided
        return self._step(Event.AFTER_HEURISTIC_AGAIN if again else Event.AFTER_HEURISTIC)

    def on_peer_query(self, asker: str) -> list:
        """P8: a peer asks what we know. A txid we never voted on is aborted for good first."""
        if self.state is TxState.UNKNOWN:
            self.reason = f"aborted before voting: {asker} asked for its outcome (P8)"
        return self._step(Event.PEER_ASKS)

    def on_coordinator_unreachable(self) -> list:
        """P9: the coordinator did not answer our query, or answered that it is in doubt
        itself (C9, C14): ask the other participants. So does a heuristic txn not yet
        told the coordinator's decision (P11); their answer is recorded beside it."""
        untold = self.heuristic and not self.told
        return self._step(Event.UNTOLD_NO_COORDINATOR if untold else Event.NO_COORDINATOR)

    def on_peer_answer(self, outcome: str) -> list:
        """P9: a peer's answer: committed or aborted is applied (P4, P5); in-doubt, wait."""
        if outcome in (TxState.COMMITTED.value, TxState.ABORTED.value):
            return self.on_decision(outcome)
        return []                                   # P6: nobody knows yet, keep waiting

    def on_heuristic(self, outcome: str) -> list:
        """P10: the operator forces this in-doubt txn to commit or abort (P7 if not in doubt)."""
        event = {TxState.COMMITTED.value: Event.HEURISTIC_COMMIT,
                 TxState.ABORTED.value: Event.HEURISTIC_ABORT}.get(outcome)
        if event is None:
            raise ProtocolViolation(f"participant {self.branch}", self.state,
                                    f"heuristic {outcome}", "P7")
        effects = self._step(event)
        self.heuristic = self.state.value
        return effects

    def on_timeout(self) -> list:
        """P6: ask the coordinator; P11: so does a heuristic txn not yet told its decision."""
        untold = self.heuristic and not self.told
        return self._step(Event.UNTOLD_TIMEOUT if untold else Event.TIMEOUT)

    def on_restart(self) -> list:
        return self._step(Event.RESTART)

    def on_decision(self, outcome: str) -> list:
        """The coordinator's answer to our query: committed, aborted, pending (wait), or
        in-doubt: it does not know either (C9, C14), so one still waiting asks its
        peers (P9, P11), as if the coordinator could not be reached."""
        if outcome == TxState.COMMITTED.value:
            return self.on_commit()
        if outcome == TxState.ABORTED.value:
            return self.on_abort()
        waiting = self.state is TxState.PREPARED or (self.heuristic and not self.told)
        if outcome == IN_DOUBT and waiting:
            return self.on_coordinator_unreachable()
        return []                                   # P6: still undecided, keep waiting

    # ---- the table at work -------------------------------------------------------------

    def _step(self, event: Event) -> list:
        """Look the step up (P7 if absent: nothing changes), build its effects, move on."""
        row = PARTICIPANT.get((self.state, event))
        if row is None:
            raise ProtocolViolation(f"participant {self.branch}", self.state, event.value, "P7")
        effects = [e for do in row.effects for e in self._effects(do, row.next)]
        self.state = row.next
        return effects

    def _effects(self, do: Do, next_state: TxState) -> list:
        debits = [(n, -d) for n, d in self.ops if d < 0]
        if do is Do.HOLD_DEBITS:
            return [Hold(n, amount) for n, amount in debits]
        if do is Do.RELEASE_HOLDS:
            return [Hold(n, -amount) for n, amount in debits]
        if do is Do.APPLY_OPS:
            return [Apply(n, d, self.txid) for n, d in self.ops]
        if do is Do.RECORD:
            return [Record(self.txid, next_state.value, forced=True, reason=self.reason)]
        if do is Do.RECORD_HEURISTIC:
            return [Record(self.txid, next_state.value, forced=True, heuristic=next_state.value,
                           reason=f"heuristic {next_state.value} by the operator (P10)")]
        if do is Do.RECORD_DECISION:
            return [Record(self.txid, next_state.value, forced=True, heuristic=self.heuristic,
                           told=self.told, reason=f"heuristic {self.heuristic}; the "
                           f"coordinator decided {self.told} (P11)")]
        if do is Do.ANSWER_PEER:
            known = next_state.value if next_state is not TxState.PREPARED else IN_DOUBT
            if self.heuristic:                  # P8: an operator's guess is not knowledge
                known = self.told or IN_DOUBT
            return [Reply(OutcomeAnswer(self.txid, self.branch, known))]
        if do is Do.ASK_PEERS:
            return [Send(name, OutcomeQuery(self.txid, self.branch)) for name, _ in self.peers]
        if do is Do.VOTE_YES:
            return [Reply(VoteMsg(self.txid, self.branch, Vote.YES))]
        if do is Do.VOTE_NO:
            return [Reply(VoteMsg(self.txid, self.branch, Vote.NO, self.reason))]
        if do is Do.VOTE_AGAIN:
            yes = self.state in (TxState.PREPARED, TxState.COMMITTED)
            return [Reply(VoteMsg(self.txid, self.branch, Vote.YES if yes else Vote.NO,
                                  f"already {self.state.value}"))]
        if do in (Do.ACK, Do.ACK_AGAIN):
            return [Reply(Ack(self.txid, self.branch, next_state, again=do is Do.ACK_AGAIN,
                              heuristic=self.heuristic or ""))]
        assert do is Do.ASK, do
        return [Send(self.coordinator, DecisionQuery(self.txid, self.branch))]
