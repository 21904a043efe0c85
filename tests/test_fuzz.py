"""Property-based fuzzing of every public method of a branch and of the coordinator.

Rules checked (design section 10, issue 7):
  * every public method (as listed by system.listMethods, minus system.* and the lab
    methods fault/partition/heal), called with arbitrary XML-RPC values (strings with
    unicode, empty or ~10k long; ints beyond 32 bits; floats with nan/inf; booleans;
    nil; dates; base64; nested arrays and structs; empty arrays; any number of
    arguments) either succeeds or answers a Fault whose code is one of
    errors.FaultCode, other than INTERNAL (500, "a bug"), with a sentence that shows
    no traceback, Python class name or memory address;
  * the server answers every such call and keeps serving;
  * afterwards every journal reconciles (the amounts of an account's journal add up
    to its balance), no balance is negative, 0 <= held <= balance and held is exactly
    what the in-doubt transactions hold;
  * once the run settles nothing is held or in doubt, every coordinator transfer moved
    money exactly once or not at all, local transfers net to zero, and the bank's total
    is exactly what deposits, withdrawals and openings explain.

The values travel as hand-built XML (signed like any kit client), because
xmlrpc.client refuses to send ints beyond 32 bits and nil. Strategies mix arbitrary
values with near-valid ones (real account numbers, amounts, txids, ops) so the calls
also reach the code behind the argument checks.

Reproducible: the generator is seeded (SEED below) and no example database is used;
a failure prints the falsifying call and a @reproduce_failure blob.

Inputs that hit a bug already shown by a strict xfail test at the end of this file
are counted as known (see known_bug) instead of failing the fuzz; whoever fixes the
bug removes its entry there together with the xfail mark.

Roles (issue 16): the main fuzz signs each call with the weakest role that may make it;
test_fuzz_every_method_under_every_role also signs every method with every role's key,
and a method outside the role must always get HTTP 403 and change nothing.

Traffic: 127.0.0.1 only, to the processes started here; a prepare's coordinator URL
(which a branch calls back) is always a loopback URL.
"""

import base64
import collections
import http.client
import inspect
import pathlib
import sys
import time
import urllib.parse
import xmlrpc.client

import pytest
from hypothesis import HealthCheck, given, note, seed, settings
from hypothesis import strategies as st

KIT = pathlib.Path(__file__).resolve().parent.parent
if str(KIT) not in sys.path:
    sys.path.insert(0, str(KIT))

from bank import rpc                                   # noqa: E402
from bank.branch_service import Branch                    # noqa: E402
from bank.local_cluster import LocalCluster, Member     # noqa: E402
from bank.coordinator_service import Coordinator          # noqa: E402
from bank.errors import BankError, FaultCode      # noqa: E402
from bank.keys import ROLES, may_call               # noqa: E402

SEED = 20261125                  # change it to explore further; failures replay with it
EXAMPLES = 30                    # per method: 34 methods, ~1000 calls in all
LAB_METHODS = {"fault", "partition", "heal"}
CODES = {int(code) for code in FaultCode}
LEAK_MARKERS = ("Traceback", "<class", 'File "', " at 0x", "<xmlrpc.", "<DateTime")
JOURNAL_KINDS = {"open", "deposit", "withdraw", "transfer-in", "transfer-out",
                 "2pc-debit", "2pc-credit"}
SETTLE_DEADLINE = 20.0           # seconds for in-doubt txns and phase 2 to finish

# Replication methods that can change a branch's role (fence it, make it follow someone)
# or make it call a URL it was given: each is fuzzed on a fresh branch of its own, so it
# cannot derail the money fuzz on Mumbai. Every other method is fuzzed on Mumbai.
ROLE_METHODS = ("promote", "follow", "replicate", "attach_replica", "caught_up")
BRANCH_METHODS = [m for m in Branch.PUBLIC_METHODS
                  if m not in LAB_METHODS and m not in ROLE_METHODS]
COORDINATOR_METHODS = [m for m in Coordinator.PUBLIC_METHODS if m not in LAB_METHODS]
LOOPBACK_URLS = ("http://127.0.0.1:1",)        # plus the coordinator's URL, at run time


