"""The server half of the kit's XML-RPC: what every branch and coordinator serves with.

Role: turn a service object's explicit list of public methods into a safe, threaded
XML-RPC server. The client half (connections that sign their calls and report
failures as plain sentences) is bank/rpc_client.py; its names are re-exported here
(rpc.Client, rpc.connect, rpc.sign, rpc.server_id_at) for the programs that use them,
as are bank/server_process.py's (rpc.serve, rpc.check_bind, rpc.setup_logging, ...):
what a server process does around its server.

Rules:
  * Only the functions a service lists in ``PUBLIC_METHODS`` are served (plus
    ``system.listMethods`` / ``system.methodHelp``). No dotted names, no reflection.
  * Every failure reaches the client as a ``Fault(code, sentence)`` from errors.py;
    a Python traceback is written to the server's log, never to the wire.
  * Requests are checked before they are parsed: the body must declare its length
    (at most ``MAX_BODY`` bytes), must not be compressed, must not carry a DOCTYPE,
    and, when the server has keys, must be signed (HMAC-SHA256 over a timestamp, a
    nonce, the key's role, the server's id and the body; a stale or replayed
    signature, or one made for another server, is refused with HTTP 401).
  * Roles (bank/keys.py, K1-K4): a signed request may call only the methods of its
    key's role; any other is refused with HTTP 403 and one sentence naming the role
    and the method, before anything runs; so is a call the service itself refuses
    for its caller (``refuse_caller``, e.g. a branch's configured coordinator).
    ``system.listMethods`` lists a caller only what its role may call.
  * Every answer names the server in an ``X-Bank-Server`` header: its id,
    ``NAME@HOST:PORT#RUN`` (e.g. ``Mumbai@127.0.0.1:9100#3f9a0c12``), RUN new at every
    start. A client signs for that id; one that does not know it yet learns it from
    the header of any answer (the kit's client: from the 401 to a listMethods signed
    for no server id, sent before its first call, and again from the 401 to its
    first call after the server restarted; the server logs both as info, not as a
    wrong signature).
  * HTTP/1.1 keep-alive: a client reuses one connection for many calls. A connection
    may wait ``IDLE_TIMEOUT`` s for its next request; once a request begins, all of it
    (line, headers, body) must arrive within ``REQUEST_TIMEOUT`` s in total (give or
    take a second), however slowly the bytes trickle; its headers may hold
    ``MAX_HEADER_BYTES`` in all. At most ``MAX_CONNECTIONS`` are
    open at once; when all are taken, the one idle the longest (waiting, trickling a
    request in, or not reading its answer) is closed to make room. Only a connection
    whose call is running counts as busy and is never closed.
  * Calls signed with the student key may keep at most ``STUDENT_SHARE`` of those
    connections busy at once; one more is refused with HTTP 503 and a sentence before
    it runs (nothing changed). A busy connection is never closed to make room, so
    without this a student with 64 slow reads at once (long journals through the
    coordinator) turned every other caller away: the branches' lease renewals (their
    writes stopped), the coordinator's 2PC, the teacher. A student flood refuses
    students only, as with the replay caches (bank/keys.py K5).

Glossary:
  service   an object with PUBLIC_METHODS, e.g. a Branch or a Coordinator
  keys      the role keys from --secret-file (a keys file); a server holds all three
  role      student, teacher or server: what a request's key may call
  nonce     a string used once, so that a captured request cannot be replayed (the
            checks, and the replay cache, are in bank/rpc_signatures.py)
  server id who a signature is for: NAME@HOST:PORT#RUN, as the server announces it
"""

import inspect
import io
import logging
import os
import secrets
import socket
import socketserver
import sys
import threading
import time
import xmlrpc.client
from xmlrpc.server import SimpleXMLRPCRequestHandler, SimpleXMLRPCServer

from bank import keys, rpc_reading
from bank.errors import BankError, FaultCode, show_value
from bank.rpc_client import (DEFAULT_CALL_TIMEOUT, REFUSAL_HEADER,  # noqa: F401 (re-exported)
                             SERVER_HEADER, Client, connect, server_id_at, sign)
