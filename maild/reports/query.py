"""Building a :class:`~maild.reports.model.Report` with SQL aggregation on SQLite and PostgreSQL.

Every query returns groups (a team, an agent, a day, a tag, a weekday and hour), never one row per
ticket; percentiles return at most two rows per group (:mod:`maild.reports.percentiles`).

What counts, in one place (the README's "Reports" section says the same):

- Spam tickets are left out. A ticket is resolved at ``resolved_at``, or at ``closed_at`` when it
  was closed without being resolved; teams and agents are the tickets' current ``team`` and
  ``assignee``.
- created: created in the window; resolved: resolved in it; open at end: created before the end
  and not resolved by then. Per day the same, by local calendar day.
- First-response time: ``first_response_at - created_at`` of tickets first answered in the window;
  resolution time: resolved time minus ``created_at`` of tickets resolved in the window. Business
  time counts only the opening hours of the rules' ``business_hours``.
- SLA adherence per target: met when answered (resolved) by the due time, in the window; breached
  when the due time fell in the window without an answer (resolution) by then.
- Satisfaction: the average ``satisfaction_rating`` of tickets resolved in the window; the
  response rate is the share of those that were sent a survey (an outbound message of kind
  ``survey``, see :mod:`maild.sla.survey`) and have a rating.
- Busiest weekdays and hours: inbound customer messages (``direction = in``, ``kind = customer``)
  received in the window, by local weekday and hour.
- Negative first messages: of the tickets created in the window whose first customer message has
  a sentiment score, the share scored below -0.5.
- Deflection: of the tickets created in the window, those suggested knowledge-base articles in
  their acknowledgement, those resolved as self-solved (event ``self_solved``), per article.
"""

from __future__ import annotations

import datetime as dt
import typing
from collections import defaultdict

from peewee import Database

from maild.reports import calendar, moods, series
from maild.reports.model import GroupStats, Report, Satisfaction, Target, Times
from maild.reports.percentiles import ALL, Stats, percentiles, values_of
from maild.reports.period import Period
from maild.reports.series import RESOLVED
from maild.reports.sql import Dialect, Lookups, Scope
from maild.routing.schema import BusinessHours

GROUPINGS = ("all", "team", "agent")
CALENDAR_MAX_DAYS = 3660  # business time before this many days ahead of the window counts as 0
SELECTIVE = 0.25  # a window holding less than this share of a table's rows uses its index
SURVEY_KIND = "survey"  # maild.sla.survey.SURVEY_KIND: the outbound message of a survey


def build_report(
    db: Database,
    period: Period,
    *,
    business_hours: BusinessHours | None = None,
    team: str | None = None,
    now: dt.datetime | None = None,
    by_field: str | None = None,
) -> Report:
    """Aggregate the window's figures; one read transaction, so they agree with each other.

    ``by_field``: the per-team section groups by this custom field's value instead."""
    with db.atomic():
        return _Builder(db, period, business_hours, team, by_field).build(now or period.end)


