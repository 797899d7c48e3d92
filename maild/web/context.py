"""What every route module gets: the App, the page renderer, the spool wake-up and a DB helper.

Route modules receive one :class:`WebContext` in ``routes(ctx)``; ``ctx.fields()`` gives the
custom fields declared by the rules in force (read on each request, so a reload shows at once). Blocking work (database,
parsing) goes through :meth:`WebContext.db`, which runs it on the server's thread pool with a
database connection for that thread, so the event loop keeps answering.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from maild.app import App
from maild.store.db import is_sqlite
from maild.web.pages import Pages

if TYPE_CHECKING:
    from maild.routing.schema import FieldDef

T = TypeVar("T")


def no_fields() -> Mapping[str, FieldDef]:
    return {}


@dataclass(frozen=True)
class WebContext:
    app: App
    pages: Pages
    wake: Callable[[], None]  # tell the worker that the spool has a new row
    fields: Callable[[], Mapping[str, FieldDef]] = no_fields  # the custom fields declared now
    # SQLite has one writer: the pool's threads take turns here instead of spinning in SQLite's
    # busy handler against each other (which costs far more than waiting in line).
    write_lock: threading.Lock = field(default_factory=threading.Lock)

    async def db(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run ``fn(*args, **kwargs)`` on the pool with this thread's database connection."""

        def call() -> T:
            self.app.db.connect(reuse_if_open=True)
            return fn(*args, **kwargs)

        return await asyncio.get_running_loop().run_in_executor(None, call)

    async def write(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Like :meth:`db`, for work that writes: one at a time from this server on SQLite."""

        def call() -> T:
            self.app.db.connect(reuse_if_open=True)
            turn = self.write_lock if is_sqlite(self.app.db) else contextlib.nullcontext()
            with turn:
                return fn(*args, **kwargs)

        return await asyncio.get_running_loop().run_in_executor(None, call)