from bank.rpc_signatures import (  # noqa: F401 (re-exported)
    EARLIER_RUN, FIRST_CALL, MAX_NONCES, SIGNATURE_WINDOW, UNSIGNED, RecentNonces,
    SignatureChecker, _is_count, load_secret, new_secret, write_secret)

PORT_HINT = (" Another server uses that port: a local cluster (python cluster.py stop), "
             "or pick another with --port (0 = any free port).")
MAX_BODY = 256 * 1024          # bytes; a prepare with 64 ops is about 10 KB
MAX_CONNECTIONS = 64           # connections served at once; more are turned away
STUDENT_SHARE = 0.75           # of them, how many student calls may keep busy at once:
                               # the rest is room for the servers' calls and the teacher's
IDLE_TIMEOUT = 30              # seconds a connection may wait between requests
REQUEST_TIMEOUT = 10           # seconds a whole request may take to arrive, once begun

log = logging.getLogger("rpc")
NOT_AN_ATTACK = {             # refused signatures a client makes in the normal course
    FIRST_CALL: "named no server id yet (a client asking who this server is)",
    EARLIER_RUN: "was signed for an earlier run of this server (it restarted since)",
    UNSIGNED: "was not signed (a client without keys, or one learning who this server is)"}


# ---- the server ----------------------------------------------------------------------

