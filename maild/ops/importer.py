"""``ticketd import mbox|maildir PATH``: old mail into the same spool and pipeline as new mail.

Each message is spooled as source ``import`` with ``source_ref`` ``import:<sha256>`` (status
``import``, which the daemon's worker never claims), then claimed and processed here by the same
worker code as every other message. Re-running an import finds the ``source_ref`` and stores
nothing twice (and a message whose spool row is gone still meets the Message-ID de-duplication);
an interrupted import resumes with the rows it spooled but did not finish.

``--archive`` makes it history: the worker's clock reads each message's Date, so the message, the
ticket and their events carry the original times; the only stage tags the ticket ``imported``
(rules, SLA policies, agents' commands and automatic mail are not run, so no mail is sent and no
SLA starts), and at the end every imported ticket that is not closed is closed as of its last
message, with an ``import`` audit event. Reports see the ``imported`` tag and the original dates.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import hashlib
import json
import re
import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, TextIO, cast

from peewee import fn

from maild import spool
from maild.app import App
from maild.clock import FixedClock
from maild.ops.sources import Item, not_mail
from maild.stage import Outcome, Stored
from maild.store import tickets as store
from maild.store.db import write_tx
from maild.store.models import Event, Message, SpoolEntry, Ticket, TicketTag, WebhookPending
from maild.worker import Worker, make_worker

IMPORTING = "import"  # spool status of an imported row not yet processed
TAG = "imported"
DATE_RE = re.compile(rb"^Date:[ \t]*(.*(?:\r?\n[ \t].*)*)", re.IGNORECASE | re.MULTILINE)
MESSAGE_ID_RE = re.compile(rb"^Message-ID:[ \t]*(<[^>\r\n]+>)", re.IGNORECASE | re.MULTILINE)


@dataclass
class Summary:
    new: int = 0
    appended: int = 0
    duplicates: int = 0
    quarantined: int = 0
    not_mail: int = 0
    closed: int = 0
    skipped: list[str] = field(default_factory=list)  # "where: why" for what is not mail

    def line(self, *, dry_run: bool = False) -> str:
        if dry_run:
            return (
                f"dry run: {self.new} to import, {self.duplicates} duplicates, "
                f"{self.not_mail} not mail; nothing stored"
            )
        text = (
            f"{self.new} new, {self.appended} appended, {self.duplicates} duplicates, "
            f"{self.quarantined} quarantined, {self.not_mail} not mail"
        )
        return text + (f"; {self.closed} tickets closed as history" if self.closed else "")


def header_date(raw: bytes, fallback: dt.datetime) -> dt.datetime:
    """The Date header as naive UTC; ``fallback`` when it is missing, unreadable or future."""
    head = raw.split(b"\n\n", 1)[0]
    found = DATE_RE.search(head)
    if not found:
        return fallback
    try:
        parsed = email.utils.parsedate_to_datetime(found.group(1).decode("latin-1").strip())
    except (TypeError, ValueError, IndexError):
        return fallback
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(dt.UTC).replace(tzinfo=None)
    return min(parsed, fallback)


class ArchiveStage:
    """The one stage of an archive import: tag the ticket and remember it for closing."""

    def __init__(self) -> None:
        self.tickets: set[int] = set()

    def __call__(self, stored: Stored) -> Outcome:
        store.add_tags(stored.ticket, [TAG])
        self.tickets.add(stored.ticket.id)
        unannounce(stored)
        return Outcome()


def unannounce(stored: Stored) -> None:
    """History is not news: the webhook rows of this message's events (all the events of a ticket
    it opened) go, in the message's own transaction, so no receiver hears of an archive."""
    about = Event.message == stored.message.id
    if stored.created:
        about |= Event.ticket == stored.ticket.id
    events = Event.select(Event.id).where(about)
    WebhookPending.delete().where(WebhookPending.event.in_(events)).execute()


