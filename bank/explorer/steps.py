"""One step of the simulated world: feed a core one event and carry out its effects.

Role: what bank/ledger.py (a participant's SQLite transaction), bank/twopc.py (the
coordinator's driver) and the network do for real, done on plain Python values. A
StepRun copies the parts of a State it may change, carries out one Action and
freezes the result into the next State (BranchSteps holds its ledger part,
CoordinatorSteps its driver's). It decides nothing about the protocol: the core
objects do (rule W1 in world.py).

Rules (the W rules are in world.py):
  * S1 - effects are carried out in the order the core lists them; before each one a
    crash may cut the step (W5): that is the only way a crash lands inside a step.
  * S2 - a refused step (ProtocolViolation, rule P7) changes nothing but consumes its
    message, as the server's Fault does; the invariants judge what led to it.
  * S3 - a decision is written into the ghost as soon as the coordinator's core holds
    it at the end of a step, or as soon as any message reveals it.

Glossary:
  caller    who gets a Reply effect: the sender of the message being handled, or
            nobody (a timer, a restart, the answer to our own query)
  position  how many effects of this step have been carried out (for crash cuts)
"""

from bank.core.messages import (Abort, Ack, Apply, Commit, CoordState, DecisionAnswer,
                                DecisionQuery, Hold, Outcome, OutcomeAnswer, OutcomeQuery,
                                Prepare, ProtocolViolation, Record, Reply, Send, Silence,
                                TxState, Vote, VoteMsg)
from bank.explorer.world import (CLIENT, COORDINATOR, FAULTS, Branch, Coordinator,
                                 Envelope, Ghost, Note, State, clock_second, stamp_of,
                                 stamped)
from bank.money import format_amount, format_delta

LOG = "log"
DECIDED_BY_LOG = {"commit": TxState.COMMITTED.value, "abort": TxState.ABORTED.value}
DECIDED = (TxState.COMMITTED.value, TxState.ABORTED.value)


class BranchSteps:
    """What a branch's ledger does in a step (bank/ledger.py for real): a part of StepRun."""

    def at_branch(self, env) -> None:
        name, m = env.dst, env.message
        txn = self.participant(name, m.txid)
        try:
            if isinstance(m, Prepare):
                effects = txn.on_prepare(m.coordinator, m.ops, self.balances(name, m.ops),
                                         peers=tuple((p, "") for p in m.participants))
            elif isinstance(m, Commit):
                effects = txn.on_commit()
            elif isinstance(m, Abort):
                effects = txn.on_abort(env.src)
            elif isinstance(m, OutcomeQuery):                 # P8: a peer asks us
                effects = txn.on_peer_query(m.asker)
            elif isinstance(m, OutcomeAnswer):                # P9: a peer's answer
                effects = txn.on_peer_answer(m.outcome)
            else:
                assert isinstance(m, DecisionAnswer), m
                effects = txn.on_decision(m.outcome)
        except ProtocolViolation as exc:                      # S2
            self.note(name, name, "refused", str(exc), kind="self")
            return
        caller = None if isinstance(m, (DecisionAnswer, OutcomeAnswer)) else env.src
        self.participant_effects(name, txn, effects, caller)

    def participant(self, name: str, txid: str):
        """Rebuild the participant core from its txns row, as the ledger does."""
        row = self.rows_of(name).get(txid)
        if row is None:
            return self.variant.participant(name, txid)
        _, state, coordinator, ops, reason, peers = row
        return self.variant.participant(name, txid, state, coordinator, ops, reason, peers)

    def balances(self, name: str, ops) -> dict:
        accounts = self.draft(name)[0]
        return {n: tuple(accounts[n]) for n, _ in ops if n in accounts}

    def participant_effects(self, name: str, txn, effects: list, caller) -> None:
        """Carry out a participant's effects: one SQLite transaction, then the answer (W2)."""
        did, (accounts, _) = [], self.draft(name)
        for effect in effects:
            if did and isinstance(effect, (Reply, Send)):      # what it did, then its answer
                self.note(name, name, f"{txn.txid}: " + ", ".join(did), kind="self")
                did = []
            if not self.may_carry_out(name, effect):
                break
            if isinstance(effect, Hold):
                accounts[effect.account][1] += effect.amount
                did.append(f"{'holds' if effect.amount > 0 else 'releases'} "
                           f"{format_amount(abs(effect.amount))}")
            elif isinstance(effect, Apply):
                accounts[effect.account][0] += effect.delta
                did.append(f"balance {format_delta(effect.delta)}")
            elif isinstance(effect, Record):
                self.write_row(name, txn, effect)
                did.append(effect.kind)
            elif isinstance(effect, Reply):
                if caller is not None:
                    self.send(name, caller, effect.message)
                if isinstance(effect.message, VoteMsg) and effect.message.vote is Vote.YES:
                    self.yes = self.yes | {(name, txn.txid)}
            else:
                assert isinstance(effect, Send), effect
                self.send(name, effect.to, effect.message)
        if did:
            self.note(name, name, f"{txn.txid}: " + ", ".join(did), kind="self")

    def write_row(self, name: str, txn, record: Record) -> None:
        """The txns row moves on; its first reason stays (as ledger._save_txn does)."""
        rows = self.draft(name)[1]
        old = rows.get(txn.txid)
        reason = old[4] if old else record.reason
        state = TxState(record.kind)
        rows[txn.txid] = (txn.txid, state, txn.coordinator, txn.ops, reason, txn.peers)
        if state is TxState.ABORTED and (name, txn.txid) in self.yes \
                and (txn.txid, TxState.ABORTED.value) not in self.decisions:
            self.lone = self.lone | {(name, txn.txid)}
        if state is not TxState.PREPARED:            # final: its yes vote matters no more
            self.yes = self.yes - {(name, txn.txid)}



