"""The shell's guide: typo hints, help, leaving, and tab completion.

Role: the cmd.Cmd conventions every command relies on. `help` is built from the
commands' docstrings (first line "USAGE: what it does", last line "Example: ...");
an unknown word is answered with the closest commands (or, for a word the handouts
use for one, like "audit", with that command: SYNONYMS); Tab completes commands,
branches, accounts, txids, nodes and fault points.

Rules:
  * Rule 1 - one ``do_<verb>`` per command; its docstring is its help.
  * The commands are listed in the order the command classes define them, following
    BankShell's bases (banking, records, lab controls, activity log, this guide).
  * Completion never blocks for long: names are fetched with a 2 s timeout, at most
    every 5 s, and an unreachable coordinator completes nothing.

Glossary:
  node   a cluster member: a branch name or "coordinator" (crash, restart, fault)
"""

import difflib
import inspect
import time

from bank import local_cluster as cluster
from bank import rpc
from bank.errors import BankError
from bank.core.messages import BRANCH_POINTS, COORDINATOR_POINTS
from bank.shell.plumbing import doc_parts

TXN_STATES = ("in-doubt", "committed", "aborted")


class GuideCommands:
    """help, quit, exit, EOF; typo hints and completion (a mixin of BankShell)."""

    def do_help(self, arg):
        """help [COMMAND]: list the commands, or explain one with an example.
        Example: help transfer"""
        topic = self._args(arg, 0, 1)          # `help help help`: a usage, not a typo hint
        if topic:
            func = getattr(self, "do_" + topic[0], None)
            return self._print(inspect.cleandoc(func.__doc__)) if func else self.default(arg)
        self._table([doc_parts(getattr(self, "do_" + n))[:2] for n in self.command_names()],
                    ["command", "what it does"])
        self._print("Accounts are typed BRANCH/NUMBER, like Mumbai/1001. "
                    "`help COMMAND` explains one, with an example.")

    def do_quit(self, arg):
        """quit: leave the shell, stopping the cluster it started (unless others use it).
        If another program attached to that cluster since, the shell says so and leaves
        it running.
        Example: quit"""
        self._args(arg, 0)                   # `quit now` is refused, as extra words are
        return True

    def do_exit(self, arg):
        """exit: leave the shell, like quit.
        Example: exit"""
        self._args(arg, 0)
        return True

    def do_EOF(self, arg):
        """EOF: leave the shell at the end of input (Ctrl-D; Ctrl-Z Enter on Windows).
        Example: EOF"""
        if self.interactive:
            self._print()
        return True

    # ---- typo hints --------------------------------------------------------------
    # (SYNONYMS, below the class: words the README and handouts use for a command)

    def default(self, line: str) -> None:
        word, names = line.split()[0], self.command_names()
        close = [n for n in [SYNONYMS.get(word.lower())] if n in names]   # the one meant
        if not close:
            close = [n for n in names if n.startswith(word) and len(word) > 1]
            close += [n for n in difflib.get_close_matches(word, names, 3) if n not in close]
        hint = f", did you mean {' or '.join(repr(n) for n in close[:3])}?" if close else "."
        self._fail(f"Unknown command {word!r}{hint} Type help to list the commands.")

    def command_names(self) -> list:
        """The commands, in the order the classes of this shell define them (EOF left out)."""
        names = []
        for cls in type(self).__mro__:
            names += [n[3:] for n in vars(cls) if n.startswith("do_") and n != "do_EOF"
                      and n[3:] not in names]
        return names

    # ---- tab completion ------------------------------------------------------------

    ARGUMENTS = {"accounts": ("branch",), "open": ("branch",), "balance": ("acct",),
                 "deposit": ("acct",), "withdraw": ("acct",), "transfer": ("acct", "acct"),
                 "journal": ("place",), "txns": ("state",), "show": ("txid",),
                 "crash": ("node",), "restart": ("node",), "fault": ("node", "point"),
                 "partition": ("branch",), "heal": ("branch",), "log": ("acct",),
                 "export": ("export", "place")}

    def completenames(self, text, *ignored):
        return [n for n in self.command_names() if n.startswith(text)]

    def completedefault(self, text, line, begidx, endidx):
        """Complete branch names, accounts (BRANCH/NUMBER), txids, nodes, fault points."""
        words = line[:begidx].split()
        if words[:1] == ["export"] and len(words) == 2 and words[1] != "journal":
            return []                          # after `export ACCT` comes a file name
        kinds = self.ARGUMENTS.get(words[0], ()) if words else ()
        if not 0 < len(words) <= len(kinds):
            return []
        names = self._known_names()
        candidates = {
            "branch": names["branches"], "acct": names["accounts"],
            "txid": ["last", *names["txids"]], "state": TXN_STATES,
            "place": ["all", *names["branches"], *names["accounts"]],
            "node": [*names["branches"], cluster.COORDINATOR],
            "point": [*BRANCH_POINTS, *COORDINATOR_POINTS, "delay=2", "off"],
            "export": ["journal", "all", *names["accounts"]]}[kinds[len(words) - 1]]
        return [c for c in candidates if c.startswith(text)]

    def _known_names(self) -> dict:
        """Branches, accounts and recent txids, fetched again after each command."""
        if time.monotonic() - self._names_at > 5:
            quick = rpc.Client(self.coord.url, self.coord.secret, timeout=2)
            try:
                self._names = {"branches": quick.call("ping")["branches"],
                               "accounts": [f"{a['branch']}/{a['number']}"
                                            for a in quick.call("accounts", "")],
                               "txids": [t["txid"] for t in quick.call("transactions", 50)]}
            except BankError:
                self._names = self._names or {"branches": [], "accounts": [], "txids": []}
            self._names_at = time.monotonic()
        return self._names


# Words a newcomer takes from the handouts ("the audit shows the damage") for a command.
SYNONYMS = {"audit": "check", "kill": "crash", "start": "restart", "trace": "show",
            "diagram": "show", "transactions": "txns", "status": "txns"}
