"""Health: every check from the database, ``ticketd status``, ``GET /healthz`` and the watchdog."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import queue
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from maild import spool
from maild.app import App
from maild.daemon import Daemon
from maild.ops import heartbeat
from maild.ops.health import health
from maild.store.db import write_tx
from maild.store.models import Heartbeat, OutboxEntry, SpoolEntry
from tests.servers.web import WebDaemon

NOW = dt.datetime(2026, 12, 3, 12, 0, 0)


def checks(app: App, now: dt.datetime = NOW) -> dict[str, tuple[bool, str]]:
    return {c.name: (c.ok, c.detail) for c in health(app, now).checks}


def alive_worker(app: App, now: dt.datetime = NOW) -> None:
    heartbeat.beat(app.db, "worker:test:1", kind="worker", now=now, stale_seconds=120)


def test_without_a_worker_that_reported_the_installation_is_unhealthy(app: App) -> None:
    result = health(app, NOW)
    assert not result.healthy
    assert checks(app)["workers"][0] is False
    alive_worker(app)
    assert health(app, NOW).healthy
    assert health(app, NOW + dt.timedelta(minutes=5)).healthy is False  # it went silent


def test_a_message_waiting_too_long_and_a_quarantined_one_fail_their_checks(app: App) -> None:
    alive_worker(app)
    with write_tx(app.db):
        spool.add(b"Subject: x\r\n\r\nbody", source="smtp", now=NOW - dt.timedelta(minutes=2))
    assert checks(app)["spool"][0] is True  # 2 minutes: within the 5 minute limit
    assert checks(app, NOW + dt.timedelta(minutes=4))["spool"][0] is False
    assert "1 waiting" in checks(app)["spool"][1]
    entry_id = spool.enqueue(app.db, b"junk", source="pipe")
    spool.quarantine_now(app.db, SpoolEntry.get_by_id(entry_id), "unparseable")
    ok, detail = checks(app)["quarantine"]
    assert not ok and "1 quarantined" in detail


def test_an_overdue_queued_mail_and_a_recent_failed_delivery_fail(app: App) -> None:
    alive_worker(app)
    common = {"kind": "auto", "mail_from": "support@example.com", "rcpt_tos": "[]", "raw": b"x"}
    with write_tx(app.db):
        OutboxEntry.create(**common, created_at=NOW - dt.timedelta(hours=1))
    ok, detail = checks(app)["outbox"]
    assert not ok and "1 queued" in detail
    with write_tx(app.db):
        OutboxEntry.update(status="sent").execute()
        OutboxEntry.create(**common, status="failed", created_at=NOW - dt.timedelta(hours=2))
    result = checks(app)
    assert result["outbox"][0] is True
    assert result["outbox_failed"] == (False, "1 failed in the last 24 h (ticketd outbox list)")
    assert checks(app, NOW + dt.timedelta(days=2))["outbox_failed"][0] is True


def test_each_imap_mailbox_needs_a_recent_successful_poll(app_factory, any_db_url) -> None:
    app = app_factory(any_db_url, imap={"mailboxes": [{"name": "inbox"}, {"name": "sales"}]})
    alive_worker(app)
    result = checks(app)
    assert result["imap:inbox"] == (False, "no successful poll yet")
    heartbeat.beat(app.db, "imap:inbox", kind="imap", now=NOW, stale_seconds=180)
    heartbeat.beat(
        app.db, "imap:sales", kind="imap", now=NOW, stale_seconds=180, ok=False, detail="refused"
    )
    result = checks(app)
    assert result["imap:inbox"][0] is True
    assert result["imap:sales"] == (False, "no successful poll yet (refused)")
    later = NOW + dt.timedelta(minutes=20)
    heartbeat.beat(app.db, "worker:test:1", kind="worker", now=later, stale_seconds=120)
    heartbeat.beat(
        app.db, "imap:inbox", kind="imap", now=later, stale_seconds=180, ok=False, detail="down"
    )
    ok, detail = checks(app, later)["imap:inbox"]
    assert not ok and "20 min ago" in detail and "down" in detail


def test_a_job_that_keeps_failing_fails_its_check(app: App) -> None:
    from maild.jobs.status import FAILING_AFTER, record_run

    alive_worker(app)
    record_run(app.db, "sla_sweep", NOW)
    assert checks(app)["job:sla_sweep"] == (True, "last run 0 s ago")
    for _ in range(FAILING_AFTER - 1):
        record_run(app.db, "sla_sweep", NOW, error="no disk")
    ok, detail = checks(app)["job:sla_sweep"]
    assert ok and "2 failed in a row: no disk" in detail
    record_run(app.db, "sla_sweep", NOW, error="no disk")
    assert checks(app)["job:sla_sweep"][0] is False


def test_a_worker_row_left_by_a_killed_process_is_forgotten_at_start(sqlite_app: App) -> None:
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True).stdout.strip()  # fmt: skip
    name = heartbeat.worker_name(pid=int(dead))
    heartbeat.beat(sqlite_app.db, name, kind="worker", now=NOW, stale_seconds=120)
    alive_worker(sqlite_app)  # another host's worker is not ours to judge
    assert heartbeat.forget_dead_workers(sqlite_app.db) == 1
    assert [r.name for r in Heartbeat.select()] == ["worker:test:1"]


@pytest.fixture
def notify_socket(tmp_path: Path) -> Iterator[socket.socket]:
    path = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    try:
        yield sock
    finally:
        sock.close()


def test_the_watchdog_is_fed_only_while_every_part_is_alive(
    sqlite_app: App, notify_socket: socket.socket, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NOTIFY_SOCKET", notify_socket.getsockname())
    monkeypatch.setenv("WATCHDOG_USEC", "2000000")
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid()))
    daemon = Daemon(sqlite_app)
    state = {"imap:inbox": True}
    daemon.parts = {"imap:inbox": lambda: state["imap:inbox"]}
    daemon.alive()
    assert notify_socket.recv(100) == b"WATCHDOG=1"
    daemon.watchdog.last = 0.0
    state["imap:inbox"] = False
    daemon.alive()
    notify_socket.setblocking(False)
    with pytest.raises(BlockingIOError):  # the datagram would already be there: sendall is sync
        notify_socket.recv(100)
    assert daemon.dead_parts() == ["imap:inbox"]
    assert Heartbeat.get_by_id(daemon.beat.name).kind == "worker"


def test_healthz_and_status_agree_with_a_running_daemon(
    tmp_path: Path, notify_socket: socket.socket, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NOTIFY_SOCKET", notify_socket.getsockname())
    monkeypatch.setenv("WATCHDOG_USEC", "1000000")
    notify_socket.settimeout(30)
    received: queue.Queue[bytes] = queue.Queue()

    def drain() -> None:  # systemd reads every datagram; a full socket would block the sender
        with contextlib.suppress(OSError):
            while True:
                received.put(notify_socket.recv(100))

    daemon = WebDaemon(tmp_path).start()
    threading.Thread(target=drain, daemon=True).start()
    try:
        seen = {received.get(timeout=30), received.get(timeout=30)}
        assert seen == {b"READY=1", b"WATCHDOG=1"}  # the loop turned once: the heartbeat is in
        answer = daemon.get("/healthz")
        assert answer.status == 200, answer.text
        body = answer.json()
        assert body["healthy"] is True
        assert {"spool", "quarantine", "outbox", "outbox_failed", "workers"} <= {
            c["name"] for c in body["checks"]
        }
        assert daemon.ticketd("status").returncode == 0
        app = App.open(daemon_config(daemon))
        entry_id = spool.enqueue(app.db, b"x", source="pipe")
        spool.quarantine_now(app.db, SpoolEntry.get_by_id(entry_id), "unparseable")
        app.close()
        answer = daemon.get("/healthz")
        assert answer.status == 503 and answer.json()["healthy"] is False
        out = daemon.ticketd("status", "--json")
        assert out.returncode == 1
        assert json.loads(out.stdout) == answer.json()
        text = daemon.ticketd("status")
        assert text.stdout.startswith("UNHEALTHY") and "FAIL quarantine" in text.stdout
    finally:
        assert daemon.stop() == 0
    assert "Traceback" not in daemon.process.output()


def daemon_config(daemon: WebDaemon):
    from maild.config import load_config

    return load_config(daemon.config)