class CoordinatorSteps:
    """What the coordinator's driver does in a step (bank/twopc.py for real): a part of
    StepRun."""

    def at_coordinator(self, env) -> None:
        m = env.message
        if m.txid not in self.memory:
            if isinstance(m, DecisionQuery):                 # C8, from the log; C12, C14
                decided = next((k for k in DECIDED_BY_LOG if (m.txid, k) in self.log), "")
                answer = DECIDED_BY_LOG.get(decided) or self.answer_unknown(m.txid)
                self.send(COORDINATOR, env.src, DecisionAnswer(m.txid, answer))
            return                                              # a vote or ack for nothing
        core = self.coordinator_core(m.txid)
        if isinstance(m, VoteMsg):
            self.coordinator_effects(core, core.on_vote(m.branch, m.vote, m.reason), None)
            self.decide_if_all_voted(core)
        elif isinstance(m, Ack):
            self.coordinator_effects(core, core.on_ack(m.branch), caller=None)
        else:
            assert isinstance(m, DecisionQuery), m
            self.coordinator_effects(core, core.on_query(), caller=env.src)
        self.save(core)

    def answer_unknown(self, txid: str) -> str:
        """What the core answers for a txid its log holds no record of (C8, C12, C14),
        given the txid's stamp and the second the log was created (W9)."""
        return self.variant.coordinator.answer_unknown(
            stamped(txid, stamp_of(self.state, txid)), self.world.config.presumption,
            clock_second(self.created))

    def decide_if_all_voted(self, core) -> None:
        """The driver collects every vote (or its silence), then asks the core (C3, C4)."""
        if core.state is CoordState.PREPARING and set(core.votes) == set(core.participants):
            self.coordinator_effects(core, core.decide(), caller=CLIENT)

    def coordinator_core(self, txid: str):
        """The transaction's core, rebuilt from the coordinator's memory."""
        _, state, votes, acks, reason = self.memory[txid]
        core = self.new_core(txid)
        core.state, core.votes, core.acks, core.reason = state, dict(votes), set(acks), reason
        return core

    def new_core(self, txid: str):
        """A new coordinator core for txid, of the variant and presumption explored."""
        return self.variant.coordinator(txid, self.world.plans[txid], COORDINATOR,
                                        self.world.config.presumption)

    def save(self, core) -> None:
        if not self.coord_up:
            return                                  # crashed during the step: memory is gone
        self.memory_changed = True
        self.memory[core.txid] = (core.txid, core.state, tuple(sorted(core.votes.items())),
                                  frozenset(core.acks), core.reason)
        if core.decision is not TxState.UNKNOWN:
            self.decide(core.txid, core.decision.value)

    def coordinator_effects(self, core, effects: list, caller) -> None:
        """Carry out the coordinator's effects in order (S1); records go to the log (W3)."""
        for effect in effects:
            if not self.may_carry_out(COORDINATOR, effect):
                return
            if isinstance(effect, Record):
                self.write_log(effect)
            elif isinstance(effect, Send):
                self.send(COORDINATOR, effect.to, effect.message)
            elif isinstance(effect, Reply) and isinstance(effect.message, Outcome):
                self.told = self.told | {(effect.message.txid, effect.message.outcome)}
                self.reveal(effect.message)
                self.note(COORDINATOR, CLIENT, effect.message.outcome,
                          effect.message.reason, kind="msg")
            elif isinstance(effect, Reply) and caller not in (None, CLIENT):
                self.send(COORDINATOR, caller, effect.message)

    def write_log(self, record: Record) -> None:
        if record.forced:
            self.log = self.log | self.unflushed | {(record.txid, record.kind)}
            self.unflushed = frozenset()
        else:
            self.unflushed = self.unflushed | {(record.txid, record.kind)}
        self.note(COORDINATOR, LOG, f"{record.kind} {record.txid}",
                  "forced to disk" if record.forced else "not forced")


