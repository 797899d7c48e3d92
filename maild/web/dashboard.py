"""``GET /dashboard``: the leads' live view behind HTTP basic auth (``http.dashboard_users``).

Passwords are checked against scrypt hashes (:mod:`maild.ops.passwords`) on the database pool, so
a slow hash never blocks the loop; an unknown user costs a hash too, so timing does not tell which
names exist. The page refreshes itself every minute with a ``Refresh`` header (no JavaScript).
Without any configured user the page does not exist (404).
"""

from __future__ import annotations

import base64
import binascii

from aiohttp import web
from markupsafe import Markup

from maild.ops.dashboard import gather
from maild.ops.passwords import hash_password, verify_password
from maild.web.context import WebContext

REFRESH_SECONDS = 60


def credentials(header: str) -> tuple[str, str] | None:
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic" or not value:
        return None
    try:
        user, sep, password = base64.b64decode(value.strip(), validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return (user, password) if sep else None


def routes(ctx: WebContext) -> list[web.AbstractRouteDef]:
    users = dict(ctx.app.config.http.dashboard_users)
    decoy = hash_password("not a real password") if users else ""

    def allowed(given: tuple[str, str] | None) -> bool:
        if given is None:
            return False
        user, password = given
        stored = users.get(user)
        ok = verify_password(password, stored or decoy)
        return ok and stored is not None

    async def dashboard(request: web.Request) -> web.StreamResponse:
        if not users:
            raise web.HTTPNotFound()
        given = credentials(request.headers.get("Authorization", ""))
        if not await ctx.db(allowed, given):
            raise web.HTTPUnauthorized(
                headers={"WWW-Authenticate": 'Basic realm="ticketd dashboard", charset="UTF-8"'}
            )
        data = await ctx.db(gather, ctx.app)
        return ctx.pages.render(
            "dashboard.html.j2",
            headers={"Refresh": str(REFRESH_SECONDS), "Cache-Control": "no-store"},
            queue=data.queue,
            at_risk=data.at_risk,
            today=data.today,
            volume_svg=Markup(data.volume_svg or ""),  # built by maild.reports.charts, escaped
            traffic_svg=Markup(data.traffic_svg or ""),
        )

    return [web.get("/dashboard", dashboard)]
