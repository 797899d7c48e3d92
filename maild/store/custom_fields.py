"""Custom field values and custom statuses on tickets: read, written, and each change audited.

Values are rows of :class:`~maild.store.models.TicketField` (ticket, name, value), already checked
by :func:`maild.routing.fields.coerce`; a value whose field is no longer declared stays readable.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from peewee import fn

from maild.store import tickets as store
from maild.store.models import Message, Ticket, TicketField, TicketSubstatus


def values_of(ticket: Ticket) -> dict[str, str]:
    """The ticket's custom field values, by name (sorted)."""
    rows = TicketField.select().where(TicketField.ticket == ticket).order_by(TicketField.name)
    return {row.name: row.value for row in rows}


def set_value(
    ticket: Ticket,
    name: str,
    value: str,
    *,
    actor: str,
    at: dt.datetime,
    message: Message | None = None,
    **detail: object,
) -> bool:
    """Store ``name = value`` on the ticket with a ``field`` event; False when it was the value."""
    row = TicketField.get_or_none((TicketField.ticket == ticket) & (TicketField.name == name))
    old = row.value if row is not None else None
    if old == value:
        return False
    if row is None:
        TicketField.create(ticket=ticket, name=name, value=value)
    else:
        row.value = value
        row.save()
    store.add_event(
        ticket,
        "field",
        actor=actor,
        at=at,
        message=message,
        name=name,
        old=old,
        new=value,
        **detail,
    )
    return True


def substatus_of(ticket: Ticket) -> str | None:
    """The ticket's custom status, or None when it has only its base status."""
    row = TicketSubstatus.get_or_none(TicketSubstatus.ticket == ticket)
    return row.name if row is not None else None


def set_substatus(ticket: Ticket, name: str | None, label: str = "") -> None:
    """Put ``name`` on the ticket (None: remove the custom status)."""
    TicketSubstatus.delete().where(TicketSubstatus.ticket == ticket).execute()
    if name is not None:
        TicketSubstatus.create(ticket=ticket, name=name, label=label or name)


def with_field(name: str, value: str) -> Any:
    """A subquery of the ids of tickets whose field ``name`` is ``value`` (case ignored)."""
    return TicketField.select(TicketField.ticket).where(
        (TicketField.name == name) & (fn.LOWER(TicketField.value) == value.lower())
    )
