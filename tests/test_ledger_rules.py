"""The participant's ledger rules, on a real SQLite file and with no network.

Rules checked (design section 4):
  * balance >= 0 and 0 <= held <= balance, always (CHECK constraints, too);
  * the journal of every account adds up to its balance;
  * held is exactly the sum of the debits of the prepared transactions;
  * a committed transaction's ops appear in the journal exactly once, others never;
  * prepare holds funds or votes no; commit of an unknown/aborted txid, abort of a
    committed one and a prepare reusing a known txid for other ops (P7) are protocol
    violations that change nothing;
  * a request_id makes a local operation apply at most once, and its first outcome,
    a refusal for lack of funds included, is its only outcome.
"""

import collections
import json
import pathlib
import sqlite3
import tempfile

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from bank.errors import BankError, FaultCode
from bank.ledger import Ledger
from bank.money import format_amount
from bank.core.messages import TxState, Vote

BRANCH = "Mumbai"
COORD = "http://127.0.0.1:1"          # only stored; the ledger never calls it
OPENING = {"1001": 100_00, "1002": 20_00, "1003": 0}


# ---- helpers ---------------------------------------------------------------------------

def open_ledger(path) -> Ledger:
    """A ledger with the accounts of OPENING."""
    ledger = Ledger(path, BRANCH)
    for number, balance in OPENING.items():
        ledger.open_account(f"Owner {number}", balance, number)
    return ledger


def raw_state(conn: sqlite3.Connection, *, with_replog=False) -> dict:
    """Everything the ledger stores, straight from SQLite (to prove 'nothing changed').

    with_replog also compares the replication log (a refused step must not add to it;
    a harmless retry may).
    """
    tables = ["accounts", "txns", "journal", "requests"]
    if with_replog and conn.execute("SELECT 1 FROM sqlite_master WHERE name='replog'"
                                    ).fetchone():
        tables.append("replog")
    return {table: conn.execute(f"SELECT * FROM {table} ORDER BY 1").fetchall()
            for table in tables}


def inspector(path) -> sqlite3.Connection:
    """A separate read-only connection to the ledger's file."""
    return sqlite3.connect(f"file:{path}?mode=ro", uri=True, isolation_level=None)


def refused(conn, code: FaultCode, call, *args):
    """Assert that call(*args) raises BankError(code) and leaves the database untouched."""
    before = raw_state(conn, with_replog=True)
    with pytest.raises(BankError) as info:
        call(*args)
    assert info.value.code is code, info.value.message
    assert raw_state(conn, with_replog=True) == before, "a refused step changed the database"
    return info.value


def debits(ops) -> collections.Counter:
    """{account: minor units reserved} for a list of (account, delta) ops."""
    held = collections.Counter()
    for number, delta in ops:
        if delta < 0:
            held[number] += -delta
    return held


# ---- the random-sequence property ------------------------------------------------------

ACCOUNTS = tuple(OPENING)
GHOST = "9999"                                       # an account that does not exist
TXIDS = tuple(f"T{i}" for i in range(6))             # few, so steps hit every state
REQUEST_IDS = ("", "", "", "r1", "r2")
amounts = st.integers(min_value=1, max_value=150_00)
op_accounts = st.sampled_from(ACCOUNTS * 3 + (GHOST,))
ops_lists = st.lists(st.tuples(op_accounts,
                               st.integers(min_value=-120_00, max_value=120_00).filter(bool)),
                     min_size=0, max_size=3)


