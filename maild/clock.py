"""An injectable clock, so that jobs compute from stored times and tests can fix "now"."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass


class Clock:
    """The real clock: naive UTC, as the database stores it."""

    def now(self) -> dt.datetime:
        return dt.datetime.now(dt.UTC).replace(tzinfo=None)


@dataclass
class FixedClock(Clock):
    """A clock that reads what it is told (``sla check --at``, tests)."""

    at: dt.datetime

    def now(self) -> dt.datetime:
        return self.at

    def advance(self, **delta: float) -> None:
        self.at += dt.timedelta(**delta)


def iso(value: dt.datetime | None) -> str | None:
    """A stored naive-UTC time as ISO 8601 with its offset."""
    if value is None:
        return None
    return value.replace(tzinfo=dt.UTC).isoformat()
