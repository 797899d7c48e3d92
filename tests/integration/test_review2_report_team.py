"""Review: ``ticketd report --team`` with a team that does not exist is bad input (exit 64).

Before, ``--team biling`` printed a report full of zeros with exit 0, which a team lead reads as
"no tickets this month" rather than as a typo. A team is known when the rules define it or any
ticket carries it (a team removed from the rules still has its history).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.integration.test_report_cli import WEEK, run, site  # noqa: F401 - the fixture


def test_an_unknown_team_exits_64(site: Path, capsys: pytest.CaptureFixture[str]) -> None:  # noqa: F811
    assert run(site, *WEEK, "--team", "biling") == 64
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("ticketd: --team 'biling': no such team")
    assert captured.err.count("\n") == 1


def test_a_team_known_from_tickets_or_rules_is_accepted(
    site: Path,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert run(site, *WEEK, "--team", "billing", "--format", "json") == 0  # only on tickets
    assert json.loads(capsys.readouterr().out)["summary"]["created"] > 0
    (site.parent / "rules" / "10-people.yaml").write_text(
        "agents:\n  - {email: zoe@example.com, name: Zoe, teams: [legal]}\n"
        "teams:\n  legal: {assign: none}\n"
    )
    assert run(site, *WEEK, "--team", "legal", "--format", "json") == 0  # no ticket yet
    assert json.loads(capsys.readouterr().out)["summary"]["created"] == 0
