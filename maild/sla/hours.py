"""Business-hours arithmetic: add business time to an instant, measure it between two instants.

Instants are naive UTC datetimes, the form the database stores. Opening hours are wall-clock times
in the calendar's zone, turned into UTC one local day at a time, so a day on which the clocks change
has its real length (00:00-24:00 lasts 23 or 25 hours) and a 09:00 opening stays 09:00 local on
either side of the change. A wall time that does not exist (02:30 on the spring change in
Europe/Berlin) counts with the offset before the change, as zoneinfo does with ``fold=0``. Holidays
are dates in the calendar's zone, closed all day. A week without a single open minute has no end
to add to, so :meth:`Calendar.add` returns None instead of searching for ever.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Sequence
from zoneinfo import ZoneInfo

from maild.routing.schema import BusinessHours

ZERO = dt.timedelta(0)
DAY = dt.timedelta(days=1)
MAX_DAYS = 366 * 30  # how far ahead ``add`` looks before giving up (a week of holidays is fine)

Span = tuple[dt.datetime, dt.datetime]  # [start, end) in naive UTC


class Calendar:
    """Opening hours to count in; ``Calendar(None)`` (or a 24/7 block) counts every second."""

    def __init__(self, hours: BusinessHours | None = None) -> None:
        self.hours = hours
        self.always = hours is None or hours.always
        self.zone = ZoneInfo("UTC") if self.always or hours is None else hours.zone
        self.empty = not self.always and hours is not None and not any(hours.week)

    def __repr__(self) -> str:
        return "Calendar(24/7)" if self.always else f"Calendar({self.zone.key})"

    def spans(self, start: dt.datetime, limit_days: int = MAX_DAYS) -> Iterator[Span]:
        """Open spans in time order, from ``start`` on (the first may begin at ``start``)."""
        if self.always:
            yield start, dt.datetime.max
            return
        if self.empty or self.hours is None:
            return
        hours, zone = self.hours, self.zone
        day = _utc_aware(start).astimezone(zone).date() - DAY
        for _ in range(limit_days + 2):
            if day not in hours.holidays:
                midnight = dt.datetime(day.year, day.month, day.day, tzinfo=zone)
                for first, last in hours.week[day.weekday()]:
                    begin = _naive_utc(midnight + dt.timedelta(minutes=first))
                    end = _naive_utc(midnight + dt.timedelta(minutes=last))
                    if end > start and end > begin:
                        yield max(begin, start), end
            day += DAY

    def add(self, start: dt.datetime, amount: dt.timedelta) -> dt.datetime | None:
        """The instant ``amount`` of business time after ``start``; None when there is none.

        Reaching the end of an opening exactly gives that end (17:00, not 09:00 the next day).
        """
        if self.always:
            return start + amount
        left = amount
        for begin, end in self.spans(start):
            if left <= end - begin:
                return begin + left
            left -= end - begin
        return None

    def between(self, start: dt.datetime, end: dt.datetime) -> dt.timedelta:
        """Business time in ``[start, end)``; zero when ``end`` is not after ``start``."""
        if end <= start:
            return ZERO
        if self.always:
            return end - start
        total = ZERO
        for begin, stop in self.spans(start):
            if begin >= end:
                break
            total += min(stop, end) - begin
        return total

    def is_open(self, at: dt.datetime) -> bool:
        """Whether ``at`` is inside business hours."""
        first = next(self.spans(at), None)
        return first is not None and first[0] == at


def due_at(
    calendar: Calendar, start: dt.datetime, amount: dt.timedelta, pauses: Sequence[Span] = ()
) -> dt.datetime | None:
    """When ``amount`` of business time has run from ``start``, with the clock stopped in ``pauses``.

    A pause that begins after the target is reached changes nothing; one that overlaps another or
    began before ``start`` counts once.
    """
    left, cursor = amount, start
    for begin, end in sorted(pauses):
        if end <= cursor:
            continue
        if begin > cursor:
            running = calendar.between(cursor, begin)
            if running >= left:
                return calendar.add(cursor, left)
            left -= running
        cursor = end
    return calendar.add(cursor, left)


def _utc_aware(value: dt.datetime) -> dt.datetime:
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value


def _naive_utc(value: dt.datetime) -> dt.datetime:
    return value.astimezone(dt.UTC).replace(tzinfo=None)
