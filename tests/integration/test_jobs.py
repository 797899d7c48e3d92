"""The daemon's job runner: failures are contained, and cluster-once jobs run on one instance."""

from __future__ import annotations

import logging
import threading

import pytest

from maild.app import App
from maild.jobs.runner import Jobs, advisory_lock


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
