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
  * G5 - a held group: a thread that carries several steps (a batch, bank/batching.py
    B4) holds the group open while it runs them one after the other; its steps
    return before the COMMIT, and nobody else closes the group meanwhile. Letting go
    closes it as G3 would and waits for the disk, so the holder still answers none
    of its steps before they are durable (G1); a failed COMMIT fails them all (G4),
    and so does any step after one whose group already failed (nothing was kept).

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
        self.twopc = False        # has a kept step of a 2PC message (for the counters)
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
        self.twopc_commits = 0             # COMMITs with a 2PC step among them
        self._holding = threading.Lock()   # taken by the holder for its whole batch
        self._holder = None                # the thread holding the group open (G5)
        self._held = []                    # the groups its steps joined

    @contextlib.contextmanager
    def step(self, twopc: bool = False):
        """Run the with-block as one step; return once its group is durable (G1).
        twopc: the step carries out a 2PC message (only counted: bank/counters.py).

        The block's own exception comes out unchanged, with its step undone (G2).
        A step of the thread holding the group returns at once: it waits in hold (G5).
        """
        holding = self._holder is threading.current_thread()
        if holding:
            self._refuse_after_failure()
        with self._queue:
            self._queued += 1
        self._lock.acquire()
        with self._queue:
            self._queued -= 1
        try:
            group = self._join()
            if holding and group not in self._held:
                self._held.append(group)
            try:
                self.conn.execute("SAVEPOINT step")
                yield self.conn
                self.conn.execute("RELEASE step")
                group.steps += 1
                group.twopc = group.twopc or twopc
            except BaseException:
                self._undo_step(group)                  # G2: this step alone
                raise
            finally:
                self._close_if_last(group)              # G3
        finally:
            self._lock.release()
        if holding:
            return                                      # G5: the holder waits for it
        group.durable.wait()                            # G1: only now may we answer
        if group.error is not None:                     # G4
            raise sqlite3.OperationalError(str(group.error))

    @contextlib.contextmanager
    def hold(self):
        """Hold the group open while this thread runs several steps (G5); on leaving,
        close it and return once it is durable, or raise if any of its groups failed."""
        with self._holding:                             # one holder at a time
            self._holder, self._held = threading.current_thread(), []
            try:
                yield
            finally:
                with self._lock:
                    self._holder = None
                    if self._group is not None:
                        self._close_if_last(self._group)   # G3: or whoever is queued
            for group in self._held:
                group.durable.wait()                    # G1 for every step it ran
            self._refuse_after_failure()

    def _refuse_after_failure(self) -> None:
        """G5: once a held group failed (G4), its holder's steps fail too."""
        failed = next((g.error for g in self._held if g.error is not None), None)
        if failed is not None:
            raise sqlite3.OperationalError(str(failed))

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
        if not now:
            if self._holder is not None:
                return                                  # G5: its holder closes it
            if someone_next and group.steps < self.max_steps:
                return
        try:
            self.conn.execute("COMMIT")                 # durable here (synchronous=FULL)
            self.commits += 1 if group.steps else 0
            self.twopc_commits += 1 if group.twopc else 0
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
        return {"fsyncs": self.commits, "steps": self.steps,
                "twopc_fsyncs": self.twopc_commits}
