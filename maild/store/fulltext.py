"""The knowledge base's full-text tables, which are not peewee models: FTS5 on SQLite, a
``tsvector`` table under a GIN index on PostgreSQL (filled by :mod:`maild.kb.index`)."""

from __future__ import annotations

from peewee import Database

from maild.store.db import is_sqlite


def ensure_tables(db: Database) -> None:
    """The full-text table beside ``kb_article`` (``kb_article`` itself is a model)."""
    if is_sqlite(db):
        db.execute_sql(
            "CREATE VIRTUAL TABLE IF NOT EXISTS kb_fts USING fts5("
            "title, tags, body, tokenize = 'porter unicode61 remove_diacritics 2')"
        )
        return
    db.execute_sql(
        "CREATE TABLE IF NOT EXISTS kb_vector (article_id INTEGER PRIMARY KEY "
        "REFERENCES kb_article (id) ON DELETE CASCADE, cfg TEXT NOT NULL, tsv tsvector NOT NULL)"
    )
    db.execute_sql("CREATE INDEX IF NOT EXISTS kb_vector_tsv ON kb_vector USING GIN (tsv)")
