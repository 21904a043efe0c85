"""The shell's `explore` command: model-check the kit's own 2PC core from the prompt.

Role: run the explorer (bank/explorer) with the options typed after `explore`, and
print its report: states explored, or the rule a broken variant breaks with the
shortest run as a sequence diagram. It needs no cluster: the explorer runs the
protocol cores in a simulator, not the servers.

Rules:
  * The options are the explorer's own (`python explore.py --help`); a bad one is
    refused with one sentence.
  * A long search says so before it starts, shows its progress every 5 s, and stops
    on Ctrl-C with a sentence (it runs here: no server is involved).

Glossary:
  variant   a deliberately broken copy of one rule of the core, to see it caught
"""

import contextlib
import io

from bank.explorer import cli
from bank.shell.plumbing import ShellError, split_words


class ExploreCommands:
    """The explorer at the prompt (a mixin of BankShell)."""

    def do_explore(self, arg):
        """explore [OPTIONS]: check every run of 2PC within fault budgets (the real core).
        Options as for `python explore.py`: --variant NAME (abort-on-restart,
        vote-yes-without-hold, abort-after-timeout, commit-before-force,
        decision-in-memory; presume-over-lost-log with --log-losses 1), --crashes N,
        --losses N, --log-losses N, --presumption P, --transfers N, --branches N,
        --random-walk STEPS --seed S, --save FILE, --replay FILE; --world replication
        [--replicas 2] --writes N --ticks N --catch-ups N --resends N (variants
        promote-out-of-sync, drop-without-manager, ack-after-one-replica with 2
        replicas, add-at-any-version, repeat-at-any-version, repeat-after-refusal). The
        default search takes about a minute; a broken variant is caught in seconds.
        Example: explore --variant abort-on-restart"""
        said, shown = io.StringIO(), io.StringIO()     # argparse's own usage block is noise
        try:
            with contextlib.redirect_stderr(said), contextlib.redirect_stdout(shown):
                options = cli.parser().parse_args(split_words(arg))   # C:\ paths too
        except SystemExit as exc:
            if exc.code == 0:                           # --help: the explorer's options
                return self._say(shown.getvalue().rstrip())
            why = said.getvalue().strip().splitlines()[-1:] or [""]
            why = why[0].split("error: ", 1)[-1]
            raise ShellError(f"Those explore options are not understood ({why}); "
                             "`help explore` lists them.") from None
        if options.window:
            raise ShellError("--window opens a window: run `python explore.py --replay FILE "
                             "--window` in a terminal; here --replay FILE prints the run.")
        try:                                  # bad budgets are said before "Exploring..."
            (cli.check_replication if options.world == "replication" else cli.check)(options)
        except ValueError as exc:
            raise ShellError(str(exc)) from None
        if not options.variant and not options.replay and not options.random_walk:
            self._say("Exploring every run within the budgets; progress every 5 s "
                      "(Ctrl-C stops the search)...")
        try:
            text, _found = cli.explore(options, cli.progress_every(5.0, self._print))
        except ValueError as exc:
            raise ShellError(str(exc)) from None
        except KeyboardInterrupt:
            raise ShellError("Search stopped (Ctrl-C): it ran here, in the shell, and "
                             "nothing else was changed.") from None
        self._say(text)
