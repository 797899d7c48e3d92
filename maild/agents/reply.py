"""An agent's mail applied to its ticket: the commands, and the answer sent to the customer.

Runs as part of the agents stage, after the rules (which saw the mail as event ``agent_reply``), so
an agent's explicit command wins over an automatic rule: ``#status resolved`` stays resolved even
though the shipped rule "Answered tickets wait for the customer" made the ticket pending.

Order: watchers (``#cc``, so an added address gets this very answer), tags, team, assignee,
priority; then the answer (template ``agent_reply``) from the support address under the agent's
name, to the requester with the ticket's watchers in Cc, threaded under the customer's last
message; the first response time; and last the status (``#status``/``#close``, or ``new`` ->
``open`` after an answer), so that mail the status change sends (the satisfaction survey on
resolving) follows the answer. A note (``#note``), a mail of commands only and a mail with an
invalid command send nothing to the customer.
"""

from __future__ import annotations

import datetime as dt

from maild.agents import notify, relations
from maild.agents.commands import Commands
from maild.agents.mail import AgentMail
from maild.app import App
from maild.notify.compose import OutAttachment, valid_address
from maild.notify.templates import Renderer
from maild.pipeline.addresses import is_support_address
from maild.pipeline.message import Address
from maild.routing.engine import RuleSet
from maild.sla import lifecycle
from maild.store import custom_fields
from maild.store import tickets as store
from maild.store.attachments import blob_path
from maild.store.models import Attachment, Message, Ticket, TicketTag, Watcher
from maild.store.origins import origin


def apply_mail(
    app: App, renderer: Renderer, ticket: Ticket, message: Message, mail: AgentMail
) -> tuple[str, ...]:
    """Apply a trusted agent's mail (already stored as ``message``) to ``ticket``; return the
    words for the log line."""
    assert mail.commands is not None
    now = message.created_at
    commands, actor, rules = mail.commands, mail.agent.email, mail.rules
    author = Address(mail.agent.email, mail.agent.name)
    if commands.errors:
        errors = [e.to_dict() for e in commands.errors]
        store.add_event(
            ticket, "commands_rejected", actor=actor, at=now, message=message, errors=errors
        )
        refused = [e for e in commands.errors if e.needs is not None]
        if refused:  # an agent tried what its role does not allow: audited on its own
            store.add_event(
                ticket,
                "command_refused",
                actor=actor,
                at=now,
                message=message,
                role=mail.agent.role,
                refused=[{"command": e.text, "needs_role": e.needs} for e in refused],
            )
        said = notify.command_error(
            app, renderer, ticket, agent=author, errors=errors, cause=message, at=now
        )
        return (*said, "commands rejected")
    words: list[str] = []
    store.add_event(
        ticket,
        "answered" if mail.public else "agent_note",
        actor=actor,
        at=now,
        message=message,
        trust=mail.verdict.how,
        commands=list(commands.lines),
    )
    apply_fields(app, rules, ticket, commands, actor=actor, message=message)
    for name, value in commands.fields:
        custom_fields.set_value(ticket, name, value, actor=actor, at=now, message=message)
    for number in commands.link:
        if relations.add_link(ticket.id, number, at=now):
            _both(ticket, number, "linked", actor=actor, at=now, message=message)
    for number in commands.unlink:
        if relations.remove_link(ticket.id, number):
            _both(ticket, number, "unlinked", actor=actor, at=now, message=message)
    if mail.mentioned:
        words += notify.mentioned(
            app,
            renderer,
            rules,
            ticket,
            mail.mentioned,
            by=author,
            cause=message,
            at=now,
        )
    if mail.public:
        sent = answer(app, renderer, ticket, message, author)
        words += sent.words
        if sent.ok:
            lifecycle.record_first_response(ticket, actor=actor, at=now, message=message)
        else:  # nothing reached the customer: the agent must know
            words += notify.answer_failed(
                app, renderer, ticket, agent=author, cause=message, at=now
            )
    status = commands.status or ("open" if mail.public and ticket.status == "new" else None)
    if commands.status not in (None, "closed") and ticket.spam:
        # An agent re-opening a spam ticket says it is none: otherwise it would stay outside
        # SLAs and notifications while open.
        store.set_field(ticket, "spam", False, actor=actor, at=now, message=message)
    if status is not None:
        reason = "#close" if commands.status and "#close" in _names(commands) else None
        lifecycle.set_status(
            app,
            rules,
            ticket,
            status,
            actor=actor,
            at=now,
            message=message,
            reason=reason or ("#status" if commands.status else "agent answered"),
            renderer=renderer,
        )
    if commands.status is not None:
        sub = rules.statuses.get(commands.substatus or "")
        custom_fields.set_substatus(ticket, sub.name if sub else None, sub.label if sub else "")
        if sub is not None:
            store.add_event(
                ticket,
                "substatus",
                actor=actor,
                at=now,
                message=message,
                name=sub.name,
                base=sub.base,
            )
    if commands.snooze_until is not None and ticket.status == "pending":
        relations.set_snooze(ticket, commands.snooze_until, by=actor)
        store.add_event(
            ticket, "snoozed", actor=actor, at=now, message=message, until=commands.snooze_until
        )
        words.append("snoozed")
    if commands.merge_into is not None:
        merge_into(
            app,
            renderer,
            rules,
            ticket,
            store.locked_ticket(app.db, commands.merge_into),
            actor=actor,
            at=now,
            message=message,
            outcome=words,
        )
    return (*words, "agent reply" if mail.public else "agent note")


