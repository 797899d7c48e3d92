"""The report as one long CSV table for dashboards and spreadsheets: ``section,name,metric,value``.

Sections: ``meta`` (version, period, team, business hours), ``summary``, ``team``, ``agent`` (name
empty for tickets without one), ``day`` (name is the date), ``tag``, ``weekday``, ``hour``. Metric
names are the JSON field paths joined with dots (``first_response.median_seconds``,
``sla.resolution.share_met``); an empty value is JSON's null.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from typing import Any

from maild.reports.model import Report
from maild.reports.render_json import to_dict

HEADER = ("section", "name", "metric", "value")


def flatten(data: dict[str, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    for key, value in data.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict):
            yield from flatten(value, path + ".")
        else:
            yield path, value


def rows(report: Report) -> Iterator[tuple[str, str, str, Any]]:
    data = to_dict(report)
    meta = {k: data[k] for k in ("version", "period", "generated_at", "team", "business_hours")}
    for metric, value in flatten(meta):
        yield "meta", "", metric, value
    summary = dict(data["summary"])
    summary.pop("name")
    for metric, value in flatten(summary):
        yield "summary", "", metric, value
    for section, groups in ((data["grouped_by"], data["teams"]), ("agent", data["agents"])):
        for group in groups:
            group = dict(group)
            name = group.pop("name") or ""
            for metric, value in flatten(group):
                yield section, name, metric, value
    for day in data["days"]:
        for metric in ("created", "resolved", "open_at_end"):
            yield "day", day["date"], metric, day[metric]
    for tag in data["top_tags"]:
        yield "tag", tag["tag"], "tickets", tag["tickets"]
    for item in data["busiest"]["weekdays"]:
        yield "weekday", item["weekday"], "messages", item["messages"]
    for item in data["busiest"]["hours"]:
        yield "hour", str(item["hour"]), "messages", item["messages"]
    for metric, value in data["sentiment"].items():
        yield "sentiment", "", metric, value
    deflection = dict(data["deflection"])
    for item in deflection.pop("articles"):
        for metric in ("suggested", "self_solved"):
            yield "deflection", item["slug"], metric, item[metric]
    for metric, value in deflection.items():
        yield "deflection", "", metric, value


def render(report: Report) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(HEADER)
    for section, name, metric, value in rows(report):
        writer.writerow((section, name, metric, "" if value is None else value))
    return out.getvalue()
