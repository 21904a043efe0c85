"""Hostile and malformed requests to the servers (design section 10, issue 7).

Rules checked, against a real branch AND the real coordinator: a body must declare its
length (411), at most MAX_BODY bytes (413, refused before the body is read), must not
be compressed (415) and must not carry a DOCTYPE or entity declaration (400); bad
input of any kind (garbage bytes, truncated XML, XML that is not XML-RPC, unknown or
dotted method names, wrong argument counts, odd header digits, deep nesting) gets its
documented answer (an HTTP status or a Fault code) and never a traceback or a Python
class name; the server keeps serving; nothing changes. The fixtures and helpers are
tests/test_security.py's.

All traffic goes to 127.0.0.1, to processes started here (ports chosen by the OS), and
every wait is a poll with a deadline.
"""

import http.client
import pathlib
import random
import socket
import sys
import time
import urllib.parse
import xmlrpc.client
import zlib

import pytest

KIT = pathlib.Path(__file__).resolve().parent.parent
if str(KIT) not in sys.path:
    sys.path.insert(0, str(KIT))

from bank import rpc                                     # noqa: E402
from bank.errors import FaultCode                        # noqa: E402
from test_security import (  # noqa: E402,F401  (fixtures and helpers)
    DEPOSIT, SERVERS, assert_no_leak, assert_serving, bank, call_body, exchange, fault_of,
    post_signed, signed, snapshot, url_of)


GiB = 1024 ** 3


# ---- hostile and malformed bodies ---------------------------------------------------------

BILLION_LAUGHS = (b'<?xml version="1.0"?>\n<!DOCTYPE lolz [\n<!ENTITY lol "lol">\n'
                  + b"".join(b'<!ENTITY lol%d "%s">\n' % (i, (b"&lol%d;" % (i - 1)
                                                               if i > 1 else b"&lol;") * 10)
                             for i in range(1, 10))
                  + b']>\n<methodCall><methodName>open_account</methodName><params><param>'
                    b'<value><string>&lol9;</string></value></param></params></methodCall>')
XXE = (b'<?xml version="1.0"?><!doctype m [<!entity x system "file:///etc/passwd">]>'
       b'<methodCall><methodName>ping</methodName><params><param><value><string>&x;'
       b'</string></value></param></params></methodCall>')
GARBAGE = random.Random(7).randbytes(3000)


def _body_cases():
    """name -> (body, expected): expected is ("http", status) or ("fault", FaultCode)."""
    deposit = call_body("deposit", "1001", "1.00")
    return {
        "garbage-bytes": (GARBAGE, ("http", 400)),         # NUL bytes: refused before parsing
        "empty-body": (b"", ("fault", FaultCode.BAD_INPUT)),
        "truncated-xml": (deposit[:-40], ("fault", FaultCode.BAD_INPUT)),
        "bad-utf8": (deposit.replace(b"1001", b"10\xff\xfe01"), ("fault", FaultCode.BAD_INPUT)),
        "not-xml-rpc": (b'<?xml version="1.0"?><html><body>hello</body></html>',
                        ("fault", FaultCode.BAD_INPUT)),
        "response-as-request": (xmlrpc.client.dumps(xmlrpc.client.Fault(1, "x"),
                                                    methodresponse=True).encode(),
                                ("fault", FaultCode.BAD_INPUT)),
        "billion-laughs": (BILLION_LAUGHS, ("http", 400)),
        "external-entity": (XXE, ("http", 400)),
        "unknown-method": (call_body("steal_money", "1001"), ("fault", FaultCode.UNKNOWN_METHOD)),
        "dotted-ledger._write": (call_body("ledger._write"), ("fault", FaultCode.UNKNOWN_METHOD)),
        "dotted-ledger.deposit": (call_body("ledger.deposit", "1001", 100),
                                  ("fault", FaultCode.UNKNOWN_METHOD)),
        "dunder-__init__": (call_body("__init__", "x", "y"), ("fault", FaultCode.UNKNOWN_METHOD)),
        "dunder-__class__": (call_body("__class__"), ("fault", FaultCode.UNKNOWN_METHOD)),
        "private-_route": (call_body("_route", "Mumbai/1001"),
                           ("fault", FaultCode.UNKNOWN_METHOD)),
        "dotted-faults.arm": (call_body("faults.arm", "crash-before-vote"),
                              ("fault", FaultCode.UNKNOWN_METHOD)),
        "globals": (call_body("deposit.__globals__"), ("fault", FaultCode.UNKNOWN_METHOD)),
        "system.multicall": (call_body("system.multicall", []),
                             ("fault", FaultCode.UNKNOWN_METHOD)),
        "empty-method-name": (call_body(""), ("fault", FaultCode.UNKNOWN_METHOD)),
        "ping-with-an-argument": (call_body("ping", 1), ("fault", FaultCode.BAD_INPUT)),
        "deposit-without-arguments": (call_body("deposit"), ("fault", FaultCode.BAD_INPUT)),
        "deposit-with-one-argument": (call_body("deposit", "1001"),
                                      ("fault", FaultCode.BAD_INPUT)),
        "transfer-with-five-arguments": (call_body("transfer", "a", "b", "1", "r", "extra"),
                                         ("fault", FaultCode.BAD_INPUT)),
    }


