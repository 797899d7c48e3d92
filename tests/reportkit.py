"""The known ticket history the report tests check figures against (see test_report_figures.py):
eleven tickets around the week of Monday 2 March 2026 (UTC), written straight to the database."""

from __future__ import annotations

import datetime as dt
import itertools
from typing import Any

from maild.store.models import Contact, Message, Ticket, TicketTag

_ids = itertools.count()


def T(day: int, hour: int, minute: int = 0, month: int = 3) -> dt.datetime:
    return dt.datetime(2026, month, day, hour, minute)


def ticket(requester: Contact, created: dt.datetime, **fields: Any) -> Ticket:
    tags = fields.pop("tags", ())
    t = Ticket.create(requester=requester, created_at=created, updated_at=created, **fields)
    for tag in tags:
        TicketTag.create(ticket=t, tag=tag)
    return t


def message(t: Ticket, at: dt.datetime, direction: str = "in", kind: str = "customer") -> None:
    n = next(_ids)
    Message.create(
        ticket=t,
        direction=direction,
        kind=kind,
        message_id=f"m{n}@test",
        dedup_key=f"mid:m{n}@test",
        created_at=at,
    )


def build_history() -> None:
    """The known history; numbers are ticket ids (they are created in this order)."""
    c = Contact.create(email="carol@customer.test")
    # 1: before the window, billing/ann; resolved Tue 3 10:00 after its due 09:00 (breached);
    #    wall 4d = 345600 s; business Fri 10-17 (7h) + Mon 9-17 (8h) + Tue 9-10 (1h) = 16h.
    t1 = ticket(
        c,
        T(27, 10, month=2),
        team="billing",
        assignee="ann@example.com",
        first_response_at=T(27, 11, month=2),
        resolved_at=T(3, 10),
        resolution_due=T(3, 9),
        satisfaction_rating=5,
        tags=["old"],
    )
    message(t1, T(27, 10, month=2))
    message(t1, T(3, 10), direction="out", kind="survey")  # surveys: 1, 2, 3 (not 6 or 8)
    message(t1, T(2, 9, 30))  # a customer reply in the window: Monday 09h
    # 2: billing/ann; FR 1h (met), resolved after 6h (met); rating 4.
    t2 = ticket(
        c,
        T(2, 9),
        team="billing",
        assignee="ann@example.com",
        first_response_at=T(2, 10),
        first_response_due=T(2, 13),
        resolved_at=T(2, 15),
        resolution_due=T(3, 9),
        satisfaction_rating=4,
        tags=["billing", "refund"],
    )
    message(t2, T(2, 9))
    message(t2, T(2, 10), direction="out", kind="agent")  # not inbound: not counted
    message(t2, T(2, 11), kind="robot")  # an auto-reply: not a customer message
    message(t2, T(2, 15), direction="out", kind="survey")
    # 3: billing/bob; FR after 18h (business Mon 16-17 + Tue 9-10 = 2h), due Tue 09:00: breached;
    #    resolved Wed 16:00: 48h, business 1 + 8 + 7 = 16h, due Thu 09:00: met.
    t3 = ticket(
        c,
        T(2, 16),
        team="billing",
        assignee="bob@example.com",
        first_response_at=T(3, 10),
        first_response_due=T(3, 9),
        resolved_at=T(4, 16),
        resolution_due=T(5, 9),
        tags=["billing"],
    )
    message(t3, T(2, 16))
    message(t3, T(3, 11))  # Tuesday 11h
    message(t3, T(4, 16), direction="out", kind="survey")  # never answered
    # 4: tech/bob; FR 30 min (met); still open; its resolution is due after the window.
    t4 = ticket(
        c,
        T(3, 12),
        team="tech",
        assignee="bob@example.com",
        first_response_at=T(3, 12, 30),
        first_response_due=T(3, 16),
        resolution_due=T(10, 12),
        tags=["tech"],
    )
    message(t4, T(3, 12))
    # 5: tech, unassigned; no answer by its due Thu 10:00: breached; open.
    t5 = ticket(c, T(4, 20), team="tech", first_response_due=T(5, 10), tags=["tech", "urgent"])
    message(t5, T(4, 20))
    # 6: no team, ann; a weekend ticket: FR 1h and resolution 24h, both 0 business seconds.
    t6 = ticket(
        c,
        T(7, 10),
        assignee="ann@example.com",
        first_response_at=T(7, 11),
        resolved_at=T(8, 10),
        satisfaction_rating=2,
        tags=["refund"],
    )
    message(t6, T(7, 10))
    # 7: spam: left out of every figure.
    t7 = ticket(
        c,
        T(5, 10),
        team="billing",
        assignee="bob@example.com",
        spam=True,
        status="closed",
        closed_at=T(5, 10),
        first_response_due=T(5, 11),
        tags=["billing"],
    )
    message(t7, T(5, 10))
    # 8: tech/bob; FR 4h after due 11:00 (breached); closed (not resolved) Fri 09:00, which
    #    counts as resolved: 24h, business Thu 9-17 = 8h; due Fri 17:00: met.
    t8 = ticket(
        c,
        T(5, 9),
        team="tech",
        assignee="bob@example.com",
        first_response_at=T(5, 13),
        first_response_due=T(5, 11),
        closed_at=T(6, 9),
        resolution_due=T(6, 17),
        tags=["tech"],
    )
    message(t8, T(5, 9))
    # 9: billing/ann; answered after the window, after its due Fri 12:00 (breached); resolved
    #    after the window, so open at the end.
    t9 = ticket(
        c,
        T(6, 8),
        team="billing",
        assignee="ann@example.com",
        first_response_at=T(9, 10),
        first_response_due=T(6, 12),
        resolved_at=T(10, 9),
        tags=["billing"],
    )
    message(t9, T(6, 8))
    # 10: old and never resolved: open at the start and at the end.
    ticket(c, T(20, 10, month=2))
    # 11: created and resolved before the window: in nothing.
    ticket(c, T(25, 10, month=2), resolved_at=T(26, 10, month=2), satisfaction_rating=1)
