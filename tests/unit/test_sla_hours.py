"""Business-hours arithmetic: weekends, holidays, both daylight-saving changes in Europe/Berlin, 24/7.

All instants are naive UTC, as stored. Berlin is UTC+1 in winter and UTC+2 in summer; in 2026 the
clocks go forward on Sunday 29 March (02:00 -> 03:00) and back on Sunday 25 October (03:00 -> 02:00).
"""

from __future__ import annotations

import datetime as dt

import pytest

from maild.routing.policies import parse_duration
from maild.routing.schema import BusinessHours
from maild.sla.hours import Calendar, due_at

H = dt.timedelta(hours=1)
OFFICE = ((540, 1020),)  # 09:00-17:00
WEEKDAYS = BusinessHours(
    timezone="Europe/Berlin",
    week=(OFFICE,) * 5 + ((), ()),
    holidays=frozenset({dt.date(2026, 12, 24), dt.date(2026, 12, 25), dt.date(2026, 12, 26)}),
)
EVERY_DAY = BusinessHours(timezone="Europe/Berlin", week=(((0, 1440),),) * 7)


def utc(*args: int) -> dt.datetime:
    return dt.datetime(*args)


def berlin(*args: int) -> dt.datetime:
    """A Berlin wall time as naive UTC."""
    local = dt.datetime(*args, tzinfo=WEEKDAYS.zone)
    return local.astimezone(dt.UTC).replace(tzinfo=None)


OFFICE_CAL = Calendar(WEEKDAYS)


@pytest.mark.parametrize(
    ("start", "hours", "expected"),
    [
        (berlin(2026, 11, 2, 10), 4, berlin(2026, 11, 2, 14)),  # within one day
        (berlin(2026, 11, 2, 9), 8, berlin(2026, 11, 2, 17)),  # ends at closing, not next morning
        (berlin(2026, 11, 2, 16), 2, berlin(2026, 11, 3, 10)),  # overnight
        (berlin(2026, 11, 6, 16), 2, berlin(2026, 11, 9, 10)),  # Friday -> Monday
        (berlin(2026, 11, 7, 12), 1, berlin(2026, 11, 9, 10)),  # starts on a Saturday
        (berlin(2026, 11, 2, 7), 1, berlin(2026, 11, 2, 10)),  # starts before opening
        (berlin(2026, 11, 2, 10), 40, berlin(2026, 11, 9, 10)),  # a whole week
        (berlin(2026, 12, 23, 16), 2, berlin(2026, 12, 28, 10)),  # over Christmas and a weekend
    ],
)
def test_add_business_hours(start: dt.datetime, hours: int, expected: dt.datetime) -> None:
    assert OFFICE_CAL.add(start, hours * H) == expected
    assert OFFICE_CAL.between(start, expected) == hours * H


def test_spring_forward_keeps_opening_at_nine_local() -> None:
    friday = utc(2026, 3, 27, 15, 0)  # 16:00 CET
    monday = OFFICE_CAL.add(friday, 2 * H)
    assert monday == utc(2026, 3, 30, 8, 0)  # 10:00 CEST
    assert OFFICE_CAL.between(friday, monday) == 2 * H


def test_fall_back_keeps_opening_at_nine_local() -> None:
    friday = utc(2026, 10, 23, 14, 0)  # 16:00 CEST
    monday = OFFICE_CAL.add(friday, 2 * H)
    assert monday == utc(2026, 10, 26, 9, 0)  # 10:00 CET
    assert OFFICE_CAL.between(friday, monday) == 2 * H


@pytest.mark.parametrize(
    ("day", "hours"),
    [(dt.date(2026, 3, 29), 23), (dt.date(2026, 10, 25), 25), (dt.date(2026, 3, 1), 24)],
)
def test_a_whole_local_day_lasts_as_long_as_the_clocks_say(day: dt.date, hours: int) -> None:
    calendar = Calendar(EVERY_DAY)
    start = berlin(day.year, day.month, day.day)
    end = berlin(*(day + dt.timedelta(days=1)).timetuple()[:3])
    assert calendar.between(start, end) == hours * H
    assert calendar.add(start, hours * H) == end