BODY_CASES = _body_cases()


@pytest.mark.parametrize("case", list(BODY_CASES))
@pytest.mark.parametrize("server", SERVERS)
def test_hostile_body_is_refused_cleanly(bank, server, case):
    """A malformed or hostile (but signed) body gets its documented answer: an HTTP status
    for what is refused before parsing, else a Fault with a code from errors.FaultCode;
    never a traceback or class name; the server keeps serving and nothing changes."""
    body, (kind, expected) = BODY_CASES[case]
    before = snapshot(bank)
    start = time.monotonic()
    status, data = post_signed(bank, url_of(bank, server), body)
    assert time.monotonic() - start < 5
    if kind == "http":
        assert status == expected, (status, data)
    else:
        assert status == 200, (status, data)
        fault = fault_of(data)
        assert fault is not None and fault[0] == expected, fault or data
        assert fault[1].strip(), "a fault needs a sentence"
    assert_no_leak(data)
    assert snapshot(bank) == before
    assert_serving(bank, server)


@pytest.mark.parametrize("server", SERVERS)
def test_unsigned_hostile_body_gets_401(bank, server):
    """Without a signature even a DOCTYPE body is refused with 401, before any parsing."""
    before = snapshot(bank)
    status, data = exchange(url_of(bank, server), BILLION_LAUGHS)
    assert status == 401, (status, data)
    assert snapshot(bank) == before


def _gzip_bomb() -> bytes:
    """About 200 KB of gzip (under MAX_BODY) that would inflate to 200 MB of zeros."""
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)
    zeros = bytes(1 << 20)
    return b"".join(packer.compress(zeros) for _ in range(200)) + packer.flush()


GZIP_BOMB = _gzip_bomb()


def _head_cases():
    """name -> (body, extra headers, send a Content-Length?, path, method, status)."""
    small = call_body("deposit", "1001", "1.00")
    return {
        "2GiB-content-length": (small, {"Content-Length": str(2 * GiB)}, True, "/", "POST", 413),
        "one-byte-over-the-cap": (small, {"Content-Length": str(rpc.MAX_BODY + 1)}, True, "/",
                                  "POST", 413),
        "no-content-length": (small, {}, False, "/", "POST", 411),
        "chunked-no-length": (b"%x\r\n%s\r\n0\r\n\r\n" % (len(small), small),
                              {"Transfer-Encoding": "chunked"}, False, "/", "POST", 411),
        "negative-length": (small, {"Content-Length": "-1"}, True, "/", "POST", 411),
        "text-length": (small, {"Content-Length": "lots"}, True, "/", "POST", 411),
        "gzip-bomb": (GZIP_BOMB, {"Content-Encoding": "gzip"}, True, "/", "POST", 415),
        "deflate": (zlib.compress(small), {"Content-Encoding": "deflate"}, True, "/", "POST",
                    415),
        "wrong-path": (small, {}, True, "/admin", "POST", 404),
    }


HEAD_CASES = _head_cases()


@pytest.mark.parametrize("case", list(HEAD_CASES))
@pytest.mark.parametrize("server", SERVERS)
def test_bad_framing_is_refused_before_reading(bank, server, case):
    """Oversized (even 2 GiB declared with a tiny body), unlengthed, compressed (a gzip
    bomb) or misaddressed requests get 413 / 411 / 415 / 404 at once, with a plain
    sentence; nothing changes and the server keeps serving."""
    body, extra, length, path, method, expected = HEAD_CASES[case]
    headers = signed(bank, body, url_of(bank, server))
    headers.update(extra)
    before = snapshot(bank)
    start = time.monotonic()
    status, data = exchange(url_of(bank, server), body, headers, length=length, path=path,
                            method=method, timeout=5)
    elapsed = time.monotonic() - start
    assert status == expected, (status, data)
    assert elapsed < 2, f"took {elapsed:.1f} s: was the body read first?"
    assert_no_leak(data)
    assert snapshot(bank) == before
    assert_serving(bank, server)


