"""``ticketd run`` on PostgreSQL survives a lost database connection.

When PostgreSQL restarts (or a proxy or ``idle_session_timeout`` drops a connection), peewee keeps
the dead connection of each thread and every later statement fails with "the connection is
closed": the worker's "log, wait, try again" and the jobs' "runs again at its next time" never
succeeded again, SMTP answered 451 forever, and only restarting ticketd helped. A dead connection
is now replaced, outside a transaction, when the thread next uses the database.
"""

from __future__ import annotations

import json
import smtplib
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest
from peewee import OperationalError

from maild.app import App
from maild.jobs.runner import Jobs
from maild.store.models import KeyValue
from tests.conftest import _truncate_pg
from tests.mailgen import make_mail
from tests.servers.daemon import tickets_json, wait_until, write_config


def terminate(url: str, pids: list[int] | None = None) -> int:
    """End the given backends, or every other backend on the database of ``url``."""
    with psycopg.connect(url, autocommit=True) as admin:
        if pids is None:
            rows = admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            ).fetchall()
        else:
            rows = [admin.execute("SELECT pg_terminate_backend(%s)", (p,)).fetchone() for p in pids]
    return sum(1 for r in rows if r[0])


def backends(url: str) -> int:
    with psycopg.connect(url, autocommit=True) as admin:
        row = admin.execute(
            "SELECT COUNT(*) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        ).fetchone()
    return int(row[0])


def own_pid(app: App) -> int:
    return int(app.db.execute_sql("SELECT pg_backend_pid()").fetchone()[0])


@pytest.fixture
def pg_app(app_factory: Callable[..., App], pg_url: str) -> App:
    _truncate_pg(pg_url)
    return app_factory(pg_url)


def test_a_dead_connection_is_replaced_on_next_use(pg_app: App, pg_url: str) -> None:
    before = own_pid(pg_app)
    assert terminate(pg_url, [before]) == 1
    with pytest.raises(OperationalError):  # the statement that finds it dead fails, as it must
        pg_app.db.execute_sql("SELECT 1")
    after = own_pid(pg_app)  # and the next one runs on a new connection
    assert after != before
    KeyValue.create(key="still", value="works")
    assert KeyValue.get(KeyValue.key == "still").value == "works"


def test_a_job_runs_again_after_the_connection_was_lost(
    pg_app: App, pg_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    runs: list[str] = []

    def body() -> None:
        KeyValue.insert(key=f"run{len(runs)}", value="x").execute()
        runs.append("ok")

    job = Jobs(pg_app).wrap("review.job", body, cluster_once=True)
    job()
    terminate(pg_url, [own_pid(pg_app)])
    job()  # fails and logs: the connection died under it
    assert "job review.job failed" in caplog.text
    job()
    job()
    assert runs == ["ok", "ok", "ok"]


def test_the_daemon_recovers_when_postgresql_drops_its_connections(
    tmp_path: Path, pg_url: str, start_daemon
) -> None:
    _truncate_pg(pg_url)
    config, port = write_config(tmp_path, pg_url)
    daemon = start_daemon(config, port)

    def send(subject: str) -> bool:
        try:
            with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
                client.sendmail(
                    "carol@customer.test", ["support@example.com"], make_mail(subject=subject)
                )
            return True
        except smtplib.SMTPResponseException as exc:
            assert exc.smtp_code == 451, exc  # a temporary failure: the sender retries
            return False

    try:
        assert send("before")
        wait_until(lambda: len(tickets_json(config)) == 1)
        # The worker, SMTP, outbox and jobs threads each hold a connection by now.
        wait_until(lambda: backends(pg_url) >= 3)
        assert terminate(pg_url) >= 1  # like a PostgreSQL restart
        wait_until(lambda: send("after"), timeout=20)
        rows = wait_until(lambda: [t for t in tickets_json(config) if t["subject"] == "after"])
        ref = rows[0]["ref"]
        # The outbox thread delivers again too: the acknowledgement of the new ticket goes out.
        sent = tmp_path / "var" / "sent"
        wait_until(lambda: any(ref in p.read_text(errors="replace") for p in sent.glob("*.eml")))
    finally:
        code = daemon.stop()
    assert code == 0, daemon.output()
    shown = json.dumps(tickets_json(config))
    assert "after" in shown
