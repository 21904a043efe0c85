"""Money parsing and printing: tables of (input, expected) plus a round-trip property.

Rule: money is integer minor units inside and a decimal string with at most two places
outside; every other spelling is refused with BankError(BAD_AMOUNT) and one sentence.
"""

import decimal
import xmlrpc.client

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bank.errors import BankError, FaultCode
from bank.money import MAX_AMOUNT, format_amount, format_delta, parse_amount, parse_delta

REJECT = "rejected"

# ---- parse_amount ------------------------------------------------------------------

AMOUNTS = [
    # (wire value, minor units or REJECT)
    ("500", 500_00),
    ("500.5", 500_50),
    ("500.50", 500_50),
    ("0.01", 1),
    ("007", 7_00),                       # leading zeros are still one plain number
    (" 7.25 ", 7_25),                    # surrounding whitespace is ignored
    ("\t7\n", 7_00),
    (5, 5_00),                           # an XML-RPC int means whole units
    (1_000_000_000, MAX_AMOUNT),
    ("1000000000", MAX_AMOUNT),
    ("1000000000.00", MAX_AMOUNT),
    # floats, in any form
    (1.5, REJECT),
    (5.0, REJECT),
    (0.0, REJECT),
    (float("nan"), REJECT),
    (float("inf"), REJECT),
    ("NaN", REJECT),
    ("nan", REJECT),
    ("inf", REJECT),
    ("-inf", REJECT),
    ("Infinity", REJECT),
    ("1e3", REJECT),
    ("0x10", REJECT),
    # not numbers at all
    (True, REJECT),
    (False, REJECT),
    (None, REJECT),
    ([], REJECT),
    ({}, REJECT),
    (b"5", REJECT),
    (decimal.Decimal("5"), REJECT),
    (xmlrpc.client.Binary(b"5"), REJECT),
    # zero and negatives
    (0, REJECT),
    ("0", REJECT),
    ("0.00", REJECT),
    (-5, REJECT),
    ("-5", REJECT),
    ("-0.01", REJECT),
    # more than two decimals
    ("1.005", REJECT),
    ("1.000", REJECT),
    ("0.001", REJECT),
    # above the maximum
    ("1000000000.01", REJECT),
    (1_000_000_001, REJECT),
    (2**31 - 1, REJECT),
    ("9999999999999999", REJECT),
    # spellings that are not the one plain form
    ("", REJECT),
    ("   ", REJECT),
    ("+5", REJECT),                      # a sign belongs to a delta, not an amount
    ("5 5", REJECT),
    ("1,000", REJECT),
    ("1_000", REJECT),
    ("5.", REJECT),
    (".5", REJECT),
    ("5..0", REJECT),
    ("Rs 5", REJECT),
    ("5\n5", REJECT),
]


def case_id(value):
    """A test id that is the same in every run (an object's repr carries its address)."""
    if isinstance(value, xmlrpc.client.Binary):
        return f"Binary({value.data!r})"
    return repr(value)


@pytest.mark.parametrize("value, expected", AMOUNTS, ids=[case_id(v) for v, _ in AMOUNTS])
def test_parse_amount_table(value, expected):
    """An amount is a positive decimal string (<= 2 places, <= the maximum) or an int of
    whole units; anything else is refused with BAD_AMOUNT and one plain sentence."""
    if expected == REJECT:
        with pytest.raises(BankError) as info:
            parse_amount(value)
        assert info.value.code is FaultCode.BAD_AMOUNT
        assert "\n" not in info.value.message and info.value.message.endswith(".")
    else:
        result = parse_amount(value)
        assert type(result) is int and result == expected


@pytest.mark.parametrize("value, expected", [("0", 0), ("0.00", 0), (0, 0), ("0.5", 50),
                                             ("-0", REJECT), (0.0, REJECT)])
def test_parse_amount_allow_zero(value, expected):
    """allow_zero (an opening balance) admits zero and nothing else that was refused."""
    if expected == REJECT:
        with pytest.raises(BankError):
            parse_amount(value, allow_zero=True)
    else:
        assert parse_amount(value, allow_zero=True) == expected


