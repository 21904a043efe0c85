"""What the coordinator's 2PC driver remembers: its transactions and their request ids.

Role: a mixin of TwoPhaseCommit (bank/twopc.py) that keeps, for the API and for
retries, every transaction still open and the last KEEP_TXNS finished ones (each with
its trace), gives each a fresh txid (D7), and knows which request id started which
transaction, so that a retried transfer joins its first run instead of moving the
money again (bank/requests.py Rules 1 and 4). A student may read bank/twopc.py first:
this file is its memory.

Rules:
  * D7 - no two transactions share a txid (see bank/twopc.py).
  * D8 - bounded: at most KEEP_TXNS finished transactions stay in memory, however old
    the unfinished ones behind them are; unfinished ones stay until they end.
  * D9 - a request id is never forgotten while its transaction is open: the request
    ids' memory is bounded, so an open transaction's id is also kept in open_requests.
  * D10 - open_txns and open_requests have a lock of their own, always taken last and
    held alone (see the class's docstring).

Glossary:
  open      begun and not yet ended (an end record, or C12): the retry loop's work
  finished  ended: kept for the API until KEEP_TXNS later ones have ended
"""

import collections
import itertools
import secrets
import threading
import time

from bank.clock import txid_second
from bank.core.coordinator import Presumption
from bank.core.messages import CoordState
from bank.errors import NOTHING_DONE, BankError, FaultCode
from bank.ledger import now
from bank.requests import RequestRegistry
from bank.twopc_txn import Txn

KEEP_TXNS = 1000             # finished transactions kept in memory with their traces (D8)
TXID_SERIALS = 16 ** 6       # a txid's last part: 6 hex digits (D7)


