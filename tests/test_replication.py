"""Primary-backup replication of a branch, as real processes: design section 9.

Rules checked:
  * a primary answers a write (deposit, withdraw, prepare, commit, abort) only after
    every in-sync replica has it, so a failover after kill -9 keeps every acknowledged
    write, and a yes vote survives the loss of the primary that gave it;
  * transactions in doubt on the old primary are still prepared on the new one and
    finish there with the coordinator's decision; money is conserved;
  * a restarted replica catches up and is in sync again only once it has everything;
  * an out-of-sync replica cannot be promoted (neither by failover nor by promote());
  * an old primary that comes back is fenced (refuses writes, names the new primary)
    and can rejoin as a replica of the new one, its old database kept aside;
  * asynchronous replication (the lab mode) really does lose an acknowledged write;
  * replicas answer reads and refuse writes with NOT_PRIMARY naming the primary.
(Servers that restart, rejoin or lose their primary: tests/test_replication_restarts.py.)

Tests marked xfail(strict=True) show bugs found while writing this file (see their
reasons). Every test gets its own LocalCluster in its own tmp_path, stopped (by the
pids it started) at teardown. Only 127.0.0.1. Waiting is polling with a deadline.
"""

import decimal
import pathlib
import sys
import threading
import time

import pytest

KIT = pathlib.Path(__file__).resolve().parent.parent
if str(KIT) not in sys.path:
    sys.path.insert(0, str(KIT))

from bank.local_cluster import COORDINATOR, LocalCluster, replica_name  # noqa: E402
from bank.errors import BankError, FaultCode                       # noqa: E402
from bank.faults import CRASH_EXIT_CODE                            # noqa: E402
from polling import wait_for                  # noqa: E402

pytestmark = pytest.mark.slow

D = decimal.Decimal
ZERO = D("0")
MUMBAI, DELHI = "Mumbai", "Delhi"
MUMBAI_REPLICA = replica_name(MUMBAI)       # "Mumbai-replica1"
SYNC_DEADLINE = 40.0          # seconds for a replica to be in sync again (a loaded machine)
SETTLE_DEADLINE = 20.0        # seconds for in-doubt transactions to finish
BUG_DEADLINE = 15.0           # how long a test waits for the correct behaviour


# ---- fixtures and helpers --------------------------------------------------------------

@pytest.fixture
def make_bank(tmp_path):
    """Factory: make_bank(branches=("Mumbai",), *extra_branch_args) starts a LocalCluster
    with one replica per branch (in-doubt queries every 0.3 s) and waits until every
    replica is in sync. Every process is ended by its pid at teardown."""
    started = []

    def make(branches=(MUMBAI,), *extra):
        bank = LocalCluster(home=tmp_path / f"bank{len(started)}", branches=branches,
                            replicas=1, branch_args=("--ask-every", "0.3", *extra))
        started.append(bank)
        bank.start()
        for name in branches:
            wait_in_sync(bank, name)
        return bank

    yield make
    for bank in started:
        bank.stop()


def call(bank, member, method, *args, timeout=10):
    """One RPC to a cluster member (a branch, a replica or COORDINATOR)."""
    return bank.client(member, timeout=timeout).call(method, *args)




def branch_row(bank, name) -> dict:
    return next(r for r in call(bank, COORDINATOR, "branches") if r["name"] == name)


def all_replicas_in_sync(bank, name):
    """The coordinator's row for branch `name` if every replica is up, in sync, lag 0."""
    row = branch_row(bank, name)
    ok = row["up"] and row["replicas"] and all(
        r["up"] and r["role"] == "replica" and r["in_sync"] and r["lag"] == 0
        and r["applied"] == row["applied"] for r in row["replicas"])
    return row if ok else None


def wait_in_sync(bank, name, timeout=SYNC_DEADLINE):
    return wait_for(lambda: all_replicas_in_sync(bank, name), timeout,
                    f"every replica of {name} to be in sync with lag 0")


