"""The HTTP server inside ``ticketd run``: aiohttp on its own thread and event loop.

Route modules are listed once, in :data:`ROUTE_MODULES`; each exposes
``routes(ctx: WebContext) -> list[web.AbstractRouteDef]`` (see :mod:`maild.web`). The server
serves the package's static files (no directory listing), caps request bodies at
``http.max_body_bytes`` (never above ``smtp_in.max_message_bytes``), and runs blocking work on a
small thread pool so the loop only parses, validates and answers.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

from aiohttp import web

from maild.app import App
from maild.errors import ConfigError
from maild.ops.metrics import install_http_metrics
from maild.web.context import WebContext, no_fields
from maild.web.middleware import make_middlewares, parse_networks, security_headers
from maild.web.pages import STATIC_DIR, Pages
from maild.web.ratelimit import check_rates

if TYPE_CHECKING:
    from maild.routing.reload import RulesHolder

log = logging.getLogger("ticketd.web")

# Every module that adds routes, one per line: each has ``routes(ctx) -> list[RouteDef]``.
ROUTE_MODULES: tuple[str, ...] = (
    "maild.web.home",
    "maild.web.form",
    "maild.web.api",
    "maild.web.slack",
    "maild.web.status",
    "maild.web.ops",
    "maild.web.dashboard",
    "maild.web.kb",
)


def max_body_bytes(app: App) -> int:
    return min(app.config.http.max_body_bytes, app.config.smtp_in.max_message_bytes)


def build_application(ctx: WebContext, modules: Sequence[str] = ROUTE_MODULES) -> web.Application:
    """The aiohttp application with every route module's routes, middlewares and static files."""
    http = ctx.app.config.http
    check_rates(http)
    try:
        trusted = parse_networks(http.trusted_proxies)
    except ValueError as exc:
        raise ConfigError(f"http.trusted_proxies: {exc}") from exc
    limit = max_body_bytes(ctx.app)
    application = web.Application(
        client_max_size=limit,
        middlewares=make_middlewares(
            ctx.pages, trusted=trusted, max_body=limit, timeout=http.request_timeout_seconds
        ),
    )
    application.on_response_prepare.append(security_headers)
    install_http_metrics(application, ctx.app)  # GET /metrics: requests by route and code
    for name in modules:
        module = importlib.import_module(name)
        application.add_routes(module.routes(ctx))
    application.router.add_static(
        "/static/", STATIC_DIR, show_index=False, follow_symlinks=False, name="static"
    )
    return application


class WebServer:
    """Starts and stops the HTTP server on a thread of its own."""

    def __init__(
        self,
        app: App,
        *,
        wake: Callable[[], None] = lambda: None,
        modules: Sequence[str] = ROUTE_MODULES,
        rules: RulesHolder | None = None,
    ) -> None:
        self.app = app
        self.modules = tuple(modules)
        fields = (lambda: rules.rules.fields) if rules is not None else no_fields
        self.ctx = WebContext(app=app, pages=Pages(app.config), wake=wake, fields=fields)
        self.loop: asyncio.AbstractEventLoop | None = None
        self.runner: web.AppRunner | None = None
        self.thread: threading.Thread | None = None
        self.port: int = 0  # the bound port, once started (useful with port 0)
        self._ready = threading.Event()
        self._error: BaseException | None = None

    def start(self) -> None:
        """Bind and serve; raises ConfigError when the address cannot be bound."""
        application = build_application(self.ctx, self.modules)
        self.thread = threading.Thread(
            target=self._serve, args=(application,), name="ticketd-http", daemon=True
        )
        self.thread.start()
        self._ready.wait()
        if self._error is not None:
            http = self.app.config.http
            raise ConfigError(
                f"http: cannot listen on {http.host}:{http.port}: {self._error}"
            ) from self._error
        log.info("HTTP listening on %s:%s", self.app.config.http.host, self.port)

    def _serve(self, application: web.Application) -> None:
        loop = asyncio.new_event_loop()
        self.loop = loop
        asyncio.set_event_loop(loop)
        pool = ThreadPoolExecutor(
            max_workers=self.app.config.http.db_threads, thread_name_prefix="ticketd-http-db"
        )
        loop.set_default_executor(pool)
        try:
            loop.run_until_complete(self._bind(application))
        except BaseException as exc:
            self._error = exc
            self._ready.set()
            loop.close()
            return
        self._ready.set()
        try:
            loop.run_forever()
        finally:
            if self.runner is not None:
                loop.run_until_complete(self.runner.cleanup())
            loop.run_until_complete(loop.shutdown_default_executor())
            loop.close()

    async def _bind(self, application: web.Application) -> None:
        http = self.app.config.http
        self.runner = web.AppRunner(
            application,
            access_log=None,
            keepalive_timeout=http.keepalive_seconds,
            shutdown_timeout=5.0,
            handler_cancellation=True,
        )
        await self.runner.setup()
        site = web.TCPSite(self.runner, http.host, http.port, backlog=256)
        await site.start()
        server = site._server
        sockets = getattr(server, "sockets", None) or []
        self.port = sockets[0].getsockname()[1] if sockets else http.port

    def stop(self) -> None:
        if self.loop is None or self.thread is None or not self.thread.is_alive():
            return
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=15)
