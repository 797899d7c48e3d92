"""#merge, #link/#unlink, #snooze and #macro by mail, through the worker, with their bad input."""

from __future__ import annotations

import datetime as dt
import json
import shutil
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from maild.app import App
from maild.clock import FixedClock
from maild.routing.loader import load_rules
from maild.sla.sweep import sweep
from maild.store.models import Message, Ticket, TicketSnooze, TicketTag
from maild.store.tickets import ticket_detail
from tests.mailgen import make_mail
from tests.servers.deskmail import agent_reply, deliver, events, last_outbox, outbox

PEOPLE = """\
agents:
  - {email: alice@example.com, name: Alice, teams: [billing]}
  - {email: lena@example.com, name: Lena, teams: [billing], role: lead}
teams:
  billing: {assign: none}
"""
ROUTING = """\
rules:
  - name: Billing
    when: {subject: {contains: invoice}}
    then: {team: billing}
"""
ALICE, LENA = "Alice <alice@example.com>", "Lena <lena@example.com>"
NOW = dt.datetime(2026, 12, 1, 9, 0)
SHIPPED = Path(__file__).resolve().parents[2] / "templates"


@pytest.fixture
def app(app_factory: Callable[..., App], any_db_url: str, tmp_path: Path) -> App:
    # A private copy of the shipped templates: the tests write macros of their own.
    templates = tmp_path / "templates"
    shutil.copytree(SHIPPED, templates)
    made = app_factory(any_db_url, templates_dir=str(templates))
    made.clock = FixedClock(NOW)
    (made.config.rules_dir / "10-people.yaml").write_text(PEOPLE)
    (made.config.rules_dir / "20-routing.yaml").write_text(ROUTING)
    return made


def ticket_from(app: App, sender: str = "carol@customer.test", **kw: str) -> Ticket:
    subject = f"invoice {uuid.uuid4().hex[:6]}"
    kw.setdefault("message_id", f"<{uuid.uuid4().hex}@customer.test>")
    deliver(app, make_mail(sender=sender, subject=subject, **kw))
    return Ticket.get(Ticket.subject == subject)


def fresh(ticket: Ticket) -> Ticket:
    return Ticket.get_by_id(ticket.id)


def error_text(ticket: Ticket, since: int) -> str:
    mails = [m for _k, rcpt, m in outbox(ticket, since) if rcpt[0].endswith("@example.com")]
    assert mails, "no command_error mail"
    return mails[-1].get_content()


# -- merge ---------------------------------------------------------------------------------------


def test_merge_moves_everything_and_the_old_reference_threads_into_the_target(app: App) -> None:
    target = ticket_from(app, "carol@customer.test")
    dup_id = f"<{uuid.uuid4().hex}@other.test>"
    dup = ticket_from(app, "dan@other.test", message_id=dup_id, cc="erin@other.test")
    TicketTag.create(ticket=dup, tag="vip")
    since = last_outbox()
    deliver(app, agent_reply(app, dup, f"#merge ACME-{target.id}", sender=LENA))
    merged = fresh(dup)
    assert merged.status == "closed"
    assert Message.select().where(Message.ticket == dup).count() == 0
    kept = ticket_detail(fresh(target), "ACME")
    assert dup_id.strip("<>") in {m["message_id"] for m in kept["messages"]}
    assert "vip" in kept["tags"]
    assert {"dan@other.test", "erin@other.test"} <= set(kept["watchers"])
    assert kept["merged_from"] == [f"ACME-{dup.id}"]
    assert ticket_detail(merged, "ACME")["merged_into"] == f"ACME-{target.id}"
    (told,) = [m for _k, rcpt, m in outbox(target, since) if rcpt == ["dan@other.test"]]
    assert f"ACME-{dup.id}" in told.get_content() and f"[ACME-{target.id}]" in told["Subject"]
    (event,) = events(target, "merged")
    assert event["actor"] == "lena@example.com" and event["source"] == dup.id
    # The old subject tag and the old Message-ID both thread into the target now.
    deliver(app, make_mail(sender="dan@other.test", subject=f"Re: [ACME-{dup.id}] still?"))
    deliver(
        app,
        make_mail(sender="dan@other.test", subject="Re: no tag", in_reply_to=dup_id),
    )
    last_two = Message.select().order_by(Message.id.desc()).limit(2)
    assert {m.ticket_id for m in last_two} == {target.id}


