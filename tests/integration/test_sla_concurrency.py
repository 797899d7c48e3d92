"""Each escalation step fires once per ticket even when two ``ticketd sla check`` processes sweep
the same database at the same moment (PostgreSQL, and SQLite for good measure).

To make the race real rather than likely, the test holds a lock both processes need (every ticket
row ``FOR UPDATE`` on PostgreSQL, the write lock on SQLite) until both are waiting for it, then
lets them go together.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg

from maild.app import App
from maild.store.db import is_sqlite
from maild.store.models import Event, OutboxEntry, SlaFiring, Ticket
from tests.mailgen import make_mail
from tests.slakit import deliver, write_config, write_rules

T0 = dt.datetime(2026, 11, 2, 9, 0)
TICKETS = 25
STEPS = 3  # urgent: 75% first_response, breach first_response, breach resolution
# One mail per recipient: assignee (1); team of two and lead@ (3); lead@ (1).
MAILS_PER_TICKET = 5


def test_two_processes_fire_each_step_once(app: App, tmp_path: Path) -> None:
    holder = write_rules(app)
    for i in range(TICKETS):
        deliver(app, holder, make_mail(subject=f"Outage {i}"), T0 + dt.timedelta(seconds=i))
    config = write_config(app, tmp_path)
    at = (T0 + dt.timedelta(hours=5)).isoformat()
    command = [
        sys.executable,
        "-m",
        "maild.cli.main",
        "sla",
        "check",
        "--at",
        at,
        "--config",
        str(config),
    ]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    with held_lock(app) as both_waiting:
        procs = [
            subprocess.Popen(
                command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
            )
            for _ in range(2)
        ]
        wait_for(lambda: both_waiting([proc.pid for proc in procs]))
    results = [proc.communicate(timeout=120) for proc in procs]
    assert [proc.returncode for proc in procs] == [0, 0], results

    lines = [
        line
        for out, _err in results
        for line in out.splitlines()
        if not line.startswith("sla check")
    ]
    assert len(lines) == TICKETS * STEPS
    keys = Counter((f.ticket_id, f.policy, f.step) for f in SlaFiring.select())
    assert len(keys) == TICKETS * STEPS and set(keys.values()) == {1}
    assert (
        OutboxEntry.select().where(OutboxEntry.kind == "escalation").count()
        == TICKETS * MAILS_PER_TICKET
    )
    per_ticket = Counter(e.ticket_id for e in Event.select().where(Event.action == "escalation"))
    assert per_ticket == {t.id: STEPS for t in Ticket.select()}
    steps = {
        json.loads(e.detail)["step"] for e in Event.select().where(Event.action == "escalation")
    }
    assert steps == {"75% first_response", "breach first_response", "breach resolution"}

    # A third sweep, later, finds nothing left to do.
    again = subprocess.run(command, capture_output=True, text=True, env=env, timeout=120)
    assert again.returncode == 0 and again.stdout.strip().endswith(": 0 actions"), again


@contextlib.contextmanager
def held_lock(app: App) -> Iterator[Callable[[list[int]], bool]]:
    """Hold a lock every sweep needs; yields a test of "both processes are waiting for it"."""
    if is_sqlite(app.db):
        path = app.db.database
        conn = sqlite3.connect(path, isolation_level=None)
        conn.execute("BEGIN IMMEDIATE")

        def opened(pids: list[int]) -> bool:  # each has the file open: it waits in BEGIN IMMEDIATE
            return all(
                any(_fd_path(pid, fd) == os.path.realpath(path) for fd in _fds(pid)) for pid in pids
            )

        try:
            yield opened
        finally:
            conn.execute("COMMIT")
            conn.close()
        return
    url = app.config.database.url
    with psycopg.connect(url) as conn:
        conn.execute("SELECT id FROM ticket FOR UPDATE").fetchall()
        with psycopg.connect(url, autocommit=True) as watch:

            def blocked(pids: list[int]) -> bool:
                rows = watch.execute(
                    "SELECT count(*) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND wait_event_type = 'Lock'"
                ).fetchone()
                return rows is not None and rows[0] >= len(pids)

            yield blocked
        conn.commit()


def _fd_path(pid: int, fd: str) -> str | None:
    try:  # the descriptor may close between listing and reading it
        return os.readlink(f"/proc/{pid}/fd/{fd}")
    except OSError:
        return None


def _fds(pid: int) -> list[str]:
    try:
        return os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return []


def wait_for(condition: Callable[[], bool], timeout: float = 60.0) -> None:
    """Poll ``condition`` until it holds (the processes reach the lock in well under a second)."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "the sweeps never reached the lock"
        time.sleep(0.01)
