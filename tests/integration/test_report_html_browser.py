"""The HTML report in a real headless Chromium, at a phone's width (390 px) and a desktop's (1280).

The report holds what makes pages break: a month of days (mostly quiet), team names and agent
addresses of forty characters, durations from seconds to days, ten tags. At both widths: no
horizontal scrolling, every chart label drawn at 11 CSS px or more (font size times the SVG's
scale on screen), every table inside the page; at 390 px the wide tables are cards.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest

from maild.reports import render_html
from maild.reports.model import Day, GroupStats, Report, Satisfaction, Target, Times
from tests.servers.browser import horizontal_overflow, set_viewport


def group(name: str | None, scale: float, n: int) -> GroupStats:
    return GroupStats(
        name,
        created=40 * n,
        resolved=35 * n,
        open_at_end=5 * n,
        first_response=Times(30 * n, 42.0 * scale, 380.0 * scale, 40.0 * scale, 300.0 * scale),
        resolution=Times(
            28 * n, 5400.0 * scale, 3.5 * 86400 * scale, 3600.0 * scale, 86400.0 * scale
        ),
        sla_first_response=Target(met=27 * n, breached=3 * n),
        sla_resolution=Target(met=20 * n, breached=8 * n),
        satisfaction=Satisfaction(
            resolved=35 * n, rated=12, rating_sum=50, surveyed=30, responded=12
        ),
    )


def month_report() -> Report:
    start = dt.date(2026, 11, 1)
    days = tuple(
        Day(
            start + dt.timedelta(days=i),
            7 if i % 9 == 3 else 0,
            5 if i % 11 == 4 else 0,
            12 + i % 4,
        )
        for i in range(31)
    )
    traffic = tuple(
        tuple((h * (w + 1)) % 7 if 8 <= h <= 18 else 0 for h in range(24)) for w in range(7)
    )
    return Report(
        start=dt.datetime(2026, 11, 1),
        end=dt.datetime(2026, 12, 2),
        timezone="Europe/Berlin",
        business_hours="mon-fri 09:00-17:00 Europe/Berlin",
        team=None,
        generated_at=dt.datetime(2026, 12, 2, 8),
        summary=group(None, 1.0, 4),
        days=days,
        teams=(
            group("billing", 1.0, 2),
            group("technical-support-second-level-europe", 6.0, 1),
            group(None, 0.02, 1),
        ),
        agents=(
            group("alice@example.com", 0.5, 1),
            group("bartholomew.longname-for-testing@example.com", 3.0, 1),
            group(None, 1.0, 1),
        ),
        top_tags=tuple((f"tag-{i:02d}-{'x' * i}", 30 - 2 * i) for i in range(10)),
        traffic=traffic,
    )


@pytest.fixture(scope="module")
def page(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("report") / "report.html"
    path.write_text(render_html.render(month_report()), encoding="utf-8")
    return path.as_uri()


LABEL_SIZES = """
return Array.from(document.querySelectorAll('svg.chart text')).map(t => {
  const m = t.getScreenCTM();
  return [t.textContent, parseFloat(getComputedStyle(t).fontSize) * Math.hypot(m.a, m.b)];
});
"""
TABLES = """
const main = document.querySelector('main').getBoundingClientRect();
return Array.from(document.querySelectorAll('table')).map(t => {
  const r = t.getBoundingClientRect();
  return [r.left >= main.left - 1 && r.right <= main.right + 1,
          getComputedStyle(t.querySelector('thead')).display];
});
"""
CLIPPED = """
return Array.from(document.querySelectorAll('svg.chart text')).filter(t => {
  const r = t.getBoundingClientRect();
  return r.right > document.documentElement.clientWidth + 0.5 || r.left < -0.5;
}).map(t => t.textContent);
"""


@pytest.mark.parametrize("width", [390, 1280])
def test_the_report_reads_without_sideways_scrolling(browser: Any, page: str, width: int) -> None:
    set_viewport(browser, width)
    browser.get(page)
    assert horizontal_overflow(browser) == 0
    sizes = browser.execute_script(LABEL_SIZES)
    assert len(sizes) > 50  # every chart is there, labelled
    small = [(text, round(px, 1)) for text, px in sizes if px < 11]
    assert small == []
    assert browser.execute_script(CLIPPED) == []  # no label runs off the screen
    tables = browser.execute_script(TABLES)
    assert tables and all(inside for inside, _ in tables)


def test_at_phone_width_the_wide_tables_are_cards(browser: Any, page: str) -> None:
    set_viewport(browser, 390)
    browser.get(page)
    heads = [display for _, display in browser.execute_script(TABLES)]
    assert "none" in heads  # per team and per agent: cards, each cell labelled
    label = browser.execute_script(
        "const td = document.querySelector('table.stack td:nth-child(2)');"
        "return getComputedStyle(td, '::before').content;"
    )
    assert label.strip('"') in ("created", "count")
    set_viewport(browser, 1280)
    browser.get(page)
    assert {display for _, display in browser.execute_script(TABLES)} == {"table-header-group"}


def test_durations_are_in_the_unit_that_fits_and_only_busy_days_are_listed(
    browser: Any, page: str
) -> None:
    set_viewport(browser, 1280)
    browser.get(page)
    text = browser.find_element("tag name", "body").text
    for shown in ("42 s", "6 min", "1 h 30 min", "3 d 12 h"):
        assert shown in text
    assert "0.0" not in text.replace("0.00", "")  # no fractions of hours
    rows = browser.execute_script(
        "return Array.from(document.querySelectorAll('table')).find("
        "t => t.querySelector('th').textContent === 'date').querySelectorAll('tbody tr').length;"
    )
    busy = sum(1 for d in month_report().days if d.created or d.resolved)
    assert rows == busy < 31
    assert f"{31 - busy} days without new or resolved tickets left out." in text


def test_chart_text_is_escaped(tmp_path: Path) -> None:
    report = month_report()
    hostile = Report(**{**report.__dict__, "top_tags": (("<script>alert(1)</script>", 3),)})
    html = render_html.render(hostile)
    assert "<script>" not in html and "&lt;script&gt;" in html
