"""The weekly digest: its config, when it is due, the mail it queues, once per slot."""

from __future__ import annotations

import datetime as dt
import email
import json
import logging
from collections.abc import Callable
from email import policy
from pathlib import Path
from typing import Any

import pytest
import schedule

from maild.app import App
from maild.clock import FixedClock
from maild.config import DigestConfig, load_config
from maild.errors import ConfigError
from maild.outbox.sender import Sender
from maild.pipeline.addresses import LOOP_HEADER
from maild.reports.digest import digest_tick, latest_slot, queue_digest, schedule_digest
from maild.store.models import KeyValue, OutboxEntry
from tests.reportkit import build_history

MINIMAL = "instance:\n  ticket_prefix: ACME\n  support_addresses: [support@example.com]\n"
DIGEST = {"enabled": True, "to": ["Lead@Example.com", "boss@example.com"], "timezone": "UTC"}
MONDAY_0830 = dt.datetime(2026, 3, 9, 8, 30)  # the slot is Monday 08:00 UTC


def config_error(tmp_path: Path, digest: str) -> str:
    path = tmp_path / "config.yaml"
    path.write_text(MINIMAL + "reports:\n  digest: " + digest + "\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    return str(info.value)


def test_config_defaults_and_values(tmp_path: Path) -> None:
    (tmp_path / "config.yaml").write_text(MINIMAL)
    assert load_config(tmp_path / "config.yaml").reports.digest == DigestConfig(
        enabled=False, to=(), weekday="mon", time="08:00", timezone="UTC", since="7d"
    )
    (tmp_path / "config.yaml").write_text(
        MINIMAL + "reports:\n  digest: {enabled: true, to: [a@example.com], weekday: fri,"
        " time: '17:30', timezone: Europe/Berlin, since: 2w}\n"
    )
    digest = load_config(tmp_path / "config.yaml").reports.digest
    assert (digest.enabled, digest.to, digest.weekday, digest.time) == (
        True,
        ("a@example.com",),
        "fri",
        "17:30",
    )


@pytest.mark.parametrize(
    ("digest", "message"),
    [
        ("{enabled: true}", "reports.digest.to: give at least one address when enabled"),
        ("{to: [nobody]}", "reports.digest.to[0]: 'nobody' is not an address"),
        ("{time: '25:00'}", "reports.digest.time: '25:00' is not a time like 08:00"),
        ("{since: 3x}", "reports.digest.since: '3x' is not like 7d"),
        ("{timezone: Mars/Olympus}", "reports.digest.timezone: 'Mars/Olympus' is not a time zone"),
        ("{weekday: monday}", "reports.digest.weekday: must be one of mon, tue"),
        ("{enabled: yes please}", "reports.digest.enabled: expected true or false"),
        ("{hour: 8}", "config.yaml:5: reports.digest.hour: unknown key"),
    ],
)
def test_config_errors_name_the_key(tmp_path: Path, digest: str, message: str) -> None:
    assert message in config_error(tmp_path, digest)


@pytest.mark.parametrize(
    ("now", "slot"),
    [
        (dt.datetime(2026, 3, 9, 7, 0), dt.datetime(2026, 3, 9, 7, 0)),  # exactly 08:00 CET
        (dt.datetime(2026, 3, 9, 6, 59), dt.datetime(2026, 3, 2, 7, 0)),  # a minute early
        (dt.datetime(2026, 3, 12, 12, 0), dt.datetime(2026, 3, 9, 7, 0)),  # Thursday
        (dt.datetime(2026, 3, 30, 6, 30), dt.datetime(2026, 3, 30, 6, 0)),  # 08:00 CEST
    ],
)
def test_latest_slot_is_local_time(now: dt.datetime, slot: dt.datetime) -> None:
    digest = DigestConfig(weekday="mon", time="08:00", timezone="Europe/Berlin")
    assert latest_slot(digest, now) == slot


@pytest.fixture
def digest_app(app_factory: Callable[..., App], any_db_url: str) -> App:
    app = app_factory(any_db_url, reports={"digest": DIGEST})
    build_history()
    return app


def parsed(entry: OutboxEntry) -> Any:
    return email.message_from_bytes(bytes(entry.raw), policy=policy.default)


def test_tick_queues_the_digest_once_per_slot(digest_app: App) -> None:
    entry = digest_tick(digest_app, MONDAY_0830)
    assert entry is not None
    assert (entry.kind, entry.ticket_id, entry.status) == ("digest", None, "queued")
    assert json.loads(entry.rcpt_tos) == ["lead@example.com", "boss@example.com"]
    msg = parsed(entry)
    assert msg["Subject"] == "Test Support: support report 2026-03-02 to 2026-03-09"
    assert msg["Auto-Submitted"] == "auto-generated" and msg[LOOP_HEADER]
    assert msg["To"] == "lead@example.com, boss@example.com"
    text = msg.get_body(("plain",)).get_content()
    html = msg.get_body(("html",)).get_content()
    assert "Summary" in text and "Per team" in text and "billing" in text
    assert '<meta name="viewport"' in html and "<table>" in html and "data:" not in html
    # The same slot again, later the same day, or from a second instance: nothing more.
    assert digest_tick(digest_app, MONDAY_0830 + dt.timedelta(hours=3)) is None
    assert queue_digest(digest_app, MONDAY_0830, slot=dt.datetime(2026, 3, 9, 8)) is None
    assert OutboxEntry.select().count() == 1
    assert KeyValue.get_by_id("reports.digest.last_slot").value == "2026-03-09T08:00:00"
    # The next Monday's slot is due again.
    assert digest_tick(digest_app, MONDAY_0830 + dt.timedelta(days=7)) is not None


def test_a_digest_more_than_a_day_late_is_skipped(digest_app: App) -> None:
    assert digest_tick(digest_app, MONDAY_0830 + dt.timedelta(days=1, hours=1)) is None
    assert (
        digest_tick(digest_app, dt.datetime(2026, 3, 9, 7, 59)) is None
    )  # before 08:00: last week's, late
    assert OutboxEntry.select().count() == 0


def test_disabled_does_nothing(app_factory: Callable[..., App]) -> None:
    app = app_factory()
    assert digest_tick(app, MONDAY_0830) is None
    assert schedule_digest(app, schedule.Scheduler()) is None


def test_scheduled_job_queues_and_the_sender_delivers(digest_app: App, tmp_path: Path) -> None:
    digest_app.clock = FixedClock(MONDAY_0830)
    scheduler = schedule.Scheduler()
    job = schedule_digest(digest_app, scheduler)
    assert job is not None and job.interval == 60 and job.unit == "seconds"
    scheduler.run_all()
    scheduler.run_all()
    assert OutboxEntry.select().count() == 1
    assert Sender(digest_app).run_once() == 1
    sent = list((tmp_path / "var" / "sent").glob("*.eml"))
    assert len(sent) == 1 and b"support report" in sent[0].read_bytes()


def test_a_failing_job_logs_and_does_not_raise(
    digest_app: App, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "rules" / "10-broken.yaml").write_text("business_hours: {timezone: Nowhere/X}\n")
    digest_app.clock = FixedClock(MONDAY_0830)
    scheduler = schedule.Scheduler()
    schedule_digest(digest_app, scheduler)
    with caplog.at_level(logging.ERROR, logger="ticketd.reports"):
        scheduler.run_all()
    assert "digest: building or queueing failed" in caplog.text
    assert OutboxEntry.select().count() == 0
    assert KeyValue.get_or_none(KeyValue.key == "reports.digest.last_slot") is None
