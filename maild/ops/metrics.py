"""Prometheus metrics for ``GET /metrics`` (prometheus-client, the text exposition format).

Counts and ages are read from the database at scrape time by :class:`DatabaseCollector`, so every
worker process and every instance on a shared PostgreSQL is counted exactly once, whichever
process answers the scrape. Rows that retention deletes are added to :class:`OpsTally` first,
(:mod:`maild.ops.tally`), so the ``*_total`` counters never go down. Two families are measured in the process instead:
HTTP requests (counted by the process that serves HTTP, which is the only one that sees them) and
the processing time histogram (observed by the worker). The worker runs in the daemon's process;
when workers run as processes of their own, set ``PROMETHEUS_MULTIPROC_DIR`` to an empty folder
for all of them and the histogram is gathered from every process (prometheus-client's
multiprocess mode).
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterator
from typing import Any

from aiohttp import web
from peewee import fn
from prometheus_client import CollectorRegistry, Counter, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from maild.app import App
from maild.ops.instruments import PROCESSING_SECONDS
from maild.ops.tally import tallies
from maild.store.models import Heartbeat, OutboxEntry, SpoolEntry, Ticket

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def _age(now: dt.datetime, oldest: dt.datetime | None) -> float:
    return max((now - oldest).total_seconds(), 0.0) if oldest else 0.0


class DatabaseCollector(Collector):
    """Every count and age that the database knows, read when Prometheus scrapes."""

    def __init__(self, app: App) -> None:
        self.app = app

    def collect(self) -> Iterator[Metric]:
        self.app.db.connect(reuse_if_open=True)
        now = self.app.clock.now()
        yield from self._spool(now)
        yield from self._outbox(now)
        yield from self._imap()
        yield from self._sla(now)
        yield from self._webhooks()

    def _spool(self, now: dt.datetime) -> Iterator[Metric]:
        received = CounterMetricFamily(
            "ticketd_messages_received", "Inbound messages spooled, by source", labels=["source"]
        )
        by_source: dict[str, int] = dict(tallies("spool.deleted."))
        deleted = sum(by_source.values())
        rows = SpoolEntry.select(
            SpoolEntry.source, SpoolEntry.status, fn.COUNT(SpoolEntry.id).alias("n")
        ).group_by(SpoolEntry.source, SpoolEntry.status)
        status: dict[str, int] = {}
        for r in rows:
            by_source[r.source] = by_source.get(r.source, 0) + r.n
            status[r.status] = status.get(r.status, 0) + r.n
        for source, n in sorted(by_source.items()):
            received.add_metric([source], n)
        yield received
        processed = CounterMetricFamily(
            "ticketd_messages_processed", "Inbound messages the worker stored"
        )
        processed.add_metric([], status.get("done", 0) + deleted)
        yield processed
        yield GaugeMetricFamily(
            "ticketd_messages_quarantined",
            "Inbound messages in quarantine now (ticketd spool list)",
            value=status.get("quarantined", 0),
        )
        yield GaugeMetricFamily(
            "ticketd_spool_depth", "Inbound messages waiting", value=status.get("pending", 0)
        )
        oldest = (
            SpoolEntry.select(fn.MIN(SpoolEntry.received_at))
            .where(SpoolEntry.status == "pending")
            .scalar()
        )
        yield GaugeMetricFamily(
            "ticketd_spool_oldest_age_seconds",
            "Age of the oldest waiting inbound message (0 when none)",
            value=_age(now, oldest),
        )

    def _outbox(self, now: dt.datetime) -> Iterator[Metric]:
        rows = OutboxEntry.select(OutboxEntry.status, fn.COUNT(OutboxEntry.id).alias("n")).group_by(
            OutboxEntry.status
        )
        status = {r.status: r.n for r in rows}
        queued = GaugeMetricFamily(
            "ticketd_outbox_messages", "Outgoing mail by status now", labels=["status"]
        )
        for name in ("queued", "failed"):
            queued.add_metric([name], status.get(name, 0))
        yield queued
        sent = CounterMetricFamily("ticketd_outbox_sent", "Outgoing mail delivered")
        sent.add_metric([], status.get("sent", 0) + tallies("outbox.deleted.").get("sent", 0))
        yield sent
        oldest = (
            OutboxEntry.select(fn.MIN(OutboxEntry.created_at))
            .where(OutboxEntry.status == "queued")
            .scalar()
        )
        yield GaugeMetricFamily(
            "ticketd_outbox_oldest_age_seconds",
            "Age of the oldest queued outgoing mail (0 when none)",
            value=_age(now, oldest),
        )

    def _imap(self) -> Iterator[Metric]:
        last = GaugeMetricFamily(
            "ticketd_imap_last_success_timestamp_seconds",
            "Unix time of each mailbox's last successful poll",
            labels=["mailbox"],
        )
        for row in Heartbeat.select().where(
            (Heartbeat.kind == "imap") & Heartbeat.ok_at.is_null(False)
        ):
            stamp = row.ok_at.replace(tzinfo=dt.UTC).timestamp() if row.ok_at else 0.0
            last.add_metric([row.name[len("imap:") :]], stamp)
        yield last

    def _sla(self, now: dt.datetime) -> Iterator[Metric]:
        breaches = GaugeMetricFamily(
            "ticketd_sla_breaches",
            "Tickets whose SLA target was missed (late, or overdue now), by target",
            labels=["target"],
        )
        first = Ticket.select().where(
            Ticket.first_response_due.is_null(False)
            & (
                (Ticket.first_response_at > Ticket.first_response_due)
                | (Ticket.first_response_at.is_null() & (Ticket.first_response_due < now))
            )
        )
        done = Ticket.resolved_at.is_null(False)
        resolution = Ticket.select().where(
            Ticket.resolution_due.is_null(False)
            & (
                (done & (Ticket.resolved_at > Ticket.resolution_due))
                | (
                    ~done
                    & Ticket.status.not_in(("resolved", "closed"))
                    & (Ticket.resolution_due < now)
                )
            )
        )
        breaches.add_metric(["first_response"], first.count())
        breaches.add_metric(["resolution"], resolution.count())
        yield breaches

    def _webhooks(self) -> Iterator[Metric]:
        """Webhook deliveries by status, when the webhooks tables exist (issue 15)."""
        db = self.app.db
        if not db.table_exists("webhook_delivery"):
            return
        family = GaugeMetricFamily(
            "ticketd_webhook_deliveries", "Webhook deliveries by status", labels=["status"]
        )
        cursor = db.execute_sql("SELECT status, COUNT(*) FROM webhook_delivery GROUP BY status")
        for status, n in cursor.fetchall():
            family.add_metric([str(status)], n)
        yield family


HTTP_METRICS = web.AppKey("ticketd_http_metrics", CollectorRegistry)


def install_http_metrics(application: web.Application, app: App) -> None:
    """Give an aiohttp application its registry: the database collector, the request counter
    (by route and status, counted as each answer is prepared) and the processing histogram."""
    registry = CollectorRegistry(auto_describe=True)
    registry.register(DatabaseCollector(app))
    requests = Counter(
        "ticketd_http_requests",
        "HTTP requests answered, by route and status code",
        ["route", "code"],
        registry=registry,
    )
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        MultiProcessCollector(registry)
    else:
        registry.register(PROCESSING_SECONDS)
    application[HTTP_METRICS] = registry

    async def count(request: web.Request, response: web.StreamResponse) -> None:
        route = request.match_info.route
        resource = route.resource
        name = resource.canonical if resource is not None else "unmatched"
        requests.labels(route=name, code=str(response.status)).inc()

    application.on_response_prepare.append(count)


def exposition(request: web.Request) -> bytes:
    """The text for ``GET /metrics`` (blocking: run it on the database pool)."""
    registry: Any = request.app[HTTP_METRICS]
    return generate_latest(registry)
