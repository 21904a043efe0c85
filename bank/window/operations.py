"""The operations panel of the desktop window: transfer, deposit, withdraw, open account.

Role: one form per operation, each a tab of the left notebook. A form checks what was
typed, sends it to the coordinator on a worker thread, and explains the answer in plain
words (and in the activity log).

Rules:
  * Rule O1 - input is checked before anything is sent. Each form's ``entry_ok()`` (IDLE's
    habit) returns the checked values, or None after saying what is wrong: a rejected
    input changes nothing and gets one clear sentence.
  * Rule O2 - never report "aborted" when it may have committed: when the coordinator
    stops answering in the middle of a call, the form says the outcome is unknown.
  * Rule O3 - a call carries a fresh request id, so a retried deposit or transfer
    applies once.
  * Rule O4 - the Tk thread never waits: forms only submit calls (``app.submit``); the
    answer comes back to a ``_done`` method on the Tk thread.
  * Rule O5 - a call that takes long shows that it is still on its way: every second
    the waiting sentence counts the seconds (a blocked transfer, a slow branch), until
    the answer comes or another operation is sent.
  * Rule O6 - an outcome not known yet is followed: after a transfer answered "unknown"
    (a branch has not confirmed the commit yet, or the coordinator stopped answering),
    every transactions list the coordinator sends is searched for that transfer's
    request id; once its row says committed or aborted, the activity log says what was
    learned and, if the Result still shows that transfer, it says so too. Only the
    coordinator's reported state counts (Rule T1), never a guess. A deposit or a
    withdrawal left unknown is asked again with the same request id at each refresh
    (the branch applies an id at most once and answers a repeat with its first
    outcome: bank/requests.py Rule 3) until it is answered.

Glossary:
  form      one tab: labels, fields (pickers and entries), a button, a check, a done
  picker    a ttk.Combobox of accounts (BRANCH/NUMBER  owner) or of branches
  checked   the values entry_ok() returned: exactly what will be sent
"""

import itertools
import time
import tkinter as tk
from tkinter import ttk

from bank.errors import (BankError, check_text, split_acct_ref, surely_not_done,
                         unknown_branch)
from bank.money import format_amount, parse_amount, without_thousands
from bank.views import not_told_yet, txn_category
from bank.requests import DEFINITE_REFUSALS
from bank.window.calls import new_request_id
from bank.window.fit import Scrolled


def failure_text(what: str, error: BankError):
    """(text, kind) for a refusal, or (Rule O2) for an outcome we cannot know yet.

    An unreachable server is taken as "nothing happened" only when that is sure (a
    refused connection, or the coordinator saying it never reached the branch): the
    call may have arrived just before the line broke (errors.surely_not_done).
    """
    if not surely_not_done(error):
        return (f"The outcome of this {what} is not known: {error.message.rstrip('.')}. "
                "It may still complete (a paused or slow server answers late): look at "
                "the balances and the transactions list before you try again."), "unknown"
    return f"Refused: {error.message}", "bad"


def aborted_text(answer: dict, when: str = "") -> str:
    """An aborted transfer, and why: its reason, or (none recorded: a coordinator that
    restarted with no decision logged) the presumption."""
    why = answer.get("reason") or ("not kept: the coordinator restarted since (a "
                                   "transfer it had not decided is presumed aborted)")
    return f"Not done: the transfer was aborted and no money moved{when}. Why: {why.rstrip('.')}."


# ---- what every form has -------------------------------------------------------------------

_CALLS = itertools.count(1)        # numbers the calls the forms send (Rule O5)


