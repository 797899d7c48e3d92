"""Self-service figures of the tickets created in the window: the share of negative first
messages (opening customer mail scored below -0.5, VADER's compound score) and the deflection of
knowledge-base suggestions (tickets suggested articles, tickets self-solved, per article)."""

from __future__ import annotations

import json
from collections import Counter

from maild.reports.model import ArticleDeflection, Deflection, Sentiment
from maild.reports.sql import Scope

NEGATIVE = -0.5  # maild.pipeline.sentiment.NEGATIVE (the reports import no pipeline module)


def first_messages(scope: Scope, created: str) -> Sentiment:
    """Scored and negative first messages of the tickets ``created`` (the window test) selects."""
    first = (
        "SELECT MIN(m2.id) FROM message m2 WHERE m2.ticket_id = t.id "
        "AND m2.direction = 'in' AND m2.kind = 'customer'"
    )
    sql = (
        "SELECT COUNT(m.sentiment), "
        f"SUM(CASE WHEN m.sentiment < {NEGATIVE} THEN 1 ELSE 0 END) "
        f"FROM ticket t JOIN message m ON m.id = ({first}) WHERE {created} AND {scope.base}"
    )
    scored, negative = scope.rows(sql)[0]
    return Sentiment(scored=int(scored or 0), negative=int(negative or 0))


def deflection(scope: Scope, created: str) -> Deflection:
    """Tickets ``created`` selects that were suggested articles, and those resolved self-solved."""
    suggested = scope.rows(
        "SELECT ks.slug, COUNT(DISTINCT ks.ticket_id) FROM kb_suggestion ks "
        f"JOIN ticket t ON t.id = ks.ticket_id WHERE {created} AND {scope.base} GROUP BY ks.slug"
    )
    (tickets,) = scope.rows(
        "SELECT COUNT(DISTINCT ks.ticket_id) FROM kb_suggestion ks "
        f"JOIN ticket t ON t.id = ks.ticket_id WHERE {created} AND {scope.base}"
    )[0]
    solved_rows = scope.rows(
        "SELECT e.ticket_id, e.detail FROM event e JOIN ticket t ON t.id = e.ticket_id "
        f"WHERE e.action = 'self_solved' AND {created} AND {scope.base}"
    )
    by_article: Counter[str] = Counter()
    solved_tickets = set()
    for ticket_id, detail in solved_rows:
        solved_tickets.add(ticket_id)
        article = json.loads(detail or "{}").get("article")
        if article:
            by_article[str(article)] += 1
    articles = sorted(
        (
            ArticleDeflection(str(slug), int(n), by_article.get(str(slug), 0))
            for slug, n in suggested
        ),
        key=lambda a: (-a.suggested, a.slug),
    )
    return Deflection(
        suggested=int(tickets or 0), self_solved=len(solved_tickets), articles=tuple(articles)
    )
