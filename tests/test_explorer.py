"""The explorer (bank/explorer): it passes the kit and catches every broken variant.

Rules checked here: the kit breaks no invariant in a small world, searched
exhaustively; each broken variant is caught breaking the rule it breaks, with a run
that replays to the very state where it was found; a saved run loads and replays
identically; a random walk with the same seed visits the same states; bad options
get a sentence. Budgets are small so the whole file runs in seconds.
"""

import pathlib
import subprocess
import sys

import pytest

from bank.explorer import cli, search, traces, variants
from bank.explorer.world import Config, World

ROOT = pathlib.Path(__file__).resolve().parent.parent


def test_the_kit_passes_a_small_world_exhaustively():
    """One transfer, one crash, one lost message: every reachable state keeps every
    invariant, and from every one of them the calm run finishes (progress)."""
    result = search.breadth_first(World(Config(transfers=1, crashes=1, losses=1)))
    assert result.violation is None, result.violation
    assert result.complete and result.distinct > 1000 and result.depth > 10


def test_the_kit_passes_two_concurrent_transfers_without_faults():
    """Two transfers at once (one unaffordable: a no vote) interleave in every order
    without breaking atomicity, conservation or the holds."""
    result = search.breadth_first(World(Config(transfers=2, crashes=0, losses=0)))
    assert result.violation is None, result.violation
    assert result.complete


@pytest.mark.parametrize("name", sorted(variants.VARIANTS))
def test_every_broken_variant_is_caught_breaking_its_rule(name):
    """Each deliberately broken variant yields a violation of an invariant its rule
    protects, and the run found replays to the same state (same hash) and breaks it."""
    needs = dict(variants.get(name).needs)                  # a lost log, for one (V3)
    world = World(Config(transfers=1, crashes=1, losses=0, variant=name, **needs))
    result = search.breadth_first(world)
    assert result.violation is not None, f"{name} was not caught"
    assert result.violation.invariant in variants.get(name).breaks, result.violation
    states, notes, violation = search.replay(world, result.trace)
    assert violation == result.violation
    assert len(notes) == len(result.trace)
    assert search.breadth_first(world).trace == result.trace        # deterministic


def test_breadth_first_finds_a_shortest_run():
    """The first violation breadth-first finds has no shorter run: the abort on restart
    needs a prepare, a crash and a restart after the transfer begins (4 steps)."""
    world = World(Config(transfers=1, crashes=1, losses=0, variant="abort-on-restart"))
    result = search.breadth_first(world)
    assert [a.kind for a in result.trace] == ["start", "deliver", "crash", "restart"]


def test_a_saved_run_loads_and_replays_identically(tmp_path):
    """A run saved as JSON loads back as the same actions, in the same configuration,
    and replays to the same state with the same diagram."""
    config = Config(transfers=1, crashes=1, losses=0, variant="commit-before-force")
    world = World(config)
    result = search.breadth_first(world)
    path = tmp_path / "run.json"
    traces.save(path, config, result.trace, result.violation)
    loaded_config, actions = traces.load(path)
    assert loaded_config == config and actions == result.trace
    first, second = search.replay(world, result.trace), search.replay(World(loaded_config), actions)
    assert first[0][-1] == second[0][-1] and first[1] == second[1]
    assert search.fingerprint(first[0][-1]) == search.fingerprint(second[0][-1])


def test_a_run_that_does_not_fit_is_refused_with_a_sentence(tmp_path):
    """Replaying a run in a world where a step is impossible says which step, and a file
    that is not a saved run is refused with a sentence, not a traceback."""
    config = Config(transfers=1, crashes=1, losses=0, variant="abort-on-restart")
    trace = search.breadth_first(World(config)).trace
    with pytest.raises(ValueError, match="Step 3"):
        search.replay(World(Config(transfers=1, crashes=1)), trace[:2] + trace[3:])
    bad = tmp_path / "bad.json"
    bad.write_text('{"steps": [{"kind": "deliver"}]}')
    assert "is not a run saved by the explorer" in cli.run(["--replay", str(bad)])


def test_a_random_walk_with_the_same_seed_visits_the_same_states():
    """Same seed, same walk, state for state; another seed walks elsewhere."""
    world = World(Config(transfers=2, crashes=1, losses=1))
    first, again = search.random_walk(world, 400, seed=11), search.random_walk(world, 400, seed=11)
    assert first.fingerprints == again.fingerprints and len(first.fingerprints) > 100
    assert search.random_walk(world, 400, seed=12).fingerprints != first.fingerprints


