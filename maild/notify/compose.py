"""Composing outgoing mail and queueing it in the outbox, inside the caller's transaction.

Every message gets a signed Message-ID of its own (stored, so a reply to it threads), In-Reply-To and
References to the customer's message, ``[PREFIX-N] subject`` without piled-up reply prefixes, From
the support address the customer wrote to, a Date, our loop header, Outlook's Thread-Topic, and on
automatic mail ``Auto-Submitted: auto-replied`` and ``X-Auto-Response-Suppress: All``. Values from
mail (names, subjects) are stripped of CR/LF and control characters and addresses are built as
objects, never parsed from strings, so nothing can add a header or a recipient.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Sequence
from email import policy
from email.headerregistry import Address as HeaderAddress
from email.message import EmailMessage
from email.utils import format_datetime
from typing import Any

from maild.app import App
from maild.clock import iso
from maild.pipeline.addresses import LOOP_HEADER, Signer, loop_token
from maild.pipeline.message import Address
from maild.pipeline.quotes import REPLY_MARKER
from maild.pipeline.thread import strip_reply_prefixes
from maild.store import tickets as store
from maild.store.models import Message, OutboxEntry, Ticket
from maild.notify.templates import Renderer

_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")


def header_safe(value: str, limit: int = 900) -> str:
    """One line, no control characters (no CR/LF header injection), at most ``limit`` chars."""
    return _CONTROL.sub(" ", value).strip()[:limit]


def header_address(addr: Address) -> HeaderAddress:
    local, _, domain = addr.email.partition("@")
    return HeaderAddress(display_name=header_safe(addr.name, 200), username=local, domain=domain)


def context(
    app: App, ticket: Ticket, message: Message | None, agent: Address | None = None
) -> dict[str, Any]:
    """The plain-dict variables every template gets (listed in templates/README.md)."""
    prefix = app.config.prefix
    ref = f"{prefix}-{ticket.id}"
    requester = ticket.requester
    return {
        "ticket": {
            "ref": ref,
            "tag": f"[{ref}]",
            "subject": ticket.subject,
            "status": ticket.status,
            "priority": ticket.priority,
            "team": ticket.team or "",
            "assignee": ticket.assignee or "",
            "tags": store.tags_of(ticket),
            "created_at": iso(ticket.created_at),
        },
        "requester": {"email": requester.email, "name": requester.name},
        "message": {
            "body": message.body if message else "",
            "from": message.from_addr if message else "",
            "from_name": message.from_name if message else "",
            "subject": message.subject if message else "",
        },
        "agent": {"email": agent.email if agent else "", "name": agent.name if agent else ""},
        "instance": {"name": app.config.instance.name, "support_address": ticket.support_address},
        "reply_marker": REPLY_MARKER,
    }


def queue_mail(
    app: App,
    renderer: Renderer,
    ticket: Ticket,
    *,
    template: str,
    to: Sequence[Address],
    now: dt.datetime,
    kind: str,
    automatic: bool,
    answering: Message | None = None,
    cc: Sequence[Address] = (),
    agent: Address | None = None,
    extra_context: dict[str, Any] | None = None,
) -> OutboxEntry:
    """Render ``template`` and queue it for ``to`` (and ``cc``); returns the outbox row."""
    ctx = context(app, ticket, answering, agent)
    if extra_context:
        ctx.update(extra_context)
    rendered = renderer.render(template, ctx)
    if rendered.error:
        store.add_event(
            ticket,
            "template_error",
            actor="system",
            at=now,
            template=template,
            error=rendered.error,
        )
    signer = Signer(app.config.prefix, app.secret)
    support = ticket.support_address or app.config.support_addresses[0]
    domain = support.partition("@")[2]
    message_id = signer.message_id(ticket.id, domain)
    subject = f"[{app.config.prefix}-{ticket.id}] {strip_reply_prefixes(ticket.subject)}"
    msg = EmailMessage(policy=policy.SMTP)
    from_name = agent.name if agent and agent.name else app.config.instance.name
    msg["From"] = header_address(Address(support, from_name))
    msg["To"] = [header_address(a) for a in to]
    if cc:
        msg["Cc"] = [header_address(a) for a in cc]
    msg["Reply-To"] = header_address(
        Address(signer.reply_address(support, ticket.id), app.config.instance.name)
    )
    msg["Subject"] = header_safe(subject)
    msg["Date"] = format_datetime(now.replace(tzinfo=dt.UTC))
    msg["Message-ID"] = f"<{message_id}>"
    if answering is not None:
        refs = [r for r in answering.references.split() if r][-20:]
        parent = f"<{answering.message_id}>"
        msg["In-Reply-To"] = parent
        msg["References"] = " ".join([*(f"<{r}>" for r in refs), parent])
    msg["Thread-Topic"] = header_safe(strip_reply_prefixes(ticket.subject) or subject)
    msg[LOOP_HEADER] = loop_token(app.secret)
    if automatic:
        msg["Auto-Submitted"] = "auto-replied"
        msg["X-Auto-Response-Suppress"] = "All"
    msg.set_content(rendered.text)
    if rendered.html is not None:
        msg.add_alternative(rendered.html, subtype="html")
    raw = msg.as_bytes()
    recipients = [a.email for a in (*to, *cc)]
    row = Message.create(
        ticket=ticket,
        direction="out",
        kind=kind,
        message_id=message_id,
        dedup_key=f"mid:{message_id}",
        from_addr=support,
        from_name=from_name,
        to_addrs=json.dumps([a.email for a in to]),
        cc_addrs=json.dumps([a.email for a in cc]),
        subject=subject,
        body=rendered.text.replace(REPLY_MARKER, "").strip(),
        full_text=rendered.text,
        html=rendered.html,
        in_reply_to=answering.message_id if answering else "",
        raw=raw,
        created_at=now,
    )
    entry = OutboxEntry.create(
        ticket=ticket,
        message=row,
        kind=kind,
        mail_from=support,
        rcpt_tos=json.dumps(recipients),
        raw=raw,
        created_at=now,
        next_attempt_at=now,
        auto_to=to[0].email.lower() if automatic and to else None,
    )
    store.add_event(
        ticket,
        "mail_queued",
        actor="system",
        at=now,
        message=row,
        kind=kind,
        template=template,
        to=recipients,
        outbox=entry.id,
    )
    return entry
