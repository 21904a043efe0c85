"""A real branch process over loopback: crashes, recovery, load, the wire and its guards.

Each test starts its own branch (fixtures in conftest.py) on a port the OS picks, except
the refusal tables and introspection tests, which share one branch per module and compare
"before" with "after" themselves. Everything talks only to 127.0.0.1. Crashes are real:
an armed fault point ends the process with os._exit, or the test kills it with
Popen.kill() (SIGKILL); the restart runs on the same port and database.
"""

import concurrent.futures
import http.client
import os
import random
import subprocess
import sys
import threading
import time
import urllib.parse
import xml.etree.ElementTree as ET
import xmlrpc.client

import pytest

from bank import local_cluster as cluster
from bank import rpc
from bank.branch_service import Branch
from bank.errors import BankError, FaultCode
from bank.faults import CRASH_EXIT_CODE
from bank.money import format_amount, parse_amount

pytestmark = pytest.mark.slow          # real processes

OPS = [{"account": "1001", "delta": "-50.00"}, {"account": "1002", "delta": "+50.00"}]


# ---- helpers ---------------------------------------------------------------------------

@pytest.fixture
def shared_client(shared_branch_url) -> rpc.Client:
    """An rpc.Client for the module's shared branch (tests that change nothing)."""
    return rpc.Client(shared_branch_url, label="Mumbai")


def minor(text: str) -> int:
    """A signed wire amount ("-50.00", "0.00") as minor units."""
    if text.startswith("-"):
        return -parse_amount(text[1:], allow_zero=True)
    return parse_amount(text, allow_zero=True)


def money(client, number):
    """(balance, held) of one account, as wire strings."""
    acct = client.call("account", number)
    return acct["balance"], acct["held"]


def txn_rows(client, txid):
    """The journal rows a txid produced on this branch."""
    return [(r["account"], r["amount"]) for r in client.call("journal", "", 10_000)
            if r["txid"] == txid]


def snapshot(client):
    """Everything a client can see of the branch (to prove that nothing changed)."""
    return (client.call("accounts"), client.call("journal", "", 10_000),
            client.call("in_doubt"))


def crash_at(member, client, point, method, *args):
    """Arm `point`, call `method`, and see the branch die there without answering."""
    client.call("fault", point)
    with pytest.raises(BankError) as info:
        client.call(method, *args)
    assert info.value.code is FaultCode.UNAVAILABLE, info.value.message
    assert member.wait_exit(timeout=10) == CRASH_EXIT_CODE, member.last_output()


def raw_post(url, body, headers, path="/"):
    """POST exactly these headers and bytes with http.client (no xmlrpc.client)."""
    parts = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    try:
        conn.putrequest("POST", path, skip_accept_encoding=True)
        for key, value in headers.items():
            conn.putheader(key, value)
        conn.endheaders()
        if body:
            conn.send(body)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def xml_call(method, *params) -> bytes:
    """A methodCall written by hand, as a student would in another language."""
    values = "".join(f"<param><value>{p}</value></param>" for p in params)
    return (f'<?xml version="1.0"?><methodCall><methodName>{method}</methodName>'
            f"<params>{values}</params></methodCall>").encode()


def assert_one_sentence(text: str):
    """A refusal is one plain sentence: no traceback, no Python class names."""
    assert text and "\n" not in text and len(text) < 300, text
    assert "Traceback" not in text and "<class" not in text and 'File "' not in text, text


# ---- crashes around the vote -----------------------------------------------------------

def test_crash_after_yes_vote_keeps_txn_prepared_then_commit_applies_once(
        branch_member, branch_client, dead_url):
    """A participant that voted yes and died before replying comes back still prepared,
    with the funds still held; the coordinator's commit then applies exactly once."""
    crash_at(branch_member, branch_client, "crash-after-vote",
             "prepare", "T-vote", dead_url, OPS)
    branch_member.start()                               # same port, same database

    assert branch_client.call("status", "T-vote")["state"] == "prepared"
    assert [t["txid"] for t in branch_client.call("in_doubt")] == ["T-vote"]
    assert money(branch_client, "1001") == ("10000.00", "50.00")
    assert branch_client.call("prepare", "T-vote", dead_url, OPS)["vote"] == "yes"

    assert branch_client.call("commit", "T-vote")["state"] == "committed"
    assert branch_client.call("commit", "T-vote")["state"] == "committed"     # a retry
    assert money(branch_client, "1001") == ("9950.00", "0.00")
    assert money(branch_client, "1002") == ("5050.00", "0.00")
    assert sorted(txn_rows(branch_client, "T-vote")) == [("1001", "-50.00"), ("1002", "50.00")]
    assert branch_client.call("in_doubt") == []


