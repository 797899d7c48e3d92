"""The mail SLAs and the lifecycle send: surveys and reminders to customers, escalations to agents.

Mail to a customer goes out under the same loop protection as acknowledgements (robots, our own
addresses, bounces, the hourly limit); a refusal is recorded on the ticket as
``auto_reply_suppressed``. Composing runs in a savepoint: if it fails, a ``mail_error`` event says
why and the change that asked for the mail still stands.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from typing import Any

from maild.app import App
from maild.notify.compose import queue_mail, queue_to_agents
from maild.notify.loop import refusal
from maild.notify.queue import in_savepoint
from maild.notify.recipients import resolve_targets
from maild.notify.templates import Renderer
from maild.pipeline.message import Address
from maild.routing.engine import RuleSet
from maild.store import tickets as store
from maild.store.models import Message, Ticket


def last_public_message(ticket: Ticket) -> Message | None:
    """The latest mail between the customer and us, for threading an automatic mail under it."""
    return (
        Message.select()
        .where((Message.ticket == ticket) & Message.kind.in_(("customer", "agent")))
        .order_by(Message.created_at.desc(), Message.id.desc())
        .first()
    )


def to_customer(
    app: App,
    renderer: Renderer,
    ticket: Ticket,
    template: str,
    *,
    at: dt.datetime,
    kind: str,
    actor: str,
    extra: dict[str, Any] | None = None,
) -> str:
    """Queue ``template`` for the requester; return what happened, in words."""
    requester = ticket.requester
    why = refusal(
        requester.email, support=app.config.support_addresses, config=app.config.loop, now=at
    ) or _robot_requester(ticket)
    if why:
        store.add_event(
            ticket,
            "auto_reply_suppressed",
            actor=actor,
            at=at,
            to=requester.email,
            template=template,
            reason=why,
        )
        return f"no {template} to {requester.email}: {why}"
    return _queue(
        app,
        ticket,
        template,
        actor,
        at,
        lambda: queue_mail(
            app,
            renderer,
            ticket,
            template=template,
            to=[Address(requester.email, requester.name)],
            now=at,
            kind=kind,
            automatic=True,
            answering=last_public_message(ticket),
            extra_context=extra,
        ),
        f"{template} mailed to {requester.email}",
    )


def _robot_requester(ticket: Ticket) -> str | None:
    """Why the requester is a robot here: their latest mail on the ticket was automatic (list,
    bulk or auto-generated mail opens a ticket, but no automatic mail may answer it)."""
    last = (
        Message.select(Message.kind, Message.classification)
        .where(
            (Message.ticket == ticket)
            & (Message.direction == "in")
            & (Message.from_addr == ticket.requester.email)
        )
        .order_by(Message.created_at.desc(), Message.id.desc())
        .first()
    )
    if last is not None and last.kind == "robot":
        return f"the requester's mail is automatic ({last.classification})"
    return None


def to_targets(
    app: App,
    renderer: Renderer,
    rules: RuleSet,
    ticket: Ticket,
    template: str,
    targets: Sequence[str],
    *,
    at: dt.datetime,
    kind: str,
    actor: str,
    extra: dict[str, Any] | None = None,
) -> str:
    """Queue ``template`` for notify targets (team, assignee, agents, addresses)."""
    found = resolve_targets(rules, ticket, targets)
    if found.unresolved:
        store.add_event(
            ticket,
            "notify_skipped",
            actor=actor,
            at=at,
            template=template,
            reasons=list(found.unresolved),
        )
    if not found.to:
        return f"nobody to mail ({'; '.join(found.unresolved) or 'no targets'})"
    names = ", ".join(a.email for a in found.to)
    return _queue(
        app,
        ticket,
        template,
        actor,
        at,
        lambda: queue_to_agents(
            app,
            renderer,
            ticket,
            template=template,
            to=list(found.to),
            now=at,
            kind=kind,
            automatic=False,
            answering=last_public_message(ticket),
            extra_context=extra,
        ),
        f"mailed {names}",
    )


def _queue(
    app: App,
    ticket: Ticket,
    template: str,
    actor: str,
    at: dt.datetime,
    fn: Callable[[], object],
    done: str,
) -> str:
    error = in_savepoint(app, ticket, fn, template=template, actor=actor, at=at)
    return done if error is None else f"{template} not queued: {error}"
