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
    """Whether process ``pid`` runs; a zombie (killed, not yet reaped) does not."""
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True  # no /proc (not Linux): kill(pid, 0) is all we know


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


def claim_batch(
    db: Database,
    model: Any,
    due: Expression,
    order_by: tuple[Any, ...],
    *,
    worker: str,
    until: dt.datetime,
    limit: int,
) -> list[int]:
    """Lease up to ``limit`` ``due`` rows of ``model`` to ``worker`` in ONE transaction; their ids
    in ``order_by`` order.

    As :func:`claim_next`: PostgreSQL skips rows that other claimers have locked, SQLite's write
    transaction serialises claimers, and the update re-checks ``due``.
    """
    with write_tx(db):
        query = model.select(model.id).where(due).order_by(*order_by).limit(limit)
        if not is_sqlite(db):
            query = query.for_update(skip_locked=True)
        wanted = [row.id for row in query]
        if not wanted:
            return []
        count = (
            model.update(claimed_by=worker, claimed_until=until, attempts=model.attempts + 1)
            .where(due & model.id.in_(wanted))
            .execute()
        )
        if count == len(wanted):  # the rows are ours (locked, or SQLite's only writer)
            return wanted
        taken = {
            row.id
            for row in model.select(model.id).where(
                model.id.in_(wanted) & (model.claimed_by == worker) & (model.claimed_until == until)
            )
        }
    return [i for i in wanted if i in taken]
