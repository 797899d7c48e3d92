"""Which webhook event an audit event is, and the documented JSON payload it is sent as.

Payload version 1 (README, "Webhooks"): ``{version, event, at, actor, ticket, message,
changes, sla, satisfaction}``; ``ticket`` is the ticket as ``tickets show --json`` shows it
without ``messages`` and ``events``, ``message`` the message the event is about (or null).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from maild.clock import iso
from maild.store.models import Event, Message, Ticket

PAYLOAD_VERSION = 1
FIELDS = ("status", "priority", "team", "assignee")
PUBLIC_KINDS = frozenset({"customer", "agent"})


@dataclass(frozen=True)
class Described:
    """An audit event as a webhook event."""

    name: str  # ticket.created, ticket.updated, ...
    note: bool = False  # an internal note: only for hooks with include_notes
    answer: bool = False  # an agent's public answer (Slack threads and reply_url get these)
    status: str | None = None  # the new status of a status change (Slack threads get these)
    extra: dict[str, Any] = field(default_factory=dict)


def describe(action: str, detail: dict[str, Any], message_kind: str | None) -> Described | None:
    """The webhook event of one audit event, or None when webhooks do not report it."""
    if action == "created":
        return Described("ticket.created")
    if action == "message":
        if message_kind != "customer":  # robots' mail and strangers' flagged mail stay inside
            return None
        return Described("message.created")
    if action == "answered":
        return Described("message.created", answer=True)
    if action == "agent_note":
        return Described("message.created", note=True)
    if action in FIELDS:
        change = {action: {"old": detail.get("old"), "new": detail.get("new")}}
        status = str(detail.get("new")) if action == "status" else None
        return Described("ticket.updated", status=status, extra={"changes": change})
    if action in ("tag_added", "tag_removed"):
        which = "added" if action == "tag_added" else "removed"
        return Described(
            "ticket.updated", extra={"changes": {"tags": {which: [detail.get("tag")]}}}
        )
    if action == "escalation":
        sla = {k: detail.get(k) for k in ("policy", "step", "target", "due")}
        name = "sla.breached" if detail.get("breach") else "sla.warning"
        return Described(name, extra={"sla": sla})
    if action == "satisfaction":
        rating = {"rating": detail.get("rating"), "comment": detail.get("comment") or ""}
        return Described("satisfaction.received", extra={"satisfaction": rating})
    return None


def payload(
    described: Described,
    event: Event,
    ticket: dict[str, Any],
    message: dict[str, Any] | None,
) -> dict[str, Any]:
    """The version-1 payload of one event: ``ticket`` as ``tickets list --json`` shows it,
    ``message`` as ``tickets show --json`` shows a message (or None)."""
    data: dict[str, Any] = {
        "version": PAYLOAD_VERSION,
        "event": described.name,
        "at": iso(event.at),
        "actor": event.actor,
        "ticket": ticket,
        "message": message,
    }
    data.update(described.extra)
    return data


def first_message(ticket: Ticket) -> Message | None:
    return ticket.messages.order_by(Message.created_at, Message.id).first()


def encode(data: dict[str, Any]) -> bytes:
    return json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode()
