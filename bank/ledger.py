"""A branch's ledger in SQLite: accounts, 2PC transaction states and the journal.

Role: the storage half of a branch. It applies local operations and the
participant's 2PC steps, each as ONE SQLite transaction that is durable when the
method returns. It never touches the network (branch.py does that).

Rules:
  * Durable before visible: every write runs inside ``_write()``: BEGIN IMMEDIATE,
    the change, COMMIT (WAL + synchronous=FULL, so COMMIT means "on disk"). Only
    after it returns may the caller reply. A crash at any point leaves exactly what
    the last COMMIT said.
  * One writer: a lock serialises all writes of this branch; readers use their own
    connections and are never blocked (WAL).
  * Money rules are CHECK constraints too: balance >= 0 and 0 <= held <= balance.
    Python checks them first only to give a friendly sentence.
  * The journal is append-only, one row per balance change; for every account
    the amounts in its journal add up to its balance.
  * Prepare reserves (holds) debited funds, so a later commit can never fail.
  * Every write also appends its call (method and arguments) to ``replog`` in the
    same transaction. Replaying the replog in order on another database rebuilds the
    same ledger: that is how replicas copy a primary (replication.py).

Glossary:
  held        money reserved by prepared transactions; not available to spend
  available   balance - held
  request_id  a client-chosen id that makes a retried deposit/withdraw/transfer apply once
  seq         a change's position in the replog; a replica has applied every seq up to its own
"""

import contextlib
import datetime
import hashlib
import json
import pathlib
import sqlite3
import threading

from bank.errors import BankError, FaultCode
from bank.money import format_amount
from bank.protocol import Event, ProtocolViolation, TxState, Vote, participant_next, repeated_vote

MAX_OPS = 64          # ops in one prepare
REPLICATED = ("open_account", "deposit", "withdraw", "transfer", "prepare", "commit", "abort")
SCHEMA = """
CREATE TABLE IF NOT EXISTS meta(
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS accounts(
    number  TEXT PRIMARY KEY,
    owner   TEXT NOT NULL,
    balance INTEGER NOT NULL CHECK (balance >= 0),
    held    INTEGER NOT NULL DEFAULT 0 CHECK (held >= 0 AND held <= balance),
    opened  TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS txns(
    txid        TEXT PRIMARY KEY,
    coordinator TEXT NOT NULL,
    ops         TEXT NOT NULL,          -- JSON [{"account": "1001", "delta": -5000}]
    state       TEXT NOT NULL CHECK (state IN ('prepared', 'committed', 'aborted')),
    reason      TEXT NOT NULL DEFAULT '',
    created     TEXT NOT NULL,
    decided     TEXT);
CREATE TABLE IF NOT EXISTS journal(
    seq           INTEGER PRIMARY KEY AUTOINCREMENT,
    ts            TEXT NOT NULL,
    account       TEXT NOT NULL REFERENCES accounts(number),
    kind          TEXT NOT NULL,
    amount        INTEGER NOT NULL,     -- signed minor units
    balance_after INTEGER NOT NULL,
    txid          TEXT NOT NULL DEFAULT '',
    request_id    TEXT NOT NULL DEFAULT '',
    detail        TEXT NOT NULL DEFAULT '');
CREATE TABLE IF NOT EXISTS replog(
    seq INTEGER PRIMARY KEY,                -- the position of this change in the history
    op  TEXT NOT NULL);                     -- JSON ["deposit", ["1001", 25000, ""]]
CREATE TABLE IF NOT EXISTS requests(
    request_id  TEXT PRIMARY KEY,
    fingerprint TEXT NOT NULL,
    result      TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS journal_by_account ON journal(account, seq);
CREATE INDEX IF NOT EXISTS txns_by_state ON txns(state);
"""


def now() -> str:
    """A UTC timestamp with milliseconds, as stored everywhere in the kit."""
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="milliseconds")


