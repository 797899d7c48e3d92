"""Outgoing mail without the stdlib's header objects, for the plain case only.

Acknowledgements and notifications are almost always plain: ASCII addresses, display names and
subjects of letters, digits and spaces, a text part (and an HTML one), no attachments. Building
those with ``EmailMessage`` and parsing them again to check the headers was a quarter of the
worker's time. :func:`build_plain` writes such a message directly, and only when every value
passes a strict whitelist that leaves no room for header injection: printable ASCII without
CR, LF or an encoded-word marker, addresses of ``atext`` only, names of ``atext`` and single
spaces, body lines within SMTP's 998 octets. Anything else returns None and goes the stdlib way
with its re-parse check (:func:`maild.notify.compose.build_message`).
"""

from __future__ import annotations

import datetime as dt
import re
import secrets
from collections.abc import Sequence
from email.utils import format_datetime
from typing import Protocol

from maild.pipeline.addresses import LOOP_HEADER
from maild.pipeline.message import Address

_ATEXT = r"A-Za-z0-9!#$%&'*+/=?^_`{|}~-"
_EMAIL = re.compile(rf"[{_ATEXT}]+(?:\.[{_ATEXT}]+)*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+")
_NAME = re.compile(rf"[{_ATEXT}]+(?: [{_ATEXT}]+)*")
_TEXT = re.compile(r"[\x21-\x7e]+(?: [\x21-\x7e]+)*")  # printable ASCII words, single spaces
_TOKEN = re.compile(r"[\x21-\x3b\x3d\x3f-\x7e]+")  # an id or token: no space, no < or >
_WORD_MAX = 70  # a longer word in an unstructured header would be encoded by the stdlib
_LINE = 78
_LINE_MAX = 998


class Plain(Protocol):
    """What :func:`build_plain` reads (the fields of ``compose.Outgoing``)."""

    @property
    def from_addr(self) -> Address: ...

    @property
    def to(self) -> tuple[Address, ...]: ...

    @property
    def cc(self) -> tuple[Address, ...]: ...

    @property
    def reply_to(self) -> Address | None: ...

    @property
    def subject(self) -> str: ...

    @property
    def thread_topic(self) -> str: ...

    @property
    def date(self) -> dt.datetime: ...

    @property
    def message_id(self) -> str: ...

    @property
    def in_reply_to(self) -> str | None: ...

    @property
    def references(self) -> tuple[str, ...]: ...

    @property
    def loop_token(self) -> str: ...

    @property
    def auto_submitted(self) -> str | None: ...

    @property
    def text(self) -> str: ...

    @property
    def html(self) -> str | None: ...

    @property
    def attachments(self) -> tuple: ...


def _address(a: Address) -> str | None:
    if not _EMAIL.fullmatch(a.email):
        return None
    if not a.name:
        return a.email
    if not _NAME.fullmatch(a.name) or "=?" in a.name or "?=" in a.name:
        return None
    return f"{a.name} <{a.email}>"


def _addresses(name: str, addrs: Sequence[Address]) -> str | None:
    parts = [_address(a) for a in addrs]
    if any(p is None for p in parts):
        return None
    return _fold(name, [f"{p}," for p in parts[:-1]] + [str(parts[-1])], _LINE)


def _unstructured(name: str, value: str) -> str | None:
    if not _TEXT.fullmatch(value) or "=?" in value or "?=" in value:
        return None
    words = value.split(" ")
    if any(len(w) > _WORD_MAX for w in words):
        return None
    return _fold(name, words, _LINE)


def _fold(name: str, words: list[str], width: int) -> str | None:
    """``Name: words`` folded at the spaces between words into lines of at most ``width``."""
    lines, line = [], f"{name}:"
    for word in words:
        if len(line) + 1 + len(word) > width and line != f"{name}:":
            lines.append(line)
            line = ""
        line = f"{line} {word}"
    lines.append(line)
    if any(len(x) > _LINE_MAX for x in lines):
        return None
    return "\r\n".join(lines)


def _part(text: str, subtype: str) -> tuple[str, bytes] | None:
    """The headers and body of a text part, or None when a line is too long for 7/8bit."""
    if not text.endswith("\n"):
        text += "\n"
    body = text.replace("\r\n", "\n").replace("\r", "\n").encode("utf-8")
    if any(len(line) > _LINE_MAX for line in body.split(b"\n")):
        return None
    cte = "7bit" if body.isascii() else "8bit"
    head = f'Content-Type: text/{subtype}; charset="utf-8"\r\nContent-Transfer-Encoding: {cte}\r\n'
    return head, body.replace(b"\n", b"\r\n")


def build_plain(out: Plain, text: str, html: str | None) -> bytes | None:
    """The message as bytes, or None when it is not plain enough for this path.

    ``text`` and ``html`` are the bodies already made safe (``text_safe``)."""
    if out.attachments:
        return None
    headers = [
        _addresses("From", [out.from_addr]),
        _addresses("To", out.to),
        _addresses("Cc", out.cc) if out.cc else "",
        _addresses("Reply-To", [out.reply_to]) if out.reply_to is not None else "",
        _unstructured("Subject", out.subject),
        "Date: " + format_datetime(out.date.replace(tzinfo=dt.UTC)),
    ]
    ids = [out.message_id, *([out.in_reply_to] if out.in_reply_to else []), *out.references]
    if not all(_TOKEN.fullmatch(i) for i in ids) or not _TOKEN.fullmatch(out.loop_token):
        return None
    headers.append(f"Message-ID: <{out.message_id}>")
    if out.in_reply_to:
        headers.append(f"In-Reply-To: <{out.in_reply_to}>")
    if out.references:
        headers.append(_fold("References", [f"<{r}>" for r in out.references], _LINE_MAX))
    if out.thread_topic:
        headers.append(_unstructured("Thread-Topic", out.thread_topic))
    headers.append(f"{LOOP_HEADER}: {out.loop_token}")
    if out.auto_submitted:
        if out.auto_submitted not in ("auto-replied", "auto-generated"):
            return None
        headers += [
            f"Auto-Submitted: {out.auto_submitted}",
            "X-Auto-Response-Suppress: All",
            "Precedence: bulk",
        ]
    if any(h is None for h in headers):
        return None
    head = "\r\n".join(h for h in headers if h) + "\r\nMIME-Version: 1.0\r\n"
    plain = _part(text, "plain")
    if plain is None:
        return None
    if html is None:
        return (head + plain[0] + "\r\n").encode("ascii") + plain[1]
    rich = _part(html, "html")
    if rich is None:
        return None
    boundary = f"=_{secrets.token_hex(16)}"
    if boundary.encode() in plain[1] or boundary.encode() in rich[1]:
        return None
    mark = f"--{boundary}\r\n".encode()
    return b"".join(
        [
            (head + f'Content-Type: multipart/alternative; boundary="{boundary}"\r\n\r\n').encode(
                "ascii"
            ),
            mark,
            (plain[0] + "\r\n").encode("ascii"),
            plain[1],
            b"\r\n",
            mark,
            (rich[0] + "\r\n").encode("ascii"),
            rich[1],
            f"\r\n--{boundary}--\r\n".encode(),
        ]
    )
