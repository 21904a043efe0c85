"""Small helpers shared by the lab scripts: steps, checks, waiting, money totals.

A lab prints what it does as numbered steps, checks what the kit must guarantee,
and exits non-zero (with the reason) the moment the kit misbehaves.
"""

import pathlib
import sys
import tempfile
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))

from bank.local_cluster import LocalCluster                  # noqa: E402,F401  (labs import it from here)
from bank.errors import BankError                      # noqa: E402,F401
from bank.money import format_amount, parse_amount     # noqa: E402,F401

_step = 0


def step(text: str) -> None:
    global _step
    if _step == 0:                                 # the lab's title: its docstring's first line
        print((sys.modules["__main__"].__doc__ or "").strip().splitlines()[0], flush=True)
    _step += 1
    print(f"\n[{_step}] {text}", flush=True)


def show(text: str) -> None:
    print(f"    {text}", flush=True)


def expect(condition: bool, what: str) -> None:
    """A guarantee of the kit; if it does not hold, the lab fails loudly."""
    if not condition:
        print(f"\nLAB FAILED: expected {what}", flush=True)
        sys.exit(1)
    show(f"ok: {what}")


def wait_until(predicate, what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            show(f"ok: {what}")
            return
        time.sleep(0.1)
    print(f"\nLAB FAILED: waited {timeout:.0f} s for {what}", flush=True)
    sys.exit(1)


def total_money(bank) -> str:
    """Sum of every balance of every branch, as a decimal string (via integer paise)."""
    accounts = bank.coordinator().call("accounts", "")
    return format_amount(sum(parse_amount(a["balance"], allow_zero=True) for a in accounts))


def fresh_home(name: str) -> str:
    """A new temporary folder for this lab's cluster (data/ and logs/ inside)."""
    return tempfile.mkdtemp(prefix=f"bank-{name}-")
