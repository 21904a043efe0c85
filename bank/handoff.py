"""Handing work and wake-ups from one thread to another, cheaply.

Role: the coordinator hands work between threads: a batched message wakes the
caller waiting for its answer, a line's posted batch goes to that line's carriers,
the last answer of a round wakes the driver (a Countdown), and its pings of every
branch and its recovery passes' decisions go to worker threads. Some of these happen
several times per transfer, so they are made of the cheapest thing Python has: a
plain Lock. (A round's own messages are not handed off: one thread sends them and
reads their answers, bank/twopc_rounds.py D2. A branch hands nothing off: it
carries out a batch on the thread that received it, B4.)

Rules:
  * H1 - a Latch is a one-shot signal for one waiter: wait() returns once set() was
    called, before or after. It is one Lock, held from birth and released by set(),
    which the waiter then takes. (threading.Event is a Condition: about ten
    Python-level steps and several futex calls per wake-up. With ThreadPoolExecutor's
    Future and idle Semaphore, a fifth of the coordinator's time under load was in
    them; these Locks cut the CPU of a transfer by about 8 %, all processes; issue 13.)
  * H2 - Workers start threads as they are needed, up to `most`, and keep them: a
    job never waits for a thread while fewer than `most` are busy.
  * H3 - a job's exception is not lost: it is raised again in whoever waits for it.
  * H4 - run_all runs a function on several items at once: all but the last on
    workers, the last on the calling thread, which would otherwise only wait (one
    handoff fewer); it returns when all are done.
  * H5 - a Countdown calls its function once, when the last of its shares is done:
    the owner's own share, and one per answer still out (answers that ride a batch
    arrive on other threads, bank/batching.py B5).

Glossary:
  job     one function call handed to a worker; wait() returns its result
  idle    a worker that finished its job and waits for the next
"""

import queue
import threading


class Latch:
    """A one-shot signal for one waiter (H1): wait() returns once set() was called."""

    __slots__ = ("_lock",)

    def __init__(self):
        self._lock = threading.Lock()
        self._lock.acquire()             # held until set()

    def set(self) -> None:
        try:
            self._lock.release()
        except RuntimeError:             # set already: once is enough
            pass

    def wait(self) -> None:
        self._lock.acquire()             # at once if set, else when set; one waiter only


class Countdown:
    """Calls at_zero() once every share is done (H5): one share for its owner from the
    start, one more for each add(). The answers of a 2PC round arrive on several
    threads; whichever takes in the last one calls at_zero (it wakes the waiter, or
    lets go of a lock)."""

    __slots__ = ("_lock", "_left", "_at_zero")

    def __init__(self, at_zero):
        self._lock = threading.Lock()
        self._left, self._at_zero = 1, at_zero

    def add(self) -> None:
        with self._lock:
            self._left += 1

    def done(self) -> None:
        with self._lock:
            self._left -= 1
            last = self._left == 0
        if last:
            self._at_zero()


class Job:
    """One call handed to a worker; wait() returns its result or raises its error (H3)."""

    __slots__ = ("fn", "args", "done", "result", "error")

    def __init__(self, fn, args):
        self.fn, self.args, self.done = fn, args, Latch()
        self.result = self.error = None

    def run(self) -> None:
        try:
            self.result = self.fn(*self.args)
        except BaseException as exc:      # noqa: BLE001 - raised again in wait()
            self.error = exc
        finally:
            self.done.set()

    def wait(self):
        self.done.wait()
        if self.error is not None:
            raise self.error
        return self.result


class Workers:
    """Threads that run the jobs handed to them (H2)."""

    def __init__(self, most: int, name: str):
        self.most, self.name = most, name
        self._jobs = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._idle = 0                   # workers free for a job not yet claimed
        self._threads = 0

    def start(self, fn, *args) -> Job:
        """Hand fn(*args) to a worker; the returned Job waits for it."""
        job = Job(fn, args)
        with self._lock:
            if self._idle:
                self._idle -= 1          # an idle worker will take it
            elif self._threads < self.most:
                self._threads += 1
                threading.Thread(target=self._work, daemon=True,
                                 name=f"{self.name}-{self._threads}").start()
        self._jobs.put(job)
        return job

    def close(self) -> None:
        """End every worker thread once the jobs handed before are done (a job handed
        later starts new ones)."""
        with self._lock:
            started, self._threads, self._idle = self._threads, 0, 0
        for _ in range(started):
            self._jobs.put(None)

    def _work(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:                  # close()
                return
            job.run()
            with self._lock:
                self._idle += 1


def run_all(workers: Workers, fn, items) -> list:
    """fn(item) for every item at once; their results in order once all are done (H4).
    Every item finishes before an error is raised: the last item's own, else the first
    of the others' (H3)."""
    items = list(items)
    jobs = [workers.start(fn, item) for item in items[:-1]]
    try:
        last = [fn(items[-1])] if items else []
    finally:
        for job in jobs:
            job.done.wait()
    for job in jobs:
        if job.error is not None:
            raise job.error
    return [job.result for job in jobs] + last
