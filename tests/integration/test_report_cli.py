"""``ticketd report`` end to end: a config file, the known history, every format, bad input."""

from __future__ import annotations

import csv
import io
import json
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from maild.app import App
from maild.cli.main import main
from maild.store.models import Ticket
from tests.conftest import base_config
from tests.integration.test_report_figures import build_history

REPO = Path(__file__).resolve().parents[2]
HOURS = "business_hours:\n  timezone: UTC\n  week: {mon-fri: '09:00-17:00'}\n"
WEEK = ("--from", "2026-03-02", "--to", "2026-03-08")


@pytest.fixture
def site(tmp_path: Path, app_factory: Callable[..., App], any_db_url: str) -> Path:
    """A config file (JSON is YAML) over the known history, with UTC business hours."""
    (tmp_path / "rules").mkdir(exist_ok=True)
    (tmp_path / "rules" / "30-sla.yaml").write_text(HOURS)
    app_factory(any_db_url)
    build_history()
    config = tmp_path / "config.yaml"
    config.write_text(json.dumps(base_config(tmp_path, any_db_url)))
    return config


def run(config: Path, *args: str) -> int:
    return main(["report", "--config", str(config), *args])


def test_json(site: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(site, *WEEK, "--format", "json") == 0
    data = json.loads(capsys.readouterr().out)
    assert data["version"] == 1
    assert data["period"] == {
        "start": "2026-03-02T00:00:00+00:00",
        "end": "2026-03-09T00:00:00+00:00",
        "timezone": "UTC",
        "days": 7,
    }
    assert data["business_hours"] == "UTC: mon-fri 09:00-17:00"
    s = data["summary"]
    assert (s["created"], s["resolved"], s["open_at_end"]) == (7, 5, 4)
    assert s["first_response"] == {
        "count": 5,
        "median_seconds": 3600.0,
        "p90_seconds": 44640.0,
        "business_median_seconds": 3600.0,
        "business_p90_seconds": 11520.0,
    }
    assert s["sla"]["resolution"] == {"met": 3, "breached": 1, "share_met": 0.75}
    assert s["satisfaction"] == {
        "average": 3.67,
        "rated": 3,
        "resolved": 5,
        "surveyed": 3,
        "response_rate": 0.6667,
    }
    assert [t["name"] for t in data["teams"]] == ["billing", "tech", None]
    assert [a["name"] for a in data["agents"]] == ["ann@example.com", "bob@example.com", None]
    assert data["days"][0] == {"date": "2026-03-02", "created": 2, "resolved": 1, "open_at_end": 3}
    assert data["top_tags"][0] == {"tag": "billing", "tickets": 3}
    assert data["busiest"]["basis"] == "inbound customer messages"
    assert data["busiest"]["weekdays"][0] == {"weekday": "mon", "messages": 3}
    assert data["busiest"]["hours"][9] == {"hour": 9, "messages": 3}


def test_team_option(site: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(site, *WEEK, "--team", "tech", "--format", "json") == 0
    data = json.loads(capsys.readouterr().out)
    assert data["team"] == "tech"
    assert (data["summary"]["created"], data["summary"]["open_at_end"]) == (3, 2)


def test_csv_parses(site: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(site, *WEEK, "--format", "csv") == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert all(list(r) == ["section", "name", "metric", "value"] for r in rows)
    cell = {(r["section"], r["name"], r["metric"]): r["value"] for r in rows}
    assert cell[("summary", "", "created")] == "7"
    assert cell[("summary", "", "resolution.p90_seconds")] == "276480.0"
    assert cell[("team", "billing", "sla.first_response.met")] == "1"
    assert cell[("agent", "", "open_at_end")] == "2"  # unassigned
    assert cell[("agent", "bob@example.com", "satisfaction.average")] == ""  # null
    assert cell[("day", "2026-03-07", "open_at_end")] == "5"
    assert cell[("tag", "refund", "tickets")] == "2"
    assert cell[("weekday", "sun", "messages")] == "0"
    assert cell[("hour", "20", "messages")] == "1"
    assert cell[("meta", "", "period.timezone")] == "UTC"


def test_html_is_self_contained(site: Path, tmp_path: Path) -> None:
    out = tmp_path / "report.html"
    assert run(site, *WEEK, "--format", "html", "--output", str(out)) == 0
    page = out.read_text()
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in page
    charts = re.findall(r'<svg class="chart"[^>]*role="img"', page)
    assert len(charts) >= 5  # volume, times and SLA per team and agent, tags, heat map
    # Nothing to fetch: no URL anywhere, the charts are inline SVG.
    assert "http:" not in page and "https:" not in page and "url(" not in page
    assert re.findall(r'(?:src|href)="(?!data:)', page) == []
    assert "@media" in page and "<script" not in page


def test_table_fits_80_columns(site: Path, capsys: pytest.CaptureFixture[str]) -> None:
    Ticket.update(team="a-team-with-a-very-long-name-indeed").where(Ticket.id == 2).execute()
    assert run(site, *WEEK) == 0
    text = capsys.readouterr().out
    assert max(len(line) for line in text.splitlines()) <= 80
    assert "first response" in text and "a-team-with-a-very…" in text
    assert "Busiest weekdays and hours (inbound customer messages, UTC)" in text


def test_subprocess_default_format_and_since(site: Path) -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "maild.cli.main",
            "report",
            "--since",
            "3650d",
            "--format",
            "json",
            "--config",
            str(site),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
    )
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert data["summary"]["created"] == 10  # every ticket but the spam one


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--since", "3x"), "ticketd: --since '3x': expected a number and a unit h, d or w"),
        (("--from", "2026-03-05", "--to", "2026-03-01"), "ticketd: --from 2026-03-05 is after"),
        (("--format", "xml"), "ticketd: --format 'xml': choose one of table, csv, json, html"),
        (("--since", "7d", "--from", "2026-03-01"), "ticketd: give --since or --from/--to, not"),
        (("--to", "2026-03-01"), "ticketd: --to needs --from"),
        (("--from", "March"), "ticketd: --from 'March': expected a date like 2026-03-01"),
        (("--from", "0001-01-01", "--to", "0001-01-02"), "ticketd: --from '0001-01-01': the year"),
    ],
)
def test_bad_input_exits_64(
    site: Path, capsys: pytest.CaptureFixture[str], args: tuple[str, ...], message: str
) -> None:
    assert run(site, *args) == 64
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith(message) and captured.err.count("\n") == 1


def test_bad_input_exits_64_from_a_shell(tmp_path: Path) -> None:
    """No database is opened for an option error, so a bare config is enough."""
    config = tmp_path / "config.yaml"
    config.write_text(json.dumps(base_config(tmp_path, f"sqlite:///{tmp_path / 'r.db'}")))
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "maild.cli.main",
            "report",
            "--format",
            "pdf",
            "--config",
            str(config),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
    )
    assert done.returncode == 64
    assert done.stderr == "ticketd: --format 'pdf': choose one of table, csv, json, html\n"
    assert not (tmp_path / "r.db").exists()


def test_readme_lists_every_json_field(site: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(site, *WEEK, "--format", "json") == 0
    data = json.loads(capsys.readouterr().out)
    readme = (REPO / "README.md").read_text()
    section = readme.split("## Reports", 1)[1].split("\n## ", 1)[0]

    def keys(value: object) -> set[str]:
        if isinstance(value, dict):
            return set(value) | {k for v in value.values() for k in keys(v)}
        if isinstance(value, list):
            return {k for v in value for k in keys(v)}
        return set()

    missing = sorted(k for k in keys(data) if f"`{k}`" not in section)
    assert missing == []
