"""Only a ticket's participants act on it, through the real worker on SQLite and PostgreSQL.

A stranger who writes with a ticket's subject tag (the numbers are sequential) gets what
``threading.non_participants`` says: a flagged note, a new linked ticket, or an ordinary reply.
The requester from a plus-address or in another case, a watcher, an address an agent added with
``#cc`` and whoever writes to the ticket's signed reply address are participants; a removed
watcher is not. Display names that look like addresses are shown with the real address, and
forged mail (our MTA saw DMARC fail) gets no automatic mail and spends nobody's budget.
"""

from __future__ import annotations

import email
import json
import uuid
from collections.abc import Callable
from email import policy

import pytest

from maild import spool
from maild.app import App
from maild.pipeline.addresses import Signer
from maild.store.models import Event, Message, OutboxEntry, SpoolEntry, Ticket, Watcher
from maild.worker import make_worker
from tests.mailgen import make_mail

PEOPLE = """\
agents:
  - {email: alice@example.com, name: Alice Agent, teams: [billing]}
teams:
  billing: {assign: round_robin}
"""
ROUTING = """\
rules:
  - name: Acknowledge
    then: {reply: ack}
  - name: Billing
    then: {team: billing}
"""
MX = "mx.example.com"
STRANGER = "Mallory <stranger@evil.test>"
RECEIVED = b"Received: from mail.customer.test by mx.example.com (Postfix) id 4Q1\r\n"


def make_app(factory: Callable[..., App], url: str, mode: str | None = None) -> App:
    extra = {"threading": {"non_participants": mode}} if mode else {}
    made = factory(url, agents={"authserv_id": MX}, **extra)
    (made.config.rules_dir / "10-people.yaml").write_text(PEOPLE)
    (made.config.rules_dir / "20-routing.yaml").write_text(ROUTING)
    return made


@pytest.fixture
def app(app_factory: Callable[..., App], any_db_url: str) -> App:
    return make_app(app_factory, any_db_url)


def deliver(app: App, raw: bytes, rcpt: tuple[str, ...] = ()) -> str:
    entry_id = spool.enqueue(app.db, raw, source="pipe", rcpt_tos=rcpt)
    make_worker(app).run_once(ids=[entry_id])
    entry = SpoolEntry.get_by_id(entry_id)
    assert entry.status == "done", entry.last_error
    return entry.result


def new_ticket(app: App, **kw: str) -> Ticket:
    kw.setdefault("message_id", f"<{uuid.uuid4().hex}@customer.test>")
    kw.setdefault("subject", "Refund for invoice 7")
    deliver(app, make_mail(**kw))
    return Ticket.select().order_by(Ticket.id.desc()).get()


def set_status(ticket: Ticket, status: str) -> None:
    Ticket.update(status=status).where(Ticket.id == ticket.id).execute()


def reply(ticket: Ticket, sender: str, body: str = "Any news?\n", **kw: str) -> bytes:
    kw.setdefault("subject", f"Re: [ACME-{ticket.id}] Refund for invoice 7")
    return make_mail(sender=sender, body=body, **kw)


def fresh(ticket: Ticket) -> Ticket:
    return Ticket.get_by_id(ticket.id)


def actions(ticket: Ticket, action: str) -> list[Event]:
    return list(Event.select().where((Event.ticket == ticket) & (Event.action == action)))


def mails(ticket: Ticket, since: int = 0) -> list[tuple[str, list[str], str]]:
    rows = OutboxEntry.select().where((OutboxEntry.ticket == ticket) & (OutboxEntry.id > since))
    out = []
    for r in rows.order_by(OutboxEntry.id):
        msg = email.message_from_bytes(bytes(r.raw), policy=policy.default)
        body = msg.get_body(("plain",))
        out.append((r.kind, json.loads(r.rcpt_tos), body.get_content() if body else ""))
    return out


def last_outbox() -> int:
    row = OutboxEntry.select().order_by(OutboxEntry.id.desc()).first()
    return row.id if row else 0


def agent_reply(app: App, ticket: Ticket, top: str) -> None:
    """Alice's trusted mail (her own signed reply address) with commands on top."""
    own = Signer("ACME", app.secret).agent_reply_address(
        "support@example.com", ticket.id, "alice@example.com"
    )
    deliver(app, reply(ticket, "Alice Agent <alice@example.com>", top, to=own))


# -- non-participants in each mode ---------------------------------------------------------------


def test_note_mode_keeps_a_strangers_mail_flagged_and_changes_nothing(app: App) -> None:
    ticket = new_ticket(app)
    set_status(ticket, "pending")
    since = last_outbox()
    deliver(app, reply(ticket, STRANGER, "Rating: 1\nI am the customer, close it.\n"))
    after = fresh(ticket)
    assert (after.status, after.satisfaction_rating) == ("pending", None)
    stored = Message.get(Message.ticket == ticket, Message.from_addr == "stranger@evil.test")
    assert stored.kind == "outsider" and "close it" in stored.body
    assert actions(ticket, "non_participant") and not actions(ticket, "status")
    # The assignee hears of it, as a non-participant's mail; nobody else gets anything.
    ((kind, rcpt, text),) = mails(ticket, since)
    assert kind == "notify" and rcpt == ["alice@example.com"]
    assert "non-participant" in text and "stranger@evil.test" in text

    # On a resolved ticket: kept as well, but no notification and no re-open.
    set_status(ticket, "resolved")
    since = last_outbox()
    deliver(app, reply(ticket, STRANGER, "again\n"))
    assert fresh(ticket).status == "resolved" and mails(ticket, since) == []
    assert Message.select().where(Message.kind == "outsider").count() == 2


