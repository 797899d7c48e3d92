"""What ``ticketd webhooks`` does: list deliveries, queue a failed one again, test a hook."""

from __future__ import annotations

import asyncio
from typing import Any

from maild.app import App
from maild.clock import iso
from maild.errors import NotFoundError
from maild.store.db import write_tx
from maild.store.models import WebhookDelivery
from maild.webhooks.events import PAYLOAD_VERSION, encode
from maild.webhooks.queue import new_webhook_id
from maild.webhooks.sender import Outcome, WebhookSender, load_targets


def rows(app: App, *, everything: bool) -> list[dict[str, Any]]:
    """Queued and failed deliveries (``everything``: sent ones too), oldest first."""
    query = WebhookDelivery.select(
        WebhookDelivery.id,
        WebhookDelivery.target,
        WebhookDelivery.event,
        WebhookDelivery.ticket,
        WebhookDelivery.webhook_id,
        WebhookDelivery.status,
        WebhookDelivery.attempts,
        WebhookDelivery.next_attempt_at,
        WebhookDelivery.last_status,
        WebhookDelivery.last_error,
        WebhookDelivery.created_at,
        WebhookDelivery.sent_at,
    ).order_by(WebhookDelivery.id)
    if not everything:
        query = query.where(WebhookDelivery.status != "sent")
    return [
        {
            "id": d.id,
            "target": d.target,
            "event": d.event,
            "ticket": f"{app.config.prefix}-{d.ticket}" if d.ticket else None,
            "webhook_id": d.webhook_id,
            "status": d.status,
            "attempts": d.attempts,
            "next_attempt_at": iso(d.next_attempt_at),
            "last_status": d.last_status,
            "last_error": d.last_error,
            "created_at": iso(d.created_at),
            "sent_at": iso(d.sent_at),
        }
        for d in query
    ]


def retry(app: App, delivery_id: int) -> WebhookDelivery:
    """Queue a failed delivery again, due now, with its attempts reset and its webhook-id kept."""
    with write_tx(app.db):
        row = WebhookDelivery.get_or_none(WebhookDelivery.id == delivery_id)
        if row is None:
            raise NotFoundError(f"no webhook delivery #{delivery_id}")
        if row.status != "failed":
            raise NotFoundError(f"webhook delivery #{delivery_id} is {row.status}, not failed")
        WebhookDelivery.update(
            status="queued",
            attempts=0,
            next_attempt_at=app.clock.now(),
            claimed_by=None,
            claimed_until=None,
        ).where(WebhookDelivery.id == delivery_id).execute()
    return WebhookDelivery.get_by_id(delivery_id)


def send_test(app: App, name: str) -> tuple[Outcome, str]:
    """POST a signed ``webhook.test`` event to the hook now (nothing is queued): the answer
    and the webhook-id it carried."""
    targets = load_targets(app.config)
    target = targets.get(f"hook:{name}")
    if target is None:
        known = ", ".join(k[5:] for k in targets if k.startswith("hook:")) or "none"
        raise NotFoundError(f"no webhook named {name!r} (configured: {known})")
    body = encode(
        {
            "version": PAYLOAD_VERSION,
            "event": "webhook.test",
            "at": iso(app.clock.now()),
            "actor": "system",
            "ticket": None,
            "message": None,
        }
    )
    if target.format == "slack":
        text = f"ticketd: a test from {app.config.instance.name}"
        body = encode(
            {
                "text": text,
                "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": text}}],
            }
        )
    row = WebhookDelivery(target=target.key, body=body, webhook_id=new_webhook_id())
    sender = WebhookSender(app, targets)

    async def once() -> Outcome:
        try:
            return await sender.send(row)
        finally:
            await sender.close()

    return asyncio.run(once()), row.webhook_id
