"""The figures of the leads' dashboard (``GET /dashboard``), read from the database.

The open queue by team, status and assignee; tickets whose first response or resolution is due
within :data:`AT_RISK_HOURS` (or already overdue); today's volumes (UTC day); and the last 30 days'
volume and traffic charts of the report (:mod:`maild.reports`), as inline SVG.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, cast

from peewee import fn

from maild.app import App
from maild.reports import charts
from maild.reports.build import load_business_hours, make_report, report_zone
from maild.reports.period import resolve_period
from maild.store.models import Message, Ticket

AT_RISK_HOURS = 4
OPEN = ("new", "open", "pending")


@dataclass(frozen=True)
class Dashboard:
    queue: list[dict[str, Any]]
    at_risk: list[dict[str, Any]]
    today: dict[str, int]
    volume_svg: str | None
    traffic_svg: str | None


def gather(app: App, now: dt.datetime | None = None) -> Dashboard:
    now = now or app.clock.now()
    prefix = app.config.prefix
    queue = [
        {
            "team": team or "(none)",
            "status": status,
            "assignee": assignee or "(unassigned)",
            "count": n,
        }
        for team, status, assignee, n in cast(
            Iterable[tuple[str | None, str, str | None, int]],
            Ticket.select(Ticket.team, Ticket.status, Ticket.assignee, fn.COUNT(Ticket.id))
            .where(Ticket.status.in_(OPEN) & (Ticket.spam == False))  # noqa: E712
            .group_by(Ticket.team, Ticket.status, Ticket.assignee)
            .order_by(Ticket.team, Ticket.status, Ticket.assignee)
            .tuples(),
        )
    ]
    soon = now + dt.timedelta(hours=AT_RISK_HOURS)
    first_due = Ticket.first_response_at.is_null() & (Ticket.first_response_due <= soon)
    risky = (
        Ticket.select()
        .where(Ticket.status.in_(("new", "open")) & (first_due | (Ticket.resolution_due <= soon)))
        .order_by(Ticket.id)
        .limit(100)
    )
    at_risk = []
    for t in risky:
        dues = [
            d
            for d in (
                t.first_response_due if t.first_response_at is None else None,
                t.resolution_due,
            )
            if d
        ]
        due = min(dues)
        minutes = int((due - now).total_seconds() // 60)
        at_risk.append(
            {
                "ref": f"{prefix}-{t.id}",
                "subject": t.subject,
                "team": t.team or "",
                "assignee": t.assignee or "",
                "due": "overdue" if minutes < 0 else f"in {minutes // 60} h {minutes % 60:02d} min",
            }
        )
    day = now.replace(hour=0, minute=0, second=0, microsecond=0)
    today = {
        "created": Ticket.select().where(Ticket.created_at >= day).count(),
        "resolved": Ticket.select().where(Ticket.resolved_at >= day).count(),
        "received": Message.select()
        .where((Message.created_at >= day) & (Message.direction == "in"))
        .count(),
        "sent": Message.select()
        .where((Message.created_at >= day) & (Message.direction == "out"))
        .count(),
    }
    bh = load_business_hours(app)
    period = resolve_period(now=now, zone=report_zone(bh), since="30d")
    report = make_report(app, period, business_hours=bh, now=now)
    return Dashboard(queue, at_risk, today, charts.volume(report), charts.traffic(report))