def book(bank, member) -> list:
    """(number, owner, balance, held) of every account of a member: what must match."""
    return [(a["number"], a["owner"], a["balance"], a["held"])
            for a in call(bank, member, "accounts")]


def balance(bank, member, number) -> D:
    return D(call(bank, member, "account", number)["balance"])


def journal(bank, member) -> list:
    rows = call(bank, member, "journal", "", 10_000)
    assert len(rows) < 10_000, "journal longer than one page"
    return rows


def request_ids(bank, member) -> list:
    return [r["request_id"] for r in journal(bank, member) if r["request_id"]]


def total_money(bank, members) -> D:
    return sum((D(a["balance"]) for m in members for a in call(bank, m, "accounts")), ZERO)


def assert_consistent(bank, members) -> None:
    """Nothing held, nothing in doubt, no negative balance, every journal reconciles."""
    for member in members:
        assert call(bank, member, "in_doubt") == [], f"{member} still has txns in doubt"
        for acct in call(bank, member, "accounts"):
            where = f"{member}/{acct['number']}"
            assert D(acct["held"]) == 0, f"{where} still holds {acct['held']}"
            assert D(acct["balance"]) >= 0, f"{where} is negative"
            rows = call(bank, member, "journal", acct["number"], 10_000)
            assert sum((D(r["amount"]) for r in rows), ZERO) == D(acct["balance"]), \
                f"{where}: the journal does not add up to the balance {acct['balance']}"


def fault_code(excinfo) -> FaultCode:
    return excinfo.value.code


def without_replica_of(args: list) -> list:
    """A member's command line minus "--replica-of URL" (start it as a primary)."""
    if "--replica-of" not in args:
        return list(args)
    i = args.index("--replica-of")
    return args[:i] + args[i + 2:]


class Stream:
    """Background clients: bounded streams of writes through the coordinator.

    One thread per list of ops (each cycles through its list). Every write carries a
    request id and is recorded with what the client was told: ACKNOWLEDGED writes are
    deposits/withdrawals that returned an account and transfers told "committed".
    Bounded by a count per thread and a deadline.
    """

    def __init__(self, bank, *workers, max_ops=300, max_seconds=40.0):
        self.bank, self.max_ops = bank, max_ops
        self.deadline = time.monotonic() + max_seconds
        self.client = bank.coordinator(timeout=20)
        self.lock = threading.Lock()
        self.log = []                 # [{"kind", "args", "rid", "ok", "result", "error"}]
        self.stop_event = threading.Event()
        self.threads = [threading.Thread(target=self._run, args=(w, ops), daemon=True,
                                         name=f"stream-{w}") for w, ops in enumerate(workers)]

    def __enter__(self):
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc):
        self.stop()

    def stop(self):
        self.stop_event.set()
        for thread in self.threads:
            thread.join(timeout=60)
            assert not thread.is_alive(), "a write stream did not stop"

    def _run(self, worker, ops):
        i = 0
        while (i < self.max_ops and time.monotonic() < self.deadline
               and not self.stop_event.is_set()):
            kind, *args = ops[i % len(ops)]
            rid = f"w{worker}-{i}-{kind}"
            entry = {"kind": kind, "args": tuple(args), "rid": rid, "ok": False,
                     "result": None, "error": None}
            try:
                entry["result"] = self.client.call(kind, *args, rid)
                entry["ok"] = (kind != "transfer" or
                               entry["result"]["outcome"] == "committed")
            except BankError as exc:
                entry["error"] = exc
                self.stop_event.wait(0.02)           # a client backs off a little
            with self.lock:
                self.log.append(entry)
            i += 1

    def entries(self, kind=None, ok=None) -> list:
        with self.lock:
            return [e for e in self.log if (kind is None or e["kind"] == kind)
                    and (ok is None or e["ok"] == ok)]

    def acknowledged(self) -> int:
        return len(self.entries(ok=True))


# ---- 1. failover under load ----------------------------------------------------------------