class LedgerMachine(RuleBasedStateMachine):
    """Random deposits, withdrawals, local transfers and 2PC steps against a model.

    The model is a few dicts; after every step the ledger must agree with it and keep
    every invariant. A failing sequence is printed by hypothesis and replays exactly.
    """

    def __init__(self):
        super().__init__()
        self._dir = tempfile.TemporaryDirectory(prefix="ledger-", ignore_cleanup_errors=True)
        self.path = pathlib.Path(self._dir.name) / "Mumbai.db"
        self.ledger = open_ledger(self.path)
        self.conn = inspector(self.path)
        self.balance = dict(OPENING)
        self.held = dict.fromkeys(ACCOUNTS, 0)
        self.txns = {}                   # txid -> (TxState, ops)
        self.requests = {}               # request_id -> fingerprint
        self.refused_ids = set()         # request ids whose first outcome was a refusal

    def teardown(self):
        self.conn.close()
        self.ledger.close()
        self._dir.cleanup()

    def available(self, number):
        return self.balance[number] - self.held[number]

    def state(self, txid) -> TxState:
        return self.txns.get(txid, (TxState.UNKNOWN, []))[0]

    # ---- local operations (one SQLite transaction each, request ids apply once) ----

    def local(self, fingerprint, request_id, call, changes, need=None):
        """Run a local operation; the model predicts refusal, replay or effect."""
        if request_id in self.requests:
            if self.requests[request_id] != fingerprint:
                refused(self.conn, FaultCode.BAD_INPUT, call)
                return
            before = raw_state(self.conn)
            if request_id in self.refused_ids:       # a retry: the first refusal again
                with pytest.raises(BankError) as info:
                    call()
                assert info.value.code is FaultCode.INSUFFICIENT_FUNDS
            else:
                call()                               # a retry: the first result again
            assert raw_state(self.conn) == before, "a replayed request applied twice"
            return
        if need and self.available(need[0]) < need[1]:
            if not request_id:
                refused(self.conn, FaultCode.INSUFFICIENT_FUNDS, call)
                return
            before = raw_state(self.conn)            # the refusal is remembered for its
            with pytest.raises(BankError) as info:   # id; no money or journal row moves
                call()
            assert info.value.code is FaultCode.INSUFFICIENT_FUNDS
            after = raw_state(self.conn)
            assert {k: v for k, v in after.items() if k != "requests"} == \
                {k: v for k, v in before.items() if k != "requests"}
            self.requests[request_id] = fingerprint
            self.refused_ids.add(request_id)
            return
        call()
        for number, delta in changes.items():
            self.balance[number] += delta
        if request_id:
            self.requests[request_id] = fingerprint

    @rule(number=st.sampled_from(ACCOUNTS), amount=amounts,
          request_id=st.sampled_from(REQUEST_IDS))
    def deposit(self, number, amount, request_id):
        self.local(("deposit", number, amount), request_id,
                   lambda: self.ledger.deposit(number, amount, request_id), {number: amount})

    @rule(number=st.sampled_from(ACCOUNTS), amount=amounts,
          request_id=st.sampled_from(REQUEST_IDS))
    def withdraw(self, number, amount, request_id):
        self.local(("withdraw", number, amount), request_id,
                   lambda: self.ledger.withdraw(number, amount, request_id),
                   {number: -amount}, need=(number, amount))

    @rule(src=st.sampled_from(ACCOUNTS), dst=st.sampled_from(ACCOUNTS), amount=amounts,
          request_id=st.sampled_from(REQUEST_IDS))
    def transfer(self, src, dst, amount, request_id):
        call = lambda: self.ledger.transfer(src, dst, amount, request_id)  # noqa: E731
        if src == dst:
            refused(self.conn, FaultCode.BAD_INPUT, call)
            return
        self.local(("transfer", src, dst, amount), request_id, call,
                   {src: -amount, dst: amount}, need=(src, amount))

    # ---- 2PC participant steps ----------------------------------------------------

    @rule(txid=st.sampled_from(TXIDS), ops=ops_lists,
          refuse=st.sampled_from(("", "", "", "fault injected: vote-no")))
    def prepare(self, txid, ops, refuse):
        state, recorded = self.txns.get(txid, (TxState.UNKNOWN, []))
        if recorded and sorted(map(tuple, ops)) != sorted(map(tuple, recorded)):
            refused(self.conn, FaultCode.PROTOCOL_VIOLATION,   # P7: a txid reused for
                    self.ledger.prepare, txid, COORD, ops, refuse)   # other ops
            return
        before = raw_state(self.conn)
        vote, reason = self.ledger.prepare(txid, COORD, ops, refuse)
        if state is not TxState.UNKNOWN:             # known txid: the recorded vote again
            expected = Vote.YES if state in (TxState.PREPARED, TxState.COMMITTED) else Vote.NO
            assert vote is expected
            assert raw_state(self.conn) == before, "a repeated prepare changed something"
            return
        hold = debits(ops)
        ok = (ops and not refuse and all(n != GHOST for n, _ in ops)
              and all(self.available(n) >= amount for n, amount in hold.items()))
        if ok:
            assert (vote, reason) == (Vote.YES, "")
            for number, amount in hold.items():
                self.held[number] += amount
            self.txns[txid] = (TxState.PREPARED, ops)
        else:
            assert vote is Vote.NO and reason
            self.txns[txid] = (TxState.ABORTED, ops)

    @rule(txid=st.sampled_from(TXIDS))
    def commit(self, txid):
        state = self.state(txid)
        if state in (TxState.UNKNOWN, TxState.ABORTED):
            refused(self.conn, FaultCode.PROTOCOL_VIOLATION, self.ledger.commit, txid)
            return
        assert self.ledger.commit(txid).state is TxState.COMMITTED
        if state is TxState.PREPARED:
            ops = self.txns[txid][1]
            for number, amount in debits(ops).items():
                self.held[number] -= amount
            for number, delta in ops:
                self.balance[number] += delta
            self.txns[txid] = (TxState.COMMITTED, ops)

    @rule(txid=st.sampled_from(TXIDS))
    def abort(self, txid):
        state = self.state(txid)
        if state is TxState.COMMITTED:
            refused(self.conn, FaultCode.PROTOCOL_VIOLATION, self.ledger.abort, txid)
            return
        assert self.ledger.abort(txid).state is TxState.ABORTED
        if state is TxState.PREPARED:
            for number, amount in debits(self.txns[txid][1]).items():
                self.held[number] -= amount
        if state is not TxState.ABORTED:
            self.txns[txid] = (TxState.ABORTED, self.txns.get(txid, (None, []))[1])

    @rule()
    def reopen(self):
        """Close and reopen the database: every state is durable (nothing lives in memory)."""
        self.conn.close()
        self.ledger.close()
        self.ledger = Ledger(self.path, BRANCH)
        self.conn = inspector(self.path)

    # ---- invariants: checked after every step ------------------------------------

    @invariant()
    def money_rules_hold(self):
        for number, balance, held in self.conn.execute(
                "SELECT number, balance, held FROM accounts"):
            assert balance >= 0 and 0 <= held <= balance, (number, balance, held)

    @invariant()
    def journal_reconciles(self):
        assert self.ledger.reconcile() == []

    @invariant()
    def held_is_sum_of_prepared_debits(self):
        expected = collections.Counter()
        for (ops_json,) in self.conn.execute("SELECT ops FROM txns WHERE state='prepared'"):
            expected += debits((op["account"], op["delta"]) for op in json.loads(ops_json))
        for number, held in self.conn.execute("SELECT number, held FROM accounts"):
            assert held == expected[number], (number, held, expected[number])

    @invariant()
    def committed_ops_journaled_exactly_once(self):
        rows = self.conn.execute("SELECT txid, account, amount FROM journal WHERE txid != ''")
        journaled = collections.defaultdict(collections.Counter)
        for txid, number, amount in rows:
            journaled[txid][(number, amount)] += 1
        for txid, state in self.conn.execute("SELECT txid, state FROM txns"):
            ops = self.txns[txid][1]
            if state == TxState.COMMITTED.value:
                assert journaled.pop(txid, None) == collections.Counter(ops), txid
            else:
                assert txid not in journaled, f"{txid} is {state} but has journal rows"
        assert not journaled, f"journal rows for txids never recorded: {list(journaled)}"

    @invariant()
    def ledger_agrees_with_model(self):
        for acct in self.ledger.accounts():
            number = acct["number"]
            assert acct["balance"] == format_amount(self.balance[number]), number
            assert acct["held"] == format_amount(self.held[number]), number
        for txid in TXIDS:
            assert self.ledger.txn_state(txid) is self.state(txid), txid
        assert {t["txid"] for t in self.ledger.in_doubt()} == \
            {t for t, (s, _) in self.txns.items() if s is TxState.PREPARED}


