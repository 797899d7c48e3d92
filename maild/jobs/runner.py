"""Periodic jobs inside ``ticketd run``: a private ``schedule.Scheduler`` in one thread.

Policy:
- Every job is wrapped: an exception is logged with the job's name and the job runs again at its
  next time (``schedule`` would otherwise re-fire it on every loop turn and skip the others).
- A locked database (SQLite's "database is locked" after ``busy_timeout``, while another process
  holds the write lock) is a passing condition, not a bug: the job is tried again twice within a
  couple of seconds, and if it is still locked it logs one warning line, without a traceback, and
  runs at its next time.
- Every run is recorded durably (``maild.jobs.status``: last run, last success, last error,
  failures in a row), so ``ticketd status`` shows a job that keeps failing.
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
from maild.jobs.status import FAILING_AFTER, record_run
from maild.store.db import is_locked, is_sqlite

log = logging.getLogger("ticketd.jobs")
TICK_SECONDS = 1.0
LOCKED_RETRY_SECONDS = (0.5, 1.5)  # waits before the second and third try on a locked database


class Jobs:
    """The daemon's scheduled jobs; register with ``every``, then ``start``."""

    def __init__(self, app: App) -> None:
        self.app = app
        self.scheduler = schedule.Scheduler()
        self.stopping = threading.Event()  # set by start()'s stop: retries stop waiting
        self.locked_retry_seconds = LOCKED_RETRY_SECONDS

    def wrap(
        self, name: str, fn: Callable[[], object], *, cluster_once: bool
    ) -> Callable[[], None]:
        """``fn`` as a job: logged, never raising, and cluster-once when asked."""

        def once() -> bool:
            """Run ``fn``; False when another instance holds the job this turn."""
            if cluster_once and not is_sqlite(self.app.db):
                with advisory_lock(self.app, name) as held:
                    if not held:
                        log.debug("job %s: another instance holds it; skipped", name)
                        return False
                    fn()
            else:
                fn()
            return True

        def job() -> None:
            error: str | None = None
            tries = 1 + len(self.locked_retry_seconds)
            for attempt in range(1, tries + 1):
                try:
                    if not once():
                        return
                    break
                except Exception as exc:
                    if is_locked(exc) and attempt < tries:
                        if self.stopping.wait(self.locked_retry_seconds[attempt - 1]):
                            error = f"database is locked ({attempt} tries; stopping)"
                            break
                        continue
                    if is_locked(exc):
                        error = f"database is locked ({tries} tries)"
                    else:
                        error = f"{type(exc).__name__}: {exc}"
                        log.exception("job %s failed; it runs again at its next time", name)
                    break
            self._record(name, error)

        job.__name__ = name
        return job

    def _record(self, name: str, error: str | None) -> None:
        """Write the run's outcome; a failure to write it is one warning line, never raised."""
        unrecorded = ""
        try:
            failures = record_run(
                self.app.db, name, self.app.clock.now(), error
            ).consecutive_failures
        except Exception as exc:
            failures = 0
            unrecorded = f" (the run could not be recorded: {exc})"
        if error is None or not error.startswith("database is locked"):
            if unrecorded:
                log.warning("job %s ran%s", name, unrecorded)
            return
        again = f"; {failures} failed runs in a row" if failures >= FAILING_AFTER else ""
        log.warning(
            "job %s: %s; it runs again at its next time%s%s", name, error, again, unrecorded
        )

    def every(
        self, seconds: float, name: str, fn: Callable[[], object], *, cluster_once: bool = True
    ) -> schedule.Job:
        """Run ``fn`` every ``seconds`` (at least one: ``schedule`` spins on zero)."""
        if seconds < 1:
            raise ValueError(f"job {name}: the interval must be at least 1 second")
        # schedule builds a timedelta from the interval, so a float works although its
        # annotation says int.
        return self.scheduler.every(typing.cast(int, seconds)).seconds.do(
            self.wrap(name, fn, cluster_once=cluster_once)
        )

    def run_pending(self) -> None:
        self.scheduler.run_pending()

    def start(self, stop: threading.Event) -> list[threading.Thread]:
        """The jobs thread (none when no job is registered)."""
        if not self.scheduler.jobs:
            return []

        def loop() -> None:
            self.app.db.connect(reuse_if_open=True)
            self.stopping = stop
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
