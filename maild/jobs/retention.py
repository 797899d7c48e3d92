"""Retention: the working tables do not grow for ever.

A spool row has done its job once the worker stored its message (the ticket keeps the raw bytes):
it is deleted ``retention.spool_days`` after it was processed. Quarantined and pending rows are
never deleted: a person must look at them. A sent outbox row (its message stays on the ticket) is
deleted ``retention.outbox_days`` after it was sent; failed rows stay for ``ticketd outbox``.
Deletes run in small batches, each its own short transaction, so intake is never held up.
"""

from __future__ import annotations

import datetime as dt
import logging

import schedule

from maild.app import App
from maild.jobs.runner import Jobs
from maild.ops.tally import tally_deleted
from maild.store.db import connection, write_tx
from maild.store.models import OutboxEntry, SpoolEntry

log = logging.getLogger("ticketd.retention")
BATCH = 500
EVERY_SECONDS = 3600


def purge(app: App, now: dt.datetime, *, batch: int = BATCH) -> dict[str, int]:
    """Delete what retention allows at ``now``; how many rows of each kind went."""
    cfg = app.config.retention
    done: dict[str, int] = {"spool": 0, "outbox": 0}
    if cfg.spool_days:
        cutoff = now - dt.timedelta(days=cfg.spool_days)
        done["spool"] = _delete(
            app, SpoolEntry, (SpoolEntry.status == "done") & (SpoolEntry.done_at < cutoff), batch
        )
    if cfg.outbox_days:
        cutoff = now - dt.timedelta(days=cfg.outbox_days)
        done["outbox"] = _delete(
            app, OutboxEntry, (OutboxEntry.status == "sent") & (OutboxEntry.sent_at < cutoff), batch
        )
    if any(done.values()):
        log.info("retention: deleted %d spool and %d outbox rows", done["spool"], done["outbox"])
    return done


def _delete(app: App, model, where, batch: int) -> int:
    total = 0
    while True:
        with write_tx(app.db):
            ids = [row.id for row in model.select(model.id).where(where).limit(batch)]
            if ids:
                tally_deleted(model, ids)  # the metrics' totals outlive the rows
                model.delete().where(model.id.in_(ids)).execute()
        total += len(ids)
        if len(ids) < batch:
            return total


def schedule_retention(app: App, jobs: Jobs) -> schedule.Job:
    """Purge every hour on the daemon's job runner (one instance per turn on PostgreSQL)."""

    def run() -> None:
        with connection(app.db):
            purge(app, app.clock.now())

    return jobs.every(EVERY_SECONDS, "retention", run, cluster_once=True)
