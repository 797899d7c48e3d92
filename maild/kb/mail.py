"""The ``suggestions`` of the acknowledgement: the articles that fit the new ticket's first mail,
each with what the requester needs to read it without a login and to say that it solved the
problem. Each suggestion is recorded (``kb_suggestion``) for the reports' deflection figures.

With the HTTP server on, ``url`` is the article's page (``/kb/SLUG``) and ``solved_url`` the
signed "that solved it" link; without it both are empty and ``text`` carries the article inline
(the requester answers "solved" instead). Article text is data to the templates, never template
source, and the HTML alternative escapes it like every other value.
"""

from __future__ import annotations

from typing import Any

from maild.app import App
from maild.kb.suggest import suggestions
from maild.kb.tokens import issue_token
from maild.store.models import KbArticle, KbSuggestion, Message, Ticket
from maild.web.links import base_url, epoch

MAX_INLINE_CHARS = 4_000


def ack_suggestions(app: App, ticket: Ticket, answering: Message | None, email: str) -> list[Any]:
    """The suggestions for ``ticket``'s acknowledgement to ``email`` (recorded as suggested)."""
    if answering is None:
        return []
    hits = suggestions(app.db, app.config.kb, answering.subject, answering.body, ticket.team)
    if not hits:
        return []
    http = app.config.http.enabled
    base = base_url(app)
    now = app.clock.now()
    ref = f"{app.config.prefix}-{ticket.id}"
    bodies = {
        row.slug: row.body
        for row in KbArticle.select(KbArticle.slug, KbArticle.body).where(
            KbArticle.slug.in_([h.slug for h in hits])
        )
    }
    out = []
    for hit in hits:
        KbSuggestion.create(ticket=ticket, slug=hit.slug, score=hit.score, created_at=now)
        token = issue_token(app.secret, ticket.id, email, hit.slug, epoch(now)) if http else ""
        text = bodies.get(hit.slug, "")
        out.append(
            {
                "slug": hit.slug,
                "title": hit.title,
                "score": round(hit.score, 3),
                "url": f"{base}/kb/{hit.slug}" if http else "",
                "solved_url": f"{base}/kb/solved/{ref}?k={token}" if http else "",
                "text": "" if http else text[:MAX_INLINE_CHARS],
            }
        )
    return out
