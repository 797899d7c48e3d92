"""The queue at scale: tickets filtered, sorted and paged with a fixed number of queries per page.

:func:`list_page` runs one query for the page's tickets (with their requesters joined), one count
of the rows the filters match, and one query each for the page's tags, custom fields, custom
statuses, watchers and links: seven statements whatever the page's length (the old list asked
five per ticket). Every filter is a WHERE clause of that one query, so ``--limit``/``--offset``
page through exactly what the filters chose.

``search`` looks at the subject and at the visible (quote-stripped) text of the ticket's messages,
case ignored (``LIKE`` on SQLite, ``ILIKE`` on PostgreSQL; ``%`` and ``_`` in the text are
literal).
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from peewee import SQL, Case, NodeList, fn

from maild.clock import iso
from maild.store.db import is_sqlite
from maild.store.models import (
    Contact,
    Message,
    Ticket,
    TicketField,
    TicketLink,
    TicketSubstatus,
    TicketTag,
    Watcher,
    database_proxy,
)

# --sort keys: a leading "-" (or ":desc") sorts descending. Priority sorts by urgency, not by name.
SORT_KEYS = ("created", "updated", "priority", "status", "ref", "team", "assignee")
DEFAULT_SORT = "-created"
PRIORITY_RANK = {"low": 0, "normal": 1, "high": 2, "urgent": 3}


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
    total: int  # how many tickets the filters match
    offset: int

    @property
    def more(self) -> int:
        """How many matching tickets come after this page."""
        return max(0, self.total - self.offset - len(self.rows))


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _search_clause(text: str) -> Any:
    pattern = _like(text)
    in_messages = Message.select(Message.ticket).where(_contains(Message.body, pattern))
    return _contains(Ticket.subject, pattern) | Ticket.id.in_(in_messages)


def _contains(column: Any, pattern: str) -> Any:
    return NodeList((column, SQL("ILIKE" if _is_pg() else "LIKE"), pattern, SQL("ESCAPE '\\'")))


def _is_pg() -> bool:
    return not is_sqlite(database_proxy.obj)


def where_clauses(f: Filters) -> list[Any]:
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
        tagged = TicketTag.select(TicketTag.ticket).where(TicketTag.tag == tag)
        out.append(Ticket.id.in_(tagged))
    if f.priority:
        out.append(Ticket.priority.in_(f.priority))
    if f.since is not None:
        out.append(Ticket.created_at >= f.since)
    if f.search:
        out.append(_search_clause(f.search))
    for name, value in f.fields:
        rows = TicketField.select(TicketField.ticket).where(
            (TicketField.name == name.lower()) & (fn.LOWER(TicketField.value) == value.lower())
        )
        out.append(Ticket.id.in_(rows))
    return out


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
        column: Any = Case(Ticket.priority, list(PRIORITY_RANK.items()), -1)
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
    prefix: str, filters: Filters, *, sort: str = DEFAULT_SORT, limit: int = 50, offset: int = 0
) -> Page:
    """One page of tickets as ``tickets list --json`` prints them, and the total they match."""
    clauses = where_clauses(filters)
    query = Ticket.select(Ticket, Contact).join(Contact, on=(Ticket.requester == Contact.id))
    counted = Ticket.select(fn.COUNT(Ticket.id))
    for clause in clauses:
        query = query.where(clause)
        counted = counted.where(clause)
    query = query.order_by(*order_by(sort)).offset(offset)
    if limit:
        query = query.limit(limit)
    tickets = list(query)
    total = counted.scalar() or 0
    return Page(summaries(tickets, prefix), int(total), offset)


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
