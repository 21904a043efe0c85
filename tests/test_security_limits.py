"""Limits of the servers: slow clients, where a server may bind, and the lab methods.

Rules checked: a client that sends its request slowly, or never reads its answers,
cannot hold a server's connections, nor last past the whole-request deadline; a server refuses a non-loopback
address without keys; lab methods exist only with --allow-faults. The fixtures and
helpers are tests/test_security.py's.
"""

import pathlib
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
import xmlrpc.client

import pytest

KIT = pathlib.Path(__file__).resolve().parent.parent
if str(KIT) not in sys.path:
    sys.path.insert(0, str(KIT))

from bank import keys, rpc                               # noqa: E402
from bank.errors import BankError, FaultCode        # noqa: E402
from polling import wait_for                             # noqa: E402
from test_security import (  # noqa: E402,F401  (fixtures and helpers)
    bank, plain, url_of, signed, SERVERS, LAB_METHODS)


# ---- slow clients -----------------------------------------------------------------------

def _connect(address, deadline: float = 10.0) -> socket.socket:
    """A connected socket. The servers listen with a small backlog, so a burst of connects
    may see a SYN dropped (and a 1 s retransmit): retry with a short timeout instead."""
    give_up = time.monotonic() + deadline
    while True:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.settimeout(0.05)
        try:
            sock.connect(address)
            sock.settimeout(5)
            return sock
        except OSError:
            sock.close()
            if time.monotonic() > give_up:
                raise


