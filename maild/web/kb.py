"""Knowledge-base pages: ``GET /kb/{slug}`` (an article, readable without a login) and
``GET/POST /kb/solved/{REF}?k=TOKEN`` ("that solved it" from the acknowledgement).

The article page shows the text as written, every character escaped (HTML or Jinja in an article
is text here), paragraphs split at blank lines. The solved link's GET only asks (mail scanners
and link previews follow links); the button's POST resolves the ticket as self-solved
(:mod:`maild.kb.solved`). A bad, expired or other-ticket token gets the status pages' 403 page.
"""

from __future__ import annotations

import json
import re
from typing import Any

from aiohttp import web

from maild.app import App
from maild.kb.solved import mark_self_solved
from maild.kb.tokens import SolvedTokenError, read_token
from maild.store.db import is_sqlite, write_tx
from maild.store.models import KbArticle, Ticket
from maild.web.context import WebContext
from maild.web.form import FORM_TYPES
from maild.web.links import epoch

SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{0,99}$")


def article_values(slug: str) -> dict[str, Any] | None:
    row = KbArticle.get_or_none(KbArticle.slug == slug)
    if row is None:
        return None
    paragraphs = [p.strip() for p in re.split(r"\n\s*\n", row.body) if p.strip()]
    return {"title": row.title, "tags": json.loads(row.tags), "paragraphs": paragraphs}


def solved_values(app: App, number: int, token: str) -> dict[str, Any] | None:
    """What the solved page shows, or None when the token does not open it."""
    try:
        claim = read_token(
            app.secret, token, now=epoch(app.clock.now()), max_days=app.config.kb.solved_link_days
        )
    except SolvedTokenError:
        return None
    if claim.ticket != number:
        return None
    ticket = Ticket.get_by_id(number)
    row = KbArticle.get_or_none(KbArticle.slug == claim.slug)
    return {
        "ref": f"{app.config.prefix}-{number}",
        "subject": ticket.subject,
        "title": row.title if row is not None else claim.slug,
        "slug": claim.slug,
        "open": ticket.status in ("new", "open", "pending"),
    }


def solve(app: App, number: int, token: str) -> bool | None:
    """Resolve as self-solved; None for a token that does not open the ticket."""
    values = solved_values(app, number, token)
    if values is None:
        return None
    with write_tx(app.db):
        query = Ticket.select().where(Ticket.id == number)
        if not is_sqlite(app.db):
            query = query.for_update("FOR NO KEY UPDATE")  # type: ignore[arg-type]
        ticket = query.get()
        return mark_self_solved(
            app,
            ticket,
            actor=ticket.requester.email,
            at=app.clock.now(),
            via="link",
            article=values["slug"],
        )


def routes(ctx: WebContext) -> list[web.AbstractRouteDef]:
    app = ctx.app
    ref_re = re.compile(rf"^{re.escape(app.config.prefix)}-(\d{{1,12}})$")

    def denied() -> web.Response:
        return ctx.pages.render("status_denied.html.j2", status=403)

    async def article(request: web.Request) -> web.StreamResponse:
        slug = request.match_info["slug"]
        values = await ctx.db(article_values, slug) if SLUG.match(slug) else None
        if values is None:
            raise web.HTTPNotFound(text="No such article.")
        return ctx.pages.render("kb_article.html.j2", **values)

    def number_of(request: web.Request, token: str) -> int | None:
        match = ref_re.match(request.match_info["ref"])
        if not match or not token or len(token) > 500:
            return None
        return int(match.group(1))

    async def ask(request: web.Request) -> web.StreamResponse:
        token = request.query.get("k", "")
        number = number_of(request, token)
        values = await ctx.db(solved_values, app, number, token) if number else None
        if values is None:
            return denied()
        return ctx.pages.render(
            "kb_solved.html.j2", token=token, done=False, unchanged=not values["open"], **values
        )

    async def answer(request: web.Request) -> web.StreamResponse:
        if request.content_type not in FORM_TYPES:
            raise web.HTTPUnsupportedMediaType(text="Send the form as urlencoded data.")
        data = await request.post()
        token = data.get("k")
        token = token if isinstance(token, str) else ""
        number = number_of(request, token)
        solved = await ctx.write(solve, app, number, token) if number else None
        if solved is None:
            return denied()
        values = await ctx.db(solved_values, app, number, token)
        assert values is not None
        return ctx.pages.render(
            "kb_solved.html.j2", token="", done=solved, unchanged=not solved, **values
        )

    return [
        web.get("/kb/solved/{ref}", ask),
        web.post("/kb/solved/{ref}", answer),
        web.get("/kb/{slug}", article),
    ]