@pytest.mark.parametrize("server", SERVERS)
def test_get_request_is_not_served(bank, server):
    """Only POST is XML-RPC: a GET gets an HTTP error without internals."""
    status, data = exchange(url_of(bank, server), method="GET", length=False)
    assert status in (405, 501), status
    assert b"Traceback" not in data


@pytest.mark.parametrize("case", ["length-superscript-two", "length-5000-digits",
                                  "time-superscript-two"])
def test_odd_digits_in_headers_get_an_http_answer(bank, case):
    """Header values that look like digits to str.isdigit() but are not ASCII numbers
    still get an HTTP refusal (400/401/411/413), never a dropped connection."""
    body = call_body("ping")
    headers = signed(bank, body, url_of(bank, "Mumbai"))
    if case == "length-superscript-two":
        headers["Content-Length"] = "\u00b2"
    elif case == "length-5000-digits":
        headers["Content-Length"] = "9" * 5000
    else:
        headers["X-Bank-Time"] = "\u00b2"
    try:
        status, _ = exchange(url_of(bank, "Mumbai"), body, headers, timeout=5)
    except (http.client.HTTPException, OSError) as exc:
        pytest.fail(f"no HTTP answer: {exc!r}")
    assert status in (400, 401, 411, 413)
    assert_serving(bank, "Mumbai")


def test_doctype_in_utf16_is_refused(bank):
    """A DOCTYPE with an entity declaration is refused (HTTP 400) whatever the body's
    encoding, here UTF-16."""
    doc = ('<?xml version="1.0" encoding="UTF-16"?><!DOCTYPE m [<!ENTITY m "ping">]>'
           "<methodCall><methodName>&m;</methodName></methodCall>")
    status, data = post_signed(bank, url_of(bank, "Mumbai"), doc.encode("utf-16"))
    assert status == 400, (status, fault_of(data), data[:200])


def test_deeply_nested_value_gets_a_fault(bank):
    """A deeply nested array as an argument is refused with a Fault (400), not a dropped
    connection; the server keeps serving and nothing changes."""
    depth = 2000
    deep = "<value><array><data>" * depth + "</data></array></value>" * depth
    body = (f"<?xml version='1.0'?><methodCall><methodName>account</methodName><params>"
            f"<param>{deep}</param></params></methodCall>").encode()
    assert len(body) < rpc.MAX_BODY
    before = snapshot(bank)
    try:
        status, data = post_signed(bank, url_of(bank, "Mumbai"), body)
    except (http.client.HTTPException, OSError) as exc:
        pytest.fail(f"no answer: {exc!r}")
    finally:
        assert_serving(bank, "Mumbai")
    assert status == 200 and fault_of(data)[0] == FaultCode.BAD_INPUT
    assert snapshot(bank) == before


@pytest.mark.parametrize("server", SERVERS)
def test_introspection_with_a_list_gets_bad_input(bank, server):
    """system.methodHelp([1]) is bad input (400), not an internal error (500)."""
    status, data = post_signed(bank, url_of(bank, server), call_body("system.methodHelp", [1]))
    assert status == 200
    assert fault_of(data)[0] == FaultCode.BAD_INPUT, fault_of(data)


def _raw_exchange(url: str, head: bytes, body: bytes = b"") -> bytes:
    """Send these exact bytes (request line and headers, then body) over a plain socket;
    everything the server answers until it closes the connection."""
    parts = urllib.parse.urlsplit(url)
    assert parts.hostname == "127.0.0.1"           # tests talk to loopback only
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as sock:
        sock.sendall(head + body)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
        return answer


