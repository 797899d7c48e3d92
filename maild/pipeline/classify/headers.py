"""Header access that never raises: decoded values where the parser manages, the raw strings
where malformed input makes it fail; addresses and Message-IDs from them.
"""

from __future__ import annotations

import email.header
import email.parser
import email.policy
import email.utils
import re
from collections.abc import Iterable
from email.message import Message

from maild.pipeline.classify.patterns import _ADDR_RE, _MSGID_RE
from maild.pipeline.classify.verdict import _HEADER_LIMIT

# --------------------------------------------------------------------------
# Safe header access
# --------------------------------------------------------------------------


def _clean(value: str) -> str:
    """Unfold whitespace and replace undecodable characters (surrogate escapes)."""
    value = value.encode("utf-8", "replace").decode("utf-8")
    return " ".join(value.split())


def _decode_raw(value: str) -> str:
    """Decode RFC 2047 encoded words in a raw header value; never raises."""
    try:
        return str(email.header.make_header(email.header.decode_header(value)))
    except Exception:
        return value


def _raw_items(msg: Message) -> list[tuple[str, str]]:
    """Header (name, raw value) pairs, without the policy's parsing."""
    try:
        return [(str(k), str(v)) for k, v in msg.raw_items()]
    except Exception:
        return []


def _raw_headers(msg: Message, name: str) -> list[str]:
    lname = name.lower()
    return [_clean(v) for k, v in _raw_items(msg) if k.lower() == lname]


# Headers the policy parses into structured values (addresses, dates, MIME parameters): their
# str() may differ from the raw text, so they always go through the parser.
_STRUCTURED = frozenset(
    {
        "from", "to", "cc", "bcc", "sender", "reply-to", "date", "message-id",
        "resent-from", "resent-to", "resent-cc", "resent-bcc", "resent-sender", "resent-date",
        "content-type", "content-disposition", "content-transfer-encoding", "mime-version",
    }
)  # fmt: skip


def _headers(msg: Message, name: str) -> list[str]:
    """All decoded values of header ``name``; falls back to the raw strings.

    The policy's header parser is slow on huge values and raises on some
    malformed ones, so those are decoded from the raw string instead. An
    unstructured header in plain ASCII without an encoded word decodes to its
    own text, so it skips the parser (a hot path: every message is classified).
    """
    lname = name.lower()
    raw = [v for k, v in _raw_items(msg) if k.lower() == lname]
    if lname not in _STRUCTURED and all(v.isascii() and "=?" not in v for v in raw):
        return [_clean(v) for v in raw]
    if all(len(v) <= _HEADER_LIMIT for v in raw):
        try:
            return [_clean(str(v)) for v in msg.get_all(name) or []]
        except Exception:
            pass
    return [_clean(_decode_raw(v[:_HEADER_LIMIT])) for v in raw]


def _has_header(msg: Message, name: str) -> bool:
    lname = name.lower()
    return any(k.lower() == lname for k, _ in _raw_items(msg))


def _token(value: str) -> str:
    """First token of a structured value: ``auto-generated (failure)`` -> ``auto-generated``."""
    parts = re.split(r"[\s;(,]", value.strip(), maxsplit=1)
    return parts[0].lower() if parts else ""


def _addresses(values: Iterable[str]) -> list[tuple[str, str]]:
    """(display name, lower-cased address) pairs; tolerant of junk."""
    out: list[tuple[str, str]] = []
    for value in values:
        try:
            pairs = email.utils.getaddresses([value])
        except Exception:
            pairs = [("", found) for found in _ADDR_RE.findall(value)]
        out.extend((name.strip(), addr.strip().strip("<>").lower()) for name, addr in pairs)
    return out


def _local_part(address: str) -> str:
    return address.split("@", 1)[0].lower()


def _message_ids(values: Iterable[str]) -> list[str]:
    """Message-IDs (without ``<>``) found in header values."""
    ids: list[str] = []
    for value in values:
        found = _MSGID_RE.findall(value)
        if not found and "@" in value and len(value.split()) == 1:
            found = [value.strip()]
        ids.extend(i for i in found if "@" in i)
    return ids


def _dedupe(items: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(i for i in items if i))
