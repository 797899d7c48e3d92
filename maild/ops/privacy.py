"""``ticketd privacy export|erase ADDRESS``: a person's data, handed over or removed.

What belongs to a person (:func:`gather`): the contact, the tickets they requested (with every
message and event on them), the messages they sent or received elsewhere, their watcher rows,
spool rows they sent, outbox rows addressed to them and suppressions of their address.

Export: one zip with ``data.json`` (tickets as ``tickets show --json`` prints them, plus the
other messages), each message's raw bytes under ``raw/`` and the attachments under
``attachments/``. Erase, in one transaction: their tickets are kept as empty shells (subject
``[erased]``, requester a placeholder) with one ``erased`` audit event naming who erased and
what was removed (counts, never the address); their messages, raw bytes, attachments (the files
too, unless another message still has the same content), spool, outbox, watcher and suppression
rows and the contact are deleted; where another message lists them in To or Cc the address is
replaced. On SQLite the deletes run with ``secure_delete``, and a ``wal_checkpoint(TRUNCATE)``
and a VACUUM follow (the latter also drops what earlier updates freed), so the bytes are left
neither in free pages nor in the WAL; on PostgreSQL the touched
tables are VACUUMed. An agent's address is refused unless forced.
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from peewee import Database

from maild.app import App
from maild.errors import TicketdError
from maild.store import tickets as store
from maild.store.attachments import blob_path
from maild.store.db import is_sqlite, write_tx
from maild.store.models import (
    Attachment,
    Contact,
    Event,
    Message,
    OutboxEntry,
    SpoolEntry,
    Suppression,
    Ticket,
    TicketTag,
    Watcher,
    WebhookDelivery,
    WebhookPending,
    utcnow,
)
from maild.store.search import compact

PLACEHOLDER = "erased@erased.invalid"
REPLACEMENT = "[erased]"


class PrivacyError(TicketdError):
    """An export or erasure that is refused (the message says why)."""


@dataclass(frozen=True)
class Found:
    address: str
    contact: Contact | None
    tickets: tuple[int, ...]  # tickets they requested
    messages: tuple[int, ...]  # every message to erase: on their tickets, or from them
    mentions: tuple[int, ...]  # other messages with the address in To or Cc
    spool: tuple[int, ...]
    outbox: tuple[int, ...]
    deliveries: tuple[int, ...] = ()  # webhook deliveries about their tickets or naming them

    def counts(self) -> dict[str, int]:
        return {
            "tickets": len(self.tickets),
            "messages": len(self.messages),
            "mentions": len(self.mentions),
            "spool_rows": len(self.spool),
            "outbox_rows": len(self.outbox),
            "webhook_deliveries": len(self.deliveries),
            "contact": int(self.contact is not None),
        }


def _like(address: str) -> str:
    return f'%"{address}"%'


def gather(address: str) -> Found:
    address = address.strip().lower()
    if "@" not in address:
        raise PrivacyError(f"{address!r} is not an email address")
    contact = Contact.get_or_none(Contact.email == address)
    tickets = (
        [t.id for t in Ticket.select(Ticket.id).where(Ticket.requester == contact)]
        if contact
        else []
    )
    on_tickets = Message.ticket.in_(tickets) if tickets else False
    messages = [
        m.id for m in Message.select(Message.id).where(on_tickets | (Message.from_addr**address))
    ]
    mentions = [
        m.id
        for m in Message.select(Message.id).where(
            (Message.to_addrs ** _like(address)) | (Message.cc_addrs ** _like(address))
        )
        if m.id not in set(messages)
    ]
    spool_ids = {
        r.spool_entry
        for r in Message.select(Message.spool_entry).where(Message.id.in_(messages or [0]))
        if r.spool_entry
    }
    spool_ids |= {
        s.id for s in SpoolEntry.select(SpoolEntry.id).where(SpoolEntry.mail_from**address)
    }
    outbox = [
        o.id
        for o in OutboxEntry.select(OutboxEntry.id).where(
            (OutboxEntry.rcpt_tos ** _like(address))
            | (OutboxEntry.auto_to == address)
            | OutboxEntry.message.in_(messages or [0])
            | OutboxEntry.ticket.in_(tickets or [0])
        )
    ]
    return Found(
        address,
        contact,
        tuple(tickets),
        tuple(messages),
        tuple(mentions),
        tuple(sorted(spool_ids)),
        tuple(outbox),
        _deliveries(address, tickets),
    )


def _deliveries(address: str, tickets: list[int]) -> tuple[int, ...]:
    """Webhook deliveries of their tickets, and any other whose body names the address (a Cc,
    a message of theirs on someone else's ticket); bodies are bytes, so they are read here."""
    wanted = address.encode("utf-8")
    found = {
        d.id
        for d in WebhookDelivery.select(WebhookDelivery.id).where(
            WebhookDelivery.ticket.in_(tickets or [0])
        )
    }
    for row in WebhookDelivery.select(WebhookDelivery.id, WebhookDelivery.body).iterator():
        if wanted in bytes(row.body).lower():
            found.add(row.id)
    return tuple(sorted(found))


def export(app: App, address: str, output: Path) -> dict[str, int]:
    """Write everything about ``address`` to the zip ``output``; the counts."""
    found = gather(address)
    if found.contact is None and not found.messages and not found.spool and not found.outbox:
        raise PrivacyError(f"nothing is stored about {found.address}")
    prefix = app.config.prefix
    data: dict[str, Any] = {
        "address": found.address,
        "contact": {"email": found.contact.email, "name": found.contact.name}
        if found.contact
        else None,
        "tickets": [store.ticket_detail(Ticket.get_by_id(t), prefix) for t in found.tickets],
        "other_messages": [],
        "outbox": [],
    }
    root = app.data_dir / "attachments"
    with zipfile.ZipFile(output, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for message in Message.select().where(Message.id.in_(list(found.messages) or [0])):
            if message.ticket_id not in found.tickets:
                data["other_messages"].append(
                    {
                        "ticket": f"{prefix}-{message.ticket_id}",
                        "from": message.from_addr,
                        "subject": message.subject,
                        "body": message.body,
                        "created_at": str(message.created_at),
                    }
                )
            if message.raw:
                archive.writestr(f"raw/{message.id}.eml", bytes(message.raw))
            for att in message.attachments:
                path = blob_path(root, att.sha256)
                if path.is_file():
                    archive.write(path, f"attachments/{message.id}/{att.id}-{att.filename}")
        for row in OutboxEntry.select().where(OutboxEntry.id.in_(list(found.outbox) or [0])):
            data["outbox"].append(
                {"id": row.id, "status": row.status, "created_at": str(row.created_at)}
            )
        archive.writestr("data.json", json.dumps(data, indent=2, ensure_ascii=False, default=str))
    return found.counts()


def agent_addresses(app: App) -> set[str]:
    from maild.routing.reload import RulesHolder

    holder = RulesHolder.open(app.config.rules_dir, app.config.templates_dir)
    return {email.lower() for email in holder.rules.agents}


def erase(
    app: App, address: str, *, actor: str, force: bool = False, dry_run: bool = False
) -> dict[str, int]:
    """Remove everything of ``address`` (see the module docstring); the counts."""
    found = gather(address)
    if found.address in agent_addresses(app) and not force:
        raise PrivacyError(
            f"{found.address} is an agent's address: their replies are other people's tickets; "
            "remove the agent from the rules first, or pass --force"
        )
    counts = found.counts()
    if dry_run:
        return counts
    db = app.db
    if is_sqlite(db):
        db.execute_sql("PRAGMA secure_delete = ON")
    files = _erase_rows(app, found, actor, counts)
    root = app.data_dir / "attachments"
    for sha in files:
        blob_path(root, sha).unlink(missing_ok=True)
    counts["files"] = len(files)
    if not _scrub_storage(db):
        counts["wal_still_in_use"] = 1
    return counts


def _erase_rows(app: App, found: Found, actor: str, counts: dict[str, int]) -> set[str]:
    messages = list(found.messages) or [0]
    now = utcnow()
    with write_tx(app.db):
        shas = {
            a.sha256
            for a in Attachment.select(Attachment.sha256).where(Attachment.message.in_(messages))
        }
        kept = {
            a.sha256
            for a in Attachment.select(Attachment.sha256).where(
                Attachment.sha256.in_(list(shas) or [""]) & Attachment.message.not_in(messages)
            )
        }
        Attachment.delete().where(Attachment.message.in_(messages)).execute()
        Event.update(message=None).where(Event.message.in_(messages)).execute()
        OutboxEntry.delete().where(OutboxEntry.id.in_(list(found.outbox) or [0])).execute()
        WebhookDelivery.delete().where(
            WebhookDelivery.id.in_(list(found.deliveries) or [0])
        ).execute()
        Message.delete().where(Message.id.in_(messages)).execute()
        SpoolEntry.delete().where(SpoolEntry.id.in_(list(found.spool) or [0])).execute()
        for message in Message.select().where(Message.id.in_(list(found.mentions) or [0])):
            message.to_addrs = _without(message.to_addrs, found.address)
            message.cc_addrs = _without(message.cc_addrs, found.address)
            message.raw = None  # the headers name them
            message.save()
        Watcher.delete().where(Watcher.email == found.address).execute()
        Suppression.delete().where(Suppression.email == found.address).execute()
        if found.tickets:
            placeholder, _ = Contact.get_or_create(email=PLACEHOLDER, defaults={"name": ""})
            tickets = list(found.tickets)
            gone = Event.select(Event.id).where(Event.ticket.in_(tickets))
            WebhookPending.delete().where(WebhookPending.event.in_(gone)).execute()
            Event.delete().where(Event.ticket.in_(tickets)).execute()
            TicketTag.delete().where(TicketTag.ticket.in_(tickets)).execute()
            Watcher.delete().where(Watcher.ticket.in_(tickets)).execute()
            Ticket.update(
                subject=REPLACEMENT,
                requester=placeholder,
                satisfaction_comment=None,
                updated_at=now,
            ).where(Ticket.id.in_(tickets)).execute()
            for ticket_id in tickets:
                store.add_event(
                    Ticket.get_by_id(ticket_id), "erased", actor=actor, at=now, removed=counts
                )
        for event in Event.select().where(Event.detail ** f"%{found.address}%"):
            event.detail = event.detail.replace(found.address, REPLACEMENT)
            event.save()
        if found.contact is not None:
            Contact.delete().where(Contact.id == found.contact.id).execute()
    return shas - kept


def _without(addresses: str, address: str) -> str:
    try:
        items = json.loads(addresses or "[]")
    except ValueError:
        return "[]"
    return json.dumps([REPLACEMENT if str(a).lower() == address else a for a in items])


def _scrub_storage(db: Database) -> bool:
    """Leave nothing in free pages or the WAL; False when the WAL could not be emptied (a
    reader held it): running the erase again, or the next checkpoint, finishes it."""
    if is_sqlite(db):
        compact(db)  # the search index's old segments still hold the erased text's trigrams
        # secure_delete zeroes what this erasure deletes; VACUUM also drops what earlier updates
        # freed (the spool row's raw bytes were emptied when the message was stored).
        db.execute_sql("VACUUM")
        busy = db.execute_sql("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        return not (busy and busy[0])
    models = (Message, Attachment, SpoolEntry, OutboxEntry, WebhookDelivery, Contact, Event, Ticket)
    for model in (*models, Watcher):
        db.execute_sql(f'VACUUM "{model._meta.table_name}"')
    return True


def describe(counts: dict[str, int]) -> Iterable[str]:
    for key, value in counts.items():
        yield f"{key.replace('_', ' ')}: {value}"
