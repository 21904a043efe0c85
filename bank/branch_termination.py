"""A branch in doubt: the termination protocol, cooperative termination and heuristics.

Role: carry out, for a branch server, what the participant core (bank/core/
participant.py) decides for a prepared transaction whose decision has not arrived:
ask the coordinator (P6); if it cannot be reached, ask the other participants (P9);
answer a peer that asks us (P8); and let the teacher force a heuristic decision
(P10), recording the damage if the coordinator later decided otherwise (P11).
Mixed into bank.branch_service.Branch.

Rules:
  * The core decides; this file only sends the queries the core returns and feeds the
    answers back through the ledger's commit or abort step (durable before anyone hears).
    That step rebuilds the core from the transaction's durable row and carries out its
    effects in the same SQLite transaction, so here a peer's answer only asks the core
    whether it decides anything (on_peer_answer: an empty list means keep waiting). A
    prepared transaction found after a restart is asked about through the timeout row:
    the table's restart row (P6) asks the same, and the explorer plays it.
  * T1 - the other participants are asked only when the coordinator has given no
    answer at all (down, cut off), or only "in-doubt", for ``--ask-peers-after``
    seconds (default 30): a coordinator that answers "pending" is still deciding, and
    one that is merely restarting will answer soon; but one that answers "in-doubt"
    runs on a damaged log (C9), or a log newer than the txid (C14), and will not know
    until an operator restores it, or ever, while a peer may know already. A txn
    decided heuristically and not yet told asks them alike (P11), to record the
    decision beside its own.
  * T2 - a peer that cannot be reached tells us nothing, like one in doubt: its silence
    ("") is never fed to the core, and the narration says it cannot be reached.
  * T3 - the branch narrates every query and every answer in its terminal (BR5), so a
    class sees who asked whom and what it learned, or that it still waits.
  * T4 - each prepared transaction times out on its own clock (P6): it is asked about
    once it has waited ``--ask-every`` seconds, not at the loop's next tick; after a
    restart, every prepared one is asked about at once.
  * T5 - a decision learned while this server's role refuses writes (a replicated
    primary restarted asks the coordinator at once, before its first lease arrives;
    a lease lost, or a newer primary, R4, R8) is not applied now: one sentence in
    the terminal, and the transaction stays prepared and is asked about again at the
    next tick. The refusal never ends the pass: the other prepared ones are asked too.
    Only a refusal that may pass is "not now" (NOT_NOW: unavailable, as with no lease,
    a newer primary or a full disk; not the primary): any other, such as a protocol
    violation (P7), is a bug and stops the pass loudly, with its traceback.

Glossary:
  peer        another participant of the same transaction (named in the prepare)
  in-doubt    a peer's answer: it is prepared too and does not know the decision
  heuristic   a decision taken by an operator, not by the coordinator (P10)
  damage      a heuristic decision the coordinator's decision contradicts (P11)
"""

import logging
import time

from bank import rpc
from bank.core.messages import IN_DOUBT, TxState
from bank.errors import BankError, FaultCode, check_branch_name, check_token
from bank.money import format_amount, format_delta

log = logging.getLogger("branch")

DECIDED = (TxState.COMMITTED.value, TxState.ABORTED.value)
ASK_PEERS_AFTER = 30.0   # seconds of coordinator silence before the peers are asked (T1)
NOT_NOW = (FaultCode.UNAVAILABLE, FaultCode.NOT_PRIMARY)   # T5: the write may succeed later
HEURISTIC_WORDS = {"commit": TxState.COMMITTED.value, "committed": TxState.COMMITTED.value,
                   "abort": TxState.ABORTED.value, "aborted": TxState.ABORTED.value}


