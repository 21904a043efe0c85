"""Money: integer minor units inside, decimal strings outside.

Role: the only place where amounts are parsed and printed.

Rules:
  * Money is never a float. Inside the kit an amount is an ``int`` of minor units
    (paise: 1 rupee = 100 paise). On the wire and on screen it is a decimal string
    with at most two places: ``"500"``, ``"500.5"``, ``"500.50"``.
  * XML-RPC's ``<int>`` is 32-bit, so minor units never travel as ints. An int on the
    wire is accepted as *whole units* (``500`` means 500.00) for friendliness.
  * Rejected, each with one plain sentence: floats, NaN, infinity, zero, negatives,
    more than two decimals, anything above ``MAX_AMOUNT``, and non-numbers.

Glossary:
  minor units  the integer number of paise; 123456 means 1234.56
  amount       a positive quantity of money (a deposit, a transfer)
  delta        a signed change to one account, as used in a 2PC op: "-50.00"
"""

import re

from bank.errors import BankError, FaultCode, show_value

MINOR_PER_UNIT = 100
MAX_AMOUNT = 1_000_000_000 * MINOR_PER_UNIT   # one billion units per operation
MAX_AMOUNT_TEXT = "1000000000.00"

# Digits, optionally a point and one or two more digits. No sign, no exponent,
# no spaces inside, no thousands separators: one obvious spelling.
_AMOUNT_RE = re.compile(r"([0-9]{1,15})(?:\.([0-9]{1,2}))?")
_LEADING_ZEROS = re.compile(r"^0+(?=[0-9])")       # all but the last digit before the point
ACCEPTED = ('an amount like "500" or "500.50": more than zero, at most two decimals, '
            'no commas (at most ' + MAX_AMOUNT_TEXT + ')')


def parse_amount(value, *, allow_zero=False) -> int:
    """Turn a wire value into minor units, or raise BankError(BAD_AMOUNT)."""
    if isinstance(value, bool):                 # bool is an int subclass in Python
        raise _bad(value, "a yes/no value is not an amount")
    if isinstance(value, int):
        if value > MAX_AMOUNT // MINOR_PER_UNIT:
            raise _bad(value, "it is above the maximum of " + MAX_AMOUNT_TEXT)
        minor = value * MINOR_PER_UNIT
    elif isinstance(value, str):
        minor = _parse_text(value.strip())
    elif isinstance(value, float):
        raise _bad(value, "floating-point numbers are not accepted for money; "
                          "send the amount as a string")
    else:
        raise _bad(value, "it is not a number")
    if minor < 0:
        raise _bad(value, "amounts must be positive")
    if minor == 0 and not allow_zero:
        raise _bad(value, "the amount must be more than zero")
    if minor > MAX_AMOUNT:
        raise _bad(value, "it is above the maximum of " + MAX_AMOUNT_TEXT)
    return minor


def parse_delta(value) -> int:
    """Parse a signed 2PC op delta such as "-50.00" into non-zero minor units."""
    if isinstance(value, str) and value.strip()[:1] in ("-", "+"):
        text = value.strip()
        sign, rest = (-1 if text[0] == "-" else 1), text[1:]
        if rest[:1].isspace():
            raise _bad(value, "the sign must touch the number")
        return sign * parse_amount(rest)
    return parse_amount(value)


def format_amount(minor: int) -> str:
    """Minor units to the wire/screen form, always with two decimals: 1234.50."""
    sign = "-" if minor < 0 else ""
    units, cents = divmod(abs(minor), MINOR_PER_UNIT)
    return f"{sign}{units}.{cents:02d}"


def format_delta(minor: int) -> str:
    """Signed form for ops: "+50.00" / "-50.00"."""
    return ("+" if minor > 0 else "") + format_amount(minor)


_WIRE_AMOUNT = re.compile(r"(?<![\w.,])(\d{4,})\.(\d{2})(?![\d.])")


def with_thousands(text: str) -> str:
    """Every amount in a sentence (digits, a point, two digits) with its thousands
    separated, as the window writes money: "moved 20000.00" -> "moved 20,000.00".
    For people only: the wire and the CSV files keep the plain form."""
    return _WIRE_AMOUNT.sub(lambda m: f"{int(m[1]):,}.{m[2]}", text)


_GROUPED = re.compile(r"[0-9]{1,3}(,[0-9]{3})+(\.[0-9]{1,2})?")


def without_thousands(text: str) -> str:
    """An amount typed as the window shows money, "1,200.50", in the plain form the
    wire takes, "1200.50". Only commas that group digits by three are taken away:
    "1,2" stays as typed (and is refused by parse_amount with its reason)."""
    text = text.strip()
    return text.replace(",", "") if _GROUPED.fullmatch(text) else text


def _parse_text(text: str) -> int:
    if text.startswith("-"):
        raise _bad(text, "amounts must be positive")
    match = _AMOUNT_RE.fullmatch(_LEADING_ZEROS.sub("", text))    # "0007" is 7, however long
    if not match:
        if re.fullmatch(r"[0-9]+\.[0-9]{3,}", text):
            raise _bad(text, "money has at most two decimals")
        if re.fullmatch(r"[0-9]{16,}(\.[0-9]{1,2})?", text):     # too long to read: too big
            raise _bad(text, "it is above the maximum of " + MAX_AMOUNT_TEXT)
        raise _bad(text, "it is not a plain decimal number")
    units, cents = match.group(1), (match.group(2) or "").ljust(2, "0")
    return int(units) * MINOR_PER_UNIT + int(cents)


def _bad(value, why: str) -> BankError:
    return BankError(FaultCode.BAD_AMOUNT,
                     f"{show_value(value)} is not a valid amount: {why}. Use {ACCEPTED}.")
