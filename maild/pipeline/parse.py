"""Parse raw bytes into an :class:`InboundMessage`.

mail-parser decodes the headers people see (subject, addresses, date) tolerantly, whatever the
charset; stdlib ``email`` (policy.default) picks the body part and walks the MIME tree. Neither is
trusted to be total: every access is guarded, broken charsets fall back to replacement characters,
and only a message with nothing usable raises :class:`ParseError` (the worker quarantines it).
"""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import hashlib
import logging
import re
from collections.abc import Iterator, Sequence
from email.header import decode_header, make_header
from email.message import EmailMessage, Message
from email.utils import getaddresses, parsedate_to_datetime

import mailparser
from inscriptis import get_text

from maild.pipeline.message import Address, AttachmentPart, InboundMessage
from maild.store.attachments import sanitize_filename

logging.getLogger("mailparser").setLevel(logging.ERROR)  # it logs every unknown part

MAX_DEPTH = 30  # MIME nesting deeper than this is kept as raw bytes, not walked
MAX_PARTS = 500
ADDRESS_RE = re.compile(r"[\w.!#$%&'*+/=?^`{|}~-]+@[\w-]+(?:\.[\w-]+)+")
MSGID_RE = re.compile(r"<([^<>\s]{1,490})>")
_WS = re.compile(r"\s+")


class ParseError(Exception):
    """The bytes are not a message we can use; the reason is meant for the operator."""


def parse_message(
    raw: bytes, *, mail_from: str = "", rcpt_tos: Sequence[str] = ()
) -> InboundMessage:
    """Parse ``raw``; the envelope (``mail_from``, ``rcpt_tos``) comes from the intake."""
    if not raw.strip():
        raise ParseError("empty message: no headers and no body")
    try:
        em = email.message_from_bytes(raw, policy=email.policy.default)
    except Exception as exc:  # the stdlib parser is lenient; this is a last resort
        raise ParseError(f"cannot parse MIME structure: {exc}") from exc
    if not em.keys():
        raise ParseError("no header fields: this is not an RFC 5322 message")
    mp = _mailparser(raw)
    headers = tuple(_headers(em))
    message_id_header = _raw_header(em, "message-id")
    message_id = _first_msgid(message_id_header)
    subject = _subject(mp, em)
    from_list = _addresses(mp, em, "from")
    body_parts = _body_parts(em)
    text, html = _bodies(body_parts)
    return InboundMessage(
        raw=raw,
        message_id=message_id,
        dedup_key=dedup_key(message_id, raw, header=message_id_header),
        subject=subject,
        from_addr=from_list[0] if from_list else None,
        reply_to=tuple(_addresses(mp, em, "reply-to")),
        to=tuple(_addresses(mp, em, "to")),
        cc=tuple(_addresses(mp, em, "cc")),
        date=_date(em),
        in_reply_to=tuple(MSGID_RE.findall(_raw_header(em, "in-reply-to"))),
        references=tuple(MSGID_RE.findall(_raw_header(em, "references")))[-50:],
        text=text,
        html=html,
        attachments=tuple(_attachments(em, {id(p) for p in body_parts.values()})),
        headers=headers,
        envelope_from=mail_from or "",
        rcpt_tos=tuple(r.lower() for r in rcpt_tos),
        defects=tuple(sorted({type(d).__name__ for d in em.defects})),
        has_plain="plain" in body_parts,
        email=em,
    )


def dedup_key(message_id: str | None, raw: bytes, *, header: str = "") -> str:
    """The Message-ID when there is one, else a hash of the bytes.

    A Message-ID too long to keep whole (``_first_msgid`` cuts it) is keyed by a hash of the whole
    header value, so two ids that differ only after the cut are not taken for one message.
    """
    if message_id and not MSGID_RE.search(header) and len(header.strip()) > len(message_id):
        whole = header.strip().encode("utf-8", "replace")
        return "mid-sha256:" + hashlib.sha256(whole).hexdigest()
    if message_id:
        return f"mid:{message_id}"
    return "sha256:" + hashlib.sha256(raw).hexdigest()


def clean_text(value: str) -> str:
    """Undo surrogate escapes (8-bit bytes in headers) as UTF-8, else Latin-1; drop NULs."""
    if any("\udc80" <= ch <= "\udcff" for ch in value):
        data = value.encode("utf-8", "surrogateescape")
        try:
            value = data.decode("utf-8")
        except UnicodeDecodeError:
            value = data.decode("latin-1")
    return value.replace("\x00", "")


def one_line(value: str) -> str:
    return _WS.sub(" ", clean_text(value)).strip()


def _mailparser(raw: bytes) -> mailparser.MailParser | None:
    try:
        return mailparser.parse_from_bytes(raw)
    except Exception:  # mail-parser crashes on some truncated multiparts; stdlib covers us
        return None


def _raw_header(em: Message, name: str) -> str:
    for key, value in em.raw_items():
        if key.lower() == name:
            return clean_text(str(value))
    return ""


def _decode(value: str) -> str:
    try:
        return str(make_header(decode_header(value)))
    except Exception:
        return value


def _headers(em: Message) -> Iterator[tuple[str, str]]:
    for key, value in em.raw_items():
        yield key.lower(), one_line(_decode(clean_text(str(value))))


