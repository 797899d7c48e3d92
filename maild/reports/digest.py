"""The weekly digest: the report mailed to ``reports.digest.to``, queued through the outbox.

Policy:
- The job looks every minute and computes from stored state, not from ticks: the latest slot
  (``weekday`` at ``time`` in ``timezone``) at or before now is due when it is newer than the last
  slot sent (``reports.digest.last_slot`` in the key-value table) and less than a day old. A daemon
  that was down at the slot sends the digest when it is back the same day; an older one is skipped.
- Once per slot and once per cluster: the marker is checked and written in the same transaction as
  the outbox row, which on PostgreSQL first takes a transaction-level advisory lock.
- The mail covers ``since`` (7 days) ending when it is built. Its text body is the table rendering;
  its HTML alternative is the HTML page without charts, because mail clients block ``data:``
  images (``ticketd report --format html`` has them). It is automatic mail: Auto-Submitted and our
  loop header, so no auto-responder answers it and intake recognises it.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import secrets
import zlib
from zoneinfo import ZoneInfo

import schedule

from maild.app import App
from maild.config import DigestConfig
from maild.errors import ConfigError
from maild.notify.compose import Outgoing, build_message, header_safe
from maild.pipeline.addresses import loop_token
from maild.pipeline.message import Address
from maild.reports import render_html, render_table
from maild.reports.build import load_business_hours, make_report, report_zone
from maild.reports.model import Report
from maild.reports.period import Period, parse_since
from maild.routing.engine import RuleSet
from maild.routing.reload import RulesHolder
from maild.store.db import connection, is_sqlite, write_tx
from maild.store.models import KeyValue, OutboxEntry

log = logging.getLogger("ticketd.reports")
MARKER = "reports.digest.last_slot"
LOCK_KEY = zlib.crc32(b"ticketd.reports.digest")
CHECK_SECONDS = 60
MAX_LATE = dt.timedelta(days=1)
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def latest_slot(digest: DigestConfig, now: dt.datetime) -> dt.datetime:
    """The most recent ``weekday`` at ``time`` (in ``timezone``) at or before ``now``, naive UTC."""
    zone = ZoneInfo(digest.timezone)
    local = now.replace(tzinfo=dt.UTC).astimezone(zone)
    hour, minute = (int(x) for x in digest.time.split(":"))
    day = local.date() - dt.timedelta(days=(local.weekday() - WEEKDAYS.index(digest.weekday)) % 7)
    for back in (0, 7):
        d = day - dt.timedelta(days=back)
        slot = dt.datetime(d.year, d.month, d.day, hour, minute, tzinfo=zone)
        if slot <= local:
            break
    return slot.astimezone(dt.UTC).replace(tzinfo=None)


def compose(app: App, report: Report, now: dt.datetime) -> bytes:
    """The digest message: the table as text, the HTML page without charts as the alternative."""
    config = app.config
    support = config.support_addresses[0]
    first, last = report.days[0].date, report.days[-1].date
    subject = f"{config.instance.name}: support report {first} to {last}"
    return build_message(
        Outgoing(
            from_addr=Address(support, config.instance.name),
            to=tuple(Address(a.lower()) for a in config.reports.digest.to),
            cc=(),
            reply_to=None,
            subject=header_safe(subject),
            thread_topic="",
            date=now,
            message_id=f"digest.{secrets.token_hex(8)}@{support.partition('@')[2]}",
            in_reply_to=None,
            references=(),
            loop_token=loop_token(app.secret),
            auto_submitted="auto-generated",
            text=render_table.render(report),
            html=render_html.render(report, charts=False),
        )
    )


def queue_digest(
    app: App,
    now: dt.datetime,
    *,
    rules: RuleSet | None = None,
    slot: dt.datetime | None = None,
) -> OutboxEntry | None:
    """Build the digest for the ``since`` window ending ``now`` and queue it in the outbox.

    With ``slot``, at most once per slot across every instance: None when that slot (or a later
    one) was already queued. Business hours come from ``rules``, else from the rules folder.
    """
    digest = app.config.reports.digest
    if not digest.to:
        raise ConfigError("reports.digest.to: no recipients for the digest")
    bh = rules.business_hours if rules is not None else load_business_hours(app)
    period = Period(now - parse_since(digest.since), now, report_zone(bh))
    raw = compose(app, make_report(app, period, business_hours=bh, now=now), now)
    with write_tx(app.db):
        if not is_sqlite(app.db):
            app.db.execute_sql("SELECT pg_advisory_xact_lock(%s)", (LOCK_KEY,))
        if slot is not None:
            marker = KeyValue.get_or_none(KeyValue.key == MARKER)
            if marker is not None and marker.value >= slot.isoformat():
                return None
            if marker is None:
                KeyValue.create(key=MARKER, value=slot.isoformat())
            else:
                marker.value = slot.isoformat()
                marker.save()
        entry = OutboxEntry.create(
            kind="digest",
            mail_from=app.config.support_addresses[0],
            rcpt_tos=json.dumps([a.lower() for a in digest.to]),
            raw=raw,
            created_at=now,
            next_attempt_at=now,
        )
    log.info("digest queued as outbox #%s for %s", entry.id, ", ".join(digest.to))
    return entry


def digest_tick(app: App, now: dt.datetime, *, rules: RuleSet | None = None) -> OutboxEntry | None:
    """One look: queue the digest if its slot is due and not yet sent; else None."""
    digest = app.config.reports.digest
    if not digest.enabled:
        return None
    slot = latest_slot(digest, now)
    if now - slot >= MAX_LATE:
        return None
    marker = KeyValue.get_or_none(KeyValue.key == MARKER)
    if marker is not None and marker.value >= slot.isoformat():
        return None  # the common case, decided without building a report
    return queue_digest(app, now, rules=rules, slot=slot)


def schedule_digest(
    app: App, scheduler: schedule.Scheduler, *, rules: RulesHolder | None = None
) -> schedule.Job | None:
    """Register the digest on ``scheduler`` (a look every minute); None when it is disabled.

    Pass the daemon's ``rules`` holder to use the rules in force; without it the rules folder is
    read when a digest is built. The job never raises: a failure is logged and the next look
    tries again (the marker is written only with the outbox row).
    """
    if not app.config.reports.digest.enabled:
        return None

    def job() -> None:
        try:
            with connection(app.db):
                digest_tick(app, app.clock.now(), rules=rules.rules if rules is not None else None)
        except Exception:
            log.exception("digest: building or queueing failed; trying again in a minute")

    job.__name__ = "reports.digest"
    return scheduler.every(CHECK_SECONDS).seconds.do(job)
