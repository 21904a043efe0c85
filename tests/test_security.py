"""Security of the servers on a classroom LAN (design section 10, issue 7).

Rules checked, against a real branch AND the real coordinator:
  * authentication: an unsigned, wrongly signed, stale, tampered or replayed request
    gets HTTP 401 and changes nothing; a properly signed one is served;
  * a call is never signed for a server it was not meant for;
  * hostile and malformed bodies: tests/test_security_bodies.py;
  * idle half-sent requests do not block other clients;
  * a non-loopback bind without a secret exits non-zero and says how to make one;
  * fault/partition/heal exist only with --allow-faults.

Tests marked xfail(strict=True, reason="BUG: ...") show a bug in a non-test module;
the lead removes the mark with the fix.

All traffic goes to 127.0.0.1, to processes started here (ports chosen by the OS), and
every wait is a poll with a deadline.
"""

import http.client
import http.server
import os
import pathlib
import socket
import stat
import sys
import threading
import time
import urllib.parse
import xmlrpc.client

import pytest

KIT = pathlib.Path(__file__).resolve().parent.parent
if str(KIT) not in sys.path:
    sys.path.insert(0, str(KIT))

from bank import rpc, rpc_client                         # noqa: E402
from bank.local_cluster import LocalCluster, Member       # noqa: E402
from bank.errors import BankError, FaultCode        # noqa: E402

SERVERS = ("Mumbai", "coordinator")
LEAK_MARKERS = ("Traceback", "<class", 'File "', " object at 0x", "Error:")
LAB_METHODS = ("fault", "partition", "heal")


# ---- fixtures ----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def bank(tmp_path_factory):
    """Mumbai and Delhi (preloaded) plus a coordinator, sharing the cluster's secret."""
    cluster = LocalCluster(home=tmp_path_factory.mktemp("security"),
                           branches=("Mumbai", "Delhi")).start()
    yield cluster
    cluster.stop()


@pytest.fixture(scope="module")
def plain(bank):
    """A branch "Pune" and a coordinator "C2" started WITHOUT --allow-faults (same secret)."""
    home = bank.home
    pune = Member("Pune", "branch.py",
                  ["--name", "Pune", "--db", str(home / "data" / "Pune.db"), "--preload",
                   "--secret-file", str(bank.secret_file)], home)
    coord = Member("C2", "coordinator.py",
                   ["--name", "C2", "--secret-file", str(bank.secret_file),
                    "--log", str(home / "logs" / "c2-recovery.log")], home)
    started = []
    try:
        pune.start()
        started.append(pune)
        coord.args += ["--branch", f"Pune={pune.url}"]
        coord.start()
        started.append(coord)
        yield {"Pune": pune, "C2": coord}
    finally:
        for member in started:
            member.kill()


# ---- helpers -----------------------------------------------------------------------------

def url_of(bank, server: str) -> str:
    return bank.members[server].url


def exchange(url: str, body: bytes = b"", headers=None, *, path="/", method="POST",
             length=True, timeout=10.0):
    """One raw HTTP request: (status, response body). Headers are sent exactly as given."""
    parts = urllib.parse.urlsplit(url)
    assert parts.hostname == "127.0.0.1"           # tests talk to loopback only
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
    try:
        conn.putrequest(method, path, skip_accept_encoding=True)
        sent = {"Content-Type": "text/xml"}
        if length:
            sent["Content-Length"] = str(len(body))
        sent.update(headers or {})
        for key, value in sent.items():
            conn.putheader(key, value)
        conn.endheaders()
        if body:
            conn.send(body)
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def call_body(method: str, *args) -> bytes:
    return xmlrpc.client.dumps(args, method, encoding="utf-8").encode()


def signed(bank, body: bytes, url: str, **kw) -> dict:
    """Headers signing `body` for the server at `url` (signatures name the server's id,
    NAME@HOST:PORT#RUN, which it announces in the X-Bank-Server header of every answer)."""
    return rpc.sign(bank.secret, body, rpc.server_id_at(url), **kw)


def post_signed(bank, url: str, body: bytes, extra=None, **kw):
    headers = signed(bank, body, url)
    headers.update(extra or {})
    return exchange(url, body, headers, **kw)


def fault_of(data: bytes):
    """(code, sentence) of a Fault response, or None for a normal answer."""
    try:
        xmlrpc.client.loads(data)
    except xmlrpc.client.Fault as fault:
        return fault.faultCode, fault.faultString
    return None


def assert_no_leak(text) -> None:
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    for marker in LEAK_MARKERS:
        assert marker not in text, f"the answer leaks internals ({marker!r}): {text[:300]!r}"