class StepRun(BranchSteps, CoordinatorSteps):
    """One step being carried out on mutable copies of a state's parts."""

    def __init__(self, world, state: State, with_notes: bool):
        self.world, self.variant, self.state = world, world.variant, state
        self.notes = [] if with_notes else None
        self.cuts, self.position, self.crash_after, self.stopped = [], 0, 0, False
        c = state.coordinator
        self.coord_up, self.log, self.unflushed, self.created = (c.up, c.log, c.unflushed,
                                                                 c.created)
        self.memory = {m[0]: m for m in c.memory}     # volatile: lost in a crash
        self.memory_changed = False
        # Frozensets and tuples are replaced, never changed; a branch is copied into
        # self.drafts only when a step changes it (most steps touch one process).
        self.branch_up, self.drafts = {}, {}
        self.network, self.cut, self.started, self.told = (state.network, state.cut,
                                                           state.started, state.told)
        self.used, g = state.used, state.ghost
        self.yes, self.decisions, self.lone = g.yes_votes, g.decisions, g.lone_aborts

    def do(self, action) -> None:
        """Carry out one action (HANDLERS, at the end of this file, lists who does what)."""
        self.crash_after = action.crash_after
        HANDLERS[action.kind](self, action)

    def freeze(self) -> State:
        memory = (tuple(sorted(self.memory.values(), key=lambda m: m[0]))
                  if self.memory_changed else self.state.coordinator.memory)
        branches = tuple(self.frozen_branch(n, b)
                         for n, b in zip(self.world.names, self.state.branches))
        coordinator = Coordinator(self.coord_up, self.log, self.unflushed, memory, self.created)
        return State(coordinator, branches, self.network, self.cut, self.started, self.told,
                     self.used, Ghost(self.yes, self.decisions, self.lone))

    def frozen_branch(self, name: str, branch: Branch) -> Branch:
        up = self.branch_up.get(name, branch.up)
        if name not in self.drafts:
            return branch if up == branch.up else branch._replace(up=up)
        accounts, rows = self.drafts[name]
        return Branch(up, tuple((k, b, h) for k, (b, h) in sorted(accounts.items())),
                      tuple(sorted(rows.values(), key=lambda r: r[0])))

    def draft(self, name: str) -> tuple:
        """(accounts, rows) of a branch, as dicts this step may change."""
        if name not in self.drafts:
            b = self.state.branches[self.world.index[name]]
            self.drafts[name] = ({a[0]: [a[1], a[2]] for a in b.accounts},
                                 {r[0]: r for r in b.rows})
        return self.drafts[name]

    def rows_of(self, name: str) -> dict:
        if name in self.drafts:
            return self.drafts[name][1]
        return {r[0]: r for r in self.state.branches[self.world.index[name]].rows}

    def is_up(self, who: str) -> bool:
        if who == COORDINATOR:
            return self.coord_up
        return self.branch_up.get(who, self.state.branches[self.world.index[who]].up)

    def note(self, src, dst, label, detail="", kind="msg") -> None:
        if self.notes is not None:
            self.notes.append(Note(src, dst, label, detail, kind))

    # ---- the client and the network ---------------------------------------------------

    def start(self, action) -> None:
        """The client asks for a transfer: the coordinator begins it (C1)."""
        t = next(t for t in self.world.transfers if t.txid == action.txid)
        self.started = self.started | {(t.txid, self.created)}     # stamped now (W9)
        self.note(CLIENT, COORDINATOR, f"transfer {t.txid}",
                  f"{t.src}/1001 -> {t.dst}/1001 {format_amount(t.amount)}")
        core = self.new_core(t.txid)
        self.coordinator_effects(core, core.begin(), caller=CLIENT)
        self.save(core)

    def deliver(self, action, keep: bool = False) -> None:
        env = action.envelope
        if not keep:
            self.network = self.network - {env}
        if self.notes is not None:
            label, detail = describe(env.message)
            self.note(env.src, env.dst, label, detail + (" (duplicated: a copy stays on "
                                                         "its way)" if keep else ""))
        if env.dst == COORDINATOR:
            self.at_coordinator(env)
        else:
            self.at_branch(env)

    def duplicate(self, action) -> None:
        self.use("duplicates")
        self.deliver(action, keep=True)

    def lose(self, action) -> None:
        env = action.envelope
        self.use("losses")
        self.network = self.network - {env}
        self.note(env.src, env.dst, describe(env.message)[0], "LOST on the way", kind="lost")

    def send(self, src, dst, message) -> None:
        """Put a message on its way; a process that is down gets nothing (W4)."""
        if self.is_up(dst):
            self.network = self.network | {Envelope(src, dst, message)}
        elif self.notes is not None:
            self.note(src, dst, describe(message)[0], f"{dst} is down: the call fails",
                      kind="lost")
        self.reveal(message)

    def partition(self, action) -> None:
        self.use("partitions")
        self.cut = self.cut | {action.branch}
        self.note(COORDINATOR, action.branch, "PARTITION", "nothing passes until healed",
                  kind="lost")

    def heal(self, action) -> None:
        self.cut = self.cut - {action.branch}
        self.note(COORDINATOR, action.branch, "healed", "the link works again", kind="self")

    # ---- crashes and restarts -----------------------------------------------------------

    def crash(self, action) -> None:
        self.crash_now(action.who)

    def crash_now(self, who: str, when: str = "") -> None:
        """Down, volatile state gone, calls on their way to it lost (W4)."""
        self.use("crashes")
        self.stopped = True
        if who == COORDINATOR:
            self.coord_up, self.memory, self.unflushed = False, {}, frozenset()
            self.memory_changed = True
        else:
            self.branch_up[who] = False
        self.network = frozenset(e for e in self.network if e.dst != who)
        self.note(who, who, "CRASH" + when, "volatile state lost", kind="crash")

    def restart(self, action) -> None:
        who = action.who
        self.note(who, who, "restart", "from its durable state", kind="self")
        if who == COORDINATOR:
            self.coord_up = True
            self.recover_coordinator()
        else:
            self.branch_up[who] = True
            for txid, row in sorted(self.rows_of(who).items()):
                if row[1] is TxState.PREPARED:
                    txn = self.participant(who, txid)
                    self.participant_effects(who, txn, txn.on_restart(), caller=None)

    def recover_coordinator(self) -> None:
        """Rebuild every transaction the log has not ended, through the core (C8), then
        retry its decision, as bank/twopc.py does at start."""
        for txid in sorted({t for t, _ in self.log}):
            if (txid, "end") in self.log:
                continue
            decision = next((k for k in ("commit", "abort") if (txid, k) in self.log), "")
            core = self.new_core(txid)
            self.coordinator_effects(core, core.on_restart(decision), caller=None)
            if core.state in (CoordState.COMMITTING, CoordState.ABORTING):   # C12: none
                self.coordinator_effects(core, core.on_retry(), caller=None)
            self.save(core)

    def lose_log(self, action) -> None:
        """W9: the coordinator's log is gone; it starts again on a new, empty one, created
        a second after every txid begun so far (Rule 9). It knows nothing of them."""
        self.use("log_losses")
        if self.coord_up:
            self.note(COORDINATOR, COORDINATOR, "STOPPED", "volatile state lost", kind="crash")
        self.coord_up, self.memory, self.unflushed, self.log = True, {}, frozenset(), frozenset()
        self.memory_changed, self.created = True, self.created + 1
        self.network = frozenset(e for e in self.network if e.dst != COORDINATOR)    # W4
        self.note(COORDINATOR, LOG, "LOG LOST", f"a new, empty log: txids from second "
                  f"{self.created} (C14)", kind="lost")

    # ---- timers ---------------------------------------------------------------------------

    def timeout(self, action) -> None:
        """A prepared branch heard nothing: its core decides what to do (P6: ask)."""
        self.note(action.who, action.who, "timeout", f"{action.txid}: no decision yet",
                  kind="self")
        txn = self.participant(action.who, action.txid)
        self.participant_effects(action.who, txn, txn.on_timeout(), caller=None)

    def ask_peers(self, action) -> None:
        """P9: a prepared branch whose coordinator is down asks the other participants."""
        self.note(action.who, action.who, "ask peers", f"{action.txid}: the coordinator "
                  "is down", kind="self")
        txn = self.participant(action.who, action.txid)
        self.participant_effects(action.who, txn, txn.on_coordinator_unreachable(),
                                 caller=None)

    def vote_timeout(self, action) -> None:
        """A vote did not arrive in time: a Silence, never a no (C2, C4)."""
        self.note(action.branch, COORDINATOR, "no vote", f"{action.txid}: no answer in time",
                  kind="lost")
        core = self.coordinator_core(action.txid)
        self.coordinator_effects(core, core.on_vote(action.branch, Silence.TIMEOUT,
                                                    "no answer in time"), caller=None)
        self.decide_if_all_voted(core)
        self.save(core)

    def retry(self, action) -> None:
        self.note(COORDINATOR, COORDINATOR, "retry", action.txid, kind="self")
        core = self.coordinator_core(action.txid)
        self.coordinator_effects(core, core.on_retry(), caller=None)
        self.save(core)

    # ---- bookkeeping ------------------------------------------------------------------------

    def may_carry_out(self, who: str, effect) -> bool:
        """False once the process has crashed in this step. Before each effect a crash
        may cut the step (W5): the coordinator anywhere, a participant only before an
        answer or a send, after its durable part."""
        if self.stopped:
            return False
        k = self.position
        if k and (who == COORDINATOR or isinstance(effect, (Send, Reply))):
            self.cuts.append(k)
            if k == self.crash_after:
                self.crash_now(who, f" (in the middle of a step, after {k} of its effects)")
                return False
        self.position += 1
        return True

    def reveal(self, message) -> None:
        """A message that carries a decision shows the coordinator has taken it (S3)."""
        if isinstance(message, Commit):
            self.decide(message.txid, TxState.COMMITTED.value)
        elif isinstance(message, Abort):
            self.decide(message.txid, TxState.ABORTED.value)
        elif isinstance(message, (Outcome, DecisionAnswer, OutcomeAnswer)) \
                and message.outcome in DECIDED:     # a peer's answer too: P8 makes it a fact
            self.decide(message.txid, message.outcome)

    def decide(self, txid: str, outcome: str) -> None:
        """Only an abort decision is kept: it is all the rule no-lone-abort asks about."""
        if outcome == TxState.ABORTED.value and (txid, outcome) not in self.decisions:
            self.decisions = self.decisions | {(txid, outcome)}

    def use(self, fault: str) -> None:
        i = FAULTS.index(fault)
        self.used = self.used[:i] + (self.used[i] + 1,) + self.used[i + 1:]