class _Handler(SimpleXMLRPCRequestHandler):
    """One HTTP connection. Checks the request before any XML is parsed."""
    protocol_version = "HTTP/1.1"       # keep-alive: many calls per connection
    rpc_paths = ("/", "/RPC2")
    timeout = IDLE_TIMEOUT              # socket timeout for idle or slow clients
    server_version = "bank-kit"         # no Python version in the Server header
    sys_version = ""

    def setup(self):
        super().setup()
        self.rfile.close()                  # read through a clock instead (_RequestClock)
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.clock = _RequestClock(self.connection)
        self.rfile = io.BufferedReader(self.clock)
        self.server.connections.opened(self.connection)

    def handle_one_request(self):
        self.clock.next_request()
        super().handle_one_request()

    def parse_request(self) -> bool:
        """The request line and headers, read without the email package.

        http.server hands the headers to email.parser, which was a fifth of a call's
        CPU (issue 13). A request here is one line and a few "Name: value" lines;
        anything else is answered as http.server would: 400 for a malformed line,
        431 for too many or too long headers, 505 for an HTTP version other than 1.x.
        """
        self.command, self.close_connection = None, True
        self.request_version = self.default_request_version
        words = self.raw_requestline.decode("iso-8859-1").split()
        if len(words) != 3 or not words[2].startswith("HTTP/"):
            self.send_error(400, "Bad request line")
            return False
        if not words[2].startswith("HTTP/1."):
            self.send_error(505, "Only HTTP/1.x is served")
            return False
        self.command, self.path, self.request_version = words
        headers = _read_headers(self.rfile)
        if isinstance(headers, tuple):                   # (status, why)
            self.send_error(*headers)
            return False
        self.headers = headers
        connection = headers.get("Connection", "").lower()
        self.close_connection = connection == "close" or (
            self.request_version == "HTTP/1.0" and connection != "keep-alive")
        if headers.get("Expect", "").lower() == "100-continue" \
                and self.request_version != "HTTP/1.0":
            return self.handle_expect_100()
        return True

    def finish(self):
        self.server.connections.closed(self.connection)
        super().finish()

    def do_POST(self):
        if not self.is_rpc_path_valid():
            return self._refuse(404, "Not found: post XML-RPC to /")
        if self.headers.get("Transfer-Encoding") is not None:   # with a Content-Length
            return self._refuse(411, "Chunked requests (Transfer-Encoding) are not "  # too:
                                     "accepted; send the body with a Content-Length.")  # smuggling
        length = self.headers.get("Content-Length", "")
        if not _is_count(length):
            return self._refuse(411, "A Content-Length header is required.")
        if int(length) > MAX_BODY:
            return self._refuse(413, f"Request too large (at most {MAX_BODY} bytes).")
        if self.headers.get("Content-Encoding", "identity").lower() != "identity":
            return self._refuse(415, "Compressed requests are not accepted.")
        body = self.rfile.read(int(length))
        self.clock.allow(IDLE_TIMEOUT)                # reading is over: a normal timeout
        if len(body) != int(length):                  # to send the answer
            self.close_connection = True              # the client left, or was made to
            return
        role = None                                   # no keys: loopback, every role
        checker = self.server.checker
        if checker is not None:
            why, role = checker.verify(self.headers, body)
            if why in NOT_AN_ATTACK:                  # it learns the id from the 401
                log.info("a call from %s %s: told it this server's id",
                         self.client_address[0], NOT_AN_ATTACK[why])
            elif why:
                log.warning("refused a request from %s: %s", self.client_address[0], why)
            if why:
                return self._refuse(401, "Unauthorized: this server needs a request "
                                         "signed with a role's key (X-Bank-Key).")
        if b"\x00" in body or body.startswith((b"\xff\xfe", b"\xfe\xff")):
            return self._refuse(400, "Requests must be UTF-8 XML, without NUL "   # no UTF-16/32
                                     "characters (U+0000).")                     # tricks
        upper = body.upper()                          # one copy for both checks
        if b"<!DOCTYPE" in upper or b"<!ENTITY" in upper:
            return self._refuse(400, "DOCTYPE and entity declarations are not accepted.")
        call = self.server.parse(body)                # (method, params), or None
        forbidden = call and role and self.server.forbidden(role, *call)
        if forbidden:                                 # K2: not this role's method
            log.warning("refused %s from %s: %s", call[0], self.client_address[0], forbidden)
            return self._refuse(403, forbidden)
        if not self.server.student_calls.enter(role):   # the rest is others' room
            return self._refuse(503, STUDENTS_BUSY)
        self.server.connections.busy(self.connection, True)    # never closed to make room
        try:
            response = self.server.answer(call, role)
        finally:
            # Sending may be cut to make room: a client that never reads holds no slot.
            self.server.connections.busy(self.connection, False)
            self.server.student_calls.leave(role)
        self.wfile.write(self._answer_head(len(response)) + response)   # one send

    def send_error(self, code, message=None, explain=None):
        """http.server's own refusals (a malformed request line or header line, too many
        headers, a method or HTTP version not served) are answered as ours are: one
        sentence, also in X-Bank-Refusal, not an HTML page. Always as HTTP/1.1: for a
        request line it could not read, http.server answered as HTTP/0.9, a page with
        no status line that no HTTP/1.x client can read."""
        if self.request_version in ("HTTP/0.9", ""):
            self.request_version = "HTTP/1.1"
        what = (message or self.responses.get(code, ("Refused",))[0]).rstrip(".")
        self._refuse(code, f"{what}: this server answers XML-RPC posted to / over HTTP/1.x.")

    def _refuse(self, status: int, sentence: str):
        self.clock.allow(IDLE_TIMEOUT)
        payload = (sentence + "\n").encode()
        self.send_response(status)
        # Every refusal's sentence also travels in a header: a client (the kit's, or a
        # student's xmlrpc.client, whose ProtocolError keeps the headers, not the body)
        # shows it, instead of a bare "HTTP 413".
        self.send_header(REFUSAL_HEADER, sentence.encode("ascii", "replace").decode())
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(payload)
        self.close_connection = True

    def _answer_head(self, length: int) -> bytes:
        """The 200 answer's status line and headers, in one piece with the body so
        that an answer is one send (two small sends can wait on each other's ACK)."""
        return (f"HTTP/1.1 200 OK\r\nServer: {self.server_version}\r\n"
                f"Date: {self.date_time_string()}\r\nContent-Type: text/xml\r\n"
                f"Content-Length: {length}\r\n{SERVER_HEADER}: {self.server.server_id}"
                "\r\n\r\n").encode("latin-1")

    def end_headers(self):
        self.send_header(SERVER_HEADER, self.server.server_id)   # on every answer
        super().end_headers()

    def log_message(self, fmt, *args):   # route http.server's chatter to our log
        log.debug("%s " + fmt, self.client_address[0], *args)

    def date_time_string(self, timestamp=None):
        """The Date header, formatted once a second instead of on every answer."""
        if timestamp is not None:
            return super().date_time_string(timestamp)
        second = int(time.time())
        if _DATE[0] != second:
            _DATE[:] = [second, super().date_time_string(second)]
        return _DATE[1]


