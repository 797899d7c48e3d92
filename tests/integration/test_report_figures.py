"""Every report figure against values worked out by hand from a known history.

The history (``build_history`` in tests/reportkit.py) is eleven tickets around the week of Monday 2 March 2026 (UTC),
with business hours Monday to Friday 09:00-17:00 UTC. The expected numbers below are computed by
hand in the comments, not by running the code, and checked on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from maild.app import App
from maild.reports.model import GroupStats, Report
from maild.reports.period import Period
from maild.reports.query import build_report
from maild.routing.schema import BusinessHours
from maild.store.models import Contact
from tests.reportkit import T, build_history, message, ticket

UTC = ZoneInfo("UTC")
START, END = dt.datetime(2026, 3, 2), dt.datetime(2026, 3, 9)  # Monday to Monday
WEEKDAYS_9_TO_5 = BusinessHours("UTC", (((540, 1020),),) * 5 + ((), ()))
H = 3600.0


def report(app: App, team: str | None = None) -> Report:
    return build_report(app.db, Period(START, END, UTC), business_hours=WEEKDAYS_9_TO_5, team=team)


@pytest.fixture
def history(app_factory: Callable[..., App], any_db_url: str) -> App:
    app = app_factory(any_db_url)
    build_history()
    return app


def by_name(groups: tuple[GroupStats, ...]) -> dict[str | None, GroupStats]:
    return {g.name: g for g in groups}


def times(g: GroupStats, what: str) -> tuple[Any, ...]:
    t = getattr(g, what)
    return (t.count, t.median, t.p90, t.business_median, t.business_p90)


def close(got: tuple[Any, ...], expected: tuple[Any, ...]) -> bool:
    return all(
        (a is None and b is None) or (a is not None and b is not None and abs(a - b) < 0.01)
        for a, b in zip(got, expected, strict=True)
    )


def test_summary(history: App) -> None:
    s = report(history).summary
    # created 2,3,4,5,6,8,9; resolved 1,2,3,6,8; open at end 4,5,9,10.
    assert (s.created, s.resolved, s.open_at_end) == (7, 5, 4)
    # First responses in the window: 2, 3, 4, 6, 8 -> 1800 3600 3600 14400 64800 s.
    # median: position 2 -> 3600; p90: position 3.6 -> 14400 + 0.6 * 50400 = 44640.
    # Business: 0 (6) 1800 (4) 3600 (2) 7200 (3) 14400 (8): 3600 and 7200 + 0.6 * 7200 = 11520.
    assert close(times(s, "first_response"), (5, 3600, 44640, 3600, 11520))
    # Resolutions: 21600 (2) 86400 (6) 86400 (8) 172800 (3) 345600 (1): median 86400,
    # p90 172800 + 0.6 * 172800 = 276480. Business 0 21600 28800 57600 57600: 28800, 57600.
    assert close(times(s, "resolution"), (5, 86400, 276480, 28800, 57600))
    # First response met: 2, 4; breached: 3, 5, 8, 9. Resolution met: 2, 3, 8; breached: 1.
    assert (s.sla_first_response.met, s.sla_first_response.breached) == (2, 4)
    assert s.sla_first_response.share_met == pytest.approx(2 / 6)
    assert (s.sla_resolution.met, s.sla_resolution.breached) == (3, 1)
    assert s.sla_resolution.share_met == pytest.approx(0.75)
    # Resolved 1, 2, 3, 6, 8; rated 1 (5), 2 (4), 6 (2); surveyed 1, 2, 3, of which 1, 2 rated.
    sat = s.satisfaction
    assert (sat.resolved, sat.rated, sat.rating_sum, sat.surveyed, sat.responded) == (
        5,
        3,
        11,
        3,
        2,
    )
    assert sat.average == pytest.approx(11 / 3)
    assert sat.response_rate == pytest.approx(2 / 3)


def test_backlog_per_day(history: App) -> None:
    days = [(d.date.day, d.created, d.resolved, d.open_at_end) for d in report(history).days]
    # Open at the start: 1 and 10. Then per day: +created -resolved.
    assert days == [
        (2, 2, 1, 3),  # created 2, 3; resolved 2
        (3, 1, 1, 3),  # created 4; resolved 1
        (4, 1, 1, 3),  # created 5; resolved 3
        (5, 1, 0, 4),  # created 8 (7 is spam)
        (6, 1, 1, 4),  # created 9; 8 closed
        (7, 1, 0, 5),  # created 6
        (8, 0, 1, 4),  # resolved 6
    ]


def test_per_team(history: App) -> None:
    teams = by_name(report(history).teams)
    assert list(teams) == ["billing", "tech", None]
    billing, tech, none = teams["billing"], teams["tech"], teams[None]
    # billing: 1, 2, 3, 9.
    assert (billing.created, billing.resolved, billing.open_at_end) == (3, 3, 1)
    # FR 3600 (2), 64800 (3): median 34200, p90 3600 + 0.9 * 61200 = 58680;
    # business 3600, 7200: 5400 and 6840.
    assert close(times(billing, "first_response"), (2, 34200, 58680, 5400, 6840))
    # Resolutions 21600, 172800, 345600: 172800 and 172800 + 0.8 * 172800 = 311040;
    # business 21600, 57600, 57600: 57600 and 57600.
    assert close(times(billing, "resolution"), (3, 172800, 311040, 57600, 57600))
    assert (billing.sla_first_response.met, billing.sla_first_response.breached) == (1, 2)
    assert (billing.sla_resolution.met, billing.sla_resolution.breached) == (2, 1)
    assert billing.satisfaction.average == pytest.approx(4.5)
    assert billing.satisfaction.response_rate == pytest.approx(2 / 3)
    # tech: 4, 5, 8.
    assert (tech.created, tech.resolved, tech.open_at_end) == (3, 1, 2)
    assert close(times(tech, "first_response"), (2, 8100, 13140, 8100, 13140))
    assert close(times(tech, "resolution"), (1, 86400, 86400, 28800, 28800))
    assert (tech.sla_first_response.met, tech.sla_first_response.breached) == (1, 2)
    assert (tech.sla_resolution.met, tech.sla_resolution.breached) == (1, 0)
    assert tech.sla_resolution.share_met == 1.0
    assert tech.satisfaction.average is None and tech.satisfaction.response_rate is None
    # no team: 6 and 10 (11 has nothing in the window).
    assert (none.created, none.resolved, none.open_at_end) == (1, 1, 1)
    assert close(times(none, "first_response"), (1, 3600, 3600, 0, 0))
    assert close(times(none, "resolution"), (1, 86400, 86400, 0, 0))
    assert none.sla_first_response.share_met is None and none.sla_resolution.share_met is None
    assert none.satisfaction.average == 2.0 and none.satisfaction.surveyed == 0
    assert none.satisfaction.response_rate is None  # 6 was rated but never sent a survey


def test_per_agent(history: App) -> None:
    agents = by_name(report(history).agents)
    assert list(agents) == ["ann@example.com", "bob@example.com", None]
    ann, bob, nobody = agents["ann@example.com"], agents["bob@example.com"], agents[None]
    # ann: 1, 2, 6, 9.
    assert (ann.created, ann.resolved, ann.open_at_end) == (3, 3, 1)
    # FR 3600, 3600; business 0 (6), 3600 (2): median 1800, p90 0.9 * 3600 = 3240.
    assert close(times(ann, "first_response"), (2, 3600, 3600, 1800, 3240))
    # Resolutions 21600, 86400, 345600: 86400, 86400 + 0.8 * 259200 = 293760;
    # business 0, 21600, 57600: 21600, 21600 + 0.8 * 36000 = 50400.
    assert close(times(ann, "resolution"), (3, 86400, 293760, 21600, 50400))
    assert (ann.sla_first_response.met, ann.sla_first_response.breached) == (1, 1)
    assert (ann.sla_resolution.met, ann.sla_resolution.breached) == (1, 1)
    assert ann.satisfaction.average == pytest.approx(11 / 3)
    assert ann.satisfaction.response_rate == 1.0  # surveyed 1, 2; both rated
    # bob: 3, 4, 8 (7 is spam).
    assert (bob.created, bob.resolved, bob.open_at_end) == (3, 2, 1)
    # FR 1800, 14400, 64800: 14400, 14400 + 0.8 * 50400 = 54720;
    # business 1800, 7200, 14400: 7200, 7200 + 0.8 * 7200 = 12960.
    assert close(times(bob, "first_response"), (3, 14400, 54720, 7200, 12960))
    # Resolutions 86400, 172800: 129600, 86400 + 0.9 * 86400 = 164160;
    # business 28800, 57600: 43200, 28800 + 0.9 * 28800 = 54720.
    assert close(times(bob, "resolution"), (2, 129600, 164160, 43200, 54720))
    assert (bob.sla_first_response.met, bob.sla_first_response.breached) == (1, 2)
    assert (bob.sla_resolution.met, bob.sla_resolution.breached) == (2, 0)
    assert bob.satisfaction.response_rate == 0.0  # surveyed 3, not rated
    # unassigned: 5 and 10.
    assert (nobody.created, nobody.resolved, nobody.open_at_end) == (1, 0, 2)
    assert close(times(nobody, "first_response"), (0, None, None, None, None))
    assert (nobody.sla_first_response.met, nobody.sla_first_response.breached) == (0, 1)
    assert nobody.sla_first_response.share_met == 0.0
    assert nobody.satisfaction.response_rate is None


def test_tags_and_busiest_times(history: App) -> None:
    r = report(history)
    # Tickets created in the window: billing 2, 3, 9; tech 4, 5, 8; refund 2, 6; urgent 5.
    assert r.top_tags == (("billing", 3), ("tech", 3), ("refund", 2), ("urgent", 1))
    # Inbound customer messages in the window, not spam: Mon 09:00 (2), 09:30 (1), 16:00 (3);
    # Tue 11:00 (3), 12:00 (4); Wed 20:00 (5); Thu 09:00 (8); Fri 08:00 (9); Sat 10:00 (6).
    assert dict(r.weekdays) == {
        "mon": 3,
        "tue": 2,
        "wed": 1,
        "thu": 1,
        "fri": 1,
        "sat": 1,
        "sun": 0,
    }
    hours = {h: n for h, n in r.hours if n}
    assert hours == {8: 1, 9: 3, 10: 1, 11: 1, 12: 1, 16: 1, 20: 1}
    assert r.traffic[0][9] == 2 and r.traffic[3][9] == 1  # Monday 9h twice, Thursday 9h once


def test_team_filter(history: App) -> None:
    r = report(history, team="billing")
    assert r.team == "billing"
    assert (r.summary.created, r.summary.resolved, r.summary.open_at_end) == (3, 3, 1)
    assert close(times(r.summary, "first_response"), (2, 34200, 58680, 5400, 6840))
    assert [t.name for t in r.teams] == ["billing"]
    agents = by_name(r.agents)
    assert set(agents) == {"ann@example.com", "bob@example.com"}
    assert (agents["ann@example.com"].created, agents["bob@example.com"].created) == (2, 1)
    assert r.top_tags == (("billing", 3), ("refund", 1))
    assert sum(n for _, n in r.weekdays) == 5  # 1 (Mon 9:30), 2, 3 (twice), 9
    # Open at the start: 1; +2 -1 (Mon), -1 (Tue: 1), -1 (Wed: 3), +1 (Fri: 9).
    assert [d.open_at_end for d in r.days] == [2, 1, 0, 0, 1, 1, 1]


def test_business_hours_off_means_wall_clock(history: App) -> None:
    s = build_report(history.db, Period(START, END, UTC), business_hours=None).summary
    assert close(times(s, "first_response"), (5, 3600, 44640, 3600, 44640))
    r = build_report(history.db, Period(START, END, UTC), business_hours=None)
    assert r.business_hours == "24/7 (no business_hours in the rules)"


def test_empty_window(history: App) -> None:
    r = build_report(history.db, Period(dt.datetime(2025, 1, 1), dt.datetime(2025, 1, 3), UTC))
    assert (r.summary.created, r.summary.resolved, r.summary.open_at_end) == (0, 0, 0)
    assert r.summary.first_response.median is None and r.teams == () and r.agents == ()
    assert [(d.created, d.open_at_end) for d in r.days] == [(0, 0), (0, 0)]


def test_local_days_hours_and_business_time_across_dst(
    app_factory: Callable[..., App], any_db_url: str
) -> None:
    """Berlin: CET (+1) until Sunday 29 March 2026 01:00 UTC, CEST (+2) after."""
    app = app_factory(any_db_url)
    berlin = ZoneInfo("Europe/Berlin")
    bh = BusinessHours("Europe/Berlin", (((540, 1020),),) * 5 + ((), ()))
    c = Contact.create(email="dora@customer.test")
    # Friday 16:00 UTC is 17:00 in Berlin (closed); answered Monday 08:00 UTC = 10:00 CEST:
    # 64 hours on the wall clock, one business hour (Monday 09:00-10:00 in Berlin).
    t = ticket(c, T(27, 16), first_response_at=T(30, 8), team="x")
    message(t, T(27, 16))  # Friday 17h local
    message(t, T(29, 0, 30))  # 01:30 CET, Sunday
    message(t, T(29, 1, 30))  # 03:30 CEST, Sunday
    late = ticket(c, T(29, 23, 30))  # 01:30 CEST on Monday 30 March: a Monday ticket
    message(late, T(29, 23, 30))
    start = dt.datetime(2026, 3, 26, 23)  # Friday 27 March 00:00 CET
    end = dt.datetime(2026, 3, 30, 22)  # Tuesday 31 March 00:00 CEST
    r = build_report(app.db, Period(start, end, berlin), business_hours=bh)
    assert close(times(r.summary, "first_response"), (1, 64 * H, 64 * H, H, H))
    assert [(d.date.day, d.created) for d in r.days] == [(27, 1), (28, 0), (29, 0), (30, 1)]
    assert {h: n for h, n in r.hours if n} == {17: 1, 1: 2, 3: 1}
    assert dict(r.weekdays)["sun"] == 2 and dict(r.weekdays)["mon"] == 1
    assert r.business_hours == "Europe/Berlin: mon-fri 09:00-17:00"
