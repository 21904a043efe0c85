"""The shell's banking commands: branches, accounts, open, balance, deposit, withdraw, transfer.

Role: turn what a person types into the coordinator's calls and say what happened.

Rules:
  * Rule 2 - the shell decides nothing about money. It checks what was typed (account
    names, amounts) and asks the coordinator; the branches and the coordinator decide.
  * Rule 3 - never guess an outcome: money moves through `_write` (plumbing.py), which
    sends a fresh request id and says "Outcome not known" when no answer comes back.
    The shell says "aborted" only when the coordinator said so.

Glossary:
  acct   an account as typed: BRANCH/NUMBER, e.g. Mumbai/1001
  txid   a transfer's 2PC id, e.g. C1-20261125T131733-6cb3c5
"""

import re
import time

from bank import local_cluster as cluster
from bank.errors import BankError, check_branch_name
from bank.shell.plumbing import ShellError
from bank.views import in_doubt_text, not_told_yet

# A last word that is any spelling of a number is the amount, so that one the money
# parser refuses ("1e3", "1_000", "\u0661\u0660\u0660" or full-width digits: \d is any
# script's digit) is refused with its reason, never glued to the owner's name.
AMOUNT_LIKE = re.compile(r"^[-+]?(?:[0-9.,]+|[\d.,_]*\d[\d.,_]*(?:[eE][-+]?\d+)?)$")


class BankingCommands:
    """The money commands (a mixin of BankShell)."""

    def do_branches(self, arg):
        """branches: list the branches, their replicas and the coordinator.
        Shows each server's URL, whether it is up, its role and epoch, and for a
        replica its lag (changes behind the primary). A branch that does not answer
        shows the in-doubt count of its last answer, with its age.
        Example: branches"""
        self._args(arg, 0)
        answer = self._from_coordinator("branches")
        if answer is None:
            return self._branch_table(self._direct_branch_rows())
        self.learn_branches(answer)
        rows = []
        for b in answer:
            rows.append([b["name"], b["url"], "cut off" if b["partitioned"] else
                         "up" if b["up"] else "DOWN", b["role"] or "-", b["epoch"] or "-",
                         "-", in_doubt_text(b, time.time())])
            for r in b.get("replicas", []):
                sync = ("in sync" if r["in_sync"] else "OUT OF SYNC") if r["up"] else "DOWN"
                rows.append([f"  {self._server_name(r['url'], b['name'])}", r["url"], sync,
                             r["role"] or "-", r["epoch"] or "-",
                             r["lag"] if r["up"] else "-", "-"])
        rows.append([cluster.COORDINATOR, self.coord.url, "up", "coordinator", "-", "-", "-"])
        self._branch_table(rows)

    def _server_name(self, url: str, branch: str) -> str:
        """A replica's name as crash, restart and cluster.py status say it
        (Mumbai-replica1; after a failover, maybe Mumbai), if this shell started it."""
        name = self.local.server_at(url) if self.local is not None else url
        return name if name != url else f"{branch} replica"

    def _branch_table(self, rows: list) -> None:
        self._table(rows, ["name", "url", "state", "role", "epoch", "lag", "in doubt"],
                    right=("in doubt", "lag"))
        self._result = ", ".join(f"{r[0].strip()} {r[2]}" for r in rows)

    def do_accounts(self, arg):
        """accounts [BRANCH]: list the accounts of one branch, or of all branches.
        Example: accounts Mumbai"""
        words = self._args(arg, 0, 1)
        names = [check_branch_name(words[0])] if words else self._branch_names()
        rows = []
        for name in names:
            try:
                rows += self._read("accounts", name)
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
        if len(words) == 2 and AMOUNT_LIKE.match(words[1]):   # `open Delhi 500`: no owner
            raise ShellError(f"{words[1]!r} looks like an amount, not an owner's name: "
                             "open BRANCH OWNER [AMOUNT].")
        amount = words.pop() if len(words) > 2 and AMOUNT_LIKE.match(words[-1]) else "0"
        acct = self._write("open_account", (branch, " ".join(words[1:]), self._amount(
            amount, allow_zero=True)), "`show {}` tells it once the coordinator answers")
        self._extra = [f"{acct['branch']}/{acct['number']}"]
        self._say(f"Opened {self._extra[0]} for {acct['owner']} with {acct['balance']}.")

    def do_balance(self, arg):
        """balance ACCT: show an account's balance, held and available money.
        Example: balance Mumbai/1001"""
        acct = self._read("account", self._acct(*self._args(arg, 1)))
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
        waiting = result.get("waiting_for") or []
        late = f" The decision is durable; {not_told_yet(waiting)}." if waiting else ""
        self._say(f"Committed: moved {amount} from {src} to {dst} ({how}).{late}")
