"""``ticketd run`` as a real subprocess: SMTP in, tickets out, clean stop, kill -9 and restart."""

from __future__ import annotations

import io
import json
import re
import smtplib
import sqlite3
import threading
from pathlib import Path

import pytest
from peewee import OperationalError
from ruamel.yaml import YAML

from maild.app import App
from maild.intake.pipe import EX_OK, inject
from maild.store.models import SpoolEntry
from maild.worker import Worker
from tests.mailgen import make_mail
from tests.servers.daemon import ticketd, tickets_json, wait_until, write_config


def test_daemon_smtp_to_ticket_and_clean_stop(
    tmp_path: Path, any_db_url: str, start_daemon
) -> None:
    config, port = write_config(tmp_path, any_db_url)
    daemon = start_daemon(config, port)
    try:
        with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
            client.sendmail(
                "carol@customer.test",
                ["support@example.com"],
                make_mail(message_id="<d1@customer.test>"),
            )
        rows = wait_until(lambda: tickets_json(config))
        ref = rows[0]["ref"]
        with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
            client.sendmail(
                "carol@customer.test",
                ["support@example.com"],
                make_mail(subject=f"Re: [{ref}] Printer on fire", body="more\n"),
            )

        def two_inbound() -> dict | None:
            data = json.loads(ticketd(config, "tickets", "show", ref, "--json").stdout)
            inbound = [m for m in data["messages"] if m["direction"] == "in"]
            return data if len(inbound) == 2 else None

        shown = wait_until(two_inbound)
        kinds = [(m["direction"], m["kind"]) for m in shown["messages"]]
        assert kinds == [("in", "customer"), ("out", "auto"), ("in", "customer")]
        assert shown["status"] == "new"
        for key in (
            "ref",
            "subject",
            "status",
            "priority",
            "team",
            "assignee",
            "tags",
            "requester",
            "created_at",
            "messages",
            "events",
        ):
            assert key in shown
        assert shown["created_at"].endswith("+00:00")
    finally:
        code = daemon.stop()
    assert code == 0, daemon.output()
    log = daemon.output()
    assert f"new {ref} [ack queued] from carol@customer.test (human)" in log
    assert "ticketd stopped" in log


def test_kill_9_while_clients_send_loses_and_doubles_nothing(tmp_path: Path, start_daemon) -> None:
    config, port = write_config(tmp_path)
    daemon = start_daemon(config, port)
    acknowledged: list[str] = []
    lock = threading.Lock()
    stop = threading.Event()

    def client(n: int) -> None:
        i = 0
        while not stop.is_set():
            mid = f"<k{n}-{i}@customer.test>"
            try:
                with smtplib.SMTP("127.0.0.1", port, timeout=5) as smtp:
                    smtp.sendmail(
                        "c@customer.test",
                        ["support@example.com"],
                        make_mail(subject=f"c{n} m{i}", message_id=mid),
                    )
            except (OSError, smtplib.SMTPException):
                return  # the server died under us: this message was never acknowledged
            with lock:
                acknowledged.append(mid.strip("<>"))
            i += 1

    threads = [threading.Thread(target=client, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    wait_until(lambda: len(acknowledged) >= 40, timeout=60, interval=0.01)
    daemon.kill()
    stop.set()
    for t in threads:
        t.join()
    daemon.start()  # same config: the restart processes what was left
    try:

        def all_stored() -> bool:
            out = ticketd(config, "tickets", "list", "--json")
            return len(json.loads(out.stdout)) >= len(acknowledged)

        wait_until(all_stored, timeout=60)
    finally:
        daemon.stop()
    import sqlite3

    db = sqlite3.connect(tmp_path / "var" / "ticketd.db")
    stored = [row[0] for row in db.execute("SELECT message_id FROM message")]
    pending = db.execute("SELECT count(*) FROM spool_entry WHERE status != 'done'").fetchone()[0]
    db.close()
    assert pending == 0
    for mid in acknowledged:
        assert stored.count(mid) == 1, mid
    assert len(stored) == len(set(stored))


def test_inject_exit_codes_and_output(tmp_path: Path) -> None:
    config, _port = write_config(tmp_path)
    out = ticketd(config, "inject", stdin=make_mail(message_id="<inj1@customer.test>"))
    assert out.returncode == 0, out.stderr
    assert b"new ACME-1" in out.stdout
    listed = tickets_json(config)
    assert [t["ref"] for t in listed] == ["ACME-1"]
    # Over the size limit: can never be accepted.
    big = tmp_path / "big.eml"
    big.write_bytes(make_mail(body="x" * (26214400 + 10)))
    out = ticketd(config, "inject", str(big))
    assert out.returncode == 65
    assert b"max_message_bytes" in out.stderr
    # --spool-only leaves it for the daemon.
    out = ticketd(config, "inject", "--spool-only", stdin=make_mail())
    assert out.returncode == 0, out.stderr
    assert re.fullmatch(rb"<stdin>: spool #\d+ pending\n", out.stdout), out.stdout


def test_inject_tempfails_when_the_spool_cannot_be_written(tmp_path: Path) -> None:
    import sqlite3

    config, _port = write_config(tmp_path)
    assert ticketd(config, "inject", stdin=make_mail()).returncode == 0
    text = config.read_text().replace("busy_timeout_ms: 5000", "busy_timeout_ms: 100")
    config.write_text(text.replace("database:\n", "database:\n  busy_timeout_ms: 100\n", 1))
    lock = sqlite3.connect(tmp_path / "var" / "ticketd.db", isolation_level=None)
    lock.execute("BEGIN EXCLUSIVE")
    try:
        out = ticketd(config, "inject", stdin=make_mail())
    finally:
        lock.close()
    assert out.returncode == 75, (out.stdout, out.stderr)


def test_inject_reports_a_database_it_cannot_open_on_stderr(tmp_path: Path) -> None:
    config, _port = write_config(tmp_path, "postgresql://nobody@127.0.0.1:1/nothing")
    out = ticketd(config, "inject", stdin=make_mail())
    assert out.returncode == 75, (out.stdout, out.stderr)  # EX_TEMPFAIL: the MTA keeps the mail
    assert out.stdout == b""
    assert out.stderr.startswith(b"ticketd: database.url: cannot open postgresql://"), out.stderr
    assert b"Traceback" not in out.stderr


def test_config_errors_name_file_line_and_key(tmp_path: Path) -> None:
    config, _port = write_config(tmp_path)
    config.write_text(config.read_text() + "smtp_inn: {port: 1}\n")
    out = ticketd(config, "tickets", "list")
    assert out.returncode == 78
    err = out.stderr.decode()
    assert "config.yaml:" in err and "smtp_inn: unknown key" in err
    assert "Traceback" not in err


def test_spool_list_and_retry(tmp_path: Path) -> None:
    config, _port = write_config(tmp_path)
    out = ticketd(config, "inject", stdin=b"\x00\x01 not a message")
    assert out.returncode == 0  # spooled: the MTA's job is done; we keep it quarantined
    assert b"quarantined" in out.stdout
    listed = json.loads(ticketd(config, "spool", "list", "--json").stdout)
    assert listed[0]["status"] == "quarantined" and "unparseable" in listed[0]["error"]
    retry = ticketd(config, "spool", "retry", str(listed[0]["id"]))
    assert retry.returncode == 1 and b"quarantined" in retry.stdout
    missing = ticketd(config, "spool", "retry", "9999")
    assert missing.returncode == 1 and b"does not exist" in missing.stderr


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        ("imap", "imap.mailboxes[0].port"),
        ("rules", "20-routing.yaml:3"),
    ],
)
def test_daemon_refuses_to_start_on_bad_settings(tmp_path: Path, edit: str, expected: str) -> None:
    """Bad IMAP settings or broken rules: exit 78 with the place, before anything listens."""
    path, port = write_config(tmp_path)
    if edit == "imap":
        data = YAML().load(path.read_text())
        data["imap"] = {
            "mailboxes": [
                {
                    "name": "x",
                    "host": "127.0.0.1",
                    "port": "many",
                    "username": "u",
                    "password_env": "P",
                }
            ]
        }
        with path.open("w") as fh:
            YAML().dump(data, fh)
    else:
        (tmp_path / "rules" / "20-routing.yaml").write_text(
            "rules:\n  - name: Bad\n    then: {priority: hgih}\n"
        )
    out = ticketd(path, "run")
    assert out.returncode == 78, out.stderr
    assert expected in out.stderr.decode()
    with pytest.raises(OSError):
        smtplib.SMTP("127.0.0.1", port, timeout=1)


