"""A spooled message read for storing: parsed, classified (with our own loop checks), its sender.

All of it is CPU work on the message alone; the worker does it before it opens the transaction.
"""

from __future__ import annotations

import email
import email.policy
import json
from collections.abc import Sequence
from dataclasses import dataclass

from maild.pipeline.addresses import LOOP_HEADER, is_support_address
from maild.pipeline.classify import Classification, classify
from maild.pipeline.classify.verdict import HUMAN
from maild.pipeline.message import Address, InboundMessage
from maild.pipeline.parse import ADDRESS_RE, ParseError, parse_message

# Sources whose message ticketd builds itself from what a person typed (the web form, the API, a
# Slack event): no robot header can be in it, and its subject is the person's, so the classifier's
# subject heuristics ("Automatic reply: ...", "Out of Office") would only misjudge it.
BUILT_FROM_INPUT = frozenset({"web", "api", "slack"})


@dataclass(frozen=True, slots=True)
class Inbound:
    """A message as read from the spool, before anything is stored."""

    msg: InboundMessage
    verdict: Classification
    sender: Address


def read(
    raw: bytes,
    *,
    mail_from: str,
    rcpt_tos: str | None,
    token: str,
    support: Sequence[str],
    source: str = "smtp",
) -> Inbound:
    """Parse and classify a spooled message; ParseError when it cannot be stored at all."""
    msg = parse_message(raw, mail_from=mail_from, rcpt_tos=json.loads(rcpt_tos or "[]"))
    verdict = classify_with_loop(msg, token, support, built=source in BUILT_FROM_INPUT)
    sender = sender_of(msg)
    if sender is None:
        raise ParseError("no sender: the message has no From address and no envelope sender")
    return Inbound(msg, verdict, sender)


def sender_of(msg: InboundMessage) -> Address | None:
    """Who wrote: From, else Sender, Reply-To, the envelope sender, Return-Path."""
    if msg.from_addr is not None:
        return msg.from_addr
    candidates = [
        msg.header("sender") or "",
        *(a.email for a in msg.reply_to),
        msg.envelope_from,
        msg.header("return-path") or "",
    ]
    for value in candidates:
        found = ADDRESS_RE.search(value)
        if found:
            return Address(email=found.group(0).lower())
    return None


def classify_with_loop(
    msg: InboundMessage, token: str, support: Sequence[str], *, built: bool = False
) -> Classification:
    """The classifier's verdict (a person's, for a message ``built`` from a form, the API or
    Slack), plus our own loop header and mail from our own addresses."""
    # parse_message always keeps the parsed message; a value built without one (a test, a
    # re-parse) is parsed here rather than handing None to the classifier.
    em = msg.email
    if em is None:
        em = email.message_from_bytes(msg.raw, policy=email.policy.default)
    if built:
        verdict = Classification(kind=HUMAN, reasons=("built from a person's input",))
    else:
        verdict = classify(em, envelope_from=msg.envelope_from)
    extra = []
    if any(token in value for value in msg.header_all(LOOP_HEADER)):
        extra.append(f"{LOOP_HEADER}: our own mail")
    if msg.from_addr is not None and is_support_address(msg.from_addr.email, support):
        extra.append("sent from a support address")
    if not extra:
        return verdict
    kind = verdict.kind if verdict.is_robot else "auto-generated"
    return Classification(
        kind=kind,
        reasons=(*verdict.reasons, *extra),
        bounced_recipients=verdict.bounced_recipients,
        original_message_ids=verdict.original_message_ids,
    )
