"""The articles to suggest for a ticket: at most ``kb.max_suggestions``, each scoring at least
``kb.min_score``, and only those for every team or for the ticket's team. None at all when
nothing fits well enough: a bad suggestion is worse than none."""

from __future__ import annotations

from peewee import Database

from maild.config import KbConfig
from maild.kb.index import Hit, search


def suggestions(
    db: Database, kb: KbConfig, subject: str, text: str, team: str | None = None
) -> list[Hit]:
    """The best articles for a mail with ``subject`` and ``text`` on a ticket of ``team``."""
    if kb.max_suggestions <= 0:
        return []
    hits = search(db, f"{subject}\n{text}", limit=kb.max_suggestions * 4)
    fitting = [h for h in hits if h.score >= kb.min_score and (h.team is None or h.team == team)]
    return fitting[: kb.max_suggestions]
