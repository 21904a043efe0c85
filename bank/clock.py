"""Timestamps: UTC with milliseconds, as stored everywhere in the kit (ledgers, logs).

Every 2PC step stamps a few rows and trace entries, so now() is on the hot path:
the date and time of day are formatted once a second and reused (issue 13); only
the milliseconds are added per call. The text is the same as
datetime.now(timezone.utc).isoformat(timespec="milliseconds").
"""

import time

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
