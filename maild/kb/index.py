"""The knowledge base's full-text index in the ticket database, and searching it.

The articles are rows of ``kb_article`` (:class:`maild.store.models.KbArticle`); beside them:

- SQLite: an FTS5 table ``kb_fts`` (title, tags, body; porter stemming, diacritics removed),
  ranked by ``bm25`` with the title weighted 10, the tags 4 and the text 1;
- PostgreSQL: ``kb_vector`` with a ``tsvector`` per article (title weight A, tags B, text D, in the
  article's language's text-search configuration) under a GIN index, ranked by ``ts_rank``.

Scores are made comparable in size: ``s / (s + 1)`` of bm25's (negated) value on SQLite, and on
PostgreSQL of ``ts_rank`` times the number of query terms (``ts_rank`` divides an OR query's rank
by it, where bm25 adds the terms up: without this a long mail would score lower than a short one
that fits as well) times PG_RANK_SCALE (measured on the shipped articles), so every score is
between 0 and 1, higher is better, and one ``kb.min_score`` means about the same on both. Queries are built from :func:`maild.kb.terms.terms`
only, so no input is query syntax.

:func:`sync` brings the index in line with a folder's articles: new and changed ones (by the
file's mtime and size) are written, removed ones deleted, unchanged ones left alone.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass

from peewee import Database

from maild.kb.articles import Article
from maild.kb.terms import fts5_query, terms, tsquery
from maild.store.db import is_sqlite, write_tx
from maild.store.fulltext import ensure_tables
from maild.store.models import KbArticle

# Two-letter languages and PostgreSQL's text-search configurations; others use "simple".
PG_CONFIGS = {
    "da": "danish",
    "de": "german",
    "en": "english",
    "es": "spanish",
    "fi": "finnish",
    "fr": "french",
    "it": "italian",
    "nl": "dutch",
    "no": "norwegian",
    "pt": "portuguese",
    "ru": "russian",
    "sv": "swedish",
}
TITLE_WEIGHT, TAGS_WEIGHT, BODY_WEIGHT = 10.0, 4.0, 1.0
PG_RANK_SCALE = 3.0


@dataclass(frozen=True)
class Hit:
    slug: str
    title: str
    score: float  # 0 to 1, higher is better
    team: str | None = None

    def as_dict(self) -> dict[str, object]:
        return {"slug": self.slug, "title": self.title, "score": round(self.score, 4)}


def sync(db: Database, articles: Iterable[Article]) -> tuple[int, int]:
    """Index ``articles`` as the whole knowledge base; return (written, deleted).

    Unchanged articles are only read, so a sync that finds nothing to do takes no write lock."""
    wanted = {a.slug: a for a in articles}
    rows = KbArticle.select(KbArticle.slug, KbArticle.stamp)
    stamps: dict[str, str] = {row.slug: row.stamp for row in rows}
    gone = [slug for slug in stamps if slug not in wanted]
    changed = [a for slug, a in wanted.items() if stamps.get(slug) != a.stamp]
    if not gone and not changed:
        return 0, 0
    with write_tx(db):
        ensure_tables(db)
        for row in KbArticle.select().where(KbArticle.slug.in_(gone)):
            _drop_text(db, row.id)
            row.delete_instance()
        for article in changed:
            found = KbArticle.get_or_none(KbArticle.slug == article.slug)
            if found is not None:
                _drop_text(db, found.id)
            row = found if found is not None else KbArticle(slug=article.slug)
            row.title, row.body, row.team = article.title, article.body, article.team
            row.tags, row.language = json.dumps(list(article.tags)), article.language
            row.stamp = article.stamp
            row.save()
            _add_text(db, row.id, article)
    return len(changed), len(gone)


def _drop_text(db: Database, article_id: int) -> None:
    if is_sqlite(db):
        db.execute_sql("DELETE FROM kb_fts WHERE rowid = ?", (article_id,))
    else:
        db.execute_sql("DELETE FROM kb_vector WHERE article_id = %s", (article_id,))


def _add_text(db: Database, article_id: int, a: Article) -> None:
    tags = " ".join(a.tags)
    if is_sqlite(db):
        db.execute_sql(
            "INSERT INTO kb_fts (rowid, title, tags, body) VALUES (?, ?, ?, ?)",
            (article_id, a.title, tags, a.body),
        )
        return
    cfg = PG_CONFIGS.get(a.language, "simple")
    db.execute_sql(
        "INSERT INTO kb_vector (article_id, cfg, tsv) VALUES (%s, %s, "
        "setweight(to_tsvector(%s::regconfig, %s), 'A') || "
        "setweight(to_tsvector(%s::regconfig, %s), 'B') || "
        "setweight(to_tsvector(%s::regconfig, %s), 'D'))",
        (article_id, cfg, cfg, a.title, cfg, tags, cfg, a.body),
    )


def search(db: Database, text: str, *, limit: int = 10) -> list[Hit]:
    """The articles that fit ``text`` best, best first (none for a text without search words)."""
    words = terms(text)
    if not words or limit <= 0:
        return []
    if is_sqlite(db):
        sql = (
            "SELECT a.slug, a.title, a.team, "
            f"bm25(kb_fts, {TITLE_WEIGHT}, {TAGS_WEIGHT}, {BODY_WEIGHT}) AS r "
            "FROM kb_fts JOIN kb_article a ON a.id = kb_fts.rowid "
            "WHERE kb_fts MATCH ? ORDER BY r LIMIT ?"
        )
        rows = db.execute_sql(sql, (fts5_query(words), limit)).fetchall()
        hits = [Hit(slug, title, -r / (1 - r), team) for slug, title, team, r in rows]
    else:
        cfgs = [row[0] for row in db.execute_sql("SELECT DISTINCT cfg FROM kb_vector").fetchall()]
        if not cfgs:
            return []
        parts, params = [], []
        for cfg in cfgs:  # one index scan per language: the query is a constant in each
            parts.append(
                "SELECT a.slug, a.title, a.team, ts_rank(v.tsv, q) AS r FROM kb_vector v "
                "JOIN kb_article a ON a.id = v.article_id, to_tsquery(%s::regconfig, %s) q "
                "WHERE v.cfg = %s AND v.tsv @@ q"
            )
            params += [cfg, tsquery(words), cfg]
        sql = " UNION ALL ".join(parts) + " ORDER BY r DESC, slug LIMIT %s"
        rows = db.execute_sql(sql, (*params, limit)).fetchall()
        factor = PG_RANK_SCALE * len(words)
        scaled = [(slug, title, team, factor * float(r)) for slug, title, team, r in rows]
        hits = [Hit(slug, title, s / (s + 1), team) for slug, title, team, s in scaled]
    return hits