def test_the_first_transfer_after_a_start_with_replicas_commits(tmp_path):
    """R8 at the launcher: a primary whose replicas are in its durable in-sync set takes
    writes only once it holds a lease, so LocalCluster.start() of a home that has
    replicas returns only once each branch's primary does (ping's takes_writes): the
    class's first transfer commits, and is not refused with "holds no lease". Rule 4 of
    bank/replication.py: a primary started before its replicas and the coordinator
    holds no lease, so its heartbeats push nothing and it never waits to drop a
    replica that is not up yet (each primary waited DROP_WAIT, 6 s, for the manager)."""
    def cluster():
        return LocalCluster(home=tmp_path / "bank", branches=(MUMBAI, "Delhi"), replicas=1)
    with cluster() as bank:
        for name in (MUMBAI, "Delhi"):
            wait_in_sync(bank, name)
    with cluster() as bank:                  # started again: the in-sync set is on disk
        answer = call(bank, COORDINATOR, "transfer", "Mumbai/1001", "Delhi/1002", "1.00",
                      timeout=30)
        assert answer["outcome"] == "committed", answer
        assert all(call(bank, name, "ping")["takes_writes"] for name in (MUMBAI, "Delhi"))
        assert all(call(bank, name, "ping")["holds_lease"] for name in (MUMBAI, "Delhi"))
        assert not call(bank, MUMBAI_REPLICA, "ping")["takes_writes"]
    for name in (MUMBAI, "Delhi"):
        text = (tmp_path / "bank" / "logs" / f"{name}.log").read_text(encoding="utf-8")
        assert "could not record it out of sync" not in text, name


