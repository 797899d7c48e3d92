"""Creating and upgrading the schema on start.

Version 1 is the initial schema; each later version is a function that upgrades from the one before,
run in order inside a transaction. Creating tables is idempotent, so a fresh database and an old one
take the same path.
"""

from __future__ import annotations

from collections.abc import Callable

from peewee import Database

from maild.store.db import write_tx
from maild.store.models import ALL_MODELS, SchemaVersion

CURRENT_VERSION = 1

# Upgrades from version N-1 to N, keyed by N. Empty while the schema has one version.
UPGRADES: dict[int, Callable[[Database], None]] = {}


def upgrade(db: Database) -> int:
    """Create missing tables and run pending upgrades; return the schema version now in force."""
    with write_tx(db):
        db.create_tables(ALL_MODELS, safe=True)
        row = SchemaVersion.select().first()
        if row is None:
            SchemaVersion.create(version=CURRENT_VERSION)
            return CURRENT_VERSION
        for version in range(row.version + 1, CURRENT_VERSION + 1):
            UPGRADES[version](db)
            row.version = version
            row.save()
        return row.version