# ---- the cluster -------------------------------------------------------------------------

@pytest.fixture(scope="module")
def bank(tmp_path_factory):
    """Mumbai and Delhi (preloaded) and a coordinator; branches ask about in-doubt
    transactions every 0.2 s so that the run settles quickly."""
    cluster = LocalCluster(home=tmp_path_factory.mktemp("fuzz"), branches=("Mumbai", "Delhi"),
                           branch_args=("--ask-every", "0.2")).start()
    yield cluster
    cluster.stop()


@pytest.fixture(scope="module")
def known_hits():
    """How often the fuzz met each known bug (printed at the end of the run)."""
    hits = collections.Counter()
    yield hits
    if hits:
        print("\nfuzz: inputs that hit known bugs:", dict(hits))


# ---- hand-built XML-RPC -----------------------------------------------------------------

def _esc(text: str) -> str:
    return (text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            .replace("\r", "&#13;"))


def encode(value) -> str:
    """One XML-RPC <value> body, for anything the strategies make (big ints and nil too)."""
    if value is None:
        return "<nil/>"
    if isinstance(value, bool):
        return f"<boolean>{int(value)}</boolean>"
    if isinstance(value, int):
        return f"<int>{value}</int>"
    if isinstance(value, float):
        return f"<double>{value!r}</double>"
    if isinstance(value, str):
        return f"<string>{_esc(value)}</string>"
    if isinstance(value, xmlrpc.client.DateTime):
        return f"<dateTime.iso8601>{_esc(value.value)}</dateTime.iso8601>"
    if isinstance(value, xmlrpc.client.Binary):
        return f"<base64>{base64.b64encode(value.data).decode()}</base64>"
    if isinstance(value, list):
        return "<array><data>" + "".join(f"<value>{encode(v)}</value>" for v in value) + \
               "</data></array>"
    if isinstance(value, dict):
        return "<struct>" + "".join(f"<member><name>{_esc(k)}</name><value>{encode(v)}"
                                    f"</value></member>" for k, v in value.items()) + \
               "</struct>"
    raise TypeError(f"cannot encode {type(value).__name__}")


def call_body(method: str, args) -> bytes:
    params = "".join(f"<param><value>{encode(a)}</value></param>" for a in args)
    return (f'<?xml version="1.0" encoding="utf-8"?><methodCall><methodName>{_esc(method)}'
            f"</methodName><params>{params}</params></methodCall>").encode("utf-8")


class Wire:
    """A kept-alive, signed HTTP connection to one server of the kit (loopback only)."""

    def __init__(self, url: str, secret, role: str = ""):
        parts = urllib.parse.urlsplit(url)
        assert parts.hostname == "127.0.0.1"
        self.address, self.secret, self.role = (parts.hostname, parts.port), secret, role
        self.conn = http.client.HTTPConnection(*self.address, timeout=30)
        self.server_id = rpc.server_id_at(url)      # signatures name the server

    def post(self, body: bytes):
        """("ok", result) | ("fault", code, sentence) | ("http", status, text) | ("dropped", why)"""
        headers = {"Content-Type": "text/xml", "Content-Length": str(len(body)),
                   **rpc.sign(self.secret, body, self.server_id, role=self.role)}
        try:
            self.conn.request("POST", "/", body, headers)
            resp = self.conn.getresponse()
            data = resp.read()
        except (http.client.HTTPException, OSError) as exc:
            self.conn.close()
            return ("dropped", repr(exc))
        if resp.status != 200:
            return ("http", resp.status, data[:200])
        try:
            return ("ok", xmlrpc.client.loads(data)[0][0])
        except xmlrpc.client.Fault as fault:
            return ("fault", fault.faultCode, fault.faultString)


# ---- strategies ------------------------------------------------------------------------

XML_CHARS = st.characters(exclude_categories=("Cs",),
                          exclude_characters=[chr(c) for c in range(32) if c not in (9, 10, 13)]
                          + ["\ufffe", "\uffff"])