def test_failover_under_load_keeps_every_acknowledged_write(make_bank):
    """A primary answers a write only after every in-sync replica has it; so after the
    Mumbai primary is killed mid-stream and the coordinator fails over, every
    acknowledged write (deposit/withdrawal that returned, transfer told "committed")
    is on the new primary; transactions in doubt on the old primary are still prepared
    on the new one and then finish with the coordinator's decision; and money is
    conserved: sum of all balances == opening total + deposits - withdrawals."""
    bank = make_bank((MUMBAI, DELHI))
    primaries = (MUMBAI, DELHI)
    opening = total_money(bank, primaries)
    coord = bank.coordinator()
    replica_url = bank.members[MUMBAI_REPLICA].url
    local = [("deposit", "Mumbai/1002", "1.00"),       # Mumbai/1002 only receives deposits
             ("withdraw", "Mumbai/1001", "0.50")]
    transfers = [("transfer", "Mumbai/1001", "Delhi/1001", "2.00"),
                 ("transfer", "Delhi/1002", "Mumbai/1001", "3.00")]
    pinned = {}

    with Stream(bank, local, transfers) as stream:
        wait_for(lambda: stream.acknowledged() >= 24, 20, "24 acknowledged writes")

        # Pin a transaction in doubt at Mumbai: Delhi votes only after 1.5 s, so Mumbai
        # (and, before its yes leaves, its replica) holds it prepared when we kill.
        call(bank, DELHI, "fault", "delay=1.5")
        pin = threading.Thread(target=lambda: pinned.update(
            coord.call("transfer", "Mumbai/1002", "Delhi/1002", "7.00", "pinned")))
        pin.start()
        wait_for(lambda: any(op == {"account": "1002", "delta": "-7.00"}
                             for t in call(bank, MUMBAI_REPLICA, "in_doubt")
                             for op in t["ops"]),
                 10, "the pinned transfer to be prepared on Mumbai's replica")

        bank.kill(MUMBAI)
        # Keep the coordinator away from Mumbai while we look at what the replica holds:
        # no decision can reach it (nor be asked for) until heal.
        call(bank, COORDINATOR, "partition", MUMBAI)
        in_doubt_on_replica = {t["txid"]: t for t in call(bank, MUMBAI_REPLICA, "in_doubt")}
        assert in_doubt_on_replica, "nothing was in doubt at the kill"
        acked_before = stream.entries(ok=True)

        result = call(bank, COORDINATOR, "failover", MUMBAI, timeout=30)
        assert result["primary"] == replica_url and result["epoch"] == 2, result
        assert call(bank, MUMBAI_REPLICA, "ping")["role"] == "primary"

        # Every write acknowledged before the kill is on the new primary.
        new_rids = set(request_ids(bank, MUMBAI_REPLICA))
        for e in acked_before:
            if e["kind"] in ("deposit", "withdraw") and e["args"][0].startswith(MUMBAI):
                assert e["rid"] in new_rids, f"acknowledged {e['kind']} {e['rid']} lost"
            elif e["kind"] == "transfer" and MUMBAI in e["args"][0] + e["args"][1]:
                state = call(bank, MUMBAI_REPLICA, "status", e["result"]["txid"])["state"]
                assert state in ("committed", "prepared"), \
                    f"transfer {e['result']['txid']} told committed is {state} on the new primary"
        acked_deposits = sum(D(e["args"][1]) for e in acked_before
                             if e["kind"] == "deposit")
        assert balance(bank, MUMBAI_REPLICA, "1002") >= D("5000.00") + acked_deposits - D("7.00")

        # In-doubt transactions are still prepared on the new primary, funds held.
        now_in_doubt = {t["txid"]: t for t in call(bank, MUMBAI_REPLICA, "in_doubt")}
        assert set(now_in_doubt) == set(in_doubt_on_replica)
        for txid, txn in now_in_doubt.items():
            assert call(bank, MUMBAI_REPLICA, "status", txid)["state"] == "prepared"
            assert txn["ops"] == in_doubt_on_replica[txid]["ops"]
        assert D(call(bank, MUMBAI_REPLICA, "account", "1002")["held"]) >= D("7.00")

        call(bank, DELHI, "fault", "")
        call(bank, COORDINATOR, "heal", MUMBAI)
        acked_at_heal = stream.acknowledged()
        wait_for(lambda: stream.acknowledged() >= acked_at_heal + 8, 30,
                 "8 more acknowledged writes after the failover")
    pin.join(timeout=30)
    assert pinned, "the pinned transfer never answered"

    # Every transaction finishes: nothing in doubt anywhere, the coordinator is done.
    wait_for(lambda: not any(call(bank, m, "in_doubt") for m in (MUMBAI_REPLICA, DELHI))
             and not call(bank, COORDINATOR, "transactions", 1000, "in-doubt"),
             SETTLE_DEADLINE, "every in-doubt transaction to finish")
    for txid in in_doubt_on_replica:
        decided = call(bank, COORDINATOR, "decision", txid)["decision"]
        assert decided in ("committed", "aborted")
        assert call(bank, MUMBAI_REPLICA, "status", txid)["state"] == decided
        assert call(bank, DELHI, "status", txid)["state"] in (
            (decided,) if decided == "committed" else ("aborted", "unknown"))
    assert pinned["outcome"] == call(bank, COORDINATOR, "decision", pinned["txid"])["decision"]

    # Writes the client got no answer for are retried with the same request id:
    # each then happens exactly once, and every write of the stream is acknowledged.
    for e in stream.entries(ok=False):
        if e["kind"] in ("deposit", "withdraw"):
            e["result"] = coord.call(e["kind"], *e["args"], e["rid"])
            e["ok"] = True
        elif e["error"] is not None:
            e["result"] = coord.call("transfer", *e["args"], e["rid"])
            e["ok"] = e["result"]["outcome"] == "committed"
    assert len(stream.entries(ok=True)) > len(acked_before)
    rids = {MUMBAI_REPLICA: request_ids(bank, MUMBAI_REPLICA), DELHI: request_ids(bank, DELHI)}
    for e in stream.entries():
        if e["kind"] in ("deposit", "withdraw"):
            assert rids[MUMBAI_REPLICA].count(e["rid"]) == 1, f"{e['rid']} not exactly once"
        else:
            txid = e["result"]["txid"]
            states = {m: call(bank, m, "status", txid)["state"] for m in (MUMBAI_REPLICA, DELHI)}
            if e["result"]["outcome"] == "committed":
                assert set(states.values()) == {"committed"}, (txid, states)
            else:
                assert set(states.values()) <= {"aborted", "unknown"}, (txid, states)

    deposits = sum((D(e["args"][1]) for e in stream.entries("deposit", ok=True)), ZERO)
    withdrawals = sum((D(e["args"][1]) for e in stream.entries("withdraw", ok=True)), ZERO)
    pinned_out = D("7.00") if pinned["outcome"] == "committed" else ZERO
    assert balance(bank, MUMBAI_REPLICA, "1002") == D("5000.00") + deposits - pinned_out
    new_primaries = (MUMBAI_REPLICA, DELHI)
    assert total_money(bank, new_primaries) == opening + deposits - withdrawals
    assert_consistent(bank, new_primaries)


