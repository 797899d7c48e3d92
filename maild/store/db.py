"""Opening the database named by ``database.url`` and running write transactions safely.

SQLite runs in WAL mode with ``synchronous=FULL``: a commit has reached the disk before we answer
250, so an acknowledged message survives a power cut, not only a crash. Write transactions on SQLite
take the write lock up front (``BEGIN IMMEDIATE``) so a read-then-write never fails half-way with
"database is locked". PostgreSQL is used as is; rows are claimed with conditional updates that are
safe with several instances. A PostgreSQL connection that the server or the network closed (a
restart, ``idle_session_timeout``) is replaced when its thread next uses the database outside a
transaction: the statement that found it dead has failed (and its pass is retried by the caller),
the next one runs on a new connection. Nothing is retried silently.
"""

from __future__ import annotations

import contextlib
import logging
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from peewee import (
    Database,
    OperationalError,
    PostgresqlDatabase,
    Psycopg3Adapter,
    SqliteDatabase,
)

from maild.errors import ConfigError
from maild.store.models import database_proxy

log = logging.getLogger("ticketd.db")

SQLITE_PRAGMAS = {
    "journal_mode": "wal",
    "busy_timeout": 5000,
    "foreign_keys": 1,
    "synchronous": "full",
}


class _Psycopg3Adapter(Psycopg3Adapter):
    """peewee's psycopg 3 adapter, with psycopg imported when a PostgreSQL database is built.

    ``maild/__init__.py`` keeps peewee from importing psycopg at its own import (a third of a
    second that a CLI command on SQLite never needs), so the driver's names come from here.
    """

    def __init__(self) -> None:
        import psycopg
        from psycopg.pq import TransactionStatus
        from psycopg.types.json import Json, Jsonb

        super().__init__()
        self.psycopg = psycopg
        self.json_type, self.jsonb_type = Json, Jsonb
        self.txn_idle = TransactionStatus.IDLE
        self.txn_inerror = TransactionStatus.INERROR
        self.txn_unknown = TransactionStatus.UNKNOWN
        self.txn_intrans = TransactionStatus.INTRANS

    def check_driver(self) -> None:
        pass  # imported in __init__, or that raised ImportError already

    def get_binary_type(self) -> Any:
        return self.psycopg.Binary

    def connect(self, db: Any, **params: Any) -> Any:
        if db._encoding:
            params.setdefault("client_encoding", db._encoding)
        if db.database.startswith("postgresql://"):
            params.setdefault("conninfo", db.database)
        else:
            params.setdefault("dbname", db.database)
        return self.psycopg.connect(**params)

    def server_side_cursor(self, conn: Any) -> Any:
        in_txn = self.txn_status(conn) == self.txn_intrans
        return conn.cursor(name=str(uuid.uuid1()), withhold=not in_txn)


class _PostgresqlDatabase(PostgresqlDatabase):
    """PostgreSQL whose per-thread connection is opened again after the server closed it."""

    # Both, because peewee picks psycopg2's when it found no psycopg at import.
    psycopg2_adapter = psycopg3_adapter = _Psycopg3Adapter

    def cursor(self, named_cursor=None):
        conn = self._state.conn
        if (
            conn is not None
            and not self._state.closed
            and getattr(conn, "closed", False)
            and not self.in_transaction()
        ):
            log.warning("database connection lost; opening a new one")
            self.close()  # forgets the dead connection; the call below connects again
        return super().cursor(named_cursor)


def make_database(
    url: str, *, base_dir: Path | None = None, busy_timeout_ms: int = 5000
) -> Database:
    """Build (not connect) the peewee database for ``url``: ``sqlite:///path`` or ``postgresql://``."""
    parsed = urlparse(url)
    if parsed.scheme == "sqlite":
        raw_path = url[len("sqlite:///") :] if url.startswith("sqlite:///") else parsed.path
        if raw_path in ("", ":memory:"):
            raise ConfigError(
                f"database.url {url!r}: give a file path, e.g. sqlite:///var/ticketd.db"
            )
        path = Path(raw_path)
        if not path.is_absolute() and base_dir is not None:
            path = base_dir / path
        pragmas = dict(SQLITE_PRAGMAS, busy_timeout=busy_timeout_ms)
        return SqliteDatabase(str(path), pragmas=pragmas, timeout=busy_timeout_ms / 1000)
    if parsed.scheme in ("postgresql", "postgres"):
        return _PostgresqlDatabase(
            parsed.path.lstrip("/") or "postgres",
            host=parsed.hostname or "127.0.0.1",
            port=parsed.port or 5432,
            user=parsed.username or None,
            password=parsed.password or None,
            autorollback=True,
        )
    raise ConfigError(f"database.url {url!r}: the scheme must be sqlite:/// or postgresql://")


def bind(db: Database) -> None:
    """Point every model at ``db``."""
    database_proxy.initialize(db)


def is_sqlite(db: Database) -> bool:
    return isinstance(db, SqliteDatabase)


def is_locked(exc: BaseException) -> bool:
    """True for SQLite's "database is locked" (another process held the write lock for longer
    than ``busy_timeout``): a passing condition, worth a retry, not a traceback."""
    return isinstance(exc, OperationalError) and "is locked" in str(exc).lower()


def write_tx(db: Database) -> contextlib.AbstractContextManager[Any]:
    """A write transaction (a savepoint inside one); on SQLite it takes the write lock at BEGIN.

    On SQLite the write lock is asked for in steps of about 2 ms for as long as the connection's
    busy timeout (``database.busy_timeout_ms``): SQLite's own busy handler sleeps ever longer (up
    to 100 ms) and misses the short gaps between the commits of a busy writer in another process
    (the worker, intake), so a CLI command or the web could wait out the whole timeout. Raises the
    "database is locked" OperationalError after that."""
    if not is_sqlite(db):
        return db.atomic()
    if db.in_transaction():
        return db.atomic(lock_type="IMMEDIATE")
    return _sqlite_write_tx(db)


LOCK_STEP_MS = 2  # write_tx on SQLite: the busy wait of one attempt at the write lock


@contextlib.contextmanager
def _sqlite_write_tx(db: Database) -> Iterator[None]:
    db.connect(reuse_if_open=True)
    restore = db.execute_sql("PRAGMA busy_timeout").fetchone()[0]
    deadline = time.monotonic() + int(restore) / 1000
    db.execute_sql(f"PRAGMA busy_timeout = {LOCK_STEP_MS}")
    try:
        while True:
            tx = db.atomic(lock_type="IMMEDIATE")
            try:
                tx.__enter__()
                break
            except OperationalError as exc:
                if not is_locked(exc) or time.monotonic() >= deadline:
                    raise
                time.sleep(0.0005)
    finally:
        db.execute_sql(f"PRAGMA busy_timeout = {int(restore)}")
    try:
        yield
    except BaseException as exc:
        tx.__exit__(type(exc), exc, exc.__traceback__)
        raise
    tx.__exit__(None, None, None)


@contextlib.contextmanager
def connection(db: Database) -> Iterator[Database]:
    """A connection for the current thread, reused if one is already open."""
    if db.is_closed():
        db.connect()
        try:
            yield db
        finally:
            db.close()
    else:
        yield db
