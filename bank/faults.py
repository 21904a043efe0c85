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

Glossary:
  point   a named place in the protocol where a fault can be injected
"""

import logging
import os
import threading
import time

from bank.core.messages import SWITCHES
from bank.errors import BankError, FaultCode

CRASH_EXIT_CODE = 86          # easy to recognise in a test: "crashed on purpose"
MAX_DELAY_SECONDS = 60


log = logging.getLogger("faults")


class FaultPoints:
    """The armed fault of one process (at most one at a time)."""

    def __init__(self, role: str, points: tuple, allowed: bool):
        self.role, self.points, self.allowed = role, points, allowed
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
            elif point.startswith("delay="):
                self._delay = self._parse_delay(point)
            elif point in self.points:
                self._armed = point
            else:
                raise BankError(FaultCode.BAD_INPUT,
                                f"{point!r} is not a fault point of a {self.role}; "
                                f"choose one of: {', '.join(self.points)}, delay=SECONDS.")
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

    @staticmethod
    def _parse_delay(point: str) -> float:
        text = point.split("=", 1)[1]
        try:
            seconds = int(text) if text.isdigit() else round(float(text), 3)
        except ValueError:
            seconds = -1
        if not 0 <= seconds <= MAX_DELAY_SECONDS:
            raise BankError(FaultCode.BAD_INPUT,
                            f"delay must be a number of seconds from 0 to {MAX_DELAY_SECONDS}.")
        return seconds