TEXT = st.text(XML_CHARS, max_size=40)
HUGE_TEXT = st.builds(lambda ch, n: ch * n, XML_CHARS, st.integers(1000, 10_000))
ODD_DIGITS = st.sampled_from(["\u00b2", "\u0967\u0966", "\u09ea", "\uff11\uff10", "9" * 5000,
                              " 12 ", "1_000", "0x10", "1e2", "\u0661\u0660\u0660\u0661"])
SCALARS = st.one_of(
    TEXT, HUGE_TEXT, ODD_DIGITS,
    st.integers(-2**31, 2**31 - 1), st.integers(-2**80, 2**80),     # beyond 32 bits too
    st.floats(), st.booleans(), st.none(),
    st.builds(xmlrpc.client.DateTime, st.sampled_from(["20261125T13:01:02", "", "not a date"])),
    st.builds(xmlrpc.client.Binary, st.binary(max_size=24)),
)
VALUES = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=4)
                      | st.dictionaries(st.text(XML_CHARS, max_size=10), inner, max_size=4),
                      max_leaves=8)


class Sentinel(str):
    """Replaced just before sending: the coordinator's URL, or a txid it made."""


COORD_URL = Sentinel("<coordinator url>")
SEEN_TXID = Sentinel("<a txid the coordinator made>")

NUMBERS = st.sampled_from(["1001", "1002", "1003", "9999", "0", "000000001001", " 1001 ",
                           "1001.0", "-1001", "1" * 13, "1001\n"]) | st.integers(0, 10**13)
AMOUNTS = (st.sampled_from(["0.01", "1", "2.50", "10.00", "0", "-1", "1.234", "1e3", " 3 ",
                            "1000000000.00", "1000000000.01", "NaN", "Infinity", "1,000"])
           | st.integers(-3, 5) | st.floats(-10, 10))
DELTAS = st.sampled_from(["+1.00", "-1.00", "-0.01", "+0.50", "5", "-5000000.00", "+-1", "--1",
                          "0", "-0"])
TOKENS = (st.from_regex(r"[A-Za-z0-9_.:-]{1,64}", fullmatch=True)
          | st.sampled_from(["t1", "t2", "r1", "r2", "", "C1-x", "a" * 65, "bad id", "t1\n"]))
OPS = (st.lists(st.fixed_dictionaries({"account": NUMBERS, "delta": DELTAS}), max_size=3)
       | st.lists(st.fixed_dictionaries({"account": NUMBERS, "delta": DELTAS},
                                        optional={"extra": VALUES}), max_size=2)
       | st.just([{"account": "1002", "delta": "+0.01"}] * 65))
URLS = st.sampled_from([COORD_URL, COORD_URL, "http://127.0.0.1:1", "x", ""])
LIMITS = st.sampled_from(["", "5", "10000", "10001", "0", " 7 "]) | st.integers(-1, 20_000)
OWNERS = st.sampled_from(["Meera Iyer", "", "   ", "A" * 81, "Tab\there", "Zo\u00eb \U0001f600",
                          "line\nbreak", "\u202eevil"])
REFS = st.sampled_from(["Mumbai/1001", "Mumbai/1002", "Delhi/1001", "Delhi/1002", "Nowhere/1001",
                        "Mumbai/9999", "Mumbai", "mumbai/1001", "Mumbai/1001/2", "/1001",
                        "Mumbai/", " Delhi/1002 "])
BRANCH_NAMES = st.sampled_from(["Mumbai", "Delhi", "Nowhere", "", "mumbai", "Mumbai/1001"])
STATES = st.sampled_from(["", "committed", "aborted", "in-doubt", "bogus"])

NEAR = {
    "branch": st.one_of(NUMBERS, AMOUNTS, DELTAS, TOKENS, OPS, URLS, LIMITS, OWNERS),
    "coordinator": st.one_of(REFS, AMOUNTS, TOKENS, LIMITS, OWNERS, BRANCH_NAMES, STATES,
                             st.just(SEEN_TXID)),
}


