"""The explorer: every run of the kit's Two-Phase Commit, within fault budgets.

Role: run the very protocol cores the servers run (bank/core: ParticipantTxn,
CoordinatorTxn) in a deterministic simulator, visit every state reachable with a
few crashes and lost messages (or walk at random, seeded), and check in each state
that the protocol's promises hold. Broken variants show what it catches.

Read in this order:
  world.py       the simulated world: state, actions, rules W1-W8
  steps.py       one step: feed a core one event and carry out its effects
  invariants.py  what must hold in every state, and progress in the end
  search.py      breadth-first search, random walks, replay
  variants.py    the broken variants, each a small subclass of a real core
  render.py      the report and the sequence diagram
  traces.py      runs saved as JSON and loaded again
  cli.py         `python -m bank.explorer` and run(options) for the shell

Glossary:
  state      everything about the bank at one moment, durable and volatile, as values
  budget     how many faults of each kind a run may have
  violation  a state (or an end) that breaks an invariant, with the shortest run to it
"""


def run(options) -> str:
    """The explorer's report for options (command-line words or a Namespace)."""
    from bank.explorer.cli import run as run_cli      # keeps `import bank.explorer` light
    return run_cli(options)
