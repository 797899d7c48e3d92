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
    by: str = "team",
) -> Report:
    by_field = check_by(app, by)
    return build_report(
        app.db,
        period,
        business_hours=business_hours,
        team=team,
        now=now or app.clock.now(),
        by_field=by_field,
    )


def check_by(app: App, by: str) -> str | None:
    """``--by team`` (None) or ``--by field.NAME`` with a field the rules declare (its name)."""
    if by == "team":
        return None
    name = by.removeprefix("field.")
    config = app.config
    fields = RulesHolder.open(config.rules_dir, config.templates_dir).rules.fields
    if not by.startswith("field.") or name not in fields:
        known = ", ".join(["team", *(f"field.{f}" for f in sorted(fields))])
        raise ReportInputError(f"--by {by!r}: choose one of {known}")
    return name


def render(report: Report, name: str) -> str:
    """The report in format ``name`` (one of :data:`FORMATS`)."""
    renderers = {
        "table": render_table.render,
        "csv": render_csv.render,
        "json": render_json.render,
        "html": render_html.render,
    }
    return renderers[check_format(name)](report)
