"""The MIME structure of a message as the classifier reads it: content types, sub-parts
(bounded in depth), the text of a part and of the human-readable notification of a report.
"""

from __future__ import annotations

import email.header
import email.parser
import email.policy
import email.utils
import re
from collections.abc import Iterator
from email.message import EmailMessage, Message

from maild.pipeline.classify.headers import _raw_items
from maild.pipeline.classify.patterns import _RETURNED_MESSAGE_RE
from maild.pipeline.classify.verdict import _MAX_DEPTH, _TEXT_LIMIT

# --------------------------------------------------------------------------
# MIME structure
# --------------------------------------------------------------------------


def _content_type(part: Message) -> str:
    try:
        return part.get_content_type().lower()
    except Exception:
        return "text/plain"


def _content_param(part: Message, name: str) -> str:
    try:
        value = part.get_param(name, header="content-type")
        if isinstance(value, tuple):
            value = email.utils.collapse_rfc2231_value(value)
        return str(value or "").strip().lower()
    except Exception:
        return ""


def _subparts(part: Message) -> list[Message]:
    try:
        payload = part.get_payload()
    except Exception:
        return []
    if isinstance(payload, list):
        return [p for p in payload if isinstance(p, Message)]
    return []


def _own_parts(msg: Message) -> Iterator[tuple[str, Message]]:
    """Yield (content type, part) for the message and its MIME parts, in order.

    Does not descend into enclosed messages (``message/rfc822``) or into the
    field blocks of ``message/*`` report parts: those are someone else's.
    """
    stack: list[tuple[Message, int]] = [(msg, 0)]
    while stack:
        part, depth = stack.pop()
        ctype = _content_type(part)
        yield ctype, part
        if ctype.startswith("multipart/") and depth < _MAX_DEPTH:
            stack.extend((p, depth + 1) for p in reversed(_subparts(part)))


def _part_text(part: Message) -> str:
    """Decoded text of a leaf part (best effort, truncated)."""
    try:
        # Only the modern API (``EmailMessage``) has get_content(); a compat32 part falls through
        # to the payload below, as the AttributeError it raised used to make it.
        if not isinstance(part, EmailMessage):
            raise TypeError("not an EmailMessage")
        content = part.get_content()
        if isinstance(content, str):
            return content[:_TEXT_LIMIT]
        if isinstance(content, bytes):
            return content[:_TEXT_LIMIT].decode("latin-1")
    except Exception:
        pass
    try:
        raw = part.get_payload(decode=True)
        if isinstance(raw, bytes):
            return raw[:_TEXT_LIMIT].decode("utf-8", "replace")
    except Exception:
        pass
    return ""


def _fields_text(part: Message) -> str:
    """Text of a ``message/*`` report part, whose payload the parser split into blocks."""
    blocks = _subparts(part)
    if not blocks:
        return _part_text(part)
    lines: list[str] = []
    for block in blocks:
        lines.extend(f"{k}: {v}" for k, v in _raw_items(block))
        # A block may carry its own (e.g. base64) body: decode it too.
        lines.extend([_part_text(block), ""])
    return "\n".join(lines)


def _notification_text(msg: Message) -> str:
    """The human-readable notification: the first text part outside enclosures."""
    for ctype, part in _own_parts(msg):
        # A multipart whose boundary got lost is left as one string: read it as text.
        lost_boundary = ctype.startswith("multipart/") and not _subparts(part)
        if ctype in ("text/plain", "text/html") or lost_boundary:
            text = _part_text(part)
            if ctype == "text/html":
                text = re.sub(r"<[^>]*>", " ", text)
            if text.strip():
                return text
    return ""


def _notification_part(text: str) -> str:
    """A bounce text up to where the returned original message begins."""
    match = _RETURNED_MESSAGE_RE.search(text)
    return text[: match.start()] if match and match.start() > 0 else text
