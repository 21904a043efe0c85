"""Timestamps: UTC with milliseconds, as stored everywhere in the kit (ledgers, logs)."""

import datetime

def now() -> str:
    """A UTC timestamp with milliseconds, as stored everywhere in the kit."""
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="milliseconds")
