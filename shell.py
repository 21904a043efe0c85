"""The interactive shell: the whole bank from a `cmd` prompt, scriptable for labs.

Role: turn what a person types into calls to the coordinator (and, for crash and
restart, to the local cluster) and show the answers as tables, sentences and text
sequence diagrams (drawn by shell_views.py, which does no I/O). Most students meet
the kit here.

Run it:
    python shell.py                       # attach to the local cluster, or start one
    python shell.py --config cluster.ini  # or --coordinator URL [--secret-file F]
    python shell.py -c "transfer Mumbai/1001 Delhi/1002 100; balance Mumbai/1001"
    python shell.py < lab.txt             # one command per line; '#' lines are echoed

Rules:
  * Rule 1 - one ``do_<verb>`` per command; its docstring is its help: the first line
    is "USAGE: what it does", the last line "Example: ...". ``help`` is built from them.
  * Rule 2 - the shell decides nothing about money. It checks what was typed (account
    names, amounts) and asks the coordinator; the branches and the coordinator decide.
  * Rule 3 - never guess an outcome. Every transfer carries a fresh request id; if no
    answer comes back, the shell says the outcome is not known and how to learn it
    (``show REQUEST_ID``). It says "aborted" only when the coordinator said so.
  * Rule 4 - every error is one sentence and the shell keeps running. A failed command
    (an error, a failed check, an aborted transfer) makes a script exit non-zero.
  * Rule 5 - every command and its result go to the activity log (logs/activity.csv).
    The branch journals are the bank's record; nothing here ever clears them.
  * Output goes to ``self.stdout`` only, so tests drive ``onecmd()`` with a StringIO.

Glossary:
  acct          an account as typed: BRANCH/NUMBER, e.g. Mumbai/1001
  node          a cluster member: a branch name or "coordinator" (crash, restart, fault)
  txid          a transfer's 2PC id, e.g. C1-20261125T131733-6cb3c5
  request id    the id the shell sends with a transfer (shell-...); a retry applies once
  activity log  what people did from the shell or the window; a convenience, not a record
  journal       a branch's append-only list of every balance change (the bank's record)
"""

import argparse
import cmd
import configparser
import difflib
import inspect
import os
import pathlib
import re
import shlex
import sys
import time
import uuid

from tabulate import tabulate

from bank import activity
from bank import local_cluster as cluster
from bank import rpc
from bank.errors import BankError, FaultCode, check_branch_name, split_acct_ref
from bank.faults import BRANCH_POINTS, COORDINATOR_POINTS
from bank.money import format_amount, parse_amount
from bank.shell_views import audit, minor, sequence_diagram

KIT = pathlib.Path(__file__).resolve().parent
COORDINATOR_TIMEOUT = 30       # seconds: longer than a 2PC round with its vote timeouts
JOURNAL_ALL = 10_000           # the most journal rows one call returns (check, export)
TXN_STATES = ("in-doubt", "committed", "aborted")
ACCT_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_-]*/\d+$")
AMOUNT_LIKE = re.compile(r"^[-+]?[\d.,]+$")
NOT_RECORDED = ("help", "log", "clear", "quit", "exit", "EOF")
FAULT_EFFECTS = {
    "vote-no": "its next prepare votes no",
    "crash-before-vote": "it dies at its next prepare, before recording anything",
    "crash-after-vote": "it dies right after durably voting yes, before the vote is sent",
    "crash-before-commit": "it dies when the next commit arrives, before applying it",
    "crash-after-commit": "it dies right after applying the next commit, before the ack",
    "crash-after-prepare": "it dies once the votes are in, before logging a decision",
    "crash-after-decision": "it dies right after logging a commit, before telling anyone",
    "crash-mid-commit": "it dies after telling only one participant to commit"}


class ShellError(Exception):
    """A failed command whose sentence is shown as it is (no "Error:" prefix)."""


# ---- small helpers ----------------------------------------------------------------------

def coordinator_client(url: str, secret=None) -> rpc.Client:
    """The coordinator's client; its errors name it and its URL."""
    return rpc.Client(url, secret, COORDINATOR_TIMEOUT, label=f"the coordinator at {url}")


