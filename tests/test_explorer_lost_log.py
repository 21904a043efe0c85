"""The explorer's lost log (world.py W9): the coordinator comes back on a new, empty log.

Rules checked here: with C14 (a log presumes only about its own transactions) no
invariant breaks under any presumption, however the log is lost; the rule before it
(the variant presume-over-lost-log) is caught under each presumption with its shortest
run; an in-doubt branch ends as soon as one peer knows the outcome (P9); only a txid
every participant holds in doubt is left for an operator (P10), and the new log never
presumes about it. Budgets are small so the whole file runs in seconds.
"""

import pytest

from bank.core.messages import OutcomeAnswer, TxState
from bank.explorer import cli, invariants, search, traces, variants
from bank.explorer.world import Config, World

PRESUMPTIONS = ("nothing", "abort", "commit")


@pytest.mark.parametrize("presumption", PRESUMPTIONS)
def test_the_kit_keeps_every_invariant_when_the_log_is_lost(presumption):
    """C14: a new log answers in-doubt for a txid begun before it, and the branch asks
    its peers (P9): one transfer, a crash, a lost message and a lost log break no
    invariant, and from every state the calm run finishes."""
    world = World(Config(transfers=1, crashes=1, losses=1, log_losses=1,
                         presumption=presumption))
    result = search.breadth_first(world)
    assert result.violation is None, result.violation
    assert result.complete and result.distinct > 3000


def test_two_transfers_and_a_lost_log_keep_every_invariant():
    """A transfer left for an operator does not keep the other from ending: with two
    transfers, a lost message and a lost log, every state keeps every invariant."""
    result = search.breadth_first(World(Config(transfers=2, crashes=0, losses=1,
                                               log_losses=1)))
    assert result.violation is None, result.violation
    assert result.complete


@pytest.mark.parametrize("presumption, steps", [("nothing", 10), ("abort", 10),
                                                ("commit", 9)])
def test_the_rule_before_c14_is_caught_under_each_presumption(presumption, steps):
    """The old rule (a new log presumes about txids begun before it) tells a branch an
    outcome the client was told otherwise, right after the log is lost; the shortest
    run replays to the same violation."""
    config = Config(transfers=1, crashes=1, losses=0, log_losses=1, presumption=presumption,
                    variant="presume-over-lost-log")
    world = World(config)
    result = search.breadth_first(world)
    assert result.violation is not None
    assert result.violation.invariant in variants.get(config.variant).breaks
    assert len(result.trace) == steps and "lose-log" in [a.kind for a in result.trace]
    assert search.replay(world, result.trace)[2] == result.violation


def test_the_variant_explored_without_a_lost_log_says_which_budget_it_needs():
    """V3: without a lost log, presume-over-lost-log has nothing to presume over and
    passes; the report says so and names the budget to give, so a student who forgot
    it is not told the old rule is safe."""
    text = cli.run(["--variant", "presume-over-lost-log", "--transfers", "1"])
    assert "Result: no violation" in text
    assert text.endswith("needs --log-losses 1 to break anything: try --log-losses 1.")
    assert "needs --" not in cli.run(["--variant", "presume-over-lost-log", "--transfers",
                                      "1", "--losses", "0", "--log-losses", "1"])


def test_a_run_with_a_lost_log_saves_and_replays(tmp_path):
    """A saved run keeps its lost-log budget and its lose-log step, and replays to the
    same state."""
    config = Config(transfers=1, crashes=1, losses=0, log_losses=1,
                    variant="presume-over-lost-log")
    world = World(config)
    result = search.breadth_first(world)
    path = tmp_path / "run.json"
    traces.save(path, config, result.trace, result.violation)
    assert traces.load(path) == (config, result.trace)
    assert "lost logs 1" in cli.replay_file(str(path))[0]


def take(world, state, kind, test=lambda action: True):
    """The next state after the first enabled action of this kind that passes test."""
    action = next(a for a in world.actions(state) if a.kind == kind and test(a))
    return world.step(state, action, with_notes=False)[0]


def message_is(name, dst):
    return lambda a: type(a.envelope.message).__name__ == name and a.envelope.dst == dst


def both_prepared(world):
    """T1 begun, prepared at Delhi, then at Mumbai: both yes votes on their way."""
    state = take(world, world.initial(), "start")
    state = take(world, state, "deliver", message_is("Prepare", "Delhi"))
    return take(world, state, "deliver", message_is("Prepare", "Mumbai"))


def rows(world, state, txid="T1") -> dict:
    return {name: invariants.rows_state(world, state, name, txid) for name in world.names}


def test_an_in_doubt_branch_ends_once_a_peer_knows():
    """P9: Delhi committed T1, Mumbai's commit was lost, then the coordinator's log: the
    new log answers Mumbai in-doubt (C14), Mumbai asks Delhi, and commits."""
    world = World(Config(transfers=1, crashes=0, losses=1, log_losses=1))
    state = both_prepared(world)
    state = take(world, state, "deliver", message_is("VoteMsg", "coordinator"))
    state = take(world, state, "deliver", message_is("VoteMsg", "coordinator"))
    state = take(world, state, "deliver", message_is("Commit", "Delhi"))
    state = take(world, state, "lose", message_is("Commit", "Mumbai"))
    state = take(world, state, "lose-log")
    actions, why = invariants.calm_run(world, state)
    assert why == ""
    answers = [a.envelope.message for a in actions if a.envelope is not None]
    assert OutcomeAnswer("T1", "Delhi", TxState.COMMITTED.value) in answers
    for action in actions:
        state = world.step(state, action, with_notes=False)[0]
    assert rows(world, state) == {"Mumbai": TxState.COMMITTED, "Delhi": TxState.COMMITTED}
    assert invariants.first_violation(world, state) is None


def test_a_txid_every_participant_holds_in_doubt_is_left_for_an_operator():
    """Both branches voted yes, and the log was lost before the votes arrived: nobody
    knows T1's outcome any more. The new log answers in-doubt, never a presumption, and
    each peer answers in-doubt; the money stays held until an operator decides (P10)."""
    world = World(Config(transfers=1, crashes=0, losses=0, log_losses=1,
                         presumption="commit"))
    state = take(world, both_prepared(world), "lose-log")
    assert invariants.calm_run(world, state) == ([], "")      # nothing more to do
    assert rows(world, state) == {"Mumbai": TxState.PREPARED, "Delhi": TxState.PREPARED}
    assert invariants.left_for_an_operator(world, state) == {"T1"}
    state = take(world, state, "timeout", lambda a: a.who == "Mumbai")
    state = take(world, state, "deliver", message_is("DecisionQuery", "coordinator"))
    answer = next(iter(state.network)).message
    assert answer.outcome == "in-doubt"


def test_the_lost_log_budget_is_checked():
    """--log-losses is a budget like the others (E3): at most 5, never negative."""
    assert cli.run(["--log-losses", "6"]).startswith("--log-losses must be between 0 and 5.")
