"""Counters a server keeps so a lab can watch the cost of a transfer: fsyncs, messages.

Role: cumulative, process-wide totals, shown by ping() ("counters") and by the
shell's `counters` command, which divides them by the transfers made.

Rules:
  * Counters only ever grow while a process runs; they start at 0 with it.
  * Counting is cheap (one lock, one addition) and never changes what a server does.

Glossary:
  fsyncs      COMMITs of a branch's ledger that wrote (group commit shares them) and
              forced writes of the coordinator's recovery log
  rpcs_sent   calls the coordinator made to branches (prepare, commit, abort, ...)
  transfers   transfers between branches the coordinator ran
"""

import threading


class Counters:
    def __init__(self):
        self._lock = threading.Lock()
        self._counts = {}

    def add(self, name: str, n: int = 1) -> None:
        with self._lock:
            self._counts[name] = self._counts.get(name, 0) + n

    def snapshot(self) -> dict:
        with self._lock:
            return dict(self._counts)


COUNTS = Counters()        # this process's