def doc_parts(func) -> tuple:
    """(usage, summary, example) from a do_ method's docstring."""
    lines = inspect.cleandoc(func.__doc__ or "").splitlines() or [""]
    usage, _, summary = lines[0].partition(": ")
    return usage, summary, lines[-1].replace("Example: ", "", 1)


def split_words(arg: str) -> list:
    """Split like a shell: quotes group words ("Meera Iyer"); bad quoting is an error."""
    try:
        words = shlex.split(arg, posix=os.name != "nt")     # keep C:\ paths on Windows
    except ValueError:
        raise ShellError("A quote is not closed; put quotes around both ends of a name.")
    return [w[1:-1] if len(w) > 1 and w[0] == w[-1] == '"' else w for w in words]


def sentence(exc: BankError) -> str:
    """A BankError's sentence, starting with a capital letter."""
    return exc.message.strip()[:1].upper() + exc.message.strip()[1:]


def when(ts: str) -> str:
    """'2026-11-25T13:17:33.255+00:00' -> '2026-11-25 13:17:33' (UTC)."""
    return ts[:19].replace("T", " ")


# ---- the shell ---------------------------------------------------------------------------------

class BankShell(cmd.Cmd):
    """The bank at a prompt. `local` is the LocalCluster (for crash/restart), or None."""

    prompt = "bank> "

    def __init__(self, coordinator: rpc.Client, local=None, home=KIT, stdout=None,
                 where: str = ""):
        super().__init__(stdout=stdout)
        self.coord, self.local, self.home = coordinator, local, pathlib.Path(home)
        self.activity = activity.ActivityLog(self.home / "logs" / "activity.csv")
        self.where = where or f"the coordinator at {coordinator.url}"
        self.interactive, self.ask, self.failures = False, input, 0   # tests replace ask
        self._names, self._names_at = {}, 0.0
        self._cmd, self._failed, self._result, self._extra = "", False, "", []
        self.start_total = self._total()

    # ---- running commands ----------------------------------------------------------

    def onecmd(self, line: str) -> bool:
        """Run one command: errors become one sentence; the activity log gets a row."""
        line = line.strip()
        if not line or line.startswith("#"):
            return False
        self._cmd = self.parseline(line)[0] or ""
        if self._cmd.lower() != self._cmd and self._cmd.lower() in self.command_names():
            line, self._cmd = self._cmd.lower() + line[len(self._cmd):], self._cmd.lower()
        self._failed, self._result, self._extra = False, "", []
        self._names_at, stop = 0.0, False      # completion names may have changed
        try:
            stop = super().onecmd(line)
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
                self.activity.record("shell", line, refs, not self._failed, self._result)
            except OSError as exc:
                self._print(f"(The activity log could not be written: {exc.strerror}.)")
        return bool(stop)

    def emptyline(self) -> bool:
        return False                   # never repeat the last command (it may be a transfer)

    def default(self, line: str) -> None:
        word, names = line.split()[0], self.command_names()
        close = [n for n in names if n.startswith(word) and len(word) > 1]
        close += [n for n in difflib.get_close_matches(word, names, 3) if n not in close]
        hint = f", did you mean {' or '.join(repr(n) for n in close[:3])}?" if close else "."
        self._fail(f"Unknown command {word!r}{hint} Type help to list the commands.")

    def command_names(self) -> list:
        """The commands, in the order this class defines them (EOF left out)."""
        return [n[3:] for n in vars(BankShell) if n.startswith("do_") and n != "do_EOF"]

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
        if exc.code == FaultCode.UNAVAILABLE and text.startswith("The coordinator at") \
                and self.local is not None:
            return text.rstrip(".") + "; `restart coordinator` starts it again."
        return text

    def _reconnect(self) -> None:
        """A fresh client: an interrupted call leaves the old connection unusable."""
        self.coord = coordinator_client(self.coord.url, self.coord.secret)

    def _args(self, arg: str, low: int, high=None) -> list:
        """The command's words; a wrong count is a usage error with an example."""
        words = split_words(arg)
        if not low <= len(words) <= (low if high is None else high):
            usage, _, example = doc_parts(getattr(self, "do_" + self._cmd, self.do_help))
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
            if isinstance(exc, BankError) and (exc.code != FaultCode.UNAVAILABLE or exc.not_sent
                                               or exc.message.endswith("Nothing was done.")):
                raise
            why = self._explain(exc) if isinstance(exc, BankError) else "Interrupted."
            self._reconnect()
            raise ShellError(f"Outcome not known: {why} It may still take effect; "
                             f"{learn.format(request_id)} (request id {request_id}).")

    # ---- the bank --------------------------------------------------------------------

    def do_branches(self, arg):
        """branches: list the branches, their replicas and the coordinator.
        Shows each server's URL, whether it is up, its role and epoch, and for a
        replica its lag (changes behind the primary).
        Example: branches"""
        self._args(arg, 0)
        rows = []
        for b in self.coord.call("branches"):
            rows.append([b["name"], b["url"], "cut off" if b["partitioned"] else
                         "up" if b["up"] else "DOWN", b["role"] or "-", b["epoch"] or "-",
                         "-", b["in_doubt"]])
            for r in b.get("replicas", []):
                sync = ("in sync" if r["in_sync"] else "OUT OF SYNC") if r["up"] else "DOWN"
                rows.append([f"  {b['name']} replica", r["url"], sync, r["role"] or "-",
                             r["epoch"] or "-", r["lag"] if r["up"] else "-", "-"])
        rows.append([cluster.COORDINATOR, self.coord.url, "up", "coordinator", "-", "-", "-"])
        self._table(rows, ["name", "url", "state", "role", "epoch", "lag", "in doubt"],
                    right=("in doubt", "lag"))
        self._result = ", ".join(f"{r[0].strip()} {r[2]}" for r in rows)

    def do_accounts(self, arg):
        """accounts [BRANCH]: list the accounts of one branch, or of all branches.
        Example: accounts Mumbai"""
        words = self._args(arg, 0, 1)
        names = [check_branch_name(words[0])] if words else self.coord.call("ping")["branches"]
        rows = []
        for name in names:
            try:
                rows += self.coord.call("accounts", name)
            except BankError as exc:
                if words:
                    raise
                self._fail(f"Error: {self._explain(exc)}")
        self._table([[f"{a['branch']}/{a['number']}", a["owner"], a["balance"], a["held"],
                      a["available"]] for a in rows],
                    ["account", "owner", "balance", "held", "available"],
                    right=("balance", "held", "available"))
        self._result = self._result or f"{len(rows)} accounts"

    def do_open(self, arg):
        """open BRANCH OWNER [AMOUNT]: open an account with an opening balance (default 0).
        Quote an owner name that ends in digits: open Delhi "Agent 007" 10
        Example: open Delhi Meera Iyer 500"""
        words = self._args(arg, 2, 20)
        branch = check_branch_name(words[0])
        amount = words.pop() if len(words) > 2 and AMOUNT_LIKE.match(words[-1]) else "0"
        acct = self._write("open_account", (branch, " ".join(words[1:]), self._amount(
            amount, allow_zero=True)), "`show {}` tells it once the coordinator answers")
        self._extra = [f"{acct['branch']}/{acct['number']}"]
        self._say(f"Opened {self._extra[0]} for {acct['owner']} with {acct['balance']}.")

    def do_balance(self, arg):
        """balance ACCT: show an account's balance, held and available money.
        Example: balance Mumbai/1001"""
        acct = self.coord.call("account", self._acct(*self._args(arg, 1)))
        self._say(f"{acct['branch']}/{acct['number']} ({acct['owner']}): balance "
                  f"{acct['balance']}, held {acct['held']}, available {acct['available']}.")

    def do_deposit(self, arg):
        """deposit ACCT AMOUNT: add money to an account.
        Example: deposit Mumbai/1001 250.50"""
        self._cash("deposit", "Deposited {} into {}", arg)

    def do_withdraw(self, arg):
        """withdraw ACCT AMOUNT: take money out, if that much is available (holds count).
        Example: withdraw Delhi/1002 100"""
        self._cash("withdraw", "Withdrew {} from {}", arg)

    def _cash(self, method: str, done: str, arg: str) -> None:
        ref, amount = self._args(arg, 2)
        ref, amount = self._acct(ref), self._amount(amount)
        acct = self._write(method, (ref, amount), f"`journal {ref}` lists it if it did")
        self._say(done.format(amount, ref) + f"; balance {acct['balance']}, available "
                                            f"{acct['available']}.")

    def do_transfer(self, arg):
        """transfer SRC DST AMOUNT: move money; across branches it runs Two-Phase Commit.
        Each transfer carries a fresh request id: if no answer comes back, the shell
        says so and `show REQUEST_ID` tells the outcome later; it never guesses.
        An aborted transfer counts as a failed command in a script.
        Example: transfer Mumbai/1001 Delhi/1002 100"""
        src, dst, amount = self._args(arg, 3)
        src, dst, amount = self._acct(src), self._acct(dst), self._amount(amount)
        result = self._write("transfer", (src, dst, amount),
                             "`show {}` tells it once the coordinator answers")
        txid = result.get("txid") or ""
        how = (f"txid {txid}; `show {txid}` draws its messages" if txid
               else "one branch: a local transfer, no 2PC needed")
        if result["outcome"] == "aborted":
            reason = result["reason"].rstrip(".") or "no reason given"
            return self._fail(f"Aborted: {reason}; no money moved ({how}).")
        if result["outcome"] != "committed":
            return self._fail(f"Outcome not known yet ({result['outcome']}); `show {txid}` "
                              "tells it once the coordinator knows.")
        waiting = ", ".join(result.get("waiting_for") or [])
        late = (f" The decision is durable; {waiting} has not acknowledged it yet and the "
                "coordinator keeps retrying." if waiting else "")
        self._say(f"Committed: moved {amount} from {src} to {dst} ({how}).{late}")

    def do_journal(self, arg):
        """journal [ACCT|BRANCH] [N]: the last N (20) rows of the branch journals.
        Example: journal Mumbai/1001 10"""
        target, limit = "", 20
        for word in self._args(arg, 0, 2):
            if word.isdigit():
                limit = int(word)
            else:
                target = self._acct(word) if "/" in word else check_branch_name(word)
        rows = self.coord.call("journal", target, limit)
        self._table([[r["seq"], when(r["ts"]), f"{r['branch']}/{r['account']}", r["kind"],
                      r["amount"], r["balance_after"], r["txid"] or r["request_id"],
                      r["detail"]] for r in rows],
                    ["seq", "time (UTC)", "account", "kind", "amount", "balance after",
                     "txid / request id", "detail"], right=("seq", "amount", "balance after"))
        self._result = f"{len(rows)} journal rows"

    def do_txns(self, arg):
        """txns [in-doubt|committed|aborted] [N]: the last N (20) transfers, newest first.
        Example: txns in-doubt"""
        state, limit = "", 20
        for word in self._args(arg, 0, 2):
            if not (word.isdigit() or word in TXN_STATES):
                raise ShellError(f"{word!r} is not a state: use {', '.join(TXN_STATES)}.")
            state, limit = (state, int(word)) if word.isdigit() else (word, limit)
        rows = self.coord.call("transactions", limit, state)
        self._table([[t["txid"], t["state"], t["src"], t["dst"], t["amount"],
                      ", ".join(t["waiting_for"]) or "-", t["reason"][:60]] for t in rows],
                    ["txid", "state", "from", "to", "amount", "waiting for", "reason"],
                    right=("amount",))
        self._result = f"{len(rows)} transfers"

    def do_show(self, arg):
        """show TXID: draw a transfer's messages as a sequence diagram.
        TXID may also be a request id (shell-...) or `last`, the newest transfer. One
        column per party (coordinator, its log, each branch), one row per message with
        its time in ms: votes, the logged decision, retries, decision queries.
        Example: show C1-20261125T131733-6cb3c5"""
        (ident,) = self._args(arg, 1)
        if ident == "last":
            newest = self.coord.call("transactions", 1, "")
            if not newest:
                raise ShellError("There is no transfer to show yet.")
            ident = newest[0]["txid"]
        try:
            txn = self.coord.call("transaction", ident)
        except BankError as exc:
            found = [t["txid"] for t in self.coord.call("transactions", 1000, "")
                     if t["request_id"] == ident] if exc.code == FaultCode.UNKNOWN_TXN else []
            if not found:
                raise
            txn = self.coord.call("transaction", found[0])
        self._print(sequence_diagram(txn))
        self._result = f"{txn['txid']}: {txn['outcome'] or txn['state']}"

    def do_recover(self, arg):
        """recover: make the coordinator re-send every unfinished decision now.
        Example: recover"""
        self._args(arg, 0)
        answer = self.coord.call("recover")
        left = answer["unfinished"]
        self._say(f"Re-sent the decision of {answer['resent']} unfinished transfer(s); "
                  + (f"still waiting: {', '.join(left)}." if left else "all are finished."))

    def do_check(self, arg):
        """check: audit the bank: money conserved, balances, journals, holds, in-doubt.
        Money is conserved when the total equals opening balances + deposits - withdrawals
        (transfers only move it); every journal must add up to its account's balance.
        Example: check"""
        self._args(arg, 0)
        branches = self.coord.call("branches")
        accounts, journal, rows, missing = [], [], [], []
        for b in branches:
            try:
                accounts += self.coord.call("accounts", b["name"])
                journal += self.coord.call("journal", b["name"], JOURNAL_ALL)
            except BankError as exc:
                rows.append(("branch reachable", "FAIL", self._explain(exc)))
                missing.append(b["name"])
        in_doubt = self.coord.call("transactions", 1000, "in-doubt")
        rows += audit(accounts, journal, in_doubt, branches, self.start_total, missing)
        self._table(rows, ["check", "result", "detail"])
        failed = [r[0] for r in rows if r[1] == "FAIL"]
        if failed:
            return self._fail(f"The check failed: {', '.join(failed)}.")
        busy = any(r[1] in ("wait", "?") for r in rows)
        self._say("All checks passed" + (" (some work is still in flight)." if busy else "."))

    # ---- the lab controls --------------------------------------------------------------

    def do_crash(self, arg):
        """crash NODE: kill a branch or the coordinator at once, like a power cut.
        Example: crash Delhi"""
        self._need_local()
        name = self._node(*self._args(arg, 1))
        if not self.local.members[name].alive:
            return self._say(f"{name} is already down; `restart {name}` starts it.")
        self.local.kill(name)
        self._say(f"Crashed {name}: killed with no cleanup. What it made durable survives; "
                  f"`restart {name}` brings it back.")

    def do_restart(self, arg):
        """restart NODE: start a crashed (or running) node again, on its port and its data.
        Example: restart Delhi"""
        self._need_local()
        name = self._node(*self._args(arg, 1))
        try:
            url = self.local.restart(name)
        except RuntimeError as exc:
            raise ShellError(f"{name} did not start again: {str(exc).splitlines()[0]}")
        self._say(f"Restarted {name} at {url}; " + (
            "it read its recovery log and finishes what was in flight."
            if name == cluster.COORDINATOR else
            "it asks the coordinator about its in-doubt transfers at once."))

    def do_fault(self, arg):
        """fault NODE POINT: arm a named fault point on a node (off disarms).
        Branch points: vote-no, crash-before-vote, crash-after-vote, crash-before-commit,
        crash-after-commit, delay=SECONDS. Coordinator points: crash-after-prepare,
        crash-after-decision, crash-mid-commit.
        Example: fault Delhi crash-after-vote"""
        node, point = self._args(arg, 2)
        node, point = self._node(node), "" if point in ("off", "none") else point
        if node == cluster.COORDINATOR:
            client = self.coord
        elif self.local is not None:
            client = self.local.client(node)
        else:
            url = {b["name"]: b["url"] for b in self.coord.call("branches")}[node]
            client = rpc.Client(url, self.coord.secret, label=f"branch {node} at {url}")
        client.call("fault", point)
        effect = FAULT_EFFECTS.get(point, f"each prepare, commit and abort waits "
                                          f"{point.partition('=')[2]} s")
        self._say(f"Armed {point} on {node}: {effect}." if point
                  else f"Disarmed the faults of {node}.")

    def do_partition(self, arg):
        """partition BRANCH: cut the coordinator off from a branch (a lab network fault).
        Example: partition Delhi"""
        name = self.coord.call("partition", check_branch_name(*self._args(arg, 1)))["branch"]
        self._say(f"The coordinator can no longer reach {name}; `heal {name}` reconnects it.")

    def do_heal(self, arg):
        """heal BRANCH: end a partition; unfinished transfers are retried at once.
        Example: heal Delhi"""
        name = self.coord.call("heal", check_branch_name(*self._args(arg, 1)))["branch"]
        self._say(f"{name} is reachable again; unfinished transfers are being retried.")

    def do_failover(self, arg):
        """failover BRANCH: promote the branch's best in-sync replica and route to it.
        Example: failover Mumbai"""
        done = self.coord.call("failover", check_branch_name(*self._args(arg, 1)))
        self._say(f"{done['branch']} is now served by {done['primary']} at epoch "
                  f"{done['epoch']} (it had applied {done['applied']} changes); the old "
                  f"primary {done['old_primary']} will be fenced if it comes back.")

    # ---- the activity log ------------------------------------------------------------

    def do_log(self, arg):
        """log [ACCT] [N]: the last N (20) operations run from the shell or the window.
        Example: log Mumbai/1001"""
        account, limit = "", 20
        for word in self._args(arg, 0, 2):
            account, limit = (account, int(word)) if word.isdigit() else (self._acct(word), limit)
        rows = self.activity.rows(account)
        self._table([[when(r["ts"]), r["source"], r["command"], r["ok"], r["result"][:70]]
                     for r in rows[-limit:]], ["time (UTC)", "from", "command", "ok", "result"])
        if len(rows) > limit:
            self._print(f"({len(rows) - limit} older rows not shown; "
                        f"`export {account or 'all'}` writes them all)")

    def do_export(self, arg):
        """export [journal] [ACCT|BRANCH|all] [FILE]: write the activity log (or journals) as CSV.
        `export [ACCT|all] [FILE]` writes the activity log; `export journal
        [ACCT|BRANCH|all] [FILE]` writes the branch journals. Files go to logs/ by default.
        Example: export journal Mumbai journal.csv"""
        words = self._args(arg, 0, 3)
        kind = "journal" if words[:1] == ["journal"] else "activity"
        words = words[1:] if kind == "journal" else words
        which = words.pop(0) if words and (ACCT_RE.match(words[0]) or
                                           not re.search(r"[./\\]", words[0])) else "all"
        if len(words) > 1 or (which != "all" and kind == "activity" and "/" not in which):
            raise ShellError("Usage: export [ACCT|all] [FILE] or export journal "
                             "[ACCT|BRANCH|all] [FILE] (for example: export Mumbai/1001).")
        path = pathlib.Path(words[0]) if words else \
            self.home / "logs" / f"{kind}-{which.replace('/', '-')}.csv"
        selector = "" if which == "all" else self._acct(which) if "/" in which else \
            check_branch_name(which)
        rows = self.coord.call("journal", selector, JOURNAL_ALL) if kind == "journal" else None
        try:
            count = activity.write_csv(rows, path) if rows is not None else \
                self.activity.export(path, selector)
        except OSError as exc:
            raise ShellError(f"Cannot write {path}: {exc.strerror}.")
        self._say(f"Wrote {count} {kind} rows to {path.resolve()}.")

    def do_clear(self, arg):
        """clear [--yes]: empty the activity log after a y/N question (the journals stay).
        In a script, write `clear --yes`.
        Example: clear"""
        words = self._args(arg, 0, 1)
        if words not in ([], ["--yes"], ["-y"]):
            raise ShellError("Usage: clear [--yes] (for example: clear).")
        if not words and not self.interactive:
            raise ShellError("Not cleared: in a script, confirm with `clear --yes`.")
        question = (f"Clear the activity log ({len(self.activity.rows())} rows)? "
                    "The branch journals are kept. [y/N] ")
        try:
            if not words and self.ask(question).strip().lower() not in ("y", "yes"):
                return self._say("Not cleared.")
        except EOFError:
            return self._say("\nNot cleared.")
        removed = self.activity.clear()
        self._say(f"Cleared the activity log ({removed} rows); the branch journals are "
                  "untouched.")

    # ---- help and leaving --------------------------------------------------------------

    def do_help(self, arg):
        """help [COMMAND]: list the commands, or explain one with an example.
        Example: help transfer"""
        if arg.strip():
            func = getattr(self, "do_" + arg.strip(), None)
            return self._print(inspect.cleandoc(func.__doc__)) if func else self.default(arg)
        self._table([doc_parts(getattr(self, "do_" + n))[:2] for n in self.command_names()],
                    ["command", "what it does"])
        self._print("Accounts are typed BRANCH/NUMBER, like Mumbai/1001. "
                    "`help COMMAND` explains one, with an example.")

    def do_quit(self, arg):
        """quit: leave the shell (a cluster this shell started is stopped).
        Example: quit"""
        return True

    def do_exit(self, arg):
        """exit: leave the shell, like quit.
        Example: exit"""
        return True

    def do_EOF(self, arg):
        """EOF: leave the shell at the end of input (Ctrl-D; Ctrl-Z Enter on Windows).
        Example: EOF"""
        if self.interactive:
            self._print()
        return True

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


