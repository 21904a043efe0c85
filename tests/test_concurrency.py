"""Many clients at once, and a branch that dies in the middle: the bank stays consistent.

Rules checked (design sections 4 and 5):
  * concurrent 2PC and local transfers never create or destroy money;
  * a branch killed (kill -9) at any moment and restarted finishes every transaction
    it took part in, with no manual step; nothing stays held or in doubt;
  * every journal reconciles with its balance, no balance goes negative;
  * what a client was told is what happened: a transfer told committed is in both
    participants' journals, one told aborted in neither.

The run is random but seeded: the seed is printed (set BANK_TEST_SEED to replay the
same choices; thread timing still varies from run to run).
"""

import collections
import decimal
import os
import pathlib
import random
import sys
import threading
import time

import pytest

KIT = pathlib.Path(__file__).resolve().parent.parent
if str(KIT) not in sys.path:
    sys.path.insert(0, str(KIT))

from bank.local_cluster import COORDINATOR, LocalCluster  # noqa: E402  (needs the kit on sys.path)
from bank.errors import BankError, FaultCode        # noqa: E402
from polling import wait_for                  # noqa: E402

pytestmark = pytest.mark.slow

BRANCHES = ("Mumbai", "Delhi", "Chennai")
ACCOUNTS = ("1001", "1002")
TOTAL = (decimal.Decimal("10000.00") + decimal.Decimal("5000.00")) * len(BRANCHES)
CLIENTS = 8
RUN_SECONDS = 8.0
MAX_OPS_PER_CLIENT = 400          # bounds the run by count as well as by time
KILL_AT, RESTART_AT = 3.0, 4.0    # seconds into the run
SETTLE_DEADLINE = 30.0


@pytest.fixture
def bank(tmp_path):
    """A fresh local cluster on 127.0.0.1 (three preloaded branches and a coordinator),
    ended by pid at teardown."""
    cluster = LocalCluster(home=tmp_path, branches=BRANCHES,
                           branch_args=("--ask-every", "0.3"))
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()


def call(bank, member, method, *args):
    return bank.client(member, timeout=10).call(method, *args)




def random_transfer(rng: random.Random) -> tuple:
    """(src, dst, amount): cross-branch about two times in three, amounts 0.01-400.00."""
    src_branch = rng.choice(BRANCHES)
    if rng.random() < 0.67:
        dst_branch = rng.choice([b for b in BRANCHES if b != src_branch])
        src_no, dst_no = rng.choice(ACCOUNTS), rng.choice(ACCOUNTS)
    else:
        dst_branch = src_branch
        src_no, dst_no = rng.sample(ACCOUNTS, 2)
    cents = rng.randint(1, 400_00)
    return f"{src_branch}/{src_no}", f"{dst_branch}/{dst_no}", f"{cents // 100}.{cents % 100:02d}"


def nothing_in_flight(bank) -> bool:
    """True once no branch has a prepared txn and the coordinator has ended every txn."""
    if any(call(bank, b, "in_doubt") for b in BRANCHES):
        return False
    return call(bank, COORDINATOR, "transactions", 10_000, "in-doubt") == []


def test_concurrent_transfers_with_a_branch_crash_keep_the_bank_consistent(bank):
    """Under 8 concurrent clients and a kill -9 of one branch mid-run (then a restart),
    money is conserved, no balance is negative, every journal reconciles, nothing stays
    held or in doubt, and every outcome a client was told is what the branches did."""
    seed = int(os.environ.get("BANK_TEST_SEED") or random.randrange(2 ** 32))
    print(f"\nconcurrency seed: {seed} (replay with BANK_TEST_SEED={seed})")
    victim = random.Random(seed).choice(BRANCHES)

    told = []                                   # (txid, outcome, src, dst) of 2PC transfers
    counts = collections.Counter()
    unexpected = []
    lock = threading.Lock()
    start = time.monotonic()
    stop_at = start + RUN_SECONDS

    def client_loop(index: int):
        rng = random.Random(f"{seed}-{index}")
        coordinator = bank.coordinator()        # each thread: its own rpc.Client
        for _ in range(MAX_OPS_PER_CLIENT):
            if time.monotonic() >= stop_at:
                break
            src, dst, amount = random_transfer(rng)
            try:
                result = coordinator.call("transfer", src, dst, amount)
            except BankError as exc:
                with lock:
                    if exc.code == FaultCode.UNAVAILABLE:
                        counts["unavailable"] += 1
                    else:
                        unexpected.append((src, dst, amount, exc.code, exc.message))
                continue
            with lock:
                counts[result["outcome"] + (" (local)" if not result["txid"] else "")] += 1
                if result["txid"]:
                    told.append((result["txid"], result["outcome"], src, dst))

    threads = [threading.Thread(target=client_loop, args=(i,), name=f"client-{i}")
               for i in range(CLIENTS)]
    for t in threads:
        t.start()
    # The crash schedule: kill the victim KILL_AT s into the run, restart it at RESTART_AT.
    # (These sleeps pace the load's script; they do not wait for any condition.)
    time.sleep(max(0.0, start + KILL_AT - time.monotonic()))
    bank.kill(victim)
    killed_at = time.monotonic() - start
    time.sleep(max(0.0, start + RESTART_AT - time.monotonic()))
    bank.restart(victim)
    restarted_at = time.monotonic() - start
    for t in threads:
        t.join(RUN_SECONDS + 60)
        assert not t.is_alive(), f"{t.name} is stuck"
    print(f"killed {victim} at {killed_at:.1f} s, restarted at {restarted_at:.1f} s; "
          f"outcomes: {dict(counts)}")

    assert unexpected == [], unexpected
    assert counts["committed"] > 0, counts           # the run did exercise 2PC
    wait_for(lambda: nothing_in_flight(bank), SETTLE_DEADLINE,
             "every transaction to finish on every branch")

    total = decimal.Decimal("0")
    journals = {}
    for branch in BRANCHES:
        assert call(bank, branch, "in_doubt") == []
        for acct in call(bank, branch, "accounts"):
            where = f"{branch}/{acct['number']}"
            assert decimal.Decimal(acct["held"]) == 0, f"{where} still holds {acct['held']}"
            assert decimal.Decimal(acct["balance"]) >= 0, f"{where} is negative"
            rows = call(bank, branch, "journal", acct["number"], 10_000)
            assert len(rows) < 10_000, "journal longer than one page: cannot reconcile"
            journal_total = sum((decimal.Decimal(r["amount"]) for r in rows),
                                decimal.Decimal("0"))
            assert journal_total == decimal.Decimal(acct["balance"]), \
                f"{where}: journal adds up to {journal_total}, balance is {acct['balance']}"
            total += decimal.Decimal(acct["balance"])
        rows = call(bank, branch, "journal", "", 10_000)
        assert len(rows) < 10_000
        journals[branch] = collections.Counter(r["txid"] for r in rows if r["txid"])
    assert total == TOTAL, f"money not conserved: {total} instead of {TOTAL} (seed {seed})"

    for txid, outcome, src, dst in told:
        src_branch, dst_branch = src.split("/")[0], dst.split("/")[0]
        applied = (journals[src_branch][txid], journals[dst_branch][txid])
        expected = (1, 1) if outcome == "committed" else (0, 0)
        assert applied == expected, \
            f"{txid} was told {outcome} but the journals show {applied} (seed {seed})"
