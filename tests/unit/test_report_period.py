"""The report window, business-hour calendars, percentile interpolation and short formats."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from maild.reports import calendar, fmt
from maild.reports.percentiles import interpolate
from maild.reports.period import Period, ReportInputError, parse_since, resolve_period
from maild.routing.schema import BusinessHours

NOW = dt.datetime(2026, 3, 10, 15, 30)  # a Tuesday, naive UTC
BERLIN = ZoneInfo("Europe/Berlin")
UTC = ZoneInfo("UTC")


@pytest.mark.parametrize(
    ("text", "seconds"), [("30d", 30 * 86400), ("12h", 43200), ("2w", 14 * 86400), (" 7d ", 604800)]
)
def test_since(text: str, seconds: int) -> None:
    assert parse_since(text).total_seconds() == seconds


@pytest.mark.parametrize("text", ["3x", "", "d", "-1d", "0d", "1.5d", "9999w", "30 days"])
def test_since_rejects(text: str) -> None:
    with pytest.raises(ReportInputError, match="--since") as info:
        parse_since(text)
    assert info.value.exit_code == 64


def test_rolling_window_ends_now() -> None:
    p = resolve_period(now=NOW, since="2d")
    assert (p.start, p.end) == (dt.datetime(2026, 3, 8, 15, 30), NOW)
    assert [d.day for d in p.days()] == [8, 9, 10]
    assert resolve_period(now=NOW).start == NOW - dt.timedelta(days=30)  # the default


def test_dates_are_whole_local_days() -> None:
    p = resolve_period(now=NOW, zone=BERLIN, date_from="2026-03-02", date_to="2026-03-08")
    # Midnight in Berlin (CET, +1) is 23:00 UTC the day before; --to is included.
    assert (p.start, p.end) == (dt.datetime(2026, 3, 1, 23), dt.datetime(2026, 3, 8, 23))
    assert [d.day for d in p.days()] == [2, 3, 4, 5, 6, 7, 8]
    assert p.day_end(dt.date(2026, 3, 2)) == dt.datetime(2026, 3, 2, 23)


def test_window_never_ends_after_now() -> None:
    p = resolve_period(now=NOW, zone=UTC, date_from="2026-03-09", date_to="2026-03-31")
    assert p.end == NOW
    p = resolve_period(now=NOW, zone=UTC, date_from="2026-03-09")  # --to defaults to today
    assert (p.start, p.end) == (dt.datetime(2026, 3, 9), NOW)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"date_from": "2026-03-05", "date_to": "2026-03-01"}, "is after --to"),
        ({"date_from": "2026-13-01"}, "--from '2026-13-01': expected a date"),
        ({"date_to": "2026-03-01"}, "--to needs --from"),
        ({"since": "7d", "date_from": "2026-03-01"}, "not both"),
        ({"date_from": "2026-04-01", "date_to": "2026-04-05"}, "in the future"),
    ],
)
def test_bad_dates(options: dict[str, str], message: str) -> None:
    with pytest.raises(ReportInputError, match=message):
        resolve_period(now=NOW, **options)


def test_business_intervals_skip_nights_weekends_and_holidays() -> None:
    bh = BusinessHours("UTC", (((540, 1020),),) * 5 + ((), ()), frozenset({dt.date(2026, 3, 4)}))
    rows = calendar.business_intervals(bh, dt.datetime(2026, 3, 2), dt.datetime(2026, 3, 8))
    opened = [dt.datetime.fromtimestamp(a, dt.UTC).strftime("%a %d %H") for a, _, _ in rows]
    # Wednesday 4 is a holiday, the weekend closed.
    assert opened == ["Mon 02 09", "Tue 03 09", "Thu 05 09", "Fri 06 09"]
    assert all(length == 8 * 3600 for _, length, _ in rows)
    assert [cum for _, _, cum in rows[:3]] == [0, 8 * 3600, 16 * 3600]


def test_business_intervals_follow_local_time_across_dst() -> None:
    bh = BusinessHours("Europe/Berlin", (((540, 1020),),) * 7)
    rows = calendar.business_intervals(bh, dt.datetime(2026, 3, 28), dt.datetime(2026, 3, 29, 12))
    starts = {
        dt.datetime.fromtimestamp(a, dt.UTC).day: dt.datetime.fromtimestamp(a, dt.UTC).hour
        for a, _, _ in rows
    }
    assert starts[28] == 8 and starts[29] == 7  # 09:00 CET, then 09:00 CEST


def test_a_24_7_week_merges_into_one_interval() -> None:
    bh = BusinessHours("UTC", (((0, 1440),),) * 6 + (((0, 600),),))
    rows = calendar.business_intervals(bh, dt.datetime(2026, 3, 2), dt.datetime(2026, 3, 4))
    # Monday 2 and Tuesday 3 without a break (Sunday's hours end before the start).
    assert rows == [(dt.datetime(2026, 3, 2, tzinfo=dt.UTC).timestamp(), 2 * 86400, 0)]
    assert calendar.is_24_7(BusinessHours("UTC", (((0, 1440),),) * 7))
    assert calendar.is_24_7(None) and calendar.is_24_7(BusinessHours(always=True))


def test_utc_offsets_find_the_dst_change_to_the_second() -> None:
    rows = calendar.utc_offsets(BERLIN, dt.datetime(2026, 3, 20), dt.datetime(2026, 4, 5))
    assert [off for _, off in rows] == [3600, 7200]
    change = dt.datetime(2026, 3, 29, 1, tzinfo=dt.UTC).timestamp()
    assert rows[1][0] == change
    assert calendar.utc_offsets(UTC, dt.datetime(2026, 1, 1), dt.datetime(2027, 1, 1))[1:] == []


def test_describe() -> None:
    bh = BusinessHours(
        "Europe/Berlin",
        (((540, 1020),),) * 4 + (((540, 780),),) + (((600, 720), (780, 840)),) + ((),),
        frozenset({dt.date(2026, 12, 24)}),
    )
    assert calendar.describe(bh) == (
        "Europe/Berlin: mon-thu 09:00-17:00; fri 09:00-13:00; sat 10:00-12:00,13:00-14:00; "
        "1 holidays"
    )


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([5.0], (5.0, 5.0)),
        ([1.0, 2.0], (1.5, 1.9)),
        ([1.0, 2.0, 3.0, 4.0, 10.0], (3.0, 7.6)),  # p90: position 3.6 -> 4 + 0.6 * 6
    ],
)
def test_interpolation_is_percentile_cont(values: list[float], expected: tuple[float, ...]) -> None:
    rows = dict(enumerate(sorted(values), start=1))
    assert interpolate(rows, len(values)) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (None, "-"),
        (42, "42s"),
        (600, "10m"),
        (3 * 3600 + 300, "3h05"),
        (2 * 86400 + 4 * 3600, "2d4h"),
        (150 * 86400, "150d"),
    ],
)
def test_duration_format(seconds: float | None, text: str) -> None:
    assert fmt.duration(seconds) == text


def test_period_local() -> None:
    p = Period(dt.datetime(2026, 7, 1), dt.datetime(2026, 7, 2), BERLIN)
    assert p.local(dt.datetime(2026, 7, 1, 22)) == dt.datetime(2026, 7, 2, 0)
    assert p.timezone == "Europe/Berlin"
