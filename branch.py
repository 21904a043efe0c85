"""A bank branch: a 2PC participant with its own SQLite ledger, served over XML-RPC.

Role: check every request, hand it to the ledger (which makes it durable), and only
then answer. It also runs the participant's half of the termination protocol: a
branch holding a prepared transaction asks the coordinator for the decision until
it learns it.

Run it:  python branch.py --name Mumbai --port 9100 --preload

Rules:
  * Rule 1 - check, then write, then reply. Arguments are checked before anything
    changes; ledger.py makes the change durable; the reply leaves afterwards.
  * Rule 2 - a yes vote is a promise. Funds are held at prepare, so a later commit
    cannot fail. A prepared transaction never times out by itself: it waits for the
    coordinator's decision, asking for it every few seconds (``--ask-every``).
  * Rule 3 - fault points sit exactly between those steps (see faults.py), so a
    student can crash the branch "after the vote was recorded, before it was sent".

Glossary (more in protocol.py):
  ops        what a prepare asks this branch to do: [{"account": "1001", "delta": "-50.00"}]
  in doubt   prepared here, decision not yet known
"""

import argparse
import logging
import os
import pathlib
import sys
import threading

import rpc
from errors import (BankError, FaultCode, check_account_number, check_branch_name,
                    check_limit, check_text, check_token)
from faults import BRANCH_POINTS, FaultPoints
from ledger import MAX_OPS, Ledger
from money import format_amount, parse_amount, parse_delta
from protocol import TxState

log = logging.getLogger("branch")

PRELOAD = (("1001", "Asha Rao", 10_000_00), ("1002", "Vikram Shah", 5_000_00))
ASK_EVERY = 2.0          # seconds between decision queries for an in-doubt txn


