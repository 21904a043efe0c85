"""The client half of the kit's XML-RPC: connections that sign their calls.

Role: give every program of the kit (the shell, the window, the servers calling one
another, lab scripts) a connection to one server that signs each call and reports
every failure as a plain sentence (a BankError), never a traceback.

Rules:
  * A call is sent once. A broken kept-alive connection is noticed before sending and
    replaced; the only resend is of a call refused with 401 because it was signed for
    another server id (a 401 changed nothing). Before its first call to a server with
    keys, a client asks who it is (a listMethods signed for no server id, refused
    with 401 naming it), so that its calls are signed right the first time and each
    call's answer is the next thing its connection reads.
  * Every call has a timeout (DEFAULT_CALL_TIMEOUT unless told otherwise), counted
    from when it was sent. A call's two halves may be apart (Client.send, then the
    Pending's finish), so that one thread can have calls out to several servers at
    once and read each answer as it arrives (the coordinator's rounds of 2PC).
  * Signatures are HMAC-SHA256 over a timestamp, a nonce, the key's role, the
    server's id and the body (sign() below), with the weakest key held that may make
    the call (bank/keys.py, K1-K4); the server side that checks them is bank/rpc.py.
  * A call refused for its role (HTTP 403) becomes BankError(NOT_ALLOWED) with the
    server's sentence, which names the role and the method.
  * A student's call refused because the server already runs as many of them as it
    may (HTTP 503, bank/rpc.py STUDENT_SHARE) becomes BankError(UNAVAILABLE) with the
    server's sentence, marked not_sent: it never ran, so it is safe to send again.

Glossary:
  server id  who a signature is for: NAME@HOST:PORT#RUN, as the server announces it in the
             X-Bank-Server header of every answer
  nonce      a random string used once, so that a captured request cannot be replayed
"""

import functools
import http.client
import itertools
import re
import secrets
import select
import socket
import threading
import time
import xml.parsers.expat
import xmlrpc.client

from bank import keys, rpc_reading
from bank.errors import BROKEN, NOTHING_DONE, REFUSED, TIMED_OUT, BankError, FaultCode

SERVER_HEADER = "X-Bank-Server"   # every answer: the id a signature must name; every
                                  # signed request: the id it was signed for
REFUSAL_HEADER = "X-Bank-Refusal"  # a refusal's sentence (a 403: naming role and method)
# HTTP statuses a server answers before reading the call (bank/rpc.py: a malformed, too
# large or compressed request, a wrong path, too many headers): nothing ran, so the
# outcome is known (nothing was done), not "not known" as after a lost answer.
REFUSED_UNREAD = (400, 404, 411, 413, 415, 431)
DEFAULT_CALL_TIMEOUT = 10      # seconds a client waits for an answer


# ---- signatures -----------------------------------------------------------------------

# A nonce need not be unpredictable (the MAC protects it), only never used twice: a
# random prefix per process, then a count. Drawing 16 random bytes per call was a
# system call, and in a busy server each one hands Python's GIL to another thread.
_NONCE_PREFIX = secrets.token_hex(12)
_NONCE_COUNT = itertools.count()


def sign(secret, body: bytes, server_id: str, now=None, nonce=None, role="") -> dict:
    """The four headers that prove a request comes from the holder of a role's key.

    secret: a Keyring, or a key text (see bank/keys.py). The key is the weakest role
    held that may call the body's method, unless `role` is given. The MAC covers the
    time, a fresh nonce, the role (the key id, K3), the id of the server it is meant
    for (NAME@HOST:PORT#RUN, from that server's X-Bank-Server header) and the body: it
    cannot be replayed later, twice, or to another server, even one on the same port.
    """
    keyring = _keyring(secret)
    role = role or keyring.role_for(method_in(body))
    stamp = str(int((time.time() if now is None else now) * 1000))   # milliseconds
    nonce = nonce or f"{_NONCE_PREFIX}{next(_NONCE_COUNT):x}"
    text = keys.signed_text(stamp, nonce, role, server_id, body)
    headers = {"X-Bank-Time": stamp, "X-Bank-Nonce": nonce, "X-Bank-Key": role,
               "X-Bank-Signature": keys.mac(keyring.keys[role], text)}
    if server_id:               # so that a server that restarted since can tell (EARLIER_RUN)
        headers[SERVER_HEADER] = server_id
    return headers