class Termination:
    """Mixed into Branch: what a branch does while it is in doubt, and for peers in doubt."""

    # ---- RPCs ---------------------------------------------------------------------------

    def outcome(self, txid, asker="") -> dict:
        """P8: what this branch knows of txid, for another participant in doubt:
        {"txid", "branch", "outcome": "committed"|"aborted"|"in-doubt"}. A txid this
        branch never voted on is first recorded aborted, so it can never vote yes on it.

        Example: outcome("C1-20261125T130102-9f3a2c", "Delhi")
        """
        txid = check_token(txid, "transaction id")
        asker = check_branch_name(asker) if asker not in ("", None) else "a peer"
        never_voted = self.ledger.txn_state(txid) is TxState.UNKNOWN
        known = self._write(self.ledger.peer_outcome, txid, asker)
        heuristic = known == IN_DOUBT and self.ledger.status(txid)["heuristic"]
        why = (" (it had not voted: recorded aborted first, so it never will)" if never_voted
               else f" (it {heuristic} heuristically: an operator's guess is not passed on "
                    "as the decision, P8, P10)" if heuristic
               else " (it is waiting too)" if known == IN_DOUBT else "")
        log.info("cooperative termination: %s asked about %s; %s answers %s%s.", asker, txid,
                 self.name, known, why)
        return {"txid": txid, "branch": self.name, "outcome": known}

    def heuristic(self, txid, outcome) -> dict:
        """P10 (teacher): force an in-doubt txid to "commit" or "abort" without the
        coordinator, recorded durably as heuristic. If the coordinator later decides
        otherwise, the branch records the damage (P11) and the audit shows it.

        Example: heuristic("C1-20261125T130102-9f3a2c", "abort")
        """
        txid = check_token(txid, "transaction id")
        decided = HEURISTIC_WORDS.get(outcome) if isinstance(outcome, str) else None
        if decided is None:
            raise BankError(FaultCode.BAD_INPUT, "A heuristic decision is \"commit\" or "
                            "\"abort\"; nothing was changed.")
        state = self._write(self.ledger.heuristic, txid, decided)
        log.warning("heuristic decision: the operator forced %s to %s here, without the "
                    "coordinator; the hold is released. If the coordinator decided "
                    "otherwise, the damage will be recorded.", txid, state.value)
        return {"txid": txid, "state": state.value, "heuristic": state.value}

    def heuristics(self) -> list:
        """Every heuristic decision of this branch, with the coordinator's decision where it
        contradicted it: [{"txid", "state", "heuristic", "damage", "ops", ...}]."""
        return self.ledger.heuristic_damage()

    # ---- the termination loop: P6, then P9 -------------------------------------------

    def resolve_in_doubt(self, after_restart: bool = False) -> int:
        """P6: each prepared txn's timer fires; the core asks its coordinator for the
        decision; if the coordinator gives no answer, the core asks the other
        participants (P9). What we learn goes through the core's commit or abort step.

        Returns how many were resolved. Nobody knowing changes nothing: we ask again later.
        """
        resolved = 0
        for txn in self._timed_out(self.ledger.waiting(), after_restart):
            for query in txn.on_timeout():          # Send(coordinator, DecisionQuery)
                decision = self._ask_decision(query.message.txid, query.to)
                if decision in DECIDED:
                    resolved += self._learn(txn.txid, decision,
                                            f"the coordinator at {query.to}")
                elif decision in ("", IN_DOUBT) and txn.peers and \
                        self._silent_long(txn.txid):                       # T1, P9, P11
                    resolved += self._ask_peers(txn, query.to, decision)
                elif txn.heuristic:                 # P11: the decision, to record beside it
                    log.info("termination: %s was decided %s here by the operator "
                             "(heuristic); asked the coordinator at %s for its decision: "
                             "%s. Asking again until it answers, so that any damage is "
                             "recorded (P11).", txn.txid, txn.heuristic, query.to,
                             _answer_text(decision))
                else:                                               # BR5: still blocked
                    log.info("termination: %s is in doubt; asked the coordinator at %s "
                             "for the decision: %s. Still %s.", txn.txid, query.to,
                             _answer_text(decision), _held_text(self.name, txn.ops))
        return resolved

    def _timed_out(self, waiting: list, after_restart: bool) -> list:
        """T4: P6's timeout is each transaction's own. One prepared a moment ago is not
        asked about at the loop's next tick (its decision is most likely on its way, and
        the question would only race it), but once it has waited a whole ask_every.
        After a restart, every prepared one has waited long enough: ask at once."""
        now = time.monotonic()
        since = now - self.ask_every if after_restart else now     # due at once, or later
        self._prepared_since = {t.txid: self._prepared_since.get(t.txid, since)
                                for t in waiting}   # forgets the resolved: stays small
        return [t for t in waiting if now - self._prepared_since[t.txid] >= self.ask_every]

    def _silent_long(self, txid: str) -> bool:
        """T1: has the coordinator been silent (or in doubt) about txid for
        ask_peers_after seconds?"""
        since = self._silent_since.setdefault(txid, time.monotonic())
        return time.monotonic() - since >= self.ask_peers_after

    def _ask_peers(self, txn, coordinator_url: str, decision: str = "") -> int:
        """P9: ask each other participant in turn; the first that knows decides for us.
        decision: what the coordinator said, "" (nothing) or in-doubt (T1)."""
        why = "cannot be reached"
        if decision == IN_DOUBT:                   # C9 or C14
            why = "is in doubt itself (its recovery log is damaged, or newer than the txid)"
        waits = f"was decided {txn.heuristic} here heuristically (P11)" if txn.heuristic \
            else "is in doubt"
        log.info("termination: %s %s and the coordinator at %s %s; asking the "
                 "other participants (%s).", txn.txid, waits, coordinator_url, why,
                 ", ".join(name for name, _ in txn.peers))
        addresses = dict(txn.peers)
        for query in txn.on_coordinator_unreachable():       # Send(peer, OutcomeQuery)
            known = self._ask_peer(query.to, addresses.get(query.to, ""), txn.txid)
            log.info("termination: asking %s about %s: %s says %s.", query.to, txn.txid,
                     query.to, _peer_text(known))
            if known in DECIDED and txn.on_peer_answer(known):
                return self._learn(txn.txid, known, query.to)
        still = f"decided {txn.heuristic} here heuristically" if txn.heuristic \
            else _held_text(self.name, txn.ops)
        log.info("termination: nobody knows the outcome of %s yet; still %s, and asking "
                 "again in %g s.", txn.txid, still, self.ask_every)
        return 0

    def _learn(self, txid: str, decision: str, source: str) -> int:
        """Apply a decision learned from the coordinator or a peer: 1 if applied, 0 if
        our role refused the write for now (T5), so the txn stays prepared and is asked
        about again at the next tick."""
        learn = {TxState.COMMITTED.value: self.ledger.commit,
                 TxState.ABORTED.value: self.ledger.abort}
        try:
            ack = self._write(learn[decision], txid)
        except BankError as refused:     # T5: R8 (no lease yet, or lost), or fenced (R4)
            if refused.code not in NOT_NOW:      # a protocol violation is a bug: loud
                raise
            log.info("termination: learned %s for %s from %s, but this server cannot "
                     "write it now: %s Asking again in %g s.", decision, txid, source,
                     refused.message, self.ask_every)
            return 0
        self._silent_since.pop(txid, None)
        if not ack.heuristic:
            log.info("termination: learned %s for %s from %s; the hold is released.",
                     decision, txid, source)
        elif ack.heuristic == decision:                                   # P11
            log.info("termination: learned %s for %s from %s, as the operator had "
                     "forced here (heuristic): no damage.", decision, txid, source)
        else:
            log.warning("termination: learned %s for %s from %s, but the operator had "
                        "forced %s here (heuristic): heuristic damage recorded; the money "
                        "does not balance across branches (see check).", decision, txid,
                        source, ack.heuristic)
        return 1

    def _ask_decision(self, txid: str, coordinator_url: str) -> str:
        """The coordinator's decision, "pending", "in-doubt", or "" if it did not answer."""
        client = self._coordinators.get(coordinator_url)
        if client is None:
            client = self._coordinators[coordinator_url] = rpc.Client(
                coordinator_url, self.secret, timeout=3, label="the coordinator")
        try:
            answer = client.call("decision", txid, self.name)
        except BankError as exc:
            log.debug("termination: no decision for %s yet (%s)", txid, exc)
            return ""
        decision = answer.get("decision", "") if isinstance(answer, dict) else ""
        if decision != IN_DOUBT:                # it knows, or soon will: T1 starts over
            self._silent_since.pop(txid, None)
        return decision

    def _ask_peer(self, name: str, url: str, txid: str) -> str:
        """A peer's answer (P8); "" if it cannot be reached, in-doubt if it has no
        address (T2: either way it tells us nothing)."""
        if not url:
            return IN_DOUBT
        try:
            answer = rpc.Client(url, self.secret, timeout=3,
                                label=f"branch {name}").call("outcome", txid, self.name)
        except BankError as exc:
            log.debug("termination: %s did not answer about %s (%s)", name, txid, exc)
            return ""
        known = answer.get("outcome", "") if isinstance(answer, dict) else ""
        return known if known in DECIDED + (IN_DOUBT,) else ""

    def run_termination(self):
        """Background loop: resolve in-doubt txns now (after a restart) and every few s."""
        after_restart = True
        while not self._stop.is_set():
            try:
                if self.role == "primary":
                    self.resolve_in_doubt(after_restart)
                    after_restart = False
            except Exception:
                log.exception("termination loop")
            self._stop.wait(self.ask_every)


def _ops_text(branch: str, ops) -> str:
    """[("1001", -10000)] -> "Mumbai/1001 -100.00" (BR5's sentences)."""
    return ", ".join(f"{branch}/{number} {format_delta(delta)}" for number, delta in ops)


def _held_text(branch: str, ops) -> str:
    """What a yes vote holds (BR5): "holding 100.00 of Mumbai/1001"; a credit holds nothing
    but waits too ("holding nothing; its credit of 100.00 to Delhi/1002 waits")."""
    debits = [f"{format_amount(-delta)} of {branch}/{number}" for number, delta in ops
              if delta < 0]
    credits = [f"{format_amount(delta)} to {branch}/{number}" for number, delta in ops
               if delta > 0]
    if debits:
        return "holding " + ", ".join(debits)
    return "holding nothing; its credit of " + ", ".join(credits) + " waits"


def _answer_text(decision: str) -> str:
    """The coordinator's answer to a decision query, in words (BR5)."""
    return {"": "no answer", "pending": "not decided yet"}.get(decision, decision)


def _peer_text(known: str) -> str:
    """A peer's answer, in words (T3)."""
    return {"": "nothing (it cannot be reached)",
            IN_DOUBT: "it does not know either (in doubt too)"}.get(known, known)