def args_strategy(service_class, method: str, server: str):
    """Argument lists: mostly the right count of near-valid or arbitrary values, sometimes
    any count of arbitrary ones."""
    params = list(inspect.signature(getattr(service_class, method)).parameters.values())[1:]
    required = sum(p.default is inspect.Parameter.empty for p in params)
    arg = st.one_of(NEAR[server], NEAR[server], VALUES)
    return st.one_of(st.lists(arg, min_size=required, max_size=len(params)),
                     st.lists(arg, min_size=required, max_size=len(params)),
                     st.lists(VALUES, max_size=len(params) + 2))


# ---- known bugs (each shown by a strict xfail test at the end of this file) -------------

def known_bug(server, method, args, code, text):
    """The name of the known bug this answer shows, or None (none are open now)."""
    return None


# ---- the fuzz driver -------------------------------------------------------------------

def _resolve(value, ctx):
    if isinstance(value, Sentinel):
        if value == COORD_URL:
            return ctx["coordinator_url"]
        return ctx["txids"][-1] if ctx["txids"] else "C1-none"
    if isinstance(value, list):
        return [_resolve(v, ctx) for v in value]
    if isinstance(value, dict):
        return {k: _resolve(v, ctx) for k, v in value.items()}
    return value


def _loopback_only(value, ctx):
    """Branches call back URLs they are given (a prepare's coordinator, a replica, a
    primary): any text that could be an http(s) URL and is not one of ours becomes an
    address on 127.0.0.1 where nothing listens."""
    if isinstance(value, list):
        return [_loopback_only(v, ctx) for v in value]
    if isinstance(value, dict):
        return {k: _loopback_only(v, ctx) for k, v in value.items()}
    if isinstance(value, str) and value.strip().lower().startswith("http") \
            and value not in (ctx["coordinator_url"], *LOOPBACK_URLS):
        return LOOPBACK_URLS[0]
    return value


def fuzz_method(bank, known_hits, server: str, method: str, url: str, role: str = "",
                examples: int = EXAMPLES):
    """Fuzz one method of one server (server: "branch" or "coordinator"; url: where),
    signed with `role`'s key (by default the weakest role that may call it)."""
    service_class = Branch if server == "branch" else Coordinator
    wire = Wire(url, bank.secret, role)
    ctx = {"coordinator_url": bank.coordinator_url, "txids": []}
    refused = bool(role) and not may_call(role, method)

    @seed(SEED)
    @settings(max_examples=examples, deadline=None, database=None, print_blob=True,
              suppress_health_check=list(HealthCheck))
    @given(raw_args=args_strategy(service_class, method, server))
    def one_call(raw_args):
        args = _loopback_only(_resolve(raw_args, ctx), ctx)
        body = call_body(method, args)
        note(f"{server}.{method}{tuple(args)!r:.600}")
        answer = wire.post(body)
        note(f"answer: {answer!r:.600}")
        kind = answer[0]
        assert kind != "dropped", "the server did not answer"
        if kind == "http":
            too_big = answer[1] == 413 and len(body) > rpc.MAX_BODY
            assert too_big or (refused and answer[1] == 403), "unexpected HTTP refusal"
            return
        assert not refused, f"the {role} key was allowed {method}"
        if kind == "ok":
            if method == "transfer" and isinstance(answer[1], dict) and answer[1].get("txid"):
                ctx["txids"].append(answer[1]["txid"])
            return
        _, code, text = answer
        assert code in CODES, f"fault code {code} is not one of errors.FaultCode"
        assert isinstance(text, str) and text.strip(), "a fault needs a sentence"
        leaks = [m for m in LEAK_MARKERS if m in text]
        if code == FaultCode.INTERNAL or leaks:
            bug = known_bug(server, method, args, code, text)
            assert bug, f"INTERNAL fault or leak {leaks} not explained by a known bug"
            known_hits[bug] += 1

    one_call()
    assert Wire(url, bank.secret).post(call_body("ping", []))[0] == "ok"


def ledgers(bank, extra=None) -> dict:
    """Per branch: accounts, the whole journal and the in-doubt transactions.

    extra: more branches outside the coordinator's bank, {name: rpc.Client}."""
    out = {}
    clients = {name: bank.client(name) for name in bank.branch_names}
    clients.update(extra or {})
    for name, client in clients.items():
        out[name] = {"accounts": client.call("accounts"),
                     "journal": client.call("journal", "", 10000),
                     "in_doubt": client.call("in_doubt")}
        assert len(out[name]["journal"]) < 10000, "journal too long to check in one call"
    return out


