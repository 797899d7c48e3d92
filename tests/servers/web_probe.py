"""A route module for tests of the server itself: a handler that raises, one that echoes."""

from __future__ import annotations

from aiohttp import web

from maild.web.context import WebContext
from maild.web.middleware import client_ip


def routes(ctx: WebContext) -> list[web.AbstractRouteDef]:
    async def boom(request: web.Request) -> web.StreamResponse:
        raise RuntimeError("secret internal detail /etc/ticketd")

    async def whoami(request: web.Request) -> web.StreamResponse:
        return web.json_response({"ip": client_ip(request)})

    async def echo(request: web.Request) -> web.StreamResponse:
        body = await request.read()
        return web.json_response({"bytes": len(body)})

    return [
        web.get("/probe/boom", boom),
        web.get("/probe/ip", whoami),
        web.post("/probe/echo", echo),
    ]
