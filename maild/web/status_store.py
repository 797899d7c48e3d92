"""What the requester status page reads and changes in the store (blocking; on the DB pool).

The public thread is the customers' messages and the agents' public answers: internal notes,
robot mail, automatic and agent-only mail (notifications, escalations) are left out, and no
address is ever shown, only names, "You" for the viewer and "Support" for an agent without one.
Status changes go through :func:`maild.sla.lifecycle.set_status`, so SLA clocks, events and the
survey follow as for any other change.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from maild.app import App
from maild.clock import iso
from maild.notify.compose import ComposeError, queue_mail
from maild.notify.templates import Renderer
from maild.pipeline.message import Address
from maild.sla import lifecycle
from maild.store.db import is_sqlite, write_tx
from maild.store.models import Contact, Message, Ticket, Watcher
from maild.web.links import viewer_of

MAX_THREAD = 200  # the newest messages shown
MAX_LOOKUP_TICKETS = 20


@dataclass(frozen=True)
class Viewer:
    number: int
    email: str
    name: str


def open_view(app: App, number: int, token: str) -> tuple[Viewer, dict[str, Any]] | None:
    """The page's values for the person the token names, or None (the page then says 403)."""
    found = viewer_of(app, number, token)
    if found is None:
        return None
    ticket, email, name = found
    rows = (
        Message.select()
        .where(
            (Message.ticket == ticket)
            & (Message.direction == "in")
            & (Message.kind.in_(("customer", "agent")))
        )
        .order_by(Message.created_at.desc(), Message.id.desc())
        .limit(MAX_THREAD)
    )
    thread = []
    for row in reversed(list(rows)):
        if row.kind == "agent":
            who = row.from_name or "Support"
        elif row.from_addr.lower() == email:
            who = "You"
        else:
            who = row.from_name or "Another participant"
        thread.append(
            {"who": who, "agent": row.kind == "agent", "at": iso(row.created_at), "body": row.body}
        )
    status = ticket.status
    custom = next(iter(ticket.substatus_rows), None)  # a custom status: its label, for customers
    values = {
        "ref": f"{app.config.prefix}-{ticket.id}",
        "subject": ticket.subject,
        "ticket_status": custom.label if custom is not None else status,
        "priority": ticket.priority,
        "thread": thread,
        "can_solve": status in ("new", "open", "pending"),
        "can_reopen": status == "resolved",
        "closed": status == "closed",
        "support_address": ticket.support_address or app.config.support_addresses[0],
    }
    return Viewer(ticket.id, email, name), values


def change_status(app: App, viewer: Viewer, status: str) -> bool:
    """Mark solved (``resolved``) or re-open (``open``) as the viewer; False if not allowed now."""
    now = app.clock.now()
    allowed = {"resolved": ("new", "open", "pending"), "open": ("resolved",)}[status]
    with write_tx(app.db):
        query = Ticket.select().where(Ticket.id == viewer.number)
        if not is_sqlite(app.db):
            query = query.for_update("FOR NO KEY UPDATE")  # type: ignore[arg-type]
        ticket = query.get()
        if ticket.status not in allowed:
            return False
        reason = (
            "marked solved on the status page"
            if status == "resolved"
            else "re-opened on the status page"
        )
        return lifecycle.set_status(
            app, None, ticket, status, actor=viewer.email, at=now, reason=reason
        )


def mail_links(app: App, renderer: Renderer, email: str) -> int:
    """Queue a ``status_link`` mail to ``email`` for each of its open tickets; how many."""
    now = app.clock.now()
    sent = 0
    with write_tx(app.db):
        contact = Contact.get_or_none(Contact.email == email)
        watched = Watcher.select(Watcher.ticket).where(Watcher.email == email)
        condition = Ticket.id.in_(watched)
        if contact is not None:
            condition |= Ticket.requester == contact
        tickets = (
            Ticket.select()
            .where(condition & (Ticket.status != "closed") & (Ticket.spam == False))  # noqa: E712
            .order_by(Ticket.updated_at.desc())
            .limit(MAX_LOOKUP_TICKETS)
        )
        for ticket in tickets:
            try:
                with app.db.atomic():
                    queue_mail(
                        app,
                        renderer,
                        ticket,
                        template="status_link",
                        to=[Address(email, contact.name if contact else "")],
                        now=now,
                        kind="auto",
                        automatic=False,
                        generated=True,
                        actor=email,
                    )
                sent += 1
            except ComposeError:
                continue
    return sent
