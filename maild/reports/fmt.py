"""Short human forms of report figures, shared by the table, the HTML page and the digest."""

from __future__ import annotations

from maild.clock import iso
from maild.reports.model import Report


def duration(seconds: float | None) -> str:
    """At most six characters: ``45s``, ``12m``, ``3h05``, ``2d4h``, ``123d``; ``-`` for none."""
    if seconds is None:
        return "-"
    s = round(seconds)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m"
    if s < 86400:
        return f"{s // 3600}h{s % 3600 // 60:02d}"
    days, hours = s // 86400, s % 86400 // 3600
    return f"{days}d{hours}h" if days < 100 else f"{days}d"


def span(seconds: float | None) -> str:
    """A duration in the unit that fits, for reading: ``45 s``, ``12 min``, ``3 h 5 min``,
    ``2 d 4 h``; ``-`` for none. (``duration`` is the compact form for the 80-column table.)"""
    if seconds is None:
        return "-"
    s = round(seconds)
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min"
    if s < 86400:
        hours, minutes = s // 3600, s % 3600 // 60
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    days, hours = s // 86400, s % 86400 // 3600
    return f"{days} d {hours} h" if hours and days < 10 else f"{days} d"


def share(value: float | None) -> str:
    """A fraction as a whole percentage, ``-`` for none."""
    return "-" if value is None else f"{value * 100:.0f}%"


def rating(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def name(value: str | None, default: str, width: int) -> str:
    """A team or agent name cut to ``width`` characters (an ellipsis marks the cut)."""
    text = value if value is not None else default
    return text if len(text) <= width else text[: width - 1] + "…"


def window(report: Report) -> str:
    """``2026-03-01 09:00 .. 2026-03-31 09:00 UTC`` (the window in UTC, minutes)."""
    start = (iso(report.start) or "")[:16].replace("T", " ")
    end = (iso(report.end) or "")[:16].replace("T", " ")
    return f"{start} .. {end} UTC"
