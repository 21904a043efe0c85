"""Lab 12: group commit and the cost of a forced write.

Goal: measure what the commit point costs. A forced record (commit) returns only
after fsync has put it on the disk; the other records (begin, abort, end) are only
written. When many transfers commit at once, the recovery log lets one fsync make
all of them durable together (group commit), so the cost is shared.
Read first: bank/recovery_log.py (Rules 1, 2 and 5: commit, _sync_to), lab 1 (which
record is forced), README "The recovery log".

Scenario: no servers. The lab drives the coordinator's RecoveryLog itself, in its
folder, and counts every fsync it makes:
  1. The cost of one real fsync on this machine (the folder's disk; on a RAM disk it
     is almost free, on a laptop's SSD often 1-10 ms).
  2. N begin records (not forced): no fsync at all.
  3. N commits one after another: one fsync each.
  4. Commits one after another, then N commits from 8 threads at once, on a simulated
     disk whose fsync takes SLOW_FSYNC_MS and nothing else (so neither this machine's
     disk nor another program using it changes the result): the commits share
     fsyncs; the lab prints commits per fsync and commits per second.

Steps:
  1. Run `python labs/lab12_group_commit.py --step --keep`.
  2. At the first pause, note the cost of one fsync here. Run the lab again with the folder on
     another disk if you have one (set TMPDIR: `TMPDIR=$HOME python labs/...` in bash;
     in PowerShell `$env:TMPDIR=$HOME` first): compare.
  3. Open `FOLDER/logs/recovery.log` after step 2: 200 begin lines, none of them forced.
  4. At the last step, compare the commits per second alone and together; then read
     `_sync_to` in bank/recovery_log.py and explain the "commits per fsync" number (why
     not 8?).

Questions: Why may begin skip the fsync but commit may not? In step 4, a commit
returns only when ITS record is on disk: how can another thread's fsync make it so
(read _sync_to)? What does group commit do to the latency of one transfer, and to
the number of transfers per second? Why is the gain bigger on a slow disk?

Run: python labs/lab12_group_commit.py [--step] [--keep]     Handout: labs/lab12_group_commit.md
"""

import threading
import time

from labkit import expect, lab_folder, passed, show, step

from bank import recovery_log, storage

N = 200
THREADS = 8
SLOW_FSYNC_MS = 4


class CountingFsync:
    """Stands in for storage.fsync, the recovery log's one way to force a write (on
    macOS it calls fcntl F_FULLFSYNC, not os.fsync): counts calls, may add a delay."""

    def __init__(self, real, extra_ms: float = 0):
        self.real, self.extra, self.calls = real, extra_ms / 1000, 0

    def __call__(self, fd):
        self.calls += 1
        if self.real:
            self.real(fd)
        if self.extra:
            time.sleep(self.extra)       # a slower disk, simulated: this is the fault itself


def timed(log, fsync, work) -> tuple:
    """(seconds, fsyncs) that work() took, with `fsync` installed in the recovery log."""
    real, storage.fsync = storage.fsync, fsync
    try:
        started = time.perf_counter()
        work()
        return time.perf_counter() - started, fsync.calls
    finally:
        storage.fsync = real


def begins(log, prefix: str):
    for i in range(N):
        log.begin(f"{prefix}-{i:04d}", {"amount": "1.00"})


def commits_in_threads(log, prefix: str):
    def commit_share(k):
        for i in range(k, N, THREADS):
            log.commit(f"{prefix}-{i:04d}")
    threads = [threading.Thread(target=commit_share, args=(k,)) for k in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def main():
    with lab_folder("lab12") as home:
        log = recovery_log.RecoveryLog(home / "logs" / "recovery.log")
        step("The cost of one real fsync in the lab's folder.")
        probe = home / "probe"
        with open(probe, "wb") as f:
            started = time.perf_counter()
            for _ in range(20):
                f.write(b"x\n")
                f.flush()
                storage.fsync(f.fileno())        # as the log forces a record
            one = (time.perf_counter() - started) / 20
        show(f"one write + fsync: {one * 1000:.2f} ms")

        step(f"{N} begin records (not forced).")
        seconds, syncs = timed(log, CountingFsync(storage.fsync), lambda: begins(log, "T"))
        show(f"{seconds * 1000:.1f} ms in all, {syncs} fsyncs")
        expect(syncs == 0, "begin is written, never forced")

        step(f"{N // 2} commits, one after another.")
        seconds, syncs = timed(log, CountingFsync(storage.fsync),
                               lambda: [log.commit(f"T-{i:04d}") for i in range(N // 2)])
        show(f"{N // 2} commits: {seconds * 1000:.1f} ms, {syncs} fsyncs, "
             f"{seconds / (N // 2) * 1000:.2f} ms per commit")
        expect(syncs == N // 2, "one fsync per commit when nobody commits at the same time")
        sequential = seconds / (N // 2)

        step(f"On a simulated disk whose fsync takes {SLOW_FSYNC_MS} ms: one after another, "
             f"then {THREADS} threads at once.")
        log2 = recovery_log.RecoveryLog(home / "logs" / "slow.log")
        begins(log2, "S")
        alone, alone_syncs = timed(log2, CountingFsync(None, SLOW_FSYNC_MS),
                                   lambda: [log2.commit(f"S-{i:04d}") for i in range(0, N, 4)])
        show(f"{N // 4} commits one after another: {alone_syncs} fsyncs, "
             f"{N // 4 / alone:.0f} commits per second")
        log3 = recovery_log.RecoveryLog(home / "logs" / "group.log")
        begins(log3, "G")
        together, together_syncs = timed(log3, CountingFsync(None, SLOW_FSYNC_MS),
                                         lambda: commits_in_threads(log3, "G"))
        show(f"{N} commits from {THREADS} threads: {together_syncs} fsyncs "
             f"({N / together_syncs:.1f} commits per fsync), "
             f"{N / together:.0f} commits per second")
        expect(together_syncs < N, "concurrent commits shared fsyncs (group commit)")
        show(f"on this machine's disk, one commit alone costs {sequential * 1000:.2f} ms")
    passed(12, "only commit is forced, and concurrent commits share one fsync.")


if __name__ == "__main__":
    main()
