"""The explorer's command line, and run(options) for the shell to call.

Role: read the options, build the world, search (or replay), print the report, save
the run. `python -m bank.explorer --help` lists the options; explore.py at the top
of the kit is the same program.

Rules:
  * A bad option gets one sentence and exit code 2; nothing is searched.
  * Exit code 0: no violation; 1: a violation was found (labs can rely on it).
  * A random walk without --seed picks one and prints it, so the walk can be replayed.

Glossary:
  options   an argparse Namespace, or the words of a command line
"""

import argparse
import secrets
import sys
import time

from bank.explorer import render, replication, replication_search, search, traces, variants
from bank.explorer.world import Config, World


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python explore.py",
        description="Explore every run of the kit's Two-Phase Commit (the real protocol "
                    "cores) within fault budgets, checking its invariants in every state.",
        epilog="Variants (each breaks one rule): " + ", ".join(variants.VARIANTS)
               + "; in the replication world: " + ", ".join(replication.VARIANTS))
    p.add_argument("--world", choices=("2pc", "replication"), default="2pc",
                   help="2pc (default): a coordinator, branches, transfers; replication: a "
                        "primary, its replicas and the configuration manager")
    p.add_argument("--writes", type=int, default=2,
                   help="replication world: deposits the client makes (default 2)")
    p.add_argument("--ticks", type=int,
                   help="replication world: lease periods that may pass (default 2; "
                        "1 with two replicas)")
    p.add_argument("--catch-ups", type=int,
                   help="replication world: dropped replicas that catch up again, their "
                        "add on its way to the manager (default 1; 0 with two replicas)")
    p.add_argument("--resends", type=int,
                   help="replication world: requests to the manager that go unanswered in "
                        "time and are sent again, the first try still on its way (default "
                        "1; 0 with two replicas)")
    p.add_argument("--replicas", type=int, default=1,
                   help="replication world: replicas of the branch, 1 or 2 (default 1)")
    p.add_argument("--branches", type=int, default=2, help="2 or 3 (default 2)")
    p.add_argument("--transfers", type=int, default=2,
                   help="1 to 3 concurrent transfers; T2 is unaffordable (default 2)")
    p.add_argument("--crashes", type=int, default=1, help="crash budget (default 1)")
    p.add_argument("--losses", type=int,
                   help="lost messages (default 1; 0 in the replication world, where a "
                        "loss adds no state: X6)")
    p.add_argument("--duplicates", type=int, default=0, help="duplicated messages (default 0)")
    p.add_argument("--partitions", type=int, default=0, help="partitions (default 0)")
    p.add_argument("--log-losses", type=int, default=0,
                   help="the coordinator's recovery log lost: it comes back on a new, empty "
                        "log (C14; default 0)")
    p.add_argument("--presumption", choices=("nothing", "abort", "commit"), default="abort",
                   help="the coordinator's presumption, C8/C10-C13 (default abort)")
    p.add_argument("--variant", default="", help="a broken variant to explore instead of the kit")
    p.add_argument("--random-walk", type=int, metavar="STEPS", default=0,
                   help="seeded random walks of this many steps in all, instead of "
                        "the exhaustive search")
    p.add_argument("--seed", type=int, help="the random walk's seed (printed if not given)")
    p.add_argument("--max-states", type=int, default=search.MAX_STATES,
                   help=f"stop the exhaustive search here (default {search.MAX_STATES:,})")
    p.add_argument("--save", metavar="FILE", help="save the run to a violation as JSON")
    p.add_argument("--replay", metavar="FILE", help="replay a saved run and draw it")
    p.add_argument("--window", action="store_true",
                   help="with --replay: step through the run in a window, forward and back")
    return p


def options_from(options) -> argparse.Namespace:
    """A Namespace from a Namespace, a list of words or one string of them."""
    if isinstance(options, argparse.Namespace):
        return options
    words = options.split() if isinstance(options, str) else list(options)
    return parser().parse_args(words)


def check(options) -> Config:
    """The Config the options ask for, or a ValueError saying what is wrong."""
    if options.branches not in (2, 3):
        raise ValueError("--branches must be 2 or 3.")
    if not 1 <= options.transfers <= 3:
        raise ValueError("--transfers must be 1, 2 or 3.")
    losses = Config.losses if options.losses is None else options.losses   # not given
    budgets = {"crashes": options.crashes, "losses": losses,
               "duplicates": options.duplicates, "partitions": options.partitions,
               "log-losses": options.log_losses}
    for name, value in budgets.items():
        if not 0 <= value <= 5:
            raise ValueError(f"--{name} must be between 0 and 5.")
    check_limits(options)
    variants.get(options.variant)                      # a sentence if unknown
    return Config(options.branches, options.transfers, options.crashes, losses,
                  options.duplicates, options.partitions, options.log_losses,
                  options.variant, getattr(options, "presumption", "abort"))


