"""Shared fixtures: an App on a real SQLite file or on the PostgreSQL of this machine.

``app_factory`` builds an App from config overrides in a temp dir. Tests that take the
``any_db_url`` fixture run once on SQLite and once on PostgreSQL (127.0.0.1:5432, database
``test``); PostgreSQL tests get a private database for the session, truncated between tests. When
PostgreSQL is missing they are skipped, except under CI=true, where they fail.
"""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from maild.app import App
from maild.config import config_from_dict
from maild.store.models import ALL_MODELS, database_proxy

# The relay, Dovecot and daemon fixtures (tests/servers/fixtures.py).
pytest_plugins = ["tests.servers.fixtures"]

# A copy of the shared real-world corpus (PROVENANCE.md there names the source projects).
CORPUS = Path(__file__).resolve().parent / "corpus" / "data"
PG_ADMIN_DSN = os.environ.get("TICKETD_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
IN_CI = os.environ.get("CI", "").lower() == "true"


def corpus_dir() -> Path:
    """The corpus (tests/corpus/data, or $TICKETD_CORPUS)."""
    path = Path(os.environ.get("TICKETD_CORPUS", CORPUS))
    if not path.is_dir():
        if IN_CI:
            pytest.fail(f"corpus not found at {path}")
        pytest.skip(f"corpus not found at {path}")
    return path


def missing(reason: str) -> None:
    """Skip a test for a missing component, or fail under CI, where everything must be there."""
    if IN_CI:
        pytest.fail(f"{reason} (CI=true: a missing component is a failure)")
    pytest.skip(reason)


def base_config(tmp: Path, db_url: str, **overrides: Any) -> dict[str, Any]:
    (tmp / "rules").mkdir(parents=True, exist_ok=True)
    data: dict[str, Any] = {
        "instance": {
            "name": "Test Support",
            "ticket_prefix": "ACME",
            "support_addresses": ["support@example.com", "help@example.org"],
            "data_dir": str(tmp / "var"),
        },
        "database": {"url": db_url},
        "smtp_in": {"host": "127.0.0.1", "port": 0},
        "smtp_out": {"transport": "file", "directory": str(tmp / "var" / "sent")},
        "rules_dir": str(tmp / "rules"),
        "templates_dir": str(Path(__file__).resolve().parents[1] / "templates"),
    }
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(data.get(key), dict):
            data[key] = {**data[key], **value}
        else:
            data[key] = value
    return data


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """A private PostgreSQL database for this test session."""
    try:
        import psycopg

        admin = psycopg.connect(PG_ADMIN_DSN, autocommit=True, connect_timeout=3)
    except Exception as exc:
        missing(f"PostgreSQL not reachable at {PG_ADMIN_DSN}: {exc}")
    name = f"ticketd_test_{uuid.uuid4().hex[:10]}"
    admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql://postgres@127.0.0.1:5432/{name}"
    finally:
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,)
        )
        admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
        admin.close()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark what needs a server, so that ``-m postgres`` or ``-m "not dovecot"`` selects it."""
    for item in items:
        names = getattr(item, "fixturenames", ())
        if "pg_url" in names:
            item.add_marker(pytest.mark.postgres)
        if "dovecot" in names:
            item.add_marker(pytest.mark.dovecot)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def any_db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'var' / 'ticketd.db'}"
    url = request.getfixturevalue("pg_url")
    _truncate_pg(url)
    return url


def _truncate_pg(url: str) -> None:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        tables = [
            row[0]
            for row in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        ]
        names = {m._meta.table_name for m in ALL_MODELS} & set(tables)
        names.discard("schema_version")
        if names:
            conn.execute(
                "TRUNCATE "
                + ", ".join(f'"{n}"' for n in sorted(names))
                + " RESTART IDENTITY CASCADE"
            )


@pytest.fixture
def app_factory(tmp_path: Path) -> Iterator[Callable[..., App]]:
    apps: list[App] = []

    def make(db_url: str | None = None, **overrides: Any) -> App:
        url = db_url or f"sqlite:///{tmp_path / 'var' / 'ticketd.db'}"
        (tmp_path / "var").mkdir(exist_ok=True)
        (tmp_path / "rules").mkdir(exist_ok=True)
        config = config_from_dict(base_config(tmp_path, url, **overrides), base_dir=tmp_path)
        app = App.open(config)
        apps.append(app)
        return app

    yield make
    for app in apps:
        app.close()
    database_proxy.initialize(None)


@pytest.fixture
def app(app_factory: Callable[..., App], any_db_url: str) -> App:
    """An App on SQLite and, in a second run, on PostgreSQL."""
    return app_factory(any_db_url)


@pytest.fixture
def sqlite_app(app_factory: Callable[..., App]) -> App:
    return app_factory()


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """A real headless Chromium (selenium) for the whole session; tests set their own viewport
    with ``tests.servers.browser.set_viewport``. Missing Chromium fails under CI."""
    from tests.servers import browser as chromium

    why = chromium.available()
    if why:
        missing(why)
    with chromium.chromium() as driver:
        yield driver


def rendered_context(app: App, template: str = "ack") -> dict[str, Any]:
    """The variables ``notify/compose.py`` really hands the renderer for ``template``: the first
    ticket, answering its first message, queued (and rolled back) through ``queue_mail``."""
    from maild.notify.compose import queue_mail
    from maild.notify.templates import Renderer
    from maild.pipeline.message import Address
    from maild.store.models import Ticket

    seen: list[dict[str, Any]] = []

    class Recording(Renderer):
        def render(self, name: str, context: dict[str, Any]) -> Any:
            seen.append(dict(context))
            return super().render(name, context)

    ticket = Ticket.get()
    requester = ticket.requester
    with app.db.atomic() as tx:
        queue_mail(
            app,
            Recording(app.config.templates_dir),
            ticket,
            template=template,
            to=[Address(requester.email, requester.name)],
            now=app.clock.now(),
            kind="auto",
            automatic=False,
            answering=ticket.messages.get(),
            agent=Address("alice@example.com", "Alice"),
        )
        tx.rollback()
    return seen[-1]


@contextmanager
def counted_statements() -> Iterator[list[str]]:
    """Every SQL statement peewee sends inside the ``with`` block (from its debug log)."""
    counted: list[str] = []

    class Count(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            counted.append(record.getMessage())

    logger = logging.getLogger("peewee")
    handler, level = Count(), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        yield counted
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
