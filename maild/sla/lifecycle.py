"""The one way to change a ticket's status, and the other changes that move its SLA clocks.

``set_status`` records the change (an audit event through ``store.set_field``), keeps
``resolved_at`` and ``closed_at`` true (set on resolving and closing; cleared when the ticket comes
back), stops or restarts the SLA clocks, recomputes the due times and, on resolution, mails the
satisfaction survey. Everything runs inside the caller's transaction. ``rules`` may be None where
no rule set is at hand (the worker re-opening a ticket): the clocks still stop and start, and the
worker's SLA hook recomputes the due times right after.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from maild.app import App
from maild.notify.templates import Renderer
from maild.routing.engine import RuleSet
from maild.sla import due
from maild.sla.survey import Rating, queue_survey
from maild.store import tickets as store
from maild.store.models import Message, Ticket, TicketSnooze, TicketSubstatus

SLA_FIELDS = ("priority", "team", "assignee", "sla_policy")  # what a policy's choice may depend on


def set_status(
    app: App,
    rules: RuleSet | None,
    ticket: Ticket,
    status: str,
    *,
    actor: str,
    at: dt.datetime,
    message: Message | None = None,
    reason: str | None = None,
    survey: bool = True,
    renderer: Renderer | None = None,
) -> bool:
    """Move ``ticket`` to ``status``; False when it already had it."""
    if status not in store.STATUSES:
        raise ValueError(f"unknown status {status!r} (known: {', '.join(store.STATUSES)})")
    old = ticket.status
    detail: dict[str, Any] = {"reason": reason} if reason else {}
    if not store.set_field(ticket, "status", status, actor=actor, at=at, message=message, **detail):
        return False
    # A custom status belongs to its base: any change of the base ends it (the caller that sets a
    # custom status puts it back after this).
    TicketSubstatus.delete().where(TicketSubstatus.ticket == ticket).execute()
    if status != "pending":
        # A snoozed ticket that leaves pending (a customer's reply, an agent's #status, the
        # wake-up itself) is snoozed no more.
        snoozed = TicketSnooze.get_or_none(TicketSnooze.ticket == ticket)
        if snoozed is not None:
            snoozed.delete_instance()
            store.add_event(
                ticket,
                "snooze_ended",
                actor=actor,
                at=at,
                message=message,
                until=snoozed.until,
                reason=reason or f"status {status}",
            )
    if status == "resolved":
        ticket.resolved_at = at
    elif status == "closed":
        ticket.closed_at = at
    if status in due.ACTIVE or status == "pending":
        ticket.resolved_at = None
    if status != "closed":
        ticket.closed_at = None
    ticket.save()
    due.sync_pause(ticket, at)
    due.recompute(ticket, rules, at)
    wants_survey = survey and app.config.lifecycle.survey and not ticket.spam
    if status == "resolved" and old != "closed" and wants_survey:
        queue_survey(
            app, renderer or Renderer(app.config.templates_dir), ticket, at=at, actor=actor
        )
    return True


def apply_change(
    app: App,
    rules: RuleSet | None,
    ticket: Ticket,
    field: str,
    value: Any,
    *,
    actor: str,
    at: dt.datetime,
    message: Message | None = None,
    **detail: Any,
) -> bool:
    """Change one ticket field (status included) and recompute the due times it affects."""
    if field == "status":
        return set_status(
            app,
            rules,
            ticket,
            value,
            actor=actor,
            at=at,
            message=message,
            reason=detail.get("reason"),
        )
    if field == "priority" and value not in store.PRIORITIES:
        raise ValueError(f"unknown priority {value!r} (known: {', '.join(store.PRIORITIES)})")
    changed = store.set_field(ticket, field, value, actor=actor, at=at, message=message, **detail)
    if changed and field in SLA_FIELDS:
        due.recompute(ticket, rules, at)
    return changed


def set_priority(
    app: App,
    rules: RuleSet | None,
    ticket: Ticket,
    priority: str,
    *,
    actor: str,
    at: dt.datetime,
    message: Message | None = None,
) -> bool:
    """Change the priority and recompute the due times (the policy may change with it)."""
    return apply_change(
        app, rules, ticket, "priority", priority, actor=actor, at=at, message=message
    )


def record_first_response(
    ticket: Ticket, *, actor: str, at: dt.datetime, message: Message | None = None
) -> bool:
    """Mark the first response (an agent's public reply); later calls change nothing."""
    if ticket.first_response_at is not None:
        return False
    return store.set_field(ticket, "first_response_at", at, actor=actor, at=at, message=message)


def record_satisfaction(
    ticket: Ticket, rating: Rating, *, actor: str, at: dt.datetime, message: Message | None = None
) -> None:
    """Store the customer's rating and comment (a later one replaces it); one audit event,
    naming the rating it replaced."""
    previous = ticket.satisfaction_rating
    ticket.satisfaction_rating = rating.rating
    ticket.satisfaction_comment = rating.comment or None
    ticket.updated_at = at
    ticket.save()
    store.add_event(
        ticket,
        "satisfaction",
        actor=actor,
        at=at,
        message=message,
        rating=rating.rating,
        comment=rating.comment,
        **({"replaced": previous} if previous is not None else {}),
    )
