"""The delivery queue: pending events become one delivery per interested target.

``store.add_event`` leaves a ``WebhookPending`` row in the transaction of every event that
webhooks report; :func:`fan_out` reads them in id order and, in one transaction, writes a
``WebhookDelivery`` per target that wants the event and deletes the pending rows. A crash before
that commit repeats the fan-out; after it the deliveries are durable, so ``kill -9`` loses
nothing. With no target configured the pending rows are simply deleted.

Targets: every ``webhooks:`` entry whose ``events`` list the event (internal notes only with
``include_notes``); for a ticket that came in through an API channel with a ``reply_url``, the
agents' answers; for a ticket that came from Slack, the agents' answers and status changes, as a
``chat.postMessage`` body into its thread.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import secrets
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from peewee import DatabaseError, fn

from maild.app import App
from maild.store.db import is_sqlite, write_tx
from maild.store.listing import summaries as list_summaries
from maild.store.models import (
    Attachment,
    Contact,
    Event,
    Message,
    Ticket,
    WebhookDelivery,
    WebhookPending,
)
from maild.store.origins import Origin, origin
from maild.store.tickets import attachment_json, message_json
from maild.webhooks import mrkdwn
from maild.webhooks.events import Described, describe, encode, first_message, payload
from maild.webhooks.targets import Target

log = logging.getLogger("ticketd.webhooks")
SLACK_TEMPLATE = "webhook_slack.mrkdwn.j2"


def new_webhook_id() -> str:
    return f"msg_{secrets.token_hex(12)}"


def slack_text(
    app: App, renderer: Any, described: Described, data: dict[str, Any], ticket, message
) -> str:
    """The admin's Slack template (``templates/webhook_slack.mrkdwn.j2``) for one event."""
    from maild.notify.compose import context

    changes = []
    for name, change in (data.get("changes") or {}).items():
        if "old" in change:
            changes.append(f"{name} {change['old'] or '-'} → {change['new'] or '-'}")
        else:
            for which, tags in change.items():
                changes.append(f"tag {which} {', '.join(str(t) for t in tags)}")
    sla = data.get("sla") or {}
    ctx = context(app, ticket, message)
    ctx["event"] = {
        "name": described.name,
        "actor": data["actor"],
        "note": described.note,
        "changes": changes,
        "sla": f"{sla.get('policy')}: {sla.get('step')}" if sla else "",
        "rating": (data.get("satisfaction") or {}).get("rating") or "",
    }
    ctx = mrkdwn.escape_values(ctx)  # every value: the customer wrote some of them
    text, error = renderer.render_file(SLACK_TEMPLATE, ctx)
    if error:
        log.warning("%s; the shipped default was used", error)
    return text.strip()


class FanOut:
    """Turns pending events into deliveries for the configured targets."""

    def __init__(self, app: App, hooks: Sequence[Target], channels: dict[str, Target]) -> None:
        from maild.notify.templates import Renderer

        self.app = app
        self.hooks = tuple(hooks)
        self.channels = channels
        self.renderer = Renderer(app.config.templates_dir)

    def run_once(self, limit: int = 500) -> int:
        """Fan out up to ``limit`` pending events; return how many deliveries were written."""
        with write_tx(self.app.db):
            query = WebhookPending.select().order_by(WebhookPending.id).limit(limit)
            if not is_sqlite(self.app.db):
                query = query.for_update(skip_locked=True)
            rows = list(query)
            if not rows:
                return 0
            batch = _Batch(self.app.clock.now())
            if self.hooks or self.channels:
                ids = [r.event_id for r in rows]
                events = {e.id: e for e in Event.select().where(Event.id.in_(ids))}
                found = [events[r.event_id] for r in rows if r.event_id in events]
                batch.load(found, self.app.config.prefix, summaries=bool(self.hooks))
                for event in found:
                    self._fan_out(event, batch)
            batch.write()
            WebhookPending.delete().where(WebhookPending.id.in_([r.id for r in rows])).execute()
        return len(batch.rows)

    def _fan_out(self, event: Event, batch: _Batch) -> None:
        """One event's deliveries; an event that can't be turned into them (a template both the
        admin's and the shipped copy fail on, a payload that can't be built) is logged and
        left out, rather than holding up every later event of every hook."""
        mark = len(batch.rows)
        try:
            self._deliveries(event, batch)
        except DatabaseError:
            raise  # the database's trouble is the whole pass's: it is retried
        except Exception:
            del batch.rows[mark:]
            log.exception("webhook event #%s (%s) could not be fanned out", event.id, event.action)

    def _deliveries(self, event: Event, batch: _Batch) -> None:
        message = batch.messages.get(event.message_id) if event.message_id else None
        detail = json.loads(event.detail or "{}")
        described = describe(event.action, detail, message.kind if message else None)
        ticket = batch.tickets.get(event.ticket_id)
        if described is None or ticket is None:  # not a webhook event, or the ticket is gone
            return
        if ticket.spam:  # spam is kept, but closed, and nobody is told (rules/20-routing.yaml)
            return
        if described.name == "ticket.created" and message is None:
            first = batch.first_ids.get(ticket.id)
            message = batch.messages.get(first) if first else first_message(ticket)
        data: dict[str, Any] | None = None
        body_json: bytes | None = None

        def add(target: str, body: bytes) -> None:
            batch.add(target, described.name, ticket.id, body)

        for hook in self.hooks:
            if described.name not in hook.events or (described.note and not hook.include_notes):
                continue
            if data is None:
                data = payload(described, event, batch.summaries[ticket.id], batch.json(message))
            if hook.format == "slack":
                text = slack_text(self.app, self.renderer, described, data, ticket, message)
                blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": text[:3000]}}]
                add(hook.key, encode({"text": text, "blocks": blocks}))
            else:
                body_json = body_json or encode(data)
                add(hook.key, body_json)
        if self.channels and (described.answer or described.status):
            found = origin(ticket)
            if found is not None:
                self._to_channel(found, described, event, ticket, message, add)

    def _to_channel(self, found: Origin, described, event, ticket, message, add) -> int:
        slack = self.channels.get(f"slack:{found.channel}")
        if slack is not None and found.thread_ts:
            if described.answer and message is not None:
                text = mrkdwn.escape(message.body)
            elif described.status:
                text = f"Status: {described.status}"
            else:
                return 0
            post = {"channel": found.slack_channel, "thread_ts": found.thread_ts, "text": text}
            add(slack.key, encode(post))
            return 1
        reply = self.channels.get(f"reply:{found.channel}")
        if reply is not None and described.answer:
            prefix = self.app.config.prefix
            summary = list_summaries([ticket], prefix)[0]
            body = message_json(message) if message is not None else None
            add(reply.key, encode(payload(described, event, summary, body)))
            return 1
        return 0