LedgerMachine.TestCase.settings = settings(max_examples=60, stateful_step_count=30,
                                           deadline=None)
test_ledger_random_sequences = LedgerMachine.TestCase


# ---- explicit rules --------------------------------------------------------------------

@pytest.fixture
def ledger(tmp_path):
    """A fresh ledger on a real SQLite file: 1001 = 100.00, 1002 = 20.00, 1003 = 0."""
    ledger = open_ledger(tmp_path / "Mumbai.db")
    yield ledger
    ledger.close()


@pytest.fixture
def db(ledger):
    """A separate read-only connection to the ledger's file."""
    conn = inspector(ledger.path)
    yield conn
    conn.close()


def balance(ledger, number):
    acct = ledger.account(number)
    return acct["balance"], acct["held"]


@pytest.mark.parametrize("txid, setup", [("T-unknown", None), ("T-aborted", "abort"),
                                         ("T-voted-no", "prepare-no")])
def test_commit_of_unknown_or_aborted_txn_is_a_protocol_violation(ledger, db, txid, setup):
    """Committing a txid that is unknown or aborted here is refused (409), changes nothing."""
    if setup == "abort":
        ledger.prepare(txid, COORD, [("1001", -10_00)])
        ledger.abort(txid)
    elif setup == "prepare-no":
        assert ledger.prepare(txid, COORD, [("1001", -500_00)])[0] is Vote.NO
    error = refused(db, FaultCode.PROTOCOL_VIOLATION, ledger.commit, txid)
    assert txid in error.message and "\n" not in error.message


