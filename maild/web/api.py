"""``POST /api/v1/messages``: intake for chat tools and other channels, into the same spool.

A channel is ``{name, token_env | token_file}`` in ``http.channels``; its client sends
``Authorization: Bearer <token>`` and a JSON object ``{external_id, from: {email, name}, subject,
text, ticket (optional REF), fields (optional {name: value} of custom fields), attachments:
[{filename, content_type, data (base64)}]}``. The answer
is ``202 {"spool_id": N}`` once the message is committed (source ``api``); the same channel's
``external_id`` again is ``200 {"duplicate": true}`` and stored once. Errors are JSON
``{"error": "..."}``: 400 bad JSON or fields (with ``fields: {name: why}`` for custom fields
that are not declared or do not fit their type), 401 token, 413 size, 415 not JSON, 429 rate.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from pathlib import Path
from typing import Any

from aiohttp import web
from peewee import Database, IntegrityError

from maild import spool
from maild.config import Config, read_secret
from maild.config_schema import resolve_path
from maild.errors import ConfigError
from maild.pipeline.addresses import Signer
from maild.routing import given_fields
from maild.store.db import write_tx
from maild.store.models import ApiIntake, Ticket
from maild.web.context import WebContext
from maild.web.inbound import (
    MAX_NAME_CHARS,
    InputError,
    Upload,
    body_text,
    build_message,
    check_uploads,
    checked_address,
    one_line,
)
from maild.web.middleware import client_ip
from maild.web.ratelimit import Limiter, admit
from maild.webhooks.channels import kind_of

NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")


def load_channels(config: Config) -> dict[str, str]:
    """Token -> channel name from ``http.channels``; ConfigError for a bad entry."""
    tokens: dict[str, str] = {}
    names: set[str] = set()  # one namespace for API and Slack channels: tickets record the name
    for i, entry in enumerate(config.http.channels):
        key = f"http.channels[{i}]"
        kind = kind_of(entry, key)  # unknown keys of either kind are refused here
        name = entry.get("name")
        if not isinstance(name, str) or not NAME_RE.match(name):
            raise ConfigError(f"{key}.name: give a name of lower-case letters, digits, - and _")
        if name in names:
            raise ConfigError(f"{key}.name: {name!r} is used twice")
        names.add(name)
        if kind == "slack":  # no bearer token: Slack signs its requests (maild.web.slack)
            continue
        env, file = entry.get("token_env"), entry.get("token_file")
        if bool(env) == bool(file):
            raise ConfigError(f"{key}: give token_env or token_file (one of them)")
        path = None
        if file:
            path = resolve_path(Path(str(file)), config.base_dir)
        token = read_secret(env=str(env) if env else None, file=path, what=key)
        if not token or len(token) < 16:
            raise ConfigError(f"{key}: the token must be at least 16 characters")
        tokens[token] = name
    return tokens


def _channel(request: web.Request, tokens: dict[str, str]) -> str:
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "bearer" and given:
        for token, name in tokens.items():
            if hmac.compare_digest(token.encode(), given.strip().encode()):
                return name
    raise web.HTTPUnauthorized(
        text="A valid channel token is required (Authorization: Bearer ...).",
        headers={"WWW-Authenticate": 'Bearer realm="ticketd"'},
    )


def _field(data: dict[str, Any], name: str, *, required: bool = True, limit: int = 100_000) -> str:
    value = data.get(name)
    if value is None and not required:
        return ""
    if not isinstance(value, str) or (required and not value.strip()):
        raise InputError(f"{name}: a non-empty string is required")
    if len(value) > limit:
        raise InputError(f"{name}: longer than {limit} characters")
    return value


def _uploads(data: dict[str, Any]) -> list[Upload]:
    items = data.get("attachments") or []
    if not isinstance(items, list):
        raise InputError("attachments: a list is required")
    uploads = []
    for i, item in enumerate(items):
        if not isinstance(item, dict) or not isinstance(item.get("data"), str):
            raise InputError(f"attachments[{i}]: an object with base64 data is required")
        try:
            content = base64.b64decode(item["data"], validate=True)
        except (binascii.Error, ValueError):
            raise InputError(f"attachments[{i}].data: not base64") from None
        name = item.get("filename") if isinstance(item.get("filename"), str) else ""
        ctype = item.get("content_type") if isinstance(item.get("content_type"), str) else ""
        uploads.append(Upload(name or "", ctype or "application/octet-stream", content))
    return uploads


def store(
    db: Database,
    raw: bytes,
    *,
    channel: str,
    external_id: str,
    mail_from: str,
    rcpt: str,
    source: str = "api",
) -> tuple[int, bool]:
    """Spool ``raw`` and remember (channel, external_id) in one transaction: (spool id, duplicate)."""
    db.connect(reuse_if_open=True)

    def known() -> ApiIntake | None:
        return ApiIntake.get_or_none(
            (ApiIntake.channel == channel) & (ApiIntake.external_id == external_id)
        )

    try:
        with write_tx(db):
            seen = known()
            if seen is not None:
                return seen.spool_id, True
            spool_id = spool.add(
                raw,
                source=source,
                mail_from=mail_from,
                rcpt_tos=[rcpt],
                source_ref=f"{source}:{channel}:{external_id}"[:500],
            )
            ApiIntake.create(channel=channel, external_id=external_id, spool_id=spool_id)
            return spool_id, False
    except IntegrityError:  # the same id from a concurrent request committed first
        seen = known()
        if seen is None:
            raise
        return seen.spool_id, True


def routes(ctx: WebContext) -> list[web.AbstractRouteDef]:
    app = ctx.app
    tokens = load_channels(app.config)
    limit = Limiter().limit("api-channel", app.config.http.api_rate_per_channel)
    signer = Signer(app.config.prefix, app.secret)
    ref_re = re.compile(rf"^{re.escape(app.config.prefix)}-(\d{{1,12}})$")

    async def messages(request: web.Request) -> web.StreamResponse:
        channel = _channel(request, tokens)
        if request.content_type != "application/json":
            raise web.HTTPUnsupportedMediaType(text="Send application/json.")
        if not admit((limit, channel)):
            raise web.HTTPTooManyRequests(
                text="Too many messages on this channel.", headers={"Retry-After": "60"}
            )
        try:
            data = await request.json()
        except ValueError:
            raise web.HTTPBadRequest(text="The body is not valid JSON.") from None
        try:
            if not isinstance(data, dict):
                raise InputError("a JSON object is required")
            external_id = one_line(_field(data, "external_id", limit=200), 200)
            sender = data.get("from")
            if not isinstance(sender, dict):
                raise InputError("from: an object with email (and name) is required")
            email = checked_address(_field(sender, "email", limit=254))
            name = one_line(_field(sender, "name", required=False, limit=1000), MAX_NAME_CHARS)
            subject = _field(data, "subject", required=False, limit=1000)
            text = body_text(_field(data, "text"))
            ticket_ref = _field(data, "ticket", required=False, limit=40)
            uploads = _uploads(data)
        except InputError as exc:
            raise web.HTTPBadRequest(text=str(exc)) from None
        given, field_errors = given_fields.checked_values(ctx.fields(), data.get("fields"))
        if field_errors:
            return web.json_response(
                {"error": "; ".join(field_errors.values()), "fields": field_errors}, status=400
            )
        try:
            check_uploads(uploads, app.config)
        except InputError as exc:
            raise web.HTTPRequestEntityTooLarge(
                max_size=app.config.attachments.max_bytes, actual_size=0, text=str(exc)
            ) from None
        support = app.config.support_addresses[0]
        to = support
        if ticket_ref:
            match = ref_re.match(ticket_ref.strip())
            number = int(match.group(1)) if match else 0
            exists = number and await ctx.db(
                lambda: Ticket.select().where(Ticket.id == number).exists()
            )
            if not exists:
                raise web.HTTPBadRequest(text=f"ticket: no ticket {ticket_ref!r}")
            ticket = await ctx.db(Ticket.get_by_id, number)
            to = signer.reply_address(ticket.support_address or support, number)
            subject = f"[{app.config.prefix}-{number}] {subject}"
        digest = hashlib.sha256(f"{channel}\0{external_id}".encode()).hexdigest()[:32]
        domain = support.partition("@")[2]
        raw = build_message(
            from_email=email,
            from_name=name,
            to=to,
            subject=subject,
            text=text,
            now=app.clock.now(),
            source="api",
            client=client_ip(request),
            uploads=uploads,
            message_id=f"api.{channel}.{digest}@{domain}",
            fields=given,
        )
        if len(raw) > app.config.smtp_in.max_message_bytes:
            raise web.HTTPRequestEntityTooLarge(
                max_size=app.config.smtp_in.max_message_bytes,
                actual_size=len(raw),
                text="The message with its attachments is too large.",
            )
        spool_id, duplicate = await ctx.write(
            store, app.db, raw, channel=channel, external_id=external_id, mail_from=email, rcpt=to
        )
        if duplicate:
            return web.json_response({"duplicate": True}, status=200)
        ctx.wake()
        return web.json_response({"spool_id": spool_id}, status=202)

    return [web.post("/api/v1/messages", messages)]