class Form:
    """One tab of the operations notebook: a grid of labels and fields, and a button."""

    def __init__(self, tabs: ttk.Notebook, title: str, app):
        self.app = app
        scrolled = Scrolled(tabs, padding=(8, 4))  # scrolls when the column is short (F1)
        tabs.add(scrolled.outer, text=title)
        self.frame = scrolled.inner
        self.frame.columnconfigure(1, weight=1)
        self.account_boxes, self.branch_boxes = [], []

    # ---- building -----------------------------------------------------------------------

    def _label(self, row: int, text: str) -> None:
        ttk.Label(self.frame, text=text).grid(row=row, column=0, sticky="w", pady=3,
                                              padx=(0, 8))

    def _picker(self, row: int, label: str, branches=False) -> tk.StringVar:
        """A combobox of accounts (or of branches); its values follow the bank."""
        self._label(row, label)
        var = tk.StringVar()
        box = ttk.Combobox(self.frame, textvariable=var, width=30)
        box.grid(row=row, column=1, columnspan=2, sticky="we", pady=3)
        box.bind("<Return>", lambda e: self.go())     # Enter sends, as the button does
        (self.branch_boxes if branches else self.account_boxes).append(box)
        return var

    def _entry(self, row: int, label: str) -> tk.StringVar:
        self._label(row, label)
        var = tk.StringVar()
        entry = ttk.Entry(self.frame, textvariable=var, width=16)
        entry.grid(row=row, column=1, columnspan=2, sticky="we", pady=3)
        entry.bind("<Return>", lambda e: self.go())   # (the button may be scrolled away)
        return var

    def _button(self, row: int, text: str) -> ttk.Button:
        """The form's button, beside the field of `row` (its last): one row less, so a
        form fits a short column (fit.py, Rule F1)."""
        for field in self.frame.grid_slaves(row=row, column=1):
            field.grid_configure(columnspan=1)
        button = ttk.Button(self.frame, text=text, command=self.go, style="Go.TButton")
        button.grid(row=row, column=2, sticky="e", padx=(6, 0), pady=3)
        return button

    def offer(self, accounts: list, branches: list) -> None:
        """Set the pickers' choices (only when they changed: typing is not disturbed)."""
        for boxes, choices in ((self.account_boxes, accounts), (self.branch_boxes, branches)):
            for box in boxes:
                if list(box.cget("values")) != choices:
                    box.configure(values=choices)

    # ---- checks shared by the forms (Rule O1) ---------------------------------------------

    def say(self, text: str, kind: str = "info") -> None:
        self.app.say(text, kind)

    def account_ok(self, text: str, what: str):
        """BRANCH/NUMBER from a picker (the owner shown after it is ignored), or None."""
        text = (text or "").strip().split()[0] if (text or "").strip() else ""
        if not text:
            self.say(f"Choose {what} account (like Mumbai/1001).", "bad")
            return None
        try:
            branch, number = split_acct_ref(text)
        except BankError as exc:
            self.say(exc.message, "bad")
            return None
        routes = self.app.seen.routes
        if routes and branch not in routes:
            self.say(unknown_branch(branch, routes), "bad")
            return None
        return f"{branch}/{number}"

    def amount_ok(self, text: str, allow_zero=False):
        """The amount as a two-decimal string, or None (with the reason shown)."""
        if not (text or "").strip():
            self.say("Type an amount, like 500 or 500.50.", "bad")
            return None
        try:
            return format_amount(parse_amount(without_thousands(text or ""),
                                              allow_zero=allow_zero))   # "1,200.50" too
        except BankError as exc:
            self.say(exc.message, "bad")
            return None

    # ---- sending and telling --------------------------------------------------------------

    def go(self) -> None:
        """The button: check the input (entry_ok), then send it."""
        checked = self.entry_ok()
        if checked is not None:
            self.send(checked)

    def entry_ok(self):
        raise NotImplementedError

    def send(self, checked) -> None:
        raise NotImplementedError

    def _call(self, args: tuple, done, waiting: str = "") -> None:
        """Call the coordinator on a worker (Rule O4); done(result, error) on Tk. While
        it waits, `waiting` is shown, with the seconds so far (Rule O5)."""
        call = Form.latest = next(_CALLS)

        def answered(result, error):
            if Form.latest == call:
                Form.latest = 0                     # stop counting its seconds
            done(result, error)
        self.app.submit(self.app.bank.call, args, answered)
        if waiting:
            self.say(waiting + "...", "info")
            self._count_seconds(call, waiting, time.monotonic())

    latest = 0                     # the last call any form sent (0 once answered)

    def _count_seconds(self, call: int, waiting: str, started: float) -> None:
        def tick():
            if Form.latest == call:                 # unanswered, and nothing sent since
                seconds = round(time.monotonic() - started)
                self.say(f"{waiting}... still waiting after {seconds} s", "info")
                self._count_seconds(call, waiting, started)
        self.app.root.after(1000, tick)

    def _tell(self, command: str, accounts, kind: str, text: str, ok=None) -> None:
        """Show the outcome, log it, and refresh at once (the balances have moved)."""
        self.app.finish(command, accounts, kind, text, ok=ok)
        self.app.refresh()


# ---- the four forms ------------------------------------------------------------------------