# ---- 2. a yes vote survives the loss of its primary ------------------------------------

def test_prepared_txn_survives_the_loss_of_its_primary(make_bank):
    """A prepare reaches the replicas before the vote is yes: when the Mumbai primary
    crashes right after voting, its replica already holds the transaction prepared
    (funds held); after failover the new primary still has it prepared, and it then
    finishes with the coordinator's decision on every branch, money conserved."""
    bank = make_bank((MUMBAI, DELHI))
    primaries = (MUMBAI, DELHI)
    opening = total_money(bank, primaries)
    before = {r["txid"] for r in call(bank, COORDINATOR, "transactions", 100)}
    call(bank, MUMBAI, "fault", "crash-after-vote")
    try:
        told = call(bank, COORDINATOR, "transfer", "Mumbai/1001", "Delhi/1001", "100.00",
                    timeout=30)
        assert told["outcome"] == "aborted", f"the coordinator never heard the yes: {told}"
        txid = told["txid"]
    except BankError:
        txid = None
    assert bank.members[MUMBAI].wait_exit(10) == CRASH_EXIT_CODE
    if txid is None:
        txid = wait_for(lambda: [r["txid"] for r in call(bank, COORDINATOR, "transactions", 100)
                                 if r["txid"] not in before], 10, "the transfer's txid")[0]

    # The yes vote was on the replica before the vote left the primary.
    on_replica = call(bank, MUMBAI_REPLICA, "status", txid)
    assert on_replica["state"] == "prepared", on_replica
    assert on_replica["ops"] == [{"account": "1001", "delta": "-100.00"}]
    assert D(call(bank, MUMBAI_REPLICA, "account", "1001")["held"]) == D("100.00")

    call(bank, COORDINATOR, "partition", MUMBAI)     # hold the decision back a moment
    failover = call(bank, COORDINATOR, "failover", MUMBAI, timeout=30)
    assert failover["primary"] == bank.members[MUMBAI_REPLICA].url
    assert call(bank, MUMBAI_REPLICA, "status", txid)["state"] == "prepared"
    assert [t["txid"] for t in call(bank, MUMBAI_REPLICA, "in_doubt")] == [txid]
    call(bank, COORDINATOR, "heal", MUMBAI)

    decided = call(bank, COORDINATOR, "decision", txid)["decision"]
    assert decided == "aborted"
    wait_for(lambda: call(bank, MUMBAI_REPLICA, "status", txid)["state"] == decided
             and call(bank, COORDINATOR, "transaction", txid)["state"] == decided,
             SETTLE_DEADLINE, f"{txid} to finish {decided} on the new primary")
    assert call(bank, DELHI, "status", txid)["state"] in ("aborted", "unknown")
    assert balance(bank, MUMBAI_REPLICA, "1001") == D("10000.00")
    assert total_money(bank, (MUMBAI_REPLICA, DELHI)) == opening
    assert_consistent(bank, (MUMBAI_REPLICA, DELHI))


# ---- 3. a restarted replica catches up ---------------------------------------------------

