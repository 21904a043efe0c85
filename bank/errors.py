"""Errors the kit can answer with, and the input checks that raise them.

Role: one small vocabulary of failures shared by every server and client.

Rules:
  * Every refusal is a ``BankError(code, sentence)``. On the wire it becomes an
    ``xmlrpc.client.Fault`` with the same code and sentence; nothing else (no
    traceback, no Python class name) crosses the wire.
  * The codes are stable: lab scripts in any language may test them. They borrow
    HTTP's numbers so that they are easy to remember.
  * Every check here either returns a clean value or raises; a refused input never
    changes any state, because the checks run before any write.

Glossary:
  fault code   the number a client sees in ``Fault.faultCode``
  acct ref     an account named across the bank: ``BRANCH/NUMBER``, e.g. ``Mumbai/1001``
"""

import enum
import re


class FaultCode(enum.IntEnum):
    """The stable fault codes of the public API (documented in the README)."""
    BAD_INPUT = 400            # an argument is malformed, missing or out of range
    BAD_AMOUNT = 422           # an amount is not a valid positive decimal string
    INSUFFICIENT_FUNDS = 402   # not enough *available* money (balance minus holds)
    UNAUTHORIZED = 401         # missing or wrong shared-secret signature
    NOT_ALLOWED = 403          # e.g. fault injection without --allow-faults
    UNKNOWN_ACCOUNT = 404      # no such account (or branch) here
    UNKNOWN_TXN = 410          # no such transaction is known here
    UNKNOWN_METHOD = 405       # the server has no public method of that name
    PROTOCOL_VIOLATION = 409   # a 2PC step that the protocol forbids (commit after abort)
    NOT_PRIMARY = 421          # a replica refuses writes; the sentence names the primary
    UNAVAILABLE = 503          # a branch or the coordinator cannot be reached
    INTERNAL = 500             # a bug; details are in the server's log, not on the wire

    @property
    def label(self) -> str:
        return self.name.lower().replace("_", "-")


TIMED_OUT = "timed-out"        # sent; no answer in time (it may still be applied)
REFUSED = "refused"            # the connection was refused: nothing listens there
CUT_OFF = "cut-off"            # a lab partition refused it before it left this process
BROKEN = "broken"              # the connection broke: sent or not, nobody can tell


class BankError(Exception):
    """A refusal with a stable code and one sentence a student understands."""

    def __init__(self, code: FaultCode, message: str, *, not_sent: bool = False,
                 why: str = ""):
        super().__init__(message)
        self.code = FaultCode(code)
        self.message = message
        self.not_sent = not_sent    # UNAVAILABLE before the request left: safe to resend
        self.why = why              # for UNAVAILABLE, what is known, for code to read:
                                    # TIMED_OUT, REFUSED, CUT_OFF or BROKEN (above), or ""

    def __str__(self):
        return self.message


NOTHING_DONE = " Nothing was done."     # ends a message whose request surely never arrived


def surely_not_done(exc: BankError) -> bool:
    """Did a failed call certainly change nothing? Every refusal but UNAVAILABLE is
    decided before anything runs; an UNAVAILABLE only when the request never left
    (not_sent: a refused connection here) or the server that answered says so (the
    coordinator could not reach the branch: its message ends with NOTHING_DONE).
    Otherwise the call may have arrived just before the line broke: its outcome is
    not known, never "failed"."""
    return (exc.code != FaultCode.UNAVAILABLE or exc.not_sent
            or exc.message.endswith(NOTHING_DONE))


# ---- input checks ---------------------------------------------------------------

MAX_TEXT = 80                                   # owner names, branch names
MAX_ACCOUNT_NUMBER = 10**12 - 1                 # the largest number check_account_number takes
# All matched with fullmatch(): "$" alone would also accept a trailing newline.
_NUMBER_RE = re.compile(r"[1-9][0-9]{0,11}")     # account numbers: digits, no leading 0
                                                # (01001 would pass for 1001)
_BRANCH_RE = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,31}")
_TOKEN_RE = re.compile(r"[A-Za-z0-9_.:-]{1,64}")   # txids and request ids