def _both(
    ticket: Ticket, other: int, action: str, *, actor: str, at: dt.datetime, message: Message
) -> None:
    """A link event on both tickets, each naming the other."""
    store.add_event(ticket, action, actor=actor, at=at, message=message, other=other)
    peer = Ticket.get_by_id(other)
    store.add_event(peer, action, actor=actor, at=at, message=message, other=ticket.id)


def merge_into(
    app: App,
    renderer: Renderer,
    rules: RuleSet | None,
    source: Ticket,
    target: Ticket,
    *,
    actor: str,
    at: dt.datetime,
    message: Message | None,
    outcome: list[str],
) -> None:
    """Merge ``source`` into ``target`` (already checked), close ``source`` and tell its
    customer (template ``merged``, on the target ticket, so that their answers thread there)."""
    prefix = app.config.prefix
    requester = source.requester
    relations.merge(source, target, actor=actor, at=at, message=message)
    lifecycle.set_status(
        app,
        rules,
        source,
        "closed",
        actor=actor,
        at=at,
        reason=f"merged into {prefix}-{target.id}",
        survey=False,
    )
    source.updated_at = at
    source.save()
    cause = message or notify.last_customer_message(target)
    if cause is None:
        return
    sent = notify.send(
        app,
        renderer,
        target,
        template="merged",
        to=[Address(requester.email, requester.name)],
        at=at,
        cause=cause,
        actor=actor,
        kind="notify",
        answering=notify.last_customer_message(target),
        extra={
            "merged": {
                "ref": f"{prefix}-{source.id}",
                "subject": source.subject,
            }
        },
    )
    outcome.extend(sent.words)
    outcome.append(f"merged into {prefix}-{target.id}")


def _names(commands: Commands) -> set[str]:
    return {line.split()[0].rstrip(":").lower() for line in commands.lines}


def apply_fields(
    app: App, rules: RuleSet, ticket: Ticket, commands: Commands, *, actor: str, message: Message
) -> None:
    """Everything but the status: watchers, tags, team, assignee, priority."""
    now = message.created_at
    added = store.add_watchers(ticket, [Address(a) for a in commands.cc_add])
    removed = [
        a
        for a in commands.cc_remove
        if Watcher.delete().where((Watcher.ticket == ticket) & (Watcher.email == a)).execute()
    ]
    if added or removed:
        store.add_event(
            ticket, "watchers", actor=actor, at=now, message=message, added=added, removed=removed
        )
    for tag in store.add_tags(ticket, commands.tags_add):
        store.add_event(ticket, "tag_added", actor=actor, at=now, message=message, tag=tag)
    for tag in commands.tags_remove:
        gone = (
            TicketTag.delete()
            .where((TicketTag.ticket == ticket) & (TicketTag.tag == tag))
            .execute()
        )
        if gone:
            store.add_event(ticket, "tag_removed", actor=actor, at=now, message=message, tag=tag)
    for field, value in (
        ("team", commands.team),
        ("assignee", commands.assign),
        ("priority", commands.priority),
    ):
        if value is not None:
            lifecycle.apply_change(
                app, rules, ticket, field, value, actor=actor, at=now, message=message
            )


def answer(
    app: App,
    renderer: Renderer,
    ticket: Ticket,
    message: Message,
    agent: Address,
) -> notify.Sent:
    """Send the agent's visible text to the requester and the watchers (``agent_reply``).

    A ticket that came in through a Slack channel or an API channel with a ``reply_url`` gets
    the answer there instead (maild.webhooks.queue fans the ``answered`` event out to it).
    """

    from maild.webhooks.channels import answers_over_http

    came = origin(ticket) if app.config.http.channels else None
    if came is not None and answers_over_http(app.config, came.channel):
        return notify.Sent(True, (f"answer goes back to channel {came.channel}",))
    support = app.config.support_addresses
    requester = ticket.requester
    skip = {requester.email.lower(), agent.email.lower()}
    cc = [
        Address(w.email, w.name)
        for w in ticket.watchers.order_by(Watcher.id)
        if w.email.lower() not in skip
        and not is_support_address(w.email, support)
        and valid_address(w.email)
    ]
    return notify.send(
        app,
        renderer,
        ticket,
        template="agent_reply",
        to=[Address(requester.email, requester.name)],
        cc=cc,
        at=message.created_at,
        cause=message,
        actor=agent.email,
        kind="agent",
        answering=notify.last_customer_message(ticket),
        agent=agent,
        extra={
            "message": {
                "body": message.body,
                "from": agent.email,
                "from_name": agent.name,
                "subject": message.subject,
            }
        },
        attachments=attached_files(app, message),
    )


def attached_files(app: App, message: Message) -> list[OutAttachment]:
    """What the agent attached (not inline images of their signature), to pass on to the customer."""
    root = app.data_dir / "attachments"
    rows = (
        Attachment.select()
        .where(
            (Attachment.message == message) & (Attachment.inline == False)  # noqa: E712
        )
        .order_by(Attachment.id)
    )
    return [
        OutAttachment(row.filename, row.content_type, blob_path(root, row.sha256).read_bytes())
        for row in rows
    ]
