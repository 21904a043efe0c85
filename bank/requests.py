"""The coordinator's one registry of request ids: one id, one operation, one outcome.

Role: remember, for every request id the coordinator has routed (a deposit, a
withdrawal, an account opening, a transfer inside one branch or across branches),
which operation it named and how it ended, so that a retry gets the same answer
whichever path the first call took. coordinator_service.py uses it for the routed
operations; twopc.py records its cross-branch transfers here too.

Rules:
  * Rule 1 - one request id names one operation: its kind and its arguments (the
    fingerprint). Reusing it for anything else is refused, whichever path it took.
  * Rule 2 - a definite outcome (done, or refused: insufficient funds, no such
    account) is repeated, never run again, even when a new run would succeed.
  * Rule 3 - an outcome not known (the branch did not answer) is never guessed: a
    retry asks the branch again with the same id, and the branch, which remembers
    its request ids durably (ledger.py), applies it at most once.
  * Rule 4 - bounded: the last KEEP routed ids and, apart, the last KEEP_TRANSFERS
    cross-branch transfer ids are remembered, the oldest forgotten first. Apart, so
    that a flood of cheap routed calls (a student's deposits) cannot push a recent
    transfer's id out and make its retry move the money a second time: a transfer id
    is forgotten only after as many later transfers as the recovery log keeps, and
    never while its transaction is still open (twopc.py looks among the open ones
    when this memory has forgotten an id). This memory is the coordinator's only;
    after its restart, cross-branch ids come back from the recovery log and the
    branches still apply each local id once.

Glossary:
  fingerprint  (kind, arguments...), e.g. ("deposit", "Mumbai/1001", "250.00")
  definite     the outcome is known for good: done, or refused for a reason that stays
"""

import collections
import threading

from bank.errors import BankError, FaultCode
from bank.ledger import now
from bank.recovery_log import KEEP_FINISHED

KEEP = 20_000                  # routed operations' request ids remembered (Rule 4)
KEEP_TRANSFERS = KEEP_FINISHED  # cross-branch transfers' ids: as many as the log keeps
DEFINITE_REFUSALS = (FaultCode.INSUFFICIENT_FUNDS, FaultCode.UNKNOWN_ACCOUNT,
                     FaultCode.BAD_INPUT, FaultCode.BAD_AMOUNT)


class Entry:
    """One request id: what it asked for, and how that ended (if known)."""

    def __init__(self, request_id: str, fingerprint: tuple, txid: str = ""):
        self.request_id, self.fingerprint, self.txid = request_id, fingerprint, txid
        self.result = None             # the answer of a done operation
        self.refusal = None            # (code, sentence) of a definite refusal
        self.began, self.ended = now(), ""
        self.trace = []                # the messages, for `show REQUEST_ID`

    @property
    def definite(self) -> bool:
        return self.result is not None or self.refusal is not None

    def repeat(self):
        """The first outcome again (Rule 2): its result, or its refusal raised."""
        if self.refusal is not None:
            raise BankError(*self.refusal)
        return self.result


class RequestRegistry:
    """Request ids of every operation the coordinator routes (thread-safe, bounded)."""

    def __init__(self, keep: int = 0, keep_transfers: int = 0):
        """keep, keep_transfers: how many ids each memory holds (0: KEEP, KEEP_TRANSFERS)."""
        self.keep, self.keep_transfers = keep or KEEP, keep_transfers or KEEP_TRANSFERS
        self._routed = collections.OrderedDict()      # request id -> Entry, oldest first
        self._transfers = collections.OrderedDict()   # the same, for 2PC transfers (Rule 4)
        self._lock = threading.Lock()

    def __len__(self):
        return len(self._routed) + len(self._transfers)

    def _get(self, request_id: str):
        """The entry of request_id in either memory, or None (caller holds _lock)."""
        entry = self._transfers.get(request_id)
        return entry if entry is not None else self._routed.get(request_id)

    # ---- for the routed operations (coordinator_service.py) -------------------------

    def claim(self, request_id: str, fingerprint: tuple) -> Entry:
        """The entry of request_id, new or earlier; refused if it named another operation."""
        with self._lock:
            entry = self._get(request_id)
            if entry is None:
                entry = self._add(Entry(request_id, fingerprint))
            _same_operation(entry, fingerprint)
            return entry

    def finish(self, entry: Entry, result=None, error: BankError = None) -> None:
        """Record how a call ended: a result, a definite refusal, or (else) not known."""
        with self._lock:
            if error is None:
                entry.result = result
            elif error.code in DEFINITE_REFUSALS:
                entry.refusal = (error.code, error.message)
            else:
                return                                  # not known: never guessed (Rule 3)
            entry.ended = now()

    def lookup(self, request_id: str):
        """The entry of request_id, or None."""
        with self._lock:
            return self._get(request_id)

    # ---- for cross-branch transfers (twopc.py) -------------------------------------

    def check(self, request_id: str, fingerprint: tuple) -> str:
        """The txid an earlier transfer with this id started, "" if none; refused if
        the id named another operation (Rule 1)."""
        with self._lock:
            entry = self._get(request_id)
            if entry is None:
                return ""
            _same_operation(entry, fingerprint)
            return entry.txid

    def record(self, request_id: str, fingerprint: tuple, txid: str) -> None:
        """Remember that request_id started transaction txid (its outcome is 2PC's)."""
        with self._lock:
            if self._get(request_id) is None:
                self._add(Entry(request_id, fingerprint, txid))

    def forget(self, request_id: str, txid: str) -> None:
        """Forget request_id if it names txid: that transaction never started (its
        begin could not be logged), so a retry may start it afresh."""
        with self._lock:
            entry = self._transfers.get(request_id)
            if entry is not None and entry.txid == txid:
                del self._transfers[request_id]

    # ---- helpers --------------------------------------------------------------------

    def _add(self, entry: Entry) -> Entry:
        memory, keep = (self._transfers, self.keep_transfers) if entry.txid else \
            (self._routed, self.keep)
        memory[entry.request_id] = entry
        while len(memory) > keep:                       # Rule 4
            memory.popitem(last=False)
        return entry


def _same_operation(entry: Entry, fingerprint: tuple) -> None:
    if entry.fingerprint != fingerprint:
        raise BankError(FaultCode.BAD_INPUT,
                        f"Request id {entry.request_id!r} was already used for "
                        f"{describe(entry.fingerprint)}; use a new id for a new operation.")


WORDS = {"deposit": "a deposit of {1} into {0}", "withdraw": "a withdrawal of {1} from {0}",
         "transfer": "a transfer of {2} from {0} to {1}",
         "open_account": "opening an account at {0} for {1} with {2}"}


def describe(fingerprint: tuple) -> str:
    """A fingerprint in words: ("deposit", "Mumbai/1001", "5.00") -> "a deposit of ..."."""
    kind, *args = fingerprint
    return WORDS[kind].format(*args)
