"""The shell's plumbing: running one command, its output, its errors and its arguments.

Role: the base of BankShell (bank/shell/__init__.py). It runs a line as a command
(an error becomes one sentence, the activity log gets a row), runs scripts and the
interactive prompt, and gives the command classes their small tools: `_args` checks
the word count, `_acct` and `_amount` check what was typed, `_write` sends a
money-moving call with a fresh request id. It defines no command itself.

Rules:
  * Rule 3 - never guess an outcome (`_write`): a call without an answer is "not known".
  * Rule 4 - every error is one sentence and the shell keeps running; a failed command
    counts in `failures`, so a script exits non-zero.
  * Rule 5 - every command and its result go to the activity log (logs/activity.csv).
  * Rule 6 - words match facts: "no answer in time" for a timeout (it may still have
    happened), "cannot be reached" only for a refused connection.
  * Output goes to ``self.stdout`` only, so tests drive ``onecmd()`` with a StringIO.

Glossary:
  acct        an account as typed: BRANCH/NUMBER, e.g. Mumbai/1001
  request id  the id the shell sends with a money-moving call (shell-...); a retry applies once
  failures    how many commands failed so far (a script's exit code)
"""

import cmd
import inspect
import os
import pathlib
import re
import shlex
import uuid

from tabulate import tabulate

from bank import activity
from bank import local_cluster as cluster
from bank import rpc
from bank.errors import BankError, FaultCode, split_acct_ref, surely_not_done
from bank.money import format_amount, parse_amount
from bank.views import minor

KIT = pathlib.Path(__file__).resolve().parents[2]   # the kit's folder: the default home
COORDINATOR_TIMEOUT = 30       # seconds: longer than a 2PC round with its vote timeouts
ACCT_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_-]*/[0-9]+$")
# Row counts are ASCII digits: str.isdigit() also accepts "²", which int() refuses.
COUNT_RE = re.compile(r"[0-9]{1,6}")
SPACED_ACCT = re.compile(r"[A-Za-z][A-Za-z0-9_-]* ?/ ?[0-9]+")   # "Mumbai/ 1001"...
NOT_RECORDED = ("help", "log", "clear", "quit", "exit", "EOF")
WITHOUT_A_BANK = NOT_RECORDED + ("export", "explore")   # they work on a stopped cluster


class ShellError(Exception):
    """A failed command whose sentence is shown as it is (no "Error:" prefix)."""


class OutcomeUnknown(ShellError):
    """A money-moving call that got no answer: it may have been applied. The activity
    log says "unknown" for it, never "no" (bank/activity.py)."""


# ---- small helpers ----------------------------------------------------------------------

def coordinator_client(url: str, secret=None) -> rpc.Client:
    """The coordinator's client; its errors name it and its URL."""
    return rpc.Client(url, secret, COORDINATOR_TIMEOUT, label=f"the coordinator at {url}")


def doc_parts(func) -> tuple:
    """(usage, summary, example) from a do_ method's docstring. The summary is the first
    sentence: a first line that stops mid-sentence ("restart NODE [...]: start a crashed
    (or running)") goes on to the line where that sentence ends, so `help` never lists a
    command cut short."""
    lines = inspect.cleandoc(func.__doc__ or "").splitlines() or [""]
    usage, _, summary = lines[0].partition(": ")
    for line in lines[1:-1]:
        if summary.endswith("."):
            break
        end = re.search(r"\.(\s|$)", line)
        summary += " " + (line[:end.start() + 1] if end else line)
    return usage, summary, lines[-1].replace("Example: ", "", 1)


def split_words(arg: str) -> list:
    """Split like a shell: quotes group words ("Meera Iyer"); bad quoting is an error."""
    try:
        words = shlex.split(arg, posix=os.name != "nt")     # keep C:\ paths on Windows
    except ValueError:
        raise ShellError("A quote is not closed; put quotes around both ends of a name.")
    return [w[1:-1] if len(w) > 1 and w[0] == w[-1] and w[0] in "\"'" else w
            for w in words]      # non-POSIX shlex (Windows) keeps a word's quotes


def split_account(words: list) -> str:
    """An account typed with a space in it ("Mumbai/ 1001", "Mumbai /1001", "Mumbai / 1001"),
    as typed, or "" if there is none: the shell names it rather than count its halves as
    two words (a usage line, or "'' is not an account number")."""
    for i in range(len(words) - 1):
        for typed in (" ".join(words[i:i + 2]), " ".join(words[i:i + 3])):
            if SPACED_ACCT.fullmatch(typed):
                return typed
    return ""


TIMED_OUT = re.compile(r"cannot be reached \(no answer in time\)\.?")


def sentence(exc: BankError) -> str:
    """A BankError's sentence, starting with a capital letter. Words match facts (Rule 6):
    a call that timed out was sent and may have been done, so it "gave no answer in
    time"; "cannot be reached" stays for a refused connection."""
    text = TIMED_OUT.sub("gave no answer in time.", exc.message.strip())
    return text[:1].upper() + text[1:]