class Remembered:
    """Mixed into TwoPhaseCommit: the transactions it remembers for the API (txns,
    newest last; at most KEEP_TXNS finished ones) and those still open (open_txns:
    begun, not yet ended, the only ones the retry loop looks at), each under a fresh
    txid (D7), and the request ids that name them. txns changes under the driver's
    lock (self._lock). open_txns has a lock of its own, always taken last and held
    alone: a transaction ends while its own lock is held, and a view may hold the
    driver's lock while it reads a transaction (TxnViews.detail), so taking either of
    those to end a transaction could deadlock."""

    def _remember_nothing_yet(self, requests=None) -> None:
        """The memories, empty (TwoPhaseCommit.__init__ calls it first); `requests`, a
        RequestRegistry the coordinator shares with its routed operations."""
        self.txns = collections.OrderedDict()      # txid -> Txn, newest last
        self.open_txns = {}                        # txid -> Txn not ended yet (in flight)
        self.open_requests = {}                    # request id -> txid of an open one
        self._open_lock = threading.Lock()         # the two above only: taken last, alone
        self.requests = requests if requests is not None else RequestRegistry()
        self._serials = itertools.count(secrets.randbelow(TXID_SERIALS))   # D7

    def _claim(self, info: dict, plan: dict):
        """A new Txn, or the one already started for the same request id (and False)."""
        fingerprint = ("transfer", info["src"], info["dst"], info["amount"])
        with self._lock:
            rid = info["request_id"]
            txid = self.requests.check(rid, fingerprint) if rid else ""   # refuses another op
            if rid and not txid:
                txid = self._still_open(rid, fingerprint)
            if rid and not txid and self.log.hides_request_ids():    # Rule 6: never twice
                raise BankError(FaultCode.UNAVAILABLE, (
                    f"Request id {rid!r} is not run: the recovery log is damaged (started "
                    "with --accept-damaged-log) and a damaged line may hold it, so running "
                    "it could move the money a second time; send it again once the log is "
                    "restored.") + NOTHING_DONE)
            if txid:
                if txid in self.txns:
                    return self.txns[txid], False
                return self._finished_request(txid), False
            txn = Txn(self._new_txid(), plan, dict(info, branches=sorted(plan), began=now(),
                                                   **self._presumption_info()), self.url)
            self._remember(txn)
            self._forget_old_txns()
            if rid:
                self.requests.record(rid, fingerprint, txn.txid)
        return txn, True

    def _presumption_info(self) -> dict:
        """D6: what the begin record says of the presumption (nothing for the default,
        so a presumed-abort log reads exactly as it always has)."""
        return {} if self.presumption is Presumption.ABORT else \
            {"presumption": self.presumption.value}

    def _finished_request(self, txid: str) -> Txn:
        """A stand-in Txn holding the outcome of a request finished long ago.

        If the outcome is no longer remembered, say so: never guess "aborted".
        """
        data = self.log.finished.get(txid, {})
        outcome = data.get("outcome") or self.log.outcome(txid)
        if outcome is None:
            raise BankError(FaultCode.UNKNOWN_TXN,
                            f"That request id was used for transaction {txid}, whose outcome "
                            "is no longer remembered here (only recent ones are); ask the "
                            "branches with status(txid).")
        txn = Txn(txid, {}, data)
        txn.result = {"txid": txid, "outcome": outcome, "reason": data.get("reason", ""),
                      "waiting_for": []}
        txn.done.set()
        return txn

    def _new_txid(self) -> str:
        """Readable and unique (D7): <coordinator>-<UTC second>-<serial>, e.g.
        C1-20261125T130102-9f3a2c. Never stamped before its log was created (a clock set
        back since): C14 would take it for another log's. Called with self._lock held."""
        stamp = max(txid_second(time.time()), self.log.created)
        while True:
            txid = f"{self.name}-{stamp}-{next(self._serials) % TXID_SERIALS:06x}"
            if txid not in self.txns and txid not in self.log.finished:   # a restart
                return txid

    def _remember(self, txn: Txn) -> None:
        """Keep a transaction for the API, and among the open ones until it ends."""
        self.txns[txn.txid] = txn
        if not txn.ended:
            with self._open_lock:
                self.open_txns[txn.txid] = txn
                if txn.info.get("request_id"):
                    self.open_requests[txn.info["request_id"]] = txn.txid

    def _ended(self, txn: Txn) -> None:
        """The transaction is over (its end record, or C12): no longer open."""
        txn.ended = now()
        self._close(txn.txid)

    def _close(self, txid: str) -> None:
        """No longer open: out of open_txns, and its request id out of open_requests."""
        with self._open_lock:
            txn = self.open_txns.pop(txid, None)
            rid = txn.info.get("request_id") if txn is not None else ""
            if rid and self.open_requests.get(rid) == txid:
                del self.open_requests[rid]

    def _still_open(self, rid: str, fingerprint: tuple) -> str:
        """D9: the txid of an open transaction started for request id `rid`, if the request
        ids' memory forgot it while it was open (bank/requests.py Rule 4 counts starts,
        and a transaction can stay open behind a branch that is down): it is remembered
        again, and checked like any other (one id, one operation). With self._lock."""
        with self._open_lock:
            txn = self.open_txns.get(self.open_requests.get(rid, ""))
        if txn is None:
            return ""
        self.requests.record(rid, ("transfer", txn.info["src"], txn.info["dst"],
                                   txn.info["amount"]), txn.txid)
        return self.requests.check(rid, fingerprint)

    def _open_now(self) -> list:
        """The open transactions, as a list taken under their lock."""
        with self._open_lock:
            return list(self.open_txns.values())

    def _forget_old_txns(self):
        """D8: keep at most KEEP_TXNS finished transactions in memory, oldest forgotten first.

        Unfinished ones are kept whatever their age (they still have work to do), and
        never pin the finished ones behind them: a transaction stuck for an hour behind
        a crashed branch once kept every later one, and memory grew with uptime.
        Called with self._lock held, once per new transaction; it looks at the oldest
        ones beyond the limit: the unfinished among them (work in flight) and one more.
        """
        for txid in list(itertools.islice(self.txns, max(0, len(self.txns) - KEEP_TXNS))):
            if self.txns[txid].core.state in (CoordState.COMMITTED, CoordState.ABORTED):
                del self.txns[txid]
                self._close(txid)              # it has ended: already gone, normally

    def _forget(self, txn: Txn) -> None:
        """Drop a transaction that never started (its begin could not be logged)."""
        with self._lock:
            self.txns.pop(txn.txid, None)
        self._close(txn.txid)
        if txn.info.get("request_id"):
            self.requests.forget(txn.info["request_id"], txn.txid)


# ---- the driver ------------------------------------------------------------------------------
