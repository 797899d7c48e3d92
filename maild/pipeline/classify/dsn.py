"""Delivery-status notifications (RFC 3464): the per-recipient fields, and whether the
report tells of a failure, a delay or a success.
"""

from __future__ import annotations

import re

from maild.pipeline.classify.evidence import _DsnRecipient, _Evidence
from maild.pipeline.classify.headers import _token
from maild.pipeline.classify.patterns import _ADDR_RE, _DS_FIELD_RE, _DSN_OK_ACTIONS

# --------------------------------------------------------------------------
# Delivery-status (RFC 3464) fields
# --------------------------------------------------------------------------


def _ds_address(value: str) -> str:
    """``rfc822; <User@Example.org>`` -> ``user@example.org``."""
    value = value.split(";", 1)[1] if ";" in value else value
    match = _ADDR_RE.search(value)
    return match.group(0).lower() if match else ""


def _parse_delivery_status(text: str) -> list[_DsnRecipient]:
    """Per-recipient records of delivery-status fields, tolerant of missing blank lines."""
    records: list[_DsnRecipient] = []
    current = _DsnRecipient()
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    for block in re.split(r"\n\s*\n", text):
        for name, value in _DS_FIELD_RE.findall(re.sub(r"\n[ \t]+", " ", block)):
            name = name.lower()
            starts_new = (name == "original-recipient" and (current.original or current.final)) or (
                name == "final-recipient" and current.final
            )
            if starts_new:
                records.append(current)
                current = _DsnRecipient()
            if name == "final-recipient":
                current.final = _ds_address(value)
            elif name == "original-recipient":
                current.original = _ds_address(value)
            elif name == "action":
                current.action = _token(value)
            else:
                current.status = (value.split() or [""])[0]
        if current.final or current.original:
            records.append(current)
            current = _DsnRecipient()
    if current.action or current.status:
        records.append(current)
    return records


def _dsn_outcome(records: list[_DsnRecipient]) -> str:
    """``delivered`` when every recipient was delivered/relayed/expanded, else ``failed``."""
    actions = [r.action for r in records if r.action]
    if actions:
        return "delivered" if all(a in _DSN_OK_ACTIONS for a in actions) else "failed"
    statuses = [r.status for r in records if r.status]
    if statuses and all(s.startswith("2") for s in statuses):
        return "delivered"
    return "failed"


def _dsn_recipients(records: list[_DsnRecipient]) -> list[str]:
    """Final and original recipients of every block that was not delivered."""
    out: list[str] = []
    for record in records:
        if record.action not in _DSN_OK_ACTIONS:
            out.extend(a for a in (record.final, record.original) if a)
    return out


def _judge_dsn(records: list[_DsnRecipient], ev: _Evidence) -> None:
    if _dsn_outcome(records) == "delivered":
        ev.add("delivery-status: delivered", "dsn-delivered")
        return
    actions = sorted({r.action for r in records if r.action})
    ev.add(f"delivery-status: {', '.join(actions) or 'no action'}", "dsn-failed")
    ev.recipients.extend(_dsn_recipients(records))
