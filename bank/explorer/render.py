"""What the explorer prints: the numbers of a search and a run as a sequence diagram.

Role: turn a search Result and the notes of a replayed run into text a person can
use. Nothing here searches or decides; it only draws (in the spirit of
bank/shell_views.py `sequence_diagram`, one column per party, one row per event).

Rules:
  * One column per party: the client, the coordinator, its log, each branch. An arrow
    is a message delivered; "x" at its head is a message lost (or sent to a process
    that is down); "X" on a lifeline is a crash; "o" is something a process did by
    itself (a timeout, a restart, a record in its ledger).
  * Every report says what was searched, with its budgets, and how fast.

Glossary:
  note   a line of the diagram made while a step was carried out (world.Note)
"""

from bank.explorer.invariants import RULES
from bank.explorer.steps import LOG
from bank.explorer.world import CLIENT, COORDINATOR, OPENING
from bank.money import format_amount

COLUMN = 16
FAULT_NAMES = {"crashes": "crashes", "losses": "lost messages",
               "duplicates": "duplicated messages", "partitions": "partitions"}


def report(world, result, notes=(), continuation_notes=(), saved: str = "") -> str:
    """The whole text: the world, the search, the verdict and, if any, the run."""
    lines = describe_world(world) + [describe_search(result), ""]
    if result.violation is None:
        where = ("each one" if result.mode == "breadth-first" else "the end of each walk")
        lines.append("Result: no violation. Every invariant held in every state reached, "
                     f"and from {where} the calm run finished.")
        return "\n".join(lines + unmet_needs(world))
    v = result.violation
    lines += [f"Result: VIOLATION of {v.invariant}: {RULES[v.invariant]}.",
              f"  What is wrong: {v.detail}."]
    if world.config.variant:
        lines.append(f"  The variant {world.config.variant} breaks {world.variant.rule}.")
    title = "The shortest run" if result.mode == "breadth-first" else "The run"
    lines += ["", f"{title} to it ({len(result.trace)} steps):", "",
              diagram(world, notes)]
    if result.continuation:
        lines += ["", f"Then, with no more faults (the calm run, "
                      f"{len(result.continuation)} steps), it never finishes:", "",
                  diagram(world, continuation_notes, first=len(result.trace) + 1)]
    if saved:
        lines += ["", f"Saved to {saved}; replay it with: python explore.py "
                      f"--replay {saved}"]
    return "\n".join(lines)


def unmet_needs(world) -> list:
    """V3: a variant explored without the fault it needs passes: say which budget to give."""
    c = world.config
    return [needs_more(c.variant, budget, least)
            for budget, least in world.variant.needs if c.budget(budget) < least]


def needs_more(variant: str, budget: str, least: int) -> str:
    """The line that says a variant showed nothing for want of a budget (both worlds)."""
    option = f"--{budget.replace('_', '-')} {least}"
    return f"  The variant {variant} needs {option} to break anything: try {option}."


def describe_world(world) -> list:
    c, names = world.config, world.names
    transfers = "; ".join(
        f"{t.txid} {t.src}/1001 -> {t.dst}/1001 {format_amount(t.amount)}"
        + (" (more than there is: a no vote)" if t.amount > OPENING else "")
        for t in world.transfers)
    budgets = ", ".join(f"{FAULT_NAMES[f]} {c.budget(f)}" for f in FAULT_NAMES)
    if c.log_losses:                        # off by default: named only when asked for
        budgets += f", lost logs {c.log_losses}"
    kit = 'the kit as it is' if not c.variant else 'variant ' + c.variant
    if c.presumption != "abort":
        kit += f", presumed {c.presumption}"
    return [f"The explorer: {kit}",
            f"World: a coordinator and {len(names)} branches ({', '.join(names)}), "
            f"one account each holding {format_amount(OPENING)}",
            f"Transfers: {transfers}",
            f"Fault budgets: {budgets}",
            "Invariants: " + ", ".join(RULES)]


def describe_search(result) -> str:
    how = {"breadth-first": "breadth-first, " + (
               "stopped at the first violation" if result.violation else "exhaustive"
               if result.complete else "STOPPED at max states: not exhaustive"),
           "random walk": f"random walk, seed {result.seed}, {result.walks} walk(s)",
           "replay": "replay of a saved run"}[result.mode]
    rate = "" if result.mode == "replay" else f", {result.per_second:,.0f} steps/s"
    return (f"Search: {how}\nStates: {result.distinct:,} distinct, {result.explored:,} steps "
            f"tried, depth {result.depth}, {result.seconds:.1f} s{rate}")


def diagram(world, notes_per_step, first: int = 1) -> str:
    """A run as text: one row per note, the step number on its first row."""
    parties = [CLIENT, COORDINATOR, LOG, *world.names]
    lifelines = "      " + "".join("|".center(COLUMN) for _ in parties)
    lines = ["step  " + "".join(p.center(COLUMN) for p in parties).rstrip(),
             lifelines.rstrip()]
    for number, notes in enumerate(notes_per_step, first):
        for i, note in enumerate(notes):
            prefix = f"{number:>4}  " if i == 0 else "      "
            lines.append(prefix + _row(note, parties))
    return "\n".join(lines + [lifelines.rstrip()])


def _row(note, parties: list) -> str:
    line = list("".join("|".center(COLUMN) for _ in parties))
    a = parties.index(note.src) * COLUMN + (COLUMN - 1) // 2
    if note.src == note.dst:
        line[a] = "X" if note.kind == "crash" else "o"
        text = note.label + (f": {note.detail}" if note.detail else "")
        return f"{''.join(line).rstrip()}  {text}"
    b = parties.index(note.dst) * COLUMN + (COLUMN - 1) // 2
    lo, hi = min(a, b), max(a, b)
    line[lo + 1:hi] = "-" * (hi - lo - 1)
    head = b - 1 if b > a else b + 1
    line[head] = "x" if note.kind == "lost" else ">" if b > a else "<"
    label = f" {note.label} "[:max(0, hi - lo - 4)]
    start = lo + 2 + (hi - lo - 3 - len(label)) // 2
    line[start:start + len(label)] = label
    return f"{''.join(line).rstrip()}  {note.detail}".rstrip()
