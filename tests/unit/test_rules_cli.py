"""``ticketd rules check`` and ``ticketd rules explain`` through the real command line."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from maild.cli.main import main
from tests.mailgen import make_mail
from tests.unit.test_rules_conditions import TEMPLATES

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def site(tmp_path: Path) -> Path:
    """A config file, a copy of the shipped rules, and the templates they name."""
    shutil.copytree(REPO / "rules", tmp_path / "rules")
    templates = tmp_path / "templates"
    templates.mkdir()
    for name in TEMPLATES:
        (templates / f"{name}.txt.j2").write_text("{{ ticket.ref }}\n")
    (tmp_path / "config.yaml").write_text(
        "instance: {ticket_prefix: T, support_addresses: [support@example.com], data_dir: var}\n"
        "database: {url: 'sqlite:///var/t.db'}\n"
        "rules_dir: rules\ntemplates_dir: templates\n"
    )
    return tmp_path


def run(*argv: str | Path) -> int:
    return main([str(a) for a in argv])


def test_check_ok(site: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run("rules", "check", "--config", site / "config.yaml") == 0
    out = capsys.readouterr().out
    assert out == "ok: 3 files, 3 agents, 3 teams, 13 rules, 4 SLA policies\n"


def test_check_prints_every_error(site: Path, capsys: pytest.CaptureFixture[str]) -> None:
    routing = site / "rules" / "20-routing.yaml"
    text = routing.read_text().replace("team: billing\n", "team: bliling\n")
    text = text.replace("{reply: ack}", "{reply: acknowledge}")
    routing.write_text(
        text + "  - name: Bad regex\n    when: {subject: {matches: '(['}}\n    then: {tags: [x]}\n"
    )
    assert run("rules", "check", "--config", site / "config.yaml") == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.splitlines()
    assert len(lines) == 4
    assert lines[0].startswith(
        f"{routing}:33: rule 'Acknowledge new tickets': then.reply: no template 'acknowledge'"
    )
    assert lines[1].startswith(
        f"{routing}:48: rule 'Billing questions': then.team: unknown team 'bliling'"
    )
    assert lines[2].startswith(
        f"{routing}:99: rule 'Bad regex': when.subject.matches: invalid regex '(['"
    )
    assert lines[3] == "3 errors: the rules were not loaded"


def test_check_without_a_config_file(site: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run("rules", "check", "--rules-dir", site / "rules") == 0  # templates not checked
    assert capsys.readouterr().out.startswith("ok: 3 files")
    (site / "rules" / "40-extra.yaml").write_text(
        "rules:\n  - name: VIP welcome\n    then: {reply: vip_welcome}\n"
    )
    own = site / "own-templates"
    own.mkdir()
    assert run("rules", "check", "--rules-dir", site / "rules", "--templates-dir", own) == 1
    assert "no template 'vip_welcome'" in capsys.readouterr().err
    (own / "vip_welcome.txt.j2").write_text("Welcome {{ requester.name }}\n")
    # The shipped defaults fill in every other template the rules name.
    assert run("rules", "check", "--rules-dir", site / "rules", "--templates-dir", own) == 0


def write_mail(site: Path, **kw: object) -> Path:
    path = site / "message.eml"
    path.write_bytes(make_mail(**kw))  # type: ignore[arg-type]
    return path


def test_explain(site: Path, capsys: pytest.CaptureFixture[str]) -> None:
    eml = write_mail(
        site,
        subject="Invoice 42 is wrong",
        sender="Boss <boss@bigcorp.test>",
        body="Please fix the invoice.",
    )
    assert (
        run(
            "rules",
            "explain",
            "--config",
            site / "config.yaml",
            eml,
            "--at",
            "2026-11-25T10:00:00+01:00",
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "message: from boss@bigcorp.test, subject 'Invoice 42 is wrong'" in out
    assert "event:   new_ticket at 2026-11-25T10:00:00+01:00" in out
    assert (
        "MATCH  Billing questions  (20-routing.yaml:42)\n"
        "       why: subject contains 'invoice'\n"
        "       then: team=billing, tag+billing, notify=notify_new->team\n"
    ) in out
    assert (
        "no     Sales leads  (20-routing.yaml:79)\n"
        "       why: subject contains ['quote', 'pricing', 'demo']: no "
        "(subject: 'Invoice 42 is wrong')\n"
    ) in out
    assert "skip   Customer replied  (20-routing.yaml:84): on customer_reply\n" in out
    assert "  team       billing   (rule 'Billing questions')\n" in out
    assert (
        "  assignee   by team billing's strategy (round_robin)   (rule 'Billing questions')\n"
    ) in out
    assert "  priority   high   (rule 'Big customers')\n" in out
    assert "  reply      ack   (rule 'Acknowledge new tickets')\n" in out


def test_explain_stop_and_json(site: Path, capsys: pytest.CaptureFixture[str]) -> None:
    eml = write_mail(site, subject="Cheap pills", headers={"X-Spam-Flag": "YES"})
    assert run("rules", "explain", "--config", site / "config.yaml", eml, "--json") == 0
    data = json.loads(capsys.readouterr().out)
    assert data["rules"]["rules"] == 13
    assert data["actions"] == [
        {"action": "spam", "value": True, "rule": "Spam"},
        {"action": "tag_add", "value": "spam", "rule": "Spam"},
    ]
    verdicts = [t["verdict"] for t in data["trace"]]
    assert verdicts[0] == "matched" and set(verdicts[1:]) == {"not_reached"}
    assert data["trace"][0]["reason"] == "header x-spam-flag equals 'yes'"


def test_explain_a_customer_reply(site: Path, capsys: pytest.CaptureFixture[str]) -> None:
    eml = write_mail(site, subject="Re: [T-1] still broken")
    assert (
        run(
            "rules",
            "explain",
            "--config",
            site / "config.yaml",
            eml,
            "--event",
            "customer_reply",
            "--tag",
            "vip",
            "--status",
            "pending",
            "--json",
        )
        == 0
    )
    data = json.loads(capsys.readouterr().out)
    assert {
        "action": "priority",
        "value": "urgent",
        "rule": "Escalate repeated VIP follow-ups",
    } in data["actions"]
    assert data["event"] == "customer_reply"


def test_explain_errors(site: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = site / "config.yaml"
    assert run("rules", "explain", "--config", config, site / "missing.eml") == 1
    assert "cannot read" in capsys.readouterr().err
    (site / "empty.eml").write_bytes(b"")
    assert run("rules", "explain", "--config", config, site / "empty.eml") == 1
    assert "empty message" in capsys.readouterr().err
    eml = write_mail(site)
    assert run("rules", "explain", "--config", config, eml, "--at", "yesterday") == 2
    assert "--at 'yesterday'" in capsys.readouterr().err
    (site / "rules" / "40-broken.yaml").write_text("rules: [\n")
    assert run("rules", "explain", "--config", config, eml) == 1
    assert "40-broken.yaml:2: invalid YAML" in capsys.readouterr().err
