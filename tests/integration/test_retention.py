"""Retention: processed spool rows and sent outbox rows go after their time; nothing else does."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from maild import spool
from maild.app import App
from maild.jobs.retention import purge, schedule_retention
from maild.jobs.runner import Jobs
from maild.outbox.sender import Sender
from maild.store.models import Message, OutboxEntry, SpoolEntry, Ticket
from maild.worker import make_worker
from tests.mailgen import make_mail

DAY = dt.timedelta(days=1)


def test_purge_keeps_what_a_person_or_a_retry_still_needs(app: App) -> None:
    ids = [spool.enqueue(app.db, make_mail(subject=f"q{i}"), source="pipe") for i in range(3)]
    make_worker(app).run_once()
    Sender(app).run_once()
    pending = spool.enqueue(app.db, make_mail(subject="later"), source="pipe")
    bad = spool.enqueue(app.db, b"\x00 not mail", source="pipe")
    make_worker(app).run_once(ids=[bad])
    failed = OutboxEntry.create(
        kind="auto", mail_from="support@example.com", rcpt_tos="[]", raw=b"x", status="failed"
    )
    now = app.clock.now()
    assert purge(app, now + 29 * DAY) == {"spool": 0, "outbox": 0}  # too young
    assert purge(app, now + 91 * DAY, batch=2) == {"spool": 3, "outbox": 3}  # in batches of 2
    left = {e.id: e.status for e in SpoolEntry.select()}
    assert left == {pending: "pending", bad: "quarantined"}
    assert [o.id for o in OutboxEntry.select()] == [failed.id]
    # The tickets and their messages, raw bytes included, are untouched.
    assert Ticket.select().count() == 3
    assert all(m.raw for m in Message.select())
    assert {r for r in ids} & set(left) == set()


def test_zero_keeps_everything(app_factory: Callable[..., App]) -> None:
    app = app_factory(retention={"spool_days": 0, "outbox_days": 0})
    spool.enqueue(app.db, make_mail(), source="pipe")
    make_worker(app).run_once()
    Sender(app).run_once()
    assert purge(app, app.clock.now() + 10000 * DAY) == {"spool": 0, "outbox": 0}


def test_scheduled_hourly_on_the_job_runner(app: App) -> None:
    jobs = Jobs(app)
    job = schedule_retention(app, jobs)
    assert (job.interval, job.unit) == (3600, "seconds")
    jobs.scheduler.run_all()  # runs (under the advisory lock on PostgreSQL) without error