def explore(options, progress=None) -> tuple:
    """(report text, True if a violation was found). Raises ValueError for bad options.
    `progress(depth, states)` hears of each finished level of a breadth-first search."""
    options = options_from(options)
    if options.world == "replication":
        return explore_replication(options, progress)
    if options.replay:
        return replay_file(options.replay)
    world = World(check(options))
    if options.random_walk:
        seed = options.seed if options.seed is not None else secrets.randbelow(10**6)
        result = search.random_walk(world, options.random_walk, seed)
    else:
        result = search.breadth_first(world, options.max_states, progress)
    return draw(world, result, options.save), result.violation is not None


def explore_replication(options, progress=None) -> tuple:
    """The replication world (bank/explorer/replication.py): (report, violation found)."""
    budgets = check_replication(options)
    return replication_search.report(budgets, options.max_states, progress)


def check_limits(options) -> None:
    """E3, in both worlds: a search asks for a positive number of states or steps, and
    not more than memory allows; else a ValueError."""
    if options.random_walk < 0 or options.max_states < 1:
        raise ValueError("--random-walk and --max-states must be positive.")
    if max(options.random_walk, options.max_states) > search.MOST_STATES:
        raise ValueError(f"--random-walk and --max-states may be at most "
                         f"{search.MOST_STATES:,}: every state kept takes memory.")


def check_replication(options):
    """The replication world's budgets the options ask for, or a ValueError."""
    unused = [f"--{name.replace('_', '-')}" for name in ("save", "replay", "random_walk")
              if getattr(options, name)]
    if unused:
        raise ValueError(f"{' and '.join(unused)} work{'s' if len(unused) == 1 else ''} in "
                         "the 2pc world only: the "
                         "replication world prints its runs but does not save them.")
    check_limits(options)
    given = {name: getattr(options, name)
             for name in ("writes", "crashes", "losses", "ticks", "catch_ups", "resends")}
    for name, value in given.items():
        if value is not None and not 0 <= value <= 4:
            raise ValueError(f"--{name.replace('_', '-')} must be between 0 and 4.")
    return replication.budgets_for(options.replicas, options.variant, **given)


def draw(world, result, save: str = "") -> str:
    notes, calm_notes = [], []
    if result.violation is not None:
        notes = search.replay(world, result.trace + result.continuation)[1]
        notes, calm_notes = notes[:len(result.trace)], notes[len(result.trace):]
        if save:
            traces.save(save, world.config, result.trace, result.violation)
    elif save:
        save = ""                                  # nothing to save
    return render.report(world, result, notes, calm_notes, save)


def replay_file(path: str) -> tuple:
    config, actions = traces.load(path)
    world = World(config)
    states, notes, violation = search.replay(world, actions)
    result = search.Result("replay", explored=len(actions), distinct=len(set(states)),
                           depth=len(actions), violation=violation, trace=actions)
    text = render.report(world, result, notes)
    if violation is None:
        text += "\n\nThe run replays to its end without breaking any invariant:\n\n" \
                + render.diagram(world, notes)
    text += f"\n\nFinal state fingerprint: {search.fingerprint(states[-1])}"
    return text, violation is not None


def run(options) -> str:
    """The report for these options (a Namespace or command-line words): for the shell.
    A bad option is answered with its sentence instead of a report."""
    try:
        return explore(options)[0]
    except ValueError as exc:
        return str(exc)
    except SystemExit:                                 # argparse has printed why
        return "Those options are not understood: try --help."


def progress_every(seconds: float, say=None):
    """A progress(depth, states) that says how far a long search got, at most every
    `seconds` (to the terminal's stderr, or through say(text)), so that a minute of
    silence is not taken for a hang."""
    began = last = time.monotonic()
    say = say or (lambda text: print(text, file=sys.stderr, flush=True))

    def progress(depth: int, states: int) -> None:
        nonlocal last
        now = time.monotonic()
        if now - last >= seconds:
            last = now
            say(f"  ... {states:,} states so far, {depth} steps deep ({now - began:.0f} s)")
    return progress


def main(argv=None) -> int:
    options = parser().parse_args(argv)
    if options.window:
        if not options.replay:
            print("--window goes with --replay FILE.", file=sys.stderr)
            return 2
        import tkinter                                 # Tk only when a window is asked for
        from bank.window.replay import open_window
        try:
            return open_window(options.replay)
        except tkinter.TclError as exc:
            print(f"Cannot open the window ({exc}): is there a display? Without one, "
                  f"leave out --window.", file=sys.stderr)
            return 1
    try:                                               # a bad option: its sentence first
        check_replication(options) if options.world == "replication" else \
            None if options.replay else check(options)
    except ValueError as exc:
        print(exc, file=sys.stderr)
        return 2
    if not (options.replay or options.random_walk):
        long = options.world == "2pc" and not options.variant and options.transfers >= 2 \
            and options.branches >= 2                           # the default search, or more
        print("Exploring every run within the budgets" +
              (" (the defaults take about a minute)..." if long else "..."),
              file=sys.stderr, flush=True)
    try:
        text, found = explore(options, progress_every(5.0))
    except ValueError as exc:
        print(exc, file=sys.stderr)
        return 2
    print(text)
    return 1 if found else 0
