"""The simulated world: the kit's own protocol cores on a deterministic network.

Role: hold one state of a small bank (a coordinator, two or three branches, a few
transfers), list what may happen next, and carry out one of those things. Every
decision is taken by the very objects the servers run (ParticipantTxn and
CoordinatorTxn from bank/core, or a broken variant's subclass of them); this file
only plays the parts of SQLite, the recovery log, the network and the clock.

Rules:
  * W1 - the cores decide, the world carries out: each step rebuilds a core from the
    state (a participant from its txns row, as bank/ledger.py does; a coordinator
    transaction from memory or, after a restart, from its log records, as
    bank/twopc.py does), feeds it one event and carries out its effects in the order
    the core lists them.
  * W2 - a branch's durable state is its txns rows and its accounts (balance, held).
    All effects of one participant step are one SQLite transaction: they become
    durable together, and its answer leaves only after them.
  * W3 - the coordinator's durable state is its log. A forced record makes it and
    every record before it durable; an unforced one is lost in a crash until a later
    forced record (a crash here is a power cut). Its transactions in memory are
    volatile: a restart rebuilds them from the log (C8).
  * W4 - a process that is down receives nothing: a crash loses the messages on
    their way to it (calls in progress fail), and a message sent to it is lost.
  * W5 - a crash may cut a step in two: after some of its effects, before the rest
    (the coordinator between any two; a participant after its durable part, before
    its answer).
  * W6 - faults come from budgets: each run may crash, lose, duplicate and
    partition only so many times (the explorer's options), so the states are finite.
  * W7 - everything is a value: a State is made of tuples and frozensets, so it can
    be hashed, compared and replayed exactly. Nothing here reads a clock or a die.
  * W8 - time is a timer that is due: a vote timeout, a retry of a decision, a
    prepared branch's query (to the coordinator, or to its peers while the coordinator
    is down) may fire only for a transaction with no message on its way. A branch told
    "in-doubt" by its coordinator asks its peers at once: the core's on_decision says
    so (P9). The server first waits --ask-peers-after seconds of such answers (T1 in
    bank/branch_termination.py); asking the coordinator again meanwhile changes nothing.
  * W9 - a lost log (the teacher deletes it, or starts the coordinator on a new one):
    the coordinator stops if it is up (a crash, W4), and comes back on a new, empty
    log created one second later on the world's clock, which ticks only then. Every
    txid is stamped with the second it began (bank/twopc_memory.py, D7), so a txid
    begun before the new log is older than it: the core's own answer_unknown decides
    what the coordinator says about it (C14). Off unless --log-losses is given.

Glossary:
  envelope   a message on its way: (sender, receiver, message)
  action     one thing that may happen next: deliver, lose, duplicate, crash, ...
  note       a line of the sequence diagram, produced while a step is carried out
  ghost      facts kept only for the invariants (who voted yes, what was decided)
  second     the world's clock: 0 at first, one more for each lost log (W9)
"""

from dataclasses import dataclass
from typing import NamedTuple

from bank.core.messages import CoordState, TxState
from bank.explorer import variants

COORDINATOR = "coordinator"
CLIENT = "client"
ACCOUNT = "1001"                             # every branch has one account
OPENING = 10_000                             # its opening balance, in paise (100.00)
BRANCH_NAMES = ("Mumbai", "Delhi", "Chennai")
FAULTS = ("crashes", "losses", "duplicates", "partitions", "log_losses")


# ---- the configuration: who takes part, what they try, which faults are allowed ---------

@dataclass(frozen=True)
class Config:
    branches: int = 2        # 2 or 3
    transfers: int = 2       # 1 to 3; T2 is always unaffordable (a no vote)
    crashes: int = 1
    losses: int = 1
    duplicates: int = 0
    partitions: int = 0
    log_losses: int = 0      # the coordinator's log lost, a new one begun (W9)
    variant: str = ""        # "" is the kit as it is; else a name in variants.VARIANTS
    presumption: str = "abort"   # the coordinator's table: nothing, abort or commit

    def budget(self, fault: str) -> int:
        return getattr(self, fault)


class Transfer(NamedTuple):
    txid: str
    src: str
    dst: str
    amount: int              # paise


