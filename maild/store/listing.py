"""The queue at scale: tickets filtered, sorted and paged with a fixed number of queries per page.

:func:`list_page` runs one query for the page's tickets (with their requesters joined), one count
of the rows the filters match (for the table's "N more"; ``--json`` prints no total and skips
it), and one query each for the page's tags, custom fields, custom
statuses, watchers and links: seven statements whatever the page's length (the old list asked
five per ticket). Every filter is a WHERE clause of that one query, so ``--limit``/``--offset``
page through exactly what the filters chose.

``search`` looks at the subject and at the visible (quote-stripped) text of the ticket's messages
for the text as typed (a substring, case ignored, no character of it special), through the index
of :mod:`maild.store.search`. Tags and custom fields are ``EXISTS`` on their ``(ticket, ...)``
unique indexes, so a page sorted by date stops after its rows; ``--sort priority`` and ``--team``
read the expression indexes of :mod:`maild.store.indexes`.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from peewee import fn

from maild.clock import iso
from maild.store.indexes import priority_rank
from maild.store.models import (
    Contact,
    Ticket,
    TicketField,
    TicketLink,
    TicketSubstatus,
    TicketTag,
    Watcher,
    database_proxy,
)
from maild.store.search import matching_tickets

# --sort keys: a leading "-" (or ":desc") sorts descending. Priority sorts by urgency, not by name.
SORT_KEYS = ("created", "updated", "priority", "status", "ref", "team", "assignee")
DEFAULT_SORT = "-created"


@dataclass(frozen=True)
class Filters:
    """What ``tickets list`` may filter on; empty values filter nothing."""

    status: tuple[str, ...] = ()
    team: str | None = None
    assignee: str | None = None  # an email, or "" for unassigned tickets
    tag: tuple[str, ...] = ()  # every tag must be on the ticket
    priority: tuple[str, ...] = ()
    since: dt.datetime | None = None  # created at or after
    search: str | None = None
    fields: tuple[tuple[str, str], ...] = field(default=())  # (name, value), case ignored


@dataclass(frozen=True)
class Page:
    rows: list[dict[str, Any]]
    total: int | None  # how many tickets the filters match; None when not counted
    offset: int

    @property
    def more(self) -> int:
        """How many matching tickets come after this page (0 when not counted)."""
        if self.total is None:
            return 0
        return max(0, self.total - self.offset - len(self.rows))


def where_clauses(f: Filters, *, correlated: bool = True) -> list[Any]:
    """The WHERE of the filters. ``correlated`` (for a page): tags and custom fields as
    ``EXISTS`` probes of their ``(ticket, ...)`` unique indexes, so a page in index order stops
    after its rows; otherwise (for a count of all matches) as ``IN`` lists read from the
    ``(tag, ticket)`` and ``(name, lower(value), ticket)`` indexes."""
    out: list[Any] = []
    if f.status:
        out.append(Ticket.status.in_(f.status))
    if f.team is not None:
        out.append(fn.LOWER(Ticket.team) == f.team.lower())
    if f.assignee is not None:
        out.append(
            Ticket.assignee.is_null() if f.assignee == "" else Ticket.assignee == f.assignee.lower()
        )
    for tag in f.tag:
        out.append(_having(TicketTag, TicketTag.tag == tag, correlated))
    if f.priority:
        out.append(Ticket.priority.in_(f.priority))
    if f.since is not None:
        out.append(Ticket.created_at >= f.since)
    if f.search:
        out.append(Ticket.id.in_(matching_tickets(database_proxy.obj, f.search)))
    for name, value in f.fields:
        matches = (TicketField.name == name.lower()) & (
            fn.LOWER(TicketField.value) == value.lower()
        )
        out.append(_having(TicketField, matches, correlated))
    return out


def _having(model: Any, condition: Any, correlated: bool) -> Any:
    """Tickets with a row of ``model`` (a table with a ``ticket`` key) matching ``condition``."""
    if correlated:
        return fn.EXISTS(model.select(model.id).where((model.ticket == Ticket.id) & condition))
    return Ticket.id.in_(model.select(model.ticket).where(condition))


def order_by(sort: str) -> list[Any]:
    """The ORDER BY of a ``--sort`` key (``-created``, ``priority:desc``...); ValueError if
    unknown."""
    key, _sep, direction = sort.strip().lower().partition(":")
    if direction not in ("", "asc", "desc"):
        raise ValueError(f"unknown sort direction {direction!r} in {sort!r} (asc or desc)")
    descending = key.startswith("-") or direction == "desc"
    key = key.lstrip("-+")
    if key not in SORT_KEYS:
        raise ValueError(f"unknown sort key {sort!r} (use {', '.join(SORT_KEYS)}, '-' to reverse)")
    if key == "priority":
        column: Any = priority_rank(Ticket.priority)
    else:
        column = {
            "created": Ticket.created_at,
            "updated": Ticket.updated_at,
            "status": Ticket.status,
            "ref": Ticket.id,
            "team": Ticket.team,
            "assignee": Ticket.assignee,
        }[key]
    tie = Ticket.id.desc() if descending else Ticket.id
    return [column.desc() if descending else column.asc(), tie]


def list_page(
    prefix: str,
    filters: Filters,
    *,
    sort: str = DEFAULT_SORT,
    limit: int = 50,
    offset: int = 0,
    count: bool = True,
) -> Page:
    """One page of tickets as ``tickets list --json`` prints them, and (``count``) the total
    they match: reading every match, the dearest query of a page, which ``--json`` does not
    print and so skips."""
    query = Ticket.select(Ticket, Contact).join(Contact, on=(Ticket.requester == Contact.id))
    for clause in where_clauses(filters):
        query = query.where(clause)
    query = query.order_by(*order_by(sort)).offset(offset)
    if limit:
        query = query.limit(limit)
    tickets = list(query)
    total = None
    if count:
        counted = Ticket.select(fn.COUNT(Ticket.id))
        for clause in where_clauses(filters, correlated=False):
            counted = counted.where(clause)
        total = int(counted.scalar() or 0)
    return Page(summaries(tickets, prefix), total, offset)


def summaries(tickets: Sequence[Ticket], prefix: str) -> list[dict[str, Any]]:
    """The list form of many tickets, in five queries (whatever their number)."""
    ids = [t.id for t in tickets]
    wanted = set(ids)
    tags: dict[int, list[str]] = defaultdict(list)
    fields: dict[int, dict[str, str]] = defaultdict(dict)
    substatus: dict[int, str] = {}
    watchers: dict[int, list[str]] = defaultdict(list)
    links: dict[int, list[str]] = defaultdict(list)
    if ids:
        for row in TicketTag.select().where(TicketTag.ticket.in_(ids)).order_by(TicketTag.tag):
            tags[row.ticket_id].append(row.tag)
        for frow in (
            TicketField.select().where(TicketField.ticket.in_(ids)).order_by(TicketField.name)
        ):
            fields[frow.ticket_id][frow.name] = frow.value
        for srow in TicketSubstatus.select().where(TicketSubstatus.ticket.in_(ids)):
            substatus[srow.ticket_id] = srow.name
        for wrow in Watcher.select().where(Watcher.ticket.in_(ids)).order_by(Watcher.id):
            watchers[wrow.ticket_id].append(wrow.email)
        for lrow in TicketLink.select().where(TicketLink.low.in_(ids) | TicketLink.high.in_(ids)):
            if lrow.low_id in wanted:
                links[lrow.low_id].append(f"{prefix}-{lrow.high_id}")
            if lrow.high_id in wanted:
                links[lrow.high_id].append(f"{prefix}-{lrow.low_id}")
    return [
        summary(
            t,
            prefix,
            tags=tags[t.id],
            fields=fields[t.id],
            substatus=substatus.get(t.id),
            watchers=watchers[t.id],
            links=sorted(links[t.id], key=lambda r: int(r.rpartition("-")[2])),
        )
        for t in tickets
    ]


def summary(
    ticket: Ticket,
    prefix: str,
    *,
    tags: list[str],
    fields: dict[str, str],
    substatus: str | None,
    watchers: list[str],
    links: list[str],
) -> dict[str, Any]:
    """The fields ``tickets list --json`` prints for one ticket (DESIGN.md's contract)."""
    requester = ticket.requester
    return {
        "ref": f"{prefix}-{ticket.id}",
        "subject": ticket.subject,
        "status": ticket.status,
        "priority": ticket.priority,
        "team": ticket.team,
        "assignee": ticket.assignee,
        "tags": tags,
        "fields": fields,
        "substatus": substatus,
        "requester": requester.email,
        "requester_name": requester.name,
        "watchers": watchers,
        "links": links,
        "created_at": iso(ticket.created_at),
        "updated_at": iso(ticket.updated_at),
        "first_response_at": iso(ticket.first_response_at),
        "resolved_at": iso(ticket.resolved_at),
        "closed_at": iso(ticket.closed_at),
        "parent": f"{prefix}-{ticket.parent_id}" if ticket.parent_id else None,
        "spam": ticket.spam,
        "satisfaction": (
            {"rating": ticket.satisfaction_rating, "comment": ticket.satisfaction_comment}
            if ticket.satisfaction_rating is not None
            else None
        ),
        "sla": {
            "policy": ticket.sla_policy,
            "first_response_due": iso(ticket.first_response_due),
            "resolution_due": iso(ticket.resolution_due),
        },
    }
