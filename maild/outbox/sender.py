"""The outbox sender: delivers due rows, retrying 4xx and connection errors with backoff.

Delivery is at-least-once: a row is marked sent only after the relay accepted it, so a crash
between the relay's 250 and our commit sends that message again after the restart (the Message-ID
is the same, so the recipient's client shows it once). Rows are claimed :data:`BATCH` at a time in
one transaction and the sent ones of a batch are recorded in one transaction too (two commits for
many messages instead of two per message; a crash resends at most one batch). A row is claimed with a lease; the claim of
a process that died (kill -9) is released when the daemon starts again, an abandoned one from
another host when its lease expires. A 5xx answer marks the row failed with the answer;
``ticketd outbox retry ID`` queues it again. Recipients the relay deferred with 4xx while it
accepted the others get a new row of their own, so nobody is dropped and nobody gets it twice.
Every time comes from ``app.clock``, so tests move time instead of sleeping.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import threading

from maild.app import App
from maild.errors import NotFoundError
from maild.outbox.transports import (
    Delivered,
    PermanentFailure,
    TemporaryFailure,
    Transport,
    make_transport,
)
from maild.store import claims
from maild.store.db import write_tx
from maild.store.models import OutboxEntry

log = logging.getLogger("ticketd.outbox")
QUEUED, SENT, FAILED = "queued", "sent", "failed"
LEASE_SECONDS = 300
BATCH = 50  # rows claimed, and sent ones recorded, per transaction


def backoff(attempts: int, first: float, cap: float) -> float:
    """Seconds before the next try after ``attempts`` failures: first, 2*first, 4*first ... cap."""
    return min(cap, first * (2 ** min(max(attempts - 1, 0), 60)))


class Sender:
    """Delivers due outbox rows through one transport; ``run_once`` is a single pass."""

    def __init__(self, app: App, transport: Transport | None = None) -> None:
        self.app = app
        self.transport = transport or make_transport(app.config.smtp_out)
        self.id = claims.worker_id("sender")
        self._outage_logged = False

    def claim_batch(self) -> list[OutboxEntry]:
        """Take up to BATCH due rows in one transaction, oldest due first."""
        now = self.app.clock.now()
        due = (
            (OutboxEntry.status == QUEUED)
            & (OutboxEntry.next_attempt_at <= now)
            & (OutboxEntry.claimed_until.is_null() | (OutboxEntry.claimed_until < now))
        )
        found = claims.claim_batch(
            self.app.db,
            OutboxEntry,
            due,
            (OutboxEntry.next_attempt_at, OutboxEntry.id),
            worker=self.id,
            until=now + dt.timedelta(seconds=LEASE_SECONDS),
            limit=BATCH,
        )
        if not found:
            return []
        rows = {row.id: row for row in OutboxEntry.select().where(OutboxEntry.id.in_(found))}
        return [rows[i] for i in found if i in rows]

    def run_once(self, stop: threading.Event | None = None) -> int:
        """Send every due row once; return how many were handled."""
        handled = 0
        try:
            while not (stop is not None and stop.is_set()):
                entries = self.claim_batch()
                if not entries:
                    break
                sent: list[tuple[OutboxEntry, Delivered]] = []
                try:
                    for entry in entries:
                        if stop is not None and stop.is_set():
                            break  # the rest keep their claim until the restart releases it
                        self.deliver(entry, sent)
                        handled += 1
                finally:
                    self._record_sent(sent)
        finally:
            self.transport.close()
        return handled

    def deliver(
        self, entry: OutboxEntry, sent: list[tuple[OutboxEntry, Delivered]] | None = None
    ) -> str:
        """Send one claimed row; returns its new status (sent, queued for a retry, failed).

        With ``sent``, a delivered row is added to it for :meth:`_record_sent` (the caller's
        batch) instead of being recorded at once."""
        name = f"{entry.id:08d}-{(entry.ticket_id or 0)}"
        try:
            result = self.transport.send(
                entry.mail_from, json.loads(entry.rcpt_tos), bytes(entry.raw), name
            )
        except PermanentFailure as exc:
            self._finish(entry, status=FAILED, error=str(exc))
            log.warning("outbox #%s failed permanently: %s", entry.id, exc)
            return FAILED
        except TemporaryFailure as exc:
            return self._defer(entry, str(exc))
        except Exception as exc:  # a bug or an odd row: retry with backoff, never spin
            log.exception("outbox #%s: unexpected error while sending", entry.id)
            self.transport.close()
            return self._defer(entry, f"{type(exc).__name__}: {exc}")
        self._outage_logged = False
        if sent is not None:
            sent.append((entry, result))
        else:
            self._record_sent([(entry, result)])
        return SENT

    def _record_sent(self, sent: list[tuple[OutboxEntry, Delivered]]) -> None:
        """Mark delivered rows sent, all in one transaction (and queue what the relay deferred)."""
        if not sent:
            return
        now = self.app.clock.now()
        with write_tx(self.app.db):
            for entry, result in sent:
                self._record_one(entry, result, now)
        for entry, result in sent:
            log.info(
                "outbox #%s sent to %s: %s",
                entry.id,
                ", ".join(json.loads(entry.rcpt_tos)),
                result.detail,
            )

    def _record_one(self, entry: OutboxEntry, result: Delivered, now: dt.datetime) -> None:
        self._finish(entry, status=SENT, error=None, result=result.detail)
        if result.deferred:
            again = OutboxEntry.create(
                ticket=entry.ticket_id,
                message=entry.message_id,
                kind=entry.kind,
                auto_to=None,  # the rate limit counted the original row
                mail_from=entry.mail_from,
                rcpt_tos=json.dumps(list(result.deferred)),
                raw=entry.raw,
                created_at=now,
                next_attempt_at=now + dt.timedelta(seconds=self._delay(1)),
                last_error=f"deferred by the relay on outbox #{entry.id}: {result.detail}",
            )
            log.warning(
                "outbox #%s: %s deferred, queued again as #%s",
                entry.id,
                ", ".join(result.deferred),
                again.id,
            )

    def _delay(self, attempts: int) -> float:
        cfg = self.app.config.smtp_out.retry
        return backoff(attempts, cfg.first_seconds, cfg.max_seconds)

    def _defer(self, entry: OutboxEntry, error: str) -> str:
        """A temporary failure: try again after the backoff, or give up after max_attempts."""
        max_attempts = self.app.config.smtp_out.retry.max_attempts
        if entry.attempts >= max_attempts:
            self._finish(
                entry, status=FAILED, error=f"gave up after {entry.attempts} attempts: {error}"
            )
            log.warning("outbox #%s failed: gave up after %s attempts", entry.id, entry.attempts)
            return FAILED
        delay = self._delay(entry.attempts)
        with write_tx(self.app.db):
            OutboxEntry.update(
                last_error=error[:2000],
                claimed_by=None,
                claimed_until=None,
                next_attempt_at=self.app.clock.now() + dt.timedelta(seconds=delay),
            ).where(OutboxEntry.id == entry.id).execute()
        if not self._outage_logged:  # once per outage, not once per message
            log.warning("outbox #%s deferred %.0fs: %s", entry.id, delay, error)
            self._outage_logged = True
        return QUEUED

    def _finish(
        self, entry: OutboxEntry, *, status: str, error: str | None, result: str | None = None
    ) -> None:
        now = self.app.clock.now()
        with write_tx(self.app.db):
            OutboxEntry.update(
                status=status,
                last_error=error[:2000] if error else result,
                claimed_by=None,
                claimed_until=None,
                sent_at=now if status == SENT else None,
            ).where(OutboxEntry.id == entry.id).execute()


def retry(app: App, entry_id: int) -> OutboxEntry:
    """Queue a failed (or deferred) row again, due now, with a fresh count of attempts.

    A row that a sender holds right now keeps its claim, so it is not sent twice at once.
    """
    now = app.clock.now()
    with write_tx(app.db):
        entry = OutboxEntry.get_or_none(OutboxEntry.id == entry_id)
        if entry is None:
            raise NotFoundError(f"outbox entry {entry_id} does not exist")
        if entry.status == SENT:
            raise NotFoundError(f"outbox entry {entry_id} was already sent at {entry.sent_at}")
        held = entry.claimed_until is not None and entry.claimed_until > now
        OutboxEntry.update(
            status=QUEUED,
            attempts=0,
            next_attempt_at=now,
            claimed_by=entry.claimed_by if held else None,
            claimed_until=entry.claimed_until if held else None,
        ).where(OutboxEntry.id == entry_id).execute()
    return OutboxEntry.get_by_id(entry_id)


def start_sender_thread(
    app: App, stop: threading.Event, wake: threading.Event | None = None
) -> list[threading.Thread]:
    """The daemon's delivery loop: a pass whenever ``wake`` is set (the worker queued mail) and
    at least every ``smtp_out.poll_seconds`` (retries come due with time, not with events)."""
    wake = wake or threading.Event()

    def loop() -> None:
        app.db.connect(reuse_if_open=True)
        released = claims.release_dead_claims(app.db, OutboxEntry, QUEUED)
        if released:
            log.info("released %d outbox claims left by stopped processes", released)
        sender = Sender(app)
        while not stop.is_set():
            wake.clear()
            try:
                sender.run_once(stop)
            except Exception:
                log.exception("outbox pass failed")
            wake.wait(app.config.smtp_out.poll_seconds)
        app.db.close()

    thread = threading.Thread(target=loop, name="outbox", daemon=True)
    thread.start()
    return [thread]