class TransferForm(Form):
    """Move money between two accounts (Two-Phase Commit when they are in two branches)."""

    def __init__(self, tabs, app):
        super().__init__(tabs, "Transfer", app)
        self.src = self._picker(0, "From account")
        self.dst = self._picker(1, "To account")
        self.amount = self._entry(2, "Amount")
        self.button = self._button(2, "Transfer")

    def entry_ok(self):
        """(src, dst, amount) from the form, or None."""
        src = self.account_ok(self.src.get(), "the from")
        dst = src and self.account_ok(self.dst.get(), "the to")
        amount = dst and self.amount_ok(self.amount.get())
        if not amount:
            return None
        if src == dst:
            self.say("The two accounts are the same; choose another destination.", "bad")
            return None
        return src, dst, amount

    following = None      # (request id, checked, the Result's number) of an unknown one

    def send(self, checked) -> None:
        src, dst, amount = checked
        request_id = new_request_id()
        self.following = None                     # the Result moves on to this one
        self._call(("transfer", src, dst, amount, request_id),
                   lambda result, error: self._done(checked, request_id, result, error),
                   waiting=f"Transferring {amount} from {src} to {dst}")

    def _done(self, checked, request_id, result, error) -> None:
        src, dst, amount = checked
        if error is not None:
            text, kind = failure_text("transfer", error)
        elif result["outcome"] == "committed":
            text, kind = self._committed_text(checked, result)
        else:
            text, kind = aborted_text(result), "bad"
        committed = error is None and result["outcome"] == "committed"
        self._tell(f"transfer {src} {dst} {amount}", (src, dst), kind, text,
                   ok=True if committed else None)     # None: "unknown" or "no", by kind
        if kind == "unknown":                          # Rule O6: learn how it ended
            self.following = (request_id, checked, self.app.said)
        if result and result.get("txid"):
            self.app.transactions.select(result["txid"])

    def learn(self, rows: list) -> None:
        """Rule O6: the coordinator's transactions list has come; if the transfer we
        follow has ended there, say how (in the log, and in the Result if still shown)."""
        if self.following is None:
            return
        request_id, (src, dst, amount), shown = self.following
        row = next((r for r in rows if r.get("request_id") == request_id), None)
        if row is None or txn_category(row) == "in-doubt":
            return                                     # not ended, or not listed (yet)
        self.following = None
        if row.get("damaged"):                                           # P11
            text, kind = (f"{txn_category(row).capitalize()} ({row['txid']}), but with "
                          f"heuristic damage at {', '.join(row['damaged'])}: a branch "
                          "decided the other way on its own, so the books do not "
                          "balance; see check."), "bad"
        elif txn_category(row) == "committed":
            text, kind = (f"Done: {amount} moved from {src} to {dst} ({row['txid']}); "
                          "both branches have now confirmed the commit."), "ok"
        else:
            text, kind = aborted_text(row, " (learned after the call)"), "bad"
        self.app.finish(f"transfer {src} {dst} {amount}", (src, dst), kind, text,
                        shown=self.app.said == shown, logged="Outcome now known: " + text)

    @staticmethod
    def _committed_text(checked, result):
        """Done, and how; "unknown" while a branch has not confirmed the commit yet."""
        src, dst, amount = checked
        how = ("one branch: a local transaction, no Two-Phase Commit needed"
               if result.get("local") else
               f"both branches voted yes and the decision was logged; {result['txid']}")
        text = f"Done: {amount} moved from {src} to {dst} ({how})."
        if not result.get("waiting_for"):
            return text, "ok"
        return text + f" {not_told_yet(result['waiting_for'], 'confirmed')}.", "unknown"


