"""The application object: one per process, built from config and passed explicitly.

It owns the database handle, the clock, the signing secret and the loaded templates and rules, so
nothing in ticketd reads global state.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

from peewee import Database

from maild.clock import Clock
from maild.config import Config, read_secret
from maild.errors import ConfigError
from maild.store import migrations
from maild.store.db import bind, make_database

log = logging.getLogger("ticketd")


@dataclass
class App:
    config: Config
    db: Database
    secret: bytes
    clock: Clock = field(default_factory=Clock)

    @classmethod
    def open(cls, config: Config, *, clock: Clock | None = None) -> App:
        """Create the data folders, open and upgrade the database, load the signing secret."""
        data_dir = config.instance.data_dir
        try:
            data_dir.mkdir(parents=True, exist_ok=True)
            (data_dir / "attachments").mkdir(exist_ok=True)
        except OSError as exc:
            raise ConfigError(f"instance.data_dir: cannot create {data_dir}: {exc}") from exc
        db = make_database(
            config.database.url,
            base_dir=config.base_dir,
            busy_timeout_ms=config.database.busy_timeout_ms,
        )
        bind(db)
        try:
            db.connect(reuse_if_open=True)
            migrations.upgrade(db)
        except Exception as exc:
            raise ConfigError(f"database.url: cannot open {config.database.url}: {exc}") from exc
        secret = load_secret(config)
        return cls(config=config, db=db, secret=secret, clock=clock or Clock())

    @property
    def data_dir(self) -> Path:
        return self.config.instance.data_dir

    def close(self) -> None:
        if not self.db.is_closed():
            self.db.close()


def load_secret(config: Config) -> bytes:
    """The signing secret: from env or file when configured, else generated once into data_dir."""
    value = read_secret(
        env=config.instance.secret_env, file=config.instance.secret_file, what="instance.secret"
    )
    if value:
        return value.encode()
    path = config.instance.data_dir / "secret"
    try:
        return path.read_bytes().strip()
    except FileNotFoundError:
        pass
    import secrets  # here: only the first start needs it, and every CLI command imports this

    token = secrets.token_hex(32).encode()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, token + b"\n")
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        raise
    os.close(fd)
    return path.read_bytes().strip()
