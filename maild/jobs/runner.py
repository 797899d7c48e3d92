"""Periodic jobs inside ``ticketd run``: a private ``schedule.Scheduler`` in one thread.

Policy:
- Every job is wrapped: an exception is logged with the job's name and the job runs again at its
  next time (``schedule`` would otherwise re-fire it on every loop turn and skip the others).
- Jobs run one after another in the jobs thread, so a job never overlaps itself; a slow job delays
  the next ones instead of piling up. Deadlines come from stored timestamps (due times, resolved_at),
  never from counting ticks, so a missed run is caught up by the next.
- ``cluster_once=True`` jobs (the SLA sweep, the digest) hold a PostgreSQL advisory lock while they
  run: with several instances on one database, one runs the job and the others skip that turn. On
  SQLite one process serves the database, and the lock is not needed.
"""

from __future__ import annotations

import logging
import threading
import typing
import zlib
from collections.abc import Callable

import schedule

from maild.app import App
from maild.ops.heartbeat import beat
from maild.store.db import is_sqlite

log = logging.getLogger("ticketd.jobs")
TICK_SECONDS = 1.0


class Jobs:
    """The daemon's scheduled jobs; register with ``every``, then ``start``."""

    def __init__(self, app: App) -> None:
        self.app = app
        self.scheduler = schedule.Scheduler()

    def wrap(
        self, name: str, fn: Callable[[], object], *, cluster_once: bool, every: float = 60.0
    ) -> Callable[[], None]:
        """``fn`` as a job: logged, never raising, and cluster-once when asked. Each run (or
        failure) is a heartbeat ``job:NAME`` for ``ticketd status``."""
        stale = every * 3 + 60  # a few missed turns before health calls it overdue

        def record(ok: bool, detail: str = "") -> None:
            beat(
                self.app.db,
                f"job:{name}",
                kind="job",
                now=self.app.clock.now(),
                stale_seconds=stale,
                ok=ok,
                detail=detail,
            )

        def job() -> None:
            try:
                if cluster_once and not is_sqlite(self.app.db):
                    with advisory_lock(self.app, name) as held:
                        if not held:
                            log.debug("job %s: another instance holds it; skipped", name)
                            return
                        fn()
                else:
                    fn()
            except Exception as exc:
                log.exception("job %s failed; it runs again at its next time", name)
                record(False, f"{type(exc).__name__}: {exc}")
            else:
                record(True)

        job.__name__ = name
        return job

    def every(
        self, seconds: float, name: str, fn: Callable[[], object], *, cluster_once: bool = True
    ) -> schedule.Job:
        """Run ``fn`` every ``seconds`` (at least one: ``schedule`` spins on zero)."""
        if seconds < 1:
            raise ValueError(f"job {name}: the interval must be at least 1 second")
        # schedule builds a timedelta from the interval, so a float works although its
        # annotation says int.
        return self.scheduler.every(typing.cast(int, seconds)).seconds.do(
            self.wrap(name, fn, cluster_once=cluster_once, every=seconds)
        )

    def run_pending(self) -> None:
        self.scheduler.run_pending()

    def start(self, stop: threading.Event) -> list[threading.Thread]:
        """The jobs thread (none when no job is registered)."""
        if not self.scheduler.jobs:
            return []

        def loop() -> None:
            self.app.db.connect(reuse_if_open=True)
            try:
                while not stop.is_set():
                    self.run_pending()
                    stop.wait(TICK_SECONDS)
            finally:
                self.app.db.close()

        thread = threading.Thread(target=loop, name="jobs", daemon=True)
        thread.start()
        return [thread]


class advisory_lock:
    """``with advisory_lock(app, name) as held:`` a PostgreSQL session lock, never waiting."""

    def __init__(self, app: App, name: str) -> None:
        self.db = app.db
        # A stable 32-bit key per job name (PostgreSQL takes a bigint).
        self.key = zlib.crc32(f"ticketd.job.{name}".encode())
        self.held = False

    def __enter__(self) -> bool:
        row = self.db.execute_sql("SELECT pg_try_advisory_lock(%s)", (self.key,)).fetchone()
        self.held = bool(row and row[0])
        return self.held

    def __exit__(self, *exc: object) -> None:
        if self.held:
            self.db.execute_sql("SELECT pg_advisory_unlock(%s)", (self.key,))