def test_replica_restarted_mid_stream_catches_up(make_bank):
    """A replica that was down starts out of sync, pulls what it missed (while writes
    keep coming), and is in sync again only once it has everything: lag 0 and the
    same accounts as the primary."""
    bank = make_bank()
    coord = bank.coordinator()
    bank.kill(MUMBAI_REPLICA)
    for i in range(15):
        coord.call("deposit", "Mumbai/1001", "10.00", f"gap-{i}")
    row = branch_row(bank, MUMBAI)
    assert not row["replicas"][0]["up"]

    ops = [("deposit", "Mumbai/1002", "1.00"), ("withdraw", "Mumbai/1001", "0.25"),
           ("transfer", "Mumbai/1001", "Mumbai/1002", "0.75")]
    with Stream(bank, ops, max_ops=300, max_seconds=20) as stream:
        wait_for(lambda: stream.acknowledged() >= 5, 10, "writes before the restart")
        bank.restart(MUMBAI_REPLICA)
        assert call(bank, MUMBAI_REPLICA, "ping")["role"] == "replica"
        wait_for(lambda: stream.acknowledged() >= 30, 20, "writes during the catch-up")
    assert not stream.entries(ok=False), "a write failed while the replica caught up"
    wait_in_sync(bank, MUMBAI)
    assert call(bank, MUMBAI_REPLICA, "ping")["in_sync"] is True
    assert book(bank, MUMBAI_REPLICA) == book(bank, MUMBAI)
    assert request_ids(bank, MUMBAI_REPLICA) == request_ids(bank, MUMBAI)


# ---- 4. a lagging replica cannot be promoted ------------------------------------------

def test_lagging_replica_cannot_be_promoted(make_bank):
    """Only a member of the recorded in-sync set may be promoted (R5, M5): a replica that
    missed writes while it was down, and cannot reach the (dead) primary to catch up,
    is refused by failover (a Fault naming it and saying it is out of sync); promote()
    called directly is refused with a sentence saying to ask the coordinator."""
    bank = make_bank()
    replica_url = bank.members[MUMBAI_REPLICA].url
    bank.kill(MUMBAI_REPLICA)
    for i in range(5):
        call(bank, COORDINATOR, "deposit", "Mumbai/1001", "1.00", f"lag-{i}")
    bank.kill(MUMBAI)
    bank.restart(MUMBAI_REPLICA)
    ping = call(bank, MUMBAI_REPLICA, "ping")
    assert ping["role"] == "replica" and ping["in_sync"] is False

    with pytest.raises(BankError) as refused:
        call(bank, COORDINATOR, "failover", MUMBAI, timeout=30)
    assert fault_code(refused) == FaultCode.UNAVAILABLE
    assert replica_url in refused.value.message and "out of sync" in refused.value.message

    with pytest.raises(BankError) as refused:
        call(bank, MUMBAI_REPLICA, "promote")
    assert fault_code(refused) == FaultCode.PROTOCOL_VIOLATION
    assert "failover Mumbai" in refused.value.message
    ping = call(bank, MUMBAI_REPLICA, "ping")
    assert ping["role"] == "replica" and ping["epoch"] == 1
    assert balance(bank, MUMBAI_REPLICA, "1001") == D("10000.00")   # it lacks the deposits


# ---- 5. the old primary is fenced, and can rejoin -----------------------------------------

