"""Deliberately broken variants of the core, each a small diff a student can read.

Role: show that the explorer earns its keep. Each variant is a subclass of the real
ParticipantTxn or CoordinatorTxn that changes one step, and names the rule it
breaks; `python -m bank.explorer --variant NAME` must find a run that breaks it.
The kit as it is (the variant "") must pass.

Rules:
  * V1 - a variant changes as little as it can: one method, a few lines, a docstring
    naming the rule (from bank/core) it breaks and how the original toy went wrong.
  * V2 - a variant lists the invariants (bank/explorer/invariants.py) a run of it can
    break: the explorer's first violation must be one of them.
  * V3 - a variant that only a fault off by default can show names that fault's budget
    (needs): the lab and the tests explore it with that budget.

Glossary:
  variant   a named set of core classes: the kit's own, or a broken subclass
"""

from dataclasses import dataclass

from bank.core.coordinator import CoordinatorTxn, presumed_outcome
from bank.core.messages import Hold, Record, Reply, Send
from bank.core.participant import ParticipantTxn


# ---- the participant, broken ---------------------------------------------------------

class VoteYesWithoutHold(ParticipantTxn):
    """Breaks P1 (vote yes only with the money held): the original toy's prepare.

    The yes vote leaves, but nothing is reserved: the same money can be promised twice
    and spent before the commit arrives, so commit can fail after the other side has
    committed. Here: prepare's holds are simply left out.
    """

    def on_prepare(self, coordinator, ops, accounts, refuse="", peers=()):
        effects = super().on_prepare(coordinator, ops, accounts, refuse, peers)
        return [e for e in effects if not isinstance(e, Hold)]


class AbortOnRestart(ParticipantTxn):
    """Breaks P6 (a participant that voted yes never decides alone): the original toy's
    recovery, which aborted every prepared transaction it found after a restart,
    although the coordinator may have decided commit meanwhile."""

    def on_restart(self):
        return [e for e in self.on_abort() if not isinstance(e, Reply)]


class AbortAfterTimeout(ParticipantTxn):
    """Breaks P6: a branch that voted yes and heard nothing for a while gives up and
    aborts on its own, instead of keeping its holds and asking the coordinator."""

    def on_timeout(self):
        return [e for e in self.on_abort() if not isinstance(e, Reply)]


# ---- the coordinator, broken ------------------------------------------------------------

class CommitBeforeForce(CoordinatorTxn):
    """Breaks C3 (force the commit record BEFORE any commit is sent): the commits leave
    first and the record is written after them, so a crash in between leaves a branch
    committed and a log that says nothing: recovery presumes abort (C8)."""

    def decide(self):
        effects = super().decide()
        sends = [e for e in effects if isinstance(e, Send)]
        return sends + [e for e in effects if not isinstance(e, Send)]


class DecisionInMemory(CoordinatorTxn):
    """Breaks C3: the commit decision is kept only in memory, never written to the log.
    Everything works until the coordinator crashes; then recovery finds no commit
    record and presumes abort (C8), though branches may have committed already."""

    def decide(self):
        return [e for e in super().decide()
                if not (isinstance(e, Record) and e.kind == "commit")]


class PresumeOverLostLog(CoordinatorTxn):
    """Breaks C14 (a log presumes only about its own transactions): the rule before it.
    A new log, created after the old one was lost, presumes about txids begun before
    it as if it had forgotten them itself: a branch still in doubt about one is told
    "aborted" (or "committed" under presumed commit), whatever the lost log held. Here:
    the txid's stamp and the log's created record are not compared."""

    @staticmethod
    def answer_unknown(txid, presumption, log_created):
        return presumed_outcome(presumption)


# ---- the list ------------------------------------------------------------------------------

@dataclass(frozen=True)
class Variant:
    name: str
    participant: type
    coordinator: type
    rule: str                # the rule it breaks, in a sentence
    breaks: tuple = ()       # the invariants a run of it may break (V2)
    needs: tuple = ()        # (budget, at least) without which no run shows it (V3)


KIT = Variant("", ParticipantTxn, CoordinatorTxn, "none: the kit as it is")

VARIANTS = {v.name: v for v in (
    Variant("vote-yes-without-hold", VoteYesWithoutHold, CoordinatorTxn,
            "P1: vote yes only with the money held",
            ("holds-match-prepared", "holds-within-balance", "no-negative-balance")),
    Variant("abort-on-restart", AbortOnRestart, CoordinatorTxn,
            "P6: a participant that voted yes never aborts on its own (here: on restart)",
            ("no-lone-abort", "atomicity", "told-is-final")),
    Variant("commit-before-force", ParticipantTxn, CommitBeforeForce,
            "C3: the commit record is forced before any commit is sent",
            ("atomicity", "told-is-final")),
    Variant("decision-in-memory", ParticipantTxn, DecisionInMemory,
            "C3: the commit decision is durable before anyone sees it",
            ("atomicity", "told-is-final")),
    Variant("abort-after-timeout", AbortAfterTimeout, CoordinatorTxn,
            "P6: a participant that voted yes never aborts on its own (here: on a timeout)",
            ("no-lone-abort", "atomicity", "told-is-final")),
    Variant("presume-over-lost-log", ParticipantTxn, PresumeOverLostLog,
            "C14: a new log presumes nothing about a txid begun before it",
            ("atomicity", "told-is-final", "no-lone-abort"), needs=(("log_losses", 1),)),
)}


def get(name: str) -> Variant:
    """The variant called name ("" is the kit itself); a clear sentence if unknown."""
    if not name:
        return KIT
    if name not in VARIANTS:
        from bank.explorer import replication   # here: it imports world.py, which imports us
        raise ValueError(f"There is no variant {name!r}; the variants are: "
                         f"{', '.join(VARIANTS)} (and, with --world replication, "
                         f"{', '.join(replication.VARIANTS)}).")
    return VARIANTS[name]
