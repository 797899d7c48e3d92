"""Business hours and local time as small lookup tables, so that SQL can do the arithmetic.

Business-hours durations are computed in SQL with a cumulative calendar: the opening intervals
between two instants, in UTC epoch seconds, each with the business seconds before it (``cum``).
``B(t) = cum + min(len, max(0, t - start))`` of the last interval starting at or before ``t`` is
the business time from the calendar's start to ``t``, and the business duration from ``a`` to
``b`` is ``B(b) - B(a)``: one indexed lookup per timestamp, whatever the time zone, DST or
holidays. A year of Monday-to-Friday hours is about 260 rows.

Local days and hours use the same idea: the zone's UTC offsets as ``(from_epoch, offset)`` rows.

The opening intervals come from :mod:`maild.sla.hours`, as the SLA due times do; unlike the SLA
clock, a report over stored timestamps does not stop the clock while a ticket is pending.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from maild.routing.schema import BusinessHours
from maild.sla.hours import Calendar

Interval = tuple[float, float, float]  # start epoch, length in seconds, business seconds before
Offset = tuple[float, float]  # from this epoch on, local time = UTC + offset seconds


def epoch(value: dt.datetime) -> float:
    """A naive UTC (or aware) time as Unix epoch seconds."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.timestamp()


def is_24_7(bh: BusinessHours | None) -> bool:
    """True when business time equals wall-clock time (no block, ``24/7``, or a full week)."""
    if bh is None or bh.always:
        return True
    return not bh.holidays and all(day == ((0, 1440),) for day in bh.week)


def business_intervals(bh: BusinessHours, start: dt.datetime, end: dt.datetime) -> list[Interval]:
    """The opening intervals from ``start`` to ``end`` (naive UTC), merged, with running sums.

    The opening hours come from :class:`maild.sla.hours.Calendar`, the SLA clock's own
    arithmetic, so reports and due times agree on what a business hour is.
    """
    spans: list[list[float]] = []
    for begin, stop in Calendar(bh).spans(start, limit_days=(end - start).days + 2):
        if begin >= end:
            break
        a, b = epoch(begin), epoch(stop)
        if spans and a <= spans[-1][1]:
            spans[-1][1] = max(spans[-1][1], b)
        else:
            spans.append([a, b])
    out: list[Interval] = []
    cum = 0.0
    for a, b in spans:
        out.append((a, b - a, cum))
        cum += b - a
    return out


def describe(bh: BusinessHours | None) -> str:
    """A one-line summary for the report header: ``Europe/Berlin: mon-fri 09:00-17:00``."""
    if is_24_7(bh):
        return "24/7" if bh is not None else "24/7 (no business_hours in the rules)"
    assert bh is not None
    names = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
    runs: list[tuple[int, int, tuple[tuple[int, int], ...]]] = []  # first day, last day, hours
    for day, spans in enumerate(bh.week):
        if spans and runs and runs[-1][1] == day - 1 and runs[-1][2] == spans:
            runs[-1] = (runs[-1][0], day, spans)
        elif spans:
            runs.append((day, day, spans))
    parts = []
    for first, last, spans in runs:
        days = names[first] if first == last else f"{names[first]}-{names[last]}"
        hours = ",".join(f"{a // 60:02d}:{a % 60:02d}-{b // 60:02d}:{b % 60:02d}" for a, b in spans)
        parts.append(f"{days} {hours}")
    text = f"{bh.timezone}: " + ("; ".join(parts) or "always closed")
    if bh.holidays:
        text += f"; {len(bh.holidays)} holidays"
    return text


def utc_offsets(zone: ZoneInfo, start: dt.datetime, end: dt.datetime) -> list[Offset]:
    """The zone's offsets in force during ``[start, end]`` (naive UTC), one row per change.

    Offsets are sampled daily and each change is narrowed down to the second by bisection.
    """
    lo = epoch(start) - 86400
    hi = epoch(end) + 86400
    out: list[Offset] = [(lo, _offset(zone, lo))]
    t = lo
    while t < hi:
        step = min(t + 86400, hi)
        if _offset(zone, step) != out[-1][1]:
            a, b = t, step  # the change happens in (a, b]
            while b - a > 1:
                mid = (a + b) // 2
                if _offset(zone, mid) == out[-1][1]:
                    a = mid
                else:
                    b = mid
            out.append((float(b), _offset(zone, b)))
        t = step
    return out


def _offset(zone: ZoneInfo, at: float) -> float:
    moment = dt.datetime.fromtimestamp(at, dt.UTC).astimezone(zone)
    delta = moment.utcoffset()
    return delta.total_seconds() if delta is not None else 0.0