def transfers_for(config: Config) -> tuple:
    """T1 is affordable, T2 is not (500.00 from an account holding 100.00), T3 is."""
    names = BRANCH_NAMES[:config.branches]
    third = names[-1]
    plan = (Transfer("T1", names[0], names[1], 6_000),
            Transfer("T2", names[1], third if config.branches > 2 else names[0], 50_000),
            Transfer("T3", third, names[0], 3_000))
    return plan[:config.transfers]


# ---- the state: values only (W7) --------------------------------------------------------

class Envelope(NamedTuple):
    src: str
    dst: str
    message: object


class Branch(NamedTuple):
    up: bool
    accounts: tuple          # ((number, balance, held), ...)
    rows: tuple              # ((txid, state, coordinator, ops, reason, peers), ...): txns table


class Coordinator(NamedTuple):
    up: bool
    log: frozenset           # durable records: {(txid, kind), ...} (recovery needs no order)
    unflushed: frozenset     # records written but not forced: lost in a crash (W3)
    memory: tuple            # ((txid, state, votes, acks, reason), ...): volatile
    created: int = 0         # the second its log was created (its created record, W9)


class Ghost(NamedTuple):
    """What the invariants need to know about the past."""
    yes_votes: frozenset     # (branch, txid): a yes vote left the branch, still prepared
    decisions: frozenset     # (txid, "aborted"): the coordinator decided abort
    lone_aborts: frozenset   # (branch, txid): aborted after a yes, no abort decided


class State(NamedTuple):
    coordinator: Coordinator
    branches: tuple          # a Branch per name, in BRANCH_NAMES order
    network: frozenset       # Envelopes on their way (a set: a resend of one is a no-op)
    cut: frozenset           # branches cut off from the coordinator (a partition)
    started: frozenset       # (txid, second it was stamped): the client asked for it
    told: frozenset          # (txid, outcome) the client was told
    used: tuple              # faults used so far, in FAULTS order
    ghost: Ghost


class Action(NamedTuple):
    """One thing that may happen next. crash_after > 0: the process crashes after
    carrying out that many effects of this step (W5)."""
    kind: str                # start deliver duplicate lose crash restart timeout
    who: str                 # ask-peers vote-timeout retry partition heal lose-log
    txid: str = ""
    branch: str = ""
    envelope: object = None
    crash_after: int = 0


class Note(NamedTuple):
    """A line of the sequence diagram."""
    src: str
    dst: str
    label: str
    detail: str = ""
    kind: str = "msg"        # msg, lost, crash, self


# ---- the world -------------------------------------------------------------------------