def _request_head(lines: list, body: bytes, version: str = "HTTP/1.1") -> bytes:
    return (f"POST / {version}\r\nHost: x\r\nContent-Type: text/xml\r\n"
            + "".join(line + "\r\n" for line in lines)
            + f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode()


@pytest.mark.parametrize("case, lines, version, status", [
    ("content-length-twice", ["Content-Length: 5"], "HTTP/1.1", b" 400 "),
    ("folded-header-line", ["X-Note: one", " two"], "HTTP/1.1", b" 400 "),
    ("header-without-colon", ["X-Note"], "HTTP/1.1", b" 400 "),
    ("too-many-headers", [f"X-H{i}: {i}" for i in range(rpc.MAX_HEADERS + 1)], "HTTP/1.1",
     b" 431 "),
    ("http-2", [], "HTTP/2.0", b" 505 "),
    ("headers-too-large", [f"X-H{i}: {'a' * 8000}" for i in range(9)], "HTTP/1.1",
     b" 431 "),
])
def test_the_servers_own_header_reader_refuses_what_http_server_refused(bank, case, lines,
                                                                        version, status):
    """The lean request path (issue 13) reads headers itself: a header given twice (how
    requests are smuggled), a folded or colon-less line, too many headers, or an HTTP
    version other than 1.x is refused with an HTTP status, and the server keeps serving.
    So are headers of more than MAX_HEADER_BYTES in all, each line short enough: 100
    lines of 64 KB let a client with no key make one connection hold 6 MB."""
    body = call_body("ping")
    answer = _raw_exchange(url_of(bank, "Mumbai"), _request_head(lines, body, version), body)
    assert status in answer.split(b"\r\n", 1)[0] + b" ", answer[:200]
    assert b"Traceback" not in answer
    assert_serving(bank, "Mumbai")


def test_a_hand_written_http_request_gets_one_whole_answer(bank):
    """Any HTTP client keeps working (issue 13): a hand-written HTTP/1.0 request over a
    plain socket, with no keep-alive, gets a 200 with Content-Length, the X-Bank-Server
    header and the XML-RPC answer in full, and the connection is then closed."""
    body = call_body("ping")
    signature = "".join(f"{k}: {v}\r\n" for k, v in signed(bank, body, url_of(bank, "Mumbai"))
                        .items())
    head = (f"POST /RPC2 HTTP/1.0\r\nContent-Type: text/xml\r\n{signature}"
            f"Content-Length: {len(body)}\r\n\r\n").encode()
    answer = _raw_exchange(url_of(bank, "Mumbai"), head, body)
    head_part, _, xml = answer.partition(b"\r\n\r\n")
    assert head_part.startswith(b"HTTP/1.1 200 OK"), head_part
    assert f"Content-Length: {len(xml)}".encode() in head_part
    assert b"X-Bank-Server: Mumbai@127.0.0.1:" in head_part
    assert xmlrpc.client.loads(xml)[0][0]["name"] == "Mumbai"


@pytest.mark.parametrize("case, request_bytes, status", [
    ("request-line-with-four-words", b"POST / HTTP/1.1 extra\r\n\r\n", b"400"),
    ("blank-request-line", b"\r\n\r\n", b"400"),
    ("header-without-colon", b"POST / HTTP/1.1\r\nX-Note\r\n\r\n", b"400"),
    ("http-2-preface", b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", b"505"),
    ("get", b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", b"501"),
])
def test_a_request_http_server_refuses_gets_a_status_line_and_one_sentence(
        bank, case, request_bytes, status):
    """A request refused while its line or headers are read is answered like every other
    refusal: an HTTP/1.1 status line, the sentence in X-Bank-Refusal, a one-line plain
    text body. (A request line that could not be read got an HTTP/0.9 answer, an HTML
    page with no status line at all; the others an HTML page without X-Bank-Refusal.)"""
    answer = _raw_exchange(url_of(bank, "Mumbai"), request_bytes)
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 " + status + b" "), answer[:200]
    assert b"\r\nX-Bank-Refusal: " in head, head
    assert b"<html" not in body.lower() and body.decode().count("\n") == 1, body
    assert b"XML-RPC" in body
    assert_serving(bank, "Mumbai")


@pytest.mark.parametrize("server", SERVERS)
def test_a_chunked_request_with_a_content_length_is_refused(bank, server):
    """A body announced both chunked (Transfer-Encoding) and by Content-Length is refused
    with 411 and a sentence, not read by its Content-Length: the two framings disagreeing
    is how requests are smuggled past a proxy (RFC 9112, 6.1). (It was served.)"""
    body = call_body(*DEPOSIT[server])
    headers = signed(bank, body, url_of(bank, server))
    headers["Transfer-Encoding"] = "chunked"
    before = snapshot(bank)
    status, data = exchange(url_of(bank, server), body, headers)
    assert status == 411, (status, data)
    assert b"Content-Length" in data
    assert snapshot(bank) == before
    assert_serving(bank, server)


@pytest.mark.parametrize("server", SERVERS)
@pytest.mark.parametrize("name, says", [("", "There was no method name in the request"),
                                        ("x" * 300, "There is no method 'xxx")])
def test_an_unknown_method_is_named_as_sent(bank, server, name, says):
    """An empty method name is said to be missing, not called 'None' (how xmlrpc reads an
    empty <methodName/>); a long one is cut with "...", never silently."""
    status, data = post_signed(bank, url_of(bank, server), call_body(name))
    code, sentence = fault_of(data)
    assert code == FaultCode.UNKNOWN_METHOD and sentence.startswith(says), sentence
    assert "None" not in sentence and ("..." in sentence) == bool(name), sentence
