"""The report as one self-contained HTML page: inline CSS, inline SVG charts, no links out.

It reads on a phone and on a desktop without sideways scrolling: a viewport meta tag, one column
at most 960 px wide, charts whose text keeps its size at any width (``charts.py``), durations in
the unit that fits, and tables that fit or, below 600 px, turn into one card per row (each cell
labelled by its column). The per-day table lists only days on which tickets were created or
resolved; the chart above it shows every day. ``charts=False`` leaves the charts out; the digest
mail uses that, because mail clients do not show SVG.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

from maild.reports import charts as chart
from maild.reports import fmt
from maild.reports.model import TRAFFIC_BASIS, GroupStats, Report, Target

CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;padding:1rem;
color:#222;background:#fff;line-height:1.4}
main{max-width:960px;margin:0 auto}
h1{font-size:1.4rem;margin:.2rem 0}h2{font-size:1.15rem;margin:1.6rem 0 .5rem;
border-bottom:1px solid #ddd}
.meta{color:#555;font-size:.9rem}
.cards{display:grid;grid-template-columns:repeat(auto-fit,minmax(9rem,1fr));gap:.6rem}
.card{border:1px solid #ddd;border-radius:.5rem;padding:.5rem .7rem}
.card b{display:block;font-size:1.3rem}.card span{color:#555;font-size:.85rem}
table{border-collapse:collapse;font-size:.9rem;width:100%;margin:.5rem 0}
th,td{padding:.25rem .5rem;text-align:right;border-bottom:1px solid #eee}
th:first-child,td:first-child{text-align:left;overflow-wrap:break-word}
caption{caption-side:bottom;text-align:left;color:#555;font-size:.85rem;padding-top:.2rem}
.chart{display:block;margin:.3rem 0 1rem;overflow:visible}
.chart text{fill:#333;font-family:inherit}.chart .label{fill:#222;font-weight:600}
.legend{margin:.6rem 0 .2rem;font-size:.85rem;color:#444}
.legend span{display:inline-block;margin-right:1rem;white-space:nowrap}
.legend i{display:inline-block;width:.8rem;height:.8rem;margin-right:.3rem;vertical-align:-.1rem}
@media (max-width:600px){body{padding:.5rem}
table.stack,table.stack tbody,table.stack tr,table.stack td{display:block;width:auto}
table.stack thead{display:none}
table.stack tr{border:1px solid #ddd;border-radius:.5rem;margin:.5rem 0;padding:.3rem .6rem}
table.stack td{display:flex;justify-content:space-between;gap:1rem;border:0;padding:.15rem 0;
text-align:right}
table.stack td::before{content:attr(data-label);color:#555;text-align:left}
table.stack td:first-child{font-weight:600;display:block;text-align:left}
table.stack td:first-child::before{content:none}}
"""
VOLUME_HEADS = (
    "created",
    "resolved",
    "open",
    "SLA first response",
    "SLA resolution",
    "rating",
    "rated",
)
TIMES_HEADS = tuple(
    f"{what} {stat}{bh}"
    for what in ("first response", "resolution")
    for bh in ("", " (bh)")
    for stat in ("median", "p90")
)


def _table(
    head: Sequence[str],
    rows: Sequence[Sequence[object]],
    *,
    cards: bool = True,
    caption: str = "",
) -> str:
    """A table; with ``cards`` each row becomes a card on a narrow screen (see CSS)."""
    ths = "".join(f"<th>{escape(h)}</th>" for h in head)
    body = "".join(
        "<tr>"
        + "".join(
            f'<td data-label="{escape(h)}">{escape(str(c))}</td>'
            for h, c in zip(head, row, strict=True)
        )
        + "</tr>"
        for row in rows
    )
    klass = ' class="stack"' if cards else ""
    cap = f"<caption>{escape(caption)}</caption>" if caption else ""
    return f"<table{klass}>{cap}<thead><tr>{ths}</tr></thead><tbody>{body}</tbody></table>"


def _chart(svg: str | None) -> str:
    return svg or ""


def _target(t: Target) -> str:
    total = t.met + t.breached
    return f"{fmt.share(t.share_met)} ({t.met}/{total})" if total else "-"


def _cards(g: GroupStats) -> str:
    s = g.satisfaction
    items = [
        (g.created, "created"),
        (g.resolved, "resolved"),
        (g.open_at_end, "open at end"),
        (fmt.span(g.first_response.median), "first response, median"),
        (fmt.span(g.resolution.median), "resolution, median"),
        (fmt.share(g.sla_first_response.share_met), "SLA first response met"),
        (fmt.share(g.sla_resolution.share_met), "SLA resolution met"),
        (fmt.rating(s.average), f"satisfaction ({s.rated} ratings)"),
    ]
    cells = "".join(
        f'<div class="card"><b>{escape(str(v))}</b><span>{escape(label)}</span></div>'
        for v, label in items
    )
    return f'<div class="cards">{cells}</div>'