@pytest.mark.parametrize("value", ["١٢٣", "５００"])
def test_parse_amount_refuses_non_ascii_digits(value):
    """There is one spelling of an amount: ASCII digits only."""
    with pytest.raises(BankError):
        parse_amount(value)


@pytest.mark.parametrize("value", ["9999999999999999", "99999999999999999999999",
                                   "12345678901234567.50"])
def test_too_many_digits_is_refused_as_above_the_maximum(value):
    """A number too long to read is too big: the sentence says "above the maximum"
    (it said "not a plain decimal number", which it is)."""
    with pytest.raises(BankError) as refused:
        parse_amount(value)
    assert "above the maximum of 1000000000.00" in refused.value.message



@pytest.mark.parametrize("value, paise", [("000000000000000000001", 100), ("0007.50", 750),
                                          ("00000000000000000000.05", 5), ("0", 0)])
def test_leading_zeros_do_not_count_towards_the_length(value, paise):
    """A number is read by its value: leading zeros make it no bigger ("0001" was read
    as 1.00, but twenty digits of it were refused as "above the maximum")."""
    assert parse_amount(value, allow_zero=True) == paise

# ---- parse_delta -------------------------------------------------------------------

DELTAS = [
    ("-50.00", -50_00),
    ("+50.00", 50_00),
    ("50", 50_00),
    ("+5", 5_00),
    (" -0.01 ", -1),
    (5, 5_00),
    ("-0", REJECT),
    ("+0", REJECT),
    ("0", REJECT),
    ("--5", REJECT),
    ("+-5", REJECT),
    ("-+5", REJECT),
    ("-1.005", REJECT),
    ("-1000000000.01", REJECT),
    (-5.0, REJECT),
    ("-NaN", REJECT),
    ("-inf", REJECT),
    (True, REJECT),
    (None, REJECT),
    ("", REJECT),
    ("-", REJECT),
]


@pytest.mark.parametrize("value, expected", DELTAS, ids=[case_id(v) for v, _ in DELTAS])
def test_parse_delta_table(value, expected):
    """A 2PC op delta is a signed, non-zero amount; the sign is one leading + or -."""
    if expected == REJECT:
        with pytest.raises(BankError) as info:
            parse_delta(value)
        assert info.value.code is FaultCode.BAD_AMOUNT
    else:
        assert parse_delta(value) == expected


@pytest.mark.parametrize("value", ["- 5", "+ 5"])
def test_parse_delta_refuses_space_after_sign(value):
    """The sign is glued to the number: "- 5" is not a delta."""
    with pytest.raises(BankError):
        parse_delta(value)


# ---- format_amount / format_delta ----------------------------------------------------

@pytest.mark.parametrize("minor, text", [(0, "0.00"), (1, "0.01"), (50, "0.50"),
                                         (123456, "1234.56"), (100, "1.00"),
                                         (-5000, "-50.00"), (-1, "-0.01"),
                                         (MAX_AMOUNT, "1000000000.00")])
def test_format_amount_table(minor, text):
    """Minor units print with exactly two decimals and a leading '-' when negative."""
    assert format_amount(minor) == text


@pytest.mark.parametrize("minor, text", [(5000, "+50.00"), (-5000, "-50.00"), (1, "+0.01")])
def test_format_delta_table(minor, text):
    """A delta prints with an explicit sign, and parses back to itself."""
    assert format_delta(minor) == text
    assert parse_delta(text) == minor


@settings(max_examples=200)
@given(st.integers(min_value=1, max_value=MAX_AMOUNT))
def test_format_parse_round_trip(minor):
    """What the kit prints, it reads back unchanged: parse(format(n)) == n."""
    text = format_amount(minor)
    assert parse_amount(text) == minor
    assert format_amount(parse_amount(text)) == text


@settings(max_examples=200)
@given(st.integers(min_value=-MAX_AMOUNT, max_value=MAX_AMOUNT).filter(bool))
def test_delta_round_trip(minor):
    """A signed delta survives the wire: parse_delta(format_delta(n)) == n."""
    assert parse_delta(format_delta(minor)) == minor
