"""Health of every part, computed from the database: ``ticketd status`` and ``GET /healthz``.

A check is ``{name, ok, detail}``; the whole is healthy when every check is. Everything comes from
stored rows (the spool, the outbox, heartbeats), so any process on any host sees the same answer,
and a daemon that hangs or died shows up as a heartbeat that stopped. The thresholds are the
``health:`` section of the config.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass
from typing import Any

from peewee import fn

from maild.app import App
from maild.jobs.status import job_statuses
from maild.store.models import Heartbeat, OutboxEntry, SpoolEntry


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str


@dataclass(frozen=True)
class Health:
    checks: tuple[Check, ...]

    @property
    def healthy(self) -> bool:
        return all(c.ok for c in self.checks)

    def as_json(self) -> dict[str, Any]:
        return {"healthy": self.healthy, "checks": [asdict(c) for c in self.checks]}


def seconds(delta: dt.timedelta) -> str:
    total = int(delta.total_seconds())
    if total < 120:
        return f"{total} s"
    if total < 7200:
        return f"{total // 60} min"
    return f"{total // 3600} h"


def check_spool(app: App, now: dt.datetime) -> list[Check]:
    limit = app.config.health.spool_max_wait_seconds
    pending = SpoolEntry.select(fn.COUNT(SpoolEntry.id), fn.MIN(SpoolEntry.received_at)).where(
        SpoolEntry.status == "pending"
    )
    count, oldest = pending.scalar(as_tuple=True)
    if not count:
        waiting = Check("spool", True, "no message waiting")
    else:
        age = now - oldest
        waiting = Check(
            "spool",
            age.total_seconds() <= limit,
            f"{count} waiting, the oldest for {seconds(age)} (limit {seconds(dt.timedelta(seconds=limit))})",
        )
    quarantined = SpoolEntry.select().where(SpoolEntry.status == "quarantined").count()
    most = app.config.health.max_quarantined
    return [
        waiting,
        Check(
            "quarantine",
            quarantined <= most,
            f"{quarantined} quarantined (ticketd spool list; allowed {most})",
        ),
    ]


def check_outbox(app: App, now: dt.datetime) -> list[Check]:
    cfg = app.config.health
    count, oldest = (
        OutboxEntry.select(fn.COUNT(OutboxEntry.id), fn.MIN(OutboxEntry.created_at))
        .where(OutboxEntry.status == "queued")
        .scalar(as_tuple=True)
    )
    if not count:
        queued = Check("outbox", True, "nothing queued")
    else:
        age = now - oldest
        queued = Check(
            "outbox",
            age.total_seconds() <= cfg.outbox_max_wait_seconds,
            f"{count} queued, the oldest for {seconds(age)}",
        )
    since = now - dt.timedelta(hours=cfg.failed_window_hours)
    failed = (
        OutboxEntry.select()
        .where((OutboxEntry.status == "failed") & (OutboxEntry.created_at >= since))
        .count()
    )
    return [
        queued,
        Check(
            "outbox_failed",
            failed == 0,
            f"{failed} failed in the last {cfg.failed_window_hours:g} h (ticketd outbox list)",
        ),
    ]


def check_imap(app: App, now: dt.datetime) -> list[Check]:
    limit = app.config.health.imap_max_silence_seconds
    rows = {r.name: r for r in Heartbeat.select().where(Heartbeat.kind == "imap")}
    checks = []
    for mailbox in app.config.imap.mailboxes:
        name = str(mailbox.get("name", "")) if isinstance(mailbox, dict) else str(mailbox)
        row = rows.get(f"imap:{name}")
        if row is None or row.ok_at is None:
            detail = "no successful poll yet" + (f" ({row.detail})" if row and row.detail else "")
            checks.append(Check(f"imap:{name}", False, detail))
            continue
        age = now - row.ok_at
        detail = f"last successful poll {seconds(age)} ago"
        if not row.ok:
            detail += f"; last attempt failed: {row.detail}"
        checks.append(
            Check(f"imap:{name}", age.total_seconds() <= max(limit, row.stale_seconds), detail)
        )
    return checks


def check_jobs(app: App, now: dt.datetime) -> list[Check]:
    """Each periodic job's last run, from the jobs' own durable record (maild.jobs.status)."""
    checks = []
    for status in job_statuses(app.db):
        if status.last_run_at is None:
            continue
        age = now - status.last_run_at.astimezone(dt.UTC).replace(tzinfo=None)
        detail = f"last run {seconds(age)} ago"
        if status.consecutive_failures:
            detail += f", {status.consecutive_failures} failed in a row: {status.last_error}"
        checks.append(Check(f"job:{status.name}", not status.failing, detail))
    return checks


def check_workers(now: dt.datetime) -> Check:
    alive: list[str] = []
    gone: list[str] = []
    for row in Heartbeat.select().where(Heartbeat.kind == "worker"):
        age = now - row.at
        (alive if age.total_seconds() <= row.stale_seconds else gone).append(
            f"{row.name[len('worker:') :]} ({seconds(age)} ago)"
        )
    if not alive and not gone:
        return Check("workers", False, "no worker process has reported (is ticketd run running?)")
    detail = f"{len(alive)} alive"
    if gone:
        detail += f"; silent: {', '.join(sorted(gone))}"
    return Check("workers", bool(alive) and not gone, detail)


def health(app: App, now: dt.datetime | None = None) -> Health:
    """Every check at ``now`` (the app's clock by default)."""
    now = now or app.clock.now()
    checks = [
        *check_spool(app, now),
        *check_outbox(app, now),
        *check_imap(app, now),
        *check_jobs(app, now),
        check_workers(now),
    ]
    return Health(tuple(checks))