class _Batch:
    """One fan-out transaction: what its events refer to, each kind loaded in one query, and
    the deliveries it writes, inserted together."""

    INSERT_ROWS = 100  # rows per INSERT (7 values each, far below SQLite's variable limit)

    def __init__(self, now: dt.datetime) -> None:
        self.now = now
        self.tickets: dict[int, Ticket] = {}
        self.messages: dict[int, Message] = {}
        self.summaries: dict[int, dict[str, Any]] = {}
        self.attachments: dict[int, list[dict[str, Any]]] = defaultdict(list)
        self.rows: list[dict[str, Any]] = []
        self.first_ids: dict[int, int] = {}  # ticket -> its first message, for "created" events

    def load(self, events: Sequence[Event], prefix: str, *, summaries: bool) -> None:
        ticket_ids = sorted({e.ticket_id for e in events if e.ticket_id is not None})
        message_ids = {e.message_id for e in events if e.message_id is not None}
        # A "created" event without its message is about the ticket's first message.
        created = sorted(
            {e.ticket_id for e in events if e.action == "created" and not e.message_id}
        )
        if created:
            firsts: Any = (
                Message.select(Message.ticket, fn.MIN(Message.id))
                .where(Message.ticket.in_(created))
                .group_by(Message.ticket)
                .tuples()
            )  # (ticket id, message id) rows
            self.first_ids = dict(firsts)
            message_ids.update(self.first_ids.values())
        if ticket_ids:
            found = (
                Ticket.select(Ticket, Contact)
                .join(Contact, on=(Ticket.requester == Contact.id))
                .where(Ticket.id.in_(ticket_ids))
            )
            self.tickets = {t.id: t for t in found}
        if message_ids:
            wanted = sorted(message_ids)
            self.messages = {m.id: m for m in Message.select().where(Message.id.in_(wanted))}
            for a in (
                Attachment.select()
                .where(Attachment.message.in_(message_ids))
                .order_by(Attachment.id)
            ):
                self.attachments[a.message_id].append(attachment_json(a))
        if summaries and self.tickets:
            tickets = list(self.tickets.values())
            self.summaries = {
                t.id: s for t, s in zip(tickets, list_summaries(tickets, prefix), strict=True)
            }

    def json(self, message: Message | None) -> dict[str, Any] | None:
        if message is None:
            return None
        if message.id in self.messages:  # its attachments were loaded with the batch
            return message_json(message, self.attachments.get(message.id, []))
        return message_json(message)

    def add(self, target: str, event: str, ticket: int, body: bytes) -> None:
        self.rows.append(
            {
                "target": target,
                "event": event,
                "ticket": ticket,
                "webhook_id": new_webhook_id(),
                "body": body,
                "created_at": self.now,
                "next_attempt_at": self.now,
            }
        )

    def write(self) -> None:
        for start in range(0, len(self.rows), self.INSERT_ROWS):
            WebhookDelivery.insert_many(self.rows[start : start + self.INSERT_ROWS]).execute()
