"""Charts for the HTML report, drawn with matplotlib and returned as ``data:`` URIs (SVG).

Figures are built with the object API (``Figure``, never pyplot), so nothing global is touched and
charts can be drawn from any thread of the daemon; the canvas is Agg. SVG keeps text as text
(``svg.fonttype: none``), which is small and sharp on a phone, and the page's fonts draw it.
Matplotlib is imported only when a chart is drawn: the other formats never load it.
"""

from __future__ import annotations

import base64
import io
import warnings
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from maild.reports.model import WEEKDAYS, GroupStats, Report

if TYPE_CHECKING:
    from matplotlib.figure import Figure
    from matplotlib.typing import RcKeyType

CREATED, RESOLVED, OPEN, P90 = "#4c78a8", "#59a14f", "#e15759", "#9ecae9"
# text.parse_math off: a tag or name with two "$" in it is drawn as written, never as TeX math
# (which garbled it, or raised a ValueError from the math parser and failed the whole report).
RC: dict[RcKeyType, Any] = {
    "svg.fonttype": "none",
    "svg.hashsalt": "ticketd",
    "font.size": 9,
    "text.parse_math": False,
}


def _figure(width: float, height: float) -> Figure:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _uri(draw: Callable[[], Figure | None]) -> str | None:
    import matplotlib

    with matplotlib.rc_context(RC), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # e.g. a glyph missing for a tag name
        fig = draw()
        if fig is None:
            return None
        buf = io.BytesIO()
        fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": None})
    return "data:image/svg+xml;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _ticks(count: int, most: int = 10) -> list[int]:
    step = max(1, -(-count // most))
    return list(range(0, count, step))


def volume(report: Report) -> str | None:
    """Created and resolved per day (bars) and the open backlog (line)."""

    def draw() -> Figure | None:
        days = report.days
        if not days:
            return None
        fig = _figure(8, 3.2)
        ax = fig.add_subplot()
        x = list(range(len(days)))
        ax.bar([i - 0.2 for i in x], [d.created for d in days], 0.4, label="created", color=CREATED)
        ax.bar(
            [i + 0.2 for i in x], [d.resolved for d in days], 0.4, label="resolved", color=RESOLVED
        )
        ax.plot(x, [d.open_at_end for d in days], color=OPEN, label="open at end", marker=".")
        ticks = _ticks(len(days))
        ax.set_xticks(ticks, [days[i].date.strftime("%m-%d") for i in ticks])
        ax.set_ylabel("tickets")
        ax.legend(loc="lower left", bbox_to_anchor=(0, 1), frameon=False, ncols=3)
        ax.spines[["top", "right"]].set_visible(False)
        return fig

    return _uri(draw)


def _label(g: GroupStats, none: str) -> str:
    text = g.name if g.name is not None else none
    return text if len(text) <= 24 else text[:23] + "…"


def times(groups: Sequence[GroupStats], none: str) -> str | None:
    """Median and p90 of first-response and resolution times per group, in hours."""

    def draw() -> Figure | None:
        if not groups:
            return None
        fig = _figure(8, 0.9 + 0.35 * len(groups))
        axes = fig.subplots(1, 2, sharey=True)
        y = list(range(len(groups)))
        for ax, title, pick in (
            (axes[0], "first response (hours)", lambda g: g.first_response),
            (axes[1], "resolution (hours)", lambda g: g.resolution),
        ):
            p90 = [(pick(g).p90 or 0) / 3600 for g in groups]
            med = [(pick(g).median or 0) / 3600 for g in groups]
            ax.barh(y, p90, color=P90, label="p90")
            ax.barh(y, med, color=CREATED, height=0.5, label="median")
            ax.set_title(title)
            ax.spines[["top", "right"]].set_visible(False)
        axes[0].set_yticks(y, [_label(g, none) for g in groups])
        axes[0].invert_yaxis()
        axes[1].legend(loc="lower right", frameon=False)
        return fig

    return _uri(draw)


def sla(groups: Sequence[GroupStats], none: str) -> str | None:
    """Share of SLA targets met per group (first response and resolution), in percent."""

    def draw() -> Figure | None:
        rows = [
            g
            for g in groups
            if g.sla_first_response.met + g.sla_first_response.breached
            or g.sla_resolution.met + g.sla_resolution.breached
        ]
        if not rows:
            return None
        fig = _figure(8, 0.9 + 0.4 * len(rows))
        ax = fig.add_subplot()
        y = list(range(len(rows)))
        fr = [(g.sla_first_response.share_met or 0) * 100 for g in rows]
        rs = [(g.sla_resolution.share_met or 0) * 100 for g in rows]
        ax.barh([i - 0.2 for i in y], fr, 0.4, label="first response", color=CREATED)
        ax.barh([i + 0.2 for i in y], rs, 0.4, label="resolution", color=RESOLVED)
        ax.set_yticks(y, [_label(g, none) for g in rows])
        ax.invert_yaxis()
        ax.set_xlim(0, 100)
        ax.set_xlabel("% of targets met")
        ax.legend(loc="lower right", frameon=False)
        ax.spines[["top", "right"]].set_visible(False)
        return fig

    return _uri(draw)


def traffic(report: Report) -> str | None:
    """Inbound customer messages by weekday and hour, as a heat map."""

    def draw() -> Figure | None:
        if not any(any(row) for row in report.traffic):
            return None
        fig = _figure(8, 2.6)
        ax = fig.add_subplot()
        image = ax.imshow(report.traffic, aspect="auto", cmap="Blues")
        ax.set_yticks(range(7), list(WEEKDAYS))
        ax.set_xticks(range(0, 24, 3), [f"{h:02d}" for h in range(0, 24, 3)])
        ax.set_xlabel(f"hour ({report.timezone})")
        fig.colorbar(image, ax=ax, label="messages")
        return fig

    return _uri(draw)


def tags(report: Report) -> str | None:
    """The top tags by tickets created."""

    def draw() -> Figure | None:
        if not report.top_tags:
            return None
        fig = _figure(8, 0.9 + 0.3 * len(report.top_tags))
        ax = fig.add_subplot()
        names = [t if len(t) <= 30 else t[:29] + "…" for t, _ in report.top_tags]
        ax.barh(range(len(names)), [n for _, n in report.top_tags], color=CREATED)
        ax.set_yticks(range(len(names)), names)
        ax.invert_yaxis()
        ax.set_xlabel("tickets created")
        ax.spines[["top", "right"]].set_visible(False)
        return fig

    return _uri(draw)
