"""Charts for the HTML report, as inline SVG that reads on a phone as well as on a desktop.

Policy: text is never scaled. Each chart is an ``<svg width="100%">`` without a viewBox, so its
text keeps the page's font at :data:`FONT_PX` CSS px at any width, and only the geometry stretches:
bars and cells are placed in percentages of the chart's width, and the day chart's bars and line
sit in a nested ``<svg viewBox preserveAspectRatio="none">`` (a plot area with no text in it).
Horizontal bar charts put each label on its own line above its bars, so a long team name or
address never squeezes the bars. Every value is written beside its bar, durations in the unit
that fits (``fmt.span``), so nothing needs reading off an axis. Labels are escaped: tags, teams
and addresses come from mail and rules.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from html import escape

from maild.reports import fmt
from maild.reports.model import WEEKDAYS, GroupStats, Report, Times

CREATED, RESOLVED, OPEN, P90 = "#4c78a8", "#59a14f", "#e15759", "#9ecae9"
FONT_PX = 12  # every chart label, in CSS px (the browser test requires at least 11)
ROW = 18  # the height of one bar, px
LINE = FONT_PX + 6  # the height of a line of text above a bar


def _svg(height: int, label: str, body: str) -> str:
    return (
        f'<svg class="chart" width="100%" height="{height}" role="img" '
        f'aria-label="{escape(label)}">'
        f"<title>{escape(label)}</title>{body}</svg>"
    )


def _text(x: str, y: float, text: str, *, anchor: str = "start", cls: str = "") -> str:
    klass = f' class="{cls}"' if cls else ""
    return (
        f'<text x="{x}" y="{y:g}" text-anchor="{anchor}" font-size="{FONT_PX}"{klass}>'
        f"{escape(text)}</text>"
    )


def _pct(value: float, most: float, room: float = 55.0) -> float:
    """A bar's width in % of the chart: the longest is ``room`` %, leaving space for its value."""
    return round(room * value / most, 2) if most > 0 else 0.0


def legend(items: Sequence[tuple[str, str]]) -> str:
    """The colour key, as HTML above a chart (it wraps on a narrow screen)."""
    keys = "".join(
        f'<span><i style="background:{color}"></i>{escape(label)}</span>' for label, color in items
    )
    return f'<p class="legend">{keys}</p>'


def _hbars(
    rows: Sequence[tuple[str, Sequence[tuple[float, str, str]]]], label: str, most: float
) -> str:
    """Rows of ``(label, [(value, text, colour), ...])``: the label, then one bar per value."""
    parts: list[str] = []
    y = 0
    for name, bars in rows:
        parts.append(_text("0", y + FONT_PX, name, cls="label"))
        y += LINE
        for value, text, color in bars:
            width = _pct(value, most)
            parts.append(
                f'<rect x="0" y="{y}" width="{width}%" height="{ROW - 4}" fill="{color}" rx="2"/>'
            )
            parts.append(_text(f"{width + 1.5:g}%", y + ROW - 6, text, cls="value"))
            y += ROW
        y += 8
    return _svg(y, label, "".join(parts))


def _seconds(t: Times, pick: Callable[[Times], float | None]) -> float:
    return pick(t) or 0.0


def times(groups: Sequence[GroupStats], none: str) -> str | None:
    """Median and p90 of first response and resolution per group, each bar with its value."""
    if not any(g.first_response.count or g.resolution.count for g in groups):
        return None
    rows = []
    most = 0.0
    for g in groups:
        for what, t in (("first response", g.first_response), ("resolution", g.resolution)):
            if not t.count:
                continue
            median, p90 = _seconds(t, lambda x: x.median), _seconds(t, lambda x: x.p90)
            most = max(most, median, p90)
            bars = [
                (median, f"median {fmt.span(t.median)}", CREATED),
                (p90, f"p90 {fmt.span(t.p90)}", P90),
            ]
            rows.append((f"{fmt.name(g.name, none, 32)}: {what} ({t.count})", bars))
    return legend((("median", CREATED), ("90th percentile", P90))) + _hbars(
        rows, "response times (median and 90th percentile)", most
    )