class Branch:
    """The public XML-RPC methods of one branch. Each returns a dict or a list of dicts."""

    PUBLIC_METHODS = ("ping", "open_account", "account", "accounts", "deposit", "withdraw",
                      "transfer", "prepare", "commit", "abort", "status", "in_doubt",
                      "journal")

    def __init__(self, name: str, db_path, *, allow_faults=False, secret=None,
                 ask_every: float = ASK_EVERY):
        self.name = check_branch_name(name)
        self.ledger = Ledger(db_path, self.name)
        self.faults = FaultPoints("branch", BRANCH_POINTS, allow_faults)
        if allow_faults:
            self.PUBLIC_METHODS = Branch.PUBLIC_METHODS + ("fault",)
        self.secret, self.ask_every = secret, ask_every
        self._coordinators = {}                 # url -> rpc.Client
        self._stop = threading.Event()

    # ---- information ------------------------------------------------------------------

    def ping(self) -> dict:
        """Who and what this server is: {"name", "role", "epoch", "accounts", "in_doubt"}."""
        return {"name": self.name, "role": "primary", "epoch": 1,
                "accounts": self.ledger.count_accounts(),
                "in_doubt": len(self.ledger.in_doubt()),
                "faults": self.faults.describe()["armed"]}

    def account(self, number) -> dict:
        """One account: {"branch", "number", "owner", "balance", "held", "available"}.

        Example: account("1001")
        """
        return self.ledger.account(check_account_number(number))

    def accounts(self) -> list:
        """Every account of this branch, ordered by number."""
        return self.ledger.accounts()

    def journal(self, number="", limit=100) -> list:
        """The last `limit` journal rows (one per balance change), oldest first.

        Each row: {"seq", "ts", "branch", "account", "kind", "amount", "balance_after",
        "txid", "request_id", "detail"}. Example: journal("1001", 20)
        """
        number = check_account_number(number) if number not in ("", None) else ""
        return self.ledger.journal(number, check_limit(limit))

    # ---- local operations -------------------------------------------------------------

    def open_account(self, owner, initial="0", number="") -> dict:
        """Open an account with an opening balance; the number is chosen if "" is given.

        Example: open_account("Meera Iyer", "2500.00")
        """
        owner = check_text(owner, "owner name")
        amount = parse_amount(initial, allow_zero=True)
        number = check_account_number(number) if number not in ("", None) else ""
        acct = self.ledger.open_account(owner, amount, number)
        log.info("opened %s/%s for %s with %s", self.name, acct["number"], owner,
                 acct["balance"])
        return acct

    def deposit(self, number, amount, request_id="") -> dict:
        """Add money to an account; returns the account. Example: deposit("1001", "250.00")"""
        args = (check_account_number(number), parse_amount(amount),
                check_token(request_id, "request id", optional=True))
        return self.ledger.deposit(*args)

    def withdraw(self, number, amount, request_id="") -> dict:
        """Take money out, if that much is available (holds count as spent).

        Example: withdraw("1001", "100")
        """
        args = (check_account_number(number), parse_amount(amount),
                check_token(request_id, "request id", optional=True))
        return self.ledger.withdraw(*args)

    def transfer(self, src, dst, amount, request_id="") -> dict:
        """Move money between two accounts of this branch in one local transaction.

        Returns {"src": account, "dst": account}. Example: transfer("1001", "1002", "10")
        """
        args = (check_account_number(src), check_account_number(dst), parse_amount(amount),
                check_token(request_id, "request id", optional=True))
        return self.ledger.transfer(*args)

    # ---- 2PC participant --------------------------------------------------------------

    def prepare(self, txid, coordinator, ops) -> dict:
        """Phase 1: can this branch apply `ops`? Holds debits, records, then votes.

        Answers {"vote": "yes"|"no", "reason"}; a repeated prepare gets the same vote.
        Example: prepare("C1-20261125T130102-9f3a2c", "http://127.0.0.1:9000",
                         [{"account": "1001", "delta": "-50.00"}])
        """
        txid = check_token(txid, "transaction id")
        coordinator = check_text(coordinator, "coordinator URL", max_len=200)
        parsed = _parse_ops(ops)
        self.faults.maybe_delay()
        self.faults.crash_if_armed("crash-before-vote")
        refuse = "fault injected: vote-no" if self.faults.fires("vote-no") else ""
        vote, reason = self.ledger.prepare(txid, coordinator, parsed, refuse)  # durable here
        log.info("prepare %s: vote %s %s", txid, vote.value, reason)
        self.faults.crash_if_armed("crash-after-vote")
        return {"vote": vote.value, "reason": reason}

    def commit(self, txid) -> dict:
        """Phase 2: apply a prepared transaction. Repeating it is harmless.

        Committing an unknown or aborted txid is a protocol violation (Fault 409).
        """
        txid = check_token(txid, "transaction id")
        self.faults.maybe_delay()
        self.faults.crash_if_armed("crash-before-commit")
        state = self.ledger.commit(txid)                                # durable here
        log.info("commit %s: done", txid)
        self.faults.crash_if_armed("crash-after-commit")
        return {"txid": txid, "state": state.value}

    def abort(self, txid) -> dict:
        """Phase 2: release the holds of a transaction; an unknown txid is recorded aborted
        (so a late prepare votes no). Aborting a committed txid is refused (Fault 409).
        """
        txid = check_token(txid, "transaction id")
        self.faults.maybe_delay()
        state = self.ledger.abort(txid)
        log.info("abort %s: done", txid)
        return {"txid": txid, "state": state.value}

    def status(self, txid) -> dict:
        """This branch's state for a txid: unknown, prepared, committed or aborted."""
        return self.ledger.status(check_token(txid, "transaction id"))

    def in_doubt(self) -> list:
        """Prepared transactions waiting for a decision, with their held ops."""
        return self.ledger.in_doubt()

    def fault(self, point) -> dict:
        """Arm a fault point (only with --allow-faults): vote-no, crash-before-vote,
        crash-after-vote, crash-before-commit, crash-after-commit, delay=SECONDS; "" disarms.
        """
        return self.faults.arm(point)

    # ---- termination protocol: ask for the decisions we are waiting on ---------------

    def resolve_in_doubt(self) -> int:
        """Ask each in-doubt txn's coordinator for its decision; apply what we learn.

        Returns how many were resolved. A coordinator that is down or still deciding
        changes nothing: we simply ask again later (Rule 2).
        """
        resolved = 0
        for txn in self.ledger.in_doubt():
            decision = self._ask_decision(txn["txid"], txn["coordinator"])
            if decision == TxState.COMMITTED.value:
                self.ledger.commit(txn["txid"])
            elif decision == TxState.ABORTED.value:
                self.ledger.abort(txn["txid"])
            else:
                continue
            resolved += 1
            log.info("termination: learned %s for %s from %s", decision, txn["txid"],
                     txn["coordinator"])
        return resolved

    def _ask_decision(self, txid: str, coordinator_url: str) -> str:
        client = self._coordinators.get(coordinator_url)
        if client is None:
            client = self._coordinators[coordinator_url] = rpc.Client(
                coordinator_url, self.secret, timeout=3, label="the coordinator")
        try:
            return client.call("decision", txid, self.name).get("decision", "")
        except BankError as exc:
            log.debug("termination: no decision for %s yet (%s)", txid, exc)
            return ""

    def run_termination(self):
        """Background loop: resolve in-doubt txns now (after a restart) and every few s."""
        while not self._stop.is_set():
            try:
                self.resolve_in_doubt()
            except Exception:
                log.exception("termination loop")
            self._stop.wait(self.ask_every)

    def start_background(self):
        threading.Thread(target=self.run_termination, name="termination", daemon=True).start()

    def close(self):
        self._stop.set()
        self.ledger.close()

    def preload(self) -> None:
        """Open the demo accounts (1001 and 1002) if this branch has no accounts yet."""
        if self.ledger.count_accounts() == 0:
            for number, owner, balance in PRELOAD:
                self.ledger.open_account(owner, balance, number)
            log.info("preloaded accounts %s", ", ".join(n for n, _, _ in PRELOAD))


