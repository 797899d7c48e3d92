"""Threading: which existing ticket, if any, an inbound message belongs to.

Order: the ``[PREFIX-N]`` tag anywhere in the subject (this instance's prefix only, under any reply
prefix); a signed reply address among the recipients; In-Reply-To and References against stored
Message-IDs and our signed Message-IDs. A reference that names no existing ticket threads nothing.
The lookup functions are passed in, so this module stays free of storage.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from maild.pipeline.addresses import Signer
from maild.pipeline.message import InboundMessage

# Reply and forward prefixes in the languages we meet, e.g. "Re:", "RE[2]:", "AW:", "SV:", "Fwd:".
REPLY_PREFIX = re.compile(
    r"^\s*(?:(?:re|aw|sv|vs|antw|antwort|ref|réf|rif|r|tr|fw|fwd|wg|vb|rv|enc|odp|ynt|atb|"
    r"回复|回覆|答复|転送|返信)\s*(?:\[\d+\]|\(\d+\))?\s*[:：]\s*)+",
    re.IGNORECASE,
)


# At most this many subject tags and Message-IDs of each kind are looked up: threading runs inside
# the worker's write transaction, and a header full of ids must not hold the lock for minutes.
MAX_LOOKUPS = 20


@dataclass(frozen=True)
class ThreadMatch:
    number: int
    how: str  # subject-tag | signed-address | in-reply-to | references | bounce


def tag_numbers(subject: str, prefix: str) -> list[int]:
    """Ticket numbers tagged ``[PREFIX-N]`` in a subject, in order."""
    return [
        int(n)
        for n in re.findall(rf"\[\s*{re.escape(prefix)}-(\d{{1,12}})\s*\]", subject, re.IGNORECASE)
    ]


def strip_reply_prefixes(subject: str) -> str:
    """A subject without leading Re:/AW:/Fwd: piles (for display and outgoing subjects)."""
    return REPLY_PREFIX.sub("", subject).strip()


def find_ticket(
    msg: InboundMessage,
    *,
    signer: Signer,
    support: Sequence[str],
    exists: Callable[[int], bool],
    ticket_of_message_id: Callable[[str], int | None],
    extra_message_ids: Sequence[str] = (),
) -> ThreadMatch | None:
    """The ticket ``msg`` continues, or None for a new ticket."""
    for tagged in list(dict.fromkeys(tag_numbers(msg.subject, signer.prefix)))[:MAX_LOOKUPS]:
        if exists(tagged):
            return ThreadMatch(tagged, "subject-tag")
    sender = msg.from_addr.email if msg.from_addr is not None else None
    for address in msg.recipients:
        number = signer.ticket_from_address(address, support, sender=sender)
        if number is not None and exists(number):
            return ThreadMatch(number, "signed-address")
    candidates = [
        *(("in-reply-to", m) for m in msg.in_reply_to[:MAX_LOOKUPS]),
        *(("references", m) for m in reversed(msg.references)),  # parse keeps the last 50
        *(("bounce", m) for m in list(extra_message_ids)[:MAX_LOOKUPS]),
    ]
    for how, message_id in candidates:
        number = ticket_of_message_id(message_id)
        if number is None:
            number = signer.ticket_from_message_id(message_id)
        if number is not None and exists(number):
            return ThreadMatch(number, how)
    return None
