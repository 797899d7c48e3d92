"""The daemon's job runner: failures are contained, and cluster-once jobs run on one instance."""

from __future__ import annotations

import logging
import sqlite3
import threading

import pytest

from maild.app import App
from maild.jobs.runner import Jobs, advisory_lock
from maild.jobs.status import FAILING_AFTER, job_status, job_statuses
from maild.store.db import connection, write_tx
from maild.store.models import KeyValue


def test_a_failing_job_is_logged_and_the_others_still_run(
    app: App, caplog: pytest.LogCaptureFixture
) -> None:
    jobs = Jobs(app)
    ran: list[str] = []

    def broken() -> None:
        ran.append("broken")
        raise RuntimeError("boom")

    jobs.every(60, "broken", broken)
    jobs.every(60, "fine", lambda: ran.append("fine"))
    with caplog.at_level(logging.ERROR, logger="ticketd.jobs"):
        jobs.scheduler.run_all()
        jobs.scheduler.run_all()
    assert ran == ["broken", "fine", "broken", "fine"]
    assert "job broken failed" in caplog.text
    # The failed job keeps its schedule: it is not due again at once.
    assert jobs.scheduler.idle_seconds is not None and jobs.scheduler.idle_seconds > 50


def test_cluster_once_job_skips_while_another_instance_holds_it(app_factory, pg_url: str) -> None:
    app = app_factory(pg_url)
    jobs = Jobs(app)
    ran: list[int] = []
    jobs.every(60, "sweep", lambda: ran.append(1))
    holding, release = threading.Event(), threading.Event()

    def other_instance() -> None:  # another connection, as another process would have
        app.db.connect(reuse_if_open=True)
        with advisory_lock(app, "sweep") as held:
            assert held
            holding.set()
            release.wait(10)
        app.db.close()

    thread = threading.Thread(target=other_instance)
    thread.start()
    assert holding.wait(10)
    jobs.scheduler.run_all()
    assert ran == []  # skipped: the other instance runs it
    release.set()
    thread.join()
    jobs.scheduler.run_all()
    assert ran == [1]


def test_start_runs_due_jobs_in_a_thread(app: App) -> None:
    jobs = Jobs(app)
    done = threading.Event()
    jobs.every(1, "quick", done.set)
    stop = threading.Event()
    threads = jobs.start(stop)
    assert done.wait(10)
    stop.set()
    for t in threads:
        t.join(10)
    assert Jobs(app).start(stop) == []  # nothing registered: no thread
    with pytest.raises(ValueError, match="at least 1 second"):
        jobs.every(0, "spin", done.set)


def _hold_write_lock(app: App) -> sqlite3.Connection:
    """Another process's writer, as the daemon's worker would be: BEGIN IMMEDIATE and wait."""
    holder = sqlite3.connect(app.db.database, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    return holder


def _write(app: App, key: str) -> None:
    with connection(app.db), write_tx(app.db):
        KeyValue.insert(key=key, value="1").on_conflict_ignore().execute()


def test_a_job_that_meets_a_locked_database_retries_and_succeeds(
    app_factory, caplog: pytest.LogCaptureFixture
) -> None:
    app = app_factory(database={"busy_timeout_ms": 100})
    jobs = Jobs(app)
    jobs.locked_retry_seconds = (0.05, 0.05)
    holder = _hold_write_lock(app)
    tries: list[int] = []

    def sweep() -> None:
        tries.append(1)
        try:
            _write(app, "swept")
        finally:
            if len(tries) == 1:
                holder.execute("ROLLBACK")  # the other writer finishes after our first try

    jobs.every(60, "sla_sweep", sweep)
    with caplog.at_level(logging.DEBUG, logger="ticketd.jobs"):
        jobs.scheduler.run_all()
    holder.close()
    assert len(tries) == 2
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []
    assert KeyValue.get_or_none(KeyValue.key == "swept") is not None
    status = job_status(app.db, "sla_sweep")
    assert status is not None and status.consecutive_failures == 0 and status.last_ok_at


def test_a_job_on_a_database_locked_throughout_logs_one_warning_line_and_no_traceback(
    app_factory, caplog: pytest.LogCaptureFixture
) -> None:
    app = app_factory(database={"busy_timeout_ms": 100})
    jobs = Jobs(app)
    jobs.locked_retry_seconds = (0.05, 0.05)
    holder = _hold_write_lock(app)
    tries: list[int] = []

    def sweep() -> None:
        tries.append(1)
        _write(app, "swept")

    jobs.every(60, "sla_sweep", sweep)
    try:
        with caplog.at_level(logging.DEBUG, logger="ticketd.jobs"):
            jobs.scheduler.run_all()
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert len(tries) == 3
    (line,) = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert line.levelno == logging.WARNING and line.exc_info is None
    assert "job sla_sweep: database is locked (3 tries); it runs again" in line.getMessage()
    assert "Traceback" not in caplog.text
    # Once the lock is gone, the next run works and is recorded.
    jobs.scheduler.run_all()
    status = job_status(app.db, "sla_sweep")
    assert status is not None and status.consecutive_failures == 0


def test_repeated_failures_are_recorded_durably_and_a_success_resets_them(app: App) -> None:
    jobs = Jobs(app)
    fail = [True]

    def sweep() -> None:
        if fail[0]:
            raise RuntimeError("the rules folder is gone")

    jobs.every(60, "sla_sweep", sweep)
    jobs.every(60, "retention", lambda: None)
    for _ in range(FAILING_AFTER):
        jobs.scheduler.run_all()
    statuses = {s.name: s for s in job_statuses(app.db)}
    assert set(statuses) == {"sla_sweep", "retention"}
    broken = statuses["sla_sweep"]
    assert broken.failing and broken.consecutive_failures == FAILING_AFTER
    assert broken.last_error == "RuntimeError: the rules folder is gone"
    assert broken.last_error_at == broken.last_run_at and broken.last_ok_at is None
    assert not statuses["retention"].failing and statuses["retention"].last_ok_at is not None
    assert broken.as_json()["failing"] is True

    fail[0] = False
    jobs.scheduler.run_all()
    healed = job_status(app.db, "sla_sweep")
    assert healed is not None and not healed.failing and healed.consecutive_failures == 0
    assert healed.last_error == "RuntimeError: the rules folder is gone"  # kept for the record
    assert healed.last_ok_at == healed.last_run_at
