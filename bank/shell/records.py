"""The shell's records: journal, txns, show, recover, check and counters.

Role: show what the bank recorded (the branch journals, the coordinator's transfers
and their message traces) and audit it. What a person is shown is computed in
bank/views.py without I/O; this file only fetches and prints.

Rules:
  * A transfer's state reads the same here as in the window (views.txn_category).
  * `check` says "ok" only for what it can see; work in flight is "wait", a broken
    invariant "FAIL".
  * While the coordinator is down, `journal` and `txns in-doubt` read the branches
    directly, under a line saying so (bank/shell/direct.py, V1-V4).

Glossary:
  journal   a branch's append-only list of every balance change (the bank's record)
  trace     the coordinator's list of a transfer's messages, drawn by `show`
  in doubt  a transfer still being decided, or decided but not yet applied everywhere
"""

import re

from bank.counters import per_transfer, restarted, totals
from bank.errors import BankError, FaultCode, check_branch_name
from bank.shell.guide import TXN_STATES
from bank.shell.plumbing import ShellError, cut, is_count, when
from bank.views import audit, refusals, sequence_diagram, txn_category, txn_state_text

REMEMBERED = 1000              # the coordinator keeps this many transfers (twopc_memory.KEEP_TXNS)
TRACES_READ = 50               # check reads at most this many traces (one call each)