@pytest.mark.parametrize("then_commit", [False, True])
def test_a_prepare_reusing_a_txid_for_other_ops_is_refused(ledger, db, then_commit):
    """P7 (two transactions must never share a txid, D7): a second prepare under a
    txid this branch knows, for other ops, is refused (409) in one sentence and holds,
    applies and records nothing; the first transaction is unchanged."""
    ledger.prepare("T1", COORD, [("1001", -10_00), ("1002", 10_00)])
    if then_commit:
        ledger.commit("T1")
    state = ledger.txn_state("T1")
    error = refused(db, FaultCode.PROTOCOL_VIOLATION, ledger.prepare, "T1", COORD,
                    [("1001", -30_00), ("1003", 30_00)])
    assert "T1" in error.message and "other operations" in error.message, error.message
    assert ledger.txn_state("T1") is state
    assert balance(ledger, "1003") == ("0.00", "0.00")


def test_abort_of_committed_txn_is_refused(ledger, db):
    """Once committed, a txn can never be aborted: abort is refused (409), changes nothing."""
    ledger.prepare("T1", COORD, [("1001", -10_00), ("1002", 10_00)])
    ledger.commit("T1")
    refused(db, FaultCode.PROTOCOL_VIOLATION, ledger.abort, "T1")
    assert ledger.txn_state("T1") is TxState.COMMITTED
    assert balance(ledger, "1001") == ("90.00", "0.00")


def test_abort_of_unknown_txn_records_aborted_so_a_late_prepare_votes_no(ledger):
    """Abort before prepare (the decision overtook the prepare) is recorded; the late
    prepare then votes no and holds nothing."""
    first = ledger.abort("T-late")
    assert first.state is TxState.ABORTED and not first.again
    assert ledger.status("T-late")["state"] == "aborted"
    vote, reason = ledger.prepare("T-late", COORD, [("1001", -10_00)])
    assert vote is Vote.NO and "aborted" in reason
    assert balance(ledger, "1001") == ("100.00", "0.00")
    repeat = ledger.abort("T-late")                                 # repeating is harmless
    assert repeat.state is TxState.ABORTED and repeat.again         # and said to be (P3)


@pytest.mark.parametrize("ops, vote", [([("1001", -30_00)], Vote.YES),
                                       ([("1001", -300_00)], Vote.NO)])
def test_repeated_prepare_answers_the_same_vote(ledger, db, ops, vote):
    """A prepare for a known txid answers the recorded vote again and holds nothing more."""
    assert ledger.prepare("T1", COORD, ops)[0] is vote
    before = raw_state(db)
    for _ in range(3):
        assert ledger.prepare("T1", COORD, ops)[0] is vote
    assert raw_state(db) == before


def test_repeated_commit_applies_once(ledger):
    """Commit is idempotent: a retried commit answers committed and applies nothing again."""
    ledger.prepare("T1", COORD, [("1001", -30_00), ("1002", 30_00)])
    for _ in range(3):
        assert ledger.commit("T1").state is TxState.COMMITTED
    assert balance(ledger, "1001") == ("70.00", "0.00")
    assert balance(ledger, "1002") == ("50.00", "0.00")
    assert [r["amount"] for r in ledger.journal() if r["txid"] == "T1"] == ["-30.00", "30.00"]


@pytest.mark.parametrize("ops, why", [
    ([("1001", -100_01)], "insufficient funds"),
    ([("1001", -60_00), ("1001", -60_00)], "insufficient funds"),   # together too much
    ([("1001", 5_00), ("4242", -1_00)], "does not exist"),
    ([], "no operations"),
])
def test_prepare_that_cannot_commit_votes_no_and_holds_nothing(ledger, db, ops, why):
    """Prepare validates every op first; any problem records aborted and votes no."""
    vote, reason = ledger.prepare("T1", COORD, ops)
    assert vote is Vote.NO and why in reason
    assert ledger.txn_state("T1") is TxState.ABORTED
    assert all(a["held"] == "0.00" for a in ledger.accounts())


