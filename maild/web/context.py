"""What every route module gets: the App, the page renderer, the spool wake-up and a DB helper.

Route modules receive one :class:`WebContext` in ``routes(ctx)``. Blocking work (database,
parsing) goes through :meth:`WebContext.db`, which runs it on the server's thread pool with a
database connection for that thread, so the event loop keeps answering.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from maild.app import App
from maild.web.pages import Pages

T = TypeVar("T")


@dataclass(frozen=True)
class WebContext:
    app: App
    pages: Pages
    wake: Callable[[], None]  # tell the worker that the spool has a new row

    async def db(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run ``fn(*args, **kwargs)`` on the pool with this thread's database connection."""

        def call() -> T:
            self.app.db.connect(reuse_if_open=True)
            return fn(*args, **kwargs)

        return await asyncio.get_running_loop().run_in_executor(None, call)