def snapshot(bank) -> dict:
    """Everything a request could change: accounts, journals, holds, transactions."""
    state = {}
    for name in bank.branch_names:
        client = bank.client(name)
        state[name] = {"accounts": client.call("accounts"),
                       "journal": client.call("journal", "", 10000),
                       "in_doubt": client.call("in_doubt")}
    state["transactions"] = bank.coordinator().call("transactions", 10000)
    return state


def assert_serving(bank, server: str) -> None:
    """A properly signed call is still answered quickly."""
    start = time.monotonic()
    assert bank.client(server, timeout=5).call("ping")["name"]
    assert time.monotonic() - start < 5


DEPOSIT = {"Mumbai": ("deposit", "1001", "1.00"),
           "coordinator": ("deposit", "Mumbai/1001", "1.00")}


def balance_1001(bank) -> str:
    return bank.client("Mumbai").call("account", "1001")["balance"]


def cents(text: str) -> int:
    units, _, frac = text.partition(".")
    return int(units) * 100 + int(frac or 0)


# ---- the cluster's own setup -------------------------------------------------------------

def test_cluster_is_loopback_and_its_keys_file_is_private(bank):
    """Every member serves on 127.0.0.1; the cluster's keys file holds all three role keys
    (one laptop needs no extra step) and is owner-only (0600)."""
    for name, member in bank.members.items():
        assert member.url.startswith("http://127.0.0.1:"), (name, member.url)
    assert bank.secret.roles == ("student", "teacher", "server")
    assert all(len(key) >= 32 for key in bank.secret.keys.values())
    assert len(set(bank.secret.keys.values())) == 3          # independent keys
    if os.name == "posix":
        mode = stat.S_IMODE(bank.secret_file.stat().st_mode)
        assert mode & 0o077 == 0, oct(mode)


# ---- authentication ----------------------------------------------------------------------

@pytest.mark.parametrize("server", SERVERS)
def test_signed_request_is_served(bank, server):
    """A request signed with the shared secret is served (here: a deposit of 1.00)."""
    before = cents(balance_1001(bank))
    status, data = post_signed(bank, url_of(bank, server), call_body(*DEPOSIT[server]))
    assert status == 200 and fault_of(data) is None, data
    assert cents(balance_1001(bank)) == before + 100
    client = rpc.connect(url_of(bank, server), bank.secret)      # the lab-script way
    assert client.ping()["name"]


def _unsigned(bank, body, url):
    return {}


def _other_secret(bank, body, url):
    return rpc.sign("another-secret-" + "x" * 40, body, rpc.server_id_at(url))


def _stale(bank, body, url):
    return signed(bank, body, url, now=time.time() - 600)        # 10 minutes old


def _future(bank, body, url):
    return signed(bank, body, url, now=time.time() + 600)        # 10 minutes ahead


def _tampered(bank, body, url):
    return signed(bank, body.replace(b"1.00", b"9.00"), url)     # signs another body


def _no_nonce(bank, body, url):
    headers = signed(bank, body, url)
    del headers["X-Bank-Nonce"]
    return headers


def _bad_time(bank, body, url):
    headers = signed(bank, body, url)
    headers["X-Bank-Time"] = "soon"
    return headers


def _empty_signature(bank, body, url):
    headers = signed(bank, body, url)
    headers["X-Bank-Signature"] = ""
    return headers


def _non_ascii_signature(bank, body, url):
    """Not hex: hmac.compare_digest raises on non-ASCII text (it dropped the connection,
    with a traceback in the server's log, instead of a 401)."""
    headers = signed(bank, body, url)
    headers["X-Bank-Signature"] = "\u00e9" * 64
    return headers


BAD_SIGNATURES = {"unsigned": _unsigned, "other-secret": _other_secret, "stale": _stale,
                  "future": _future, "tampered-body": _tampered, "no-nonce": _no_nonce,
                  "bad-time": _bad_time, "empty-signature": _empty_signature,
                  "non-ascii-signature": _non_ascii_signature}


@pytest.mark.parametrize("case", list(BAD_SIGNATURES))
@pytest.mark.parametrize("server", SERVERS)
def test_badly_signed_request_gets_401_and_changes_nothing(bank, server, case):
    """Unsigned, wrongly signed, stale, future, tampered or half-signed requests: HTTP 401,
    a plain sentence (no traceback), nothing changed, and the server keeps serving."""
    body = call_body(*DEPOSIT[server])
    before = snapshot(bank)
    status, data = exchange(url_of(bank, server), body, BAD_SIGNATURES[case](bank, body, url_of(bank, server)))
    assert status == 401, (status, data)
    assert b"signed" in data
    assert_no_leak(data)
    assert snapshot(bank) == before
    assert_serving(bank, server)