def test_daemon_runs_the_sla_sweep(tmp_path: Path, app_factory, start_daemon) -> None:
    """The sweep runs inside ``ticketd run``: a ticket without a policy gets one within a turn."""
    from maild.store.models import Contact, Ticket

    path, port = write_config(tmp_path)
    data = YAML().load(path.read_text())
    data["lifecycle"] = {"sweep_seconds": 1}
    with path.open("w") as fh:
        YAML().dump(data, fh)
    (tmp_path / "rules" / "30-sla.yaml").write_text(
        "business_hours: 24/7\nsla:\n  - {name: standard, first_response: 4h, resolution: 2d}\n"
    )
    app = app_factory()  # the daemon's database, to plant a ticket made before SLAs were set up
    contact = Contact.create(email="carol@customer.test")
    ticket = Ticket.create(subject="old", requester=contact, status="open")
    app.close()
    daemon = start_daemon(path, port)
    try:

        def policy() -> object:
            with sqlite3.connect(tmp_path / "var" / "ticketd.db") as conn:
                return conn.execute(
                    "SELECT sla_policy FROM ticket WHERE id = ?", (ticket.id,)
                ).fetchone()[0]

        assert wait_until(policy, timeout=20, interval=0.1) == "standard"
    finally:
        assert daemon.stop() == 0


# -- ``ticketd inject`` exits 0 once the message is spooled, even if processing then fails.
# Without ``--spool-only`` inject processes what it spooled. When that step failed in a way the
# worker does not catch (the daemon holding the SQLite write lock beyond ``busy_timeout``: "database
# is locked" while claiming), the exception escaped: a traceback and exit status 1. An MTA pipe
# transport bounces on status 1, so the customer was told their mail failed although it was
# spooled and the daemon makes a ticket of it.


def test_inject_exits_0_when_processing_after_the_spool_fails(sqlite_app: App, monkeypatch) -> None:
    def locked(self, *args, **kwargs):
        raise OperationalError("database is locked")

    monkeypatch.setattr(Worker, "run_once", locked)
    out, err = io.StringIO(), io.StringIO()
    status = inject(sqlite_app, [], stdin=io.BytesIO(make_mail()), out=out, err=err)
    assert status == EX_OK, err.getvalue()
    entry = SpoolEntry.get()
    assert entry.status == "pending"  # the daemon (or the next inject) processes it
    assert "database is locked" in err.getvalue()
