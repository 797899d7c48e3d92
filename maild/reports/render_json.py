"""The report as JSON for dashboards: the fields are listed in README.md ("Reports").

Times are ISO 8601 with offset, durations whole seconds with one decimal, shares fractions from 0
to 1 with four decimals; a figure without data is null. ``version`` changes only when a field is
renamed or removed.
"""

from __future__ import annotations

import json
from typing import Any

from maild.clock import iso
from maild.reports.model import TRAFFIC_BASIS, GroupStats, Report, Target, Times

VERSION = 1


def _r(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)


def times(t: Times) -> dict[str, Any]:
    return {
        "count": t.count,
        "median_seconds": _r(t.median, 1),
        "p90_seconds": _r(t.p90, 1),
        "business_median_seconds": _r(t.business_median, 1),
        "business_p90_seconds": _r(t.business_p90, 1),
    }


def target(t: Target) -> dict[str, Any]:
    return {"met": t.met, "breached": t.breached, "share_met": _r(t.share_met, 4)}


def group(g: GroupStats) -> dict[str, Any]:
    s = g.satisfaction
    return {
        "name": g.name,
        "created": g.created,
        "resolved": g.resolved,
        "open_at_end": g.open_at_end,
        "first_response": times(g.first_response),
        "resolution": times(g.resolution),
        "sla": {
            "first_response": target(g.sla_first_response),
            "resolution": target(g.sla_resolution),
        },
        "satisfaction": {
            "average": _r(s.average, 2),
            "rated": s.rated,
            "resolved": s.resolved,
            "surveyed": s.surveyed,
            "response_rate": _r(s.response_rate, 4),
        },
    }


def to_dict(report: Report) -> dict[str, Any]:
    return {
        "version": VERSION,
        "period": {
            "start": iso(report.start),
            "end": iso(report.end),
            "timezone": report.timezone,
            "days": len(report.days),
        },
        "generated_at": iso(report.generated_at),
        "team": report.team,
        "business_hours": report.business_hours,
        "summary": group(report.summary),
        "days": [
            {
                "date": d.date.isoformat(),
                "created": d.created,
                "resolved": d.resolved,
                "open_at_end": d.open_at_end,
            }
            for d in report.days
        ],
        "teams": [group(g) for g in report.teams],
        "grouped_by": report.grouped_by,
        "agents": [group(g) for g in report.agents],
        "top_tags": [{"tag": tag, "tickets": n} for tag, n in report.top_tags],
        "sentiment": {
            "first_messages_scored": report.sentiment.scored,
            "negative": report.sentiment.negative,
            "share_negative": _r(report.sentiment.share_negative, 4),
        },
        "deflection": {
            "suggested": report.deflection.suggested,
            "self_solved": report.deflection.self_solved,
            "share": _r(report.deflection.share, 4),
            "articles": [
                {"slug": a.slug, "suggested": a.suggested, "self_solved": a.self_solved}
                for a in report.deflection.articles
            ],
        },
        "busiest": {
            "basis": TRAFFIC_BASIS,
            "weekdays": [{"weekday": w, "messages": n} for w, n in report.weekdays],
            "hours": [{"hour": h, "messages": n} for h, n in report.hours],
        },
    }


def render(report: Report) -> str:
    return json.dumps(to_dict(report), indent=2, ensure_ascii=False) + "\n"
