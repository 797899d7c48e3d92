"""Custom fields and statuses end to end: extracted from mail, set by rules and by #set, shown,
filtered, and bad declarations refused with file:line while the old rules keep running."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from maild import spool
from maild.app import App
from maild.routing.loader import RulesError, load_rules
from maild.routing.reload import RulesHolder
from maild.store.models import Ticket
from maild.worker import make_worker
from tests.conftest import base_config
from tests.mailgen import make_mail
from tests.servers.deskmail import agent_reply, deliver, events, last_outbox, outbox

PEOPLE = """\
agents:
  - {email: alice@example.com, name: Alice, teams: [billing]}
  - {email: lena@example.com, name: Lena, teams: [billing], role: lead}
teams:
  billing: {assign: none}
"""
FIELDS = """\
fields:
  - {name: order, type: number, extract: {from: subject, pattern: 'order #?(?P<value>[0-9]{3,8})'}}
  - {name: product, type: choice, values: [printer, scanner], required_on_form: true}
  - {name: contract, type: text, extract: {from: "header:X-Contract", pattern: '[A-Z]{2}-\\d+'}}
  - {name: due, type: date}
  - {name: vip, type: bool}
statuses:
  - {name: waiting_vendor, base: pending, label: "Waiting on vendor"}
"""
ROUTING = """\
rules:
  - name: Printers
    when: {subject: {contains: printer}}
    then: {team: billing, set: {product: printer}}
  - name: Known orders are urgent
    when: {field.order: {exists: true}, field.contract: {starts_with: de-}}
    then: {priority: urgent}