def _half_requests(url: str, count: int) -> list:
    """Open `count` loopback connections that each send half a request and then sit idle."""
    parts = urllib.parse.urlsplit(url)
    assert parts.hostname == "127.0.0.1"
    socks = []
    for i in range(count):
        sock = _connect((parts.hostname, parts.port))
        if i % 2:
            sock.sendall(b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Ty")
        else:
            sock.sendall(b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: text/xml\r\n"
                         b"Content-Length: 400\r\n\r\n<?xml version='1.0'?><methodCall>")
        socks.append(sock)
    return socks


@pytest.mark.parametrize("server", SERVERS)
def test_idle_half_requests_do_not_block_other_clients(bank, server):
    """A few slow-loris connections (half a request, then silence) do not delay a normal
    signed call: it is answered within 2 s."""
    socks = _half_requests(url_of(bank, server), 8)
    try:
        start = time.monotonic()
        assert bank.client(server, timeout=5).call("ping")["name"]
        assert time.monotonic() - start < 2
    finally:
        for sock in socks:
            sock.close()


def test_many_idle_connections_do_not_starve_a_signed_client(bank, plain):
    """Even MAX_CONNECTIONS idle half-requests (from one loopback attacker) do not keep a
    signed client out for long: its call succeeds within 5 s."""
    pune = plain["Pune"]
    client = rpc.Client(pune.url, bank.secret, timeout=3)
    socks = _half_requests(pune.url, rpc.MAX_CONNECTIONS)
    served = False
    try:
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and not served:
            try:
                served = bool(client.call("ping"))
            except BankError:
                time.sleep(0.1)                    # poll with a deadline
    finally:
        for sock in socks:
            sock.close()
        deadline = time.monotonic() + 10          # leave Pune usable for other tests
        while time.monotonic() < deadline:
            try:
                client.call("ping")
                break
            except BankError:
                time.sleep(0.05)
    assert served, "a signed client was kept out by idle connections"


def _trickling_requests(url: str, count: int) -> list:
    """`count` loopback connections whose headers announce a large body, which then
    arrives one byte at a time (the caller sends the bytes)."""
    parts = urllib.parse.urlsplit(url)
    assert parts.hostname == "127.0.0.1"
    socks = []
    for _ in range(count):
        sock = _connect((parts.hostname, parts.port))
        sock.sendall(b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: text/xml\r\n"
                     b"Content-Length: 200000\r\n\r\n<")
        socks.append(sock)
    return socks


def _closed_by_server(sock) -> bool:
    """Has the server closed (or reset) this connection?"""
    try:
        sock.setblocking(False)
        return sock.recv(1024) == b""
    except BlockingIOError:
        return False
    except OSError:
        return True
    finally:
        sock.setblocking(True)


def test_slow_bodies_neither_lock_out_clients_nor_last(bank, plain):
    """A slow client cannot lock a server out: MAX_CONNECTIONS connections whose headers
    announce a large body that trickles in byte by byte do not keep a signed client out
    (served within 5 s), and a body still trickling is cut off once the whole request
    has taken REQUEST_TIMEOUT s, although each read alone is quick."""
    pune = plain["Pune"]
    client = rpc.Client(pune.url, bank.secret, timeout=3)
    socks = _trickling_requests(pune.url, rpc.MAX_CONNECTIONS)
    try:
        start = time.monotonic()
        assert wait_for(lambda: client.call("ping"), 5, "a ping past the slow bodies")
        assert time.monotonic() - start < 5
        slow = socks[-4:]                       # the newest: not closed to make room
        deadline = start + rpc.REQUEST_TIMEOUT + 5
        while not all(_closed_by_server(s) for s in slow):
            assert time.monotonic() < deadline, "a trickling request was never cut off"
            for sock in slow:
                try:
                    sock.send(b"x")             # one more byte: each read is quick
                except OSError:
                    pass
            time.sleep(0.5)                     # the trickle's pace, not a wait for state
        assert time.monotonic() - start > rpc.REQUEST_TIMEOUT - 2    # cut by the deadline
    finally:
        for sock in socks:
            sock.close()
        wait_for(lambda: client.call("ping"), 10, "Pune serving again")


# ---- binding -----------------------------------------------------------------------------

BIND_COMMANDS = {
    "branch-0.0.0.0": ["branch.py", "--name", "X", "--host", "0.0.0.0", "--port", "0"],
    "branch-all-interfaces-empty": ["branch.py", "--name", "X", "--host", "", "--port", "0"],
    "coordinator-0.0.0.0": ["coordinator.py", "--host", "0.0.0.0", "--port", "0",
                            "--branch", "A=http://127.0.0.1:1"],
}


@pytest.mark.parametrize("case", list(BIND_COMMANDS))
def test_non_loopback_bind_without_secret_is_refused(tmp_path, case):
    """Serving beyond loopback without a secret exits non-zero, before binding, with a
    message that says how to make a secret (--secret-file, cluster.py secret)."""
    cmd = [sys.executable, str(KIT / BIND_COMMANDS[case][0]), *BIND_COMMANDS[case][1:],
           "--log-dir", str(tmp_path / "logs")]
    proc = subprocess.Popen(cmd, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            stdin=subprocess.DEVNULL, text=True)
    try:
        out, err = proc.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()                                # by the pid we started
        proc.communicate()
        pytest.fail(f"BUG: {case} kept running (it bound a non-loopback address)")
    assert proc.returncode != 0
    assert "serving at" not in out
    assert "secret" in err and "--secret-file" in err, err
    assert "cluster.py secret" in err, err
    assert "Traceback" not in err


# ---- lab methods -------------------------------------------------------------------------

@pytest.mark.parametrize("member", ["Pune", "C2"])
def test_lab_methods_do_not_exist_without_allow_faults(bank, plain, member):
    """On a server started without --allow-faults, fault/partition/heal are not listed
    and calling them is UNKNOWN_METHOD (405), even signed with the teacher's key."""
    client = rpc.Client(plain[member].url, bank.secret.only("teacher"))
    listed = client.call("system.listMethods")
    assert "ping" in listed and not set(LAB_METHODS) & set(listed), listed
    for method in LAB_METHODS:
        with pytest.raises(BankError) as err:
            client.call(method, "Pune")
        assert err.value.code == FaultCode.UNKNOWN_METHOD
    with pytest.raises(BankError) as err:
        client.call("fault", "crash-before-vote")
    assert err.value.code == FaultCode.UNKNOWN_METHOD


def test_lab_methods_exist_with_allow_faults(bank):
    """Control for the test above: the cluster's servers run with --allow-faults and list
    fault (and the coordinator partition/heal) to the teacher's key."""
    teacher = bank.secret.only("teacher")
    assert "fault" in rpc.Client(url_of(bank, "Mumbai"), teacher).call("system.listMethods")
    listed = rpc.Client(url_of(bank, "coordinator"), teacher).call("system.listMethods")
    assert set(LAB_METHODS) <= set(listed)


# ---- clients that do not read their answers ---------------------------------------------

class _BigAnswers:
    """A service whose answer is far larger than a socket buffer (like a long journal)."""
    name = "Toy"
    PUBLIC_METHODS = ("ping", "big")

    def __init__(self):
        self.bigs = 0

    def ping(self):
        return "pong"

    def big(self):
        self.bigs += 1
        return "x" * 4_000_000


def test_clients_that_never_read_their_answers_cannot_hold_every_connection(monkeypatch):
    """A connection counts as busy only while its call runs: one whose client never
    reads the answer can be closed to make room, so MAX_CONNECTIONS such clients do
    not turn a new client away (the kit's own rpc.Server, limit lowered to 4)."""
    monkeypatch.setattr(rpc, "MAX_CONNECTIONS", 4)
    service = _BigAnswers()
    server = rpc.Server(service, "127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, args=(0.1,), daemon=True)
    thread.start()
    body = xmlrpc.client.dumps((), "big").encode()
    socks = []
    try:
        for _ in range(4):
            sock = socket.socket()
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            sock.connect(server.server_address)
            sock.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n"
                         % len(body) + body)
            socks.append(sock)
        wait_for(lambda: service.bigs == 4 and not any(
            busy for _, busy in list(server.connections._open.values())), 10,
            "four answers being sent to clients that do not read them")
        assert rpc.Client(server.url, timeout=5).call("ping") == "pong"
    finally:
        for sock in socks:
            sock.close()
        server.shutdown()
        server.server_close()


# ---- a student's slow calls leave room for the others -----------------------------------

class _SlowReads:
    """A service whose student read runs until released (like a long journal read through
    the coordinator), beside a server call (a lease renewal) and a teacher call."""
    name = "Toy"
    PUBLIC_METHODS = ("journal", "lease", "fault")

    def __init__(self):
        self.release, self.started, self._lock = threading.Event(), 0, threading.Lock()

    def journal(self):
        with self._lock:
            self.started += 1
        self.release.wait(10)
        return "rows"

    def lease(self):
        return "granted"

    def fault(self):
        return "armed"


def test_student_calls_cannot_keep_every_connection_busy(monkeypatch):
    """Calls signed with the student key may keep only STUDENT_SHARE of the connections
    busy at once: one more is refused (503, "Busy", not run, safe to resend), and a
    server's call (a lease renewal) and the teacher's still run at once. Before, slow
    student reads held every connection and the branches' lease renewals were turned
    away, so their writes stopped (the kit's own rpc.Server, limit lowered to 4)."""
    monkeypatch.setattr(rpc, "MAX_CONNECTIONS", 4)          # students: 3 at once
    keyring = keys.new_keyring()
    service = _SlowReads()
    server = rpc.Server(service, "127.0.0.1", 0, keyring)
    thread = threading.Thread(target=server.serve_forever, args=(0.1,), daemon=True)
    thread.start()
    student = keyring.only("student")
    readers = [threading.Thread(target=rpc.Client(server.url, student, timeout=15).call,
                                args=("journal",), daemon=True) for _ in range(3)]
    try:
        for reader in readers:
            reader.start()
        wait_for(lambda: service.started == 3, 10, "three slow student reads running")
        with pytest.raises(BankError) as refused:
            rpc.Client(server.url, student, timeout=5).call("journal")
        assert refused.value.code == FaultCode.UNAVAILABLE and refused.value.not_sent
        assert "Busy" in refused.value.message and "Nothing was changed" in \
            refused.value.message
        assert service.started == 3                          # it never ran
        assert rpc.Client(server.url, keyring.only("server"), timeout=5).call("lease") \
            == "granted"
        assert rpc.Client(server.url, keyring.only("teacher"), timeout=5).call("fault") \
            == "armed"
        service.release.set()
        for reader in readers:
            reader.join(10)
        assert rpc.Client(server.url, student, timeout=5).call("journal") == "rows"
    finally:
        service.release.set()
        server.shutdown()
        server.server_close()
