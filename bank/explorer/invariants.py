"""What must hold in every state the explorer reaches, and what must happen in the end.

Role: judge states of the simulated world (bank/explorer/world.py). Safety rules are
checked in every state; progress is checked by letting the world run on with no
more faults and seeing that it finishes.

Rules (the invariants, by id; the explorer reports the first one broken):
  * atomicity            no transaction is committed at one branch and aborted at another
  * no-lone-abort        a branch whose yes vote left never aborts unless the coordinator
                         decided abort (P6)
  * told-is-final        the outcome the client was told is the outcome everywhere
  * conservation         balances plus money in flight equal the opening total (money in
                         flight: what a transfer has debited or credited at the branches
                         that committed it, while others have not yet)
  * no-negative-balance  no balance below zero
  * holds-within-balance 0 <= held <= balance for every account
  * holds-match-prepared every account's hold is exactly the debits of the transactions
                         prepared at its branch: a yes vote is backed by money (P1)
  * progress             once every process is up and every message can be delivered,
                         every transaction ends, nothing held, nothing in doubt; but
                         one left for an operator (below)

How progress is checked (a sound, cheaper stand-in for "from every reachable state,
some run without faults finishes"): from each state the world runs on with one fixed
fair schedule and no faults, the calm run (restart what is down, heal what is cut,
deliver every message, fire the timers that are due); if it finishes, a fault-free
finishing run exists. If it ends unfinished, or repeats a state, or takes more than
CALM_STEPS steps, that is a progress violation, shown with the calm run itself. A
breadth-first search does this for every state at no extra cost (CalmGraph).

Left for an operator: a transaction every participant holds in doubt, begun before
the coordinator's log was lost (W9), cannot end: the log that knew its outcome is
gone (the coordinator answers in-doubt, C14) and every peer answers in-doubt (P8),
so only an operator's heuristic decision ends it (P10). That is 2PC's blocking, not a
fault of the kit; every other transaction must end, and an in-doubt branch must end
as soon as one peer knows the outcome (P9).

Glossary:
  calm run   the fault-free fair schedule used for progress
  finished   all up, nothing on its way, every transfer begun and ended everywhere,
             no branch in doubt (but those left for an operator), no money held (but
             theirs)
"""

from typing import NamedTuple

from bank.core.messages import CoordState, TxState

CALM_STEPS = 200
FAULT_KINDS = ("crash", "lose", "duplicate", "partition", "lose-log")
CALM_ORDER = ("restart", "heal", "deliver", "start", "vote-timeout", "retry", "timeout")
TIMERS = ("timeout", "ask-peers")                 # a branch's timers (world.py, W8)

RULES = {
    "atomicity": "no transaction is committed at one branch and aborted at another",
    "no-lone-abort": "a branch that voted yes never aborts unless the coordinator decided "
                     "abort (P6)",
    "told-is-final": "the outcome the client was told is the final outcome everywhere",
    "conservation": "balances plus money in flight equal the money the bank opened with",
    "no-negative-balance": "no balance is ever negative",
    "holds-within-balance": "held money is never negative and never more than the balance",
    "holds-match-prepared": "every hold is exactly the debits of the transactions prepared "
                            "at that branch: a yes vote is backed by money (P1)",
    "progress": "once every process is up and every message can be delivered, every "
                "transaction ends, with nothing held and nothing in doubt (but one every "
                "participant holds in doubt after its log was lost: an operator's)",
}


class Violation(NamedTuple):
    invariant: str           # an id from RULES
    detail: str              # what is wrong, in this state

    @property
    def rule(self) -> str:
        return RULES[self.invariant]


def first_violation(world, state):
    """The first safety invariant this state breaks (a Violation), or None."""
    for check in SAFETY:
        detail = check(world, state)
        if detail:
            return Violation(check.__name__.replace("_", "-"), detail)
    return None


# ---- safety: in every state ---------------------------------------------------------------

def atomicity(world, state) -> str:
    for t in world.transfers:
        seen = {name: row[1] for name, b in zip(world.names, state.branches)
                for row in b.rows if row[0] == t.txid}
        if TxState.COMMITTED in seen.values() and TxState.ABORTED in seen.values():
            return f"{t.txid} is " + ", ".join(f"{s.value} at {n}" for n, s in seen.items())
    return ""


def no_lone_abort(world, state) -> str:
    return "; ".join(f"{b} aborted {t} on its own after voting yes, while the coordinator "
                     "had not decided abort" for b, t in sorted(state.ghost.lone_aborts))


def told_is_final(world, state) -> str:
    for txid, told in sorted(state.told):
        for name, b in zip(world.names, state.branches):
            for row in b.rows:
                if row[0] == txid and row[1] in (TxState.COMMITTED, TxState.ABORTED) \
                        and row[1].value != told:
                    return f"the client was told {txid} {told}, but it is {row[1].value} at {name}"
        decided = coordinator_decision(state, txid)
        if decided and decided != told:
            return f"the client was told {txid} {told}, but the coordinator now says {decided}"
    return ""


def conservation(world, state) -> str:
    balances = sum(a[1] for b in state.branches for a in b.accounts)
    applied = sum(d for b in state.branches for row in b.rows
                  if row[1] is TxState.COMMITTED for _, d in row[3])
    if balances - applied != world.total():
        return (f"balances add up to {balances} paise, money in flight {-applied}, but the "
                f"bank opened with {world.total()}")
    return ""


def no_negative_balance(world, state) -> str:
    return "; ".join(f"{name}/{a[0]} has balance {a[1]} paise"
                     for name, b in zip(world.names, state.branches)
                     for a in b.accounts if a[1] < 0)


