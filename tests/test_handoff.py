"""The handoffs between threads (bank/handoff.py, H1-H3): a Latch wakes its waiter
whenever it is set, a job's error reaches whoever waits for it, and Workers run jobs
at once up to their limit while reusing the threads they started."""

import threading

import pytest

from bank.handoff import Latch, Workers, run_all
from polling import wait_for


def test_a_latch_wakes_its_waiter_whether_set_before_or_after_the_wait():
    """H1: set() before wait() lets wait() return at once; set() while a thread waits
    wakes it; a second set() is harmless."""
    early = Latch()
    early.set()
    early.set()
    early.wait()                                        # returns: it was set before
    late, woke = Latch(), threading.Event()
    waiter = threading.Thread(target=lambda: (late.wait(), woke.set()))
    waiter.start()
    assert not woke.wait(0.05)                          # still waiting: not set yet
    late.set()
    waiter.join(5)
    assert woke.is_set()


def test_a_jobs_result_and_error_reach_whoever_waits_for_it():
    """H3: wait() returns the job's result, or raises the very exception it raised."""
    workers = Workers(2, "test")
    assert workers.start(lambda a, b: a + b, 2, 3).wait() == 5
    job = workers.start(lambda: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        job.wait()


def test_workers_run_jobs_at_once_up_to_their_limit_and_reuse_their_threads():
    """H2: three jobs that wait for each other all run at once with most=3 (none waits
    for a thread); twenty jobs one after another then run on those same three threads."""
    workers, started, release = Workers(3, "test"), [], threading.Event()

    def blocking():
        started.append(threading.current_thread().name)
        release.wait(10)

    jobs = [workers.start(blocking) for _ in range(3)]
    wait_for(lambda: len(started) == 3, 10, "three jobs running at once", interval=0.01)
    release.set()
    for job in jobs:
        job.wait()
    names = {workers.start(lambda: threading.current_thread().name).wait()
             for _ in range(20)}
    assert names <= set(started) and len(set(started)) == 3


def test_closed_workers_end_their_threads():
    """close() ends every worker thread once its jobs are done, so a server that is
    closed (the tests start many in one process) leaves no thread behind."""
    workers = Workers(4, "closing-test")
    for job in [workers.start(lambda: None) for _ in range(4)]:
        job.wait()
    workers.close()
    wait_for(lambda: not [t for t in threading.enumerate()
                          if t.name.startswith("closing-test-")], 10, "the workers to end",
             interval=0.01)


def test_run_all_keeps_the_order_runs_the_last_item_here_and_waits_for_every_item():
    """H4: run_all returns the results in the items' order, runs the last item on the
    calling thread, and raises an item's error only once every item has finished."""
    workers, here = Workers(4, "run-all-test"), threading.current_thread().name
    assert run_all(workers, lambda n: (n * n, threading.current_thread().name),
                   [1, 2, 3])[-1] == (9, here)
    assert [r[0] for r in run_all(workers, lambda n: (n * n, None), [1, 2, 3])] == [1, 4, 9]
    finished, release = [], threading.Event()

    def item(n):
        if n == 0:
            raise ValueError("item 0 fails at once")
        release.wait(10)                       # the others still run when it fails
        finished.append(n)

    releaser = threading.Timer(0.05, release.set)
    releaser.start()
    with pytest.raises(ValueError):
        run_all(workers, item, [0, 1, 2])
    assert sorted(finished) == [1, 2]           # both had finished before the raise
    releaser.join()