def test_old_primary_restarted_is_fenced_and_can_rejoin(make_bank):
    """A former primary that comes back learns the higher epoch from the replica it knew
    and refuses writes with NOT_PRIMARY naming the new primary. Restarted with
    --replica-of the new primary, it keeps its old database aside and catches up."""
    bank = make_bank()
    old_url = bank.members[MUMBAI].url
    new_url = bank.members[MUMBAI_REPLICA].url
    bank.kill(MUMBAI)
    assert call(bank, COORDINATOR, "failover", MUMBAI, timeout=30)["primary"] == new_url
    call(bank, COORDINATOR, "deposit", "Mumbai/1001", "40.00", "after-failover")

    bank.restart(MUMBAI)
    ping = wait_for(lambda: (lambda p: p if p["role"] == "fenced" else None)(
        call(bank, MUMBAI, "ping")), 10, "the old primary to be fenced")
    assert ping["epoch"] == 2 and ping["primary"] == new_url
    for method, args in (("deposit", ("1001", "5.00")), ("withdraw", ("1001", "5.00")),
                         ("transfer", ("1001", "1002", "5.00")),
                         ("prepare", ("T-fenced", "http://127.0.0.1:9",
                                      [{"account": "1001", "delta": "-5.00"}]))):
        with pytest.raises(BankError) as refused:
            call(bank, MUMBAI, method, *args)
        assert fault_code(refused) == FaultCode.NOT_PRIMARY, (method, refused.value)
        assert new_url in refused.value.message, refused.value.message
    assert balance(bank, MUMBAI, "1001") == D("10000.00")   # its old data, unchanged

    bank.restart(MUMBAI, extra=["--replica-of", new_url])
    assert bank.members[MUMBAI].url == old_url
    kept = list((bank.home / "data").glob("Mumbai.db.before-rejoin-*"))
    assert kept, "the old database was not kept aside"

    def rejoined():
        row = branch_row(bank, MUMBAI)
        return [r for r in row["replicas"] if r["url"] == old_url and r["up"]
                and r["role"] == "replica" and r["in_sync"] and r["lag"] == 0]
    wait_for(rejoined, SYNC_DEADLINE, "the old primary to catch up as a replica")
    assert call(bank, MUMBAI, "ping")["primary"] == new_url
    assert book(bank, MUMBAI) == book(bank, MUMBAI_REPLICA)
    assert balance(bank, MUMBAI, "1001") == D("10040.00")
    call(bank, COORDINATOR, "deposit", "Mumbai/1002", "2.00", "after-rejoin")  # in sync: waits
    assert balance(bank, MUMBAI, "1002") == D("5002.00")


# ---- 6. asynchronous replication loses an acknowledged write -----------------------------

def deposit_and_kill_before_shipping(bank, amount: str) -> tuple:
    """In async mode: right after a heartbeat reached the replica, deposit on the primary
    (acknowledged at once) and kill it; the next heartbeat (>= 1 s later) never comes.
    Returns (request id, the acknowledged account)."""
    for attempt in range(5):
        wait_for(lambda: 0 <= call(bank, MUMBAI_REPLICA, "replication")["follower"]
                 ["silent_for"] <= 0.2, 5, "a heartbeat to have just arrived", interval=0.02)
        t0 = time.monotonic()
        rid = f"async-{attempt}"
        acked = call(bank, MUMBAI, "deposit", "1001", amount, rid)
        if time.monotonic() - t0 < 0.3:
            bank.kill(MUMBAI)
            assert time.monotonic() - t0 < 0.7, "too slow to beat the next heartbeat"
            return rid, acked
    raise AssertionError("could not deposit quickly enough after a heartbeat")


def test_async_replication_loses_an_acknowledged_write(make_bank):
    """With --async-replication the primary answers before its replicas have the change
    (and says so when it starts): a deposit acknowledged just before the primary dies
    is missing on the promoted replica. The lab's claim is real."""
    bank = make_bank((MUMBAI,), "--async-replication")
    out = (bank.home / "logs" / "Mumbai.out").read_text(errors="replace")
    assert "WARNING: asynchronous replication" in out
    assert call(bank, MUMBAI, "replication")["synchronous"] is False

    before = balance(bank, MUMBAI, "1001")
    rid, acked = deposit_and_kill_before_shipping(bank, "123.00")
    lost = D(acked["balance"])
    assert lost > before

    failover = call(bank, COORDINATOR, "failover", MUMBAI, timeout=30)
    assert failover["primary"] == bank.members[MUMBAI_REPLICA].url
    assert rid not in request_ids(bank, MUMBAI_REPLICA), "the deposit was shipped after all"
    assert balance(bank, MUMBAI_REPLICA, "1001") == lost - D("123.00")
    assert balance(bank, MUMBAI_REPLICA, "1001") != lost


