"""``GET /healthz`` and ``GET /metrics``: the health checks and Prometheus metrics over HTTP.

``/healthz`` answers ``{healthy, checks}`` (:mod:`maild.ops.health`) with 200 when healthy and
503 when not; ``/metrics`` the Prometheus text format (:mod:`maild.ops.metrics`). Both read the
database on the server's pool, never on the event loop.
"""

from __future__ import annotations

from aiohttp import web

from maild.ops.health import health
from maild.ops.metrics import CONTENT_TYPE, exposition
from maild.web.context import WebContext


def routes(ctx: WebContext) -> list[web.AbstractRouteDef]:
    async def healthz(request: web.Request) -> web.StreamResponse:
        result = await ctx.db(health, ctx.app)
        return web.json_response(
            result.as_json(),
            status=200 if result.healthy else 503,
            headers={"Cache-Control": "no-store"},
        )

    async def metrics(request: web.Request) -> web.StreamResponse:
        body = await ctx.db(exposition, request)
        return web.Response(
            body=body, headers={"Content-Type": CONTENT_TYPE, "Cache-Control": "no-store"}
        )

    return [web.get("/healthz", healthz), web.get("/metrics", metrics)]
