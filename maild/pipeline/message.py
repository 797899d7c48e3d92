"""The values that flow through the pipeline: frozen, plain data, no ORM objects."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from email.message import EmailMessage


@dataclass(frozen=True)
class Address:
    """A mailbox: lower-cased address and display name (decoded)."""

    email: str
    name: str = ""

    @property
    def domain(self) -> str:
        return self.email.rpartition("@")[2]


@dataclass(frozen=True)
class AttachmentPart:
    """An attachment as found in the message, before storage."""

    filename: str  # sanitized, never a path
    content_type: str
    payload: bytes = field(repr=False)
    inline: bool = False
    content_id: str | None = None


@dataclass(frozen=True)
class InboundMessage:
    """One inbound message, parsed. ``text`` is the whole text body; quotes are cut later."""

    raw: bytes = field(repr=False)
    message_id: str | None  # without angle brackets
    dedup_key: str  # the Message-ID, or "sha256:<hex>" of the bytes when there is none
    subject: str
    from_addr: Address | None
    reply_to: tuple[Address, ...]
    to: tuple[Address, ...]
    cc: tuple[Address, ...]
    date: dt.datetime | None
    in_reply_to: tuple[str, ...]
    references: tuple[str, ...]
    text: str
    html: str | None
    attachments: tuple[AttachmentPart, ...]
    headers: tuple[tuple[str, str], ...]  # (lower-cased name, decoded value), in order
    envelope_from: str = ""
    rcpt_tos: tuple[str, ...] = ()
    defects: tuple[str, ...] = ()
    has_plain: bool = True  # False when ``text`` was rendered from the HTML part
    email: EmailMessage | None = field(default=None, compare=False, repr=False)

    def header(self, name: str) -> str | None:
        """The first value of a header, or None."""
        name = name.lower()
        for key, value in self.headers:
            if key == name:
                return value
        return None

    def header_all(self, name: str) -> list[str]:
        name = name.lower()
        return [value for key, value in self.headers if key == name]

    @property
    def recipients(self) -> tuple[str, ...]:
        """Every recipient address: envelope, To and Cc, lower-cased, without repeats."""
        seen: dict[str, None] = {}
        for addr in (*self.rcpt_tos, *(a.email for a in self.to), *(a.email for a in self.cc)):
            seen.setdefault(addr.lower(), None)
        return tuple(seen)
