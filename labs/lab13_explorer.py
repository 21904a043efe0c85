"""Lab 13: the explorer. Every run of 2PC within fault budgets, and the bug it finds.

Goal: see the difference between testing and checking. A test tries the runs someone
thought of; the explorer tries every order of messages, every crash point and every
lost message within small budgets, on the kit's own protocol core, and either says
"no violation in N states" or draws the shortest run that breaks a rule.
Read first: bank/core/participant.py (its table: rules P1-P11), bank/core/coordinator.py
(C1-C14), bank/explorer/variants.py (each broken variant is a few lines), and the
README's section "The explorer".

Scenario: (1) the correct core, one transfer, one crash and one lost message: every
reachable state is visited and no invariant breaks. (2) each broken variant in turn
(vote yes without holding the money; abort what is prepared on restart, as the
original toy did; abort on a timeout after voting yes; send commit before the
decision is forced; keep the decision only in memory; and, with the coordinator's
log lost once, presume about txids begun before the new log, the rule before C14):
the explorer finds the shortest run that breaks the rule, and the lab prints the
first one in full.

Steps:
  1. Run `python labs/lab13_explorer.py --step`.
  2. Read the first broken variant's shortest run step by step, with
     `bank/explorer/variants.py` open beside it.
  3. Save a run and replay it in the window:
     `python explore.py --variant decision-in-memory --save run.json`, then
     `python explore.py --replay run.json --window` (without --window, the same run
     is replayed as text: on a machine with no display).
  4. Optional (about a minute): `python explore.py` for the default world's state count.

Questions: In the abort-on-restart run (`python explore.py --variant abort-on-restart`
draws it), which step makes atomicity impossible to guarantee (the coordinator could
still decide commit, though in this short run it never does), and which rule (P-id)
says so? Why is the shortest run for decision-in-memory
longer than the one for abort-on-restart? Save a run (`python explore.py --variant
decision-in-memory --save run.json`) and step through it with `python explore.py
--replay run.json --window`: at which step does the coordinator's log stop agreeing
with what Delhi did? How many states does the default world have (`python
explore.py`, about a minute), and why does one more transfer multiply it? In the
replication world, which step of the drop-without-manager run would the correct kit
refuse, and which rule (R7) says so? Why must the failover wait for a tick (M4)? In
the repeat-after-refusal run, which answer of the manager would the kit give
differently, and why is that run impossible without a resend (X8)?
Run `python explore.py --variant presume-over-lost-log --log-losses 1 --presumption
commit`: what does the kit's coordinator answer Mumbai at the last step instead, and
whom does Mumbai ask then (C14, P9)? Which transfer can the kit itself not finish after
a lost log, and who ends it (P10)?

Run: python labs/lab13_explorer.py [--step]   (about 30 seconds; it starts no servers, so it
has no folder)     Handout: labs/lab13_explorer.md
"""

import sys

from labkit import options, step

from bank.explorer import cli, replication, variants


def explore(args: list) -> tuple:
    """cli.explore, saying every few seconds how far a long search got (on stderr: the
    handout's transcript stays the same on a fast machine and a slow one)."""
    return cli.explore(args, cli.progress_every(3.0))


def main() -> int:
    options()                     # --step pauses between stages; breadth-first search is not random
    print(__doc__.strip().splitlines()[0], flush=True)
    step("The kit's own core: one transfer, one crash, one lost message, every run.")
    text, found = explore(["--transfers", "1"])
    print("\n".join(line for line in text.splitlines() if line.startswith(("States", "Result"))))
    if found:
        print(text)
        print("\nFAILED: the correct kit broke an invariant.")
        return 1
    for number, name in enumerate(variants.VARIANTS):
        step(f"Broken variant {name}: it breaks {variants.get(name).rule}")
        needs = [word for budget, least in variants.get(name).needs       # V3: a lost log
                 for word in (f"--{budget.replace('_', '-')}", str(least))]
        text, found = explore(["--variant", name, *needs])
        if not found:
            print(f"\nFAILED: the explorer did not catch {name}.")
            return 1
        lines = text.splitlines()
        print(text if number == 0 else "\n".join(
            l.replace("):", f"): python explore.py {' '.join(['--variant', name, *needs])} "
                      "draws it")
            if l.startswith("The shortest") else l for l in lines if l.startswith(
                ("States", "Result", "  What", "  The variant", "The shortest"))))
    step("The replication world: a primary, its replica, the coordinator as configuration "
         "manager; a crash, leases running out, a failover at any moment, a dropped "
         "replica catching up while its add is on its way to the manager, a request to "
         "the manager sent again after a timeout while its first try is on its way.")
    text, found = explore(["--world", "replication"])
    print("\n".join(line for line in text.splitlines() if line.startswith(("States", "Result"))))
    if found:
        print(text)
        print("\nFAILED: the correct replication rules lost an acknowledged write.")
        return 1
    for name in replication.VARIANTS:
        step(f"Broken replication variant {name}: it breaks {replication.VARIANTS[name]}")
        replicas = str(replication.REPLICAS_NEEDED.get(name, 1))    # the smallest world
        text, found = explore(["--world", "replication", "--variant", name,
                                   "--replicas", replicas])
        if not found:
            print(f"\nFAILED: the explorer did not catch {name}.")
            return 1
        print(text.split("\n\n", 1)[1])
    print("\nLab 13 passed: the correct cores keep every invariant, and every broken "
          "variant is caught with its shortest run.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