def method_in(body: bytes) -> str:
    """The method name of an XML-RPC request body, or "" (to choose the key to sign with)."""
    found = _METHOD_NAME.search(body[:4096])
    return found.group(1).decode("ascii", "replace") if found else ""


_METHOD_NAME = re.compile(rb"<methodName>\s*([A-Za-z0-9_.]{1,100})\s*</methodName>")


@functools.lru_cache(maxsize=32)
def _parsed(text: str) -> keys.Keyring:
    return keys.Keyring.parse(text)


def _keyring(secret) -> keys.Keyring:
    """A Keyring as is; a key text parsed once (a bare master key derives all three)."""
    return secret if isinstance(secret, keys.Keyring) else _parsed(str(secret))


# ---- the client -----------------------------------------------------------------------

class _Transport(xmlrpc.client.Transport):
    """Keeps one HTTP/1.1 connection alive, with a timeout, and signs each call.

    It sends each request once. (The standard Transport sends it again when the
    connection breaks, and so may apply a call twice, or report "connection refused"
    for a call that was applied.) A kept-alive connection that the server has closed
    meanwhile is noticed before sending, and replaced. The one exception: a call
    refused with 401 because it was signed for another server id (none yet, or the
    server restarted) is signed for the id it announced and sent again (a 401 changed
    nothing; _sign_again_for).
    """

    def __init__(self, timeout: float, secret=None):
        super().__init__()
        self.timeout, self.secret = timeout, None if secret is None else _keyring(secret)
        self._host, self._signed_for = "", ""

    def request(self, host, handler, request_body, verbose=False):
        conn = self._connection[1]
        if conn is not None and (conn.sock is None or _closed_by_peer(conn.sock)):
            self.close()
        self._host = host
        try:
            return self.single_request(host, handler, request_body, verbose)
        except xmlrpc.client.ProtocolError as exc:
            announced = _header(exc.headers, SERVER_HEADER)
            if exc.errcode != 401 or not self.secret \
                    or not _sign_again_for(announced, self._signed_for):
                raise
            _SERVER_IDS[host] = announced          # learnt: sign for it from now on
            self.close()
            return self.single_request(host, handler, request_body, verbose)

    def make_connection(self, host):
        conn = super().make_connection(host)
        conn.timeout = self.timeout
        return conn

    def send_content(self, connection, request_body):
        if self.secret:
            self._signed_for = _SERVER_IDS.get(self._host, "")
            for key, value in sign(self.secret, request_body, self._signed_for).items():
                connection.putheader(key, value)
        super().send_content(connection, request_body)


class _NotSent(OSError):
    """The call could not leave (asking the server who it is failed first)."""


_SERVER_IDS = {}             # "host:port" as in a URL -> the id that server announced
_WHO_ARE_YOU = xmlrpc.client.dumps((), "system.listMethods").encode()   # server_id_at


def _sign_again_for(announced: str, signed_for: str, expect: str = "") -> bool:
    """After a 401 announcing `announced`: sign the call for it and send it again? Yes
    if it names another id than the one we signed for (a first call, or the server
    restarted: a new RUN, or another server took the address), and, when the caller
    expects a server NAME, only if it is that name: whatever answers at an address
    must not get a coordinator's call signed for another branch, to play it there."""
    if not announced or announced == signed_for:
        return False
    return not expect or _name_in(announced) == expect


def _name_in(server_id: str) -> str:
    """The NAME of a server id NAME@HOST:PORT#RUN."""
    return server_id.partition("@")[0]


def _header(headers, name: str) -> str:
    """A header's value from a ProtocolError's headers (any case), or ""."""
    for key, value in (headers or {}).items():
        if key.lower() == name.lower():
            return value
    return ""


