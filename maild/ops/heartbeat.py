"""Heartbeats: each part of a running daemon records its last sign of life in the database.

Health (:mod:`maild.ops.health`) reads them, from any process on any host: ``ticketd status``
needs no connection to the daemon. A worker beats at most every :data:`WORKER_BEAT_SECONDS`
(one small upsert), an IMAP poller after every sync; each says how long it may stay silent
(``stale_seconds``) before health counts it as gone. (Periodic jobs keep their own record,
:mod:`maild.jobs.status`.)
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import socket

from peewee import Database

from maild.store.db import write_tx
from maild.store.models import Heartbeat

log = logging.getLogger("ticketd.ops")

WORKER_BEAT_SECONDS = 10.0
WORKER_STALE_SECONDS = 120


def worker_name(host: str | None = None, pid: int | None = None) -> str:
    return f"worker:{host or socket.gethostname()}:{pid or os.getpid()}"


def beat(
    db: Database,
    name: str,
    *,
    kind: str,
    now: dt.datetime,
    stale_seconds: float,
    ok: bool = True,
    detail: str = "",
) -> None:
    """Record a sign of life of ``name``; never raises (a beat must not stop the part)."""
    fields = {
        Heartbeat.kind: kind,
        Heartbeat.at: now,
        Heartbeat.ok: ok,
        Heartbeat.stale_seconds: int(stale_seconds),
        Heartbeat.detail: detail[:1000],
    }
    if ok:
        fields[Heartbeat.ok_at] = now
    try:
        with write_tx(db):
            updated = Heartbeat.update(fields).where(Heartbeat.name == name).execute()
            if not updated:
                Heartbeat.insert(
                    name=name,
                    kind=kind,
                    at=now,
                    ok=ok,
                    ok_at=now if ok else None,
                    stale_seconds=int(stale_seconds),
                    detail=detail[:1000],
                ).on_conflict_ignore().execute()
    except Exception as exc:
        log.warning("heartbeat %s not recorded: %s", name, exc)


def forget(db: Database, name: str) -> None:
    """Remove a part that stopped cleanly (a stopped worker is not a dead one)."""
    try:
        with write_tx(db):
            Heartbeat.delete().where(Heartbeat.name == name).execute()
    except Exception as exc:
        log.warning("heartbeat %s not removed: %s", name, exc)


def forget_dead_workers(db: Database, host: str | None = None) -> int:
    """Remove the worker rows of this host whose process no longer runs (after kill -9)."""
    host = host or socket.gethostname()
    prefix = f"worker:{host}:"
    gone = []
    for row in Heartbeat.select(Heartbeat.name).where(Heartbeat.name.startswith(prefix)):
        try:
            pid = int(row.name[len(prefix) :])
        except ValueError:
            continue
        if pid != os.getpid() and not _alive(pid):
            gone.append(row.name)
    if gone:
        with write_tx(db):
            Heartbeat.delete().where(Heartbeat.name.in_(gone)).execute()
    return len(gone)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class WorkerBeat:
    """A worker's heartbeat, written at most every :data:`WORKER_BEAT_SECONDS`."""

    def __init__(self, db: Database, name: str | None = None) -> None:
        self.db = db
        self.name = name or worker_name()
        self.last: dt.datetime | None = None

    def tick(self, now: dt.datetime) -> None:
        if self.last is not None and (now - self.last).total_seconds() < WORKER_BEAT_SECONDS:
            return
        self.last = now
        beat(self.db, self.name, kind="worker", now=now, stale_seconds=WORKER_STALE_SECONDS)