def holds_within_balance(world, state) -> str:
    return "; ".join(f"{name}/{a[0]} holds {a[2]} of a balance of {a[1]} paise"
                     for name, b in zip(world.names, state.branches)
                     for a in b.accounts if not 0 <= a[2] <= a[1])


def holds_match_prepared(world, state) -> str:
    for name, b in zip(world.names, state.branches):
        owed = {}
        for row in b.rows:
            if row[1] is TxState.PREPARED:
                for number, delta in row[3]:
                    owed[number] = owed.get(number, 0) + max(0, -delta)
        for number, _, held in b.accounts:
            if held != owed.get(number, 0):
                return (f"{name}/{number} holds {held} paise, but its prepared transactions "
                        f"debit {owed.get(number, 0)}")
    return ""


SAFETY = (atomicity, no_lone_abort, told_is_final, conservation, no_negative_balance,
          holds_within_balance, holds_match_prepared)


def coordinator_decision(state, txid: str) -> str:
    """committed or aborted, as the coordinator's memory holds it now ('' if neither)."""
    for t, cstate, *_ in state.coordinator.memory:
        if t == txid:
            if cstate in (CoordState.COMMITTING, CoordState.COMMITTED):
                return TxState.COMMITTED.value
            if cstate in (CoordState.ABORTING, CoordState.ABORTED):
                return TxState.ABORTED.value
    return ""


# ---- progress: in the end -------------------------------------------------------------------

def finished(world, state) -> bool:
    """All up and healed, nothing on its way, every transfer begun and ended everywhere
    (but those left for an operator: their holds are all the money held)."""
    in_doubt = {row[0] for b in state.branches for row in b.rows
                if row[1] is TxState.PREPARED}
    return (state.coordinator.up and all(b.up for b in state.branches) and not state.cut
            and not state.network and len(state.started) == len(world.transfers)
            and all(m[1] in (CoordState.COMMITTED, CoordState.ABORTED)
                    for m in state.coordinator.memory)
            and in_doubt <= left_for_an_operator(world, state)
            and not holds_match_prepared(world, state))


def left_for_an_operator(world, state) -> set:
    """Txids begun before the coordinator's log was lost (W9) that every participant
    holds in doubt: nobody knows their outcome any more (C14, P8); an operator decides
    (P10)."""
    return {txid for txid, second in state.started if second < state.coordinator.created
            and all(rows_state(world, state, name, txid) is TxState.PREPARED
                    for name in world.plans[txid])}


def rows_state(world, state, name: str, txid: str):
    """The state of txid in branch name's txns table (None: no row)."""
    return next((row[1] for row in state.branches[world.index[name]].rows
                 if row[0] == txid), None)


def calm_action(world, state, actions=None):
    """The next action of the fault-free fair schedule, or None when nothing can happen.
    A timer of a txid left for an operator is not waited on: asking again about it
    changes nothing, and the schedule would never get to the others."""
    waiting = left_for_an_operator(world, state)
    calm = [a for a in (world.actions(state) if actions is None else actions)
            if a.kind not in FAULT_KINDS and not (a.txid in waiting and a.kind in TIMERS)]
    for kind in CALM_ORDER:
        for action in calm:
            if action.kind == kind:
                return action
    return None


def calm_run(world, state) -> tuple:
    """Run the calm schedule from state: (its actions, '' if it finishes, else why not)."""
    seen, actions = set(), []
    while not finished(world, state):
        action = calm_action(world, state)
        if action is None or state in seen or len(actions) >= CALM_STEPS:
            why = ("nothing more can happen" if action is None else
                   "it goes round in a circle" if state in seen else
                   f"it has not finished after {CALM_STEPS} steps")
            return actions, f"with no more faults, {why}: " + describe_unfinished(world, state)
        seen.add(state)
        actions.append(action)
        state = world.step(state, action, with_notes=False)[0]
    return actions, ""


def progress_violation(world, state):
    """(Violation, the calm run's actions) if the calm run from state does not finish."""
    actions, why = calm_run(world, state)
    return (Violation("progress", why), actions) if why else None


class CalmGraph:
    """Progress for a whole breadth-first search, with no extra steps: each expanded
    state remembers which state its calm action leads to (one of its successors,
    stepped anyway); at the end every chain is followed once, with memory."""

    FINISHED = "finished"

    def __init__(self, world):
        self.world, self.next = world, {}      # state hash -> next hash, FINISHED or None

    def remember(self, world, key, state, calm_key) -> None:
        self.next[key] = self.FINISHED if finished(world, state) else calm_key

    def first_stuck(self):
        """The hash of the first remembered state (breadth-first order) whose calm run
        does not finish, or None. A chain that leaves the remembered states (a search
        stopped by max_states) is not judged."""
        verdict = {}
        for start in self.next:
            chain, key = [], start
            while key not in verdict:
                if key is None or key in chain:
                    ok = False
                    break
                if key == self.FINISHED or key not in self.next:
                    ok = True
                    break
                chain.append(key)
                key = self.next[key]
            else:
                ok = verdict[key]
            verdict.update(dict.fromkeys(chain, ok))
            if not verdict.get(start, ok):
                return start
        return None


def describe_unfinished(world, state) -> str:
    """What is still not finished, in a sentence."""
    left = [f"{name} is in doubt about {row[0]}" for name, b in zip(world.names, state.branches)
            for row in b.rows if row[1] is TxState.PREPARED]
    left += [f"the coordinator has {m[0]} {m[1].value}" for m in state.coordinator.memory
             if m[1] not in (CoordState.COMMITTED, CoordState.ABORTED)]
    left += [f"{name}/{a[0]} holds {a[2]} paise" for name, b in zip(world.names, state.branches)
             for a in b.accounts if a[2]]
    left += [f"{len(state.network)} message(s) on their way"] if state.network else []
    return "; ".join(left) or "some transfer never started"