def server_id_at(url: str, timeout: float = DEFAULT_CALL_TIMEOUT, secret=None) -> str:
    """The id a server announces (X-Bank-Server), learnt from one request it refuses.

    What a lab script in another language does once before signing its calls, and
    what the kit's own client does before its first call to a server with keys. With
    `secret` the request is a listMethods signed for no server id, which the server
    logs as a first contact (info), not as a refused signature.
    """
    parts = url.split("://", 1)[-1].split("/", 1)[0]
    host, _, port = parts.rpartition(":")
    body, headers = b"", {"Content-Type": "text/xml"}
    if secret is not None:
        body = _WHO_ARE_YOU
        headers.update(sign(secret, body, ""))
    conn = http.client.HTTPConnection(host.strip("[]"), int(port), timeout=timeout)
    try:
        conn.request("POST", "/", body, headers)
        resp = conn.getresponse()
        resp.read()
        return resp.getheader(SERVER_HEADER, "")
    finally:
        conn.close()


def _closed_by_peer(sock) -> bool:
    """An idle kept-alive socket that is readable has been closed by the server."""
    try:
        readable, _, _ = select.select([sock], [], [], 0)
    except (OSError, ValueError):
        return True
    return bool(readable)


def connect(url: str, secret=None, timeout: float = DEFAULT_CALL_TIMEOUT):
    """A plain ServerProxy that signs its calls: what a lab script uses.

    Not thread-safe (one HTTP connection): make one per thread.
    """
    return xmlrpc.client.ServerProxy(url, transport=_Transport(timeout, secret),
                                     allow_none=False)


class Client:
    """Calls one server's methods; failures become BankError with a plain sentence.

    Thread-safe: each thread keeps its own kept-alive connection (a _Wire). A call is
    sent and then its answer read (call); the two halves may also be apart (send, then
    Pending.finish), so that one thread can have calls out to several servers at once.
    """

    def __init__(self, url: str, secret=None, timeout: float = DEFAULT_CALL_TIMEOUT,
                 label: str = "", expect: str = ""):
        self.url, self.secret, self.timeout = url, secret, timeout
        self.label = label or url
        self.expect = expect          # the NAME a server there must announce (or "": any)
        self._keyring = None if secret is None else _keyring(secret)
        self._local = threading.local()

    def call(self, method: str, *args):
        return self.send(method, *args).finish()

    def send(self, method: str, *args) -> "Pending":
        """Send one call now; its answer is read by the Pending's finish()."""
        wire, self._local.wire = getattr(self._local, "wire", None), None  # lent to
        try:                                              # this call until it is answered
            wire = wire or _Wire(self.url, self.timeout, self._keyring, self.expect)
            wire.send(method, args)
        except BaseException as exc:
            self._failed(wire, exc)
        return Pending(self, wire)

    def _failed(self, wire, exc: BaseException):
        """Raise what a failed call means, as one plain sentence; a connection that
        failed (anything but the server's own fault) is closed, never reused."""
        if isinstance(exc, xmlrpc.client.Fault):
            self._give_back(wire)
            raise BankError(_known_code(exc.faultCode), exc.faultString) from None
        if wire is not None:                 # None: the URL itself was unusable
            wire.close()
        if isinstance(exc, xmlrpc.client.ProtocolError):
            if exc.errcode == 401:
                raise BankError(FaultCode.UNAUTHORIZED,
                                f"{self.label} refused the call: wrong or missing key "
                                "(a keys file from python cluster.py secret).") from None
            if exc.errcode == 403:
                raise BankError(FaultCode.NOT_ALLOWED, f"{self.label} refused the call. "
                                + _header(exc.headers, REFUSAL_HEADER)) from None
            if exc.errcode == 503 and _header(exc.headers, REFUSAL_HEADER):
                # Busy with students' calls (bank/rpc.py STUDENT_SHARE): it never ran.
                raise BankError(FaultCode.UNAVAILABLE, f"{self.label} refused the call. "
                                + _header(exc.headers, REFUSAL_HEADER), not_sent=True) from None
            if exc.errcode in REFUSED_UNREAD:     # refused before anything ran: definite
                why = _header(exc.headers, REFUSAL_HEADER) or f"HTTP {exc.errcode}."
                raise BankError(FaultCode.BAD_INPUT, f"{self.label} refused the call: "
                                f"{why}{NOTHING_DONE}") from None
            raise BankError(FaultCode.UNAVAILABLE,
                            f"{self.label} answered HTTP {exc.errcode}.") from None
        if isinstance(exc, (xmlrpc.client.Error, xml.parsers.expat.ExpatError)):
            raise BankError(FaultCode.UNAVAILABLE, f"{self.label} answered something that "
                            f"is not XML-RPC ({type(exc).__name__}): is that the right "
                            "address?") from None
        if isinstance(exc, (OSError, http.client.HTTPException, ValueError)):
            raise BankError(FaultCode.UNAVAILABLE,
                            f"{self.label} cannot be reached ({_why(exc)}).",
                            not_sent=isinstance(exc, (ConnectionRefusedError, _NotSent)),
                            why=_cause(exc)) from None
        raise exc                        # e.g. Ctrl-C mid-call: the wire is half used

    def _give_back(self, wire) -> None:
        """A call is over: keep its connection alive for this thread's next call."""
        if getattr(self._local, "wire", None) is None:
            self._local.wire = wire
        else:
            wire.close()


