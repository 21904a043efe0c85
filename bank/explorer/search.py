"""Searching the simulated world: breadth-first, random walks, and replays.

Role: drive bank/explorer/world.py through its states and judge each one with
bank/explorer/invariants.py. Three ways:
  * breadth_first  every state within the budgets, nearest first, each once; so the
                   first violation found has a shortest run leading to it;
  * random_walk    seeded walks for worlds too big to exhaust; the same seed walks the
                   same way, action for action;
  * replay         a saved run, step by step, refusing any step that is not possible.

Rules:
  * E1 - a state is remembered by its hash (a 64-bit Python hash of its values): a
    collision could hide a state, with a chance far below one in a billion here;
    it saves keeping every state whole in memory.
  * E2 - safety is checked in every state as it is reached; progress in every state
    breadth-first reaches (random walks: at the end of each walk). A broken safety
    rule is reported before a progress problem: the search goes on to look for one.
  * E3 - every search is bounded: by its budgets, and by max_states.
  * E4 - the cyclic garbage collector is paused during a breadth-first search.

Glossary:
  explored   steps tried (an action taken from a state), counted with repeats: printed
             as "steps tried"; fewer than the states when most steps lead to new ones
  distinct   different states reached, the first one included
  depth      the length of the longest shortest run found
"""

import gc
import hashlib
import random
import time
from dataclasses import dataclass, field

from bank.explorer.invariants import (CalmGraph, calm_action, first_violation,
                                      progress_violation)

MAX_STATES = 3_000_000
MOST_STATES = 30_000_000      # the most --max-states or --random-walk may ask (E3): memory
WALK_DEPTH = 120               # a random walk starts again after this many steps
PROGRESS_EVERY = 2048          # states of a level between two calls of progress()


@dataclass
class Result:
    """What a search found; everything the report prints."""
    mode: str                  # "breadth-first", "random walk", "replay"
    explored: int = 0
    distinct: int = 0
    depth: int = 0
    seconds: float = 0.0
    complete: bool = True      # False if max_states stopped it
    violation: object = None   # a Violation, or None
    trace: list = field(default_factory=list)      # the actions leading to the violation
    continuation: list = field(default_factory=list)  # progress: the calm run after it
    seed: int = None
    walks: int = 0
    fingerprints: list = field(default_factory=list)  # random walk: every state visited

    @property
    def per_second(self) -> float:
        return self.explored / self.seconds if self.seconds else 0.0


def breadth_first(world, max_states: int = MAX_STATES, progress=None) -> Result:
    """Every state within the budgets, level by level (E1-E3). `progress(depth,
    states)`, if given, hears of each level as it is finished, and every PROGRESS_EVERY
    states tried within one (a long search shows it is moving)."""
    # States are plain tuples without cycles: reference counting frees them, and the
    # cyclic collector would only scan the growing table again and again (E4).
    collecting = gc.isenabled()
    gc.disable()
    try:
        return _breadth_first(world, max_states, progress or (lambda depth, states: None))
    finally:
        if collecting:
            gc.enable()


def _breadth_first(world, max_states: int, progress) -> Result:
    began = time.perf_counter()
    result = Result("breadth-first")
    start = world.initial()
    parents = {hash(start): None}          # state hash -> (parent hash, action)
    calm = CalmGraph(world)
    violation = first_violation(world, start)
    found = (violation, [], []) if violation else None
    frontier = [start]
    while frontier and not found and len(parents) < max_states:
        level = []
        for done, state in enumerate(frontier, 1):
            if not done % PROGRESS_EVERY:
                progress(result.depth, len(parents))
            key, actions = hash(state), world.actions(state)
            quiet, calm_key = calm_action(world, state, actions), None
            for action, after in world.successors(state, actions):
                result.explored += 1
                after_key = hash(after)
                calm_key = after_key if action == quiet else calm_key
                if after_key in parents:
                    continue
                parents[after_key] = (key, action)
                level.append(after)
                violation = first_violation(world, after)
                if violation:
                    found = violation, path_to(parents, after_key), []
                    break
            calm.remember(world, key, state, calm_key)
            if found:
                break
        result.depth += bool(level)
        frontier = level
        progress(result.depth, len(parents))
    result.complete = not frontier or bool(found)
    result.distinct = len(parents)
    found = found or _stuck(world, parents, calm)
    if found:
        result.violation, result.trace, result.continuation = found
    result.seconds = time.perf_counter() - began
    return result


def _stuck(world, parents: dict, calm: CalmGraph):
    """The shallowest progress violation, with its run and the calm run after it."""
    key = calm.first_stuck()
    if key is None:
        return None
    trace = path_to(parents, key)
    state = replay(world, trace)[0][-1]
    violation, continuation = progress_violation(world, state)
    return violation, trace, continuation


def path_to(parents: dict, key) -> list:
    """The actions from the initial state to the state with this key (here its hash;
    the replication world's search keys its table by the state itself)."""
    actions = []
    while parents[key] is not None:
        key, action = parents[key]
        actions.append(action)
    return actions[::-1]


def random_walk(world, steps: int, seed: int) -> Result:
    """Seeded walks, restarted from the beginning when they end or reach WALK_DEPTH."""
    began = time.perf_counter()
    rng = random.Random(seed)
    result = Result("random walk", seed=seed, walks=1)
    seen = set()
    state, trace = world.initial(), []
    for _ in range(steps):
        options = list(world.successors(state))
        if not options or len(trace) >= WALK_DEPTH:
            stuck = progress_violation(world, state)
            if stuck:
                result.violation, result.trace, result.continuation = stuck[0], trace, stuck[1]
                break
            state, trace = world.initial(), []
            result.walks += 1
            continue
        action, state = options[rng.randrange(len(options))]
        trace.append(action)
        result.explored += 1
        result.depth = max(result.depth, len(trace))
        seen.add(hash(state))
        result.fingerprints.append(fingerprint(state))
        violation = first_violation(world, state)
        if violation:
            result.violation, result.trace = violation, list(trace)
            break
    result.distinct = len(seen)
    result.seconds = time.perf_counter() - began
    return result


def replay(world, actions: list) -> tuple:
    """Carry out a saved run: (states, notes of each step, first violation or None).

    A step that is not possible where the run has got to is refused with a ValueError
    that says which step and why: the run does not belong to this world.
    """
    state = world.initial()
    states, notes, violation = [state], [], first_violation(world, state)
    for number, action in enumerate(actions, 1):
        plain = action._replace(crash_after=0)
        if plain not in world.actions(state):
            raise ValueError(f"Step {number} ({action.kind} {action.who}) is not possible "
                             "at that point: this run does not fit this configuration.")
        state, step_notes, cuts = world.step(state, action)
        if action.crash_after and action.crash_after not in cuts:
            raise ValueError(f"Step {number} cannot crash after {action.crash_after} "
                             "effect(s): the step does not have that many.")
        states.append(state)
        notes.append(step_notes)
        violation = violation or first_violation(world, state)
    return states, notes, violation


def fingerprint(state) -> str:
    """A short digest of a state that is the same in every run (sets are sorted first)."""
    return hashlib.blake2b(_canonical(state).encode(), digest_size=8).hexdigest()


def _canonical(value) -> str:
    if isinstance(value, (frozenset, set)):
        return "{" + ",".join(sorted(_canonical(v) for v in value)) + "}"
    if isinstance(value, tuple):
        return "(" + ",".join(_canonical(v) for v in value) + ")"
    return repr(value)