class Ledger:
    """One branch's SQLite database."""

    def __init__(self, path, branch: str):
        self.path, self.branch = pathlib.Path(path), branch
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._readers = threading.local()
        self._replay = threading.local()    # .seq: set while a replica applies a change
        self._writer = self._connect()
        self._writer.executescript(SCHEMA)
        self._claim_name()

    def _connect(self) -> sqlite3.Connection:
        # isolation_level=None: we issue BEGIN/COMMIT ourselves, so nothing is implicit.
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False,
                               timeout=30)
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")     # COMMIT waits for the disk
        conn.execute("PRAGMA foreign_keys=ON")
        return conn

    def close(self):
        with self._lock:
            self._writer.close()

    def _claim_name(self):
        """A database belongs to one branch: refuse to serve Delhi from Mumbai.db."""
        with self._write() as db:
            row = db.execute("SELECT value FROM meta WHERE key='branch'").fetchone()
            if row is None:
                db.execute("INSERT INTO meta VALUES ('branch', ?)", (self.branch,))
            elif row["value"] != self.branch:
                raise SystemExit(f"{self.path} belongs to branch {row['value']!r}, "
                                 f"not {self.branch!r}.")

    # ---- the one place where state changes become durable ----------------------------

    @contextlib.contextmanager
    def _write(self, change=None):
        """Run a block as one durable SQLite transaction, one writer at a time.

        When the block returns normally, COMMIT has reached the disk; only then may the
        caller tell anyone. If it raises, everything it did is rolled back. `change`,
        the (method, args) that caused the write, is appended to the replog with it.
        """
        with self._lock:
            try:
                self._writer.execute("BEGIN IMMEDIATE")
                yield self._writer
                if change is not None:
                    self._writer.execute("INSERT INTO replog(seq, op) VALUES (?, ?)",
                                         (getattr(self._replay, "seq", None),
                                          json.dumps(change)))
                self._writer.execute("COMMIT")      # durable here (synchronous=FULL)
            except BaseException as exc:
                self._roll_back()                   # also when COMMIT itself failed
                if _is_storage_failure(exc):        # disk full, I/O error: say so
                    raise storage_refusal(self.path, self.branch, exc) from None
                raise

    def _roll_back(self) -> None:
        """Undo the write in progress; a rollback that fails (the disk again) leaves
        SQLite to undo it from its WAL, as after a crash."""
        try:
            if self._writer.in_transaction:
                self._writer.execute("ROLLBACK")
        except sqlite3.Error:
            pass

    def _read(self) -> sqlite3.Connection:
        conn = getattr(self._readers, "conn", None)
        if conn is None:
            conn = self._readers.conn = self._connect()
        return conn

    # ---- reading ----------------------------------------------------------------------

    def account(self, number: str) -> dict:
        return self._account_dict(self._get_account(self._read(), number))

    def accounts(self) -> list:
        rows = self._read().execute("SELECT * FROM accounts ORDER BY number").fetchall()
        return [self._account_dict(r) for r in rows]

    def count_accounts(self) -> int:
        return self._read().execute("SELECT COUNT(*) FROM accounts").fetchone()[0]

    def journal(self, number: str = "", limit: int = 100) -> list:
        """The last `limit` journal rows (of one account, or all), oldest first."""
        db = self._read()
        if number:
            self._get_account(db, number)
            rows = db.execute("SELECT * FROM journal WHERE account=? ORDER BY seq DESC "
                              "LIMIT ?", (number, limit)).fetchall()
        else:
            rows = db.execute("SELECT * FROM journal ORDER BY seq DESC LIMIT ?",
                              (limit,)).fetchall()
        return [self._journal_dict(r) for r in reversed(rows)]

    def txn_state(self, txid: str) -> TxState:
        row = self._read().execute("SELECT state FROM txns WHERE txid=?", (txid,)).fetchone()
        return TxState(row["state"]) if row else TxState.UNKNOWN

    def status(self, txid: str) -> dict:
        row = self._read().execute("SELECT * FROM txns WHERE txid=?", (txid,)).fetchone()
        if row is None:
            return {"txid": txid, "state": TxState.UNKNOWN.value, "coordinator": "",
                    "ops": [], "reason": "", "created": "", "decided": ""}
        return self._txn_dict(row)

    def in_doubt(self) -> list:
        """Prepared transactions still waiting for the coordinator's decision."""
        rows = self._read().execute("SELECT * FROM txns WHERE state='prepared' "
                                    "ORDER BY created").fetchall()
        return [self._txn_dict(r) for r in rows]

    def reconcile(self) -> list:
        """Accounts whose journal does not add up to their balance (should be none)."""
        rows = self._read().execute(
            "SELECT a.number, a.balance, COALESCE(SUM(j.amount), 0) AS total "
            "FROM accounts a LEFT JOIN journal j ON j.account = a.number "
            "GROUP BY a.number HAVING total != a.balance").fetchall()
        return [{"account": r["number"], "balance": format_amount(r["balance"]),
                 "journal_total": format_amount(r["total"])} for r in rows]

    # ---- local operations (one branch, no 2PC) ----------------------------------------

    def open_account(self, owner: str, initial: int, number: str = "") -> dict:
        with self._write(("open_account", [owner, initial, number])) as db:
            if not number:
                row = db.execute("SELECT MAX(CAST(number AS INTEGER)) FROM accounts").fetchone()
                number = str(max(1000, row[0] or 0) + 1)
            elif db.execute("SELECT 1 FROM accounts WHERE number=?", (number,)).fetchone():
                raise BankError(FaultCode.BAD_INPUT,
                                f"Account {self.branch}/{number} already exists.")
            db.execute("INSERT INTO accounts(number, owner, balance, held, opened) "
                       "VALUES (?, ?, 0, 0, ?)", (number, owner, now()))
            if initial:
                self._change_balance(db, number, initial, "open", detail="opening deposit")
            else:
                self._journal(db, number, "open", 0, 0, detail="opened empty")
            return self._account_dict(self._get_account(db, number))

    def deposit(self, number: str, amount: int, request_id: str = "") -> dict:
        return self._once(request_id, ("deposit", [number, amount, request_id]),
                          lambda db: self._deposit(db, number, amount, request_id))

    def withdraw(self, number: str, amount: int, request_id: str = "") -> dict:
        return self._once(request_id, ("withdraw", [number, amount, request_id]),
                          lambda db: self._withdraw(db, number, amount, request_id))

    def transfer(self, src: str, dst: str, amount: int, request_id: str = "") -> dict:
        if src == dst:
            raise BankError(FaultCode.BAD_INPUT, "Source and destination are the same account.")
        return self._once(request_id, ("transfer", [src, dst, amount, request_id]),
                          lambda db: self._transfer(db, src, dst, amount, request_id))

    def _deposit(self, db, number, amount, request_id):
        self._get_account(db, number)
        self._change_balance(db, number, amount, "deposit", request_id=request_id)
        return self._account_dict(self._get_account(db, number))

    def _withdraw(self, db, number, amount, request_id):
        self._require_available(db, number, amount)
        self._change_balance(db, number, -amount, "withdraw", request_id=request_id)
        return self._account_dict(self._get_account(db, number))

    def _transfer(self, db, src, dst, amount, request_id):
        self._get_account(db, dst)
        self._require_available(db, src, amount)
        self._change_balance(db, src, -amount, "transfer-out", request_id=request_id,
                             detail=f"to {self.branch}/{dst}")
        self._change_balance(db, dst, amount, "transfer-in", request_id=request_id,
                             detail=f"from {self.branch}/{src}")
        return {"src": self._account_dict(self._get_account(db, src)),
                "dst": self._account_dict(self._get_account(db, dst))}

    def _once(self, request_id: str, change: tuple, operation) -> dict:
        """Run `operation` in one write; with a request_id, at most once ever.

        A retry with the same request_id gets the first result back; the same id
        with different arguments is refused.
        """
        method, args = change
        key = json.dumps([method, *args[:-1]])          # the call without its request id
        with self._write(change) as db:
            if request_id:
                row = db.execute("SELECT fingerprint, result FROM requests "
                                 "WHERE request_id=?", (request_id,)).fetchone()
                if row is not None:
                    if row["fingerprint"] != key:
                        raise BankError(FaultCode.BAD_INPUT,
                                        f"Request id {request_id!r} was already used for a "
                                        "different operation.")
                    return json.loads(row["result"])
            result = operation(db)
            if request_id:
                db.execute("INSERT INTO requests VALUES (?, ?, ?)",
                           (request_id, key, json.dumps(result)))
            return result

    # ---- 2PC participant steps ------------------------------------------------------

    def prepare(self, txid: str, coordinator: str, ops: list, refuse: str = "") -> tuple:
        """Validate ops, hold debited funds, record 'prepared': vote yes. Durable on return.

        ops: [(account number, signed minor units)]. Returns (Vote, reason).
        A txid seen before gets its recorded vote again. Any invalid op (or a
        `refuse` reason, used by the vote-no fault) records 'aborted' and votes no.
        """
        with self._write(("prepare", [txid, coordinator, ops, refuse])) as db:
            state = self._state(db, txid)
            if state is not TxState.UNKNOWN:
                return repeated_vote(state), f"already {state.value}"
            problem = refuse or self._problem_with(db, ops)
            if problem:
                self._record(db, txid, coordinator, ops, TxState.ABORTED, problem)
                return Vote.NO, problem
            self._hold(db, ops, +1)
            self._record(db, txid, coordinator, ops, participant_next(state, Event.PREPARE_OK))
            return Vote.YES, ""

    def commit(self, txid: str) -> TxState:
        """Apply a prepared txn's ops and record 'committed'. Repeats are harmless."""
        with self._write(("commit", [txid])) as db:
            state = self._step(db, txid, Event.COMMIT)
            if state is TxState.COMMITTED:
                return state                       # already done: answer ok again
            ops = self._ops(db, txid)
            self._hold(db, ops, -1)
            for number, delta in ops:
                self._change_balance(db, number, delta,
                                     "2pc-debit" if delta < 0 else "2pc-credit", txid=txid)
            self._decide(db, txid, TxState.COMMITTED)
            return TxState.COMMITTED

    def abort(self, txid: str, coordinator: str = "") -> TxState:
        """Release holds and record 'aborted'. An unknown txid is recorded aborted too."""
        with self._write(("abort", [txid, coordinator])) as db:
            state = self._step(db, txid, Event.ABORT)
            if state is TxState.UNKNOWN:
                self._record(db, txid, coordinator, [], TxState.ABORTED,
                             "aborted before any prepare arrived")
            elif state is TxState.PREPARED:
                self._hold(db, self._ops(db, txid), -1)
                self._decide(db, txid, TxState.ABORTED)
            return TxState.ABORTED

    @staticmethod
    def _hold(db, ops, sign: int) -> None:
        """Reserve (+1, at prepare) or release (-1, at commit or abort) the debits of ops."""
        for number, delta in ops:
            if delta < 0:
                db.execute("UPDATE accounts SET held = held + ? WHERE number=?",
                           (sign * -delta, number))

    def _step(self, db, txid, event: Event) -> TxState:
        """The current state, after checking the protocol allows `event` from it."""
        state = self._state(db, txid)
        try:
            participant_next(state, event)
        except ProtocolViolation as exc:
            raise BankError(FaultCode.PROTOCOL_VIOLATION,
                            f"{self.branch} refuses to {event.value} {txid}: it is "
                            f"{state.value} here.") from exc
        return state

    def _problem_with(self, db, ops) -> str:
        """Why these ops cannot be prepared, or '' if they can."""
        if not ops:
            return "no operations for this branch"
        if len(ops) > MAX_OPS:
            return f"too many operations (at most {MAX_OPS})"
        debits = {}
        for number, delta in ops:
            if not self._find_account(db, number):
                return f"account {self.branch}/{number} does not exist"
            if delta < 0:
                debits[number] = debits.get(number, 0) - delta
        for number, amount in debits.items():
            row = self._find_account(db, number)
            available = row["balance"] - row["held"]
            if available < amount:
                return (f"insufficient funds in {self.branch}/{number}: "
                        f"{format_amount(available)} available, {format_amount(amount)} needed")
        return ""

    # ---- replication: the replog --------------------------------------------------------

    def applied_seq(self) -> int:
        """The last change in this database's history (0 for none)."""
        return self._read().execute("SELECT COALESCE(MAX(seq), 0) FROM replog").fetchone()[0]

    def changes_since(self, seq: int, limit: int = 500) -> list:
        """[(seq, op_json)] after `seq`, oldest first: what a replica still lacks."""
        rows = self._read().execute("SELECT seq, op FROM replog WHERE seq > ? ORDER BY seq "
                                    "LIMIT ?", (seq, limit)).fetchall()
        return [(r["seq"], r["op"]) for r in rows]

    def apply_change(self, seq: int, op_json: str) -> bool:
        """Replay a primary's change `seq` here (replicas only). False if already applied.

        Changes must arrive in order: a gap raises BankError, and the replica catches up.
        A replica has a single writer, the replication stream, which calls this in order.
        """
        try:
            method, args = json.loads(op_json)
        except (TypeError, ValueError):
            method, args = None, None
        if method not in REPLICATED or not isinstance(args, list):
            raise BankError(FaultCode.BAD_INPUT, "That is not a replicated change.")
        applied = self.applied_seq()
        if seq <= applied:
            return False
        if seq != applied + 1:
            raise BankError(FaultCode.BAD_INPUT,
                            f"change {seq} arrived but {applied + 1} is next: catching up.")
        self._replay.seq = seq
        try:
            getattr(self, method)(*args)
        except (TypeError, ValueError, sqlite3.Error) as exc:
            raise BankError(FaultCode.BAD_INPUT,
                            f"Change {seq} ({method}) cannot be applied here: {exc}.") from None
        finally:
            self._replay.seq = None
        return True

    def change_hash(self, seq: int) -> str:
        """A fingerprint of change `seq`, to check that two histories agree up to it."""
        row = self._read().execute("SELECT op FROM replog WHERE seq=?", (seq,)).fetchone()
        return hashlib.sha256(row["op"].encode()).hexdigest()[:16] if row else ""

    def reset(self) -> None:
        """Forget everything (a replica whose history diverged copies the primary again)."""
        with self._write() as db:
            for table in ("journal", "requests", "txns", "accounts", "replog"):
                db.execute(f"DELETE FROM {table}")

    def meta(self, key: str, default: str = "") -> str:
        row = self._read().execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return row["value"] if row else default

    def set_meta(self, **values) -> None:
        """Durably record role, epoch, primary URL... (one transaction)."""
        with self._write() as db:
            for key, value in values.items():
                db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, str(value)))

    # ---- small helpers -----------------------------------------------------------------

    def _state(self, db, txid) -> TxState:
        row = db.execute("SELECT state FROM txns WHERE txid=?", (txid,)).fetchone()
        return TxState(row["state"]) if row else TxState.UNKNOWN

    def _ops(self, db, txid) -> list:
        row = db.execute("SELECT ops FROM txns WHERE txid=?", (txid,)).fetchone()
        return [(op["account"], op["delta"]) for op in json.loads(row["ops"])]

    def _record(self, db, txid, coordinator, ops, state: TxState, reason=""):
        ops_json = json.dumps([{"account": n, "delta": d} for n, d in ops])
        decided = None if state is TxState.PREPARED else now()
        db.execute("INSERT INTO txns(txid, coordinator, ops, state, reason, created, decided)"
                   " VALUES (?, ?, ?, ?, ?, ?, ?)",
                   (txid, coordinator, ops_json, state.value, reason, now(), decided))

    def _decide(self, db, txid, state: TxState):
        db.execute("UPDATE txns SET state=?, decided=? WHERE txid=?",
                   (state.value, now(), txid))

    def _find_account(self, db, number):
        return db.execute("SELECT * FROM accounts WHERE number=?", (number,)).fetchone()

    def _get_account(self, db, number):
        row = self._find_account(db, number)
        if row is None:
            raise BankError(FaultCode.UNKNOWN_ACCOUNT,
                            f"There is no account {self.branch}/{number}.")
        return row

    def _require_available(self, db, number, amount):
        row = self._get_account(db, number)
        available = row["balance"] - row["held"]
        if available < amount:
            held = f" ({format_amount(row['held'])} is held by transfers in progress)" \
                if row["held"] else ""
            raise BankError(FaultCode.INSUFFICIENT_FUNDS,
                            f"Insufficient funds in {self.branch}/{number}: "
                            f"{format_amount(available)} available{held}, "
                            f"{format_amount(amount)} needed.")

    def _change_balance(self, db, number, delta, kind, txid="", request_id="", detail=""):
        db.execute("UPDATE accounts SET balance = balance + ? WHERE number=?", (delta, number))
        balance = db.execute("SELECT balance FROM accounts WHERE number=?",
                             (number,)).fetchone()[0]
        self._journal(db, number, kind, delta, balance, txid, request_id, detail)

    def _journal(self, db, number, kind, amount, balance_after, txid="", request_id="",
                 detail=""):
        db.execute("INSERT INTO journal(ts, account, kind, amount, balance_after, txid, "
                   "request_id, detail) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                   (now(), number, kind, amount, balance_after, txid, request_id, detail))

    def _account_dict(self, row) -> dict:
        return {"branch": self.branch, "number": row["number"], "owner": row["owner"],
                "balance": format_amount(row["balance"]), "held": format_amount(row["held"]),
                "available": format_amount(row["balance"] - row["held"])}

    def _journal_dict(self, row) -> dict:
        return {"seq": row["seq"], "ts": row["ts"], "branch": self.branch,
                "account": row["account"], "kind": row["kind"],
                "amount": format_amount(row["amount"]),
                "balance_after": format_amount(row["balance_after"]),
                "txid": row["txid"], "request_id": row["request_id"], "detail": row["detail"]}

    def _txn_dict(self, row) -> dict:
        ops = [{"account": op["account"], "delta": format_amount(op["delta"])}
               for op in json.loads(row["ops"])]
        return {"txid": row["txid"], "state": row["state"], "coordinator": row["coordinator"],
                "ops": ops, "reason": row["reason"], "created": row["created"],
                "decided": row["decided"] or ""}


# ---- storage faults: a failing disk, a damaged database --------------------------------------
#
# Rules:
#   * A write the disk refuses (full, I/O error) is rolled back and refused with a
#     sentence (BankError UNAVAILABLE): the branch never votes yes without its durable
#     prepare, keeps serving reads, and writes again once the disk has room.
#   * A branch checks its database before it serves (check_database): a damaged ledger
#     is refused with one sentence naming the file and the problem, never voted on.

def _is_storage_failure(exc: BaseException) -> bool:
    """A failure of the disk or file under SQLite, not of the kit's own rules."""
    return isinstance(exc, sqlite3.OperationalError) or type(exc) is sqlite3.DatabaseError


def storage_refusal(path, branch: str, exc: BaseException) -> BankError:
    """The sentence for a write the database could not make (nothing was changed)."""
    return BankError(FaultCode.UNAVAILABLE,
                     f"{branch} could not write to its database {path} ({exc}), so "
                     "nothing was changed. Reads still work; writes resume when the "
                     "disk has room again.")


def check_database(path, branch: str = "") -> str:
    """What is wrong with the branch database at `path`, or "" if it may be served.

    Checks, in order: SQLite's own quick_check; the schema's CHECK rules (balance >= 0,
    0 <= held <= balance, known txn states); every account's journal adds up to its
    balance; every account's held equals the debits of its prepared transactions.
    A file that does not exist yet is fine (the branch creates it).
    """
    path = pathlib.Path(path)
    if not path.exists():
        return ""
    try:
        conn = sqlite3.connect(path, isolation_level=None, timeout=30)
    except sqlite3.Error as exc:
        return f"{path} cannot be opened as an SQLite database ({exc})"
    try:
        conn.row_factory = sqlite3.Row
        return _first_problem(conn, path)
    except sqlite3.Error as exc:
        return f"{path} is not a readable bank database ({exc})"
    finally:
        conn.close()


def _first_problem(conn, path) -> str:
    verdict = [row[0] for row in conn.execute("PRAGMA quick_check")]
    if verdict != ["ok"]:
        return f"{path} is damaged: SQLite's quick_check says {'; '.join(verdict[:3])}"
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    if not {"accounts", "txns", "journal"} <= tables:
        return ""                                # a new database: the schema comes next
    bad = conn.execute("SELECT number, balance, held FROM accounts WHERE NOT "
                       "(balance >= 0 AND held >= 0 AND held <= balance)").fetchone()
    if bad:
        return (f"{path} breaks its own rules: account {bad['number']} has balance "
                f"{bad['balance']} and held {bad['held']} (minor units)")
    bad = conn.execute("SELECT txid, state FROM txns WHERE state NOT IN "
                       "('prepared', 'committed', 'aborted')").fetchone()
    if bad:
        return f"{path} breaks its own rules: transaction {bad['txid']} is {bad['state']!r}"
    return _journal_problem(conn, path) or _held_problem(conn, path)


def _journal_problem(conn, path) -> str:
    bad = conn.execute("SELECT a.number, a.balance, COALESCE(SUM(j.amount), 0) AS total "
                       "FROM accounts a LEFT JOIN journal j ON j.account = a.number "
                       "GROUP BY a.number HAVING total != a.balance").fetchone()
    if bad:
        return (f"{path} does not reconcile: account {bad['number']} has balance "
                f"{format_amount(bad['balance'])} but its journal adds up to "
                f"{format_amount(bad['total'])}")
    return ""


def _held_problem(conn, path) -> str:
    debits = {}
    for row in conn.execute("SELECT txid, ops FROM txns WHERE state='prepared'"):
        try:
            ops = [(op["account"], int(op["delta"])) for op in json.loads(row["ops"])]
        except (TypeError, ValueError, KeyError):
            return f"{path} holds unreadable operations for prepared transaction {row['txid']}"
        for number, delta in ops:
            if delta < 0:
                debits[number] = debits.get(number, 0) - delta
    for row in conn.execute("SELECT number, held FROM accounts"):
        if row["held"] != debits.get(row["number"], 0):
            return (f"{path} does not reconcile: account {row['number']} holds "
                    f"{format_amount(row['held'])} but its prepared transactions debit "
                    f"{format_amount(debits.get(row['number'], 0))}")
    return ""
