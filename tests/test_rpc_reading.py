"""Reading XML-RPC with ElementTree gives what xmlrpc.client gives (bank/rpc_reading.py).

Rules checked:
  * W1 - for any request or response the standard library writes (strings with any
    unicode, ints, booleans, nil, nested arrays and structs, empty ones), this
    file's own reader returns exactly what xmlrpc.client.loads returns;
  * W1 - every unusual shape (a fault, a double, a dateTime, base64, a namespaced
    nil, a value with no type, whitespace between elements, a 64-bit i8, a struct
    member out of order, a bad boolean, an unknown tag in a value, broken XML) gives
    the standard parser's answer, or the same error;
(Hand-written requests to a real branch, over plain HTTP: tests/test_branch_server.py.)
Pure functions: both parsers read the same bytes.
"""

import xmlrpc.client

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bank import rpc_reading

XML_TEXT = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\r"
                                 + "".join(chr(c) for c in range(32) if c not in (9, 10))))
SCALARS = XML_TEXT | st.integers(-2 ** 31, 2 ** 31 - 1) | st.booleans() | st.none()
VALUES = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=4)
                      | st.dictionaries(XML_TEXT, inner, max_size=4), max_leaves=12)


def both(data: bytes):
    """What each parser makes of data: its value, or the type of its error."""
    answers = []
    for loads in (xmlrpc.client.loads, rpc_reading.loads):
        try:
            answers.append(loads(data))
        except Exception as exc:                # noqa: BLE001 - compared, not hidden
            answers.append(type(exc))
    return answers


@settings(max_examples=300, deadline=None, derandomize=True)
@given(st.lists(VALUES, max_size=4), st.from_regex(r"[A-Za-z_][A-Za-z0-9_.]{0,20}",
                                                    fullmatch=True))
def test_any_call_the_standard_library_writes_is_read_the_same(params, name):
    """W1: calls with any values (and any method name) are read by this file itself,
    not handed on, exactly as the stdlib reads them; responses too."""
    call = xmlrpc.client.dumps(tuple(params), name, allow_none=True).encode()
    assert rpc_reading.read_plain(call) == xmlrpc.client.loads(call)   # not a fallback
    for value in params:
        answer = xmlrpc.client.dumps((value,), methodresponse=True, allow_none=True).encode()
        assert rpc_reading.read_plain(answer) == xmlrpc.client.loads(answer)


UNUSUAL = [
    xmlrpc.client.dumps(xmlrpc.client.Fault(409, "no"), methodresponse=True),
    xmlrpc.client.dumps((xmlrpc.client.DateTime("20261129T07:00:00"),), "m"),
    xmlrpc.client.dumps((xmlrpc.client.Binary(b"\x00\x01"),), "m"),
    xmlrpc.client.dumps((1.5, [2.25, {"k": -0.0}]), "m"),
    "<methodCall><methodName>m</methodName><params><param><value><ex:nil xmlns:ex="
    "'http://ws.apache.org/xmlrpc/namespaces/extensions'/></value></param></params>"
    "</methodCall>",
    "<methodCall><methodName> ping </methodName><params>\n <param>\n  <value> untyped "
    "</value>\n </param>\n</params></methodCall>",
    "<methodCall><methodName>m</methodName><params><param><value><struct><member>"
    "<value><int>1</int></value><name>k</name></member></struct></value></param>"
    "</params></methodCall>",
    "<methodResponse><params><param><value><boolean>2</boolean></value></param>"
    "</params></methodResponse>",
    "<methodResponse><params><param><value><foo>1</foo></value></param></params>"
    "</methodResponse>",
    "<methodResponse><params><param><value><int>x</int></value></param></params>"
    "</methodResponse>",
    "<methodResponse><params><param><value><i2>7</i2></value></param></params>"
    "</methodResponse>",
    "<methodResponse><params><param><value><i8>99999999999</i8></value></param>"
    "</params></methodResponse>",
    "<methodCall><methodName>m</methodName></methodCall>",
    "<methodCall><params></params></methodCall>",
    "<notXmlRpc/>",
    "<methodCall><methodName>m</methodName><params>",
    "",
]


@pytest.mark.parametrize("text", UNUSUAL)
def test_every_unusual_shape_gets_the_standard_answer(text):
    """W1: shapes this file does not read itself come back as the stdlib reads them,
    with the same error when there is one (a fault raises Fault, 409)."""
    theirs, ours = both(text.encode())
    assert ours == theirs


@pytest.mark.parametrize("digits", ["\u09ea", "\u0661\u0662\u0663", "\uff11\uff12", "1_000",
                                    "\u0967\u0966"])
@pytest.mark.parametrize("shape", ["plain", "unusual"])
def test_an_int_in_other_digits_than_ascii_is_refused_by_both_readers(digits, shape):
    """W3: an int is ASCII digits (money's one obvious spelling): Python's int() would
    read the Bengali four, which looks like an 8, as 4 (a deposit of 4.00), and "1_000"
    as 1000; the kit's reader and its standard fallback (an unusual shape: two values
    in one) both refuse them, and still read a plain int, sign and spaces included."""
    ints = f"<int>{digits}</int>" if shape == "plain" else f"<string>x</string><int>{digits}</int>"
    body = (f"<methodCall><methodName>deposit</methodName><params><param><value>{ints}"
            "</value></param></params></methodCall>").encode()
    with pytest.raises(ValueError):
        rpc_reading.loads(body)
    assert rpc_reading.loads(body.replace(digits.encode(), b" -12 ")) == \
        xmlrpc.client.loads(body.replace(digits.encode(), b" -12 "))
