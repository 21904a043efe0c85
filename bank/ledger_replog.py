"""A branch's replication log: every change of a ledger, in order, for its replicas.

Role: each write of a ledger appends its call (method and arguments) to the
``replog`` table in the same SQLite transaction; replaying the replog in order on
another database rebuilds the same ledger. This is how replicas copy a primary
(bank/replication.py). It is mixed into bank.ledger.Ledger.

Rules:
  * Changes are applied in replog order; a gap is refused (the replica catches up).
  * Only the calls named in REPLICATED are ever replayed.
  * Two histories are compared by a fingerprint of every change up to a point
    (history_hash), never by the last change alone.

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

    def apply_changes(self, changes) -> int:
        """Replay a primary's changes [(seq, change), ...] here, in order, in one COMMIT
        (replicas only); those already applied are skipped. Returns how many were new.
        If one fails, it is rolled back alone and raises: the changes before it stay.

        Changes must follow on from this history: a gap raises BankError before
        anything is applied, and the replica catches up. A replica has a single
        writer, the replication stream, so the history read at the start stays ours.
        """
        applied = self.applied_seq()
        fresh = [(seq, op) for seq, op in changes if seq > applied]
        for expected, (seq, _) in enumerate(fresh, start=applied + 1):
            if seq != expected:
                raise BankError(FaultCode.BAD_INPUT,
                                f"change {seq} arrived but {expected} is next: catching up.")
        with self.one_commit():               # one fsync for the whole push
            for seq, op in fresh:
                self._apply_change(seq, op)
        return len(fresh)

    def _apply_change(self, seq: int, op_json: str) -> None:
        """Replay change `seq` (the next one) as the call that made it on the primary."""
        try:
            method, args = json.loads(op_json)
        except (TypeError, ValueError):
            method, args = None, None
        if method not in REPLICATED or not isinstance(args, list):
            raise BankError(FaultCode.BAD_INPUT, "That is not a replicated change.")
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

    def history_hash(self, seq: int) -> str:
        """A fingerprint of this history up to change `seq`: every change from the first,
        in order, so two histories get the same one only if they agree all the way
        (the last change alone could match after an earlier one differed). "" if this
        database lacks change `seq`.

        The digest reached is kept (committed changes never change; reset() forgets it),
        so a replica attaching again costs only the changes since the last time.
        """
        with self._history_lock:
            done, digest = self._history
            if seq < done:                           # an earlier point: count again
                done, digest = 0, hashlib.sha256()
            digest = digest.copy()
            for row in self._read().execute("SELECT seq, op FROM replog WHERE seq > ? AND "
                                            "seq <= ? ORDER BY seq", (done, seq)):
                if row["seq"] != done + 1:
                    return ""                        # a gap: not a history we can compare
                digest.update(row["op"].encode() + b"\n")
                done = row["seq"]
            if done != seq:
                return ""
            if seq >= self._history[0]:     # kept only forward: a replica that lags
                self._history = (done, digest)   # does not cost the next one a recount
            return digest.hexdigest()[:16]

    def reset(self) -> None:
        """Forget everything (a replica whose history diverged copies the primary again)."""
        with self._history_lock:        # the old history's fingerprint goes with it
            with self._write() as db:
                for table in ("journal", "requests", "txns", "accounts", "replog"):
                    db.execute(f"DELETE FROM {table}")
                db.execute("DELETE FROM sqlite_sequence")   # rows numbered from 1 again,
            self._history = (0, hashlib.sha256())           # as the primary's are
