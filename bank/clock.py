"""Clocks: UTC timestamps for the records, and the clock leases are counted on.

Timestamps: UTC with milliseconds, as stored everywhere in the kit (ledgers, logs).
Every 2PC step stamps a few rows and trace entries, so now() is on the hot path:
the date and time of day are formatted once a second and reused (issue 13); only
the milliseconds are added per call. The text is the same as
datetime.now(timezone.utc).isoformat(timespec="milliseconds"). Nothing decides by them.

Leases: lease_clock() is the one clock a lease is counted on, by the primary
(bank/branch_roles.py, R8) and by the configuration manager (bank/config_manager.py,
M4). It never goes back and is never set (no wall clock: NTP and the date cannot move
it), and it keeps counting while the machine is suspended: on Linux CLOCK_BOOTTIME.
time.monotonic (CLOCK_MONOTONIC) stops during a suspend, so a primary whose laptop lid
was closed past its lease would, on waking, believe it still held the lease for the
seconds that were left, while the manager, on another machine, counted them and may
have installed a new primary. Elsewhere it is time.monotonic, which on some systems
(macOS) also stops while the machine sleeps: the README's clock assumption says so.
LEASE_CLOCK names the clock.

Txid seconds: txid_second() is the UTC second written in a txid and in a recovery
log's created record (C14), as text that sorts as time does.
"""

import time

if hasattr(time, "CLOCK_BOOTTIME"):                        # Linux
    LEASE_CLOCK = "CLOCK_BOOTTIME"

    def lease_clock(_read=time.clock_gettime, _id=time.CLOCK_BOOTTIME) -> float:
        """Seconds on the lease clock (counts suspended time too)."""
        return _read(_id)
else:
    LEASE_CLOCK = "time.monotonic"
    lease_clock = time.monotonic

_second = (None, "")            # (whole second, its text); replaced whole, never edited,
                                # so a thread always reads a matching pair


def now() -> str:
    """A UTC timestamp with milliseconds, e.g. 2026-11-29T00:20:01.123+00:00."""
    global _second
    t = time.time()
    whole = int(t)
    cached = _second
    if cached[0] != whole:
        cached = _second = (whole, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole)))
    return f"{cached[1]}.{int((t - whole) * 1000):03d}+00:00"


def txid_second(seconds: float) -> str:
    """The UTC second in a txid (bank/twopc.py D7) and in a recovery log's created record
    (C14), e.g. 20261125T130102: text that sorts as time does."""
    return time.strftime("%Y%m%dT%H%M%S", time.gmtime(seconds))