def cents(text: str) -> int:
    sign = -1 if text.startswith("-") else 1
    units, _, frac = text.lstrip("+-").partition(".")
    return sign * (int(units) * 100 + int(frac.ljust(2, "0") or 0))


def assert_ledgers_consistent(bank, extra=None) -> dict:
    """Every journal reconciles, no negative balance, held within the balance and equal
    to what the in-doubt transactions hold; returns the ledgers."""
    books = ledgers(bank, extra)
    for name, book in books.items():
        totals = collections.Counter()
        for row in book["journal"]:
            assert row["kind"] in JOURNAL_KINDS, row
            totals[row["account"]] += cents(row["amount"])
        holds = collections.Counter()
        for txn in book["in_doubt"]:
            for op in txn["ops"]:
                if cents(op["delta"]) < 0:
                    holds[op["account"]] -= cents(op["delta"])
        numbers = {a["number"] for a in book["accounts"]}
        assert set(totals) <= numbers, f"{name}: journal rows for unknown accounts"
        for acct in book["accounts"]:
            balance, held = cents(acct["balance"]), cents(acct["held"])
            where = f"{name}/{acct['number']}"
            assert totals[acct["number"]] == balance, f"{where}: journal does not reconcile"
            assert balance >= 0, f"{where}: negative balance"
            assert 0 <= held <= balance, f"{where}: held {held} outside 0..{balance}"
            assert held == holds[acct["number"]], f"{where}: held differs from in-doubt ops"
            assert cents(acct["available"]) == balance - held
    return books


# ---- the tests -------------------------------------------------------------------------

@pytest.mark.parametrize("server", ["Mumbai", "coordinator"])
def test_fuzz_covers_every_listed_method(bank, server):
    """The fuzzed methods are exactly what system.listMethods lists to the three roles
    together (each key sees only its role's methods), minus system.* and the lab
    methods (fault, partition, heal)."""
    url = bank.members[server].url
    listed = {m for role in ROLES
              for m in rpc.Client(url, bank.secret.only(role)).call("system.listMethods")}
    public = {m for m in listed if not m.startswith("system.") and m not in LAB_METHODS}
    fuzzed = BRANCH_METHODS + list(ROLE_METHODS) if server == "Mumbai" else COORDINATOR_METHODS
    assert public == set(fuzzed)


@pytest.mark.parametrize("method", BRANCH_METHODS)
def test_fuzz_branch_method(bank, known_hits, method):
    """Arbitrary arguments to a branch method: success or a documented Fault (never
    INTERNAL, never internals in the sentence), the branch keeps serving, and the
    ledgers stay consistent."""
    fuzz_method(bank, known_hits, "branch", method, bank.members["Mumbai"].url)
    assert_ledgers_consistent(bank)


@pytest.fixture
def fresh_branch(bank, tmp_path):
    """A branch of its own, "Pune" (preloaded, the bank's secret, no replicas), killed by
    pid afterwards."""
    for sub in ("data", "logs"):
        (tmp_path / sub).mkdir()
    member = Member("Pune", "branch.py",
                    ["--name", "Pune", "--db", str(tmp_path / "data" / "Pune.db"), "--preload",
                     "--secret-file", str(bank.secret_file), "--ask-every", "0.2"], tmp_path)
    try:
        member.start()
        yield member
    finally:
        member.kill()


@pytest.mark.parametrize("method", ROLE_METHODS)
def test_fuzz_branch_replication_method(bank, known_hits, fresh_branch, method):
    """Arbitrary arguments to a replication method of a branch (on a fresh branch of its
    own): success or a documented Fault, the branch keeps serving, its ledger stays
    consistent."""
    fuzz_method(bank, known_hits, "branch", method, fresh_branch.url)
    assert_ledgers_consistent(bank, {"Pune": rpc.Client(fresh_branch.url, bank.secret)})


