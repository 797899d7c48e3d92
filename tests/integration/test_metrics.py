"""``GET /metrics``: Prometheus text with counts read from the database at scrape time."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator

import pytest
from prometheus_client.parser import text_string_to_metric_families

from maild import spool
from maild.app import App
from maild.jobs.retention import purge
from maild.ops import heartbeat
from maild.store.db import write_tx
from maild.store.models import OutboxEntry, SpoolEntry, Ticket
from maild.web.server import WebServer
from maild.worker import make_worker
from tests.mailgen import make_mail
from tests.servers.daemon import free_port
from tests.servers.web import request

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


@pytest.fixture
def served(app_factory: Callable[..., App], any_db_url: str) -> Iterator[tuple[App, str]]:
    app = app_factory(any_db_url, http={"enabled": True, "port": free_port()})
    server = WebServer(app)
    server.start()
    try:
        yield app, f"http://127.0.0.1:{server.port}"
    finally:
        server.stop()


def scrape(base: str) -> Samples:
    answer = request(base + "/metrics")
    assert answer.status == 200
    assert answer.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    samples: Samples = {}
    for family in text_string_to_metric_families(answer.text):
        for s in family.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return samples


def test_metrics_count_messages_spool_outbox_and_requests(served: tuple[App, str]) -> None:
    app, base = served
    for n in range(3):
        spool.enqueue(app.db, make_mail(subject=f"Case {n}"), source="smtp")
    spool.enqueue(app.db, make_mail(subject="Piped"), source="pipe")
    bad = spool.enqueue(app.db, b"junk", source="pipe")
    spool.quarantine_now(app.db, SpoolEntry.get_by_id(bad), "unparseable")
    make_worker(app).run_once()
    spool.enqueue(app.db, make_mail(subject="Still waiting"), source="smtp")
    heartbeat.beat(app.db, "imap:inbox", kind="imap", now=app.clock.now(), stale_seconds=60)
    request(base + "/healthz")
    request(base + "/no/such/page")
    m = scrape(base)
    assert m[("ticketd_messages_received_total", (("source", "smtp"),))] == 4
    assert m[("ticketd_messages_received_total", (("source", "pipe"),))] == 2
    assert m[("ticketd_messages_processed_total", ())] == 4
    assert m[("ticketd_messages_quarantined", ())] == 1
    assert m[("ticketd_spool_depth", ())] == 1
    assert m[("ticketd_spool_oldest_age_seconds", ())] >= 0
    queued = OutboxEntry.select().where(OutboxEntry.status == "queued").count()
    assert m[("ticketd_outbox_messages", (("status", "queued"),))] == queued
    assert m[("ticketd_outbox_sent_total", ())] == 0
    assert ("ticketd_imap_last_success_timestamp_seconds", (("mailbox", "inbox"),)) in m
    assert m[("ticketd_http_requests_total", (("code", "503"), ("route", "/healthz")))] == 1
    assert m[("ticketd_http_requests_total", (("code", "404"), ("route", "unmatched")))] == 1
    assert m[("ticketd_processing_seconds_count", ())] >= 4
    assert m[("ticketd_sla_breaches", (("target", "first_response"),))] == 0


def test_totals_do_not_go_down_when_retention_deletes_rows(served: tuple[App, str]) -> None:
    app, base = served
    for n in range(2):
        spool.enqueue(app.db, make_mail(subject=f"Old {n}"), source="smtp")
    make_worker(app).run_once()
    with write_tx(app.db):
        OutboxEntry.update(status="sent", sent_at=dt.datetime(2026, 1, 1)).execute()
    sent = OutboxEntry.select().count()
    before = scrape(base)
    gone = purge(app, app.clock.now() + dt.timedelta(days=400))
    assert gone["spool"] == 2 and SpoolEntry.select().count() == 0
    after = scrape(base)
    for key in (
        ("ticketd_messages_received_total", (("source", "smtp"),)),
        ("ticketd_messages_processed_total", ()),
        ("ticketd_outbox_sent_total", ()),
    ):
        assert after[key] == before[key]
    assert after[("ticketd_outbox_sent_total", ())] == sent


def test_sla_breaches_count_late_and_overdue_tickets(served: tuple[App, str]) -> None:
    app, base = served
    spool.enqueue(app.db, make_mail(subject="Late"), source="smtp")
    spool.enqueue(app.db, make_mail(subject="Fine"), source="smtp")
    make_worker(app).run_once()
    late, fine = Ticket.select().order_by(Ticket.id)
    past = app.clock.now() - dt.timedelta(hours=1)
    with write_tx(app.db):
        Ticket.update(first_response_due=past, resolution_due=past).where(
            Ticket.id == late.id
        ).execute()
        Ticket.update(first_response_due=past + dt.timedelta(days=1)).where(
            Ticket.id == fine.id
        ).execute()
    m = scrape(base)
    assert m[("ticketd_sla_breaches", (("target", "first_response"),))] == 1
    assert m[("ticketd_sla_breaches", (("target", "resolution"),))] == 1
