"""The result of a report as frozen values: what every renderer and the digest read.

Durations are seconds (floats), shares are fractions from 0 to 1, and a figure that has no data
(a median of nothing, a share of zero tickets) is None.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
TRAFFIC_BASIS = "inbound customer messages"


@dataclass(frozen=True)
class Times:
    """Median and 90th percentile of a duration, wall-clock and in business hours."""

    count: int = 0
    median: float | None = None
    p90: float | None = None
    business_median: float | None = None
    business_p90: float | None = None


@dataclass(frozen=True)
class Target:
    """SLA adherence for one target: tickets whose outcome fell in the window."""

    met: int = 0
    breached: int = 0

    @property
    def share_met(self) -> float | None:
        total = self.met + self.breached
        return self.met / total if total else None


@dataclass(frozen=True)
class Satisfaction:
    """Ratings of the tickets resolved in the window, and how many surveys were answered.

    ``surveyed``: resolved tickets that were sent a survey; ``responded``: those of them rated.
    """

    resolved: int = 0
    rated: int = 0
    rating_sum: int = 0
    surveyed: int = 0
    responded: int = 0

    @property
    def average(self) -> float | None:
        return self.rating_sum / self.rated if self.rated else None

    @property
    def response_rate(self) -> float | None:
        return self.responded / self.surveyed if self.surveyed else None


@dataclass(frozen=True)
class GroupStats:
    """Every per-group figure; ``name`` is the team or agent, None for "none"/"unassigned"."""

    name: str | None
    created: int = 0
    resolved: int = 0
    open_at_end: int = 0
    first_response: Times = Times()
    resolution: Times = Times()
    sla_first_response: Target = Target()
    sla_resolution: Target = Target()
    satisfaction: Satisfaction = Satisfaction()


@dataclass(frozen=True)
class Sentiment:
    """First messages of the tickets created in the window: how many had a sentiment score, and
    how many of those were negative (below -0.5)."""

    scored: int = 0
    negative: int = 0

    @property
    def share_negative(self) -> float | None:
        return self.negative / self.scored if self.scored else None


@dataclass(frozen=True)
class ArticleDeflection:
    slug: str
    suggested: int  # tickets it was suggested to
    self_solved: int  # of those, resolved by its "that solved it" link


@dataclass(frozen=True)
class Deflection:
    """Tickets created in the window that were suggested articles, and those self-solved."""

    suggested: int = 0
    self_solved: int = 0
    articles: tuple[ArticleDeflection, ...] = ()

    @property
    def share(self) -> float | None:
        return self.self_solved / self.suggested if self.suggested else None


@dataclass(frozen=True)
class Day:
    """One local calendar day: tickets created and resolved, and those open at its end."""

    date: dt.date
    created: int
    resolved: int
    open_at_end: int


@dataclass(frozen=True)
class Report:
    start: dt.datetime  # naive UTC, inclusive
    end: dt.datetime  # naive UTC, exclusive
    timezone: str  # the zone of the days, weekdays and hours
    business_hours: str  # a one-line description
    team: str | None  # the --team filter
    generated_at: dt.datetime
    summary: GroupStats
    days: tuple[Day, ...]
    teams: tuple[GroupStats, ...]
    agents: tuple[GroupStats, ...]
    top_tags: tuple[tuple[str, int], ...]
    traffic: tuple[tuple[int, ...], ...]  # [weekday Monday first][hour]: inbound customer messages
    grouped_by: str = "team"  # what ``teams`` groups by: "team", or "field.NAME" (report --by)
    sentiment: Sentiment = Sentiment()
    deflection: Deflection = Deflection()

    @property
    def weekdays(self) -> tuple[tuple[str, int], ...]:
        return tuple((name, sum(row)) for name, row in zip(WEEKDAYS, self.traffic, strict=True))

    @property
    def hours(self) -> tuple[tuple[int, int], ...]:
        return tuple((h, sum(row[h] for row in self.traffic)) for h in range(24))