def test_crash_after_yes_vote_then_abort_releases_the_hold(
        branch_member, branch_client, dead_url):
    """A prepared txn that survived a crash is released by abort: no money moves, no hold
    remains, and a later commit of it is a protocol violation."""
    crash_at(branch_member, branch_client, "crash-after-vote",
             "prepare", "T-vote", dead_url, OPS)
    branch_member.start()
    assert money(branch_client, "1001") == ("10000.00", "50.00")

    assert branch_client.call("abort", "T-vote")["state"] == "aborted"
    assert money(branch_client, "1001") == ("10000.00", "0.00")
    assert money(branch_client, "1002") == ("5000.00", "0.00")
    assert txn_rows(branch_client, "T-vote") == []
    with pytest.raises(BankError) as info:
        branch_client.call("commit", "T-vote")
    assert info.value.code is FaultCode.PROTOCOL_VIOLATION


def test_killed_after_yes_vote_stays_prepared(branch_member, branch_client, dead_url):
    """The yes vote is durable before it is sent: SIGKILL after a yes (no fault point)
    leaves the txn prepared with its hold, and commit then applies once."""
    assert branch_client.call("prepare", "T-kill", dead_url, OPS)["vote"] == "yes"
    branch_member.kill()
    branch_member.start()

    assert branch_client.call("status", "T-kill")["state"] == "prepared"
    assert money(branch_client, "1001") == ("10000.00", "50.00")
    assert branch_client.call("commit", "T-kill")["state"] == "committed"
    assert money(branch_client, "1001") == ("9950.00", "0.00")
    assert len(txn_rows(branch_client, "T-kill")) == 2


def test_crash_before_vote_leaves_nothing(branch_member, branch_client, dead_url):
    """A crash after receiving prepare but before recording anything leaves the txid
    unknown and nothing held; a retried prepare is then a fresh one."""
    before = snapshot(branch_client)
    crash_at(branch_member, branch_client, "crash-before-vote", "prepare", "T-early", dead_url,
             OPS)
    branch_member.start()

    assert branch_client.call("status", "T-early")["state"] == "unknown"
    assert snapshot(branch_client) == before
    assert branch_client.call("prepare", "T-early", dead_url, OPS)["vote"] == "yes"


def test_crash_before_commit_keeps_txn_prepared(branch_member, branch_client, dead_url):
    """A crash on receiving commit, before applying it, leaves the txn prepared (held),
    and the coordinator's retried commit applies it once."""
    branch_client.call("prepare", "T-c", dead_url, OPS)
    crash_at(branch_member, branch_client, "crash-before-commit", "commit", "T-c")
    branch_member.start()

    assert branch_client.call("status", "T-c")["state"] == "prepared"
    assert money(branch_client, "1001") == ("10000.00", "50.00")
    assert branch_client.call("commit", "T-c")["state"] == "committed"
    assert money(branch_client, "1001") == ("9950.00", "0.00")


def test_crash_after_commit_is_durable_and_a_repeated_commit_answers_ok(
        branch_member, branch_client, dead_url):
    """Commit is durable before the ack: after a crash that swallowed the ack, the txn is
    committed, and the coordinator's retried commit answers ok without applying again,
    and says so (again: P3)."""
    branch_client.call("prepare", "T-done", dead_url, OPS)
    crash_at(branch_member, branch_client, "crash-after-commit", "commit", "T-done")
    branch_member.start()

    assert branch_client.call("status", "T-done")["state"] == "committed"
    assert branch_client.call("commit", "T-done") == {"txid": "T-done", "state": "committed",
                                                      "again": True}
    assert money(branch_client, "1001") == ("9950.00", "0.00")
    assert money(branch_client, "1002") == ("5050.00", "0.00")
    assert sorted(txn_rows(branch_client, "T-done")) == [("1001", "-50.00"), ("1002", "50.00")]
    with pytest.raises(BankError) as info:
        branch_client.call("abort", "T-done")
    assert info.value.code is FaultCode.PROTOCOL_VIOLATION