def _first_msgid(value: str) -> str | None:
    found = MSGID_RE.findall(value)
    if found:
        return found[0]
    value = value.strip()
    return value[:490] if value and " " not in value else None


def _subject(mp: mailparser.MailParser | None, em: Message) -> str:
    raw = _raw_header(em, "subject")
    if mp is not None and raw.isascii():
        # mail-parser decodes encoded words in odd charsets well; raw 8-bit bytes it drops, so
        # those are decoded here (UTF-8, else Latin-1) instead.
        try:
            return one_line(mp.subject or "")
        except Exception:
            pass
    return one_line(_decode(raw))


def _addresses(mp: mailparser.MailParser | None, em: Message, name: str) -> list[Address]:
    pairs: list[tuple[str, str]] = []
    if mp is not None:
        try:
            pairs = list(getattr(mp, name.replace("-", "_") + ("_" if name == "from" else "")))
        except Exception:
            pairs = []
    if not pairs:
        raw = _raw_header(em, name)
        if raw:
            pairs = getaddresses([_decode(raw)])
    out: list[Address] = []
    for display, addr in pairs:
        addr = one_line(addr or "").strip("<>").lower()
        if "@" not in addr or " " in addr or len(addr) > 320:
            continue
        out.append(Address(email=addr, name=one_line(display or "")[:200]))
    if not out:
        # Broken syntax such as "From: Big Bug bb@bug.com": take the first thing shaped like an
        # address, so the sender is not lost to a missing pair of angle brackets.
        found = ADDRESS_RE.search(_decode(_raw_header(em, name)))
        if found:
            out.append(Address(email=found.group(0).lower()))
    return out


def _date(em: Message) -> dt.datetime | None:
    raw = _raw_header(em, "date")
    if not raw:
        return None
    try:
        value = parsedate_to_datetime(raw)
    except (TypeError, ValueError, IndexError):
        return None
    if value.tzinfo is None:
        return value
    return value.astimezone(dt.UTC).replace(tzinfo=None)


def _walk(part: Message, depth: int = 0) -> Iterator[tuple[Message, int]]:
    yield part, depth
    if depth >= MAX_DEPTH or not part.is_multipart():
        return
    payload = part.get_payload()
    if isinstance(payload, list):
        for child in payload:
            if isinstance(child, Message):
                yield from _walk(child, depth + 1)


def _body_parts(em: EmailMessage) -> dict[str, Message]:
    """The text/plain and text/html parts that make the body (not attachments)."""
    found: dict[str, Message] = {}
    for kind in ("plain", "html"):
        try:
            part = em.get_body(preferencelist=(kind,))
        except Exception:
            part = None
        if part is not None:
            found[kind] = part
    if not found and not em.is_multipart():
        ctype = em.get_content_type()
        if ctype in ("text/plain", "text/html") or em.get_content_maintype() != "multipart":
            found["html" if ctype == "text/html" else "plain"] = em
    return found


def part_text(part: Message) -> str:
    """A text part's content as str, whatever its declared (or wrong) charset."""
    try:
        payload = part.get_payload(decode=True)
    except Exception:
        payload = None
    if not isinstance(payload, bytes):
        value = part.get_payload()
        return clean_text(value) if isinstance(value, str) else ""
    charset = part.get_content_charset() or "utf-8"
    for candidate in (charset, "utf-8", "cp1252"):
        try:
            return payload.decode(candidate).replace("\x00", "")
        except (LookupError, UnicodeDecodeError):
            continue
    return payload.decode("latin-1").replace("\x00", "")


def html_to_text(html: str) -> str:
    try:
        text = get_text(html)
    except Exception:
        text = re.sub(r"<[^>]+>", " ", html)
    lines = [line.rstrip() for line in text.splitlines()]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def _bodies(parts: dict[str, Message]) -> tuple[str, str | None]:
    html = part_text(parts["html"]) if "html" in parts else None
    if "plain" in parts:
        text = part_text(parts["plain"])
    elif html is not None:
        text = html_to_text(html)
    else:
        text = ""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return text, html


def _attachments(em: Message, body_ids: set[int]) -> Iterator[AttachmentPart]:
    count = 0
    for part, depth in _walk(em):
        if count >= MAX_PARTS:
            return
        if id(part) in body_ids or (part.is_multipart() and depth < MAX_DEPTH):
            continue
        ctype = part.get_content_type()
        try:
            filename = part.get_filename()
        except Exception:
            filename = None
        disposition = (part.get_content_disposition() or "").lower()
        if ctype in ("text/plain", "text/html") and not filename and disposition != "attachment":
            continue  # an alternative body, not a file
        if ctype == "message/rfc822" or part.is_multipart():
            payload = part.as_bytes() if depth < MAX_DEPTH else _safe_bytes(part)
        else:
            try:
                decoded = part.get_payload(decode=True)
                payload = decoded if isinstance(decoded, bytes) else b""
            except Exception:
                payload = b""
        count += 1
        cid = part.get("Content-ID")
        yield AttachmentPart(
            filename=sanitize_filename(clean_text(filename or ""), content_type=ctype, index=count),
            content_type=ctype,
            payload=payload,
            inline=disposition == "inline" and cid is not None,
            content_id=MSGID_RE.findall(str(cid))[0] if cid and MSGID_RE.search(str(cid)) else None,
        )


def _safe_bytes(part: Message) -> bytes:
    try:
        return part.as_bytes()
    except Exception:
        return b""