def is_count(word: str) -> bool:
    """True for a row count typed in ASCII digits ("20"); never for "²" or "٣"."""
    return COUNT_RE.fullmatch(word) is not None


def cut(text: str, most: int = 80) -> str:
    """A table cell of at most `most` characters, ending in "..." when cut (`show` or
    `export` has it whole)."""
    return text if len(text) <= most else text[:most - 3].rstrip() + "..."


def when(ts: str) -> str:
    """'2026-11-25T13:17:33.255+00:00' -> '2026-11-25 13:17:33' (UTC)."""
    return ts[:19].replace("T", " ")


# ---- the base of the shell ---------------------------------------------------------------

class ShellCore(cmd.Cmd):
    """Runs commands; `local` is the LocalCluster (for crash/restart), or None."""

    prompt = "bank> "

    def __init__(self, coordinator: rpc.Client, local=None, home=KIT, stdout=None,
                 where: str = "", branch_urls=None):
        super().__init__(stdout=stdout)
        self.coord, self.local, self.home = coordinator, local, pathlib.Path(home)
        self.branch_urls = dict(branch_urls or {})     # name -> URL, for direct reads
        self.activity = activity.ActivityLog(self.home / "logs" / "activity.csv",
                                             cluster=coordinator.url)     # A1
        self.where = where or f"the coordinator at {coordinator.url}"
        self.interactive, self.ask, self.failures = False, input, 0   # tests replace ask
        self._names, self._names_at = {}, 0.0
        self._cmd, self._failed, self._result, self._extra = "", False, "", []
        self._direct = False           # True once a command reads from the branches
        self._primaries = {}           # branch -> its primary's URL, for that command
        self.start_total = self._total()
        self._start_counting()          # `counters` leaves out what came before

    # ---- running commands ----------------------------------------------------------

    def onecmd(self, line: str) -> bool:
        """Run one command: errors become one sentence; the activity log gets a row."""
        line = line.strip().replace("\t", " ")
        if not line or line.startswith("#"):
            return False
        if not line.isprintable():     # an escape code would reach the log and the screen
            bad = next(c for c in line if not c.isprintable())
            self._fail(f"The command contains a character that cannot be shown "
                       f"(U+{ord(bad):04X}); type it again without it. Nothing was done.")
            return False
        self._cmd = self.parseline(line)[0] or ""
        if self._cmd.lower() != self._cmd and self._cmd.lower() in self.command_names():
            line, self._cmd = self._cmd.lower() + line[len(self._cmd):], self._cmd.lower()
        self._failed, self._result, self._extra, self._direct = False, "", [], False
        self._primaries = {}
        self._names_at, stop = 0.0, False      # completion names may have changed
        unknown = False
        try:
            if self._cmd in self.command_names() and self._cmd not in WITHOUT_A_BANK \
                    and self.local is not None and self.local.stopped_elsewhere():
                raise ShellError(cluster.stopped_under("shell"))    # and `restart` would make half a bank
            stop = super().onecmd(line)
        except OutcomeUnknown as exc:
            self._fail(str(exc))
            unknown = True
        except ShellError as exc:
            self._fail(str(exc))
        except BankError as exc:
            self._fail("Error: " + self._explain(exc))
        except KeyboardInterrupt:
            self._reconnect()
            self._fail("Interrupted: the command may still finish on the server.")
        except Exception as exc:       # a bug in the shell: still one line, no traceback
            self._fail(f"Error: the shell failed on this command ({type(exc).__name__}: "
                       f"{exc}).")
        if self._cmd not in NOT_RECORDED and self._cmd in self.command_names():
            refs = [w for w in line.split() if ACCT_RE.match(w)] + self._extra
            try:
                self.activity.record("shell", line, refs, None if unknown else not self._failed,
                                     self._result)
            except OSError as exc:
                self._print(f"(The activity log could not be written: {exc.strerror}.)")
        return bool(stop)

    def emptyline(self) -> bool:
        return False                   # never repeat the last command (it may be a transfer)

    def run_script(self, lines) -> None:
        """Run commands without a prompt, echoing each one after the prompt."""
        for line in (raw.strip() for raw in lines):
            if line.startswith("#"):
                self._print(line)
            elif line:
                self._print(self.prompt + line)
                if self.onecmd(line):
                    break

    def run_interactive(self, banner: str) -> None:
        """The prompt, with history; Ctrl-C at the prompt does not leave the shell."""
        self.interactive, intro = True, banner
        readline = _readline(self.home / "logs" / ".shell_history")
        while True:
            try:
                self.cmdloop(intro)
                break
            except KeyboardInterrupt:
                self._print("^C (type quit to leave)")
                intro = ""
        try:
            if readline:
                readline.write_history_file(str(self.home / "logs" / ".shell_history"))
        except OSError:
            pass                                   # history is a convenience only

    # ---- output, errors and arguments ----------------------------------------------

    def _print(self, text: str = "") -> None:
        self.stdout.write(text + "\n")

    def _say(self, text: str) -> None:
        """Print a result and keep it for the activity log."""
        self._print(text)
        self._result = text

    def _fail(self, text: str) -> None:
        self._print(text)
        self._failed, self._result, self.failures = True, text, self.failures + 1

    def _table(self, rows, headers, right=()) -> None:
        align = ["right" if h in right else "left" for h in headers]
        self._print(tabulate(rows, headers, disable_numparse=True, colalign=align)
                    if rows else "(nothing to show)")

    def _explain(self, exc: BankError) -> str:
        text = sentence(exc)
        if exc.code == FaultCode.UNKNOWN_METHOD and self._cmd in ("fault", "partition", "heal"):
            return "That server does not take lab controls: start it with --allow-faults."
        if exc.code == FaultCode.UNAUTHORIZED:
            return text.rstrip(".") + "; give the shell its secret with --secret-file FILE."
        if exc.code == FaultCode.UNAVAILABLE and self.local is not None:
            return text.rstrip(".") + self._how_to_restart(text)
        return text

    def _how_to_restart(self, text: str) -> str:
        """The local cluster's member a refusal names as unreachable, and how to bring it
        back; a failover cut short by the coordinator's death is finished by asking again
        (the coordinator's M5 record says where it got to)."""
        if text.startswith("The coordinator at"):
            again = "; then the same `failover` again finishes a failover it had begun" \
                if self._cmd == "failover" else ""
            return f"; `restart coordinator` starts it again{again}."
        for name in self.local.members:
            if text.startswith(f"{name} cannot be reached"):
                return f"; `restart {name}` starts it again."
        return "."

    def _reconnect(self) -> None:
        """A fresh client: an interrupted call leaves the old connection unusable."""
        self.coord = coordinator_client(self.coord.url, self.coord.secret)

    def _args(self, arg: str, low: int, high=None) -> list:
        """The command's words; a wrong count is a usage error with an example."""
        words = split_words(arg)
        typed = split_account(words)
        usage, _, example = doc_parts(getattr(self, "do_" + self._cmd, self.do_help))
        if typed and len(words) - typed.count(" ") < low:    # joined, too few words: the
            raise ShellError(f"{typed!r} is not an account (BRANCH/NUMBER in one word, "
                             f"like Mumbai/1001). Usage: {usage} (for example: {example}).")
        if typed:                                  # "number" was the next argument
            branch, _, number = typed.replace(" ", "").partition("/")
            raise ShellError(f"An account is one word, with no space: write {branch}/{number}, "
                             f"not {typed!r}.")
        if not low <= len(words) <= (low if high is None else high):
            raise ShellError(f"Usage: {usage} (for example: {example}).")
        return words

    @staticmethod
    def _acct(text: str) -> str:
        return "/".join(split_acct_ref(text))

    @staticmethod
    def _amount(text: str, allow_zero=False) -> str:
        return format_amount(parse_amount(text, allow_zero=allow_zero))

    def _node(self, name: str) -> str:
        """A member name as the cluster spells it (case does not matter)."""
        nodes = list(self.local.members) if self.local else \
            [cluster.COORDINATOR, *self.coord.call("ping")["branches"]]
        for node in nodes:
            if node.lower() == name.lower():
                return node
        raise ShellError(f"There is no node {name!r}; the nodes are {', '.join(nodes)}.")

    def _need_local(self) -> None:
        if self.local is None:
            raise ShellError(f"{self._cmd} works only on a local cluster (python shell.py); "
                             f"this shell is attached to {self.where}.")

    def _total(self):
        """The money over all branches now, or None if a branch cannot be read."""
        try:
            return sum(minor(a["balance"]) for b in self.coord.call("ping")["branches"]
                       for a in self.coord.call("accounts", b))
        except BankError:
            return None

    def _write(self, method: str, args: tuple, learn: str) -> dict:
        """Call a money-moving method with a fresh request id (Rule 3).

        A call without an answer may still have been applied: so the outcome is
        reported as not known, with how to learn it, never as failed. Only when the
        request provably never left ("Nothing was done", or a refused connection
        here) is it a plain failure.
        """
        request_id = "shell-" + uuid.uuid4().hex[:12]
        try:
            return self.coord.call(method, *args, request_id)
        except (BankError, KeyboardInterrupt) as exc:
            if isinstance(exc, BankError) and surely_not_done(exc):
                raise
            why = self._explain(exc) if isinstance(exc, BankError) else "Interrupted."
            self._reconnect()
            raise OutcomeUnknown(f"Outcome not known: {why} It may still take effect; "
                             f"{learn.format(request_id)} (request id {request_id}).")


def _readline(history):
    """Set up line editing and history where readline exists (optional on Windows)."""
    try:
        import readline
    except ImportError:
        return None
    readline.set_completer_delims(" \t\n")        # keep Mumbai/1001 and txids whole
    if "libedit" in (readline.__doc__ or ""):      # macOS's stand-in for readline
        readline.parse_and_bind("bind ^I rl_complete")
    readline.set_history_length(1000)
    try:
        readline.read_history_file(str(history))
    except OSError:
        pass                                       # no history yet
    return readline