def test_protocol_violations_are_faults_on_the_wire(branch_client, dead_url):
    """Over the wire too: commit of an unknown txid is refused with 409 and one sentence;
    abort of an unknown txid is recorded, so that a late prepare votes no and holds nothing."""
    with pytest.raises(BankError) as info:
        branch_client.call("commit", "T-never")
    assert info.value.code is FaultCode.PROTOCOL_VIOLATION
    assert_one_sentence(info.value.message)
    assert branch_client.call("status", "T-never")["state"] == "unknown"

    assert branch_client.call("abort", "T-late")["state"] == "aborted"
    assert branch_client.call("prepare", "T-late", dead_url, OPS)["vote"] == "no"
    assert money(branch_client, "1001") == ("10000.00", "0.00")


# ---- the termination protocol: an in-doubt branch asks the coordinator -----------------

class FakeCoordinator:
    """Answers decision(txid) from a dict the test fills in; remembers who asked."""
    PUBLIC_METHODS = ("decision",)
    name = "fake-coordinator"

    def __init__(self):
        self.decisions, self.asked = {}, []

    def decision(self, txid, branch=""):
        """The decision on txid: committed, aborted, or "" while undecided."""
        self.asked.append(txid)
        return {"txid": txid, "decision": self.decisions.get(txid, "")}