def test_prepared_txn_survives_reopening_the_database(ledger, tmp_path):
    """Prepared is durable when prepare returns: a reopened ledger still holds the funds."""
    ledger.prepare("T1", COORD, [("1001", -40_00)])
    ledger.close()
    again = Ledger(tmp_path / "Mumbai.db", BRANCH)
    try:
        assert again.txn_state("T1") is TxState.PREPARED
        assert balance(again, "1001") == ("100.00", "40.00")
        assert again.commit("T1").state is TxState.COMMITTED
        assert balance(again, "1001") == ("60.00", "0.00")
    finally:
        again.close()


@pytest.mark.parametrize("operation, args, retry_with_other_args", [
    ("deposit", ("1001", 5_00), ("1001", 6_00)),
    ("withdraw", ("1001", 5_00), ("1002", 5_00)),
    ("transfer", ("1001", "1002", 5_00), ("1002", "1001", 5_00)),
])
def test_request_id_applies_once(ledger, db, operation, args, retry_with_other_args):
    """A retried call with the same request_id gets the first result and applies once;
    the same request_id with different arguments is refused (400) and changes nothing."""
    call = getattr(ledger, operation)
    first = call(*args, request_id="req-1")
    after_first = raw_state(db)
    assert call(*args, request_id="req-1") == first
    assert raw_state(db) == after_first
    refused(db, FaultCode.BAD_INPUT, call, *retry_with_other_args, "req-1")
    rows = [r for r in ledger.journal() if r["request_id"] == "req-1"]
    assert len(rows) == (2 if operation == "transfer" else 1)
    assert ledger.reconcile() == []


def test_request_id_is_shared_across_operations(ledger, db):
    """A request id names one operation: reusing it for another kind is refused."""
    ledger.deposit("1001", 5_00, "req-1")
    refused(db, FaultCode.BAD_INPUT, ledger.withdraw, "1001", 5_00, "req-1")


def test_withdraw_and_transfer_respect_holds(ledger, db):
    """Held funds are spent already: withdraw and local transfer see only balance - held."""
    assert ledger.prepare("T1", COORD, [("1001", -80_00)])[0] is Vote.YES
    error = refused(db, FaultCode.INSUFFICIENT_FUNDS, ledger.withdraw, "1001", 20_01)
    assert "held" in error.message
    refused(db, FaultCode.INSUFFICIENT_FUNDS, ledger.transfer, "1001", "1002", 20_01)
    assert ledger.prepare("T2", COORD, [("1001", -20_01)])[0] is Vote.NO
    ledger.withdraw("1001", 20_00)
    assert balance(ledger, "1001") == ("80.00", "80.00")
    assert ledger.commit("T1").state is TxState.COMMITTED                # can never fail
    assert balance(ledger, "1001") == ("0.00", "0.00")


def test_abort_releases_the_hold(ledger):
    """Abort of a prepared txn releases exactly its holds and journals nothing."""
    ledger.prepare("T1", COORD, [("1001", -30_00), ("1002", -5_00), ("1003", 7_00)])
    assert balance(ledger, "1001") == ("100.00", "30.00")
    assert ledger.abort("T1").state is TxState.ABORTED
    assert [balance(ledger, n) for n in ACCOUNTS] == \
        [("100.00", "0.00"), ("20.00", "0.00"), ("0.00", "0.00")]
    assert not [r for r in ledger.journal() if r["txid"] == "T1"]


@pytest.mark.parametrize("sql", ["UPDATE accounts SET balance = -1 WHERE number='1003'",
                                 "UPDATE accounts SET held = -1 WHERE number='1001'",
                                 "UPDATE accounts SET held = balance + 1 WHERE number='1001'"])
def test_money_rules_are_check_constraints(ledger, sql):
    """balance >= 0 and 0 <= held <= balance are enforced by SQLite itself, not only Python."""
    conn = sqlite3.connect(ledger.path, isolation_level=None)
    try:
        with pytest.raises(sqlite3.IntegrityError):
            conn.execute(sql)
    finally:
        conn.close()


def test_a_database_belongs_to_one_branch(ledger):
    """Opening Mumbai's database as another branch is refused."""
    with pytest.raises(SystemExit):
        Ledger(ledger.path, "Delhi")