_DATE = [0, ""]                # (second, its Date header text): formatted once a second
MAX_HEADER_LINE = 65536        # bytes in one header line, as http.server allows
MAX_HEADERS = 100              # header lines in one request
MAX_HEADER_BYTES = 65536       # bytes in all of them: 100 lines of 64 KB each were 6 MB
                               # held per connection, 400 MB for 64 unsigned clients


class _Headers(dict):
    """A request's headers by lower-case name; get() takes any case, as email's did."""

    def get(self, name, default=None):
        return super().get(name.lower(), default)


def _read_headers(rfile):
    """The header lines up to the blank line, as _Headers, or (status, why) to refuse.

    A header given twice is refused (two Content-Lengths are how requests get
    smuggled past a proxy), and so is a folded continuation line. All the lines
    together may hold MAX_HEADER_BYTES (431 beyond), so that a client with no key
    cannot make a connection hold megabytes while it waits.
    """
    headers = _Headers()
    left = MAX_HEADER_BYTES
    for _ in range(MAX_HEADERS + 1):
        line = rfile.readline(min(MAX_HEADER_LINE, left) + 1)
        if len(line) > MAX_HEADER_LINE:
            return 431, "Header line too long"
        left -= len(line)
        if left < 0:
            return 431, "Request headers too large"
        if line in (b"\r\n", b"\n", b""):
            return headers
        name, colon, value = line.decode("iso-8859-1").partition(":")
        name = name.strip().lower()
        if not colon or not name or line[:1] in (b" ", b"\t") or name in headers:
            return 400, "Bad header line"
        headers[name] = value.strip()
    return 431, "Too many headers"


class _RequestClock(io.RawIOBase):
    """The connection's socket, read against one deadline per request.

    Between requests a connection may wait IDLE_TIMEOUT seconds for the first byte;
    from that byte on, the whole request must arrive within REQUEST_TIMEOUT seconds.
    A per-read timeout alone would let a client that sends one byte every few
    seconds hold its connection (and a thread) for ever.
    """

    SLACK = 1.0        # seconds a wait may outlast its deadline, to spare a system call

    def __init__(self, sock):
        super().__init__()
        self.sock, self.timeout = sock, sock.gettimeout()
        self.next_request()

    def readable(self) -> bool:
        return True

    def next_request(self) -> None:
        self.waiting, self.deadline = True, time.monotonic() + IDLE_TIMEOUT

    def readinto(self, buffer) -> int:
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("the request took too long to arrive")
        self.allow(left)
        count = self.sock.recv_into(buffer)
        if count and self.waiting:          # the first byte: the request's clock starts
            self.waiting, self.deadline = False, time.monotonic() + REQUEST_TIMEOUT
        return count

    def allow(self, seconds: float) -> None:
        """Let the next socket operation wait `seconds` (up to SLACK more). The timeout
        is changed only when it must be: each change is a system call that hands
        Python's GIL to another thread, and a request usually arrives in one read, so
        in a busy server most requests need none (issue 13)."""
        if self.timeout is None or not seconds <= self.timeout <= seconds + self.SLACK:
            self.sock.settimeout(seconds)
            self.timeout = seconds


class _Connections:
    """Open connections, so that idle ones can make room for new clients.

    A connection is busy while its call runs; otherwise it is idle (kept alive between
    calls, a client still sending its request, or one not reading its answer).
    """

    def __init__(self):
        self._open = {}                    # socket -> [last activity, busy]
        self._lock = threading.Lock()

    def opened(self, sock):
        with self._lock:
            self._open[sock] = [time.monotonic(), False]

    def closed(self, sock):
        with self._lock:
            self._open.pop(sock, None)

    def busy(self, sock, busy: bool):
        with self._lock:
            if sock in self._open:
                self._open[sock] = [time.monotonic(), busy]

    def close_oldest_idle(self) -> bool:
        """Shut the connection idle the longest; its thread then ends. False if none."""
        with self._lock:
            idle = [(t, s) for s, (t, busy) in self._open.items() if not busy]
        if not idle:
            return False
        try:
            min(idle, key=lambda pair: pair[0])[1].shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        return True