def test_a_random_walk_catches_a_broken_variant_and_replays_it():
    """A seeded walk finds the lone abort after a timeout; its run replays to it."""
    world = World(Config(transfers=1, crashes=0, losses=1, variant="abort-after-timeout"))
    result = search.random_walk(world, 5000, seed=3)
    assert result.violation is not None and result.violation.invariant == "no-lone-abort"
    assert search.replay(world, result.trace)[2] == result.violation


@pytest.mark.parametrize("words, sentence", [
    (["--branches", "4"], "--branches must be 2 or 3."),
    (["--transfers", "0"], "--transfers must be 1, 2 or 3."),
    (["--crashes", "-1"], "--crashes must be between 0 and 5."),
    (["--variant", "nope"], "There is no variant 'nope'"),
    (["--random-walk", "99999999999999999999"], "--random-walk and --max-states may be at "
                                                "most 30,000,000"),
    (["--world", "replication", "--max-states", "40000000"], "--random-walk and --max-states "
                                                              "may be at most 30,000,000"),
])
def test_bad_options_get_a_sentence(words, sentence):
    """Every rejected option changes nothing and is answered with one clear sentence;
    every search is bounded (E3), also by what it may be asked for."""
    assert cli.run(words).startswith(sentence)


def test_the_command_line_reports_and_draws_a_violation(tmp_path):
    """`python explore.py --variant ...` prints the numbers, the rule broken and the
    run as a sequence diagram, saves it, and exits 1; the replay draws it again."""
    saved = tmp_path / "run.json"
    done = subprocess.run([sys.executable, "explore.py", "--transfers", "1", "--losses", "0",
                           "--variant", "decision-in-memory", "--save", str(saved)],
                          cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1, done.stderr
    for words in ("States:", "steps tried", "steps/s", "VIOLATION of atomicity", "CRASH",
                  "coordinator", "Mumbai", "Delhi", f"--replay {saved}"):
        assert words in done.stdout
    again = subprocess.run([sys.executable, "-m", "bank.explorer", "--replay", str(saved)],
                           cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert again.returncode == 1 and "VIOLATION of atomicity" in again.stdout


def test_a_participant_that_never_commits_breaks_progress(monkeypatch):
    """Progress: a branch that refuses every commit breaks no safety rule, yet the
    transfer never ends; the explorer says so and shows the calm run going round."""
    from bank.core.messages import ProtocolViolation
    from bank.core.participant import ParticipantTxn

    class NeverCommits(ParticipantTxn):
        def on_commit(self):
            raise ProtocolViolation("participant", self.state, "commit", "test")

    broken = variants.Variant("never-commits", NeverCommits, variants.KIT.coordinator,
                              "a test: commit is always refused", ("progress",))
    monkeypatch.setitem(variants.VARIANTS, broken.name, broken)
    result = search.breadth_first(World(Config(transfers=1, crashes=0, losses=0,
                                               variant=broken.name)))
    assert result.violation is not None and result.violation.invariant == "progress"
    assert "circle" in result.violation.detail and result.continuation


def test_the_shell_explore_command_catches_a_broken_variant(tmp_path, dead_url, capsys):
    """The shell's `explore` runs the same search as explore.py: a broken variant is
    reported with the rule it breaks, and bad options get one sentence naming what is
    wrong, not a traceback nor argparse's usage block; `explore --help` lists them.
    (It needs no cluster: the coordinator here is an address where nothing answers.)"""
    import io
    from bank import rpc
    from bank.shell import BankShell
    out = io.StringIO()
    shell = BankShell(rpc.Client(dead_url, None, timeout=1), home=tmp_path, stdout=out)
    shell.onecmd("explore --variant abort-on-restart --transfers 1 --losses 0")
    assert "VIOLATION of no-lone-abort" in out.getvalue()
    assert shell.failures == 0
    shell.onecmd("explore --crashes lots")
    assert "not understood (argument --crashes: invalid int value: 'lots')" in out.getvalue()
    assert shell.failures == 1
    assert "usage:" not in out.getvalue() + capsys.readouterr().err
    shell.onecmd("explore --help")
    assert "--variant VARIANT" in out.getvalue() and shell.failures == 1
    out.seek(0)
    out.truncate()
    shell.onecmd("explore --crashes -1")          # said at once, no "Exploring..." first
    assert out.getvalue().strip().endswith("--crashes must be between 0 and 5.")
    assert "Exploring" not in out.getvalue() and shell.failures == 2


def test_the_shell_explore_command_shows_progress_and_stops_on_ctrl_c(tmp_path, dead_url,
                                                                     monkeypatch):
    """bank/shell/explore.py: a long search shows its progress in the shell (it was
    silent for minutes), Ctrl-C stops it with a sentence that says it ran in the shell
    (not "may still finish on the server"), and --window, which needs a terminal of its
    own, is refused with one sentence. (The search is made to report progress at once
    and then to be interrupted, as a student's Ctrl-C would.)"""
    import io
    from bank import rpc
    from bank.explorer import cli
    from bank.shell import BankShell

    def interrupted_search(options, progress=None):
        progress(3, 1234)
        raise KeyboardInterrupt
    every = cli.progress_every
    monkeypatch.setattr(cli, "explore", interrupted_search)
    monkeypatch.setattr(cli, "progress_every", lambda seconds, say: every(0, say))
    out = io.StringIO()
    shell = BankShell(rpc.Client(dead_url, None, timeout=1), home=tmp_path, stdout=out)
    shell.onecmd("explore")
    said = out.getvalue()
    assert "progress every 5 s" in said and "1,234 states so far, 3 steps deep" in said
    assert "Search stopped (Ctrl-C)" in said and "server" not in said.split("stopped")[1]
    shell.onecmd("explore --replay run.json --window")
    assert "--window opens a window" in out.getvalue() and shell.failures == 2


# ---- the replication world (bank/explorer/replication.py) ------------------------------

from bank.explorer import replication as repl        # noqa: E402
from bank.explorer.replication_search import (  # noqa: E402
    explore as explore_replication, report)


def test_replication_world_keeps_every_acknowledged_write():
    """The kit's replication cores (R1-R8 at the servers, M1-M5 at the manager), with a
    crash, leases running out and a replica catching up: every acknowledged write is in
    the log of the recorded primary, also after a failover, and no two servers
    acknowledged writes in the same epoch; so too with a request resent after a
    timeout (X8), the crash left out. (The default world has both, and five times the
    states: lab 13 explores it whole, and tests/test_labs.py fails on a violation.)"""
    for budgets in (repl.Budgets(resends=0), repl.Budgets(crashes=0)):
        text, found = report(budgets)
        assert not found, text
        assert "no violation" in text


@pytest.mark.parametrize("variant, rule", [("promote-out-of-sync", "M5"),
                                           ("drop-without-manager", "R7")])
def test_each_replication_variant_loses_an_acknowledged_write(variant, rule):
    """A manager that promotes a replica outside the recorded in-sync set (M5), or a
    primary that drops a silent replica on its own say (R7), loses an acknowledged write:
    the explorer finds the shortest run, a failover after the write was acknowledged."""
    text, found = report(repl.Budgets(variant=variant))
    assert found and "VIOLATION of acked-writes-survive" in text, text
    assert f"breaks {rule}" in text and "promote" in text


@pytest.mark.parametrize("variant", sorted(repl.VARIANTS))
def test_every_replication_variant_is_caught_with_two_replicas(variant):
    """Each broken rule (M5, R7, R1, M3) still loses an acknowledged write when the
    branch has two replicas: the shortest run ends in a failover to a replica that lacks
    it. (M3's need a replica dropped twice, so two writes and a catch-up between; or,
    for repeat-after-refusal, one write, a catch-up and a drop sent again, X8.)"""
    given = dict(writes=2, catch_ups=1) if variant.endswith("-at-any-version") else \
        dict(writes=1, catch_ups=1, resends=1) if variant == "repeat-after-refusal" else \
        dict(writes=1)
    text, found = report(repl.budgets_for(2, variant, **given))
    assert found and "VIOLATION of acked-writes-survive" in text, text
    assert f"breaks {repl.VARIANTS[variant].split(':')[0]}" in text
    assert " promote " in text.splitlines()[-1]                 # the last step: a failover


def test_an_add_delayed_past_a_later_drop_is_caught():
    """X7, M3: a dropped replica catches up and its primary's add to the manager is on
    its way when the primary drops it again and acknowledges a write without it. With
    the kit's M3 the late add names an old configuration version and is refused: no
    violation. A manager that takes an add at any version (the kit's old rule) lists the
    replica again, and a failover to it loses the write: the explorer draws that run."""
    text, found = report(repl.budgets_for(1, resends=0))      # X8 has its own tests
    assert not found and "catch-ups 1" in text, text
    text, found = report(repl.budgets_for(1, "add-at-any-version"))
    assert found and "W2 was acknowledged by Mumbai" in text, text
    assert "The shortest run to it (8 steps)" in text
    steps = text.split("The shortest run")[1]
    assert steps.index("caught up") < steps.index("at version 2: recorded") \
        < steps.index("<---- add") < steps.index("promote")
    text, found = report(repl.budgets_for(1, "add-at-any-version", catch_ups=0))
    assert not found                     # without a catch-up, no add is ever on its way


def test_a_repeat_at_another_version_is_caught():
    """X2, M3: the manager answers again, with no new record, only the last add or drop
    taken asked again at the same version. The explorer keeps the manager's memory of
    that last change from step to step, as the coordinator does, so a manager that
    takes a second drop of the same replica, at the version the first one's answer
    told, for a repeat of the first is caught: no record is made, the late add lands at
    the version it names, lists the replica again, and a failover to it loses W2."""
    text, found = report(repl.budgets_for(1, "repeat-at-any-version"))
    assert found and "W2 was acknowledged by Mumbai" in text, text
    steps = text.split("The shortest run")[1]
    assert steps.index("at version 1: recorded") \
        < steps.index("at version 2: answered again as a repeat") \
        < steps.index("<---- add") < steps.index("promote"), text


def _run(world, actions):
    """The state after `actions` from the initial one, and every step's notes as text."""
    state, said = world.initial(), []
    for action in actions:
        state, notes = world.step(state, action)
        said += [f"{n.label}: {n.detail}" for n in notes]
    return state, "\n".join(said)


@pytest.mark.parametrize("first_try_arrives", ["first", "last"])
def test_a_drop_sent_again_after_a_timeout_is_taken_once(first_try_arrives):
    """X8, M3: a drop unanswered in time is sent again at the version its primary kept;
    whichever try reaches the manager first is recorded, the other is answered again
    as a repeat with no record, and the write waits for an answer before it is
    acknowledged."""
    world = repl.ReplicationWorld(repl.budgets_for(1))
    who = (repl.PRIMARY, "Mumbai-r1")
    start = [("write", repl.PRIMARY), ("drop_unanswered", who)]
    state, _ = _run(world, start)
    assert not state.acked and state.config.in_sync == ("Mumbai-r1",)
    [first] = [("deliver", m) for m in state.network if m.kind == "drop"]
    then = [first, ("silent", who)] if first_try_arrives == "first" else \
        [("silent", who), first]
    state, said = _run(world, start + then)
    assert state.config.in_sync == () and state.config.version == 2      # one record
    assert said.count("(forced)") == 1 and said.count("a repeat") == 1, said
    assert state.acked == {("W1", repl.PRIMARY, 1)}


def test_an_add_sent_again_is_taken_once_and_never_after_a_later_drop():
    """X7, X8, M3: an add sent again after a timeout travels beside its first try. The
    first to arrive lists the replica; the other is answered again as a repeat. Once
    the primary dropped the replica again, neither try, however late, lists it."""
    world = repl.ReplicationWorld(repl.budgets_for(1))
    who = (repl.PRIMARY, "Mumbai-r1")
    start = [("write", repl.PRIMARY), ("silent", who), ("catch_up", who),
             ("add_again", who)]
    state, _ = _run(world, start)
    tries = sorted(m for m in state.network if m.kind == "add")
    assert [(m.version, m.copy) for m in tries] == [(2, 0), (2, 1)]     # the same request
    state, said = _run(world, start + [("deliver", tries[1]), ("deliver", tries[0])])
    assert state.config.in_sync == ("Mumbai-r1",) and state.config.version == 3
    assert "answered again: a repeat: no record" in said, said
    state, said = _run(world, start + [("write", repl.PRIMARY), ("silent", who),
                                       ("deliver", tries[0]), ("deliver", tries[1])])
    assert state.config.in_sync == () and said.count("add refused: M3 (changed)") == 2
    assert ("W2", repl.PRIMARY, 1) in state.acked


def test_a_repeat_of_a_refused_drop_is_caught_only_with_resends():
    """X8, M3: only a change the manager took is answered again as a repeat. A manager
    that notes each request as it arrives, refused or not, answers a drop that it
    refused (made at an old version: the late add listed the replica meanwhile), sent
    again unchanged after a timeout, as a repeat: its primary acknowledges W2 without
    the replica the manager lists, and a failover to it loses W2. Without a resend no
    refused request is ever sent again unchanged: the variant passes, and the report
    says to give --resends 1."""
    text, found = report(repl.budgets_for(1, "repeat-after-refusal"))
    assert found and "W2 was acknowledged by Mumbai" in text, text
    assert "The shortest run to it (10 steps)" in text
    steps = text.split("The shortest run")[1]
    assert steps.index("<---- add") < steps.index("drop: no answer in time") \
        < steps.index("drop refused: M3 (changed)") \
        < steps.index("at version 2: answered again as a repeat") \
        < steps.index("ack W2") < steps.index("promote"), text
    text, found = report(repl.budgets_for(1, "repeat-after-refusal", resends=0))
    assert not found, text
    assert text.endswith("needs --resends 1 to break anything: try --resends 1."), text


def test_acknowledging_after_one_replica_is_caught_only_with_two():
    """R1 asks for every in-sync replica, not one of them: with a single replica the
    two are the same (no violation, and the report says to try --replicas 2); with two,
    the primary acknowledges once Mumbai-r1 has the write and Mumbai-r2, which never got
    it, is promoted (5 steps)."""
    text, found = report(repl.budgets_for(1, "ack-after-one-replica", resends=0))
    assert not found and "needs 2 replicas to break anything: try --replicas 2" in text
    text, found = report(repl.budgets_for(2, "ack-after-one-replica"))
    assert found and "the recorded primary Mumbai-r2 does not have it" in text, text
    assert "The shortest run to it (5 steps)" in text


def test_a_lost_message_adds_no_state_to_check():
    """X6: with a loss budget or without, the same states are reached once the network
    is set aside (a lost message is one never delivered, an add on its way to the
    manager (X7) included), so the default budgets can leave losses out without
    checking less."""
    def reached(losses):
        world = repl.ReplicationWorld(repl.Budgets(writes=1, crashes=1, losses=losses,
                                                   ticks=1, resends=0, replicas=2))
        seen, waiting = set(), [world.initial()]
        while waiting:
            state = waiting.pop()
            if state not in seen:
                seen.add(state)
                waiting += [world.step(state, action)[0] for action in world.actions(state)]
        return {s._replace(network=frozenset(), used=(s.used[0], 0, *s.used[2:]))
                for s in seen}
    assert reached(losses=1) == reached(losses=0)


def test_each_world_size_has_its_default_budgets():
    """The defaults of one replica are the budgets the README quotes, with no loss (X6);
    two replicas leave out the second lease period, the catch-up (X7) and the resend
    (X8) too, so that the default search of either is exhaustive in well under a
    minute. A budget given replaces its default."""
    assert repl.budgets_for(1) == repl.Budgets(2, 1, 0, 2, 1, 1)
    assert repl.budgets_for(2) == repl.Budgets(2, 1, 0, 1, 0, 0, replicas=2)
    assert repl.budgets_for(2, ticks=2, losses=None).ticks == 2
    with pytest.raises(ValueError, match="--replicas must be 1 or 2"):
        cli.explore(["--world", "replication", "--replicas", "3"])


def test_a_long_replication_search_shows_progress_and_a_cut_one_says_so():
    """A search tells progress(depth, states) how far it got every few thousand steps
    (the command line prints it every 5 s), and one stopped by max states says it is
    not exhaustive rather than "no violation" alone."""
    heard = []
    explore_replication(repl.budgets_for(2, writes=1, ticks=1),
                 progress=lambda depth, states: heard.append(states))
    assert heard and heard == sorted(heard)
    text, found = report(repl.budgets_for(2), max_states=500)
    assert not found and "Search: STOPPED at 500 states: not exhaustive" in text


def test_replication_world_from_the_command_line():
    """`explore.py --world replication` runs the same search; an unknown variant there is
    refused with one sentence."""
    text, found = cli.explore(["--world", "replication", "--variant", "promote-out-of-sync"])
    assert found
    with pytest.raises(ValueError, match="no replication variant"):
        cli.explore(["--world", "replication", "--variant", "abort-on-restart"])


def test_two_replicas_keep_every_acknowledged_write():
    """X5 with R1, R7, M5: a primary with two in-sync replicas, whose pushes and answers
    travel each on its own, loses no acknowledged write when either replica is promoted,
    whatever the order (a drop while a push is under way included), and no two servers
    acknowledge writes in the same epoch."""
    result = explore_replication(repl.Budgets(writes=1, crashes=1, ticks=1, resends=0, replicas=2))
    assert result["violation"] is None, result["notes"]
    assert result["complete"] and result["states"] > 1000


def test_a_two_replica_counterexample_draws_both_replicas():
    """X5: the diagram has a column per replica, and a failover may pick either one:
    a manager that promotes out of the in-sync set (M5) is caught promoting one of them."""
    text, found = report(repl.Budgets(writes=1, crashes=0, losses=0, ticks=1,
                                           variant="promote-out-of-sync", replicas=2))
    assert found and "Mumbai-r1, Mumbai-r2 (in sync)" in text
    header = next(line for line in text.splitlines() if line.startswith("step "))
    assert header.split()[-2:] == ["Mumbai-r1", "Mumbai-r2"] and "promote" in text