# ---- starting ---------------------------------------------------------------------------------

def parse_args(argv=None):
    p = argparse.ArgumentParser(description="The bank's shell. At the prompt, type help.")
    p.add_argument("-c", dest="commands", metavar="COMMANDS",
                   help='run commands separated by ";" and exit (non-zero if one failed)')
    p.add_argument("--coordinator", metavar="URL", help="attach to this coordinator")
    p.add_argument("--secret-file", help="the shared secret of that coordinator")
    p.add_argument("--config", help="attach to the coordinator named in a cluster.ini")
    p.add_argument("--home", default=str(KIT),
                   help="the local cluster's folder (data/, logs/); default: the kit's")
    args = p.parse_args(argv)
    if args.coordinator and args.config:
        p.error("give --coordinator or --config, not both")
    return args


def read_config(path) -> tuple:
    """cluster.ini -> (coordinator URL, secret file or None), from its [coordinator]."""
    parser = configparser.ConfigParser()
    if not parser.read(path, encoding="utf-8") or not parser.has_section("coordinator"):
        raise SystemExit(f"Cannot read a [coordinator] section from {path}.")
    section = parser["coordinator"]
    host = section.get("host", "127.0.0.1").strip()
    host = "127.0.0.1" if host in ("", "0.0.0.0", "::") else host
    secret_file = section.get("secret_file", "").strip() or None
    beside = pathlib.Path(path).resolve().parent / (secret_file or "")
    if secret_file and not pathlib.Path(secret_file).exists() and beside.exists():
        secret_file = str(beside)                  # relative to the config file
    return f"http://{host}:{section.get('port', '9000').strip()}", secret_file


