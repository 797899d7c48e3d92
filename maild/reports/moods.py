"""The share of negative first messages: tickets created in the window whose opening customer
mail scored below :data:`maild.pipeline.sentiment.NEGATIVE` (VADER's compound score)."""

from __future__ import annotations

from maild.reports.model import Sentiment
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
