"""Roles that take effect on agents' mail, and @mentions in internal notes, through the worker."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable

import pytest

from maild.app import App
from maild.store.models import Message, Ticket, Watcher
from tests.mailgen import make_mail
from tests.servers.deskmail import agent_reply, deliver, events, last_outbox, outbox

PEOPLE = """\
agents:
  - {email: alice@example.com, name: Alice, teams: [billing]}
  - {email: lena@example.com, name: Lena, teams: [billing], role: lead}
  - {email: tom@example.com, name: Tom, teams: [tech]}
  - {email: root@example.com, name: Root, teams: [], role: admin}
teams:
  billing: {assign: none}
  tech: {assign: none}
"""
ROUTING = """\
rules:
  - name: Billing
    when: {subject: {contains: invoice}}
    then: {team: billing}
"""
ALICE, LENA, TOM, ROOT = (
    "Alice <alice@example.com>",
    "Lena <lena@example.com>",
    "Tom <tom@example.com>",
    "Root <root@example.com>",
)


@pytest.fixture
def app(app_factory: Callable[..., App], any_db_url: str) -> App:
    made = app_factory(any_db_url)
    (made.config.rules_dir / "10-people.yaml").write_text(PEOPLE)
    (made.config.rules_dir / "20-routing.yaml").write_text(ROUTING)
    return made


def billing_ticket(app: App) -> Ticket:
    subject = f"invoice {uuid.uuid4().hex[:6]}"
    deliver(app, make_mail(subject=subject))
    ticket = Ticket.get(Ticket.subject == subject)
    assert ticket.team == "billing"
    return ticket


def last_in(ticket: Ticket) -> Message:
    return (
        Message.select()
        .where((Message.ticket == ticket) & (Message.direction == "in"))
        .order_by(Message.id.desc())
        .first()
    )


def test_an_agent_changes_its_own_teams_tickets_and_only_notes_elsewhere(app: App) -> None:
    ticket = billing_ticket(app)
    deliver(app, agent_reply(app, ticket, "#priority high\n#note\nmine", sender=ALICE))
    assert Ticket.get_by_id(ticket.id).priority == "high"
    since = last_outbox()
    deliver(app, agent_reply(app, ticket, "#priority low\n\nHello from tech", sender=TOM))
    fresh = Ticket.get_by_id(ticket.id)
    assert fresh.priority == "high"  # nothing of the mail applied
    stored = last_in(ticket)
    assert stored.kind == "note" and "Hello from tech" in stored.body  # kept, as a note
    ((_kind, rcpt, mail),) = outbox(ticket, since)  # only the error, nothing to the customer
    assert rcpt == ["tom@example.com"]
    text = mail.get_content()
    assert "#priority on a ticket of team billing needs a member of that team or role admin" in text
    (refused,) = events(ticket, "command_refused")
    assert refused["actor"] == "tom@example.com" and refused["role"] == "agent"
    assert {r["needs_role"] for r in refused["refused"]} == {"admin"}  # type: ignore[union-attr]
    # A plain note on another team's ticket is fine.
    deliver(app, agent_reply(app, ticket, "#note\nseen it, Tom", sender=TOM))
    assert last_in(ticket).kind == "note" and len(events(ticket, "command_refused")) == 1


def test_assigning_to_someone_else_needs_a_lead(app: App) -> None:
    ticket = billing_ticket(app)
    since = last_outbox()
    deliver(app, agent_reply(app, ticket, "#assign Lena\n#note\ntake it", sender=ALICE))
    assert Ticket.get_by_id(ticket.id).assignee is None
    mail = next(m for _k, r, m in outbox(ticket, since) if r == ["alice@example.com"])
    assert "assigning to someone else needs role lead (you are agent)" in mail.get_content()
    deliver(app, agent_reply(app, ticket, "#assign me\n#note\nmine", sender=ALICE))
    assert Ticket.get_by_id(ticket.id).assignee == "alice@example.com"
    deliver(
        app, agent_reply(app, ticket, "#assign Alice Agent\n#assign Lena\n#note\nx", sender=LENA)
    )
    deliver(app, agent_reply(app, ticket, "#assign Lena\n#note\nmine now", sender=LENA))
    assert Ticket.get_by_id(ticket.id).assignee == "lena@example.com"


def test_an_admin_changes_any_ticket(app: App) -> None:
    ticket = billing_ticket(app)
    deliver(app, agent_reply(app, ticket, "#team tech\n#assign Tom\n#note\nmoved", sender=ROOT))
    fresh = Ticket.get_by_id(ticket.id)
    assert (fresh.team, fresh.assignee) == ("tech", "tom@example.com")


def test_no_mail_raises_a_role(app: App) -> None:
    ticket = billing_ticket(app)
    since = last_outbox()
    deliver(app, agent_reply(app, ticket, "#role admin\n#team tech\n#note\nplease", sender=ALICE))
    assert Ticket.get_by_id(ticket.id).team == "billing"
    assert any("unknown command #role" in m.get_content() for _k, _r, m in outbox(ticket, since))


def test_a_mention_notifies_the_agent_and_makes_them_a_watcher(app: App) -> None:
    ticket = billing_ticket(app)
    since = last_outbox()
    deliver(
        app,
        agent_reply(
            app,
            ticket,
            "#note\n@lena and @tom@example.com, can you look? (mail bob@x.test)",
            sender=ALICE,
        ),
    )
    sent = outbox(ticket, since)
    assert sorted(r[0] for _k, r, _m in sent) == ["lena@example.com", "tom@example.com"]
    for _kind, rcpt, mail in sent:
        text = mail.get_content()
        assert "Alice mentioned you" in text and "can you look?" in text
        reply_to = mail["Reply-To"].addresses[0].addr_spec.lower()
        assert reply_to.startswith(f"support+acme-{ticket.id}.") and rcpt[0] not in (
            "carol@customer.test",
        )
    assert {w.email for w in ticket.watchers} == {"lena@example.com", "tom@example.com"}
    assert events(ticket, "mentioned")[0]["agents"] == ["lena@example.com", "tom@example.com"]
    assert "carol@customer.test" not in json.dumps([r for _k, r, _m in sent])


@pytest.mark.parametrize(
    ("note", "reason"),
    [
        ("@nobody please", "no agent is called 'nobody'"),
        ("@carol@customer.test look", "carol@customer.test is not an agent"),
    ],
)
def test_a_bad_mention_gets_command_error_and_notifies_nobody(
    app: App, note: str, reason: str
) -> None:
    ticket = billing_ticket(app)
    since = last_outbox()
    deliver(app, agent_reply(app, ticket, f"#note\n{note}", sender=ALICE))
    ((_kind, rcpt, mail),) = outbox(ticket, since)
    assert rcpt == ["alice@example.com"] and reason in mail.get_content()
    assert not list(ticket.watchers.where(Watcher.email != "carol@customer.test"))
    assert last_in(ticket).kind == "note"