class Importer:
    def __init__(self, app: App, *, archive: bool, dry_run: bool = False) -> None:
        self.app = app
        self.archive = archive
        self.dry_run = dry_run
        self.stage = ArchiveStage()
        self.worker: Worker | None = None
        self.summary = Summary()

    def _worker(self) -> Worker:
        if self.worker is None:
            self.worker = (
                Worker(self.app, stages=[self.stage]) if self.archive else make_worker(self.app)
            )
        return self.worker

    def run(
        self, items: Iterable[Item], progress: Callable[[Iterator[Item]], Iterator[Item]]
    ) -> Summary:
        for item in progress(iter(items)):
            self.one(item)
        if self.archive and not self.dry_run:
            self.summary.closed = close_imported(self.app)
        return self.summary

    def one(self, item: Item) -> None:
        why = not_mail(item.raw)
        if why:
            self.summary.not_mail += 1
            self.summary.skipped.append(f"{item.where}: {why}")
            return
        ref = f"import:{hashlib.sha256(item.raw).hexdigest()}"
        row = (
            SpoolEntry.select(SpoolEntry.id, SpoolEntry.status)
            .where(SpoolEntry.source_ref == ref)
            .first()
        )
        if self.dry_run:
            known = row is not None or self._known_message_id(item.raw)
            if known:
                self.summary.duplicates += 1
            else:
                self.summary.new += 1
            return
        if row is not None and row.status == spool.DONE:
            self.summary.duplicates += 1
            return
        if row is not None and row.status == spool.QUARANTINED:
            self.summary.quarantined += 1
            return
        now = self.app.clock.now()
        when = header_date(item.raw, now) if self.archive else now
        if row is None:
            with write_tx(self.app.db):
                entry_id = spool.add(item.raw, source="import", source_ref=ref, now=when)
                SpoolEntry.update(status=IMPORTING).where(SpoolEntry.id == entry_id).execute()
        else:
            entry_id = row.id  # spooled by an import that was interrupted: finish it now
        self._process(entry_id, when)

    def _known_message_id(self, raw: bytes) -> bool:
        found = MESSAGE_ID_RE.search(raw.split(b"\n\n", 1)[0])
        if not found:
            return False
        mid = found.group(1).decode("latin-1")
        return Message.select().where(Message.message_id == mid).exists()

    def _process(self, entry_id: int, when: dt.datetime) -> None:
        worker = self._worker()
        lease = dt.timedelta(seconds=self.app.config.worker.lease_seconds)
        real = self.app.clock
        with write_tx(self.app.db):
            SpoolEntry.update(
                status=spool.PENDING,
                claimed_by=worker.id,
                claimed_until=real.now() + lease,
                not_before=None,
                attempts=SpoolEntry.attempts + 1,
            ).where(
                (SpoolEntry.id == entry_id) & SpoolEntry.status.in_((IMPORTING, spool.PENDING))
            ).execute()
        entry = SpoolEntry.get_by_id(entry_id)
        if self.archive:
            self.app.clock = FixedClock(when)
        try:
            result = worker.process(entry)
        finally:
            self.app.clock = real
        status = SpoolEntry.get_by_id(entry_id).status
        if status == spool.PENDING:  # a failure to retry: keep it ours, not the daemon's
            with write_tx(self.app.db):
                SpoolEntry.update(status=IMPORTING, claimed_by=None, claimed_until=None).where(
                    SpoolEntry.id == entry_id
                ).execute()
            self.summary.quarantined += 1
        elif status == spool.QUARANTINED:
            self.summary.quarantined += 1
        elif result.startswith("new "):
            self.summary.new += 1
        elif result.startswith("append "):
            self.summary.appended += 1
        else:
            self.summary.duplicates += 1


def close_imported(app: App, *, batch: int = 500) -> int:
    """Close every ``imported`` ticket that is still open, as of its last message (in batches,
    each one transaction: an archive has thousands of tickets)."""
    tagged = TicketTag.select(TicketTag.ticket).where(TicketTag.tag == TAG)
    closed = 0
    while True:
        with write_tx(app.db):
            rows = list(
                Ticket.select(Ticket.id, Ticket.status, Ticket.created_at, Ticket.resolved_at)
                .where(Ticket.id.in_(tagged) & (Ticket.status != "closed"))
                .limit(batch)
            )
            if not rows:
                return closed
            query = (
                Message.select(Message.ticket, fn.MAX(Message.created_at))
                .where(Message.ticket.in_([r.id for r in rows]))
                .group_by(Message.ticket)
                .tuples()
            )
            pairs = cast(Iterable[tuple[int, dt.datetime]], query)
            last = dict(pairs)
            events = []
            for ticket in rows:
                at = last.get(ticket.id) or ticket.created_at
                Ticket.update(
                    status="closed",
                    resolved_at=ticket.resolved_at or at,
                    closed_at=at,
                    updated_at=at,
                ).where(Ticket.id == ticket.id).execute()
                detail = {"old": ticket.status, "new": "closed", "reason": "archive import"}
                events.append(
                    {
                        "ticket": ticket.id,
                        "action": "status",
                        "actor": "import",
                        "at": at,
                        "detail": json.dumps(detail),
                    }
                )
            Event.insert_many(events).execute()
            closed += len(rows)


def progress_bar(out: TextIO | None = None) -> Callable[[Iterator[Item]], Iterator[Item]]:
    """tqdm on a terminal, nothing otherwise (cron, pipes, tests)."""
    stream = out or sys.stderr

    def wrap(items: Iterator[Item]) -> Iterator[Item]:
        if not stream.isatty():
            return items
        from tqdm import tqdm

        bar: Any = tqdm(items, unit="msg", file=stream, desc="import")
        return iter(bar)

    return wrap
