"""Writing and reading tickets. Writes run inside the caller's transaction (one per message)."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from peewee import Database

from maild.clock import iso
from maild.errors import NotFoundError
from maild.store.attachments import store_blob
from maild.store.db import is_sqlite
from maild.store.models import (
    Attachment,
    Contact,
    Event,
    Message,
    Ticket,
    TicketTag,
    Watcher,
    WebhookPending,
)

# Audit actions that outside systems may hear of (maild.webhooks.events maps them to events).
WEBHOOK_ACTIONS = frozenset(
    {
        "created",
        "message",
        "answered",
        "agent_note",
        "status",
        "priority",
        "team",
        "assignee",
        "tag_added",
        "tag_removed",
        "escalation",
        "satisfaction",
    }
)

STATUSES = ("new", "open", "pending", "resolved", "closed")
PRIORITIES = ("low", "normal", "high", "urgent")

if TYPE_CHECKING:  # annotations only: a read command need not build the mail values
    from maild.pipeline.message import Address, AttachmentPart


def upsert_contact(address: Address) -> Contact:
    contact = Contact.get_or_none(Contact.email == address.email)
    if contact is None:
        Contact.insert(email=address.email, name=address.name).on_conflict_ignore().execute()
        contact = Contact.get(Contact.email == address.email)
    elif address.name and not contact.name:
        contact.name = address.name
        contact.save()
    return contact


def locked_ticket(db: Database, number: int) -> Ticket:
    """Ticket ``number``, on PostgreSQL with its row locked until the commit: two changes of one
    ticket (two agents answering at once, an admin's ``tickets set`` beside a customer's reply)
    then apply one after the other and neither overwrites the other's. SQLite's write
    transaction serialises them already. DoesNotExist when there is no such ticket."""
    query = Ticket.select().where(Ticket.id == number)
    if not is_sqlite(db):
        # FK inserts (KEY SHARE) still pass. peewee takes the clause as a string; its stub
        # only allows a bool.
        query = query.for_update("FOR NO KEY UPDATE")  # type: ignore[arg-type]
    return query.get()


def add_event(
    ticket: Ticket,
    action: str,
    *,
    actor: str,
    at: dt.datetime,
    message: Message | None = None,
    **detail: Any,
) -> Event:
    """Append to the audit trail (rows are never updated or deleted by ticketd).

    An action in :data:`WEBHOOK_ACTIONS` also leaves a ``WebhookPending`` row in the same
    transaction, so no event that webhooks report is lost to a crash (maild.webhooks.queue).
    """
    event = Event.create(
        ticket=ticket,
        action=action,
        actor=actor,
        at=at,
        message=message,
        detail=json.dumps(detail, default=str, ensure_ascii=False),
    )
    if action in WEBHOOK_ACTIONS:
        WebhookPending.create(event=event)
    return event


def set_field(
    ticket: Ticket,
    field: str,
    value: Any,
    *,
    actor: str,
    at: dt.datetime,
    message: Message | None = None,
    **detail: Any,
) -> bool:
    """Change one ticket field and record it; False when it already had that value."""
    old = getattr(ticket, field)
    if old == value:
        return False
    setattr(ticket, field, value)
    ticket.updated_at = at
    ticket.save()
    add_event(ticket, field, actor=actor, at=at, message=message, old=old, new=value, **detail)
    return True


def tags_of(ticket: Ticket) -> list[str]:
    return sorted(row.tag for row in TicketTag.select().where(TicketTag.ticket == ticket))


def add_tags(ticket: Ticket, tags: Iterable[str]) -> list[str]:
    added = []
    for tag in tags:
        if TicketTag.insert(ticket=ticket, tag=tag).on_conflict_ignore().execute():
            added.append(tag)
    return added


MAX_WATCHERS = 50  # a mail Cc'ing a whole company does not make every answer go to all of it


def add_watchers(ticket: Ticket, addresses: Iterable[Address]) -> list[str]:
    """Add watchers (those already there are skipped), at most MAX_WATCHERS per ticket."""
    added: list[str] = []
    room = MAX_WATCHERS - Watcher.select().where(Watcher.ticket == ticket).count()
    for addr in addresses:
        if len(added) >= room:
            break
        if (
            Watcher.insert(ticket=ticket, email=addr.email, name=addr.name)
            .on_conflict_ignore()
            .execute()
        ):
            added.append(addr.email)
    return added


def store_attachments(
    message: Message, parts: Iterable[AttachmentPart], *, root: Path, max_bytes: int, max_count: int
) -> list[str]:
    """Store attachment bytes content-addressed; return notes on any that were refused."""
    refused = []
    for index, part in enumerate(parts):
        if index >= max_count:
            refused.append(f"{part.filename}: more than {max_count} attachments")
            continue
        if len(part.payload) > max_bytes:
            refused.append(f"{part.filename}: {len(part.payload)} bytes is over {max_bytes}")
            continue
        digest, _path = store_blob(root, part.payload)
        Attachment.create(
            message=message,
            filename=part.filename,
            content_type=part.content_type,
            size=len(part.payload),
            sha256=digest,
            inline=part.inline,
            content_id=part.content_id,
        )
    return refused


def find_ticket(ref: str, prefix: str) -> Ticket:
    """A ticket by ``PREFIX-N`` (case-insensitive) or bare number."""
    text = ref.strip().upper()
    number = text[len(prefix) + 1 :] if text.startswith(f"{prefix}-") else text
    if not number.isdigit():
        raise NotFoundError(f"{ref!r} is not a ticket reference like {prefix}-42")
    ticket = Ticket.get_or_none(Ticket.id == int(number))
    if ticket is None:
        raise NotFoundError(f"ticket {prefix}-{int(number)} does not exist")
    return ticket


def ticket_summary(ticket: Ticket, prefix: str) -> dict[str, Any]:
    """The fields ``tickets list --json`` prints (DESIGN.md's contract)."""
    from maild.store.listing import summaries

    return summaries([ticket], prefix)[0]


def attachment_json(a: Attachment) -> dict[str, Any]:
    """One attachment as ``tickets show --json`` shows it (its bytes stay in the data dir)."""
    return {
        "filename": a.filename,
        "content_type": a.content_type,
        "size": a.size,
        "sha256": a.sha256,
        "inline": a.inline,
    }


# What ``tickets show --json`` and the webhooks show of a message: its columns, in this order.
# Not ``raw``, ``full_text`` or ``html``, which a show of 500 messages need not read.
MESSAGE_COLUMNS = (
    Message.id,
    Message.direction,
    Message.kind,
    Message.from_addr,
    Message.from_name,
    Message.to_addrs,
    Message.cc_addrs,
    Message.subject,
    Message.body,
    Message.message_id,
    Message.classification,
    Message.created_at,
    Message.sentiment,
)


def message_json(m: Message, attachments: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """One message as ``tickets show --json`` and the webhook payloads show it; ``attachments``
    when the caller loaded them already (``tickets show`` loads all in one query)."""
    if attachments is None:
        attachments = [attachment_json(a) for a in m.attachments.order_by(Attachment.id)]
    return _message_json(tuple(getattr(m, c.name) for c in MESSAGE_COLUMNS), attachments)


def _message_json(row: tuple[Any, ...], attachments: list[dict[str, Any]]) -> dict[str, Any]:
    """The JSON of a message from its :data:`MESSAGE_COLUMNS` values."""
    (
        id_,
        direction,
        kind,
        from_addr,
        from_name,
        to,
        cc,
        subject,
        body,
        mid,
        cls,
        created,
        sentiment,
    ) = row
    return {
        "id": id_,
        "direction": direction,
        "kind": kind,
        "from": from_addr,
        "from_name": from_name,
        "to": json.loads(to),
        "cc": json.loads(cc),
        "subject": subject,
        "body": body,
        "message_id": mid,
        "classification": cls,
        "sentiment": sentiment,
        "created_at": iso(created),
        "attachments": attachments,
    }


def _tuples(query: Any) -> Iterable[tuple[Any, ...]]:
    """A query's rows as tuples (its columns converted), without building model objects."""
    return cast("Iterable[tuple[Any, ...]]", query.tuples())


def ticket_detail(ticket: Ticket, prefix: str) -> dict[str, Any]:
    """``tickets show --json``: the summary plus messages and the audit trail.

    A fixed number of queries whatever the number of messages (attachments in one query)."""
    from maild.store.models import TicketMerge, TicketSnooze

    data = ticket_summary(ticket, prefix)
    merged = TicketMerge.get_or_none(TicketMerge.source == ticket)
    data["merged_into"] = f"{prefix}-{merged.target_id}" if merged else None
    data["merged_from"] = [
        f"{prefix}-{row.source_id}"
        for row in TicketMerge.select().where(TicketMerge.target == ticket).order_by(TicketMerge.id)
    ]
    snooze = TicketSnooze.get_or_none(TicketSnooze.ticket == ticket)
    data["snoozed_until"] = iso(snooze.until) if snooze else None
    # Rows as tuples, not models: building 500 Message objects cost more than reading them.
    messages = list(
        _tuples(
            Message.select(*MESSAGE_COLUMNS)
            .where(Message.ticket == ticket)
            .order_by(Message.created_at, Message.id)
        )
    )
    files: dict[int, list[dict[str, Any]]] = {row[0]: [] for row in messages}
    if messages:
        rows = _tuples(
            Attachment.select(
                Attachment.message,
                Attachment.filename,
                Attachment.content_type,
                Attachment.size,
                Attachment.sha256,
                Attachment.inline,
            )
            .join(Message)
            .where(Message.ticket == ticket)
            .order_by(Attachment.id)
        )
        for message_id, filename, content_type, size, sha256, inline in rows:
            files.setdefault(message_id, []).append(
                {
                    "filename": filename,
                    "content_type": content_type,
                    "size": size,
                    "sha256": sha256,
                    "inline": bool(inline),
                }
            )
    data["messages"] = [_message_json(row, files[row[0]]) for row in messages]
    events = _tuples(
        Event.select(Event.at, Event.actor, Event.action, Event.detail, Event.message)
        .where(Event.ticket == ticket)
        .order_by(Event.id)
    )
    data["events"] = [
        {
            "at": iso(at),
            "actor": actor,
            "action": action,
            "detail": json.loads(detail),
            "message": m,
        }
        for at, actor, action, detail, m in events
    ]
    return data