def test_merge_into_itself_a_missing_a_closed_ticket_and_a_loop_is_refused(app: App) -> None:
    a, b, closed = ticket_from(app), ticket_from(app), ticket_from(app)
    Ticket.update(status="closed").where(Ticket.id == closed.id).execute()
    cases = [
        (a, f"#merge ACME-{a.id}", "cannot be merged into itself"),
        (a, "#merge ACME-99999", "ticket ACME-99999 does not exist"),
        (a, f"#merge ACME-{closed.id}", "is closed"),
        (a, "#merge OTHER-1", "is not a ticket reference"),
    ]
    for ticket, line, reason in cases:
        since = last_outbox()
        deliver(app, agent_reply(app, ticket, line, sender=LENA))
        assert reason in error_text(ticket, since), line
        assert fresh(ticket).status != "closed"
    deliver(app, agent_reply(app, a, f"#merge ACME-{b.id}", sender=LENA))
    assert fresh(a).status == "closed"
    since = last_outbox()
    deliver(app, agent_reply(app, b, f"#merge ACME-{a.id}", sender=LENA))
    assert "loop" in error_text(b, since)
    assert fresh(b).status != "closed"


def test_merge_needs_role_lead(app: App) -> None:
    a, b = ticket_from(app), ticket_from(app)
    since = last_outbox()
    deliver(app, agent_reply(app, a, f"#merge ACME-{b.id}", sender=ALICE))
    assert "#merge needs role lead" in error_text(a, since)
    assert fresh(a).status != "closed"


# -- link ----------------------------------------------------------------------------------------


def test_link_shows_on_both_tickets_and_unlink_removes_it(app: App) -> None:
    a, b = ticket_from(app), ticket_from(app)
    deliver(app, agent_reply(app, a, f"#link ACME-{b.id}\n#note\nrelated", sender=ALICE))
    assert ticket_detail(fresh(a), "ACME")["links"] == [f"ACME-{b.id}"]
    assert ticket_detail(fresh(b), "ACME")["links"] == [f"ACME-{a.id}"]
    assert events(b, "linked")[0]["other"] == a.id
    deliver(app, agent_reply(app, b, f"#unlink ACME-{a.id}\n#note\nno", sender=ALICE))
    assert ticket_detail(fresh(a), "ACME")["links"] == []
    since = last_outbox()
    deliver(app, agent_reply(app, b, f"#unlink ACME-{a.id}\n#note\nagain", sender=ALICE))
    assert "is not linked to this ticket" in error_text(b, since)
    since = last_outbox()
    deliver(app, agent_reply(app, a, "#link ACME-424242\n#note\nx", sender=ALICE))
    assert "does not exist" in error_text(a, since)


# -- snooze --------------------------------------------------------------------------------------


def test_snooze_pends_until_the_time_and_the_sweep_opens_it(app: App) -> None:
    ticket = ticket_from(app)
    deliver(app, agent_reply(app, ticket, "#snooze 3d\n#note\nback on Friday", sender=ALICE))
    assert fresh(ticket).status == "pending"
    row = TicketSnooze.get(TicketSnooze.ticket == ticket)
    assert row.until == NOW + dt.timedelta(days=3)
    assert ticket_detail(fresh(ticket), "ACME")["snoozed_until"].startswith("2026-12-04T09:00")
    rules = load_rules(app.config.rules_dir)
    assert not [line for line in sweep(app, rules, NOW + dt.timedelta(days=2)) if "opened" in line]
    assert fresh(ticket).status == "pending"
    (line,) = sweep(app, rules, NOW + dt.timedelta(days=3, minutes=1))
    assert line == f"ACME-{ticket.id}: opened: snoozed until 2026-12-04T09:00:00+00:00"
    assert fresh(ticket).status == "open"
    assert not TicketSnooze.select().where(TicketSnooze.ticket == ticket).exists()


