"""Requester status pages without accounts: ``GET/POST /t/{REF}?k=TOKEN`` and ``POST /t/lookup``.

The signed link in every mail to a requester or watcher opens the ticket's page: subject,
status, priority and the public thread, with forms to reply (spooled as that person's message to
the ticket's signed reply address, so it threads and counts as theirs), to mark the ticket solved
and to re-open it. A tampered, expired, revoked or other-ticket token gets the same 403 page,
which reveals nothing about the ticket. ``POST /t/lookup`` always answers the same page and mails
the address fresh links to its open tickets, within ``http.lookup_rate``.
"""

from __future__ import annotations

import re
from urllib.parse import quote

from aiohttp import web

from maild.notify.templates import Renderer
from maild.pipeline.addresses import Signer
from maild.web import status_store
from maild.web.context import WebContext
from maild.web.form import FORM_TYPES
from maild.web.inbound import InputError, body_text, build_message, checked_address, enqueue
from maild.web.middleware import client_ip
from maild.web.ratelimit import Limiter, admit

ACTIONS = {"reply", "solve", "reopen"}
NOTICES = {
    "reply": "Thank you: your reply was received and will appear here in a moment.",
    "solved": "The ticket is marked as solved.",
    "reopened": "The ticket is open again.",
    "unchanged": "The ticket's status had already changed; nothing was done.",
}


def routes(ctx: WebContext) -> list[web.AbstractRouteDef]:
    app = ctx.app
    http = app.config.http
    limiter = Limiter()
    posts = limiter.limit("status-ip", http.form_rate_per_ip)
    lookups_ip = limiter.limit("lookup-ip", http.lookup_rate)
    lookups_address = limiter.limit("lookup-address", http.lookup_rate)
    renderer = Renderer(app.config.templates_dir)
    signer = Signer(app.config.prefix, app.secret)
    ref_re = re.compile(rf"^{re.escape(app.config.prefix)}-(\d{{1,12}})$")

    def denied() -> web.Response:
        return ctx.pages.render("status_denied.html.j2", status=403)

    async def viewer(request: web.Request, token: str) -> tuple[status_store.Viewer, dict] | None:
        match = ref_re.match(request.match_info["ref"])
        if not match or not token or len(token) > 500:
            return None
        return await ctx.db(status_store.open_view, app, int(match.group(1)), token)

    async def show(request: web.Request) -> web.StreamResponse:
        token = request.query.get("k", "")
        found = await viewer(request, token)
        if found is None:
            return denied()
        _who, values = found
        notice = NOTICES.get(request.query.get("done", ""), "")
        return ctx.pages.render("status.html.j2", token=token, notice=notice, error="", **values)

    async def act(request: web.Request) -> web.StreamResponse:
        if request.content_type not in FORM_TYPES:
            raise web.HTTPUnsupportedMediaType(
                text="Send the form as urlencoded or multipart data."
            )
        if not admit((posts, client_ip(request))):
            raise web.HTTPTooManyRequests(headers={"Retry-After": "3600"})
        data = await request.post()
        token = data.get("k") or request.query.get("k", "")
        token = token if isinstance(token, str) else ""
        found = await viewer(request, token)
        if found is None:
            return denied()
        who, values = found
        action = data.get("action")
        if action not in ACTIONS:
            raise web.HTTPBadRequest(text="Unknown action.")
        if action == "reply":
            text = data.get("text")
            try:
                body = body_text(text if isinstance(text, str) else "")
            except InputError as exc:
                body, error = "", str(exc)
            else:
                error = "" if body.strip() else "Please write your reply first."
            if error:
                return ctx.pages.render(
                    "status.html.j2", status=400, token=token, notice="", error=error, **values
                )
            to = signer.reply_address(values["support_address"], who.number)
            raw = build_message(
                from_email=who.email,
                from_name=who.name,
                to=to,
                subject=f"Re: [{values['ref']}] {values['subject']}",
                text=body,
                now=app.clock.now(),
                source="web",
                client=client_ip(request),
            )
            await ctx.write(enqueue, app.db, raw, source="web", mail_from=who.email, rcpt=to)
            ctx.wake()
            done = "reply"
        else:
            status = "resolved" if action == "solve" else "open"
            changed = await ctx.write(status_store.change_status, app, who, status)
            done = ("solved" if action == "solve" else "reopened") if changed else "unchanged"
        raise web.HTTPSeeOther(f"/t/{values['ref']}?k={quote(token)}&done={done}")

    async def lookup_form(request: web.Request) -> web.StreamResponse:
        return ctx.pages.render("lookup.html.j2")

    async def lookup(request: web.Request) -> web.StreamResponse:
        if request.content_type not in FORM_TYPES:
            raise web.HTTPUnsupportedMediaType(
                text="Send the form as urlencoded or multipart data."
            )
        if not admit((lookups_ip, client_ip(request))):
            raise web.HTTPTooManyRequests(headers={"Retry-After": "3600"})
        data = await request.post()
        given = data.get("email")
        given = given if isinstance(given, str) else ""
        try:
            email = checked_address(given)
        except InputError:
            email = ""
        if email and admit((lookups_address, email)):
            await ctx.write(status_store.mail_links, app, renderer, email)
        return ctx.pages.render("lookup_sent.html.j2")

    return [
        web.get("/t/lookup", lookup_form),
        web.post("/t/lookup", lookup),
        web.get("/t/{ref}", show),
        web.post("/t/{ref}", act),
    ]
