"""``GET /``: a signpost to the web form, so the bare address of the server shows something."""

from __future__ import annotations

from aiohttp import web

from maild.web.context import WebContext


def routes(ctx: WebContext) -> list[web.AbstractRouteDef]:
    async def home(request: web.Request) -> web.StreamResponse:
        return ctx.pages.render("home.html.j2")

    return [web.get("/", home)]
