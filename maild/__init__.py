"""ticketd: a self-hosted, email-first help-desk daemon.

Importing the package imports peewee without letting it import psycopg: peewee looks for its
PostgreSQL drivers when it is imported, and psycopg costs about a third of a second, more than the
rest of a CLI command on SQLite. ``maild.store.db`` imports psycopg itself when a PostgreSQL
database is configured (its adapter below peewee's ``PostgresqlDatabase``).
"""

import sys

__version__ = "0.1.0"


def _import_peewee_without_psycopg() -> None:
    if "peewee" in sys.modules or "psycopg" in sys.modules:
        return  # already decided by whoever imported them first; maild.store.db copes with both
    sys.modules["psycopg"] = None  # type: ignore[assignment]  # "import psycopg" raises ImportError
    try:
        import peewee  # noqa: F401
    finally:
        del sys.modules["psycopg"]


_import_peewee_without_psycopg()