class _Builder:
    def __init__(
        self,
        db: Database,
        period: Period,
        bh: BusinessHours | None,
        team: str | None,
        by_field: str | None = None,
    ) -> None:
        d = Dialect.of(db)
        params = {"start": d.time(period.start), "end": d.time(period.end), "team": team}
        self.by_field = by_field
        self.group, self.join = "COALESCE(t.team, '')", ""
        if by_field is not None:  # one value per ticket and name (a unique index)
            params["by_field"] = by_field
            self.group = "COALESCE(gf.value, '')"
            self.join = " LEFT JOIN ticket_field gf ON gf.ticket_id = t.id AND gf.name = :by_field"
        base = "NOT t.spam" + (" AND t.team = :team" if team is not None else "")
        self.scope = Scope(db, params, base)
        self.dialect = d
        self.period = period
        self.bh = bh
        self.team = team
        self.before_end = f"{d.unindexed('t.created_at')} < :end"  # nearly every ticket
        self.wide: bool | None = None  # does the window hold most tickets? (SQLite only)

    def window(self, alias: str) -> str:
        """The test "created in the window" on ``alias.created_at``, using the index if it helps.

        Whether it helps is judged on the tickets (messages come with their tickets).
        """
        column = f"{alias}.created_at"
        if self.dialect.sqlite:
            if self.wide is None:
                total = self.scope.count("SELECT COUNT(*) FROM ticket")
                inside = self.scope.count("SELECT COUNT(*) FROM ticket WHERE created_at >= :start")
                self.wide = inside > SELECTIVE * total
            if self.wide:
                column = self.dialect.unindexed(column)
        return f"{column} >= :start AND {column} < :end"

    def build(self, now: dt.datetime) -> Report:
        period, scope = self.period, self.scope
        offsets = calendar.utc_offsets(period.zone, period.start, period.end)
        intervals = None
        if not calendar.is_24_7(self.bh):
            assert self.bh is not None
            intervals = calendar.business_intervals(self.bh, self.calendar_start(), period.end)
        created = self.window("t")
        with Lookups(scope.db, offsets, intervals).installed() as lookups:
            self.lookups = lookups
            counts = self.counts()
            times = {
                metric: (self.durations(metric, False), self.durations(metric, True))
                for metric in ("first_response", "resolution")
            }
            groups = {g: self.groups(g, counts[g], times) for g in GROUPINGS}
            days = series.days(scope, lookups, period, created)
            traffic = series.traffic(scope, lookups, self.window("m"))
            sentiment = moods.first_messages(scope, created)
            deflected = moods.deflection(scope, created)
        return Report(
            start=period.start,
            end=period.end,
            timezone=period.timezone,
            business_hours=calendar.describe(self.bh),
            team=self.team,
            generated_at=now,
            summary=groups["all"][0] if groups["all"] else GroupStats(None),
            days=days,
            teams=tuple(groups["team"]),
            agents=tuple(groups["agent"]),
            top_tags=series.top_tags(scope, created),
            traffic=traffic,
            grouped_by=f"field.{self.by_field}" if self.by_field else "team",
            sentiment=sentiment,
            deflection=deflected,
        )

    def calendar_start(self) -> dt.datetime:
        """The earliest creation time a business duration in the window starts from."""
        p = self.period
        sql = (
            f"SELECT MIN(t.created_at) FROM ticket t WHERE {self.before_end} "
            f"AND {self.scope.base} "
            f"AND ((t.first_response_at >= :start AND t.first_response_at < :end) "
            f"OR ({RESOLVED} >= :start AND {RESOLVED} < :end))"
        )
        (first,) = self.scope.rows(sql)[0]
        floor = p.start - dt.timedelta(days=CALENDAR_MAX_DAYS)
        if first is None:
            return p.start
        if isinstance(first, str):  # SQLite hands back the stored text from a bare MIN()
            first = dt.datetime.fromisoformat(first)
        return max(min(first, p.start), floor)

    def counts(self) -> dict[str, dict[str, tuple[int, ...]]]:
        """Per grouping and key: created, resolved, open at end, rated, rating sum, SLA met and
        breached (first response, resolution), surveyed, surveyed and rated. One row per team
        and agent pair; the sums per team, per agent and overall are added up from those rows."""
        r = RESOLVED
        in_window = f"{r} >= :start AND {r} < :end"
        fr_met = (
            "t.first_response_due IS NOT NULL AND t.first_response_at <= t.first_response_due "
            "AND t.first_response_at >= :start AND t.first_response_at < :end"
        )
        fr_breached = (
            "t.first_response_due >= :start AND t.first_response_due < :end AND "
            "(t.first_response_at IS NULL OR t.first_response_at > t.first_response_due)"
        )
        res_met = f"t.resolution_due IS NOT NULL AND {r} <= t.resolution_due AND {in_window}"
        res_breached = (
            "t.resolution_due >= :start AND t.resolution_due < :end AND "
            f"({r} IS NULL OR {r} > t.resolution_due)"
        )
        conditions = [
            "t.created_at >= :start",
            in_window,
            f"{r} IS NULL OR {r} >= :end",
            f"{in_window} AND t.satisfaction_rating IS NOT NULL",
        ]
        sums = [f"SUM(CASE WHEN {c} THEN 1 ELSE 0 END)" for c in conditions]
        sums.append(
            f"SUM(CASE WHEN {in_window} THEN COALESCE(t.satisfaction_rating, 0) ELSE 0 END)"
        )
        surveyed = (
            f"{in_window} AND t.id IN (SELECT m.ticket_id FROM message m "
            f"WHERE m.direction = 'out' AND m.kind = '{SURVEY_KIND}')"
        )
        sums += [
            f"SUM(CASE WHEN {c} THEN 1 ELSE 0 END)"
            for c in (
                fr_met,
                fr_breached,
                res_met,
                res_breached,
                surveyed,
                f"{surveyed} AND t.satisfaction_rating IS NOT NULL",
            )
        ]
        team, agent = self.group, "COALESCE(t.assignee, '')"
        sql = (
            f"SELECT {team}, {agent}, {', '.join(sums)} FROM ticket t{self.join} "
            f"WHERE {self.before_end} AND {self.scope.base} GROUP BY {team}, {agent}"
        )
        out: dict[str, dict[str, list[int]]] = {
            g: defaultdict(lambda: [0] * len(sums)) for g in GROUPINGS
        }
        for team_key, agent_key, *values in self.scope.rows(sql):
            for grouping, key in (("all", ALL), ("team", team_key), ("agent", agent_key)):
                total = out[grouping][key]
                for i, v in enumerate(values):
                    total[i] += int(v or 0)
        return {g: {k: tuple(v) for k, v in out[g].items()} for g in GROUPINGS}

    @typing.overload
    def durations(self, metric: str, business: typing.Literal[False]) -> Stats: ...
    @typing.overload
    def durations(self, metric: str, business: bool) -> Stats | None: ...
    def durations(self, metric: str, business: bool) -> Stats | None:
        """Percentiles of first-response or resolution times; None when business = wall time."""
        if business and self.lookups.intervals is None:
            return None
        d = self.dialect
        done = "t.first_response_at" if metric == "first_response" else RESOLVED
        clock = (lambda c: self.lookups.business(d.epoch(c))) if business else d.epoch
        source = (
            f"SELECT {self.group} AS team, COALESCE(t.assignee, '') AS agent, "
            f"{clock(done)} - {clock('t.created_at')} AS d FROM ticket t{self.join} "
            f"WHERE {self.before_end} AND {self.scope.base} AND {done} >= :start AND {done} < :end"
        )
        return percentiles(self.scope.db, source, self.scope.params)

    def groups(
        self,
        grouping: str,
        counts: dict[str, tuple[int, ...]],
        times: dict[str, tuple[Stats, Stats | None]],
    ) -> list[GroupStats]:
        out = []
        for key, c in counts.items():
            created, resolved, open_end, rated, rating_sum, fm, fb, rm, rb, surveyed, answered = c
            if not any(c):
                continue

            def timing(metric: str, key: str = key) -> Times:
                wall, business = times[metric]
                count = wall.get((grouping, key))
                med, p90 = values_of(wall, grouping, key)
                bmed, bp90 = values_of(business if business is not None else wall, grouping, key)
                return Times(count.count if count else 0, med, p90, bmed, bp90)

            out.append(
                GroupStats(
                    name=None if grouping == "all" or key == "" else key,
                    created=created,
                    resolved=resolved,
                    open_at_end=open_end,
                    first_response=timing("first_response"),
                    resolution=timing("resolution"),
                    sla_first_response=Target(fm, fb),
                    sla_resolution=Target(rm, rb),
                    satisfaction=Satisfaction(resolved, rated, rating_sum, surveyed, answered),
                )
            )
        out.sort(key=lambda s: (s.name is None, (s.name or "").lower()))
        return out
