"""Group commit: concurrent writes of one branch share a single COMMIT (one fsync).

Role: the layer under Ledger._write(). Without it every ledger step is its own SQLite
transaction and pays its own fsync while the other writers queue behind it. With it,
the steps that queue up while one COMMIT is on its way to the disk run one after the
other in ONE SQLite transaction, each inside its own SAVEPOINT, and the last of them
commits for all. A student may skip this file: read it as "BEGIN; the step; COMMIT".

Rules:
  * G1 - durable before visible: a step returns to its caller only after the COMMIT
    of its group has reached the disk (synchronous=FULL). Nobody is told anything
    before that.
  * G2 - each step is its own: a step that raises is undone alone (ROLLBACK TO its
    savepoint); the other steps of the group commit as if it had never run. So one
    transfer's "no" vote, refusal or error never becomes another's.
  * G3 - the last in line commits: a step closes the group (COMMIT) when no other
    writer is queued behind it, or when the group has MAX_STEPS steps. So a group is
    never left open with nobody to close it, and a lone writer commits at once.
  * G4 - a COMMIT the disk refuses fails every step of that group and keeps none of
    them (SQLite rolls the whole transaction back): each caller hears that nothing
    was changed, which is true.

Glossary:
  step       one ledger operation: a deposit, a prepare, a commit...
  group      the steps that share one SQLite transaction and one COMMIT
  savepoint  a named point inside a transaction that can be rolled back to alone
"""

import contextlib
import sqlite3
import threading

MAX_STEPS = 64        # a group never grows past this: bounds the wait of its first step


class _Group:
    """The steps sharing one open SQLite transaction; `durable` is set after its COMMIT."""

    def __init__(self):
        self.steps = 0
        self.durable = threading.Event()
        self.error = None         # the COMMIT's failure (G4), if it failed


class GroupCommit:
    """One SQLite writer connection whose concurrent steps share COMMITs (G1-G4)."""

    def __init__(self, conn: sqlite3.Connection, max_steps: int = MAX_STEPS):
        self.conn, self.max_steps = conn, max_steps
        self._lock = threading.Lock()      # the connection: one step at a time
        self._queue = threading.Lock()     # guards _queued
        self._queued = 0                   # writers waiting for _lock right now
        self._group = None                 # the open group, if any
        self.commits = 0                   # COMMITs that wrote something: fsyncs
        self.steps = 0                     # steps that were kept

    @contextlib.contextmanager
    def step(self):
        """Run the with-block as one step; return once its group is durable (G1).

        The block's own exception comes out unchanged, with its step undone (G2).
        """
        with self._queue:
            self._queued += 1
        self._lock.acquire()
        with self._queue:
            self._queued -= 1
        try:
            group = self._join()
            try:
                self.conn.execute("SAVEPOINT step")
                yield self.conn
                self.conn.execute("RELEASE step")
                group.steps += 1
            except BaseException:
                self._undo_step(group)                  # G2: this step alone
                raise
            finally:
                self._close_if_last(group)              # G3
        finally:
            self._lock.release()
        group.durable.wait()                            # G1: only now may we answer
        if group.error is not None:                     # G4
            raise sqlite3.OperationalError(str(group.error))

    def _join(self) -> _Group:
        if self._group is None:
            self.conn.execute("BEGIN IMMEDIATE")
            self._group = _Group()
        return self._group

    def _undo_step(self, group: _Group) -> None:
        try:
            self.conn.execute("ROLLBACK TO step")
            self.conn.execute("RELEASE step")
        except sqlite3.Error as exc:          # the disk again: nothing of the group stays
            self._end(group, exc)

    def _close_if_last(self, group: _Group, now: bool = False) -> None:
        """COMMIT for the whole group, unless someone queued behind us will (G3)."""
        if self._group is not group:
            return                                      # already ended (G4)
        with self._queue:
            someone_next = self._queued > 0
        if someone_next and group.steps < self.max_steps and not now:
            return
        try:
            self.conn.execute("COMMIT")                 # durable here (synchronous=FULL)
            self.commits += 1 if group.steps else 0
            self.steps += group.steps
            self._end(group, None)
        except sqlite3.Error as exc:
            self._end(group, exc)

    def _end(self, group: _Group, error) -> None:
        """The group is over: committed (error None) or rolled back entirely (G4)."""
        if error is not None and self.conn.in_transaction:
            try:
                self.conn.execute("ROLLBACK")
            except sqlite3.Error:
                pass                            # SQLite undoes it from its WAL, as after a crash
        self._group, group.error = None, error
        group.durable.set()

    def close(self) -> None:
        """Commit what is open, then close the connection."""
        with self._lock:
            if self._group is not None:
                self._close_if_last(self._group, now=True)
            self.conn.close()

    def counters(self) -> dict:
        return {"fsyncs": self.commits, "steps": self.steps}
