"""Mail to agents: assignment and customer-reply notifications, command errors, forgery warnings.

Every notification shows the ticket's state and the customer's message and, like all our mail,
has the ticket's signed address as Reply-To, so that pressing Reply answers the customer.

Policy, one notification per agent per inbound message: the rules' notifications come first
(``notify: {template: notify_new|notify_reply, to: [...]}``); the built-in ones below go only to
agents that no notification about the same message has reached yet. So the shipped rule
"Customer replied" (``notify_reply`` to the assignee) and the built-in customer-reply
notification never both reach the assignee, and the assignee of a new billing ticket gets the
rule's ``notify_new`` (which names them as assignee) instead of a second ``notify_assigned``.

- ``notify_assigned``: whenever the assignee changes (by a rule or a command), to the new
  assignee, unless that agent made the change by their own mail (``#assign me``).
- ``notify_reply``: a customer's reply, to the assignee, or to the available members of the
  ticket's team while nobody is assigned; never to the author of the mail.
- New tickets: only the rules notify (``notify_new`` to a team), since which teams want every new
  ticket in their inbox is routing policy.

Notifications go out as a person's mail (no ``Auto-Submitted``, like the rules' ones). Command
errors and forgery warnings answer a mail automatically, so they pass the loop protection
(``maild.notify.loop.refusal``): a forger cannot flood an agent with more than
``loop.auto_replies_per_hour`` warnings. Composing runs in a savepoint; a failure is recorded as
``mail_error`` and the message is still stored.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from maild.app import App
from maild.notify.compose import OutAttachment, queue_mail, queue_to_agents
from maild.notify.loop import refusal
from maild.notify.queue import in_savepoint
from maild.notify.recipients import resolve_targets
from maild.notify.templates import Renderer
from maild.pipeline.message import Address
from maild.routing.engine import RuleSet
from maild.routing.schema import ASSIGNEE, TEAM
from maild.store import tickets as store
from maild.store.models import Event, Message, Ticket


@dataclass(frozen=True, slots=True)
class Sent:
    """Whether a mail was queued, and the words for the log line."""

    ok: bool
    words: tuple[str, ...]


def send(
    app: App,
    renderer: Renderer,
    ticket: Ticket,
    *,
    template: str,
    to: Sequence[Address],
    at: dt.datetime,
    cause: Message,
    actor: str,
    kind: str = "notify",
    automatic: bool = False,
    answering: Message | None = None,
    cc: Sequence[Address] = (),
    agent: Address | None = None,
    extra: dict[str, Any] | None = None,
    to_agents: bool = False,
    attachments: Sequence[OutAttachment] = (),
) -> Sent:
    """Queue ``template`` in a savepoint (failures: ``mail_error``, :mod:`maild.notify.queue`).

    ``to_agents``: one mail per recipient with their own signed Reply-To (see queue_to_agents).
    """
    words: list[str] = []
    if automatic:
        allowed: list[Address] = []
        for addr in to:
            why = refusal(
                addr.email, support=app.config.support_addresses, config=app.config.loop, now=at
            )
            if why:
                store.add_event(
                    ticket,
                    "auto_reply_suppressed",
                    actor=actor,
                    at=at,
                    message=cause,
                    to=addr.email,
                    template=template,
                    reason=why,
                )
                words.append(f"no {template}: {why}")
            else:
                allowed.append(addr)
        to = allowed
    if not to:
        return Sent(False, tuple(words))

    def queue() -> None:
        if to_agents:
            queue_to_agents(
                app,
                renderer,
                ticket,
                template=template,
                to=to,
                now=at,
                kind=kind,
                automatic=automatic,
                answering=answering,
                cc=cc,
                agent=agent,
                extra_context=extra,
            )
        else:
            queue_mail(
                app,
                renderer,
                ticket,
                template=template,
                to=to,
                now=at,
                kind=kind,
                automatic=automatic,
                answering=answering,
                cc=cc,
                agent=agent,
                extra_context=extra,
                attachments=attachments,
            )

    error = in_savepoint(app, ticket, queue, template=template, actor=actor, at=at, cause=cause)
    if error is not None:
        return Sent(False, (*words, f"no {template}: {error}"))
    return Sent(True, (*words, f"{template} queued"))


def last_customer_message(ticket: Ticket) -> Message | None:
    """The customer's latest message on ``ticket`` (what agents answer and are shown)."""
    return (
        Message.select()
        .where(
            (Message.ticket == ticket) & (Message.direction == "in") & (Message.kind == "customer")
        )
        .order_by(Message.created_at.desc(), Message.id.desc())
        .first()
    )


def already_notified(ticket: Ticket, cause: Message) -> set[str]:
    """Who got a notification about ``cause`` already (queued after it, in its transaction).

    On PostgreSQL the worker holds the ticket's row lock, and on SQLite the write lock, so rows
    of ``ticket`` newer than ``cause`` are this transaction's own.
    """
    rows = Message.select(Message.to_addrs, Message.cc_addrs).where(
        (Message.ticket == ticket)
        & (Message.direction == "out")
        & (Message.kind == "notify")
        & (Message.id > cause.id)
    )
    found: set[str] = set()
    for row in rows:
        for column in (row.to_addrs, row.cc_addrs):
            found.update(a.lower() for a in json.loads(column or "[]"))
    return found


