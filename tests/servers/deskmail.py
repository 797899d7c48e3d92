"""Helpers for tests of agents' mail through the worker: deliver, read the outbox, reply as an agent."""

from __future__ import annotations

import email
import json
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


def deliver(app: App, raw: bytes) -> SpoolEntry:
    """Spool ``raw`` and run the worker over it, as ``ticketd inject`` does."""
    entry_id = spool.enqueue(app.db, raw, source="pipe", rcpt_tos=())
    make_worker(app).run_once(ids=[entry_id])
    entry = SpoolEntry.get_by_id(entry_id)
    assert entry.status == "done", entry.last_error
    return entry


def outbox(ticket: Ticket, since: int = 0) -> list[tuple[str, list[str], EmailMessage]]:
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


def events(ticket: Ticket, action: str) -> list[dict[str, object]]:
    rows = (
        Event.select().where((Event.ticket == ticket) & (Event.action == action)).order_by(Event.id)
    )
    return [{"actor": e.actor, **json.loads(e.detail)} for e in rows]


def agent_reply(app: App, ticket: Ticket, top: str, *, sender: str) -> bytes:
    """An agent's reply to their notification about ``ticket`` (to their signed address)."""
    signer = Signer(app.config.prefix, app.secret)
    own = signer.agent_reply_address("support@example.com", ticket.id, parseaddr(sender)[1])
    quote = f"> {REPLY_MARKER}\n>\n> New ticket {app.config.prefix}-{ticket.id}"
    return make_mail(
        sender=sender,
        to=own,
        subject=f"Re: [{app.config.prefix}-{ticket.id}] {ticket.subject}",
        body=f"{top}\n\nOn Mon, Nov 2, 2026 at 10:30 AM Test Support <{own}> wrote:\n{quote}\n",
    )