class CashForm(Form):
    """Deposit into an account, or withdraw from it (`verb`): one branch, no 2PC."""

    def __init__(self, tabs, app, verb: str):
        super().__init__(tabs, verb.capitalize(), app)
        self.verb = verb
        self.account = self._picker(0, "Account")
        self.amount = self._entry(1, "Amount")
        self.button = self._button(1, verb.capitalize())

    def entry_ok(self):
        """(account, amount) from the form, or None."""
        acct = self.account_ok(self.account.get(), "an")
        amount = acct and self.amount_ok(self.amount.get())
        return (acct, amount) if amount else None

    following = None      # (the call, with its request id; the Result's number): O6

    def send(self, checked) -> None:
        acct, amount = checked
        into = "into" if self.verb == "deposit" else "from"
        args = (self.verb, acct, amount, new_request_id())
        self.following = None                     # the Result moves on to this one
        self._call(args, lambda result, error: self._done(args, result, error),
                   waiting=f"{self.verb.capitalize()}ing {amount} {into} {acct}")

    def _done(self, args, result, error) -> None:
        text, kind = self._outcome(args, result, error)
        self._tell(f"{self.verb} {args[1]} {args[2]}", (args[1],), kind, text)
        if kind == "unknown":                          # Rule O6: ask again later
            self.following = (args, self.app.said)

    def _outcome(self, args, result, error, now: str = "is now") -> tuple:
        """(text, kind) for the answer to a deposit or withdrawal."""
        _, acct, amount, _ = args
        if error is not None:
            return failure_text(self.verb, error)
        did, into = ("deposited", "into") if self.verb == "deposit" else ("withdrew", "from")
        return (f"Done: {did} {amount} {into} {acct}; its balance {now} "
                f"{result['balance']} ({result['available']} available)."), "ok"

    def learn(self) -> None:
        """Rule O6: send the unknown call again, with its request id, to learn how it
        ended; said in the log (and in the Result, if it still shows that call)."""
        if self.following is not None:
            args = self.following[0]
            self.app.start(f"follow {args[3]}", self.app.bank.call, args,
                           lambda result, error: self._learned(args, result, error))

    def _learned(self, args, result, error) -> None:
        """A repeat's answer settles the first call's outcome only if it is a result or
        a definite refusal (the branch's first answer, which it remembers): "Nothing was
        done" or any other failure speaks of the repeat alone, so it is asked again."""
        if error is not None and getattr(error, "code", None) not in DEFINITE_REFUSALS:
            return                                     # not known yet
        if self.following is None or self.following[0] != args:
            return                                     # moved on to another call
        text, kind = self._outcome(args, result, error, now="was then")
        shown = self.app.said == self.following[1]
        self.following = None
        self.app.finish(f"{self.verb} {args[1]} {args[2]}", (args[1],), kind, text,
                        shown=shown, logged="Outcome now known: " + text)


class OpenAccountForm(Form):
    """Open an account at a branch, with an opening deposit (may be 0)."""

    def __init__(self, tabs, app):
        super().__init__(tabs, "Open account", app)
        self.branch = self._picker(0, "Branch", branches=True)
        self.owner = self._entry(1, "Owner")
        self.initial = self._entry(2, "Opening deposit")
        self.initial.set("0")
        self.button = self._button(2, "Open account")

    def entry_ok(self):
        """(branch, owner, initial) from the form, or None."""
        branch, routes = self.branch.get().strip(), self.app.seen.routes
        if branch not in routes:
            self.say("Choose a branch: " + ", ".join(sorted(routes)) + ".", "bad")
            return None
        try:
            owner = check_text(self.owner.get(), "owner name")
        except BankError as exc:
            self.say(exc.message, "bad")
            return None
        initial = self.amount_ok(self.initial.get() or "0", allow_zero=True)
        return (branch, owner, initial) if initial else None

    def send(self, checked) -> None:
        self._call(("open_account", *checked),
                   lambda result, error: self._done(checked, result, error))

    def _done(self, checked, result, error) -> None:
        branch, owner, initial = checked
        if error is not None:
            (text, kind), accounts = failure_text("account opening", error), ()
        else:
            acct = f"{branch}/{result['number']}"
            text, kind = f"Done: opened {acct} for {owner} with {result['balance']}.", "ok"
            accounts = (acct,)
        self._tell(f"open {branch} {owner!r} {initial}", accounts, kind, text)


# ---- the panel: the four forms, as tabs --------------------------------------------------

class OperationsPanel:
    """The four forms, tabs 0-3 of the left notebook (the lab is tab 4)."""

    def __init__(self, tabs: ttk.Notebook, app):
        self.transfer = TransferForm(tabs, app)
        self.deposit = CashForm(tabs, app, "deposit")
        self.withdraw = CashForm(tabs, app, "withdraw")
        self.open_account = OpenAccountForm(tabs, app)
        self.forms = (self.transfer, self.deposit, self.withdraw, self.open_account)

    def learn(self, rows: list) -> None:
        """The coordinator's transactions list has come: how a transfer left unknown
        ended, and (asked again) a deposit or withdrawal (O6)."""
        self.transfer.learn(rows)
        self.deposit.learn()
        self.withdraw.learn()

    def offer(self, seen) -> None:
        """Give every picker the accounts and branches last seen."""
        accounts = [f"{ref}  {owner}" for ref, owner in seen.owners().items()]
        branches = sorted(seen.routes)
        for form in self.forms:
            form.offer(accounts, branches)
