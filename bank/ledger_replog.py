"""A branch's replication log: every change of a ledger, in order, for its replicas.

Role: each write of a ledger appends its call (method and arguments) to the
``replog`` table in the same SQLite transaction; replaying the replog in order on
another database rebuilds the same ledger. This is how replicas copy a primary
(bank/replication.py). It is mixed into bank.ledger.Ledger.

Rules:
  * Changes are applied in replog order; a gap is refused (the replica catches up).
  * Only the calls named in REPLICATED are ever replayed.

Glossary:
  seq     a change's position in the replog; a replica has applied every seq up to its own
"""

import hashlib
import json
import sqlite3

from bank.errors import BankError, FaultCode, RememberedRefusal

REPLICATED = ("open_account", "deposit", "withdraw", "transfer", "prepare", "commit", "abort",
              "peer_outcome", "heuristic")


class Replog:
    """Mixed into Ledger: read the replog, and apply a primary's changes on a replica."""

    # ---- replication: the replog --------------------------------------------------------

    def applied_seq(self) -> int:
        """The last change in this database's history (0 for none)."""
        return self._read().execute("SELECT COALESCE(MAX(seq), 0) FROM replog").fetchone()[0]

    def changes_since(self, seq: int, limit: int = 500) -> list:
        """[(seq, op_json)] after `seq`, oldest first: what a replica still lacks."""
        rows = self._read().execute("SELECT seq, op FROM replog WHERE seq > ? ORDER BY seq "
                                    "LIMIT ?", (seq, limit)).fetchall()
        return [(r["seq"], r["op"]) for r in rows]

    def apply_change(self, seq: int, op_json: str) -> bool:
        """Replay a primary's change `seq` here (replicas only). False if already applied.

        Changes must arrive in order: a gap raises BankError, and the replica catches up.
        A replica has a single writer, the replication stream, which calls this in order.
        """
        try:
            method, args = json.loads(op_json)
        except (TypeError, ValueError):
            method, args = None, None
        if method not in REPLICATED or not isinstance(args, list):
            raise BankError(FaultCode.BAD_INPUT, "That is not a replicated change.")
        applied = self.applied_seq()
        if seq <= applied:
            return False
        if seq != applied + 1:
            raise BankError(FaultCode.BAD_INPUT,
                            f"change {seq} arrived but {applied + 1} is next: catching up.")
        self._replay.seq = seq
        try:
            getattr(self, method)(*args)
        except RememberedRefusal:
            pass                            # the primary refused it too, and remembered that
        except (TypeError, ValueError, sqlite3.Error) as exc:
            raise BankError(FaultCode.BAD_INPUT,
                            f"Change {seq} ({method}) cannot be applied here: {exc}.") from None
        finally:
            self._replay.seq = None
        return True

    def change_hash(self, seq: int) -> str:
        """A fingerprint of change `seq`, to check that two histories agree up to it."""
        row = self._read().execute("SELECT op FROM replog WHERE seq=?", (seq,)).fetchone()
        return hashlib.sha256(row["op"].encode()).hexdigest()[:16] if row else ""

    def reset(self) -> None:
        """Forget everything (a replica whose history diverged copies the primary again)."""
        with self._write() as db:
            for table in ("journal", "requests", "txns", "accounts", "replog"):
                db.execute(f"DELETE FROM {table}")