HANDLERS = {"start": StepRun.start, "deliver": StepRun.deliver,
            "duplicate": StepRun.duplicate, "lose": StepRun.lose, "crash": StepRun.crash,
            "restart": StepRun.restart, "timeout": StepRun.timeout,
            "ask-peers": StepRun.ask_peers,
            "vote-timeout": StepRun.vote_timeout, "retry": StepRun.retry,
            "partition": StepRun.partition, "heal": StepRun.heal,
            "lose-log": StepRun.lose_log}


def describe(message) -> tuple:
    """(label on the arrow, detail beside it) for a message."""
    if isinstance(message, Prepare):
        ops = ", ".join(f"{n} {format_delta(d)}" for n, d in message.ops)
        return f"prepare {message.txid}", ops
    if isinstance(message, VoteMsg):
        return f"vote {message.vote.value} {message.txid}", message.reason
    if isinstance(message, (Commit, Abort)):
        return f"{type(message).__name__.upper()} {message.txid}", ""
    if isinstance(message, Ack):
        return f"ack {message.txid}", message.state.value
    if isinstance(message, DecisionQuery):
        return f"decision? {message.txid}", ""
    if isinstance(message, DecisionAnswer):
        return f"{message.outcome} {message.txid}", "the answer to decision?"
    if isinstance(message, OutcomeQuery):
        return f"outcome? {message.txid}", f"{message.asker} asks a peer (P9)"
    if isinstance(message, OutcomeAnswer):
        return f"{message.outcome} {message.txid}", "the answer to outcome? (P8)"
    return type(message).__name__, ""
