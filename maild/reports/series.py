"""Per-day volumes, traffic by weekday and hour, and top tags, counted in SQL.

Times are first counted per 15-minute UTC bucket (every UTC offset in use is a multiple of 15
minutes, and so is every DST change), and only the buckets are turned into local days, weekdays
and hours: the zone's offset is looked up once per bucket, not once per ticket or message.
"""

from __future__ import annotations

import datetime as dt

from maild.reports.model import Day
from maild.reports.period import Period
from maild.reports.sql import Lookups, Scope

BUCKET = 900  # seconds
EPOCH_DATE = dt.date(1970, 1, 1)
TOP_TAGS = 10
RESOLVED = "COALESCE(t.resolved_at, t.closed_at)"


def bucketed(scope: Scope, column: str, source: str) -> str:
    """SQL of ``(b, n)``: rows of ``source`` (``FROM ... WHERE ...``) per UTC bucket of ``column``."""
    d = scope.dialect
    b = d.floor(f"{d.epoch(column)} / {BUCKET}.0")
    return f"SELECT b, COUNT(*) AS n FROM (SELECT {b} AS b {source}) x GROUP BY b"


def per_day(scope: Scope, lookups: Lookups, column: str, source: str) -> dict[dt.date, int]:
    d = scope.dialect
    day = d.floor(f"{lookups.local(f'x.b * {BUCKET}.0')} / 86400.0")
    sql = (
        f"SELECT day, SUM(n) FROM (SELECT {day} AS day, x.n AS n "
        f"FROM ({bucketed(scope, column, source)}) x) y GROUP BY day"
    )
    return {EPOCH_DATE + dt.timedelta(days=int(k)): int(n) for k, n in scope.rows(sql)}


def days(scope: Scope, lookups: Lookups, period: Period, created: str) -> tuple[Day, ...]:
    """Created, resolved and open at the end of each local day; ``created`` is the window test."""
    r = RESOLVED
    base = scope.base
    made = per_day(scope, lookups, "t.created_at", f"FROM ticket t WHERE {created} AND {base}")
    done = per_day(
        scope,
        lookups,
        r,
        f"FROM ticket t WHERE {scope.dialect.unindexed('t.created_at')} < :end "
        f"AND {r} >= :start AND {r} < :end AND {base}",
    )
    backlog = scope.count(
        f"SELECT COUNT(*) FROM ticket t WHERE t.created_at < :start "
        f"AND ({r} IS NULL OR {r} >= :start) AND {base}"
    )
    out = []
    for day in period.days():
        c, s = made.get(day, 0), done.get(day, 0)
        backlog += c - s
        out.append(Day(day, c, s, backlog))
    return tuple(out)


def traffic(scope: Scope, lookups: Lookups, window: str) -> tuple[tuple[int, ...], ...]:
    """Inbound customer messages per local weekday (Monday first) and hour.

    ``window`` tests ``m.created_at``. Spam and other teams' tickets are left out by id, so the
    messages need no join with every ticket.
    """
    d = scope.dialect
    if scope.params.get("team") is not None:
        tickets = "m.ticket_id IN (SELECT t.id FROM ticket t WHERE t.team = :team AND NOT t.spam)"
    else:
        tickets = "m.ticket_id NOT IN (SELECT t.id FROM ticket t WHERE t.spam)"
    source = (
        f"FROM message m WHERE {window} AND m.direction = 'in' AND m.kind = 'customer' "
        f"AND {tickets}"
    )
    local = lookups.local(f"x.b * {BUCKET}.0")
    weekday = d.mod(f"{d.floor(f'{local} / 86400.0')} + 3", 7)  # 1970-01-01 was a Thursday
    hour = d.mod(d.floor(f"{local} / 3600.0"), 24)
    sql = (
        f"SELECT wd, hr, SUM(n) FROM (SELECT {weekday} AS wd, {hour} AS hr, x.n AS n "
        f"FROM ({bucketed(scope, 'm.created_at', source)}) x) y GROUP BY wd, hr"
    )
    grid = [[0] * 24 for _ in range(7)]
    for wd, hr, n in scope.rows(sql):
        grid[int(wd)][int(hr)] = int(n)
    return tuple(tuple(row) for row in grid)


def top_tags(scope: Scope, created: str) -> tuple[tuple[str, int], ...]:
    """The most used tags on tickets created in the window (``created`` tests that)."""
    sql = (
        "SELECT tt.tag, COUNT(*) AS n FROM ticket_tag tt JOIN ticket t ON t.id = tt.ticket_id "
        f"WHERE {created} AND {scope.base} GROUP BY tt.tag ORDER BY n DESC, tt.tag "
        f"LIMIT {TOP_TAGS}"
    )
    return tuple((str(tag), int(n)) for tag, n in scope.rows(sql))