def _parse_ops(ops) -> list:
    """[{"account": "1001", "delta": "-50.00"}] -> [("1001", -5000)], or BankError."""
    if not isinstance(ops, list) or not ops or len(ops) > MAX_OPS:
        raise BankError(FaultCode.BAD_INPUT,
                        f"ops must be a list of 1 to {MAX_OPS} items like "
                        '{"account": "1001", "delta": "-50.00"}.')
    parsed = []
    for op in ops:
        if not isinstance(op, dict) or set(op) != {"account", "delta"}:
            raise BankError(FaultCode.BAD_INPUT,
                            'Each op must be {"account": NUMBER, "delta": SIGNED_AMOUNT}.')
        parsed.append((check_account_number(op["account"]), parse_delta(op["delta"])))
    return parsed


# ---- command line ------------------------------------------------------------------------

def default_db(name: str) -> pathlib.Path:
    return pathlib.Path("data") / f"{name}.db"


def write_url_file(path, url: str) -> None:
    """Tell a launcher where we listen (atomic: it never sees half a file)."""
    path = pathlib.Path(path)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(url + "\n", encoding="utf-8")
    os.replace(tmp, path)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description="Run one bank branch (a 2PC participant).")
    p.add_argument("--name", required=True, help="branch name, e.g. Mumbai")
    p.add_argument("--port", type=int, default=9100, help="port (0: any free port)")
    p.add_argument("--host", default="127.0.0.1", help="address to serve on")
    p.add_argument("--db", help="SQLite file (default: data/NAME.db)")
    p.add_argument("--preload", action="store_true",
                   help="open accounts 1001 (10000.00) and 1002 (5000.00) if none exist")
    p.add_argument("--allow-faults", action="store_true", help="enable the fault() RPC")
    p.add_argument("--fail-at", default="", metavar="POINT", help="arm a fault point now")
    p.add_argument("--secret-file", help="shared secret: sign and require signed calls")
    p.add_argument("--insecure-no-auth", action="store_true",
                   help="serve beyond loopback without a secret (trusted networks only)")
    p.add_argument("--ask-every", type=float, default=ASK_EVERY, metavar="SECONDS",
                   help="how often to ask the coordinator about in-doubt transactions")
    p.add_argument("--log-dir", default="logs", help="where the log file goes")
    p.add_argument("--url-file", help="write the served URL here once listening")
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    secret = rpc.load_secret(args.secret_file) if args.secret_file else None
    rpc.check_bind(args.host, secret, args.insecure_no_auth)
    rpc.setup_logging(args.name, args.log_dir)
    branch = Branch(args.name, args.db or default_db(args.name),
                    allow_faults=args.allow_faults or bool(args.fail_at),
                    secret=secret, ask_every=args.ask_every)
    if args.preload:
        branch.preload()
    if args.fail_at:
        branch.faults.arm(args.fail_at)
    try:
        server = rpc.Server(branch, args.host, args.port, secret)
    except OSError as exc:
        raise SystemExit(f"Cannot serve on {args.host}:{args.port}: {exc.strerror}.")
    print(f"Branch {branch.name} serving at {server.url} "
          f"(database {branch.ledger.path}, authentication "
          f"{'on' if secret else 'OFF'}, faults {'allowed' if args.allow_faults else 'off'})",
          flush=True)
    if args.url_file:
        write_url_file(args.url_file, server.url)
    branch.start_background()
    rpc.serve(server, on_stop=branch.close)


if __name__ == "__main__":
    sys.exit(main())