# ---- 7. replicas read, and refuse writes ----------------------------------------------

def test_replicas_answer_reads_and_refuse_writes(make_bank):
    """Replicas serve reads (account, accounts, journal) equal to the primary's and
    refuse every write with NOT_PRIMARY naming the primary; nothing changes."""
    bank = make_bank()
    primary_url = bank.members[MUMBAI].url
    coord = bank.coordinator()
    coord.call("deposit", "Mumbai/1001", "25.00", "r1")
    coord.call("withdraw", "Mumbai/1002", "5.00", "r2")
    coord.call("transfer", "Mumbai/1001", "Mumbai/1002", "3.00", "r3")
    wait_in_sync(bank, MUMBAI)

    assert call(bank, MUMBAI_REPLICA, "account", "1001") == call(bank, MUMBAI, "account", "1001")
    assert call(bank, MUMBAI_REPLICA, "accounts") == call(bank, MUMBAI, "accounts")
    keep = ("seq", "account", "kind", "amount", "balance_after", "txid", "request_id")
    strip = lambda rows: [{k: r[k] for k in keep} for r in rows]       # noqa: E731
    assert strip(call(bank, MUMBAI_REPLICA, "journal", "", 100)) == \
        strip(call(bank, MUMBAI, "journal", "", 100))
    assert strip(call(bank, MUMBAI_REPLICA, "journal", "1002", 10)) == \
        strip(call(bank, MUMBAI, "journal", "1002", 10))
    applied = call(bank, MUMBAI_REPLICA, "ping")["applied"]

    writes = (("deposit", ("1001", "5.00")), ("withdraw", ("1001", "5.00")),
              ("transfer", ("1001", "1002", "5.00")), ("open_account", ("Meera Iyer", "10")),
              ("prepare", ("T-rep-1", "http://127.0.0.1:9",
                           [{"account": "1001", "delta": "-5.00"}])),
              ("commit", ("T-rep-1",)), ("abort", ("T-rep-1",)))
    for method, args in writes:
        with pytest.raises(BankError) as refused:
            call(bank, MUMBAI_REPLICA, method, *args)
        assert fault_code(refused) == FaultCode.NOT_PRIMARY, (method, refused.value)
        assert primary_url in refused.value.message, refused.value.message
    assert call(bank, MUMBAI_REPLICA, "ping")["applied"] == applied
    assert call(bank, MUMBAI_REPLICA, "status", "T-rep-1")["state"] == "unknown"
    assert book(bank, MUMBAI_REPLICA) == book(bank, MUMBAI)


# ---- bugs found (strict xfail: each passes once the bug is fixed) ---------------------------

def test_failover_fences_an_old_primary_that_is_still_alive(make_bank):
    """An old primary is fenced by the epoch: if a failover happens while it still runs,
    its next push meets the higher epoch and it stops accepting writes."""
    bank = make_bank()
    new_url = bank.members[MUMBAI_REPLICA].url
    call(bank, COORDINATOR, "failover", MUMBAI, timeout=30)
    # The old primary's next heartbeat reaches the promoted server (about 1 s).
    wait_for(lambda: not call(bank, MUMBAI, "replication")["replicas"][0]["in_sync"]
             or call(bank, MUMBAI, "ping")["role"] != "primary",
             10, "the old primary's push to meet the new epoch")
    ping = call(bank, MUMBAI, "ping")
    try:
        acked = call(bank, MUMBAI, "deposit", "1001", "9.00", "split-brain")
    except BankError as exc:
        acked = exc
    assert ping["role"] == "fenced", f"two primaries: the old one still says {ping}"
    assert isinstance(acked, BankError) and acked.code == FaultCode.NOT_PRIMARY \
        and new_url in acked.message, f"the old primary acknowledged a write: {acked}"
