"""Expression indexes for ``tickets list``, which peewee's model declarations cannot state.

- ``ticket_priority_rank``: the urgency rank of ``--sort priority`` (low 0 ... urgent 3, anything
  else -1), then the id, so a page sorted by priority reads the index instead of sorting the
  table. The query must spell the expression exactly as the index does (literals, not
  parameters): :func:`priority_rank` builds it from the same text.
- ``ticket_team_lower``: ``--team`` ignores case, ``lower(team) = ?``.
- ``ticket_field_name_value_lower``: ``--field NAME=V`` ignores the value's case.

Both SQLite and PostgreSQL take the same statements. PostgreSQL estimates an expression's
selectivity only from statistics gathered after its index exists, so the tables are analysed
then (without, it guessed 0.5 % for ``lower(value) = ?`` and sorted 50,000 rows for a page).
"""

from __future__ import annotations

from typing import Any

from peewee import SQL, Database, NodeList

from maild.store.db import is_sqlite

PRIORITY_RANK = {"low": 0, "normal": 1, "high": 2, "urgent": 3}

_RANK_CASES = " ".join(f"WHEN '{name}' THEN {rank}" for name, rank in PRIORITY_RANK.items())

_DDL = (
    f"CREATE INDEX IF NOT EXISTS ticket_priority_rank ON ticket "
    f"((CASE priority {_RANK_CASES} ELSE -1 END), id)",
    "CREATE INDEX IF NOT EXISTS ticket_team_lower ON ticket (lower(team))",
    "CREATE INDEX IF NOT EXISTS ticket_field_name_value_lower "
    "ON ticket_field (name, lower(value), ticket_id)",
)


def priority_rank(column: Any) -> Any:
    """``CASE column WHEN 'low' THEN 0 ... ELSE -1 END``, as ``ticket_priority_rank`` has it."""
    return NodeList((SQL("CASE"), column, SQL(f"{_RANK_CASES} ELSE -1 END")))


def create_indexes(db: Database) -> None:
    """Create the expression indexes (idempotent)."""
    for statement in _DDL:
        db.execute_sql(statement)
    if not is_sqlite(db):
        db.execute_sql("ANALYZE ticket, ticket_field")