"""


@pytest.fixture
def app(app_factory: Callable[..., App], any_db_url: str, tmp_path: Path) -> App:
    made = app_factory(any_db_url)
    (tmp_path / "config.yaml").write_text(json.dumps(base_config(tmp_path, any_db_url)))
    rules = made.config.rules_dir
    (rules / "10-people.yaml").write_text(PEOPLE)
    (rules / "15-fields.yaml").write_text(FIELDS)
    (rules / "20-routing.yaml").write_text(ROUTING)
    return made


def ticketd(app: App, *args: str) -> subprocess.CompletedProcess[str]:
    config = app.config.rules_dir.parent / "config.yaml"
    return subprocess.run(
        [sys.executable, "-m", "maild.cli.main", *args, "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
    )


def new_ticket(app: App, subject: str, **kw: object) -> Ticket:
    deliver(app, make_mail(subject=subject, message_id=f"<{uuid.uuid4().hex}@c.test>", **kw))  # type: ignore[arg-type]
    return Ticket.get(Ticket.subject == subject)


def shown(app: App, ticket: Ticket) -> dict[str, object]:
    out = ticketd(app, "tickets", "show", f"ACME-{ticket.id}", "--json")
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def test_fields_extracted_from_mail_and_set_by_rules_drive_other_rules(app: App) -> None:
    ticket = new_ticket(
        app, "My printer ate order #4471", headers={"X-Contract": "contract DE-991"}
    )
    data = shown(app, ticket)
    assert data["fields"] == {"contract": "DE-991", "order": "4471", "product": "printer"}
    assert data["priority"] == "urgent"  # the second rule saw both extracted fields
    by = {e["name"]: e["actor"] for e in events(ticket, "field")}
    assert by == {"order": "extract", "contract": "extract", "product": "rule:Printers"}


def test_agent_sets_fields_by_mail_with_typed_values(app: App) -> None:
    ticket = new_ticket(app, "Scanner question")
    deliver(
        app,
        agent_reply(
            app,
            ticket,
            "#set order=0042 due=2026-12-01 vip=yes\n#note\nset",
            sender="Alice <alice@example.com>",
        ),
    )
    assert shown(app, ticket)["fields"] == {"due": "2026-12-01", "order": "42", "vip": "true"}
    out = ticketd(app, "tickets", "list", "--field", "vip=TRUE", "--json")
    assert [t["ref"] for t in json.loads(out.stdout)] == [f"ACME-{ticket.id}"]
    out = ticketd(app, "tickets", "list", "--field", "vip=false", "--json")
    assert json.loads(out.stdout) == []
    assert ticketd(app, "tickets", "list", "--field", "vip").returncode == 64


@pytest.mark.parametrize(
    ("command", "reason"),
    [
        ("#set product=toaster", "'toaster' is not one of printer, scanner"),
        ("#set order=four", "'four' is not a number"),
        ("#set colour=red", "no field 'colour'"),
        ("#set due=tomorrow", "not a date"),
    ],
)
def test_a_bad_set_gets_command_error_and_changes_nothing(
    app: App, command: str, reason: str
) -> None:
    ticket = new_ticket(app, "Scanner question")
    since = last_outbox()
    deliver(
        app, agent_reply(app, ticket, f"{command}\n\nHello!", sender="Alice <alice@example.com>")
    )
    assert shown(app, ticket)["fields"] == {}
    ((_kind, rcpt, mail),) = outbox(ticket, since)
    assert rcpt == ["alice@example.com"]
    assert reason in mail.get_content()
    rejected = events(ticket, "commands_rejected")
    assert reason in json.dumps(rejected)


def test_custom_status_maps_to_its_base_and_customers_see_the_label(app: App) -> None:
    ticket = new_ticket(app, "Scanner question")
    deliver(
        app,
        agent_reply(
            app,
            ticket,
            "#status waiting_vendor\n\nWe asked the vendor.",
            sender="Alice <alice@example.com>",
        ),
    )
    data = shown(app, ticket)
    assert (data["status"], data["substatus"]) == ("pending", "waiting_vendor")
    assert events(ticket, "substatus")[0]["base"] == "pending"
    # The customer replies: the base goes back to open, and the custom status ends with it.
    deliver(
        app,
        make_mail(subject=f"Re: [ACME-{ticket.id}] Scanner question", body="any news?"),
    )
    data = shown(app, ticket)
    assert (data["status"], data["substatus"]) == ("open", None)


def test_bad_declarations_name_file_and_line_and_keep_the_old_rules(
    app: App, tmp_path: Path
) -> None:
    folder = app.config.rules_dir
    holder = RulesHolder.open(folder, app.config.templates_dir)  # as the daemon holds them
    cases = {
        "  - {name: size, type: shoe}\n": "type: 'shoe' is not a field type",
        "  - {name: ref, extract: {from: subject, pattern: '(unclosed'}}\n": "invalid regex",
        "  - {name: kind, type: choice, values: []}\n": "values: a list of choices",
    }
    for line, words in cases.items():
        (folder / "16-bad.yaml").write_text("fields:\n" + line)
        with pytest.raises(RulesError) as info:
            load_rules(folder)
        (error,) = info.value.errors
        assert error.startswith(f"{folder / '16-bad.yaml'}:2: ") and words in error
    for text, words in {
        "statuses:\n  - {name: parked, base: snoozed}\n": "base: 'snoozed' is not one of new, open",
        "statuses:\n  - {name: waiting_vendor, base: open}\n": "defined twice",
        "rules:\n  - {name: X, when: {field.colour: {exists: true}}, then: {tags: [x]}}\n": "no field 'colour'",
        "rules:\n  - {name: X, then: {set: {order: many}}}\n": "'many' is not a number",
        "rules:\n  - {name: X, when: {field.product: {equals: toaster}}, then: {tags: [x]}}\n": "'toaster' is not one of",
    }.items():
        (folder / "16-bad.yaml").write_text(text)
        with pytest.raises(RulesError) as info:
            load_rules(folder)
        assert words in info.value.errors[0], info.value.errors
    out = ticketd(app, "rules", "check")
    assert out.returncode != 0 and "16-bad.yaml:2" in out.stderr
    # The daemon keeps the rules that were running: the printer rule still applies.
    assert not holder.maybe_reload(force=True)
    entry_id = spool.enqueue(
        app.db, make_mail(subject="printer broken"), source="pipe", rcpt_tos=()
    )
    make_worker(app, holder).run_once(ids=[entry_id])
    ticket = Ticket.get(Ticket.subject == "printer broken")
    assert shown(app, ticket)["fields"] == {"product": "printer"}


def test_report_groups_by_a_choice_field(app: App) -> None:
    for subject in ("printer jam", "printer smoke", "scanner stuck"):
        new_ticket(app, subject)
    out = ticketd(app, "report", "--by", "field.product", "--format", "json")
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["grouped_by"] == "field.product"
    assert {g["name"]: g["created"] for g in data["teams"]} == {"printer": 2, None: 1}
    bad = ticketd(app, "report", "--by", "field.colour")
    assert bad.returncode == 64 and "choose one of team, field.contract" in bad.stderr


def test_removing_a_field_keeps_its_values_and_rules_check_warns(app: App) -> None:
    ticket = new_ticket(app, "My printer ate order #4471")
    fields = FIELDS.replace("  - {name: order, type: number,", "  - {name: order_no, type: number,")
    (app.config.rules_dir / "15-fields.yaml").write_text(fields)
    (app.config.rules_dir / "20-routing.yaml").write_text(
        ROUTING.replace("field.order", "field.order_no")
    )
    assert shown(app, ticket)["fields"]["order"] == "4471"  # still readable
    out = ticketd(app, "rules", "check")
    assert out.returncode == 0, out.stderr
    assert "1 ticket(s) have values for field 'order', which no field declares" in out.stderr
