"""A webhook receiver on loopback: a real aiohttp server that verifies every signature with the
reference library (``standardwebhooks``) and answers 200, 500, 429 or not at all on demand.

``Receiver(secret)`` runs on a thread of its own; ``url`` addresses it; ``answer`` sets what the
next requests get (``ok``, ``500``, ``429``, ``hang``, ``redirect``, ``down``: connection
refused). ``received`` lists every request as ``Received(webhook_id, verified, payload, ...)``;
``wait_for(n)`` waits (a condition on an event, no sleeping) until ``n`` verified ones arrived.
It also serves ``/slack/api/chat.postMessage`` as a fake Slack Web API that checks the bot
token and records the posts.
"""

from __future__ import annotations

import asyncio
import json
import threading
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from tests.servers.daemon import free_port


@dataclass
class Received:
    path: str
    webhook_id: str
    verified: bool
    payload: Any
    headers: dict[str, str]
    answered: int


@dataclass
class Receiver:
    secret: str
    bot_token: str = "xoxb-test-token"
    port: int = field(default_factory=free_port)
    mode: str = "ok"
    retry_after: int = 1
    received: list[Received] = field(default_factory=list)
    slack_posts: list[dict[str, Any]] = field(default_factory=list)
    hanging: int = 0  # requests held by ``hang`` right now

    def __post_init__(self) -> None:
        self._cond = threading.Condition()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._site: web.TCPSite | None = None
        self._release = threading.Event()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    @property
    def slack_api(self) -> str:
        return f"http://127.0.0.1:{self.port}/slack/api/"

    def answer(self, mode: str) -> None:
        """What the next requests get; ``down`` closes the listening socket."""
        previous, self.mode = self.mode, mode
        if previous == "hang":
            self._release.set()
        if mode == "hang":
            self._release.clear()
        if mode == "down" and previous != "down":
            self._call(self._stop_site())
        elif previous == "down" and mode != "down":
            self._call(self._start_site())

    def verified(self) -> list[Received]:
        with self._cond:
            return [r for r in self.received if r.verified and r.answered == 200]

    def wait_for(self, count: int, timeout: float = 30.0) -> list[Received]:
        with self._cond:
            ok = self._cond.wait_for(lambda: len(self.verified_locked()) >= count, timeout)
            assert ok, f"{len(self.verified_locked())} of {count} deliveries after {timeout}s"
            return self.verified_locked()

    def wait_for_requests(self, count: int, timeout: float = 30.0) -> list[Received]:
        with self._cond:
            ok = self._cond.wait_for(lambda: len(self.received) >= count, timeout)
            assert ok, f"{len(self.received)} of {count} requests after {timeout}s"
            return list(self.received)

    def wait_for_slack(self, count: int, timeout: float = 30.0) -> list[dict[str, Any]]:
        with self._cond:
            ok = self._cond.wait_for(lambda: len(self.slack_posts) >= count, timeout)
            assert ok, f"{len(self.slack_posts)} of {count} Slack posts after {timeout}s"
            return list(self.slack_posts)

    def verified_locked(self) -> list[Received]:
        return [r for r in self.received if r.verified and r.answered == 200]

    # -- the server ------------------------------------------------------------------------------

    async def _hook(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        headers = dict(request.headers)
        try:
            payload = Webhook(self.secret).verify(body, headers)
            verified = True
        except WebhookVerificationError:
            payload, verified = json.loads(body or b"null"), False
        mode = self.mode
        status = {"ok": 200, "500": 500, "429": 429, "redirect": 302, "400": 400}.get(mode, 200)
        if mode == "hang":
            self.hanging += 1
            try:
                await asyncio.to_thread(self._release.wait, 60)
            finally:
                self.hanging -= 1
            status = 200
        with self._cond:
            self.received.append(
                Received(
                    request.path, headers.get("webhook-id", ""), verified, payload, headers, status
                )
            )
            self._cond.notify_all()
        if status == 429:
            return web.Response(
                status=429, text="slow down", headers={"Retry-After": str(self.retry_after)}
            )
        if status == 302:
            return web.Response(status=302, headers={"Location": "http://169.254.169.254/latest/"})
        return web.Response(status=status, text="ok" if status == 200 else "receiver error")

    async def _slack(self, request: web.Request) -> web.StreamResponse:
        if request.headers.get("Authorization") != f"Bearer {self.bot_token}":
            return web.json_response({"ok": False, "error": "invalid_auth"})
        form = await request.post() if request.content_type != "application/json" else None
        data = dict(form) if form is not None else await request.json()
        with self._cond:
            self.slack_posts.append(data)
            self._cond.notify_all()
        return web.json_response(
            {"ok": True, "channel": data.get("channel"), "ts": "1700000000.000200"}
        )

    def _serve(self, ready: threading.Event) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        application = web.Application()
        application.router.add_post("/hook", self._hook)
        application.router.add_post("/slack/api/chat.postMessage", self._slack)
        self._runner = web.AppRunner(application, access_log=None, shutdown_timeout=0.5)
        loop.run_until_complete(self._runner.setup())
        loop.run_until_complete(self._start_site())
        ready.set()
        loop.run_forever()
        loop.run_until_complete(self._runner.cleanup())
        loop.close()

    async def _start_site(self) -> None:
        assert self._runner is not None
        self._site = web.TCPSite(self._runner, "127.0.0.1", self.port)
        await self._site.start()

    async def _stop_site(self) -> None:
        if self._site is not None:
            await self._site.stop()
            self._site = None

    def _call(self, coro: Any) -> None:
        assert self._loop is not None
        asyncio.run_coroutine_threadsafe(coro, self._loop).result(10)

    def start(self) -> Receiver:
        ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, args=(ready,), daemon=True)
        self._thread.start()
        assert ready.wait(10), "the receiver did not start"
        return self

    def stop(self) -> None:
        self._release.set()
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(10)
