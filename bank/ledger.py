"""A branch's ledger in SQLite: accounts, 2PC transaction states and the journal.

Role: the storage half of a branch. It applies local operations
(bank/ledger_local.py) and the participant's 2PC steps (bank/ledger_2pc.py), each
as ONE SQLite transaction that is durable when the method returns; this file holds
the database itself, its one writer and its reads. It never touches the network
(bank/branch_service.py does that).

Rules:
  * Durable before visible: every write runs inside ``_write()``: BEGIN IMMEDIATE,
    the change, COMMIT (WAL + synchronous=FULL, so COMMIT means "on disk"). Only
    after it returns may the caller reply. A crash at any point leaves exactly what
    the last COMMIT said.
  * One writer: one connection makes all writes of this branch, one step at a time;
    steps that queue up share one COMMIT (group commit, bank/group_commit.py G1-G5).
    Readers use their own connections and are never blocked (WAL).
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
  request_id  a client-chosen id that makes a retried deposit/withdraw/transfer/opening
              apply once; its first outcome, a refusal included, is its only outcome
  seq         a change's position in the replog; a replica has applied every seq up to its own
"""

import contextlib
import hashlib
import json
import pathlib
import sqlite3
import threading
import weakref

from bank.errors import BankError, FaultCode
from bank.money import format_amount
from bank.clock import now                 # noqa: F401  (others import it from here too)
from bank.core.messages import TxState
from bank.group_commit import GroupCommit
from bank.ledger_2pc import ParticipantSteps
from bank.ledger_audit import Audit
from bank.ledger_local import LocalOperations
from bank.ledger_replog import Replog

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
    decided     TEXT,
    peers       TEXT NOT NULL DEFAULT '[]',  -- JSON [["Delhi", URL]]: the others (P9)
    heuristic   TEXT NOT NULL DEFAULT '',    -- the operator's heuristic decision (P10)
    told        TEXT NOT NULL DEFAULT '');   -- the coordinator's decision after it (P11)
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
# Columns added since the first schema: a database written before them gets them, empty.
TWOPC_STEPS = ("prepare", "commit", "abort", "peer_outcome", "heuristic")   # (counters)

ADDED_COLUMNS = {"txns": (("peers", "TEXT NOT NULL DEFAULT '[]'"),
                          ("heuristic", "TEXT NOT NULL DEFAULT ''"),
                          ("told", "TEXT NOT NULL DEFAULT ''"))}
# ...and the index on them that the termination loop reads every few seconds (P11: the
# heuristic txns still to be told the coordinator's decision; a few among thousands).
ADDED_INDEX = ("CREATE INDEX IF NOT EXISTS txns_heuristic ON txns(told) "
               "WHERE heuristic != ''")



class _Connection(sqlite3.Connection):
    """A SQLite connection that a WeakSet can hold (the C type takes no weak references)."""