@pytest.fixture
def fake_coordinator():
    """A FakeCoordinator served on loopback (port from the OS), with its URL as .url."""
    fake = FakeCoordinator()
    server = rpc.Server(fake, "127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    fake.url = server.url
    yield fake
    server.shutdown()
    server.server_close()
    thread.join(timeout=10)


def wait_until(predicate, what, timeout=10.0):
    """Poll `predicate` until it is true, or fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting until {what}")
        time.sleep(0.05)                          # polling, with a deadline


def test_in_doubt_txn_waits_while_the_coordinator_has_no_decision(
        start_branch, fake_coordinator):
    """A prepared txn never decides by itself: the branch keeps asking the coordinator,
    and while there is no decision the txn stays prepared with its funds held."""
    member = start_branch(extra=("--ask-every", "0.05"))
    client = rpc.Client(member.url)
    client.call("prepare", "T-wait", fake_coordinator.url, OPS)
    wait_until(lambda: fake_coordinator.asked.count("T-wait") >= 3,
               "the branch asked for the decision three times")
    assert client.call("status", "T-wait")["state"] == "prepared"
    assert money(client, "1001") == ("10000.00", "50.00")


@pytest.mark.parametrize("decision, balance", [("committed", "9950.00"),
                                               ("aborted", "10000.00")])
def test_restarted_branch_learns_the_decision_from_the_coordinator(
        start_branch, fake_coordinator, decision, balance):
    """After a crash, a branch with an in-doubt txn asks its coordinator and applies the
    decision it learns (termination protocol), exactly once."""
    member = start_branch(extra=("--ask-every", "0.05"))
    client = rpc.Client(member.url)
    client.call("prepare", "T-ask", fake_coordinator.url, OPS)
    member.kill()
    fake_coordinator.decisions["T-ask"] = decision
    member.start()
    wait_until(lambda: client.call("status", "T-ask")["state"] == decision,
               f"the branch learned {decision}")
    assert money(client, "1001") == (balance, "0.00")
    assert len(txn_rows(client, "T-ask")) == (2 if decision == "committed" else 0)


def test_one_bad_coordinator_url_does_not_block_other_in_doubt_txns(
        start_branch, fake_coordinator):
    """Each in-doubt txn is resolved on its own: a coordinator that cannot be asked delays
    only its own transactions (and a prepare naming no http URL is refused outright)."""
    member = start_branch(extra=("--ask-every", "0.05"))
    client = rpc.Client(member.url)
    with pytest.raises(BankError) as refused:
        client.call("prepare", "T-bad", "not-a-url", [{"account": "1001", "delta": "-1"}])
    assert refused.value.code == FaultCode.BAD_INPUT
    client.call("prepare", "T-bad", "http://bad host:port/", [{"account": "1001", "delta": "-1"}])
    client.call("prepare", "T-good", fake_coordinator.url, OPS)
    fake_coordinator.decisions["T-good"] = "committed"
    wait_until(lambda: client.call("status", "T-good")["state"] == "committed",
               "T-good was resolved", timeout=2)


# ---- concurrency: one writer, no lost updates ------------------------------------------

THREADS, OPS_PER_THREAD, LOAD_SECONDS = 8, 50, 30


def test_concurrent_deposits_and_withdrawals_lose_no_update(branch_url, branch_client):
    """Concurrent deposits and withdrawals on one account are serialised: the final
    balance is the opening balance plus every acknowledged change, the balance never goes
    negative, and the journal replays to it step by step."""
    number = branch_client.call("open_account", "Load Test", "3.00")["number"]
    seed = int(os.environ.get("BANK_TEST_SEED") or random.randrange(2**32))
    print(f"load seed: {seed} (replay the same operations with BANK_TEST_SEED={seed})")
    deadline = time.monotonic() + LOAD_SECONDS

    def worker(index):
        rng = random.Random(seed + index)
        client = rpc.Client(branch_url, timeout=10)     # each thread its own connection
        applied, done = 0, 0
        for _ in range(OPS_PER_THREAD):
            if time.monotonic() > deadline:
                break
            amount = rng.randint(1, 200)
            if rng.random() < 0.5:
                client.call("deposit", number, format_amount(amount))
                applied += amount
            else:
                try:
                    client.call("withdraw", number, format_amount(amount))
                    applied -= amount
                except BankError as exc:
                    assert exc.code is FaultCode.INSUFFICIENT_FUNDS, exc.message
                    continue
            done += 1
        return applied, done

    with concurrent.futures.ThreadPoolExecutor(THREADS) as pool:
        results = list(pool.map(worker, range(THREADS)))
    applied = sum(r[0] for r in results)
    done = sum(r[1] for r in results)

    balance, held = money(branch_client, number)
    assert minor(balance) == 3_00 + applied and held == "0.00"
    rows = branch_client.call("journal", number, 10_000)
    assert len(rows) == 1 + done                        # the opening row plus each change
    running = 0
    for row in rows:
        running += minor(row["amount"])
        assert minor(row["balance_after"]) == running >= 0, row
    assert running == minor(balance)


# ---- the wire: any language can speak it; bad requests are refused ---------------------

def test_hand_written_xml_rpc_request_is_served(branch_url, branch_client):
    """The API is plain XML-RPC over HTTP: a request written by hand and sent with
    http.client (no xmlrpc library) deposits money and gets a struct back."""
    body = xml_call("deposit", "<string>1001</string>", "<string>25.50</string>")
    status, answer = raw_post(branch_url, body, {"Content-Type": "text/xml",
                                                 "Content-Length": str(len(body))})
    assert status == 200, answer
    members = {m.findtext("name"): "".join(m.find("value").itertext())
               for m in ET.fromstring(answer).iter("member")}
    assert members["number"] == "1001" and members["balance"] == "10025.50"
    assert money(branch_client, "1001") == ("10025.50", "0.00")


def _body_case(body):
    return body, {"Content-Type": "text/xml", "Content-Length": str(len(body))}


DEPOSIT_100 = xml_call("deposit", "<string>1001</string>", "<string>100</string>")
BAD_REQUESTS = [
    # (id, body, headers, path, HTTP status, fault code in a 200 answer or None)
    ("malformed body", *_body_case(b"this is not XML at all"), "/", 200, FaultCode.BAD_INPUT),
    ("not a methodCall", *_body_case(b"<?xml version='1.0'?><hello/>"), "/", 200,
     FaultCode.BAD_INPUT),
    ("binary garbage", *_body_case(bytes(range(256))), "/", 400, None),   # NUL bytes: not UTF-8 XML
    ("unknown method", *_body_case(xml_call("drop_tables")), "/", 200,
     FaultCode.UNKNOWN_METHOD),
    ("private method", *_body_case(xml_call("preload")), "/", 200, FaultCode.UNKNOWN_METHOD),
    ("dotted name", *_body_case(xml_call("ledger.close")), "/", 200,
     FaultCode.UNKNOWN_METHOD),
    ("nil amount", *_body_case(xml_call("deposit", "<string>1001</string>", "<nil/>")),
     "/", 200, FaultCode.BAD_AMOUNT),
    ("double amount", *_body_case(xml_call("deposit", "<string>1001</string>",
                                           "<double>1.5</double>")),
     "/", 200, FaultCode.BAD_AMOUNT),
    ("64-bit int amount", *_body_case(xml_call("deposit", "<string>1001</string>",
                                               "<i8>99999999999</i8>")),
     "/", 200, FaultCode.BAD_AMOUNT),
    ("missing Content-Length", DEPOSIT_100, {"Content-Type": "text/xml"}, "/", 411, None),
    ("chunked body", b"", {"Transfer-Encoding": "chunked"}, "/", 411, None),
    ("oversized Content-Length", b"", {"Content-Length": str(rpc.MAX_BODY + 1)}, "/", 413,
     None),
    ("compressed body", DEPOSIT_100, {"Content-Length": str(len(DEPOSIT_100)),
                                      "Content-Encoding": "gzip"}, "/", 415, None),
    ("DOCTYPE body", *_body_case(b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "1001">]>'
                                 + DEPOSIT_100.split(b"?>", 1)[1]), "/", 400, None),
    ("wrong path", *_body_case(DEPOSIT_100), "/admin", 404, None),
]


@pytest.mark.parametrize("body, headers, path, status, code",
                         [case[1:] for case in BAD_REQUESTS],
                         ids=[case[0] for case in BAD_REQUESTS])
def test_bad_requests_are_refused_and_the_server_keeps_serving(
        shared_branch_url, shared_client, body, headers, path, status, code):
    """A bad request gets a clear refusal (an HTTP error before parsing, or a Fault with
    its code and one sentence), changes nothing, and the server keeps serving."""
    before = snapshot(shared_client)
    got_status, answer = raw_post(shared_branch_url, body, headers, path)
    assert got_status == status, answer
    if code is None:
        assert_one_sentence(answer.decode().strip())
    else:
        with pytest.raises(xmlrpc.client.Fault) as info:
            xmlrpc.client.loads(answer)
        assert info.value.faultCode == code
        assert_one_sentence(info.value.faultString)
    assert snapshot(shared_client) == before
    assert shared_client.call("ping")["name"] == "Mumbai"


BAD_DEPOSITS = [
    # (arguments, fault code)
    (("1001", 1.5), FaultCode.BAD_AMOUNT),
    (("1001", "NaN"), FaultCode.BAD_AMOUNT),
    (("1001", "inf"), FaultCode.BAD_AMOUNT),
    (("1001", True), FaultCode.BAD_AMOUNT),
    (("1001", "0"), FaultCode.BAD_AMOUNT),
    (("1001", 0), FaultCode.BAD_AMOUNT),
    (("1001", "-5"), FaultCode.BAD_AMOUNT),
    (("1001", -5), FaultCode.BAD_AMOUNT),
    (("1001", "1.005"), FaultCode.BAD_AMOUNT),
    (("1001", "1000000000.01"), FaultCode.BAD_AMOUNT),
    (("1001", 2**31 - 1), FaultCode.BAD_AMOUNT),
    (("1001", "1e3"), FaultCode.BAD_AMOUNT),
    (("1001", "+5"), FaultCode.BAD_AMOUNT),
    (("1001", ""), FaultCode.BAD_AMOUNT),
    (("1001", ["5"]), FaultCode.BAD_AMOUNT),
    (("1001", {"amount": "5"}), FaultCode.BAD_AMOUNT),
    (("1001", xmlrpc.client.Binary(b"5")), FaultCode.BAD_AMOUNT),
    (("1001", xmlrpc.client.DateTime("20261125T13:00:00")), FaultCode.BAD_AMOUNT),
    (("abc", "5"), FaultCode.BAD_INPUT),
    (("", "5"), FaultCode.BAD_INPUT),
    (("1001.0", "5"), FaultCode.BAD_INPUT),
    ((1001.0, "5"), FaultCode.BAD_INPUT),
    (("1234567890123", "5"), FaultCode.BAD_INPUT),
    (("9999", "5"), FaultCode.UNKNOWN_ACCOUNT),
    (("1001", "5", "has spaces"), FaultCode.BAD_INPUT),
    (("1001", "5", "x" * 65), FaultCode.BAD_INPUT),
    (("1001", "5", 7), FaultCode.BAD_INPUT),
    (("1001",), FaultCode.BAD_INPUT),
    ((), FaultCode.BAD_INPUT),
    (("1001", "5", "", "extra"), FaultCode.BAD_INPUT),
]


def _case_id(args) -> str:
    """A stable test id for a tuple of wire values (no memory addresses in it)."""
    return ",".join(type(a).__name__ if isinstance(a, (xmlrpc.client.Binary,
                                                         xmlrpc.client.DateTime))
                    else repr(a)[:24] for a in args) or "no-args"


@pytest.mark.parametrize("args, code", BAD_DEPOSITS,
                         ids=[_case_id(args) for args, _ in BAD_DEPOSITS])
def test_bad_deposit_is_a_fault_with_its_code_and_changes_nothing(
        shared_branch_url, shared_client, args, code):
    """Every bad input to deposit gets a Fault with the documented code and one sentence
    (no traceback), and the branch is unchanged."""
    before = snapshot(shared_client)
    with pytest.raises(xmlrpc.client.Fault) as info:
        rpc.connect(shared_branch_url).deposit(*args)
    assert info.value.faultCode == code, info.value.faultString
    assert_one_sentence(info.value.faultString)
    assert snapshot(shared_client) == before


def test_retried_deposit_with_request_id_applies_once(branch_client):
    """A client that retries a deposit with the same request_id (say, after a timeout)
    gets the first answer back and the money arrives once."""
    first = branch_client.call("deposit", "1001", "5.00", "req-42")
    assert branch_client.call("deposit", "1001", "5.00", "req-42") == first
    assert money(branch_client, "1001") == ("10005.00", "0.00")
    with pytest.raises(BankError) as info:
        branch_client.call("deposit", "1001", "6.00", "req-42")
    assert info.value.code is FaultCode.BAD_INPUT
    assert money(branch_client, "1001") == ("10005.00", "0.00")


def test_request_id_with_trailing_newline_is_refused(branch_client):
    """Ids are 1-64 of letters, digits and _ . : - and nothing else."""
    with pytest.raises(BankError) as info:
        branch_client.call("deposit", "1001", "5.00", "req-1\n")
    assert info.value.code is FaultCode.BAD_INPUT


BAD_PREPARES = [
    # (txid, ops, fault code)
    ("T-p", "not a list", FaultCode.BAD_INPUT),
    ("T-p", [], FaultCode.BAD_INPUT),
    ("T-p", [{"account": "1001"}], FaultCode.BAD_INPUT),
    ("T-p", [{"account": "1001", "delta": "-5", "extra": "1"}], FaultCode.BAD_INPUT),
    ("T-p", ["1001:-5"], FaultCode.BAD_INPUT),
    ("T-p", [{"account": "x", "delta": "-5"}], FaultCode.BAD_INPUT),
    ("T-p", [{"account": "1001", "delta": -5.0}], FaultCode.BAD_AMOUNT),
    ("T-p", [{"account": "1001", "delta": "-0"}], FaultCode.BAD_AMOUNT),
    ("T-p", [{"account": "1001", "delta": "ten"}], FaultCode.BAD_AMOUNT),
    ("T-p", [{"account": "1001", "delta": "-1"}] * 65, FaultCode.BAD_INPUT),
    ("has spaces", [{"account": "1001", "delta": "-5"}], FaultCode.BAD_INPUT),
    ("", [{"account": "1001", "delta": "-5"}], FaultCode.BAD_INPUT),
]


@pytest.mark.parametrize("txid, ops, code", BAD_PREPARES,
                         ids=[f"{t!r}-{str(o)[:30]}" for t, o, _ in BAD_PREPARES])
def test_malformed_prepare_is_a_fault_and_records_nothing(
        shared_branch_url, shared_client, dead_url, txid, ops, code):
    """A prepare that cannot even be read is refused with a Fault (not a vote) and leaves
    no trace: the txid stays unknown and nothing is held."""
    before = snapshot(shared_client)
    with pytest.raises(xmlrpc.client.Fault) as info:
        rpc.connect(shared_branch_url).prepare(txid, dead_url, ops)
    assert info.value.faultCode == code, info.value.faultString
    assert_one_sentence(info.value.faultString)
    assert snapshot(shared_client) == before
    assert shared_client.call("status", "T-p")["state"] == "unknown"


# ---- introspection and the fault switch ------------------------------------------------

def test_list_methods_lists_exactly_the_public_methods(shared_branch_url):
    """system.listMethods lists the branch's public methods (and fault, with
    --allow-faults) and nothing else: no private helpers, no dotted names."""
    methods = set(rpc.connect(shared_branch_url).system.listMethods())
    expected = set(Branch.PUBLIC_METHODS) | {"fault"}
    assert methods - {m for m in methods if m.startswith("system.")} == expected
    assert {"system.listMethods", "system.methodHelp"} <= methods
    assert "system.multicall" not in methods


def test_method_help_returns_each_docstring(shared_branch_url):
    """system.methodHelp answers every public method's docstring, so a student can
    explore the API from any XML-RPC client."""
    proxy = rpc.connect(shared_branch_url)
    for name in (*Branch.PUBLIC_METHODS, "fault"):
        text = proxy.system.methodHelp(name)
        assert text.strip(), f"{name} has no help"
        assert text.split()[:3] == getattr(Branch, name).__doc__.split()[:3], name
    assert "Example" in proxy.system.methodHelp("deposit")


def test_fault_rpc_exists_only_with_allow_faults(start_branch):
    """Without --allow-faults there is no fault() method: nobody can crash the branch."""
    member = start_branch("Delhi", allow_faults=False)
    proxy = rpc.connect(member.url)
    assert "fault" not in proxy.system.listMethods()
    with pytest.raises(xmlrpc.client.Fault) as info:
        proxy.fault("crash-after-vote")
    assert info.value.faultCode == FaultCode.UNKNOWN_METHOD
    assert proxy.ping()["name"] == "Delhi"


def test_unknown_fault_point_is_refused(shared_client):
    """Only named fault points can be armed; anything else is bad input."""
    with pytest.raises(BankError) as info:
        shared_client.call("fault", "crash-everything")
    assert info.value.code is FaultCode.BAD_INPUT
    assert shared_client.call("ping")["faults"] == ""


def test_ping_says_who_and_what(shared_client):
    """ping() answers at least the branch's name, role and epoch."""
    answer = shared_client.call("ping")
    assert answer["name"] == "Mumbai" and answer["role"] == "primary"
    assert isinstance(answer["epoch"], int)


