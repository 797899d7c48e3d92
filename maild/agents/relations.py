"""Tickets related to each other: merging a duplicate into another, links, and snoozing.

Policy:

- **merge** ``source`` into ``target``: refused into itself, into a ticket that does not exist,
  is closed or was itself merged elsewhere, and in a loop (``target`` was merged into ``source``
  before, directly or through others). Messages (with their attachments), watchers, tags and
  events move to ``target``; ``source``'s requester becomes a watcher of ``target``; ``source``
  is closed and keeps a :class:`~maild.store.models.TicketMerge` row, so mail threading to its
  reference, its signed address or its Message-IDs lands on ``target``
  (:func:`resolve_merged`). Both tickets get an event (``merged_into``, ``merged``).
- **link**: two tickets related both ways (one row, lower number first); linking a ticket to
  itself or to a missing one is refused; ``#unlink`` of a link that is not there is refused.
- **snooze**: pending until a time at most a year ahead and not in the past (checked by the
  parser, :func:`maild.agents.commands.snooze_time`); the SLA sweep opens the ticket then, and any status change before that (a customer's reply,
  an agent's ``#status``) ends the snooze (:func:`maild.sla.lifecycle.set_status`).

Everything runs inside the caller's transaction; nothing here sends mail.
"""

from __future__ import annotations

import datetime as dt

from maild.pipeline.message import Address
from maild.store import tickets as store
from maild.store.models import (
    Event,
    Message,
    OutboxEntry,
    Ticket,
    TicketLink,
    TicketMerge,
    TicketSnooze,
    TicketTag,
    Watcher,
)

MAX_CHAIN = 50  # merges followed when resolving a reference (a loop is refused, this is a guard)


def resolve_merged(number: int) -> int:
    """The ticket mail for ``number`` belongs to: itself, or where it was merged (followed)."""
    seen = {number}
    for _ in range(MAX_CHAIN):
        row = TicketMerge.get_or_none(TicketMerge.source == number)
        if row is None or row.target_id in seen:
            return number
        number = row.target_id
        seen.add(number)
    return number


def merge_problem(source: Ticket, target_number: int | None, prefix: str) -> str | None:
    """Why ``source`` cannot go into ticket ``target_number``; None when it can."""
    if target_number is None:
        return "not a ticket reference"
    ref = f"{prefix}-{target_number}"
    if target_number == source.id:
        return f"{ref} is this ticket: a ticket cannot be merged into itself"
    target = Ticket.get_or_none(Ticket.id == target_number)
    if target is None:
        return f"ticket {ref} does not exist"
    into = TicketMerge.get_or_none(TicketMerge.source == target)
    if into is not None:
        if resolve_merged(target.id) == source.id:
            return f"{ref} was merged into this ticket: merging back would make a loop"
        return f"{ref} was merged into {prefix}-{into.target_id}: merge into that one"
    if TicketMerge.get_or_none(TicketMerge.source == source) is not None:
        return "this ticket was already merged"
    if target.status == "closed":
        return f"{ref} is closed: re-open it first"
    return None


def merge(
    source: Ticket, target: Ticket, *, actor: str, at: dt.datetime, message: Message | None
) -> dict[str, int]:
    """Move ``source`` into ``target`` (checked with :func:`merge_problem` first); the counts."""
    moved_messages = Message.update(ticket=target).where(Message.ticket == source).execute()
    moved_events = Event.update(ticket=target).where(Event.ticket == source).execute()
    OutboxEntry.update(ticket=target).where(OutboxEntry.ticket == source).execute()
    tags = [row.tag for row in TicketTag.select().where(TicketTag.ticket == source)]
    store.add_tags(target, tags)
    TicketTag.delete().where(TicketTag.ticket == source).execute()
    people = [
        Address(w.email, w.name)
        for w in Watcher.select().where(Watcher.ticket == source).order_by(Watcher.id)
    ]
    requester = source.requester
    if requester.id != target.requester_id:
        people.insert(0, Address(requester.email, requester.name))
    added = store.add_watchers(target, [p for p in people if p.email != target.requester.email])
    Watcher.delete().where(Watcher.ticket == source).execute()
    TicketMerge.create(source=source, target=target, merged_at=at)
    # Links of the old ticket are the new one's.
    for row in TicketLink.select().where((TicketLink.low == source) | (TicketLink.high == source)):
        other = row.high_id if row.low_id == source.id else row.low_id
        if other != target.id:
            add_link(target.id, other, at=at)
    TicketLink.delete().where((TicketLink.low == source) | (TicketLink.high == source)).execute()
    counts = {"messages": moved_messages, "events": moved_events, "watchers": len(added)}
    store.add_event(
        source, "merged_into", actor=actor, at=at, message=message, into=target.id, **counts
    )
    store.add_event(
        target,
        "merged",
        actor=actor,
        at=at,
        message=message,
        source=source.id,
        tags=tags,
        watchers_added=added,
        **counts,
    )
    return counts


def add_link(a: int, b: int, *, at: dt.datetime) -> bool:
    low, high = min(a, b), max(a, b)
    return bool(TicketLink.insert(low=low, high=high, created_at=at).on_conflict_ignore().execute())


def link_problem(ticket: Ticket, other: int | None, prefix: str, *, unlink: bool) -> str | None:
    """Why ``#link``/``#unlink`` of ``other`` cannot be done on ``ticket``; None when it can."""
    if other is None:
        return "not a ticket reference"
    ref = f"{prefix}-{other}"
    if other == ticket.id:
        return f"{ref} is this ticket"
    if not Ticket.select().where(Ticket.id == other).exists():
        return f"ticket {ref} does not exist"
    low, high = min(ticket.id, other), max(ticket.id, other)
    linked = TicketLink.select().where((TicketLink.low == low) & (TicketLink.high == high))
    if unlink and not linked.exists():
        return f"{ref} is not linked to this ticket"
    return None


def remove_link(a: int, b: int) -> bool:
    low, high = min(a, b), max(a, b)
    return bool(
        TicketLink.delete().where((TicketLink.low == low) & (TicketLink.high == high)).execute()
    )


def links_of(ticket_id: int) -> list[int]:
    rows = TicketLink.select().where((TicketLink.low == ticket_id) | (TicketLink.high == ticket_id))
    return sorted(r.high_id if r.low_id == ticket_id else r.low_id for r in rows)


def set_snooze(ticket: Ticket, until: dt.datetime, *, by: str) -> None:
    TicketSnooze.delete().where(TicketSnooze.ticket == ticket).execute()
    TicketSnooze.create(ticket=ticket, until=until, by=by)


def end_snooze(ticket: Ticket) -> dt.datetime | None:
    """Remove the ticket's snooze; when it had one, the time it was snoozed until."""
    row = TicketSnooze.get_or_none(TicketSnooze.ticket == ticket)
    if row is None:
        return None
    row.delete_instance()
    return row.until
