"""The durable record of each periodic job: when it last ran, last succeeded, last failed and why.

The jobs runner writes one ``KeyValue`` row per job (key ``job.<name>``, a JSON value) after every
run, so a job that keeps failing is visible to ``ticketd status`` and the health check, not only in
the log, and the record survives a restart. With several instances on one PostgreSQL the row is the
cluster's: whichever instance ran the job last wrote it.

Read it with :func:`job_statuses` (every job) or :func:`job_status` (one); a job is *failing* when
its last :data:`FAILING_AFTER` runs or more failed in a row.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Any

from peewee import Database

from maild.store.db import connection, write_tx
from maild.store.models import KeyValue

PREFIX = "job."
FAILING_AFTER = 3  # consecutive failed runs after which a job counts as failing
MAX_ERROR_CHARS = 500


@dataclass(frozen=True)
class JobStatus:
    """One job's record; times are aware UTC datetimes, or None when it never happened."""

    name: str
    last_run_at: dt.datetime | None
    last_ok_at: dt.datetime | None
    last_error_at: dt.datetime | None
    last_error: str  # the last failure's one-line reason; kept after later successes
    consecutive_failures: int

    @property
    def failing(self) -> bool:
        return self.consecutive_failures >= FAILING_AFTER

    def as_json(self) -> dict[str, Any]:
        """A plain dict for ``--json`` output: times ISO 8601, plus ``failing``."""

        def iso(value: dt.datetime | None) -> str | None:
            return value.isoformat() if value else None

        return {
            "name": self.name,
            "last_run_at": iso(self.last_run_at),
            "last_ok_at": iso(self.last_ok_at),
            "last_error_at": iso(self.last_error_at),
            "last_error": self.last_error,
            "consecutive_failures": self.consecutive_failures,
            "failing": self.failing,
        }


def _time(value: Any) -> dt.datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def _from_row(name: str, value: str) -> JobStatus:
    try:
        data = json.loads(value)
    except ValueError:
        data = {}
    if not isinstance(data, dict):
        data = {}
    failures = data.get("consecutive_failures")
    return JobStatus(
        name=name,
        last_run_at=_time(data.get("last_run_at")),
        last_ok_at=_time(data.get("last_ok_at")),
        last_error_at=_time(data.get("last_error_at")),
        last_error=str(data.get("last_error") or ""),
        consecutive_failures=failures if isinstance(failures, int) else 0,
    )


def job_statuses(db: Database) -> list[JobStatus]:
    """Every job that has run at least once on this database, by name."""
    with connection(db):
        rows = (
            KeyValue.select()
            .where(KeyValue.key.startswith(PREFIX))
            .order_by(KeyValue.key)
            .execute()
        )
        return [_from_row(row.key[len(PREFIX) :], row.value) for row in rows]


def job_status(db: Database, name: str) -> JobStatus | None:
    """One job's record, or None when it never ran here."""
    with connection(db):
        row = KeyValue.get_or_none(KeyValue.key == PREFIX + name)
    return _from_row(name, row.value) if row else None


def record_run(db: Database, name: str, at: dt.datetime, error: str | None = None) -> JobStatus:
    """Record one run of ``name`` that ended at ``at``: a success, or a failure with ``error``.

    Raises the database's error when the record cannot be written; the runner logs it.
    """
    at = at if at.tzinfo else at.replace(tzinfo=dt.UTC)
    key = PREFIX + name
    with connection(db), write_tx(db):
        row = KeyValue.get_or_none(KeyValue.key == key)
        before = _from_row(name, row.value) if row else None
        failures = (before.consecutive_failures if before else 0) + 1 if error else 0
        status = JobStatus(
            name=name,
            last_run_at=at,
            last_ok_at=at if not error else (before.last_ok_at if before else None),
            last_error_at=at if error else (before.last_error_at if before else None),
            last_error=(
                " ".join(error.split())[:MAX_ERROR_CHARS]
                if error
                else (before.last_error if before else "")
            ),
            consecutive_failures=failures,
        )
        value = json.dumps(
            {k: v for k, v in status.as_json().items() if k not in ("name", "failing")}
        )
        if row is None:  # two instances may both insert first: the later update wins
            KeyValue.insert(key=key, value=value).on_conflict_ignore().execute()
        KeyValue.update(value=value).where(KeyValue.key == key).execute()
    return status
