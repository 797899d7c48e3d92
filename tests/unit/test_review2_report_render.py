"""Review: the HTML report renders any tag or name a rule can give, as plain text.

Rule tags may hold any character but spaces and commas (``tags: [US$, $$]``). Matplotlib reads
text between two dollar signs as TeX math, so such a tag either crashed ``ticketd report --format
html`` (a ValueError from the math parser) or was drawn as a formula instead of its name.
"""

from __future__ import annotations

import datetime as dt
import html
import re

import pytest

from maild.reports import render_html, render_table
from maild.reports.model import GroupStats, Report, Times


def report(tags: tuple[tuple[str, int], ...], team: str = "billing") -> Report:
    group = GroupStats(team, created=3, first_response=Times(1, 60.0, 60.0))
    return Report(
        start=dt.datetime(2026, 3, 2),
        end=dt.datetime(2026, 3, 9),
        timezone="UTC",
        business_hours="24/7",
        team=None,
        generated_at=dt.datetime(2026, 3, 9),
        summary=GroupStats(None, created=3),
        days=(),
        teams=(group,),
        agents=(GroupStats("a$b$@example.com", created=3, first_response=Times(1, 60.0, 60.0)),),
        top_tags=tags,
        traffic=((0,) * 24,) * 7,
    )


def svgs(page: str) -> str:
    """The text drawn in the page's inline SVG charts, unescaped."""
    charts = re.findall(r'<svg class="chart".*?</svg>', page, flags=re.S)
    return "\n".join(
        html.unescape(t) for c in charts for t in re.findall(r"<text[^>]*>(.*?)</text>", c)
    )


@pytest.mark.parametrize("tag", ["$$", "$_$", "cost$^$x", r"$\x$", "US$-or-EUR$"])
def test_dollar_signs_in_tags_are_text_not_math(tag: str) -> None:
    page = render_html.render(report(((tag, 2), ("<script>", 1))))
    drawn = svgs(page)
    assert tag in drawn  # the name as written, not a formula
    assert "<script>" not in page and "&lt;script&gt;" in page
    assert tag in render_table.render(report(((tag, 2),)))


def test_dollar_signs_in_an_agent_address_are_text() -> None:
    drawn = svgs(render_html.render(report((("x", 1),))))
    assert "a$b$@example.com" in drawn