class Pending:
    """A call sent and not answered yet: finish() waits for its answer (at most the
    client's timeout since it was sent) and returns it, or raises a BankError."""

    def __init__(self, client: Client, wire: "_Wire"):
        self.client, self.wire = client, wire
        self.deadline = time.monotonic() + client.timeout

    def fileno(self) -> int:
        """The connection's socket, for a selector: readable once the answer begins."""
        return self.wire.sock.fileno()

    def abandon(self) -> None:
        """Give up on the answer: the connection, half used, is closed."""
        self.wire.close()

    def finish(self):
        try:
            answer = self.wire.receive(self.deadline)
        except BaseException as exc:
            self.client._failed(self.wire, exc)
        self.client._give_back(self.wire)
        return answer


class _Wire:
    """One kept-alive HTTP/1.1 connection of a Client: the kit's own calls, lean.

    The same request and answer as connect()'s ServerProxy sends and reads (the
    signature headers, one XML-RPC body, Content-Length), and the same rules: each
    call is sent once; a kept-alive connection the server closed meanwhile is
    replaced before sending; only a 401 for another server id is signed again.
    What it leaves out is http.client's general machinery: the email package parsed
    every answer's headers, and with the request's marshalling that was a third of
    a call's CPU at the caller (issue 13). An answer must carry Content-Length (the
    kit's servers always do) or close the connection.
    """

    MAX_LINE = 65536
    MAX_HEADERS = 100

    def __init__(self, url: str, timeout: float, keyring=None, expect: str = ""):
        rest = url.split("://", 1)[-1]
        where, slash, path = rest.partition("/")
        self.host = where                                  # "host:port", as in the URL
        name, _, port = where.rpartition(":")
        self.address = (name.strip("[]"), int(port) if port else 80)
        self.path = "/" + path if slash else "/"
        self.timeout, self.keyring, self.expect = timeout, keyring, expect
        self.sock = self.reader = None

    def send(self, method: str, args: tuple) -> None:
        """Send one call; receive() reads its answer, the next thing to arrive."""
        body = xmlrpc.client.dumps(args, method, encoding="utf-8",
                                   allow_none=False).encode("utf-8")
        if self.keyring and self.host not in _SERVER_IDS:
            try:                                  # so that its answer is the next thing
                _SERVER_IDS[self.host] = server_id_at(self.host, self.timeout, self.keyring)
            except (OSError, http.client.HTTPException) as exc:   # the call never left
                raise _NotSent(f"asking who the server is: {_why(exc)}") from exc
        self.sent = body, _SERVER_IDS.get(self.host, "")
        named = self.expect and _name_in(self.sent[1])      # only when a name is expected
        if named and named != self.expect:                   # never sign for another
            raise _NotSent(f"the server at that address says it is {named}, not "
                           f"{self.expect}")
        self._post(*self.sent)

    def receive(self, deadline: float):
        """The answer to the call sent, waiting until `deadline` (time.monotonic())."""
        self._wait_until(deadline)
        status, headers, answer = self._read_answer()
        body, signed_for = self.sent
        announced = headers.get(SERVER_HEADER.lower(), "")
        if status == 401 and self.keyring and \
                _sign_again_for(announced, signed_for, self.expect):
            _SERVER_IDS[self.host] = announced     # another id now (a restart): sign for it
            self._post(body, announced)            # (a 401 changed nothing)
            self._wait_until(deadline)
            status, headers, answer = self._read_answer()
        if status != 200:
            self.close()
            raise xmlrpc.client.ProtocolError(self.host + self.path, status,
                                              "refused", headers)
        return rpc_reading.loads(answer)[0][0]        # a Fault is raised by loads (W1)

    def _wait_until(self, deadline: float) -> None:
        self.sock.settimeout(max(deadline - time.monotonic(), 0.001))

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
        self.sock = self.reader = None

    def _post(self, body: bytes, signed_for: str) -> None:
        """Send one request (a kept-alive connection the server closed is replaced)."""
        if self.sock is not None and _closed_by_peer(self.sock):
            self.close()
        if self.sock is None:
            self.sock = socket.create_connection(self.address, self.timeout)
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.reader = self.sock.makefile("rb")
        self.sock.settimeout(self.timeout)           # receive() may have shortened it
        lines = [f"POST {self.path} HTTP/1.1", f"Host: {self.host}",
                 "Content-Type: text/xml", f"Content-Length: {len(body)}"]
        if self.keyring:
            lines += [f"{k}: {v}" for k, v in sign(self.keyring, body, signed_for).items()]
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)

    def _read_answer(self) -> tuple:
        status_line = self._line()
        parts = status_line.split(None, 2)
        if len(parts) < 2 or not parts[0].startswith(b"HTTP/") or not parts[1].isdigit():
            raise http.client.BadStatusLine(status_line[:80].decode("latin-1"))
        headers = {}
        for _ in range(self.MAX_HEADERS):
            line = self._line()
            if line in (b"\r\n", b"\n"):
                break
            name, _, value = line.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        else:
            raise http.client.HTTPException("too many headers in the answer")
        length = headers.get("content-length")
        answer = self.reader.read(int(length)) if length is not None else self.reader.read()
        if length is not None and len(answer) != int(length):
            raise http.client.IncompleteRead(answer)
        if length is None or headers.get("connection", "").lower() == "close":
            self.close()
        return int(parts[1]), headers, answer

    def _line(self) -> bytes:
        line = self.reader.readline(self.MAX_LINE + 1)
        if not line:
            raise http.client.RemoteDisconnected("the server closed the connection")
        if len(line) > self.MAX_LINE:
            raise http.client.LineTooLong("a line of the answer")
        return line


def _known_code(code) -> FaultCode:
    try:
        return FaultCode(code)
    except ValueError:
        return FaultCode.INTERNAL


def _cause(exc) -> str:
    """What a failed call is known to be, for code to read (BankError.why)."""
    if isinstance(exc, ConnectionRefusedError):
        return REFUSED
    if isinstance(exc, (socket.timeout, TimeoutError)):
        return TIMED_OUT
    return BROKEN


def _why(exc) -> str:
    if isinstance(exc, (socket.timeout, TimeoutError)):
        return "no answer in time"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused: is it running?"
    if isinstance(exc, (ConnectionResetError, BrokenPipeError)):   # [Errno 104], [Errno 32]
        return "the server closed the connection"
    return type(exc).__name__ if not str(exc) else str(exc)[:80]
