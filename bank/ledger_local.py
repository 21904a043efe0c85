"""A branch's local operations in SQLite: opening accounts, deposits, withdrawals and
transfers inside one branch (no 2PC), each applied at most once per request id.

Role: mixed into bank.ledger.Ledger, as its 2PC steps are (bank/ledger_2pc.py). Each
operation is ONE durable write (``Ledger._write``): the change, its journal rows and,
with a request id, its remembered outcome commit together.

Rules:
  * A request id makes an operation apply at most once: a retry gets the first
    outcome back, the first result or the first refusal (insufficient funds stays
    refused, even after a deposit); the same id for another operation is refused.
  * A refusal is remembered, durably and on the replicas, like a result
    (RememberedRefusal): nothing of the refused operation stays, but its refusal does.
  * A branch picks the smallest free account number from FIRST_NUMBER, never one
    the API would refuse (LAST_NUMBER).

Glossary:
  request_id  a client-chosen id that makes a retried deposit/withdraw/transfer/opening
              apply once; its first outcome, a refusal included, is its only outcome
  fingerprint the call without its request id: what a retry must repeat exactly
"""

import json

from bank.clock import now
from bank.errors import (MAX_ACCOUNT_NUMBER, BankError, FaultCode, RememberedRefusal,
                         check_account_number)

FIRST_NUMBER = 1001   # numbers a branch chooses: the smallest free one from here...
LAST_NUMBER = MAX_ACCOUNT_NUMBER   # ...to here, all of them ones the API accepts


class LocalOperations:
    """Mixed into Ledger: the operations of one branch alone, each durable on return."""

    def open_account(self, owner: str, initial: int, number: str = "",
                     request_id: str = "") -> dict:
        # A replica replays what its primary accepted, maybe under older rules (01001
        # was allowed once): refusing it now would stop the replica at that change.
        if number and getattr(self._replay, "seq", None) is None:
            number = check_account_number(number)
        return self._once(request_id, ("open_account", [owner, initial, number, request_id]),
                          lambda db: self._open_account(db, owner, initial, number))

    def _open_account(self, db, owner, initial, number):
        if not number:
            number = self._free_number(db)
        elif db.execute("SELECT 1 FROM accounts WHERE number=?", (number,)).fetchone():
            raise BankError(FaultCode.BAD_INPUT,
                            f"Account {self.branch}/{number} already exists.")
        db.execute("INSERT INTO accounts(number, owner, balance, held, opened) "
                   "VALUES (?, ?, 0, 0, ?)", (number, owner, now()))
        if initial:
            self._change_balance(db, number, initial, "open", detail="opening deposit")
        else:
            self._journal(db, number, "open", 0, 0, detail="opened empty")
        return self._account_dict(self._get_account(db, number))

    def _free_number(self, db) -> str:
        """The smallest number from FIRST_NUMBER to LAST_NUMBER no account has yet.

        Not MAX + 1: one account opened as 999999999999 would make every later
        number 13 digits long, which no other call accepts (the money would be stuck).
        """
        row = db.execute(
            "SELECT MIN(candidate) FROM (SELECT ? AS candidate UNION ALL "
            "  SELECT CAST(number AS INTEGER) + 1 FROM accounts "
            "  WHERE CAST(number AS INTEGER) BETWEEN ? AND ?) "
            "WHERE NOT EXISTS (SELECT 1 FROM accounts WHERE number = CAST(candidate AS TEXT))",
            (FIRST_NUMBER, FIRST_NUMBER, LAST_NUMBER - 1)).fetchone()
        if row[0] is None:
            raise BankError(FaultCode.BAD_INPUT,
                            f"{self.branch} has no free account number left (every number "
                            f"from {FIRST_NUMBER} to {LAST_NUMBER} is taken).")
        assert FIRST_NUMBER <= row[0] <= LAST_NUMBER, row[0]
        return str(row[0])

    def deposit(self, number: str, amount: int, request_id: str = "") -> dict:
        return self._once(request_id, ("deposit", [number, amount, request_id]),
                          lambda db: self._deposit(db, number, amount, request_id))

    def withdraw(self, number: str, amount: int, request_id: str = "") -> dict:
        return self._once(request_id, ("withdraw", [number, amount, request_id]),
                          lambda db: self._withdraw(db, number, amount, request_id))

    def transfer(self, src: str, dst: str, amount: int, request_id: str = "") -> dict:
        if src == dst:
            raise BankError(FaultCode.BAD_INPUT, "Source and destination are the same account.")
        return self._once(request_id, ("transfer", [src, dst, amount, request_id]),
                          lambda db: self._transfer(db, src, dst, amount, request_id))

    def _deposit(self, db, number, amount, request_id):
        self._get_account(db, number)
        self._change_balance(db, number, amount, "deposit", request_id=request_id)
        return self._account_dict(self._get_account(db, number))

    def _withdraw(self, db, number, amount, request_id):
        self._require_available(db, number, amount)
        self._change_balance(db, number, -amount, "withdraw", request_id=request_id)
        return self._account_dict(self._get_account(db, number))

    def _transfer(self, db, src, dst, amount, request_id):
        self._get_account(db, dst)
        self._require_available(db, src, amount)
        self._change_balance(db, src, -amount, "transfer-out", request_id=request_id,
                             detail=f"to {self.branch}/{dst}")
        self._change_balance(db, dst, amount, "transfer-in", request_id=request_id,
                             detail=f"from {self.branch}/{src}")
        return {"src": self._account_dict(self._get_account(db, src)),
                "dst": self._account_dict(self._get_account(db, dst))}

    def _once(self, request_id: str, change: tuple, operation) -> dict:
        """Run `operation` in one write; with a request_id, at most once ever.

        A retry with the same request_id gets the first outcome back: the first
        result, or the first refusal (insufficient funds stays refused, even after a
        deposit). The same id with different arguments is refused.
        """
        if not request_id:
            with self._write(change) as db:
                return operation(db)
        method, args = change
        key = json.dumps([method, *args[:-1]])          # the call without its request id
        with self._write(change) as db:
            row = db.execute("SELECT fingerprint, result FROM requests "
                             "WHERE request_id=?", (request_id,)).fetchone()
            if row is not None and row["fingerprint"] != key:
                raise BankError(FaultCode.BAD_INPUT,
                                f"Request id {request_id!r} was already used for a "
                                "different operation.")
            outcome = json.loads(row["result"]) if row is not None else \
                self._run_remembered(db, request_id, key, operation)
        if "refused" in outcome:                  # durable (and replicated) like a result
            raise RememberedRefusal(outcome["refused"]["code"], outcome["refused"]["message"])
        return outcome

    @staticmethod
    def _run_remembered(db, request_id: str, key: str, operation) -> dict:
        """Run operation and record its outcome, a refusal included, for request_id."""
        db.execute("SAVEPOINT operation")
        try:
            outcome = operation(db)
        except BankError as exc:
            db.execute("ROLLBACK TO operation")         # nothing of it stays...
            outcome = {"refused": {"code": int(exc.code), "message": exc.message}}
        db.execute("RELEASE operation")                 # ...but its refusal does
        db.execute("INSERT INTO requests VALUES (?, ?, ?)",
                   (request_id, key, json.dumps(outcome)))
        return outcome