def test_an_unsigned_request_is_logged_as_normal_a_half_signed_one_as_a_warning(bank):
    """A request with no signature at all is how a client in another language learns
    who a server is (README, LAN): logged plainly, not as a WARNING on the teacher's
    screen each time a student's script starts; one with some signature headers but
    not all is a client gone wrong, and stays a warning. Both are 401s."""
    url, log_file = url_of(bank, "Mumbai"), bank.home / "logs" / "Mumbai.log"
    body = call_body("ping")
    assert exchange(url, body, _unsigned(bank, body, url))[0] == 401
    assert exchange(url, body, _no_nonce(bank, body, url))[0] == 401
    from polling import wait_for
    text = wait_for(lambda: "signature header is missing" in log_file.read_text()
                    and log_file.read_text(), 10, "both in Mumbai's log")
    unsigned = [line for line in text.splitlines() if "was not signed" in line]
    assert unsigned and not any("WARNING" in line for line in unsigned), unsigned
    assert any("WARNING" in line and "signature header is missing" in line
               for line in text.splitlines())


@pytest.mark.parametrize("server", SERVERS)
def test_replayed_request_gets_401_and_changes_nothing(bank, server):
    """The same signed request (same headers, same body) sent twice: served once, then
    HTTP 401, and the replay changes nothing."""
    body = call_body(*DEPOSIT[server])
    headers = signed(bank, body, url_of(bank, server))
    before = cents(balance_1001(bank))
    status, data = exchange(url_of(bank, server), body, headers)
    assert status == 200 and fault_of(data) is None, data
    after_first = snapshot(bank)
    assert cents(balance_1001(bank)) == before + 100
    status, data = exchange(url_of(bank, server), body, headers)
    assert status == 401, (status, data)
    assert snapshot(bank) == after_first


@pytest.mark.parametrize("server", SERVERS)
def test_kit_client_with_wrong_secret_gets_unauthorized(bank, server):
    """The kit's own clients report a wrong secret as UNAUTHORIZED (401), not a crash."""
    with pytest.raises(BankError) as err:
        rpc.Client(url_of(bank, server), "wrong-secret-" + "y" * 40).call("ping")
    assert err.value.code == FaultCode.UNAUTHORIZED
    with pytest.raises(xmlrpc.client.ProtocolError) as err:
        rpc.connect(url_of(bank, server), None).ping()
    assert err.value.errcode == 401


def test_request_replayed_to_another_server_gets_401(bank):
    """A signed request captured on its way to one branch and replayed to another branch
    (same shared secret) is a replay too: HTTP 401, nothing changes there."""
    body = call_body("deposit", "1001", "1.00")
    headers = signed(bank, body, url_of(bank, "Mumbai"))
    status, _ = exchange(url_of(bank, "Mumbai"), body, headers)
    assert status == 200
    before = snapshot(bank)
    status, data = exchange(url_of(bank, "Delhi"), body, headers)
    assert (status, snapshot(bank)) == (401, before), data


def test_a_first_call_without_the_server_id_is_refused_and_logged_as_normal(bank):
    """A request signed for no server id (how a client asks a server who it is, before
    its first call) is refused with 401 like any other and changes nothing; the branch
    logs it as an ordinary first contact (info), never as "wrong signature": a student reading
    the log of a happy transfer sees no false alarm. A signature for another server's
    id is still logged as a wrong signature (warning)."""
    from polling import wait_for
    url, log_file = url_of(bank, "Mumbai"), bank.home / "logs" / "Mumbai.log"
    body = call_body("deposit", "1001", "1.00")
    before = snapshot(bank)
    status, _ = exchange(url, body, rpc.sign(bank.secret, body, ""))
    assert (status, snapshot(bank)) == (401, before)
    first = wait_for(lambda: [line for line in log_file.read_text().splitlines()
                              if "named no server id yet" in line], 10, "the first call logged")
    assert " INFO " in first[-1] and "wrong signature" not in first[-1], first[-1]
    count = log_file.read_text().count("wrong signature")
    status, _ = exchange(url, body, signed(bank, body, url_of(bank, "Delhi")))
    assert (status, snapshot(bank)) == (401, before)
    wait_for(lambda: log_file.read_text().count("wrong signature") > count, 10,
             "the signature for another server logged as wrong")