class RecordsCommands:
    """Commands that read the records (a mixin of BankShell)."""

    def do_journal(self, arg):
        """journal [ACCT|BRANCH] [N]: the last N (20) rows of the branch journals.
        Example: journal Mumbai/1001 10"""
        target, limit = "", 20
        for word in self._args(arg, 0, 2):
            if is_count(word):
                limit = int(word)
            elif target or word.lstrip("+-").isdigit():
                raise ShellError(f"{word!r} is not a number of rows: give a whole number "
                                 "from 1 to 10000, like 10 (journal [ACCT|BRANCH] [N]).")
            else:
                target = self._acct(word) if "/" in word else check_branch_name(word)
        rows = self._read("journal", target, limit)
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
            if not is_count(word) and re.fullmatch(r"[+-]?[0-9]+", word):   # not a count
                raise ShellError(f"{word!r} is not a number of rows: give a whole number "
                                 "from 1 to 10000, like 10 (txns [in-doubt|committed|aborted] [N]).")
            if not (is_count(word) or word in TXN_STATES):
                raise ShellError(f"{word!r} is not a state: use {', '.join(TXN_STATES)}, "
                                 "or a number of rows.")
            state, limit = (state, int(word)) if is_count(word) else (word, limit)
        try:
            rows = self.coord.call("transactions", REMEMBERED if state else limit, "")
        except BankError as exc:
            if not self._coordinator_down(exc):
                raise
            return self._txns_from_branches(exc, state, limit)
        rows = [t for t in rows if not state or txn_category(t) == state][:limit]
        self._table([[t["txid"], t["src"], t["dst"], t["amount"], cut(txn_state_text(t))]
                     for t in rows], ["txid", "from", "to", "amount", "state"],
                    right=("amount",))
        self._result = f"{len(rows)} transfer{'' if len(rows) == 1 else 's'}"

    def _txns_from_branches(self, exc: BankError, state: str, limit: int) -> None:
        """The coordinator is down: the branches know only what they hold in doubt (V4)."""
        self._say_unreachable(exc)
        if state not in ("", "in-doubt"):
            raise ShellError(f"Only the coordinator lists {state} transfers; while it is "
                             "down, `txns in-doubt` reads what the branches hold.")
        if not state:
            self._print("Only the transfers the branches hold in doubt are known while the "
                        "coordinator is down:")
        self._direct_in_doubt(limit)

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
        Each branch sums its whole journal itself, so the check is exact at any size. A
        branch that refuses a logged decision (not just silent) fails the check, and so
        does heuristic damage: the transaction, who decided what (the operator at a
        branch, the coordinator), and the money out of balance across branches.
        While the coordinator is down, each branch's own books are checked (V1, V4).
        Example: check"""
        self._args(arg, 0)
        branches = self._from_coordinator("branches")
        if branches is None:                              # V1, V4: its own books
            return self._report_check(self._check_rows_from_branches())
        books, rows, missing = [], [], []
        for b in branches:
            try:
                books.append(self.coord.call("audit", b["name"]))
            except BankError as exc:
                rows.append(("branch reachable", "FAIL", self._explain(exc)))
                missing.append(b["name"])
        in_doubt = [t for t in self.coord.call("transactions", REMEMBERED, "")
                    if txn_category(t) == "in-doubt"]
        branches = self._from_coordinator("branches") or branches   # read after the books
        rows += audit(books, in_doubt, branches, self.start_total, missing,
                      self._refused(in_doubt))
        self._report_check(rows)

    def _check_rows_from_branches(self) -> list:
        """The audit's rows from the branches alone, the coordinator being down (V4): each
        branch's books, and how many transfers it holds prepared; which of them the
        coordinator decided is not known here, so they can only be "wait"."""
        books, rows, missing, branches = [], [], [], []
        for name in sorted(self.direct_urls()):
            try:
                books.append(self._ask(name, "audit"))
                branches.append({"name": name, "in_doubt": self._ask(name, "ping")["in_doubt"]})
            except BankError as exc:
                rows.append(("branch reachable", "FAIL", self._explain(exc)))
                missing.append(name)
        return rows + audit(books, [], branches, self.start_total, missing)

    def _report_check(self, rows: list):
        """The check's table and its one-line verdict."""
        self._table(rows, ["check", "result", "detail"])
        failed = [r[0] for r in rows if r[1] == "FAIL"]
        if failed:
            return self._fail(f"The check failed: {', '.join(failed)}.")
        busy = any(r[1] in ("wait", "?") for r in rows)
        self._say("All checks passed" + (" (some work is still in flight)." if busy else "."))

    def do_counters(self, arg):
        """counters: fsyncs and messages per transfer since the last `counters`.
        (The first time: since the shell started.) Run it, make some transfers (or a
        load), run it again: with several clients at once, the ledger steps per branch
        COMMIT rise above 1 (group commit at work).
        Example: counters"""
        self._args(arg, 0)
        now, silent = self._counter_totals()
        if silent:                   # its counts are missing: not a restart, not a rate
            return self._fail(f"{' and '.join(silent)} did not answer, so the counters "
                              "cannot be added up; run `counters` again once "
                              f"{'it is' if len(silent) == 1 else 'they are'} back.")
        before, since = self._counted, self._counted_since
        self._counted, self._counted_since = now, "the last `counters`"
        if restarted(now, before):
            self._say(f"A server restarted since {since}, and its counters start again "
                      "from 0: counting from now. Run `counters` again later.")
            return
        self._table(per_transfer(now, before), ["counter", "value", "meaning"],
                    right=("value",))
        self._say(f"Since {since}.")

    def _start_counting(self) -> None:
        """`counters` counts from the shell's start, as the window does from its own: the
        branches' start-up COMMITs (their schema, preloaded accounts) are left out, so
        a first lone transfer shows its 5 messages and 5 fsyncs. Without the counts of
        every branch (one is down) it counts from the servers' start instead."""
        try:
            now, silent = self._counter_totals()
        except BankError:                      # the coordinator is not answering yet
            now, silent = None, ["the coordinator"]
        self._counted = None if silent else now
        self._counted_since = "this shell started" if self._counted else "the servers started"

    def _counter_totals(self) -> tuple:
        """The bank's counters now (bank/counters.py, totals), and the branches that
        did not give their own (one that is down adds nothing)."""
        branches = {b["name"]: b.get("counters", {}) for b in self.coord.call("branches")}
        return (totals(self.coord.call("ping").get("counters", {}), branches),
                sorted(name for name, counts in branches.items() if not counts))

    def _refused(self, in_doubt: list) -> list:
        """(txid, branch, answer) for decided transfers a branch refuses to apply: read
        from the traces of the first TRACES_READ decided in-doubt transfers."""
        decided = [t for t in in_doubt if t["state"] in ("committing", "aborting")]
        found = []
        for t in decided[:TRACES_READ]:
            try:
                txn = self.coord.call("transaction", t["txid"])
            except BankError:
                continue                    # forgotten meanwhile: nothing to say about it
            found += [(t["txid"], branch, answer) for branch, answer in refusals(txn)]
        return found
