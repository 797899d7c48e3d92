"""One call from an App and options to a rendered report; shared by the CLI and the digest."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from maild.app import App
from maild.reports import render_csv, render_html, render_json, render_table
from maild.reports.model import Report
from maild.reports.period import UTC, Period, ReportInputError
from maild.reports.query import build_report
from maild.routing.reload import RulesHolder
from maild.routing.schema import BusinessHours
from maild.store.models import Ticket

FORMATS = ("table", "csv", "json", "html")


def load_business_hours(app: App) -> BusinessHours | None:
    """The rules' business hours (None without a ``business_hours`` block)."""
    config = app.config
    return RulesHolder.open(config.rules_dir, config.templates_dir).rules.business_hours


def check_team(app: App, team: str | None) -> None:
    """Raise :class:`ReportInputError` for a ``--team`` that neither the rules nor any ticket
    know (a typo would otherwise print a report of zeros)."""
    if team is None:
        return
    if Ticket.select().where(Ticket.team == team).exists():
        return
    config = app.config
    teams = sorted(RulesHolder.open(config.rules_dir, config.templates_dir).rules.teams)
    if team not in teams:
        known = f" (teams: {', '.join(teams)})" if teams else ""
        raise ReportInputError(
            f"--team {team!r}: no such team in the rules or on any ticket{known}"
        )


def report_zone(bh: BusinessHours | None) -> ZoneInfo:
    """Days and hours are counted in the business-hours time zone, else in UTC."""
    return bh.zone if bh is not None else UTC


def check_format(name: str) -> str:
    if name not in FORMATS:
        raise ReportInputError(f"--format {name!r}: choose one of {', '.join(FORMATS)}")
    return name


def make_report(
    app: App,
    period: Period,
    *,
    business_hours: BusinessHours | None,
    team: str | None = None,
    now: dt.datetime | None = None,
) -> Report:
    return build_report(
        app.db, period, business_hours=business_hours, team=team, now=now or app.clock.now()
    )


def render(report: Report, name: str) -> str:
    """The report in format ``name`` (one of :data:`FORMATS`)."""
    renderers = {
        "table": render_table.render,
        "csv": render_csv.render,
        "json": render_json.render,
        "html": render_html.render,
    }
    return renderers[check_format(name)](report)
