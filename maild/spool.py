"""The inbound spool: raw messages made durable before they are acknowledged.

Every intake (SMTP, IMAP, pipe) ends here. The worker claims rows in arrival order with a lease; a
row is marked done in the same transaction that stores its result, so a crash at any point leaves it
pending and it is processed again, once. A row that keeps failing is quarantined with its error and
waits for ``ticketd spool retry``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Sequence

from peewee import Database, DatabaseError, InterfaceError, OperationalError

from maild.errors import NotFoundError, SpoolError
from maild.store import claims
from maild.store.db import write_tx
from maild.store.models import SpoolEntry

# The longest envelope sender the spool keeps (PostgreSQL enforces the column's length).
MAX_SENDER_CHARS: int = SpoolEntry.mail_from.max_length

PENDING, DONE, QUARANTINED = "pending", "done", "quarantined"


def add(
    raw: bytes,
    *,
    source: str,
    mail_from: str = "",
    rcpt_tos: Sequence[str] = (),
    source_ref: str | None = None,
    now: dt.datetime | None = None,
) -> int:
    """Insert a spool row inside the caller's transaction; return its id."""
    fields: dict[str, object] = {
        "source": source,
        "source_ref": source_ref,
        "mail_from": mail_from or "",
        "rcpt_tos": json.dumps(list(rcpt_tos)),
        "raw": raw,
        "size": len(raw),
        "sha256": hashlib.sha256(raw).hexdigest(),
    }
    if now is not None:
        fields["received_at"] = now
    return SpoolEntry.insert(**fields).execute()


def enqueue(db: Database, raw: bytes, **kwargs) -> int:
    """Insert and commit a spool row. Raises :class:`SpoolError` when it cannot be made durable."""
    try:
        with write_tx(db):
            return add(raw, **kwargs)
    except (OperationalError, InterfaceError, DatabaseError, OSError) as exc:
        raise SpoolError(f"cannot write the spool: {exc}") from exc


def claim(
    db: Database, *, worker: str, now: dt.datetime, lease_seconds: float, ids: Sequence[int] = ()
) -> SpoolEntry | None:
    """Claim the oldest due pending row (or the oldest of ``ids``); None when there is none."""
    until = now + dt.timedelta(seconds=lease_seconds)
    found = claims.claim_next(
        db, SpoolEntry, _due(now, ids), (SpoolEntry.id,), worker=worker, until=until
    )
    return SpoolEntry.get_by_id(found) if found is not None else None


def claim_batch(
    db: Database,
    *,
    worker: str,
    now: dt.datetime,
    lease_seconds: float,
    limit: int,
    ids: Sequence[int] = (),
) -> list[SpoolEntry]:
    """Claim up to ``limit`` of the oldest due pending rows (only of ``ids`` if given) in one
    transaction; oldest first."""
    until = now + dt.timedelta(seconds=lease_seconds)
    found = claims.claim_batch(
        db, SpoolEntry, _due(now, ids), (SpoolEntry.id,), worker=worker, until=until, limit=limit
    )
    if not found:
        return []
    rows = {row.id: row for row in SpoolEntry.select().where(SpoolEntry.id.in_(found))}
    return [rows[i] for i in found if i in rows]


def _due(now: dt.datetime, ids: Sequence[int]):
    due = (
        (SpoolEntry.status == PENDING)
        & ((SpoolEntry.not_before.is_null()) | (SpoolEntry.not_before <= now))
        & ((SpoolEntry.claimed_until.is_null()) | (SpoolEntry.claimed_until < now))
    )
    if ids:
        due &= SpoolEntry.id.in_(list(ids))
    return due


def finish(entry_id: int, *, worker: str, result: str, now: dt.datetime, keep_raw: bool) -> bool:
    """Mark a claimed row done inside the caller's transaction. False if another worker did."""
    fields: dict = {
        "status": DONE,
        "done_at": now,
        "result": result[:2000],
        "last_error": None,
        "claimed_until": None,
    }
    if not keep_raw:
        fields["raw"] = b""  # the message row keeps the bytes now
    return bool(
        SpoolEntry.update(**fields)
        .where(
            (SpoolEntry.id == entry_id)
            & (SpoolEntry.status == PENDING)
            & (SpoolEntry.claimed_by == worker)
        )
        .execute()
    )


def fail(
    db: Database,
    entry: SpoolEntry,
    error: str,
    *,
    now: dt.datetime,
    max_attempts: int,
    retry_seconds: float,
) -> str:
    """Record a failed attempt: retry later, or quarantine after ``max_attempts``. Returns status."""
    status = QUARANTINED if entry.attempts >= max_attempts else PENDING
    delay = retry_seconds * (2 ** max(entry.attempts - 1, 0))
    with write_tx(db):
        SpoolEntry.update(
            status=status,
            last_error=error[:4000],
            claimed_by=None,
            claimed_until=None,
            not_before=now + dt.timedelta(seconds=delay),
        ).where((SpoolEntry.id == entry.id) & (SpoolEntry.status == PENDING)).execute()
    return status


def quarantine_now(db: Database, entry: SpoolEntry, error: str) -> None:
    """Quarantine a row at once: an error that no retry can mend (e.g. unparseable bytes)."""
    with write_tx(db):
        SpoolEntry.update(
            status=QUARANTINED, last_error=error[:4000], claimed_by=None, claimed_until=None
        ).where(SpoolEntry.id == entry.id).execute()


def release_dead_claims(db: Database) -> int:
    """Release claims held by processes of this host that no longer run (after kill -9)."""
    return claims.release_dead_claims(db, SpoolEntry, PENDING)


def retry(db: Database, entry_id: int) -> SpoolEntry:
    """Put a quarantined (or pending) row back in line for the worker."""
    with write_tx(db):
        entry = SpoolEntry.get_or_none(SpoolEntry.id == entry_id)
        if entry is None:
            raise NotFoundError(f"spool entry {entry_id} does not exist")
        if entry.status == DONE:
            raise NotFoundError(f"spool entry {entry_id} is already done ({entry.result})")
        SpoolEntry.update(
            status=PENDING, attempts=0, not_before=None, claimed_by=None, claimed_until=None
        ).where(SpoolEntry.id == entry_id).execute()
    return SpoolEntry.get_by_id(entry_id)


def pending_count() -> int:
    return SpoolEntry.select().where(SpoolEntry.status == PENDING).count()