# ---- security: loopback unless there is a secret ---------------------------------------

@pytest.mark.parametrize("host", ["0.0.0.0", ""])
def test_non_loopback_host_without_a_secret_is_refused(tmp_path, host):
    """A branch refuses to serve beyond this machine without a shared secret: it exits
    non-zero with an explanation before binding or creating anything."""
    result = subprocess.run(
        [sys.executable, str(cluster.KIT / "branch.py"), "--name", "X", "--host", host,
         "--port", "0"], cwd=tmp_path, capture_output=True, text=True, timeout=30,
        stdin=subprocess.DEVNULL)
    assert result.returncode != 0
    assert f"Refusing to serve on {host} without a shared secret" in result.stderr
    assert "--secret-file" in result.stderr and "Traceback" not in result.stderr
    assert "serving at" not in result.stdout
    assert list(tmp_path.iterdir()) == [], "it created files before refusing"


def test_an_epoch_answered_by_another_branchs_server_says_nothing_of_ours(shared_branch_url):
    """R9 at start-up (branch_service._newer_at): a server started with --replica-of
    pointing at another branch's server never reads that server's epoch as a sign that
    it was replaced (it would set its own database aside to copy a primary it may not
    follow); the same server is newer for a replica of its own branch."""
    from bank.branch_service import _newer_at
    assert _newer_at(shared_branch_url, "Mumbai", 0, None)
    assert not _newer_at(shared_branch_url, "Delhi", 0, None)


def test_a_second_set_aside_in_the_same_second_never_replaces_the_first(tmp_path):
    """A database set aside for a rejoin (NAME.db.before-rejoin-TIME) may hold changes no
    one else had: a second one within the same second gets a name of its own."""
    from bank.branch_service import _unused_stamp
    db = tmp_path / "Mumbai.db"
    first = _unused_stamp(db)
    (tmp_path / f"Mumbai.db.before-rejoin-{first}").write_text("first copy")
    second = _unused_stamp(db)
    assert second != first