def test_the_kit_client_learns_a_server_id_before_its_first_call(bank):
    """A kit client that has never called a keyed server first asks who it is (a
    listMethods signed for no server id: refused with 401, changing nothing), so its
    first call is signed right and sent once, and its answer is the next thing on the
    connection: a deposit sent with Client.send is readable for select() and, once
    finished, has moved 1.00 exactly once."""
    import select
    from decimal import Decimal
    from bank import rpc_client
    url = url_of(bank, "Mumbai")
    rpc_client._SERVER_IDS.pop(urllib.parse.urlsplit(url).netloc, None)   # never called
    client = rpc.Client(url, bank.secret)
    before = client.call("account", "1001")["balance"]
    rpc_client._SERVER_IDS.pop(urllib.parse.urlsplit(url).netloc, None)
    pending = rpc.Client(url, bank.secret).send("deposit", "1001", "1.00")
    assert select.select([pending], [], [], 10)[0] == [pending]
    pending.finish()
    after = client.call("account", "1001")["balance"]
    assert Decimal(after) - Decimal(before) == Decimal("1.00")


def test_a_call_whose_server_never_says_who_it_is_was_not_sent(bank):
    """A call that could not leave because asking the server who it is failed (here a
    port that accepts connections and never answers) is reported as not sent: the
    client's sentence says the server cannot be reached, and BankError.not_sent is
    True, so the coordinator's trace never shows it as delivered."""
    mute = socket.create_server(("127.0.0.1", 0))          # listens, never answers
    try:
        url = f"http://127.0.0.1:{mute.getsockname()[1]}"
        rpc_client._SERVER_IDS.pop(url.split("://")[1], None)   # a port reused from an
        with pytest.raises(BankError) as failed:                 # earlier test's server
            rpc.Client(url, bank.secret, timeout=0.5).call("ping")
        assert failed.value.not_sent and "cannot be reached" in failed.value.message
    finally:
        mute.close()


def test_request_replayed_after_a_restart_gets_401(bank, plain):
    """A signed request replayed to the same branch after that branch restarted is still
    a replay: HTTP 401, nothing changes."""
    pune = plain["Pune"]
    client = rpc.Client(pune.url, bank.secret)
    body = call_body("deposit", "1001", "1.00")
    headers = signed(bank, body, pune.url)
    assert exchange(pune.url, body, headers)[0] == 200
    pune.kill()
    pune.start()                                   # same port, same database
    before = client.call("account", "1001")
    status, _ = exchange(pune.url, body, headers)
    assert (status, client.call("account", "1001")) == (401, before)


def test_request_stamped_ahead_replayed_after_a_restart_gets_401(bank, plain):
    """A request from a client whose clock runs 90 s ahead (inside the signature window)
    names the server's RUN, new at every start: replayed after the branch restarted,
    its time would still pass, but its MAC does not (HTTP 401, nothing changes). A
    client that keeps calling signs again for the new run, and the branch logs that
    as info, not as a wrong signature."""
    pune = plain["Pune"]
    client = rpc.Client(pune.url, bank.secret)
    body = call_body("withdraw", "1001", "1.00")
    headers = signed(bank, body, pune.url, now=time.time() + 90)
    assert exchange(pune.url, body, headers)[0] == 200
    client.call("ping")                            # this client knows the old run
    pune.kill()
    pune.start()                                   # same port, same database
    before = client.call("account", "1001")        # a 401, then signed for the new run
    status, _ = exchange(pune.url, body, headers)
    assert (status, client.call("account", "1001")) == (401, before)
    log = (bank.home / "logs" / "Pune.log").read_text()
    assert "an earlier run of this server" in log


def _raw_post(host: str, port: int, body: bytes, headers: dict) -> int:
    """POST exactly these bytes to a loopback address; the HTTP status."""
    assert host.startswith("127.")                 # loopback only (127.0.0.2 on Linux)
    conn = http.client.HTTPConnection(host, port, timeout=10)
    try:
        conn.request("POST", "/", body, {"Content-Type": "text/xml", **headers})
        resp = conn.getresponse()
        resp.read()
        return resp.status
    finally:
        conn.close()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.skipif(not sys.platform.startswith("linux"),
                    reason="127.0.0.2 is loopback on Linux only")
