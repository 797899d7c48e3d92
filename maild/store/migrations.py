"""Creating and upgrading the schema on start.

Version 1 is the initial schema; each later version is a function that upgrades from the one before,
run in order inside a transaction. Creating tables is idempotent, so a fresh database and an old one
take the same path: new tables and the models' indexes come from ``create_tables``, then a fresh
database starts at version 1 and runs every upgrade (each is cheap on empty tables), so objects
that the models cannot declare exist on both.

- 2: the SLA tables (``sla_pause``, ``sla_firing``); tickets already pending, resolved or closed get
  an open pause from their last status change, so their clocks stay stopped.
- 3: the listing at scale (issue 18): the search index (``maild.store.search``: FTS5 trigram tables
  and their triggers on SQLite, filled from the rows already stored; ``pg_trgm`` GIN indexes on
  PostgreSQL) and the expression indexes of ``maild.store.indexes``. The plain indexes of
  version 3 (``ticket.priority``, ``ticket.assignee``, ``ticket_tag(tag, ticket)``) come from the
  models.
- 4: ``message.sentiment`` (a nullable score; messages stored before keep None).
"""

from __future__ import annotations

from collections.abc import Callable

from peewee import Database

from maild.store.db import is_sqlite, write_tx
from maild.store.fulltext import ensure_tables
from maild.store.indexes import create_indexes
from maild.store.models import ALL_MODELS, Event, Message, SchemaVersion, SlaPause, Ticket
from maild.store.search import create_index

CURRENT_VERSION = 4


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


def _v3_listing_indexes(db: Database) -> None:
    """The search index (with its backfill) and the expression indexes of ``tickets list``."""
    create_index(db)
    create_indexes(db)


def _columns(db: Database, table: str) -> set[str]:
    return {column.name for column in db.get_columns(table)}


def _v4_message_sentiment(db: Database) -> None:
    """Add ``message.sentiment`` unless ``create_tables`` just made the table with it."""
    if "sentiment" in _columns(db, Message._meta.table_name):
        return
    kind = "REAL" if is_sqlite(db) else "DOUBLE PRECISION"  # what peewee's FloatField creates
    db.execute_sql(f"ALTER TABLE {Message._meta.table_name} ADD COLUMN sentiment {kind}")


# Upgrades from version N-1 to N, keyed by N.
UPGRADES: dict[int, Callable[[Database], None]] = {
    2: _v2_open_pauses,
    3: _v3_listing_indexes,
    4: _v4_message_sentiment,
}


def _schema_names(db: Database) -> set[str]:
    """The names of the tables and indexes that exist, in one read."""
    if is_sqlite(db):
        sql = "SELECT name FROM sqlite_master WHERE type IN ('table', 'index')"
    else:
        sql = (
            "SELECT tablename FROM pg_tables WHERE schemaname = current_schema() "
            "UNION SELECT indexname FROM pg_indexes WHERE schemaname = current_schema()"
        )
    return {row[0] for row in db.execute_sql(sql).fetchall()}


def is_current(db: Database) -> bool:
    """True when every table and index of the models exists and the version is current.

    One read and no lock, so a CLI command or a second instance does not queue behind the daemon's
    writes only to find that there is nothing to create.
    """
    wanted = {m._meta.table_name for m in ALL_MODELS} | {
        index._name for m in ALL_MODELS for index in m._meta.fields_to_index()
    }
    if not wanted <= _schema_names(db):
        return False
    row = SchemaVersion.select().first()
    return row is not None and row.version == CURRENT_VERSION


def upgrade(db: Database) -> int:
    """Create missing tables and run pending upgrades; return the schema version now in force."""
    if is_current(db):
        return CURRENT_VERSION
    with write_tx(db):
        db.create_tables(ALL_MODELS, safe=True)
        ensure_tables(db)  # the knowledge base's full-text index (maild.store.fulltext)
        row = SchemaVersion.select().first()
        if row is None:
            row = SchemaVersion.create(version=1)
        for version in range(row.version + 1, CURRENT_VERSION + 1):
            UPGRADES[version](db)
            row.version = version
            row.save()
        return row.version
