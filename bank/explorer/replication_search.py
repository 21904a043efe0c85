"""The replication world's invariants, and the search over its states.

Role: explore every state of bank/explorer/replication.py's world within its budgets,
breadth-first, so that the first violation found has a shortest run, and tell a
person what was found (report). The world's rules (X1-X8) and the cores it runs are
in replication.py; the 2PC world's search is bank/explorer/search.py, and this one
works the same way.

Rules (as E2-E4 of search.py):
  * the invariants (replication.RULES) are checked in every state as it is reached;
    the first state that breaks one ends the search, and its run is replayed for the
    diagram;
  * every search is bounded: by its budgets, and by max_states;
  * the cyclic garbage collector is paused during the search.

Glossary:
  frontier  the states reached at the current depth, whose next steps are tried next
  parents   every state reached, with the state and action it was first reached from
"""

import gc
import time

from bank.explorer.replication import (BUDGETS_NEEDED, PRIMARY, REPLICAS_NEEDED, RULES,
                                       VARIANTS, Budgets, ReplicationWorld, State,
                                       server_named)
from bank.explorer.search import path_to


# ---- invariants ------------------------------------------------------------------------------

def violation(s: State):
    """(invariant, what is wrong) for the first rule broken in s, or None."""
    primary = server_named(s, s.config.primary)
    for w, name, epoch in sorted(s.acked):
        if w not in primary.log:
            return ("acked-writes-survive",
                    f"{w} was acknowledged by {name} at epoch {epoch}, but the recorded "
                    f"primary {s.config.primary} does not have it")
    by_epoch = {}
    for _w, name, epoch in s.acked:
        if by_epoch.setdefault(epoch, name) != name:
            return ("one-primary-per-epoch",
                    f"{by_epoch[epoch]} and {name} both acknowledged writes at epoch {epoch}")
    return None


# ---- the search ------------------------------------------------------------------------------

PROGRESS_EVERY = 4096        # steps between two calls of progress(depth, states)


def explore(budgets: Budgets = Budgets(), max_states: int = 2_000_000, progress=None) -> dict:
    """Breadth-first over every state within the budgets; the first violation has a
    shortest run. `progress(depth, states)`, if given, hears every few thousand steps
    how far the search got. Returns {"states", "explored", "depth", "seconds",
    "complete", "violation", "trace", "notes"}."""
    # States are plain tuples without cycles: the cyclic collector would only scan the
    # growing table again and again (as in search.py, E4).
    collecting = gc.isenabled()
    gc.disable()
    try:
        return _breadth_first(ReplicationWorld(budgets), max_states,
                              progress or (lambda depth, states: None))
    finally:
        if collecting:
            gc.enable()


def _breadth_first(world, max_states: int, progress) -> dict:
    began = time.perf_counter()
    start = world.initial()
    parents, frontier, explored, depth = {start: None}, [start], 0, 0
    found = None
    while frontier and not found and len(parents) < max_states:
        level = []
        for state in frontier:
            for action in world.actions(state):
                explored += 1
                if not explored % PROGRESS_EVERY:
                    progress(depth + 1, len(parents))
                after = world.step(state, action)[0]
                if after in parents:
                    continue
                parents[after] = (state, action)
                level.append(after)
                if violation(after):
                    found = after
                    break
            if found:
                break
        depth += bool(level)
        frontier = level
    trace = path_to(parents, found) if found else []
    return {"states": len(parents), "explored": explored, "depth": depth,
            "seconds": time.perf_counter() - began, "complete": not frontier or bool(found),
            "violation": violation(found) if found else None, "trace": trace,
            "notes": _notes(world, start, trace)}


def _notes(world, start: State, trace: list) -> list:
    """The diagram's notes of each step of `trace`, replayed from `start`."""
    notes, state = [], start
    for action in trace:
        state, step_notes = world.step(state, action)
        notes.append(step_notes)
    return notes


def report(budgets: Budgets = Budgets(), max_states: int = 2_000_000, progress=None) -> tuple:
    """(text, True if a violation was found): what explore() found, for a person."""
    from bank.explorer.render import COLUMN, _row, needs_more
    result = explore(budgets, max_states, progress)
    world, b = ReplicationWorld(budgets), budgets
    lines = [f"The explorer, replication world: "
             f"{'the kit as it is' if not b.variant else 'variant ' + b.variant}",
             f"World: {PRIMARY} (primary) and {', '.join(world.replicas)} (in sync), the "
             "coordinator as configuration manager",
             f"Budgets: writes {b.writes}, crashes {b.crashes}, lost messages {b.losses}, "
             f"lease periods passing {b.ticks}, catch-ups {b.catch_ups}, resends "
             f"{b.resends}",
             "Invariants: " + ", ".join(RULES),
             f"States: {result['states']:,} distinct, {result['explored']:,} steps tried, depth "
             f"{result['depth']}, {result['seconds']:.1f} s", ""]
    if not result["complete"]:
        lines.insert(-1, f"Search: STOPPED at {max_states:,} states: not exhaustive")
    if result["violation"] is None:
        lines.append("Result: no violation. Every invariant held in every state reached.")
        if b.replicas < REPLICAS_NEEDED.get(b.variant, 1):
            lines.append(f"  The variant {b.variant} needs {REPLICAS_NEEDED[b.variant]} "
                         f"replicas to break anything: try --replicas "
                         f"{REPLICAS_NEEDED[b.variant]}.")
        lines += [needs_more(b.variant, name, least)
                  for name, least in BUDGETS_NEEDED.get(b.variant, ())
                  if getattr(b, name) < least]
        return "\n".join(lines), False
    rule, what = result["violation"]
    lines += [f"Result: VIOLATION of {rule}: {RULES[rule]}.", f"  What is wrong: {what}."]
    if b.variant:
        lines.append(f"  The variant {b.variant} breaks {VARIANTS[b.variant]}.")
    lines += ["", f"The shortest run to it ({len(result['trace'])} steps):", "",
              "step  " + "".join(p.center(COLUMN) for p in world.parties).rstrip()]
    for number, step_notes in enumerate(result["notes"], 1):
        for i, note in enumerate(step_notes):
            prefix = f"{number:>4}  " if i == 0 else "      "
            lines.append(prefix + _row(note, list(world.parties)))
    return "\n".join(lines), True
