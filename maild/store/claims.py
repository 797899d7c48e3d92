"""Leases on spool and outbox rows: who holds a claim, and releasing those of dead processes.

A claim is ``host:pid[:thread]`` plus an expiry time. An expired lease is free for anyone; a claim
held by a process of this host that no longer runs (kill -9) is released at start-up at once, so a
restart does not wait for the lease to expire.
"""

from __future__ import annotations

import datetime as dt
import os
import socket
from typing import Any

from peewee import Database, Expression

from maild.store.db import is_sqlite, write_tx


def worker_id(suffix: str = "") -> str:
    base = f"{socket.gethostname()}:{os.getpid()}"
    return f"{base}:{suffix}" if suffix else base


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def release_dead_claims(db: Database, model, open_status: str) -> int:
    """Clear claims on ``model`` rows in ``open_status`` held by dead processes of this host."""
    host = socket.gethostname()
    released = 0
    with write_tx(db):
        rows = model.select(model.id, model.claimed_by).where(
            (model.status == open_status) & model.claimed_by.startswith(f"{host}:")
        )
        for row in rows:
            pid_text = row.claimed_by.split(":")[1]
            if pid_text.isdigit() and not _alive(int(pid_text)):
                released += (
                    model.update(claimed_by=None, claimed_until=None)
                    .where((model.id == row.id) & (model.claimed_by == row.claimed_by))
                    .execute()
                )
    return released


def claim_next(
    db: Database,
    model: Any,
    due: Expression,
    order_by: tuple[Any, ...],
    *,
    worker: str,
    until: dt.datetime,
    tries: int = 10,
) -> int | None:
    """Lease the first ``due`` row of ``model`` to ``worker`` until ``until``; its id, or None.

    PostgreSQL skips rows another transaction has locked (``FOR UPDATE SKIP LOCKED``); SQLite's
    write transaction already serialises claimers. The update re-checks ``due``, so a row taken in
    between is never claimed twice; then the next one is tried.
    """
    for _ in range(tries):
        with write_tx(db):
            query = model.select(model.id).where(due).order_by(*order_by).limit(1)
            if not is_sqlite(db):
                query = query.for_update(skip_locked=True)
            row = query.first()
            if row is None:
                return None
            taken = (
                model.update(claimed_by=worker, claimed_until=until, attempts=model.attempts + 1)
                .where(due & (model.id == row.id))
                .execute()
            )
            if taken:
                return row.id
    return None
