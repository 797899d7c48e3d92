"""Queue mail in a savepoint; a failure is recorded on the ticket instead of undoing the message.

Every automatic or rule-driven mail (acknowledgements, rules' replies and notifications, agents'
answers and notifications, SLA mail) is composed inside the caller's transaction. Composing runs in
a savepoint: if it fails in a way nobody foresaw, the savepoint is rolled back, a ``mail_error``
event on the ticket says why, and the ticket change that asked for the mail still commits.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable

from maild.app import App
from maild.store import tickets as store
from maild.store.models import Message, Ticket

log = logging.getLogger("ticketd.notify")


def in_savepoint(
    app: App,
    ticket: Ticket,
    fn: Callable[[], object],
    *,
    template: str,
    actor: str,
    at: dt.datetime,
    cause: Message | None = None,
) -> str | None:
    """Run ``fn`` (which queues ``template``) in a savepoint; return None when it queued, else
    the error's type name, after recording a ``mail_error`` event on ``ticket``."""
    try:
        with app.db.atomic():  # a savepoint inside the caller's transaction
            fn()
    except Exception as exc:
        log.exception("%s mail for ticket #%s failed (%s)", template, ticket.id, actor)
        store.add_event(
            ticket,
            "mail_error",
            actor=actor,
            at=at,
            message=cause,
            template=template,
            error=f"{type(exc).__name__}: {str(exc)[:500]}",
        )
        return type(exc).__name__
    return None