def test_request_replayed_to_another_server_on_the_same_port_gets_401(tmp_path):
    """A signature names its server, not only its port: a deposit signed for Mumbai at
    127.0.0.1:P, replayed byte for byte to Delhi at 127.0.0.2:P (same port, same secret),
    gets HTTP 401 and changes nothing there."""
    for sub in ("data", "logs"):
        (tmp_path / sub).mkdir()
    secret_file = tmp_path / "secret.txt"
    secret = rpc.write_secret(secret_file)
    port = _free_port()
    started = []
    try:
        for name, host in (("Mumbai", "127.0.0.1"), ("Delhi", "127.0.0.2")):
            member = Member(name, "branch.py",
                            ["--name", name, "--host", host, "--preload", "--secret-file",
                             str(secret_file), "--db", str(tmp_path / "data" / f"{name}.db")],
                            tmp_path, port=port)
            started.append(member)
            member.start()
        mumbai, delhi = started
        assert mumbai.port == delhi.port == port
        assert rpc.server_id_at(mumbai.url).startswith(f"Mumbai@127.0.0.1:{port}#")
        body = call_body("deposit", "1001", "1.00")
        headers = rpc.sign(secret, body, rpc.server_id_at(mumbai.url))
        assert _raw_post("127.0.0.1", port, body, headers) == 200
        delhi_client = rpc.Client(delhi.url, secret)
        before = delhi_client.call("journal", "", 1000)
        assert _raw_post("127.0.0.2", port, body, headers) == 401
        assert delhi_client.call("journal", "", 1000) == before
        assert delhi_client.call("account", "1001")["balance"] == "10000.00"
    finally:
        for member in started:
            member.kill()


class _Impostor(http.server.BaseHTTPRequestHandler):
    """Answers every request with a 401 announcing the id it is given (another server's)."""
    protocol_version = "HTTP/1.1"
    announce, seen = "", []

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        type(self).seen.append(self.headers.get("X-Bank-Server", ""))
        self.send_response(401)
        self.send_header("X-Bank-Server", type(self).announce)
        self.send_header("Content-Length", "0")
        self.send_header("Connection", "close")
        self.end_headers()

    def log_message(self, *args):
        pass


def test_a_call_is_never_signed_for_a_server_it_was_not_meant_for(bank):
    """Whatever answers at a branch's address cannot get the coordinator's call signed
    for another server by announcing that server's id in a 401 (it could then play it
    there): a client that expects Mumbai (the coordinator's links do) never signs for
    Delhi, at its first call or after a 401. Nothing is sent; one sentence."""
    from bank.rpc_client import _sign_again_for
    _Impostor.announce, _Impostor.seen = rpc.server_id_at(url_of(bank, "Delhi")), []
    impostor = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Impostor)
    threading.Thread(target=impostor.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{impostor.server_address[1]}"
        with pytest.raises(BankError) as refused:
            rpc.Client(url, bank.secret, expect="Mumbai").call("deposit", "1001", "7.00")
        assert refused.value.not_sent and "says it is Delhi, not Mumbai" in refused.value.message
        assert _Impostor.seen == [""]                 # only the first contact, unaddressed
    finally:
        impostor.shutdown()
        impostor.server_close()
    mumbai = "Mumbai@127.0.0.1:9100#0a1b2c3d"
    assert _sign_again_for("Mumbai@127.0.0.1:9100#ffff0000", mumbai, "Mumbai")   # restarted
    assert not _sign_again_for("Delhi@127.0.0.1:9100#ffff0000", mumbai, "Mumbai")
    assert not _sign_again_for("Delhi@127.0.0.1:9100#ffff0000", "", "Mumbai")


# ---- refusals before the call is read ------------------------------------------------------

@pytest.mark.parametrize("server", SERVERS)
def test_a_request_refused_before_it_is_read_says_why_and_changes_nothing(bank, server):
    """A request refused before the call is read (here: a body over MAX_BODY, 413) carries
    its sentence in the X-Bank-Refusal header, so a student's plain xmlrpc.client (whose
    ProtocolError keeps the headers, not the body) can read why; the kit's client turns it
    into BAD_INPUT ending "Nothing was done." (a definite refusal: the shell says Error,
    not "Outcome not known"), and nothing changes."""
    url, before = url_of(bank, server), balance_1001(bank)
    huge = "x" * (rpc.MAX_BODY + 1)
    with pytest.raises(xmlrpc.client.ProtocolError) as plain:
        xmlrpc.client.ServerProxy(url).status(huge)
    assert plain.value.errcode == 413
    assert "Request too large" in plain.value.headers.get(rpc_client.REFUSAL_HEADER, "")
    acct = DEPOSIT[server][1]
    with pytest.raises(BankError) as kit:
        rpc.Client(url, bank.secret).call("deposit", acct, "1.00", huge)
    assert kit.value.code == FaultCode.BAD_INPUT, kit.value.message
    assert "Request too large" in kit.value.message
    assert kit.value.message.endswith("Nothing was done.")
    assert balance_1001(bank) == before
