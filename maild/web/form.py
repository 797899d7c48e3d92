"""``GET/POST /form``: the public contact form, turned into a message in the spool (source web).

Abuse protection: a signed form token (refused when it comes back within
``http.form_min_seconds`` or after ``http.form_max_hours``), a honeypot field that people do not
see, and rate limits per client address and for everyone (``http.form_rate_per_ip``,
``form_rate_total``). Bodies are urlencoded or multipart (anything else is 415); attachments keep
the limits of mail. The thanks page (or 202 JSON with ``spool_id`` for ``Accept:
application/json``) is sent only after the spool commit; a locked database answers 503 with
Retry-After, and nothing is stored twice or lost.

The custom fields the rules mark ``on_form`` / ``required_on_form`` are shown after the message,
in declared order (a choice and a bool as a list, a date as a date input, a number and a text as
text, so the server's own check answers even where a browser would not), posted as
``field.NAME``, checked by their type (:func:`maild.routing.fields.form_values`) with an error
beside each field that does not fit, and carried to the ticket in the spooled message
(:mod:`maild.routing.given_fields`).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from aiohttp import web
from multidict import MultiDictProxy

from maild.routing.fields import MAX_VALUE_CHARS, form_fields, form_values
from maild.web.context import WebContext
from maild.web.inbound import (
    MAX_NAME_CHARS,
    MAX_SUBJECT_CHARS,
    InputError,
    Upload,
    body_text,
    build_message,
    check_uploads,
    checked_address,
    enqueue,
    one_line,
)
from maild.web.middleware import client_ip, wants_json
from maild.web.ratelimit import Limiter, admit
from maild.web.tokens import TokenError, check_form_token, issue_form_token

FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")
HONEYPOT = "website"
FIELDS = ("name", "email", "subject", "message")
FIELD_PREFIX = "field."  # custom fields are posted as field.NAME (a field may be named "email")


def epoch(now: dt.datetime) -> float:
    return now.replace(tzinfo=dt.UTC).timestamp()


def routes(ctx: WebContext) -> list[web.AbstractRouteDef]:
    app = ctx.app
    http = app.config.http
    limiter = Limiter()
    per_ip = limiter.limit("form-ip", http.form_rate_per_ip)
    total = limiter.limit("form-all", http.form_rate_total)

    def page(
        status: int = 200,
        values: dict[str, str] | None = None,
        errors: Any = (),
        custom: dict[str, str] | None = None,
        field_errors: dict[str, str] | None = None,
    ) -> web.Response:
        token = issue_form_token(app.secret, epoch(app.clock.now()))
        shown = form_fields(ctx.fields())
        return ctx.pages.render(
            "form.html.j2",
            status=status,
            token=token,
            values=values or dict.fromkeys(FIELDS, ""),
            errors=list(errors),
            honeypot=HONEYPOT,
            fields=[
                {
                    **f,
                    "input": f"{FIELD_PREFIX}{f['name']}",
                    "id": f"field-{f['name']}",
                    "value": (custom or {}).get(f["name"], ""),
                    "error": (field_errors or {}).get(f["name"], ""),
                }
                for f in shown
            ],
        )

    def refuse(
        request: web.Request,
        status: int,
        message: str,
        values: dict[str, str],
        custom: dict[str, str] | None = None,
    ) -> web.Response:
        if wants_json(request):
            return web.json_response({"error": message}, status=status)
        return page(status, values, [message], custom)

    async def show(request: web.Request) -> web.StreamResponse:
        return page()

    async def submit(request: web.Request) -> web.StreamResponse:
        if request.content_type not in FORM_TYPES:
            raise web.HTTPUnsupportedMediaType(
                text="Send the form as urlencoded or multipart data."
            )
        if not admit((per_ip, client_ip(request)), (total, "all")):
            raise web.HTTPTooManyRequests(
                text="Too many messages from here: please try again later.",
                headers={"Retry-After": "3600"},
            )
        data = await request.post()
        values = {name: _text(data, name) for name in FIELDS}
        declared = ctx.fields()
        custom = {
            f.name: _text(data, FIELD_PREFIX + f.name)[: MAX_VALUE_CHARS + 1]
            for f in declared.values()
            if f.on_form
        }
        if _text(data, HONEYPOT):
            return refuse(request, 400, "This message was not accepted.", values, custom)
        try:
            check_form_token(
                app.secret,
                _text(data, "token"),
                epoch(app.clock.now()),
                min_seconds=http.form_min_seconds,
                max_seconds=http.form_max_hours * 3600,
            )
        except TokenError:
            return refuse(
                request,
                400,
                "This form was sent too quickly or is too old: please check it and send it again.",
                values,
                custom,
            )
        errors: list[str] = []
        email = ""
        try:
            email = checked_address(values["email"])
        except InputError as exc:
            errors.append(f"E-mail: {exc}")
        if not one_line(values["subject"], MAX_SUBJECT_CHARS):
            errors.append("Subject: please give a subject.")
        text = ""
        try:
            text = body_text(values["message"])
            if not text.strip():
                errors.append("Message: please write a message.")
        except InputError as exc:
            errors.append(f"Message: {exc}")
        given, field_errors = form_values(declared, custom)
        errors.extend(field_errors.values())
        uploads = _uploads(data)
        try:
            check_uploads(uploads, app.config)
        except InputError as exc:
            return refuse(request, 413, str(exc), values, custom)
        if errors:
            if wants_json(request):
                answer: dict[str, Any] = {"error": " ".join(errors)}
                if field_errors:
                    answer["fields"] = field_errors
                return web.json_response(answer, status=400)
            return page(400, values, errors, custom, field_errors)
        support = app.config.support_addresses[0]
        raw = build_message(
            from_email=email,
            from_name=one_line(values["name"], MAX_NAME_CHARS),
            to=support,
            subject=values["subject"],
            text=text,
            now=app.clock.now(),
            source="web",
            client=client_ip(request),
            uploads=uploads,
            fields=given,
        )
        if len(raw) > app.config.smtp_in.max_message_bytes:
            return refuse(
                request, 413, "The message with its attachments is too large.", values, custom
            )
        spool_id = await ctx.write(
            enqueue, app.db, raw, source="web", mail_from=email, rcpt=support
        )
        ctx.wake()
        if wants_json(request):
            return web.json_response({"spool_id": spool_id}, status=202)
        return ctx.pages.render("thanks.html.j2", email=email)

    return [web.get("/form", show), web.post("/form", submit)]


def _text(data: MultiDictProxy[Any], name: str) -> str:
    value = data.get(name, "")
    return value if isinstance(value, str) else ""


def _uploads(data: MultiDictProxy[Any]) -> list[Upload]:
    uploads = []
    for value in data.getall("attachments", []):
        if isinstance(value, web.FileField):
            content = value.file.read()
            if not content and not value.filename:
                continue  # the empty file input of a form sent without attachments
            uploads.append(
                Upload(
                    value.filename or "", value.content_type or "application/octet-stream", content
                )
            )
    return uploads
