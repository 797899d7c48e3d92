"""The search index behind ``tickets list --search``: tickets' subjects and messages' visible text.

Search keeps substring semantics, case ignored, on both databases, and an index answers it:

- SQLite: two FTS5 tables with the ``trigram`` tokenizer, ``ticket_search`` over ``ticket.subject``
  and ``message_search`` over ``message.body`` (external content: they index the rows without a
  copy of the text). Triggers on ``ticket`` and ``message`` keep them current whatever writes the
  rows (intake, answers, the importer, erasure, merges, retention), in the writer's transaction.
  The user's text goes into an FTS5 string (``"..."`` with ``"`` doubled), so no character of it
  is query syntax. A trigram needs three characters: shorter text falls back to ``LIKE``.
- PostgreSQL: ``pg_trgm`` GIN indexes on the same two columns, which ``ILIKE '%text%'`` uses;
  PostgreSQL keeps them current itself. Where the extension cannot be created (a role without the
  right), the search still works, unindexed, and a warning says so.

Merging moves messages to another ticket (``message.ticket_id``), which the index does not hold:
the ticket of a match is read from ``message`` at query time, so a merged message is found on its
new ticket.
"""

from __future__ import annotations

import logging
from typing import Any

from peewee import SQL, Database, DatabaseError

from maild.store.db import is_sqlite

log = logging.getLogger("ticketd.store")

TRIGRAM = 3  # the shortest text an index can answer

_SQLITE_DDL = (
    "CREATE VIRTUAL TABLE IF NOT EXISTS ticket_search USING fts5("
    "subject, content='ticket', content_rowid='id', tokenize='trigram')",
    "CREATE VIRTUAL TABLE IF NOT EXISTS message_search USING fts5("
    "body, content='message', content_rowid='id', tokenize='trigram')",
    "CREATE TRIGGER IF NOT EXISTS ticket_search_insert AFTER INSERT ON ticket BEGIN "
    "INSERT INTO ticket_search(rowid, subject) VALUES (new.id, new.subject); END",
    "CREATE TRIGGER IF NOT EXISTS ticket_search_delete AFTER DELETE ON ticket BEGIN "
    "INSERT INTO ticket_search(ticket_search, rowid, subject) "
    "VALUES ('delete', old.id, old.subject); END",
    "CREATE TRIGGER IF NOT EXISTS ticket_search_update AFTER UPDATE OF subject ON ticket BEGIN "
    "INSERT INTO ticket_search(ticket_search, rowid, subject) "
    "VALUES ('delete', old.id, old.subject); "
    "INSERT INTO ticket_search(rowid, subject) VALUES (new.id, new.subject); END",
    "CREATE TRIGGER IF NOT EXISTS message_search_insert AFTER INSERT ON message BEGIN "
    "INSERT INTO message_search(rowid, body) VALUES (new.id, new.body); END",
    "CREATE TRIGGER IF NOT EXISTS message_search_delete AFTER DELETE ON message BEGIN "
    "INSERT INTO message_search(message_search, rowid, body) "
    "VALUES ('delete', old.id, old.body); END",
    "CREATE TRIGGER IF NOT EXISTS message_search_update AFTER UPDATE OF body ON message BEGIN "
    "INSERT INTO message_search(message_search, rowid, body) VALUES ('delete', old.id, old.body); "
    "INSERT INTO message_search(rowid, body) VALUES (new.id, new.body); END",
)

_PG_INDEXES = (
    "CREATE INDEX IF NOT EXISTS ticket_subject_trgm ON ticket USING gin (subject gin_trgm_ops)",
    "CREATE INDEX IF NOT EXISTS message_body_trgm ON message USING gin (body gin_trgm_ops)",
)


def create_index(db: Database) -> None:
    """Create the search index and fill it from the rows already stored (idempotent)."""
    if is_sqlite(db):
        for statement in _SQLITE_DDL:
            db.execute_sql(statement)
        # Backfill: rebuild reads every row of the content table again.
        db.execute_sql("INSERT INTO ticket_search(ticket_search) VALUES ('rebuild')")
        db.execute_sql("INSERT INTO message_search(message_search) VALUES ('rebuild')")
        return
    try:
        with db.atomic():  # a savepoint: a refusal must not abort the migration's transaction
            db.execute_sql("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    except DatabaseError as exc:  # e.g. permission denied: the same for search, no index
        log.warning("search stays unindexed: CREATE EXTENSION pg_trgm failed: %s", exc)
        return
    for statement in _PG_INDEXES:
        db.execute_sql(statement)


def compact(db: Database) -> None:
    """Merge the SQLite index's segments into one, so that text deleted from it (an erasure)
    leaves no trace: FTS5 records a deletion as a marker beside the old entry until a merge.
    PostgreSQL's ``VACUUM`` of the table does the same for its indexes."""
    if is_sqlite(db):
        db.execute_sql("INSERT INTO ticket_search(ticket_search) VALUES ('optimize')")
        db.execute_sql("INSERT INTO message_search(message_search) VALUES ('optimize')")


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def fts_phrase(text: str) -> str:
    """``text`` as one FTS5 string: every character literal, whatever FTS5 syntax it holds."""
    return '"' + text.replace('"', '""') + '"'


def matching_tickets(db: Database, text: str) -> Any:
    """A ``SELECT`` of the ids of the tickets whose subject or some message's visible text
    contains ``text``, case ignored; for ``Ticket.id.in_(...)``."""
    p = db.param  # the driver's placeholder
    if is_sqlite(db) and len(text) >= TRIGRAM:
        phrase = fts_phrase(text)
        return SQL(
            f"(SELECT rowid FROM ticket_search WHERE ticket_search MATCH {p} "
            "UNION SELECT m.ticket_id FROM message_search "
            f"JOIN message AS m ON m.id = message_search.rowid WHERE message_search MATCH {p})",
            [phrase, phrase],
        )
    like = "LIKE" if is_sqlite(db) else "ILIKE"
    pattern = _like(text)
    return SQL(
        f"(SELECT id FROM ticket WHERE subject {like} {p} ESCAPE '\\' "
        f"UNION SELECT ticket_id FROM message WHERE body {like} {p} ESCAPE '\\')",
        [pattern, pattern],
    )