@pytest.mark.parametrize("method", COORDINATOR_METHODS)
def test_fuzz_coordinator_method(bank, known_hits, method):
    """Arbitrary arguments to a coordinator method: success or a documented Fault (never
    INTERNAL, never internals in the sentence), the coordinator keeps serving, and the
    branches' ledgers stay consistent."""
    fuzz_method(bank, known_hits, "coordinator", method, bank.coordinator_url)
    assert_ledgers_consistent(bank)


# Every method under every role: refused ones must all be 403 (and change nothing: the
# ledgers are checked after each); allowed ones are fuzzed with that role's key, except
# those that would derail the money fuzz on Mumbai (the lab controls, which arm crashes,
# and the replication methods, fuzzed on a fresh branch above).
ROLE_EXAMPLES = 4
ROLE_CASES = [(role, server, method) for role in ROLES
              for server, methods in (("branch", BRANCH_METHODS + list(ROLE_METHODS) + ["fault"]),
                                      ("coordinator", COORDINATOR_METHODS + sorted(LAB_METHODS)))
              for method in methods
              if not may_call(role, method)
              or (method not in LAB_METHODS and method not in ROLE_METHODS)]


def _money(bank) -> dict:
    """Balances and journals (what a refused call must not change; holds may still be
    released meanwhile by the termination protocol of earlier fuzzed prepares)."""
    return {name: ([(a["number"], a["balance"]) for a in books["accounts"]], books["journal"])
            for name, books in ledgers(bank).items()}


@pytest.mark.parametrize("role,server,method", ROLE_CASES)
def test_fuzz_every_method_under_every_role(bank, known_hits, role, server, method):
    """Arbitrary arguments to every method signed with every role's key: a method outside
    the role is always refused with HTTP 403 and changes nothing; one inside it succeeds
    or answers a documented Fault; the ledgers stay consistent."""
    before = _money(bank) if not may_call(role, method) else None
    url = bank.members["Mumbai"].url if server == "branch" else bank.coordinator_url
    fuzz_method(bank, known_hits, server, method, url, role, ROLE_EXAMPLES)
    if before is not None:
        assert _money(bank) == before
    assert_ledgers_consistent(bank)


def _settle(bank) -> list:
    """Finish what the fuzz left open; returns the coordinator's transactions.

    Prepares sent straight to a branch naming no real coordinator can only be decided
    by whoever sent them: we are that coordinator, and abort them. Those naming the
    real coordinator must be resolved by the branches themselves (termination protocol,
    presumed abort); the coordinator's own transfers must finish phase 2.
    """
    coordinator = bank.coordinator()
    for name in bank.branch_names:
        client = bank.client(name)
        for txn in client.call("in_doubt"):
            if txn["coordinator"] != bank.coordinator_url:
                client.call("abort", txn["txid"])
    deadline = time.monotonic() + SETTLE_DEADLINE
    while True:
        coordinator.call("recover")
        waiting = {n: [t["txid"] for t in bank.client(n).call("in_doubt")]
                   for n in bank.branch_names}
        txns = coordinator.call("transactions", 10000)
        open_txns = [t["txid"] for t in txns
                     if t["state"] in ("preparing", "committing", "aborting")]
        if not any(waiting.values()) and not open_txns:
            return txns
        assert time.monotonic() < deadline, f"not settled: {waiting} {open_txns}"
        time.sleep(0.1)                          # polling, with the deadline above