def open_shell(args, say) -> tuple:
    """(shell, banner, the LocalCluster to stop at exit, or None)."""
    if args.config or args.coordinator:
        url, secret_file = read_config(args.config) if args.config else (args.coordinator, None)
        secret_file = args.secret_file or secret_file
        client = coordinator_client(url, rpc.load_secret(secret_file) if secret_file else None)
        try:
            client.call("ping")
        except BankError as exc:
            say(f"Warning: {sentence(exc)}")
        shell = BankShell(client, home=args.home)
        return shell, (f"Connected to {shell.where}; crash and restart are unavailable here: "
                       "they work only on the local cluster that `python shell.py` starts."), None
    if cluster.running_cluster(args.home) is None:
        say(f"Starting a local cluster in {pathlib.Path(args.home).resolve()} ...")
    local, started = cluster.attach_or_start(args.home)
    shell = BankShell(coordinator_client(local.coordinator_url, local.secret), local,
                      args.home, where=f"the local cluster in {local.home}")
    how = "started now; it stops when you quit" if started else "it keeps running after you quit"
    members = "\n".join(f"  {n:<12} {m.url}" for n, m in local.members.items())
    return shell, f"Connected to {shell.where} ({how}):\n{members}", local if started else None


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.commands is not None:
        script = args.commands.split(";")
    elif sys.stdin is None or not sys.stdin.isatty():
        script = sys.stdin.read().splitlines() if sys.stdin else []
    else:
        script = None                              # a person at a terminal
    say = print if script is None else (lambda text: print(text, file=sys.stderr))
    try:
        shell, banner, to_stop = open_shell(args, say)
    except RuntimeError as exc:
        say(f"Cannot start the local cluster: {str(exc).splitlines()[0]}")
        return 2
    except KeyboardInterrupt:
        say("Interrupted while connecting.")
        return 130
    try:
        if script is None:
            shell.run_interactive(banner + "\nAccounts are typed BRANCH/NUMBER, like "
                                  "Mumbai/1001. Type help to list the commands.")
            return 0
        say("# " + banner.splitlines()[0])
        shell.run_script(script)
        return 1 if shell.failures else 0
    finally:
        if to_stop is not None:
            to_stop.stop()
            say("Stopped the local cluster this shell started.")


if __name__ == "__main__":
    sys.exit(main())
