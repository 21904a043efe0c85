"""What one transaction cost: log writes (forced or not) and messages, per party.

Role: count, for each transaction, the records each party wrote (forced: on disk
before the next step; unforced: only written) and the protocol messages each party
sent, so the presumption lab (labs/lab14_presumptions.py) can print the table of
Mohan, Lindsay and Obermarck (R*, 1986) from the kit's own numbers.

Rules:
  * N1 - the coordinator counts what it does itself: each Record effect it writes
    (forced or not, as the core said) and each message it sends that leaves the
    process (a message refused before it left is not counted: it cost nothing).
  * N2 - a branch's messages are counted where they arrive: each answer the
    coordinator gets back from it (a vote, an acknowledgement) is one message the
    branch sent. A call that brought no answer counts nothing for the branch.
  * N3 - a branch's writes are counted from its own SQLite file: each write of a
    branch is one COMMIT with synchronous=FULL (forced), and each leaves one row in
    its replog naming the method and the txid (branch_writes).

Glossary:
  party    "coordinator" or a branch name
  forced   a write that is on disk before the party takes its next step (fsync)
  unforced a write left to the operating system: a crash may lose it
"""

import json
import pathlib
import sqlite3
import threading

COORDINATOR = "coordinator"
FIELDS = ("forced", "unforced", "messages")
TWO_PC_METHODS = ("prepare", "commit", "abort")


class TxnCounters:
    """The counts of one transaction: party -> {forced, unforced, messages}."""

    def __init__(self):
        self._counts = {}
        self._lock = threading.Lock()        # votes and acks arrive on several threads

    def wrote(self, party: str, forced: bool) -> None:
        self._add(party, "forced" if forced else "unforced")

    def sent(self, party: str) -> None:
        self._add(party, "messages")

    def as_dict(self) -> dict:
        """party -> {"forced": n, "unforced": n, "messages": n} (a copy)."""
        with self._lock:
            return {party: dict(counts) for party, counts in self._counts.items()}

    def _add(self, party: str, field: str) -> None:
        with self._lock:
            counts = self._counts.get(party)
            if counts is None:          # not setdefault: it would build a dict every time
                counts = self._counts[party] = dict.fromkeys(FIELDS, 0)
            counts[field] += 1


def branch_writes(db_path, txid: str) -> int:
    """N3: the forced writes a branch made for txid (its prepare, commit and abort
    steps, repeats included), read from the branch's SQLite file."""
    uri = pathlib.Path(db_path).resolve().as_uri() + "?mode=ro"   # '#', '%', C:\ escaped
    conn = sqlite3.connect(uri, uri=True)
    try:
        rows = conn.execute("SELECT op FROM replog").fetchall()
    finally:
        conn.close()
    count = 0
    for (op,) in rows:
        method, args = json.loads(op)
        if method in TWO_PC_METHODS and args and args[0] == txid:
            count += 1
    return count
