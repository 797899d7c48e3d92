"""The addresses a bounce says failed, read from its notification text when it has no
machine-readable delivery status.
"""

from __future__ import annotations

from collections.abc import Iterable
from email.message import Message

from maild.pipeline.classify.headers import _addresses, _local_part, _raw_headers
from maild.pipeline.classify.parts import _notification_part
from maild.pipeline.classify.patterns import (
    _ADDR_RE,
    _BARE_LOCAL_RE,
    _DAEMON_LOCAL_PARTS,
    _HEADER_LINE_RE,
    _NOT_RECIPIENT_LINE_RE,
    _RECIPIENT_LIST_RE,
)

# --------------------------------------------------------------------------
# Bounced recipients from the notification text
# --------------------------------------------------------------------------


def _own_addresses(msg: Message) -> set[str]:
    """Addresses of the bounce itself (its sender, the original sender, ...)."""
    names = ("From", "To", "Cc", "Sender", "Reply-To", "Return-Path", "Delivered-To")
    own: set[str] = set()
    for name in names:
        own.update(addr for _, addr in _addresses(_raw_headers(msg, name)) if addr)
    return own


def _is_daemon(address: str) -> bool:
    return _local_part(address) in _DAEMON_LOCAL_PARTS


def _sender_domain(msg: Message) -> str:
    for _, addr in _addresses(_raw_headers(msg, "From")):
        if "@" in addr:
            return addr.rsplit("@", 1)[1]
    return ""


def _text_recipients(msg: Message, text: str, exclude_ids: Iterable[str]) -> list[str]:
    """Failed recipients named in a plain-text bounce (no DSN fields available)."""
    skip = _own_addresses(msg) | {i.lower() for i in exclude_ids}
    domain = _sender_domain(msg)
    found: list[str] = []
    in_list = False
    for line in _notification_part(text).splitlines():
        if _HEADER_LINE_RE.match(line) or _NOT_RECIPIENT_LINE_RE.search(line):
            continue
        addrs = [a.lower().strip(".") for a in _ADDR_RE.findall(line)]
        bare = _BARE_LOCAL_RE.match(line)
        if in_list and not addrs and bare and domain:
            # "... to the following recipients ...:" then bare mailbox names (AOL)
            addrs = [f"{bare.group(1).lower()}@{domain}"]
        if line.strip():
            in_list = bool(_RECIPIENT_LIST_RE.search(line))
        found.extend(a for a in addrs if a not in skip and not _is_daemon(a))
    return found
