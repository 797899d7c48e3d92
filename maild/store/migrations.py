"""Creating and upgrading the schema on start.

Version 1 is the initial schema; each later version is a function that upgrades from the one before,
run in order inside a transaction. Creating tables is idempotent, so a fresh database and an old one
take the same path: new tables come from ``create_tables``, an upgrade only alters or fills.

- 2: the SLA tables (``sla_pause``, ``sla_firing``); tickets already pending, resolved or closed get
  an open pause from their last status change, so their clocks stay stopped.
"""

from __future__ import annotations

from collections.abc import Callable

from peewee import Database

from maild.store.db import write_tx
from maild.store.models import ALL_MODELS, Event, SchemaVersion, SlaPause, Ticket

CURRENT_VERSION = 2


def _v2_open_pauses(db: Database) -> None:
    """Stop the SLA clocks of tickets that were already waiting or done before version 2."""
    paused = Ticket.select().where(Ticket.status.in_(("pending", "resolved", "closed")))
    for ticket in paused:
        if SlaPause.select().where(SlaPause.ticket == ticket).exists():
            continue
        last = (
            Event.select(Event.at)
            .where((Event.ticket == ticket) & (Event.action == "status"))
            .order_by(Event.id.desc())
            .first()
        )
        since = last.at if last else (ticket.updated_at or ticket.created_at)
        SlaPause.create(ticket=ticket, status=ticket.status, started_at=since)


# Upgrades from version N-1 to N, keyed by N.
UPGRADES: dict[int, Callable[[Database], None]] = {2: _v2_open_pauses}


def upgrade(db: Database) -> int:
    """Create missing tables and run pending upgrades; return the schema version now in force."""
    with write_tx(db):
        db.create_tables(ALL_MODELS, safe=True)
        row = SchemaVersion.select().first()
        if row is None:
            SchemaVersion.create(version=CURRENT_VERSION)
            return CURRENT_VERSION
        for version in range(row.version + 1, CURRENT_VERSION + 1):
            UPGRADES[version](db)
            row.version = version
            row.save()
        return row.version