def test_hours_that_include_the_changed_hour() -> None:
    night = BusinessHours(timezone="Europe/Berlin", week=((),) * 6 + (((60, 240),),))  # sun 1-4
    calendar = Calendar(night)
    spring = (berlin(2026, 3, 29, 0), berlin(2026, 3, 29, 12))
    fall = (utc(2026, 10, 24, 22), utc(2026, 10, 25, 12))
    assert calendar.between(*spring) == 2 * H  # 01:00-04:00 without the skipped hour
    assert calendar.between(*fall) == 4 * H  # 01:00-04:00 with 02:00-03:00 twice
    assert calendar.add(spring[0], 90 * dt.timedelta(minutes=1)) == utc(2026, 3, 29, 1, 30)


def test_always_open_counts_every_second() -> None:
    for calendar in (Calendar(None), Calendar(BusinessHours(always=True))):
        start = utc(2026, 3, 28, 23, 30)
        assert calendar.add(start, 4 * H) == utc(2026, 3, 29, 3, 30)
        assert calendar.between(start, utc(2026, 3, 30, 23, 30)) == 48 * H
        assert calendar.is_open(start)


def test_is_open_and_empty_calendars() -> None:
    assert OFFICE_CAL.is_open(berlin(2026, 11, 2, 9))
    assert not OFFICE_CAL.is_open(berlin(2026, 11, 2, 17))
    assert not OFFICE_CAL.is_open(berlin(2026, 12, 24, 10))  # a holiday
    closed = Calendar(BusinessHours(timezone="Europe/Berlin", week=((),) * 7))
    assert closed.add(utc(2026, 1, 1), H) is None
    assert closed.between(utc(2026, 1, 1), utc(2026, 2, 1)) == dt.timedelta(0)
    assert OFFICE_CAL.between(berlin(2026, 11, 3), berlin(2026, 11, 2)) == dt.timedelta(0)


def test_durations_from_the_rules() -> None:
    start = berlin(2026, 11, 2, 9)
    assert OFFICE_CAL.add(start, parse_duration("1h30m")) == berlin(2026, 11, 2, 10, 30)
    assert OFFICE_CAL.add(start, parse_duration("2d")) == berlin(
        2026, 11, 9, 17
    )  # 48 business hours
    assert Calendar(None).add(start, parse_duration("1w")) == start + dt.timedelta(weeks=1)


def test_pauses_push_the_due_time_by_the_business_time_they_cover() -> None:
    created = berlin(2026, 11, 2, 10)  # Monday
    pending = (berlin(2026, 11, 2, 11), berlin(2026, 11, 3, 10))  # 7 business hours
    assert due_at(OFFICE_CAL, created, 4 * H) == berlin(2026, 11, 2, 14)
    assert due_at(OFFICE_CAL, created, 4 * H, [pending]) == berlin(2026, 11, 3, 13)
    # A pause after the target was reached changes nothing.
    late = (berlin(2026, 11, 2, 15), berlin(2026, 11, 4, 9))
    assert due_at(OFFICE_CAL, created, 4 * H, [late]) == berlin(2026, 11, 2, 14)
    # A pause outside business hours costs nothing; overlapping pauses count once.
    night = (berlin(2026, 11, 2, 18), berlin(2026, 11, 3, 8))
    assert due_at(OFFICE_CAL, created, 8 * H, [night]) == berlin(2026, 11, 3, 10)
    assert due_at(OFFICE_CAL, created, 4 * H, [pending, pending]) == berlin(2026, 11, 3, 13)
    # 24/7: the pause's whole length.
    assert due_at(Calendar(None), created, 4 * H, [pending]) == created + 4 * H + (23 * H)