STUDENTS_BUSY = ("Busy: this server runs as many calls signed with the student key at once "
                 "as it may, keeping room for the servers' own calls and the teacher's. "
                 "Nothing was changed; try again in a moment.")


class _StudentCalls:
    """The calls signed with the student key that are running: at most `limit` at once."""

    SAY_EVERY = 60.0                     # seconds between two warnings of one flood

    def __init__(self, limit: int):
        self.limit, self.running, self._said_at = limit, 0, None
        self._lock = threading.Lock()

    def enter(self, role) -> bool:
        """May this call run now? Always for another role (or none: a server without keys)."""
        if role != "student":
            return True
        with self._lock:
            if self.running < self.limit:
                self.running += 1
                return True
            now = time.monotonic()
            say = self._said_at is None or now - self._said_at >= self.SAY_EVERY
            self._said_at = now if say else self._said_at
        if say:                          # once a minute at most, not once per refused call
            log.warning("%d calls signed with the student key are running: refusing more "
                        "until one ends (room kept for the servers and the teacher)",
                        self.limit)
        return False

    def leave(self, role) -> None:
        if role == "student":
            with self._lock:
                self.running -= 1


class Server(socketserver.ThreadingMixIn, SimpleXMLRPCServer):
    """A threaded XML-RPC server for one service object's PUBLIC_METHODS."""
    daemon_threads = True
    allow_reuse_address = os.name != "nt"   # on Windows it would let ports be stolen
    request_queue_size = 64                 # listen backlog: bursts of clients wait, not fail

    def __init__(self, service, host: str, port: int, secret=None):
        super().__init__((host, port), requestHandler=_Handler, logRequests=False,
                         allow_none=False, encoding="utf-8")
        self.service = service
        self.service_name = getattr(service, "name", type(service).__name__)
        self._caller = threading.local()        # the role of the call this thread runs
        self.server_id = (f"{self.service_name}@{self.url.split('://', 1)[1]}"   # a new
                          f"#{secrets.token_hex(4)}")          # RUN at every start
        self.checker = SignatureChecker(secret, self.server_id) if secret else None
        self._slots = threading.BoundedSemaphore(MAX_CONNECTIONS)
        self.student_calls = _StudentCalls(max(1, int(MAX_CONNECTIONS * STUDENT_SHARE)))
        self.connections = _Connections()
        for name in service.PUBLIC_METHODS:
            self.register_function(getattr(service, name), name)
        self.register_introspection_functions()
        self.arities = {name: _arity(func) for name, func in self.funcs.items()}

    def system_listMethods(self):
        """The methods this caller's key may call (all of them without keys)."""
        names = super().system_listMethods()
        role = self._caller.role
        return [n for n in names if role is None or keys.may_call(role, n)]

    def system_methodHelp(self, method_name):
        """Help text of a public method (its docstring)."""
        if not isinstance(method_name, str):
            raise BankError(FaultCode.BAD_INPUT, "methodHelp takes a method name (text).")
        return super().system_methodHelp(method_name)

    @property
    def url(self) -> str:
        """The URL others use to reach us (this machine's LAN address if bound to all)."""
        host, port = self.server_address[:2]
        if host in ("0.0.0.0", "::"):
            host = _lan_address()
        return f"http://{host}:{port}"

    # Bounded concurrency: a flood of connections cannot exhaust threads.
    def process_request(self, request, client_address):
        if not self._slots.acquire(blocking=False):
            self.connections.close_oldest_idle()       # make room, then wait a moment
            if not self._slots.acquire(timeout=2):
                log.warning("too many busy connections; turning %s away", client_address[0])
                self.shutdown_request(request)
                return
        super().process_request(request, client_address)

    def process_request_thread(self, request, client_address):
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()

    def handle_error(self, request, client_address):
        """A connection that failed. A client that went away (reset, broken pipe, a
        timeout) is one line in the log, not a traceback in the terminal the class
        watches; anything else is a bug, and its traceback goes to the log."""
        error = sys.exc_info()[1]
        if isinstance(error, OSError):
            log.info("connection from %s ended: %s", client_address[0],
                     error.strerror or type(error).__name__)
        else:
            log.exception("unexpected error on a connection from %s", client_address[0])

    # ---- one call: parse, check the caller's role, run, answer --------------------------

    def parse(self, data: bytes):
        """(method, params) of a request body, or None if it is not XML-RPC."""
        try:
            params, method = rpc_reading.loads(data)        # W1: as xmlrpc.client reads
        except Exception:
            return None
        return method, params

    def forbidden(self, role: str, method, params) -> str:
        """Why a caller with `role`'s key may not make this call, or "" (K2, then the
        service's own check of who is calling, e.g. a branch's configured coordinator).
        A method this server does not have is left to the dispatch (UNKNOWN_METHOD)."""
        if method not in self.funcs:
            return ""
        if not keys.may_call(role, method):
            return keys.refusal(role, method)
        check = getattr(self.service, "refuse_caller", None)
        return check(role, method, params) if check else ""

    def answer(self, call, role=None) -> bytes:
        """Run a parsed call; every failure becomes a kit Fault."""
        if call is None:
            return _fault(FaultCode.BAD_INPUT, "The request is not valid XML-RPC.")
        method, params = call
        self._caller.role = role
        try:
            result = self._call(method, params)
            return xmlrpc.client.dumps((result,), methodresponse=True,
                                       allow_none=False, encoding="utf-8").encode()
        except BankError as exc:
            return _fault(exc.code, exc.message)
        except Exception:
            log.exception("internal error in %s(%r)", method, params)
            return _fault(FaultCode.INTERNAL,
                          f"Internal error in {self.service_name} while running "
                          f"{method}; the server's log has the details.")
        finally:
            self._caller.role = None

    def _marshaled_dispatch(self, data, dispatch_method=None, path=None):
        """Parse, call and answer (the standard library's entry point; no role check)."""
        return self.answer(self.parse(data))

    def _call(self, method, params):
        func = self.funcs.get(method) if isinstance(method, str) else None
        if func is None:                  # an empty <methodName/> reads as None (W1)
            named = (f"is no method {show_value(method)}" if method else
                     "was no method name in the request")
            raise BankError(FaultCode.UNKNOWN_METHOD,
                            f"There {named}; system.listMethods lists them.")
        fewest, most = self.arities[method]       # computed once, at registration
        if not fewest <= len(params) <= most:
            raise BankError(FaultCode.BAD_INPUT,
                            f"Wrong number of arguments for {method}{_signature(func)}.")
        return func(*params)


def _lan_address() -> str:
    try:
        return socket.gethostbyname(socket.gethostname())
    except OSError:
        return "127.0.0.1"


def _arity(func) -> tuple:
    """(fewest, most) positional arguments func takes; most is huge for *args."""
    try:
        params = inspect.signature(func).parameters.values()
    except (TypeError, ValueError):
        return 0, 10**6
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    fewest = sum(1 for p in positional if p.default is p.empty)
    varargs = any(p.kind is p.VAR_POSITIONAL for p in params)
    return fewest, 10**6 if varargs else len(positional)


def _signature(func) -> str:
    try:
        return str(inspect.signature(func))
    except (TypeError, ValueError):
        return "(...)"


def _fault(code, sentence: str) -> bytes:
    return xmlrpc.client.dumps(xmlrpc.client.Fault(int(code), sentence),
                               methodresponse=True, encoding="utf-8").encode()


from bank.server_process import (  # noqa: E402,F401 (re-exported: rpc.serve, ...)
    add_output_options, check_bind, check_server_keys, file_arg, folder_arg, hold_exclusive,
    port_arg, serve, setup_logging, time_arg, url_arg)
