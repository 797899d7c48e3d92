"""Medians and 90th percentiles of durations, per group, without loading the durations.

The definition is PostgreSQL's ``percentile_cont``: the value at position ``p * (n - 1)`` of the
sorted durations, interpolated between its two neighbours. PostgreSQL computes it itself, for the
whole set, per team and per agent in one ``GROUPING SETS`` query. SQLite numbers the sorted
durations with window functions and returns only the rows at the needed positions (at most two
per percentile and group); Python interpolates between those two values.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from peewee import Database

from maild.reports.sql import Dialect

# Percentiles as exact fractions, so the positions are integer arithmetic in SQL.
PERCENTILES: tuple[tuple[int, int], ...] = ((50, 100), (90, 100))
GROUPS = ("all", "team", "agent")
ALL = "*"


@dataclass(frozen=True)
class Stat:
    count: int
    values: tuple[float | None, ...]  # one per entry of PERCENTILES


Stats = dict[tuple[str, str], Stat]  # (grouping, key) -> Stat; key "*" for "all", "" for none


def percentiles(db: Database, source: str, params: Mapping[str, Any]) -> Stats:
    """Percentiles of ``d`` from ``source`` (a SELECT of ``team``, ``agent``, ``d``), per group."""
    dialect = Dialect.of(db)
    if dialect.sqlite:
        return _sqlite(db, dialect, source, params)
    return _postgres(db, dialect, source, params)


def _postgres(db: Database, dialect: Dialect, source: str, params: Mapping[str, Any]) -> Stats:
    cols = ", ".join(
        f"percentile_cont({num / den!r}) WITHIN GROUP (ORDER BY s.d)" for num, den in PERCENTILES
    )
    sql = (
        f"SELECT GROUPING(s.team), GROUPING(s.agent), s.team, s.agent, COUNT(*), {cols} "
        f"FROM ({source}) s GROUP BY GROUPING SETS ((), (s.team), (s.agent))"
    )
    out: Stats = {}
    for g_team, g_agent, team, agent, count, *values in db.execute_sql(*dialect.bind(sql, params)):
        if g_team and g_agent:
            key = ("all", ALL)
        elif g_agent:
            key = ("team", team)
        else:
            key = ("agent", agent)
        out[key] = Stat(int(count), tuple(float(v) if v is not None else None for v in values))
    return out


def _positions(rn: str, n: str) -> str:
    """SQL: row number ``rn`` is one of the two rows around any percentile's position."""
    tests = []
    for num, den in PERCENTILES:
        lo = f"((({n}) - 1) * {num} / {den})"  # integer division: the floor
        tests.append(f"{rn} = {lo} + 1 OR {rn} = {lo} + 2")
    return " OR ".join(tests)


def _sqlite(db: Database, dialect: Dialect, source: str, params: Mapping[str, Any]) -> Stats:
    windows = {"all": "", "team": "PARTITION BY s.team ", "agent": "PARTITION BY s.agent "}
    numbered = ", ".join(
        f"ROW_NUMBER() OVER ({part}ORDER BY s.d) AS rn_{g}, COUNT(*) OVER ({part.strip()}) AS n_{g}"
        for g, part in windows.items()
    )
    where = " OR ".join(f"({_positions(f'rn_{g}', f'n_{g}')})" for g in GROUPS)
    sql = (
        f"SELECT team, agent, d, {', '.join(f'rn_{g}, n_{g}' for g in GROUPS)} FROM "
        f"(SELECT s.team AS team, s.agent AS agent, s.d AS d, {numbered} FROM ({source}) s) w "
        f"WHERE {where}"
    )
    found: dict[tuple[str, str], dict[int, float]] = {}
    counts: dict[tuple[str, str], int] = {}
    for team, agent, d, *numbers in db.execute_sql(*dialect.bind(sql, params)):
        keys = {"all": ALL, "team": team, "agent": agent}
        for i, g in enumerate(GROUPS):
            rn, n = int(numbers[2 * i]), int(numbers[2 * i + 1])
            key = (g, keys[g])
            counts[key] = n
            found.setdefault(key, {})[rn] = float(d)
    return {key: Stat(counts[key], interpolate(rows, counts[key])) for key, rows in found.items()}


def interpolate(rows: Mapping[int, float], n: int) -> tuple[float | None, ...]:
    """The percentiles from the 1-based rows around their positions (``percentile_cont``)."""
    out: list[float | None] = []
    for num, den in PERCENTILES:
        lo = (n - 1) * num // den
        frac = ((n - 1) * num % den) / den
        low = rows.get(lo + 1)
        if low is None:
            out.append(None)
            continue
        high = rows.get(lo + 2, low)
        out.append(low + frac * (high - low))
    return tuple(out)


def values_of(stats: Stats, grouping: str, key: str) -> Sequence[float | None]:
    stat = stats.get((grouping, key))
    return stat.values if stat is not None else (None,) * len(PERCENTILES)