def check_text(value, what: str, *, max_len: int = MAX_TEXT) -> str:
    """A non-empty printable string of at most max_len characters."""
    if not isinstance(value, str):
        raise BankError(FaultCode.BAD_INPUT, f"The {what} must be text.")
    value = value.strip()
    if not value:
        raise BankError(FaultCode.BAD_INPUT, f"The {what} must not be empty.")
    if len(value) > max_len:
        raise BankError(FaultCode.BAD_INPUT,
                        f"The {what} is too long (at most {max_len} characters).")
    if not value.isprintable():
        bad = next(c for c in value if not c.isprintable())
        raise BankError(FaultCode.BAD_INPUT, f"The {what} contains a character that "
                        f"cannot be shown (U+{ord(bad):04X}): type it without it.")
    return value


def check_account_number(value) -> str:
    """Account numbers are 1 to 12 digits, sent as a string ("1001"), with no leading
    zero: "01001" is refused, or a student could open it beside 1001 to catch transfers.

    A branch never opens an account with a number this refuses (ledger.open_account).
    """
    if isinstance(value, int) and not isinstance(value, bool) and \
            0 <= value <= MAX_ACCOUNT_NUMBER:
        value = str(value)
    if not isinstance(value, str) or not _NUMBER_RE.fullmatch(value.strip()):
        raise BankError(FaultCode.BAD_INPUT,
                        f"{_show(value)} is not an account number (use 1 to 12 digits, "
                        "not starting with 0, like \"1001\").")
    return value.strip()


def check_branch_name(value) -> str:
    """Branch names: a letter, then letters, digits, '_' or '-' (at most 32)."""
    if not isinstance(value, str) or not _BRANCH_RE.fullmatch(value.strip()):
        raise BankError(FaultCode.BAD_INPUT,
                        f"{_show(value)} is not a branch name (like \"Mumbai\").")
    return value.strip()


def unknown_branch(name: str, names) -> str:
    """The sentence for a branch name that is none of `names`; a slip of case ("mumbai")
    is named, since branch names are case-sensitive."""
    same = [n for n in names if n.lower() == name.lower()]
    hint = f" (names are case-sensitive: did you mean {same[0]}?)" if same else ""
    return (f"There is no branch {name!r}{hint}; the branches are "
            f"{', '.join(sorted(names)) or 'none'}.")


def check_token(value, what: str, *, optional: bool = False) -> str:
    """Txids and request ids: 1-64 of letters, digits and _ . : -"""
    if optional and (value is None or value == ""):
        return ""
    if not isinstance(value, str) or not _TOKEN_RE.fullmatch(value):
        raise BankError(FaultCode.BAD_INPUT,
                        f"{_show(value)} is not a valid {what} "
                        "(1-64 letters, digits or _ . : -).")
    return value


def check_limit(value, *, default: int = 100, maximum: int = 10_000) -> int:
    """A row count for listings: a whole number from 1 to maximum."""
    if value is None or value == "":
        return default
    if isinstance(value, str) and re.fullmatch(r"[0-9]{1,6}", value.strip()):
        value = int(value.strip())
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= maximum:
        raise BankError(FaultCode.BAD_INPUT,
                        f"The limit must be a whole number from 1 to {maximum}.")
    return value


def check_url(value, what: str) -> str:
    """An http:// or https:// URL (of a coordinator, primary or replica)."""
    value = check_text(value, what, max_len=200)
    if not value.startswith(("http://", "https://")):
        raise BankError(FaultCode.BAD_INPUT, f"The {what} must start with http://, "
                                             f"not {_show(value)}.")
    return value


def split_acct_ref(value) -> tuple:
    """'Mumbai/1001' -> ('Mumbai', '1001')."""
    if not isinstance(value, str) or value.count("/") != 1 or "" in value.split("/"):
        raise BankError(FaultCode.BAD_INPUT,          # "Mumbai/": which account?
                        f"{_show(value)} is not an account; write it as BRANCH/NUMBER, "
                        "like Mumbai/1001.")
    branch, number = value.split("/")
    return check_branch_name(branch), check_account_number(number)


def show_value(value) -> str:
    """A short, safe rendering of a bad argument for a Fault sentence.

    Only plain values are quoted; anything else is named by its XML-RPC type, so no
    Python class name or memory address ever reaches the wire.
    """
    if isinstance(value, (str, int, float)) or value is None:
        text = repr(value)
        return text if len(text) <= 40 else text[:37] + "..."
    kinds = {list: "a list", tuple: "a list", dict: "a struct"}
    return kinds.get(type(value), "a value of another type (date or binary)")


_show = show_value


class RememberedRefusal(BankError):
    """A refusal recorded as the outcome of its request id: a durable write, like a
    result (replicas apply it too), so a retry is refused again, never re-run."""
