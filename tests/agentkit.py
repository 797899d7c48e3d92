"""Helpers for the tests of agents working by mail: the people and rules, delivering through the
real worker, and building an agent's reply the way Gmail quotes it."""

from __future__ import annotations

import email
import json
import uuid
from collections.abc import Callable
from email import policy
from email.message import EmailMessage
from email.utils import parseaddr

from maild import spool
from maild.app import App
from maild.pipeline.addresses import Signer
from maild.pipeline.quotes import REPLY_MARKER
from maild.store.models import Event, OutboxEntry, SpoolEntry, Ticket
from maild.worker import make_worker
from tests.mailgen import make_mail

PEOPLE = """\
agents:
  - {email: alice@example.com, name: Alice Agent, teams: [billing], role: lead}
  - {email: bob@example.com, name: Bob, teams: [billing, tech], role: lead}
  - {email: dave@example.com, name: Dave, teams: [tech]}
teams:
  billing: {assign: round_robin}
  tech: {assign: none}
"""
ROUTING = """\
rules:
  - name: Acknowledge
    then: {reply: ack}
  - name: Billing
    when: {subject: {contains: [invoice, refund]}}
    then: {team: billing, notify: {template: notify_new, to: [team]}}
  - name: Tech
    when: {subject: {contains: [crash]}}
    then: {team: tech}
  - name: Customer replied
    on: customer_reply
    then: {notify: {template: notify_reply, to: [assignee]}}
  - name: Answered tickets wait for the customer
    on: agent_reply
    when: {status: {equals: [new, open]}}
    then: {status: pending}
"""
MX = "mx.example.com"
CAROL = "carol@customer.test"
ALICE = "Alice Agent <alice@example.com>"
ALICE_ADDR = "alice@example.com"


def agents_app(app_factory: Callable[..., App], db_url: str) -> App:
    """An App on ``db_url`` with the agents and rules above and our MTA's authserv-id."""
    made = app_factory(db_url, agents={"authserv_id": MX})
    (made.config.rules_dir / "10-people.yaml").write_text(PEOPLE)
    (made.config.rules_dir / "20-routing.yaml").write_text(ROUTING)
    return made


def deliver(app: App, raw: bytes, rcpt: tuple[str, ...] = ()) -> SpoolEntry:
    entry_id = spool.enqueue(app.db, raw, source="pipe", rcpt_tos=rcpt)
    make_worker(app).run_once(ids=[entry_id])
    entry = SpoolEntry.get_by_id(entry_id)
    assert entry.status == "done", entry.last_error
    return entry


def mails(ticket: Ticket, since: int = 0) -> list[tuple[str, list[str], EmailMessage]]:
    rows = (
        OutboxEntry.select()
        .where((OutboxEntry.ticket == ticket) & (OutboxEntry.id > since))
        .order_by(OutboxEntry.id)
    )
    return [
        (
            r.kind,
            json.loads(r.rcpt_tos),
            email.message_from_bytes(bytes(r.raw), policy=policy.default),
        )
        for r in rows
    ]


def last_outbox() -> int:
    row = OutboxEntry.select().order_by(OutboxEntry.id.desc()).first()
    return row.id if row else 0


def signed(app: App, ticket: Ticket, agent: str | None = None) -> str:
    """The ticket's signed reply address (what customers see), or ``agent``'s own."""
    signer = Signer(app.config.prefix, app.secret)
    if agent is None:
        return signer.reply_address("support@example.com", ticket.id)
    return signer.agent_reply_address("support@example.com", ticket.id, agent)


def actions(ticket: Ticket, action: str) -> list[Event]:
    return list(
        Event.select().where((Event.ticket == ticket) & (Event.action == action)).order_by(Event.id)
    )


def new_ticket(app: App, subject: str = "Refund for invoice 7", **kw: str) -> Ticket:
    kw.setdefault("message_id", f"<{uuid.uuid4().hex}@customer.test>")
    deliver(app, make_mail(subject=subject, **kw))
    return Ticket.get(Ticket.subject == subject)


def gmail_reply(
    app: App, ticket: Ticket, top: str, *, sender: str = ALICE, to: str | None = None, **kw: str
) -> bytes:
    """An agent's Gmail-style reply to the notification about ``ticket``, ``top`` typed above."""
    notification = f"{REPLY_MARKER}\n\nNew ticket ACME-{ticket.id}\n\nHello, my printer is on fire."
    quote = "\n".join(f"> {line}" for line in notification.splitlines())
    own = signed(app, ticket, parseaddr(sender)[1])  # the Reply-To of that agent's notification
    body = f"{top}\n\nOn Mon, Nov 2, 2026 at 10:30 AM Test Support <{own}> wrote:\n{quote}\n"
    return make_mail(
        sender=sender,
        to=to or own,
        subject=f"Re: [ACME-{ticket.id}] {ticket.subject}",
        body=body,
        **kw,
    )


def fresh(ticket: Ticket) -> Ticket:
    return Ticket.get_by_id(ticket.id)