def _times_rows(groups: Sequence[GroupStats], none: str) -> list[list[object]]:
    rows: list[list[object]] = []
    for g in groups:
        fr, rs = g.first_response, g.resolution
        name: list[object] = [g.name if g.name is not None else none]
        rows.append(
            name
            + [
                fmt.span(v)
                for t in (fr, rs)
                for v in (t.median, t.p90, t.business_median, t.business_p90)
            ]
        )
    return rows


def _groups(groups: Sequence[GroupStats], title: str, none: str, charts: bool) -> str:
    if not groups:
        return f"<h2>Per {title}</h2><p>None.</p>"
    volume = [
        [
            g.name if g.name is not None else none,
            g.created,
            g.resolved,
            g.open_at_end,
            _target(g.sla_first_response),
            _target(g.sla_resolution),
            fmt.rating(g.satisfaction.average),
            fmt.share(g.satisfaction.response_rate),
        ]
        for g in groups
    ]
    parts = [
        f"<h2>Per {escape(title)}</h2>",
        _table(
            [title, *VOLUME_HEADS],
            volume,
        ),
        "<h3>Response times (wall clock; business hours)</h3>",
        _table(
            [title, *TIMES_HEADS],
            _times_rows(groups, none),
        ),
    ]
    if charts:
        parts.append(_chart(chart.times(groups, none)))
        parts.append(_chart(chart.sla(groups, none)))
    return "".join(parts)


def render(report: Report, *, charts: bool = True) -> str:
    title = "Support report" + (f": {report.team}" if report.team else "")
    s = report.summary
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{escape(title)}</title><style>{CSS}</style></head><body><main>",
        f"<h1>{escape(title)}</h1>",
        f'<p class="meta">{escape(fmt.window(report))}; days and hours in '
        f"{escape(report.timezone)}; business hours {escape(report.business_hours)}</p>",
        "<h2>Summary</h2>",
        _cards(s),
        _table(
            ["", "count", "median", "p90", "median (bh)", "p90 (bh)"],
            [
                [
                    label,
                    t.count,
                    fmt.span(t.median),
                    fmt.span(t.p90),
                    fmt.span(t.business_median),
                    fmt.span(t.business_p90),
                ]
                for label, t in (("first response", s.first_response), ("resolution", s.resolution))
            ],
        ),
        f"<p>SLA met: first response {escape(_target(s.sla_first_response))}, resolution "
        f"{escape(_target(s.sla_resolution))}. Satisfaction: average "
        f"{escape(fmt.rating(s.satisfaction.average))} from {s.satisfaction.rated} ratings, "
        f"response rate {escape(fmt.share(s.satisfaction.response_rate))} of "
        f"{s.satisfaction.surveyed} surveys.</p>",
        "<h2>Per day</h2>",
    ]
    if charts:
        parts.append(_chart(chart.volume(report)))
    busy = [d for d in report.days if d.created or d.resolved]
    quiet = len(report.days) - len(busy)
    parts.append(
        _table(
            ["date", "created", "resolved", "open at end"],
            [[d.date.isoformat(), d.created, d.resolved, d.open_at_end] for d in busy],
            cards=False,
            caption=f"{quiet} day{'' if quiet == 1 else 's'} without new or resolved tickets "
            "left out."
            if quiet
            else "",
        )
        if busy
        else "<p>No tickets created or resolved in the period.</p>"
    )
    empty = "(no team)" if report.grouped_by == "team" else "(none)"
    parts.append(_groups(report.teams, report.grouped_by, empty, charts))
    parts.append(_groups(report.agents, "agent", "(unassigned)", charts))
    parts.append("<h2>Top tags</h2>")
    if charts:
        parts.append(_chart(chart.tags(report)))
    parts.append(
        _table(["tag", "tickets created"], [list(t) for t in report.top_tags], cards=False)
    )
    parts.append(
        f"<h2>Busiest weekdays and hours</h2><p>{escape(TRAFFIC_BASIS)}, "
        f"{escape(report.timezone)}.</p>"
    )
    if charts:
        parts.append(_chart(chart.traffic(report)))
    parts.append(_table(["weekday", "messages"], [list(w) for w in report.weekdays], cards=False))
    parts.append(
        _table(["hour", "messages"], [[f"{h:02d}", n] for h, n in report.hours], cards=False)
    )
    mood, defl = report.sentiment, report.deflection
    parts.append(
        "<h2>Self-service</h2>"
        f"<p>Negative first messages (sentiment below -0.5): {fmt.share(mood.share_negative)} "
        f"({mood.negative} of {mood.scored} scored). Deflection: {defl.self_solved} of "
        f"{defl.suggested} tickets with suggestions self-solved ({fmt.share(defl.share)}).</p>"
    )
    if defl.articles:
        parts.append(
            _table(
                ["article", "suggested", "self-solved"],
                [[a.slug, a.suggested, a.self_solved] for a in defl.articles],
                cards=False,
            )
        )
    parts.append("</main></body></html>\n")
    return "\n".join(p for p in parts if p)