class World:
    """The simulator for one configuration: the initial state, what may happen, a step."""

    def __init__(self, config: Config):
        self.config = config
        self.variant = variants.get(config.variant)
        self.names = BRANCH_NAMES[:config.branches]
        self.index = {name: i for i, name in enumerate(self.names)}
        self.transfers = transfers_for(config)
        self.plans = {t.txid: {t.src: ((ACCOUNT, -t.amount),), t.dst: ((ACCOUNT, t.amount),)}
                      for t in self.transfers}

    def initial(self) -> State:
        branch = Branch(True, ((ACCOUNT, OPENING, 0),), ())
        return State(Coordinator(True, frozenset(), frozenset(), ()), (branch,) * len(self.names),
                     frozenset(), frozenset(), frozenset(), frozenset(),
                     (0,) * len(FAULTS), Ghost(frozenset(), frozenset(), frozenset()))

    def total(self) -> int:
        return OPENING * len(self.names)

    # ---- what may happen next --------------------------------------------------------

    def actions(self, state: State) -> list:
        """Every enabled action, in a fixed order (crash cuts come from successors)."""
        left = {f: self.config.budget(f) - n for f, n in zip(FAULTS, state.used)}
        up = self.up(state)
        found = [Action("start", CLIENT, t.txid) for t in self.transfers
                 if stamp_of(state, t.txid) is None and up[COORDINATOR]]
        for env in sorted(state.network, key=_order):
            if self.deliverable(state, env, up):
                found.append(Action("deliver", env.dst, envelope=env))
                if left["duplicates"]:
                    found.append(Action("duplicate", env.dst, envelope=env))
            if left["losses"]:
                found.append(Action("lose", env.dst, envelope=env))
        found += self._timer_actions(state, up)
        found += [Action("restart", p) for p in (COORDINATOR, *self.names) if not up[p]]
        if left["crashes"]:
            found += [Action("crash", p) for p in (COORDINATOR, *self.names) if up[p]]
        if left["partitions"]:
            found += [Action("partition", COORDINATOR, branch=b) for b in self.names
                      if b not in state.cut]
        found += [Action("heal", COORDINATOR, branch=b) for b in sorted(state.cut)]
        if left["log_losses"] and state.started:  # (lost before any begin, a log would
            found.append(Action("lose-log", COORDINATOR))  # only copy the world without)
        return found

    def _timer_actions(self, state: State, up: dict) -> list:
        """Timers that are due (W8): a vote timeout, a retry, a branch's query."""
        busy = {env.message.txid for env in state.network if self.deliverable(state, env, up)}
        found = []
        if up[COORDINATOR]:
            for txid, cstate, votes, acks, _ in state.coordinator.memory:
                if txid in busy:
                    continue
                if cstate is CoordState.PREPARING:
                    found += [Action("vote-timeout", COORDINATOR, txid, b)
                              for b in sorted(self.plans[txid]) if b not in dict(votes)]
                elif cstate in (CoordState.COMMITTING, CoordState.ABORTING) \
                        and len(acks) < len(self.plans[txid]):
                    found.append(Action("retry", COORDINATOR, txid))
        for name, branch in zip(self.names, state.branches):
            if branch.up:
                found += [Action("timeout", name, row[0]) for row in branch.rows
                          if row[1] is TxState.PREPARED and row[0] not in busy]
            if branch.up and not up[COORDINATOR]:                      # P9 (T1)
                found += [Action("ask-peers", name, row[0]) for row in branch.rows
                          if row[1] is TxState.PREPARED and row[5] and row[0] not in busy]
        return found

    def successors(self, state: State, actions=None):
        """(action, next state) for every action, and every crash that cuts a step (W5)."""
        crashes_left = state.used[0] < self.config.crashes
        for action in self.actions(state) if actions is None else actions:
            after, _, cuts = self.step(state, action, with_notes=False)
            yield action, after
            if crashes_left:
                for k in cuts:
                    cut = action._replace(crash_after=k)
                    yield cut, self.step(state, cut, with_notes=False)[0]

    def up(self, state: State) -> dict:
        return {COORDINATOR: state.coordinator.up,
                **{n: b.up for n, b in zip(self.names, state.branches)}}

    def deliverable(self, state: State, env: Envelope, up=None) -> bool:
        if not (up or self.up(state))[env.dst]:
            return False
        return not state.cut or env.src not in state.cut and env.dst not in state.cut

    # ---- one step ------------------------------------------------------------------------

    def step(self, state: State, action: Action, with_notes: bool = True) -> tuple:
        """(next state, notes, crash cuts possible in this step). Refuses an action that
        is not enabled in this state with a ValueError (a replayed trace that diverged)."""
        from bank.explorer.steps import StepRun     # the carrying out of one step
        run = StepRun(self, state, with_notes)
        run.do(action)
        return run.freeze(), run.notes, run.cuts


def stamp_of(state: State, txid: str):
    """The second txid was stamped with (W9), or None if it has not begun."""
    return next((second for t, second in state.started if t == txid), None)


def stamped(txid: str, second: int) -> str:
    """txid as bank/twopc.py names it (<name>-<UTC second>-<serial>, D7), with its second
    on the world's clock, for the core's begun_before to read (C14)."""
    return f"{txid}-{clock_second(second)}-0"


def clock_second(second: int) -> str:
    """A second of the world's clock, written as in a txid and a created record (Rule 9
    of bank/recovery_log.py); they sort as the seconds do."""
    return f"20260101T{second:06d}"


def _order(env: Envelope) -> tuple:
    """A fixed order for envelopes, so every run lists its actions the same way."""
    key = _ORDER.get(env)
    if key is None:
        m = env.message
        key = _ORDER[env] = (m.txid, env.src, env.dst, type(m).__name__, repr(m))
    return key


_ORDER = {}          # envelope -> its place in the order (a few hundred envelopes at most)