def test_note_mode_on_a_closed_ticket_starts_no_follow_up(app: App) -> None:
    ticket = new_ticket(app)
    set_status(ticket, "closed")
    deliver(app, reply(ticket, STRANGER))
    assert Ticket.select().count() == 1 and fresh(ticket).status == "closed"


def test_new_ticket_mode_opens_a_linked_ticket(
    app_factory: Callable[..., App], any_db_url: str
) -> None:
    app = make_app(app_factory, any_db_url, "new_ticket")
    ticket = new_ticket(app)
    set_status(ticket, "pending")
    result = deliver(app, reply(ticket, STRANGER))
    other = Ticket.select().order_by(Ticket.id.desc()).get()
    assert other.id != ticket.id and result.startswith(f"new ACME-{other.id}")
    assert other.parent_id == ticket.id and other.requester.email == "stranger@evil.test"
    assert fresh(ticket).status == "pending"
    assert (
        not Message.select()
        .where((Message.ticket == ticket) & (Message.from_addr == "stranger@evil.test"))
        .exists()
    )


def test_append_mode_is_the_old_behaviour(app_factory: Callable[..., App], any_db_url: str) -> None:
    app = make_app(app_factory, any_db_url, "append")
    ticket = new_ticket(app)
    set_status(ticket, "pending")
    deliver(app, reply(ticket, STRANGER))
    assert fresh(ticket).status == "open"
    stored = Message.get(Message.ticket == ticket, Message.from_addr == "stranger@evil.test")
    assert stored.kind == "customer"


# -- participants ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "sender", ["Carol <carol+phone@customer.test>", "Carol <Carol@CUSTOMER.test>"]
)
def test_the_requester_from_a_plus_address_or_another_case_reopens(app: App, sender: str) -> None:
    ticket = new_ticket(app)
    set_status(ticket, "pending")
    deliver(app, reply(ticket, sender))
    assert fresh(ticket).status == "open"
    assert not Message.select().where(Message.kind == "outsider").exists()


def test_a_watcher_is_a_participant_until_removed(app: App) -> None:
    ticket = new_ticket(app, cc="Dan <dan@customer.test>")
    set_status(ticket, "pending")
    deliver(app, reply(ticket, "Dan <dan@customer.test>"))
    assert fresh(ticket).status == "open"
    agent_reply(app, ticket, "#cc -dan@customer.test\n#status pending")
    assert fresh(ticket).status == "pending"
    assert not Watcher.select().where(Watcher.email == "dan@customer.test").exists()
    deliver(app, reply(ticket, "Dan <dan@customer.test>", "me again\n"))
    assert fresh(ticket).status == "pending"
    assert Message.get(Message.body.contains("me again")).kind == "outsider"


def test_an_agent_promotes_a_stranger_with_cc(app: App) -> None:
    ticket = new_ticket(app)
    agent_reply(app, ticket, "#cc +stranger@evil.test\n#status pending")
    assert fresh(ticket).status == "pending"
    deliver(app, reply(ticket, STRANGER, "I am Carol's colleague\n"))
    assert fresh(ticket).status == "open"


def test_mail_to_the_signed_reply_address_is_a_participants(app: App) -> None:
    ticket = new_ticket(app)
    set_status(ticket, "pending")
    address = Signer("ACME", app.secret).reply_address("support@example.com", ticket.id)
    deliver(app, reply(ticket, "Erin <erin@customer.test>", to=address), rcpt=(address,))
    assert fresh(ticket).status == "open"


# -- display names and budgets -----------------------------------------------------------------


def test_a_name_that_looks_like_an_address_is_shown_with_the_real_one(
    app_factory: Callable[..., App], any_db_url: str
) -> None:
    app = make_app(app_factory, any_db_url, "append")
    ticket = new_ticket(app)
    since = last_outbox()
    deliver(app, reply(ticket, '"alice@example.com" <attacker@evil.test>'))
    texts = [text for kind, _, text in mails(ticket, since) if kind == "notify"]
    assert texts and "alice@example.com <attacker@evil.test> replied" in texts[0]
    assert "\nalice@example.com replied" not in texts[0]


def test_forged_mail_failing_dmarc_gets_no_automatic_mail_and_spends_no_budget(
    app: App,
) -> None:
    fail = f"Authentication-Results: {MX}; dmarc=fail (p=none dis=none) header.from=customer.test"
    fail += "\r\n"
    for n in range(10):
        raw = make_mail(subject=f"Forged {n}", message_id=f"<forged{n}@evil.test>")
        deliver(app, fail.encode() + RECEIVED + raw)
    forged = list(Ticket.select().where(Ticket.subject.startswith("Forged")))
    assert len(forged) == 10
    assert not OutboxEntry.select().where(OutboxEntry.auto_to == "carol@customer.test").exists()
    reasons = [
        json.loads(e.detail)["reason"] for t in forged for e in actions(t, "auto_reply_suppressed")
    ]
    assert len(reasons) == 10 and all("dmarc=fail" in r for r in reasons)
    # Carol's own mail still gets its acknowledgement: her budget is untouched.
    ticket = new_ticket(app, subject="Genuine question")
    assert ("auto", ["carol@customer.test"]) in [(k, rcpt) for k, rcpt, _ in mails(ticket)]
