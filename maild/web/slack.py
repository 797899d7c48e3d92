"""``POST /api/v1/slack/{name}/events``: Slack's Events API as a channel into the same spool.

A channel of ``kind: slack`` in ``http.channels`` (maild.webhooks.channels). Every request is
checked with slack-sdk's ``SignatureVerifier`` (the ``X-Slack-Signature`` v0 HMAC over
``v0:timestamp:body`` and the 5-minute window of ``X-Slack-Request-Timestamp``): a wrong
signature or a stale timestamp is 401 and stores nothing. ``url_verification`` is answered with
its challenge. A direct message (``message`` in an ``im``) or an app mention becomes an RFC 5322
message in the spool (source ``slack``) with the event id as ``external_id``, so Slack's retries
are stored once; a reply in a thread carries ``In-Reply-To`` of the thread's first message and is
appended to its ticket. Messages of bots (ours included), edits and deletions are ignored.

The requester is ``USER@TEAM.slack.invalid``: an address no mail can reach, since the answers
go back into the Slack thread (maild.webhooks.queue); the first Message-ID is
``slack.NAME.CHANNEL.TS@domain``, which is how the answers find their thread.
"""

from __future__ import annotations

import re
from typing import Any

from aiohttp import web

from maild.web.api import store
from maild.web.context import WebContext
from maild.web.inbound import body_text, build_message, one_line
from maild.web.middleware import client_ip
from maild.webhooks.channels import slack_channels

ID_RE = re.compile(r"^[A-Za-z0-9]{1,40}$")
TS_RE = re.compile(r"^\d{1,12}\.\d{1,9}$")


def _unauthorized() -> web.Response:
    return web.json_response(
        {"error": "the Slack signature is missing, wrong or stale"}, status=401
    )


def message_id(channel: str, slack_channel: str, ts: str, domain: str) -> str:
    return f"slack.{channel}.{slack_channel}.{ts.replace('.', '-')}@{domain}"


def event_to_mail(
    event: dict[str, Any], *, channel: str, team: str, support: str, now: Any, client: str
) -> tuple[bytes, str] | None:
    """The spool message of one Slack message event (and its sender), or None to ignore it."""
    kind = event.get("type")
    if kind == "message" and event.get("channel_type") != "im":
        return None
    if kind not in ("message", "app_mention"):
        return None
    if event.get("bot_id") or event.get("subtype"):  # bots (our own posts), edits, deletions
        return None
    user, slack_channel, ts = event.get("user"), event.get("channel"), event.get("ts")
    text = event.get("text")
    if not (isinstance(user, str) and ID_RE.match(user) and isinstance(text, str)):
        return None
    if not (isinstance(slack_channel, str) and ID_RE.match(slack_channel)):
        return None
    if not (isinstance(ts, str) and TS_RE.match(ts)):
        return None
    thread = event.get("thread_ts")
    domain = support.partition("@")[2]
    parent = None
    if isinstance(thread, str) and TS_RE.match(thread) and thread != ts:
        parent = message_id(channel, slack_channel, thread, domain)
    team_id = team if ID_RE.match(team) else "slack"
    sender = f"{user.lower()}@{team_id.lower()}.slack.invalid"
    body = body_text(re.sub(r"<@[A-Z0-9]+>\s*", "", text))
    subject = one_line(body.split("\n", 1)[0], 80) or "Slack message"
    raw = build_message(
        from_email=sender,
        from_name=f"Slack {user}",
        to=support,
        subject=f"Re: {subject}" if parent else subject,
        text=body,
        now=now,
        source="slack",
        client=client,
        message_id=message_id(channel, slack_channel, ts, domain),
        in_reply_to=parent,
    )
    return raw, sender


def routes(ctx: WebContext) -> list[web.AbstractRouteDef]:
    from slack_sdk.signature import SignatureVerifier

    app = ctx.app
    channels = slack_channels(app.config)
    verifiers = {name: SignatureVerifier(c.signing_secret) for name, c in channels.items()}

    async def events(request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        verifier = verifiers.get(name)
        if verifier is None:
            raise web.HTTPNotFound(text="No such Slack channel.")
        body = await request.read()
        if not verifier.is_valid(
            body,
            request.headers.get("X-Slack-Request-Timestamp"),
            request.headers.get("X-Slack-Signature"),
        ):
            return _unauthorized()
        try:
            data = await request.json()
        except ValueError:
            raise web.HTTPBadRequest(text="The body is not valid JSON.") from None
        if not isinstance(data, dict):
            raise web.HTTPBadRequest(text="A JSON object is required.")
        if data.get("type") == "url_verification":
            return web.json_response({"challenge": str(data.get("challenge", ""))})
        event, event_id = data.get("event"), data.get("event_id")
        if data.get("type") != "event_callback" or not isinstance(event, dict):
            return web.json_response({"ok": True, "ignored": True})
        if not isinstance(event_id, str) or not ID_RE.match(event_id):
            raise web.HTTPBadRequest(text="event_id: missing or malformed")
        support = app.config.support_addresses[0]
        made = event_to_mail(
            event,
            channel=name,
            team=str(data.get("team_id", "")),
            support=support,
            now=app.clock.now(),
            client=client_ip(request),
        )
        if made is None:
            return web.json_response({"ok": True, "ignored": True})
        raw, sender = made
        spool_id, duplicate = await ctx.write(
            store,
            app.db,
            raw,
            channel=name,
            external_id=event_id,
            mail_from=sender,
            rcpt=support,
            source="slack",
        )
        if not duplicate:
            ctx.wake()
        return web.json_response({"ok": True, "spool_id": spool_id, "duplicate": duplicate})

    return [web.post("/api/v1/slack/{name}/events", events)]
