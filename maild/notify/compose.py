"""Composing outgoing mail and queueing it in the outbox, inside the caller's transaction.

Every message gets a signed Message-ID of its own (stored, so a reply to it threads),
In-Reply-To and References to the customer's message, ``[PREFIX-N] subject`` without piled-up
reply prefixes, From the support address the customer wrote to, a Date, our loop header, Outlook's
Thread-Topic, and on automatic mail ``Auto-Submitted`` (RFC 3834), ``X-Auto-Response-Suppress:
All`` (Exchange) and ``Precedence: bulk`` (vacation programs).

Header injection is prevented in three layers. Values from mail (names, subjects, Message-IDs) are
reduced to one line without control characters or Unicode line separators; addresses are checked
against a strict syntax and built as objects, never parsed from strings; and the finished message
is parsed again and compared with what was meant (header names, every address, the threading
headers). A mismatch, which the stdlib's folding bugs can cause, drops the display names and
rebuilds; if that still does not match, nothing is queued.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from email import policy
from email.headerregistry import Address as HeaderAddress
from email.message import EmailMessage
from email.parser import BytesParser
from email.policy import EmailPolicy
from email.utils import format_datetime
from typing import Any

from maild.app import App
from maild.clock import iso
from maild.kb.mail import ack_suggestions
from maild.notify.fastmime import build_plain
from maild.notify.templates import Renderer
from maild.pipeline.addresses import LOOP_HEADER, Signer, loop_token
from maild.pipeline.message import Address
from maild.pipeline.participants import shown_name
from maild.pipeline.quotes import REPLY_MARKER
from maild.pipeline.thread import strip_reply_prefixes
from maild.store import tickets as store
from maild.store.attachments import sanitize_filename
from maild.store.models import Message, OutboxEntry, Ticket
from maild.web.links import status_url

# C0 and C1 controls, DEL, the Unicode line and paragraph separators (str.splitlines() breaks on
# all of them, and the email package refuses them in headers) and lone surrogates (unencodable).
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]+")
_SPACES = re.compile(r"\s+")
# An RFC 2047 encoded word in a display name is decoded by the email package and written back
# unquoted, so "=?utf-8?q?evil=40x.test?=" would become a second address. Break the marker.
_ENCODED_WORD = re.compile(r"=\?|\?=")
_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_ADDR_SPEC = re.compile(rf"{_ATOM}(?:\.{_ATOM})*@(?:{_LABEL}(?:\.{_LABEL})+|localhost)")
# A msg-id we repeat in In-Reply-To/References: printable ASCII without space, < or >.
_MSG_ID = re.compile(r"[!-;=?-~]{1,490}")
_ID_HEADERS = frozenset({"in-reply-to", "references"})
MAX_REFERENCES = 20


class ComposeError(Exception):
    """An outgoing message could not be built safely (no valid recipient, unsafe headers)."""


class _OutgoingPolicy(EmailPolicy):
    """``policy.SMTP``, except that In-Reply-To and References are folded only between ids.

    The stdlib treats both as unstructured text and RFC 2047-encodes any word longer than a line,
    which turns a long Message-ID (Gmail's and Outlook's often pass 70 characters) into an
    encoded word that no client matches, and the conversation falls apart.
    """

    def fold(self, name: str, value: str) -> str:
        if name.lower() in _ID_HEADERS and self.max_line_length != 998:
            return self.clone(max_line_length=998).fold(name, value)
        return super().fold(name, value)

    def fold_binary(self, name: str, value: str) -> bytes:
        if name.lower() in _ID_HEADERS and self.max_line_length != 998:
            return self.clone(max_line_length=998).fold_binary(name, value)
        return super().fold_binary(name, value)


OUTGOING_POLICY = _OutgoingPolicy(linesep="\r\n")


def header_safe(value: str, limit: int = 900) -> str:
    """One line, no control characters (no CR/LF header injection), at most ``limit`` chars."""
    return _SPACES.sub(" ", _CONTROL.sub(" ", value)).strip()[:limit]


def display_name(name: str) -> str:
    """A display name that can only ever be a display name."""
    name = header_safe(name, 200)
    while _ENCODED_WORD.search(name):  # a replacement can form a new marker: "?=?" -> "? =?"
        name = _ENCODED_WORD.sub(lambda m: m.group(0)[0] + " " + m.group(0)[1], name)
    return name[:200]


def valid_address(address: str) -> bool:
    """True for a plain ``local@domain`` we are willing to put in an envelope and a header."""
    local, _, domain = address.rpartition("@")
    if domain.lower().endswith(".invalid"):  # RFC 6761: never delivered (Slack requesters)
        return False
    return len(address) <= 254 and len(local) <= 64 and bool(_ADDR_SPEC.fullmatch(address))


def header_address(addr: Address) -> HeaderAddress:
    """An address object for a header; raises :class:`ComposeError` for an invalid address."""
    if not valid_address(addr.email):
        raise ComposeError(f"not a valid address: {addr.email!r}")
    local, _, domain = addr.email.rpartition("@")
    return HeaderAddress(display_name=display_name(addr.name), username=local, domain=domain)


def clean_subject(prefix: str, subject: str) -> str:
    """The subject without leading reply prefixes and tags of this instance, however piled up."""
    tag = re.compile(rf"^\s*\[\s*{re.escape(prefix)}-\d{{1,12}}\s*\]", re.IGNORECASE)
    text = header_safe(subject)
    while True:
        stripped = strip_reply_prefixes(tag.sub("", text)).strip()
        if stripped == text:
            return text
        text = stripped


def outgoing_subject(prefix: str, number: int, subject: str) -> str:
    """``[PREFIX-N] subject``, the form every reply keeps so that it threads."""
    return header_safe(f"[{prefix}-{number}] {clean_subject(prefix, subject)}".rstrip())


def message_ids(values: Sequence[str]) -> list[str]:
    """The values that are safe to repeat as msg-ids (without angle brackets)."""
    return [v for v in values if _MSG_ID.fullmatch(v)]


def text_safe(text: str) -> str:
    """Text that encodes as UTF-8 (lone surrogates replaced) and has no NULs."""
    return text.encode("utf-8", "replace").decode("utf-8").replace("\x00", "")


@dataclass(frozen=True)
class OutAttachment:
    """A file sent along (e.g. what an agent attached to their reply); the name is sanitized."""

    filename: str
    content_type: str
    data: bytes


@dataclass(frozen=True)
class Outgoing:
    """Everything that goes into one outgoing message, as plain values."""

    from_addr: Address
    to: tuple[Address, ...]
    cc: tuple[Address, ...]
    reply_to: Address | None
    subject: str
    thread_topic: str
    date: dt.datetime
    message_id: str
    in_reply_to: str | None
    references: tuple[str, ...]
    loop_token: str
    auto_submitted: str | None  # auto-replied | auto-generated | None for a person's mail
    text: str
    html: str | None
    attachments: tuple[OutAttachment, ...] = ()


def build_message(out: Outgoing) -> bytes:
    """The message as bytes; raises :class:`ComposeError`.

    Plain mail is written directly from whitelisted values (:mod:`maild.notify.fastmime`);
    anything else is built by the stdlib and checked by parsing it again."""
    addresses = [out.from_addr, *out.to, *out.cc, *([out.reply_to] if out.reply_to else [])]
    if all(valid_address(a.email) for a in addresses):
        html = text_safe(out.html) if out.html is not None else None
        fast = build_plain(out, text_safe(out.text), html)
        if fast is not None:
            return fast
    raw = _build(out, with_names=True)
    problem = _mismatch(raw, out)
    if problem is None:
        return raw
    # The stdlib folded a display name or a subject into something else: send without names.
    raw = _build(out, with_names=False)
    again = _mismatch(raw, out)
    if again is not None:
        raise ComposeError(f"unsafe headers after rebuilding: {again} (first: {problem})")
    return raw


def _build(out: Outgoing, *, with_names: bool) -> bytes:
    def addr(a: Address) -> HeaderAddress:
        return header_address(a if with_names else Address(a.email))

    msg = EmailMessage(policy=OUTGOING_POLICY)
    msg["From"] = addr(out.from_addr)
    msg["To"] = [addr(a) for a in out.to]
    if out.cc:
        msg["Cc"] = [addr(a) for a in out.cc]
    if out.reply_to is not None:
        msg["Reply-To"] = addr(out.reply_to)
    msg["Subject"] = out.subject if with_names else out.subject.encode("ascii", "replace").decode()
    msg["Date"] = format_datetime(out.date.replace(tzinfo=dt.UTC))
    msg["Message-ID"] = f"<{out.message_id}>"
    if out.in_reply_to:
        msg["In-Reply-To"] = f"<{out.in_reply_to}>"
    if out.references:
        msg["References"] = " ".join(f"<{r}>" for r in out.references)
    if out.thread_topic:
        topic = out.thread_topic
        msg["Thread-Topic"] = topic if with_names else topic.encode("ascii", "replace").decode()
    msg[LOOP_HEADER] = out.loop_token
    if out.auto_submitted:
        msg["Auto-Submitted"] = out.auto_submitted
        msg["X-Auto-Response-Suppress"] = "All"
        msg["Precedence"] = "bulk"
    msg.set_content(text_safe(out.text))
    if out.html is not None:
        msg.add_alternative(text_safe(out.html), subtype="html")
    for index, att in enumerate(out.attachments, 1):
        maintype, _, subtype = att.content_type.partition("/")
        if not (maintype and subtype) or maintype == "multipart":
            maintype, subtype = "application", "octet-stream"
        name = sanitize_filename(att.filename, content_type=f"{maintype}/{subtype}", index=index)
        msg.add_attachment(att.data, maintype=maintype, subtype=subtype, filename=name)
    return msg.as_bytes()


def _expected_headers(out: Outgoing) -> list[str]:
    names = ["from", "to", "subject", "date", "message-id", LOOP_HEADER.lower(), "mime-version"]
    names.append("content-type")
    if out.html is None and not out.attachments:
        names.append("content-transfer-encoding")
    for present, name in (
        (out.cc, "cc"),
        (out.reply_to, "reply-to"),
        (out.in_reply_to, "in-reply-to"),
        (out.references, "references"),
        (out.thread_topic, "thread-topic"),
    ):
        if present:
            names.append(name)
    if out.auto_submitted:
        names += ["auto-submitted", "x-auto-response-suppress", "precedence"]
    return sorted(names)


def _mismatch(raw: bytes, out: Outgoing) -> str | None:
    """Why the parsed message differs from what was meant, or None when it does not."""
    parsed = BytesParser(policy=policy.default).parsebytes(raw, headersonly=True)
    names = sorted(k.lower() for k in parsed)
    if names != _expected_headers(out):
        return f"header fields {names}"

    def addresses(name: str) -> list[str]:
        header = parsed[name]
        if header is None:
            return []
        return [a.addr_spec.lower() for a in getattr(header, "addresses", ())]

    for name, meant in (
        ("From", [out.from_addr]),
        ("To", out.to),
        ("Cc", out.cc),
        ("Reply-To", [out.reply_to] if out.reply_to else []),
    ):
        if addresses(name) != [a.email.lower() for a in meant]:
            return f"{name} reads {addresses(name)}"
    ids = re.findall(r"<([^<>]*)>", str(parsed.get("References", "")))
    if ids != list(out.references):
        return "References changed"
    if out.in_reply_to and str(parsed["In-Reply-To"]).strip() != f"<{out.in_reply_to}>":
        return "In-Reply-To changed"
    return None


def context(
    app: App, ticket: Ticket, message: Message | None, agent: Address | None = None
) -> dict[str, Any]:
    """The plain-dict variables every template gets (listed in templates/README.md)."""
    prefix = app.config.prefix
    ref = f"{prefix}-{ticket.id}"
    requester = ticket.requester
    sub = next(iter(ticket.substatus_rows), None)
    return {
        "fields": {row.name: row.value for row in ticket.field_rows},
        "ticket": {
            "ref": ref,
            "tag": f"[{ref}]",
            "subject": clean_subject(prefix, ticket.subject),
            "status": ticket.status,
            "status_label": sub.label if sub is not None else ticket.status,
            "substatus": sub.name if sub is not None else "",
            "priority": ticket.priority,
            "team": ticket.team or "",
            "assignee": ticket.assignee or "",
            "tags": store.tags_of(ticket),
            "created_at": iso(ticket.created_at),
        },
        # A name that could pass for an address is shown with the real one beside it.
        "requester": {
            "email": requester.email,
            "name": shown_name(requester.name, requester.email),
        },
        "message": {
            "body": message.body if message else "",
            "from": message.from_addr if message else "",
            "from_name": shown_name(message.from_name, message.from_addr) if message else "",
            "subject": message.subject if message else "",
        },
        "agent": {"email": agent.email if agent else "", "name": agent.name if agent else ""},
        "instance": {"name": app.config.instance.name, "support_address": ticket.support_address},
        "reply_marker": REPLY_MARKER,
        "suggestions": [],  # knowledge-base articles: only the acknowledgement has them
    }


def _threading(answering: Message | None) -> tuple[str | None, tuple[str, ...]]:
    """In-Reply-To and References for an answer to ``answering`` (RFC 5322 section 3.6.4)."""
    if answering is None:
        return None, ()
    stored = answering.message_id
    # A message without a Message-ID is stored under "sha256:<hex>": nothing to refer to.
    parent = stored if "@" in stored and message_ids([stored]) else None
    refs = message_ids((answering.references or "").split())
    if len(refs) > MAX_REFERENCES - 1:
        refs = [refs[0], *refs[-(MAX_REFERENCES - 2) :]]  # keep the thread's root
    if parent is not None:
        refs = [r for r in refs if r != parent] + [parent]
    return parent, tuple(refs)


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
    reply_as: str | None = None,
    attachments: Sequence[OutAttachment] = (),
    generated: bool = False,
    actor: str = "system",
    base: dict[str, Any] | None = None,
) -> OutboxEntry:
    """Render ``template`` and queue it for ``to`` (and ``cc``); returns the outbox row.

    Invalid ``cc`` addresses are left out (and named in the ``mail_queued`` event); an invalid or
    missing ``to`` raises :class:`ComposeError` before anything is written. Mail to one agent
    passes ``reply_as`` (the agent's address): its Reply-To is then the agent's own signed address,
    which trusts their reply; everyone else gets the ticket's address. ``generated`` marks mail
    that no person wrote (notifications) as ``Auto-Submitted: auto-generated``, so vacation
    responders stay quiet, without the per-address rate limit of ``automatic`` mail. ``actor``
    names who sent it in the ``mail_queued`` event (``rule:NAME`` for mail a rule asked for).
    ``base`` is :func:`context` for this ticket, ``answering`` and ``agent`` when the caller has
    it already (one mail per recipient reads the ticket once).
    """
    to = [a for a in to if valid_address(a.email)]
    if not to:
        raise ComposeError("no valid recipient")
    skipped = [a.email for a in cc if not valid_address(a.email)]
    seen = {a.email.lower() for a in to}
    cc = [a for a in cc if valid_address(a.email) and a.email.lower() not in seen]
    ctx = dict(base) if base is not None else context(app, ticket, answering, agent)
    ctx["status_url"] = status_url(app, ticket, to[0].email)  # the first recipient's own link
    if template == "ack":
        ctx["suggestions"] = ack_suggestions(app, ticket, answering, to[0].email)
    if extra_context:
        ctx.update(extra_context)
    rendered = renderer.render(template, ctx)
    signer = Signer(app.config.prefix, app.secret)
    support = ticket.support_address or app.config.support_addresses[0]
    domain = support.partition("@")[2]
    message_id = signer.message_id(ticket.id, domain)
    subject = outgoing_subject(app.config.prefix, ticket.id, ticket.subject)
    from_name = agent.name if agent and agent.name else app.config.instance.name
    in_reply_to, references = _threading(answering)
    outgoing = Outgoing(
        from_addr=Address(support, from_name),
        to=tuple(to),
        cc=tuple(cc),
        reply_to=Address(
            signer.agent_reply_address(support, ticket.id, reply_as)
            if reply_as
            else signer.reply_address(support, ticket.id),
            app.config.instance.name,
        ),
        subject=subject,
        thread_topic=clean_subject(app.config.prefix, ticket.subject),
        date=now,
        message_id=message_id,
        in_reply_to=in_reply_to,
        references=references,
        loop_token=loop_token(app.secret),
        auto_submitted=(
            ("auto-replied" if answering else "auto-generated")
            if automatic
            else ("auto-generated" if generated else None)
        ),
        text=rendered.text,
        html=rendered.html,
        attachments=tuple(attachments),
    )
    raw = build_message(outgoing)
    if rendered.error:
        store.add_event(
            ticket,
            "template_error",
            actor="system",
            at=now,
            template=template,
            error=rendered.error,
        )
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
        body=text_safe(rendered.text).replace(REPLY_MARKER, "").strip(),
        full_text=text_safe(rendered.text),
        html=text_safe(rendered.html) if rendered.html is not None else None,
        in_reply_to=in_reply_to or "",
        references=" ".join(references),
        raw=raw,
        created_at=now,
    )
    queued = app.clock.now()  # due when queued (``sla check --at`` passes a ``now`` of its own)
    entry = OutboxEntry.create(
        ticket=ticket,
        message=row,
        kind=kind,
        mail_from=support,
        rcpt_tos=json.dumps(recipients),
        raw=raw,
        created_at=queued,
        next_attempt_at=queued,
        auto_to=to[0].email.lower() if automatic else None,
    )
    store.add_event(
        ticket,
        "mail_queued",
        actor=actor,
        at=now,
        message=row,
        kind=kind,
        template=template,
        to=recipients,
        outbox=entry.id,
        **({"skipped": skipped} if skipped else {}),
    )
    return entry


def queue_to_agents(
    app: App, renderer: Renderer, ticket: Ticket, *, to: Sequence[Address], **kwargs: Any
) -> list[OutboxEntry]:
    """Queue one mail per recipient, each with that recipient's own signed Reply-To.

    For mail to agents (notifications, escalations, command errors): pressing Reply answers the
    ticket as that agent, and no one else, customers included, can reuse the address. The mail is
    marked auto-generated, so an agent's vacation responder does not answer the ticket.
    """
    kwargs.setdefault("generated", True)
    if "base" not in kwargs and len(to) > 1:  # the ticket's variables, read once for all
        kwargs["base"] = context(app, ticket, kwargs.get("answering"), kwargs.get("agent"))
    return [
        queue_mail(app, renderer, ticket, to=[addr], reply_as=addr.email, **kwargs) for addr in to
    ]