class Ledger(LocalOperations, ParticipantSteps, Replog, Audit):
    """One branch's SQLite database. Its local operations are in bank/ledger_local.py,
    its 2PC steps in bank/ledger_2pc.py and its replication log in
    bank/ledger_replog.py; this class holds the storage itself and the reads."""

    def __init__(self, path, branch: str):
        self.path, self.branch = pathlib.Path(path), branch
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._readers = threading.local()
        self._all_readers = weakref.WeakSet()   # every thread's reader, to close them all
        self._readers_lock = threading.Lock()
        self._replay = threading.local()    # .seq: set while a replica applies a change
        self._history = (0, hashlib.sha256())    # (seq, digest): ledger_replog.history_hash
        self._history_lock = threading.Lock()
        writer = self._connect()
        writer.executescript(SCHEMA)
        _add_missing_columns(writer)
        self._commits = GroupCommit(writer)   # the one writer connection (group commit)
        self._claim_name()

    def _connect(self) -> sqlite3.Connection:
        # isolation_level=None: we issue BEGIN/COMMIT ourselves, so nothing is implicit.
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False,
                               timeout=30, factory=_Connection)
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")     # COMMIT waits for the disk
        conn.execute("PRAGMA fullfsync=ON")         # macOS: through the drive's cache too
        conn.execute("PRAGMA foreign_keys=ON")
        return conn

    def close(self):
        """Close the writer and every thread's reader: on Windows a database file that
        any connection holds open cannot be renamed (a fenced primary's, set aside).
        Only once no thread uses this ledger any more: a reader closed under a thread
        stays closed for it."""
        self._commits.close()
        with self._readers_lock:
            readers = list(self._all_readers)
        for conn in readers:
            conn.close()

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
        """Run a block as one durable step, one writer at a time.

        When the block returns normally, COMMIT has reached the disk; only then may the
        caller tell anyone. If it raises, everything it did is rolled back. `change`,
        the (method, args) that caused the write, is appended to the replog with it.
        Steps that arrive together share one COMMIT (bank/group_commit.py, G1-G5):
        read this as BEGIN IMMEDIATE; the block; COMMIT.
        """
        twopc = change is not None and change[0] in TWOPC_STEPS     # for the counters
        with self._storage_errors(), self._commits.step(twopc) as db:
            yield db
            if change is not None:
                db.execute("INSERT INTO replog(seq, op) VALUES (?, ?)",
                           (getattr(self._replay, "seq", None), json.dumps(change)))

    @contextlib.contextmanager
    def one_commit(self):
        """This thread's steps inside the block share one COMMIT, made when it ends
        (bank/group_commit.py, G5: a batch). Leaving returns once they are durable."""
        with self._storage_errors(), self._commits.hold():
            yield

    @contextlib.contextmanager
    def _storage_errors(self):
        """A failure of the disk under SQLite (full, I/O error) becomes one sentence."""
        try:
            yield
        except BaseException as exc:
            if _is_storage_failure(exc):
                raise storage_refusal(self.path, self.branch, exc) from None
            raise

    def counters(self) -> dict:
        """{"fsyncs": COMMITs that wrote (each one fsync), "steps": ledger steps kept,
        "twopc_fsyncs": those COMMITs with a 2PC step among their steps}."""
        return self._commits.counters()

    def _read(self) -> sqlite3.Connection:
        conn = getattr(self._readers, "conn", None)
        if conn is None:
            conn = self._readers.conn = self._connect()
            with self._readers_lock:
                self._all_readers.add(conn)     # weakly: gone with its thread
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
                    "ops": [], "reason": "", "created": "", "decided": "", "peers": [],
                    "heuristic": "", "told": "", "damage": ""}
        return self._txn_dict(row)

    def in_doubt(self) -> list:
        """Prepared transactions still waiting for the coordinator's decision."""
        rows = self._read().execute("SELECT * FROM txns WHERE state='prepared' "
                                    "ORDER BY created").fetchall()
        return [self._txn_dict(r) for r in rows]

    def meta(self, key: str, default: str = "") -> str:
        row = self._read().execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return row["value"] if row else default

    def set_meta(self, **values) -> None:
        """Durably record role, epoch, primary URL... (one transaction)."""
        with self._write() as db:
            for key, value in values.items():
                db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, str(value)))

    # ---- small helpers -----------------------------------------------------------------

    def _find_account(self, db, number):
        return db.execute("SELECT * FROM accounts WHERE number=?", (number,)).fetchone()

    def _get_account(self, db, number):
        row = self._find_account(db, number)
        if row is None:
            raise BankError(FaultCode.UNKNOWN_ACCOUNT,
                            f"There is no account {self.branch}/{number}.")
        return row

    def _require_available(self, db, number, amount):
        """Refuse (one sentence) to spend more than balance - held; when held money is
        why, the sentence names the transactions in doubt that hold it."""
        row = self._get_account(db, number)
        available = row["balance"] - row["held"]
        if available < amount:
            held = f"; {self._held_words(db, number, row['held'])}" if row["held"] else ""
            raise BankError(FaultCode.INSUFFICIENT_FUNDS,
                            f"Insufficient funds in {self.branch}/{number}: "
                            f"{format_amount(available)} available, "
                            f"{format_amount(amount)} needed{held}.")

    @staticmethod
    def _held_words(db, number: str, held: int) -> str:
        """'100.00 is held by transaction T (in doubt: prepared, waiting for its
        coordinator's decision)', or the same for several (at most 3 named)."""
        holders = []
        for txn in db.execute("SELECT txid, ops FROM txns WHERE state='prepared' "
                              "ORDER BY created").fetchall():
            debit = -sum(op["delta"] for op in json.loads(txn["ops"])
                         if op["account"] == number and op["delta"] < 0)
            if debit:
                holders.append(f"{txn['txid']} ({format_amount(debit)})")
        waiting = "in doubt: prepared, waiting for the coordinator's decision"
        if len(holders) == 1:
            return (f"{format_amount(held)} is held by transaction "
                    f"{holders[0].split(' ')[0]} ({waiting})")
        more = f" and {len(holders) - 3} more" if len(holders) > 3 else ""
        return (f"{format_amount(held)} is held by {len(holders)} transactions ({waiting}): "
                f"{', '.join(holders[:3])}{more}")

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
                "decided": row["decided"] or "",
                "peers": [name for name, _ in json.loads(row["peers"])],
                "heuristic": row["heuristic"], "told": row["told"],
                "damage": row["told"] if row["told"] != row["heuristic"] else ""}


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


def _add_missing_columns(conn) -> None:
    """An older database gains the columns added since (ADDED_COLUMNS), empty, and the
    index on them (ADDED_INDEX)."""
    for table, columns in ADDED_COLUMNS.items():
        have = {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}
        for name, kind in columns:
            if name not in have:
                conn.execute(f"ALTER TABLE {table} ADD COLUMN {name} {kind}")
    conn.execute(ADDED_INDEX)


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