def test_after_the_fuzz_nothing_is_held_and_money_is_conserved(bank):
    """After the fuzz settles: nothing held or in doubt; journals reconcile; each
    committed coordinator transfer moved its amount exactly once (one debit, one equal
    credit), each aborted one moved nothing; local transfers net to zero per branch;
    the bank's total is exactly what openings, deposits, withdrawals and one-sided
    participant txns (prepared straight at a branch by the fuzz) explain."""
    txns = _settle(bank)
    books = assert_ledgers_consistent(bank)
    rows = [r for book in books.values() for r in book["journal"]]
    for name, book in books.items():
        assert not book["in_doubt"]
        assert all(cents(a["held"]) == 0 for a in book["accounts"]), name
        local = [r for r in book["journal"] if r["kind"] in ("transfer-in", "transfer-out")]
        assert sum(cents(r["amount"]) for r in local) == 0, f"{name}: local transfers"
    by_txid = collections.defaultdict(list)
    for row in rows:
        if row["txid"]:
            by_txid[row["txid"]].append(row)
    coordinator_txids = set()
    for txn in txns:
        if not txn["txid"]:
            continue
        coordinator_txids.add(txn["txid"])
        moved = by_txid.get(txn["txid"], [])
        if txn["outcome"] == "committed":
            assert sorted(r["kind"] for r in moved) == ["2pc-credit", "2pc-debit"], txn
            assert sum(cents(r["amount"]) for r in moved) == 0, txn
            assert cents(moved[0]["amount"]) in (cents(txn["amount"]), -cents(txn["amount"]))
        else:
            assert not moved, f"an aborted transfer moved money: {txn} {moved}"
    external = sum(cents(r["amount"]) for r in rows
                   if r["kind"] in ("open", "deposit", "withdraw")
                   or (r["kind"].startswith("2pc-") and r["txid"] not in coordinator_txids))
    total = sum(cents(a["balance"]) for book in books.values() for a in book["accounts"])
    assert total == external
    for name in (*bank.branch_names, "coordinator"):
        assert bank.client(name).call("ping")


# ---- bugs the fuzz found: regressions for the fixed ones, strict xfail for the open ones

def _fault(url, secret, method, *args):
    return Wire(url, secret).post(call_body(method, list(args)))


def test_decision_with_a_list_as_asker_is_bad_input(bank):
    """decision(txid, asker) with a non-text asker is BAD_INPUT (400), not INTERNAL."""
    answer = _fault(bank.coordinator_url, bank.secret, "decision", "t1", ["Mumbai"])
    assert answer[:2] == ("fault", FaultCode.BAD_INPUT), answer


@pytest.mark.parametrize("limit", ["\u00b2", "9" * 5000])
@pytest.mark.parametrize("target", ["branch-journal", "coordinator-transactions"])
def test_limit_with_odd_digits_is_bad_input(bank, target, limit):
    """A limit that is not a plain ASCII whole number is BAD_INPUT (400), not INTERNAL."""
    if target == "branch-journal":
        answer = _fault(bank.members["Mumbai"].url, bank.secret, "journal", "1001", limit)
    else:
        answer = _fault(bank.coordinator_url, bank.secret, "transactions", limit)
    assert answer[:2] == ("fault", FaultCode.BAD_INPUT), answer


@pytest.mark.parametrize("value", [xmlrpc.client.DateTime("20261125T13:01:02"),
                                   xmlrpc.client.Binary(b"\x00\x01")],
                         ids=["dateTime", "base64"])
@pytest.mark.parametrize("method", ["account", "deposit"])
def test_fault_sentence_shows_no_class_name_or_address(bank, method, value):
    """A Fault sentence about a bad argument never shows a Python class name or a memory
    address, whatever the argument's XML-RPC type."""
    args = [value] if method == "account" else ["1001", value]
    answer = _fault(bank.members["Mumbai"].url, bank.secret, method, *args)
    assert answer[0] == "fault" and answer[1] in (FaultCode.BAD_INPUT, FaultCode.BAD_AMOUNT)
    assert not [m for m in LEAK_MARKERS if m in answer[2]], answer[2]


def test_amount_with_non_ascii_digits_is_refused(bank):
    """Amounts are ASCII digits only ("one obvious spelling"): the Bengali digit four,
    which looks like an 8, is BAD_AMOUNT (422) and moves nothing."""
    mumbai = bank.client("Mumbai")
    before = mumbai.call("account", "1002")
    answer = _fault(bank.members["Mumbai"].url, bank.secret, "deposit", "1002", "\u09ea")
    if answer[0] == "ok":                      # undo the stray deposit
        mumbai.call("withdraw", "1002", "4.00")
    assert answer[:2] == ("fault", FaultCode.BAD_AMOUNT), answer
    assert mumbai.call("account", "1002") == before