def sla(groups: Sequence[GroupStats], none: str) -> str | None:
    """Share of SLA targets met per group (first response and resolution)."""
    rows = []
    for g in groups:
        bars = []
        for target, color in (
            (g.sla_first_response, CREATED),
            (g.sla_resolution, RESOLVED),
        ):
            total = target.met + target.breached
            if total:
                share = target.share_met or 0.0
                bars.append((share, f"{fmt.share(share)} of {total}", color))
        if bars:
            rows.append((fmt.name(g.name, none, 40), bars))
    if not rows:
        return None
    return legend((("first response", CREATED), ("resolution", RESOLVED))) + _hbars(
        rows, "share of SLA targets met", 1.0
    )


def tags(report: Report) -> str | None:
    """The top tags by tickets created."""
    if not report.top_tags:
        return None
    most = max(n for _, n in report.top_tags)
    rows = [(fmt.name(t, "", 40), [(float(n), str(n), CREATED)]) for t, n in report.top_tags]
    return _hbars(rows, "top tags by tickets created", float(most))


def volume(report: Report) -> str | None:
    """Created and resolved per day (bars) and the open backlog at each day's end (line)."""
    days = report.days
    if not days:
        return None
    n = len(days)
    top = max(max(d.created, d.resolved, d.open_at_end) for d in days) or 1
    plot_h = 140
    bars = []
    for i, d in enumerate(days):
        for offset, value, color in ((0.1, d.created, CREATED), (0.5, d.resolved, RESOLVED)):
            if value:
                bars.append(
                    f'<rect x="{i + offset:g}" y="{top - value}" width="0.4" height="{value}" '
                    f'fill="{color}"/>'
                )
    points = " ".join(f"{i + 0.5:g},{top - d.open_at_end}" for i, d in enumerate(days))
    plot = (
        f'<svg x="0" y="{LINE}" width="100%" height="{plot_h}" viewBox="0 0 {n} {top}" '
        f'preserveAspectRatio="none">{"".join(bars)}'
        f'<polyline points="{points}" fill="none" stroke="{OPEN}" stroke-width="2" '
        f'vector-effect="non-scaling-stroke"/></svg>'
    )
    ticks = []
    for i in _ticks(n, most=5):
        x = round((i + 0.5) / n * 100, 2)
        anchor = "start" if x < 8 else ("end" if x > 92 else "middle")
        ticks.append(
            _text(
                f"{x:g}%",
                LINE + plot_h + FONT_PX + 4,
                days[i].date.strftime("%m-%d"),
                anchor=anchor,
            )
        )
    axis = _text("0", FONT_PX, f"{top} tickets", cls="label") + (
        f'<line x1="0" x2="100%" y1="{LINE + plot_h}" y2="{LINE + plot_h}" stroke="#bbb"/>'
    )
    key = legend((("created", CREATED), ("resolved", RESOLVED), ("open at end", OPEN)))
    return key + _svg(
        LINE + plot_h + LINE + 4,
        "tickets created, resolved and open per day",
        axis + plot + "".join(ticks),
    )


def _ticks(count: int, most: int) -> list[int]:
    step = max(1, -(-count // most))
    return list(range(0, count, step))


def traffic(report: Report) -> str | None:
    """Inbound customer messages by weekday and hour, as a heat map (darker: more)."""
    most = max((max(row) for row in report.traffic), default=0)
    if not most:
        return None
    left, cell_h = 12.0, 20  # % of the width for the weekday names; px per row
    width = (100 - left) / 24
    parts = []
    for r, (day, row) in enumerate(zip(WEEKDAYS, report.traffic, strict=True)):
        y = r * cell_h
        parts.append(_text("0", y + cell_h - 6, day, cls="label"))
        for h, count in enumerate(row):
            if count:
                opacity = 0.15 + 0.85 * count / most
                parts.append(
                    f'<rect x="{left + h * width:.3f}%" y="{y + 1}" width="{width:.3f}%" '
                    f'height="{cell_h - 2}" fill="{CREATED}" fill-opacity="{opacity:.2f}">'
                    f"<title>{day} {h:02d}:00: {count}</title></rect>"
                )
    base = 7 * cell_h + FONT_PX + 4
    for h in range(0, 24, 6):
        parts.append(_text(f"{left + h * width:.3f}%", base, f"{h:02d}:00"))
    parts.append(_text("100%", base, f"max {most}", anchor="end"))
    return _svg(base + 6, f"messages by weekday and hour ({report.timezone})", "".join(parts))