def test_a_customer_reply_wakes_a_snoozed_ticket_early(app: App) -> None:
    ticket = ticket_from(app)
    deliver(app, agent_reply(app, ticket, "#snooze 2026-12-10 09:00\n#note\nlater", sender=ALICE))
    assert fresh(ticket).status == "pending"
    deliver(app, make_mail(subject=f"Re: [ACME-{ticket.id}] {ticket.subject}", body="news"))
    assert fresh(ticket).status == "open"
    (ended,) = events(ticket, "snooze_ended")
    assert ended["reason"] == "customer replied"


@pytest.mark.parametrize(
    ("when", "reason"),
    [
        ("2026-11-30 09:00", "is in the past"),
        ("400d", "more than 365 days ahead"),
        ("2028-01-01", "more than 365 days ahead"),
        ("someday", "is not a time"),
    ],
)
def test_snooze_in_the_past_or_beyond_a_year_is_refused(app: App, when: str, reason: str) -> None:
    ticket = ticket_from(app)
    since = last_outbox()
    deliver(app, agent_reply(app, ticket, f"#snooze {when}\n#note\nx", sender=ALICE))
    assert reason in error_text(ticket, since)
    assert fresh(ticket).status != "pending"


# -- macros --------------------------------------------------------------------------------------


def write_macro(app: App, name: str, text: str) -> None:
    folder = Path(app.config.templates_dir) / "macros"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.j2").write_text(text)


def test_a_macro_answers_the_customer_and_sets_its_fields(app: App) -> None:
    write_macro(
        app,
        "need_info",
        "---\nstatus: pending\npriority: high\ntags: [+waiting]\n---\n"
        "Hello {{ requester.email }}, please send a screenshot of {{ ticket.ref }}.\n",
    )
    ticket = ticket_from(app)
    since = last_outbox()
    deliver(app, agent_reply(app, ticket, "#macro need_info\n\nThanks for writing.", sender=ALICE))
    now = fresh(ticket)
    assert (now.status, now.priority) == ("pending", "high")
    assert TicketTag.select().where((TicketTag.ticket == ticket) & (TicketTag.tag == "waiting"))
    ((_kind, rcpt, mail),) = [(k, r, m) for k, r, m in outbox(ticket, since) if k == "agent"]
    text = mail.get_content()
    assert rcpt == ["carol@customer.test"]
    assert "Thanks for writing." in text
    assert f"please send a screenshot of ACME-{ticket.id}" in text


@pytest.mark.parametrize(
    ("macro", "reason"),
    [
        (None, "no macro 'missing'"),
        ("Hello {{ nosuchvariable }}\n", "failed to render"),
        ("{% if %}\n", "failed to render"),
        ("---\npriority: extreme\n---\nHi\n", "unknown priority 'extreme'"),
        ("---\nteam: nowhere\n---\nHi\n", "no team 'nowhere'"),
        ("---\ncolour: red\n---\nHi\n", "unknown front matter key 'colour'"),
    ],
)
def test_a_bad_macro_sends_nothing_and_tells_the_agent(
    app: App, macro: str | None, reason: str
) -> None:
    if macro is not None:
        write_macro(app, "missing", macro)
    ticket = ticket_from(app)
    before = fresh(ticket)
    since = last_outbox()
    deliver(app, agent_reply(app, ticket, "#macro missing", sender=ALICE))
    sent = outbox(ticket, since)
    assert [rcpt for _k, rcpt, _m in sent] == [["alice@example.com"]]  # the error, nothing else
    assert reason in error_text(ticket, since)
    after = fresh(ticket)
    assert (after.status, after.priority, after.team) == (
        before.status,
        before.priority,
        before.team,
    )
    assert events(ticket, "commands_rejected")


def test_the_shipped_macros_render(app: App) -> None:
    names = sorted(p.stem for p in (SHIPPED / "macros").glob("*.j2"))
    assert len(names) >= 2
    for name in names:
        ticket = ticket_from(app)
        since = last_outbox()
        deliver(app, agent_reply(app, ticket, f"#macro {name}", sender=LENA))
        kinds = [k for k, _r, _m in outbox(ticket, since)]
        assert "agent" in kinds, (name, json.dumps(events(ticket, "commands_rejected")))