def test_token_with_trailing_newline_is_refused(bank):
    """Txids and request ids are 1-64 of letters, digits and _ . : - only: 't1\\n' is
    BAD_INPUT (400)."""
    answer = _fault(bank.members["Mumbai"].url, bank.secret, "status", "t1\n")
    assert answer[:2] == ("fault", FaultCode.BAD_INPUT), answer


def _fresh(fresh_branch, bank):
    return Wire(fresh_branch.url, bank.secret)


@pytest.mark.parametrize("bad_url", ["http://[::1", "http://127.0.0.1:x", "https://127.0.0.1:1"])
def test_an_unusable_coordinator_url_does_not_stall_the_termination_protocol(
        bank, fresh_branch, bad_url):
    """A prepare naming a coordinator URL that is not http(s) is BAD_INPUT; one naming an
    http URL that cannot be used stays in doubt, but does not keep the branch from
    resolving its other in-doubt txns (presumed abort from the real coordinator, asked
    every 0.2 s here)."""
    client = rpc.Client(fresh_branch.url, bank.secret)
    op = [{"account": "1001", "delta": "-1.00"}]
    with pytest.raises(BankError) as err:
        client.call("prepare", "no-url-1", "x", op)
    assert err.value.code == FaultCode.BAD_INPUT
    assert client.call("prepare", "bad-url-1", bad_url, op)["vote"] == "yes"
    assert client.call("prepare", "good-1", bank.coordinator_url, op)["vote"] == "yes"
    deadline = time.monotonic() + 5
    while client.call("status", "good-1")["state"] == "prepared" \
            and time.monotonic() < deadline:
        time.sleep(0.05)                       # polling, with a deadline
    assert client.call("status", "good-1")["state"] == "aborted"
    assert client.call("status", "bad-url-1")["state"] == "prepared"
    client.call("abort", "bad-url-1")          # we were its coordinator: release the hold
    assert client.call("account", "1001")["held"] == "0.00"


def test_a_non_http_replica_url_does_not_poison_writes(bank, fresh_branch):
    """A replica URL that is not http(s) is refused (400); later writes are answered
    normally (before the fix, caught_up('x') left a link that made every later write
    apply but answer Fault 500)."""
    wire = _fresh(fresh_branch, bank)
    for method in ("attach_replica", "caught_up"):
        answer = wire.post(call_body(method, ["x", 0]))
        assert answer[:2] == ("fault", FaultCode.BAD_INPUT), answer
    answer = wire.post(call_body("deposit", ["1001", "1.00"]))
    assert answer[0] == "ok", answer


def test_attach_replica_refuses_a_text_position(bank, fresh_branch):
    """attach_replica(url, applied) with a text `applied` is BAD_INPUT and replication()
    keeps working."""
    wire = _fresh(fresh_branch, bank)
    answer = wire.post(call_body("attach_replica", ["http://127.0.0.1:1", "abc"]))
    status = wire.post(call_body("replication", []))
    assert answer[:2] == ("fault", FaultCode.BAD_INPUT) and status[0] == "ok", (answer, status)


@pytest.mark.parametrize("case", ["attach_replica-2**40", "changes_since-2**70"])
def test_replog_positions_beyond_range_are_bad_input(bank, fresh_branch, case):
    """A replog position too big for XML-RPC ints (2**31) or SQLite (2**63) is BAD_INPUT
    (400), and replication() keeps working."""
    wire = _fresh(fresh_branch, bank)
    if case == "attach_replica-2**40":
        answer = wire.post(call_body("attach_replica", ["http://127.0.0.1:1", 2**40]))
    else:
        answer = wire.post(call_body("changes_since", [2**70]))
    status = wire.post(call_body("replication", []))
    assert answer[:2] == ("fault", FaultCode.BAD_INPUT) and status[0] == "ok", (answer, status)


def test_replicate_with_a_text_epoch_is_bad_input(bank, fresh_branch):
    """replicate(epoch, ...) with an epoch that is not a whole number is BAD_INPUT (400)."""
    answer = _fresh(fresh_branch, bank).post(call_body("replicate", ["5", [], 0, []]))
    assert answer[:2] == ("fault", FaultCode.BAD_INPUT), answer
