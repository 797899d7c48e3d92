"""Helpers of the webhook tests: an App with hooks to the test receiver, tickets made by the
real worker, and one complete delivery pass."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from maild import spool
from maild.app import App
from maild.webhooks.sender import WebhookSender, load_targets
from maild.worker import make_worker
from tests.mailgen import make_mail

SECRET_ENV = "TICKETD_TEST_WEBHOOK_SECRET"


def hook(url: str, name: str = "crm", **extra: Any) -> dict[str, Any]:
    return {"name": name, "url": url, "secret_env": SECRET_ENV, "allow_private": True, **extra}


def hook_app(factory: Callable[..., App], db_url: str | None, *hooks: dict[str, Any]) -> App:
    return factory(
        db_url,
        webhooks=list(hooks),
        webhook_delivery={"first_retry_seconds": 0.05, "max_retry_seconds": 0.2},
    )


def mail_in(app: App, **mail: Any) -> None:
    """Spool one mail and let the real worker store it."""
    entry = spool.enqueue(app.db, make_mail(**mail), source="pipe")
    make_worker(app).run_once(ids=[entry])


def deliver(app: App) -> int:
    """Fan out the pending events and send what is due, waiting for the answers."""
    return WebhookSender(app, load_targets(app.config)).run_once()


def deliver_until_settled(app: App, timeout: float = 30.0) -> None:
    """Delivery passes until no delivery is queued (retries come due after a short backoff)."""
    import time

    from maild.store.models import WebhookDelivery

    deadline = time.monotonic() + timeout
    deliver(app)
    while WebhookDelivery.select().where(WebhookDelivery.status == "queued").exists():
        assert time.monotonic() < deadline, "deliveries still queued"
        time.sleep(0.02)
        deliver(app)
