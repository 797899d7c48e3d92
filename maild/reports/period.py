"""The reporting window: ``--since 30d`` (rolling, ending now) or ``--from DATE --to DATE``.

Stored times are naive UTC; a window is ``[start, end)`` in naive UTC. ``--from``/``--to`` are
whole days in the report's time zone (the business-hours zone), ``--to`` included. A window never
ends after "now": a report cannot count what has not happened yet. Bad input raises
:class:`ReportInputError`, which the CLI turns into one line and exit status 64 (EX_USAGE).
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from maild.errors import TicketdError

SINCE_RE = re.compile(r"^\s*(\d{1,5})\s*([hdw])\s*$")
UNIT_SECONDS = {"h": 3600, "d": 86400, "w": 7 * 86400}
MAX_DAYS = 3660  # ten years: beyond that a report is an archive job, not a dashboard
UTC = ZoneInfo("UTC")


class ReportInputError(TicketdError):
    """A report option the user got wrong (``--since 3x``, ``--from`` after ``--to`` ...)."""

    exit_code = 64  # EX_USAGE


@dataclass(frozen=True)
class Period:
    """``[start, end)`` in naive UTC, and the zone whose calendar days the report uses."""

    start: dt.datetime
    end: dt.datetime
    zone: ZoneInfo = UTC

    @property
    def timezone(self) -> str:
        return self.zone.key

    def local(self, value: dt.datetime) -> dt.datetime:
        """A naive UTC time as a naive local time in the report's zone."""
        return value.replace(tzinfo=dt.UTC).astimezone(self.zone).replace(tzinfo=None)

    def days(self) -> list[dt.date]:
        """The local calendar days the window touches, first to last."""
        first = self.local(self.start).date()
        last = self.local(self.end - dt.timedelta(microseconds=1)).date()
        return [first + dt.timedelta(days=i) for i in range((last - first).days + 1)]

    def day_end(self, day: dt.date) -> dt.datetime:
        """The end of local ``day`` in naive UTC, but never after the window's end."""
        return min(local_midnight(day + dt.timedelta(days=1), self.zone), self.end)


def local_midnight(day: dt.date, zone: ZoneInfo) -> dt.datetime:
    """00:00 of ``day`` in ``zone``, as naive UTC."""
    start = dt.datetime(day.year, day.month, day.day, tzinfo=zone)
    return start.astimezone(dt.UTC).replace(tzinfo=None)


def parse_since(text: str) -> dt.timedelta:
    """``12h``, ``30d``, ``2w`` as a timedelta; raises :class:`ReportInputError` otherwise."""
    found = SINCE_RE.match(text or "")
    if found is None:
        raise ReportInputError(
            f"--since {text!r}: expected a number and a unit h, d or w, e.g. 30d, 12h, 2w"
        )
    delta = dt.timedelta(seconds=int(found.group(1)) * UNIT_SECONDS[found.group(2)])
    if delta <= dt.timedelta(0) or delta > dt.timedelta(days=MAX_DAYS):
        raise ReportInputError(f"--since {text!r}: must be more than 0 and at most {MAX_DAYS}d")
    return delta


EARLIEST_YEAR = 1970  # before any mail ticketd stored; keeps time-zone arithmetic in range


def parse_date(text: str, option: str) -> dt.date:
    try:
        date = dt.date.fromisoformat(text.strip())
    except ValueError:
        raise ReportInputError(f"{option} {text!r}: expected a date like 2026-03-01") from None
    if not EARLIEST_YEAR <= date.year <= 9998:
        raise ReportInputError(f"{option} {text!r}: the year must be {EARLIEST_YEAR} to 9998")
    return date


def check_options(since: str | None, date_from: str | None, date_to: str | None) -> None:
    """Raise :class:`ReportInputError` for any option that is wrong on its own or in combination."""
    if since is not None and (date_from is not None or date_to is not None):
        raise ReportInputError("give --since or --from/--to, not both")
    if date_from is None and date_to is not None:
        raise ReportInputError("--to needs --from")
    if since is not None:
        parse_since(since)
    if date_from is not None:
        parse_date(date_from, "--from")
    if date_to is not None:
        first, last = parse_date(date_from or "", "--from"), parse_date(date_to, "--to")
        if first > last:
            raise ReportInputError(f"--from {first} is after --to {last}")


def resolve_period(
    *,
    now: dt.datetime,
    zone: ZoneInfo = UTC,
    since: str | None = None,
    date_from: str | None = None,
    date_to: str | None = None,
) -> Period:
    """The window the options ask for; ``since`` defaults to 30 days when no dates are given."""
    check_options(since, date_from, date_to)
    if date_from is None:
        return Period(now - parse_since(since or "30d"), now, zone)
    first = parse_date(date_from, "--from")
    last = parse_date(date_to, "--to") if date_to is not None else now_local_date(now, zone)
    if first > last:
        raise ReportInputError(f"--from {first} is after --to {last}")
    if (last - first).days + 1 > MAX_DAYS:
        raise ReportInputError(f"--from/--to: at most {MAX_DAYS} days")
    start = local_midnight(first, zone)
    if start >= now:
        raise ReportInputError(f"--from {first} is in the future")
    end = min(local_midnight(last + dt.timedelta(days=1), zone), now)
    return Period(start, end, zone)


def now_local_date(now: dt.datetime, zone: ZoneInfo) -> dt.date:
    return now.replace(tzinfo=dt.UTC).astimezone(zone).date()
