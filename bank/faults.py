"""Named fault points: crash a process at a chosen protocol step, on purpose.

Role: let labs and tests stage "the branch dies right after voting yes" by name.

Rules:
  * A point is armed with ``--fail-at POINT`` at start or the ``fault(point)`` RPC
    (only when the process runs with ``--allow-faults``); ``fault("")`` disarms.
  * A crash is ``os._exit(CRASH_EXIT_CODE)``: no cleanup, no flush, like a power cut.
    Whatever SQLite or the recovery log made durable before it survives; nothing else.
  * An armed crash fires once. ``vote-no`` also fires once; ``delay=SECONDS`` stays
    until disarmed (it slows every prepare, commit and abort), and so does
    ``cut-replication`` (a lab partition of the replication link: this server neither
    sends nor takes pushes, pulls or attaches until ``fault("")``).
  * F1 - ``delay=SECONDS`` is a branch point: a process made with ``delays=False`` (the
    coordinator) refuses it with a sentence, so a lab never believes it armed a delay
    that nothing would ever carry out.
  * F2 - SECONDS is written in ASCII: "2" or "0.5". ``str.isdigit()`` also accepts "²",
    which is not a number a person meant; such text is refused like any other.

Glossary:
  point   a named place in the protocol where a fault can be injected
"""

import logging
import os
import re
import threading
import time

from bank.core.messages import SWITCHES
from bank.errors import BankError, FaultCode

CRASH_EXIT_CODE = 86          # easy to recognise in a test: "crashed on purpose"
MAX_DELAY_SECONDS = 60
DELAY_RE = re.compile(r"[0-9]{1,3}(\.[0-9]{1,3})?")     # F2: ASCII digits, e.g. 2 or 0.5


log = logging.getLogger("faults")


class FaultPoints:
    """The armed fault of one process (at most one at a time)."""

    def __init__(self, role: str, points: tuple, allowed: bool, delays: bool = False):
        self.role, self.points, self.allowed, self.delays = role, points, allowed, delays
        self._armed = ""
        self._delay = 0
        self._switches = set()          # SWITCHES armed: they stay on until disarmed
        self._lock = threading.Lock()

    def arm(self, point: str) -> dict:
        """Arm a named point ("" disarms); raise BankError for an unknown name."""
        if not isinstance(point, str):
            raise BankError(FaultCode.BAD_INPUT, "The fault point must be text.")
        point = point.strip()
        with self._lock:
            if point == "":
                self._armed, self._delay = "", 0
                self._switches.clear()
            elif point in SWITCHES and point in self.points:
                self._switches.add(point)
            elif point.startswith("delay=") and self.delays:
                self._delay = self._parse_delay(point)
            elif point in self.points:
                self._armed = point
            else:
                raise BankError(FaultCode.BAD_INPUT, self._not_a_point(point))
        log.warning("fault armed: %r", point or "(none)")
        return self.describe()

    def describe(self) -> dict:
        armed = " ".join(filter(None, [self._armed, *sorted(self._switches)]))
        return {"armed": armed, "delay": str(self._delay)}

    def is_on(self, switch: str) -> bool:
        """Is a switch (a point that stays armed, like cut-replication) on?"""
        return switch in self._switches

    def fires(self, point: str) -> bool:
        """True once if `point` is armed (then disarms it). For non-crash faults."""
        with self._lock:
            if self._armed != point:
                return False
            self._armed = ""
        log.warning("fault fired: %s", point)
        return True

    def crash_if_armed(self, point: str) -> None:
        """If `point` is armed, die here and now, like a power cut."""
        if self.fires(point):
            self.crash_now(point)

    @staticmethod
    def crash_now(point: str) -> None:
        """Die at once: no cleanup, no flush of anything not yet written (os._exit)."""
        log.warning("crashing on purpose at %s (exit code %d)", point, CRASH_EXIT_CODE)
        logging.shutdown()
        os._exit(CRASH_EXIT_CODE)

    def maybe_delay(self) -> None:
        """Sleep if a delay is armed: this is the fault itself, not a wait for something."""
        if self._delay:
            time.sleep(self._delay)

    def _not_a_point(self, point: str) -> str:
        """The sentence for a name this process does not arm (F1 names the delay's owner)."""
        choices = ", ".join(self.points) + (", delay=SECONDS" if self.delays else "")
        if point.startswith("delay=") and not self.delays:
            return (f"A delay (delay=SECONDS) is a branch point, not a fault point of a "
                    f"{self.role}; choose one of: {choices}.")
        return f"{point[:40]!r} is not a fault point of a {self.role}; choose one of: {choices}."

    @staticmethod
    def _parse_delay(point: str) -> float:
        """F2: "2" -> 2, "0.5" -> 0.5; anything but ASCII digits (with one dot) is refused."""
        text = point.split("=", 1)[1]
        seconds = round(float(text), 3) if DELAY_RE.fullmatch(text) else -1
        if seconds == int(seconds):
            seconds = int(seconds)
        if not 0 <= seconds <= MAX_DELAY_SECONDS:
            raise BankError(FaultCode.BAD_INPUT,
                            f"delay must be a number of seconds from 0 to {MAX_DELAY_SECONDS}.")
        return seconds