def notify_assigned(
    app: App,
    renderer: Renderer,
    rules: RuleSet,
    ticket: Ticket,
    *,
    previous: str | None,
    cause: Message,
    by_self: str | None,
    at: dt.datetime,
) -> tuple[str, ...]:
    """Tell the new assignee, unless ``by_self`` (the agent who wrote) assigned themselves."""
    new = ticket.assignee
    if not new or new == previous or (by_self and new.lower() == by_self.lower()):
        return ()
    if new.lower() in already_notified(ticket, cause):
        return ()
    last = (
        Event.select(Event.actor)
        .where((Event.ticket == ticket) & (Event.action == "assignee") & (Event.message == cause))
        .order_by(Event.id.desc())
        .first()
    )
    agent = rules.agent(new)
    return send(
        app,
        renderer,
        ticket,
        template="notify_assigned",
        to=[Address(new, agent.name if agent else "")],
        at=at,
        cause=cause,
        actor="system",
        answering=last_customer_message(ticket),
        extra={"assignment": {"by": last.actor if last else "", "previous": previous or ""}},
        to_agents=True,
    ).words


def notify_customer_reply(
    app: App,
    renderer: Renderer,
    rules: RuleSet,
    ticket: Ticket,
    *,
    cause: Message,
    author: str,
    at: dt.datetime,
    non_participant: bool = False,
) -> tuple[str, ...]:
    """``notify_reply`` to the assignee, or the team while unassigned (see the module policy).
    ``non_participant``: the mail is from someone outside the ticket (the template says so)."""
    target = ASSIGNEE if ticket.assignee else TEAM
    if target == TEAM and not ticket.team:
        store.add_event(
            ticket,
            "notify_skipped",
            actor="system",
            at=at,
            message=cause,
            template="notify_reply",
            reasons=["nobody is assigned and the ticket has no team"],
        )
        return ()
    exclude: Iterable[str] = [author, *already_notified(ticket, cause)]
    targets = resolve_targets(rules, ticket, [target], exclude=exclude)
    if targets.to:
        return send(
            app,
            renderer,
            ticket,
            template="notify_reply",
            to=list(targets.to),
            at=at,
            cause=cause,
            actor="system",
            answering=cause,
            to_agents=True,
            extra={"non_participant": non_participant},
        ).words
    return ()


def forgery_warning(
    app: App,
    renderer: Renderer,
    ticket: Ticket,
    *,
    agent: Address,
    reason: str,
    cause: Message,
    at: dt.datetime,
) -> tuple[str, ...]:
    """Warn ``agent`` that a mail claiming their address was taken as a customer's."""
    store.add_event(
        ticket,
        "forgery_suspected",
        actor="system",
        at=at,
        message=cause,
        claimed=agent.email,
        reason=reason,
    )
    return send(
        app,
        renderer,
        ticket,
        template="forgery_warning",
        to=[agent],
        at=at,
        cause=cause,
        actor="system",
        kind="auto",
        automatic=True,
        answering=cause,
        extra={"forgery": {"claimed": agent.email, "reason": reason}},
        to_agents=True,
    ).words


def mentioned(
    app: App,
    renderer: Renderer,
    rules: RuleSet,
    ticket: Ticket,
    agents: tuple[str, ...],
    *,
    by: Address,
    cause: Message,
    at: dt.datetime,
) -> tuple[str, ...]:
    """``notify_mention`` to each agent an internal note mentions, who then watches the ticket.

    Agents only (the mention resolver refuses anyone else), each with their own signed reply
    address: the note never goes to the customer.
    """
    people = [Address(email, a.name if (a := rules.agents.get(email)) else "") for email in agents]
    added = store.add_watchers(ticket, people)
    if added:
        store.add_event(ticket, "watchers", actor=by.email, at=at, message=cause, added=added)
    store.add_event(ticket, "mentioned", actor=by.email, at=at, message=cause, agents=list(agents))
    return send(
        app,
        renderer,
        ticket,
        template="notify_mention",
        to=people,
        at=at,
        cause=cause,
        actor=by.email,
        answering=last_customer_message(ticket),
        extra={"mention": {"by": by.name or by.email, "note": cause.body}},
        to_agents=True,
    ).words


def command_error(
    app: App,
    renderer: Renderer,
    ticket: Ticket,
    *,
    agent: Address,
    errors: list[dict[str, object]],
    cause: Message,
    at: dt.datetime,
) -> tuple[str, ...]:
    """Tell ``agent`` which command lines failed and why; nothing of their mail was applied."""
    return send(
        app,
        renderer,
        ticket,
        template="command_error",
        to=[agent],
        at=at,
        cause=cause,
        actor="system",
        kind="auto",
        automatic=True,
        answering=cause,
        extra={"errors": errors},
        to_agents=True,
    ).words


def answer_failed(
    app: App,
    renderer: Renderer,
    ticket: Ticket,
    *,
    agent: Address,
    cause: Message,
    at: dt.datetime,
) -> tuple[str, ...]:
    """Tell ``agent`` that their public answer could not be sent (``send_error``), and why."""
    error = (
        Event.select(Event.detail)
        .where((Event.ticket == ticket) & (Event.action == "mail_error") & (Event.message == cause))
        .order_by(Event.id.desc())
        .first()
    )
    reason = json.loads(error.detail).get("error", "unknown") if error else "unknown"
    return send(
        app,
        renderer,
        ticket,
        template="send_error",
        to=[agent],
        at=at,
        cause=cause,
        actor="system",
        kind="auto",
        answering=cause,
        to_agents=True,
        extra={"failure": {"reason": reason}},
    ).words
