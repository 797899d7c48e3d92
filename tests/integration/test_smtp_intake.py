"""SMTP intake over loopback with a real smtplib client against the real aiosmtpd server."""

from __future__ import annotations

import smtplib
import sqlite3
import threading
import time

import pytest

from maild.app import App
from maild.intake.smtp import IntakeController
from maild.store.models import SpoolEntry, Ticket
from maild.worker import make_worker
from tests.mailgen import make_mail
from tests.servers.daemon import free_port


def test_accepted_mail_is_spooled_before_250_and_becomes_a_ticket(smtp_server) -> None:
    app, port, spooled = smtp_server
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
        refused = client.sendmail("carol@customer.test", ["support@example.com"], make_mail())
    assert refused == {}
    assert len(spooled) == 1
    entry = SpoolEntry.get_by_id(spooled[0])  # durable as soon as 250 was answered
    assert entry.source == "smtp" and entry.mail_from == "carol@customer.test"
    make_worker(app).run_once()
    assert Ticket.select().count() == 1


def test_plus_tag_forms_are_accepted(smtp_server) -> None:
    _app, port, spooled = smtp_server
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
        client.sendmail(
            "c@customer.test", ["Support+Billing@Example.com", "help@example.org"], make_mail()
        )
    assert len(spooled) == 1


def test_not_an_open_relay(smtp_server) -> None:
    _app, port, spooled = smtp_server
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
        client.ehlo()
        client.mail("spammer@evil.test")
        code, text = client.rcpt("victim@elsewhere.test")
        assert code == 550, text
        code, _ = client.rcpt("support@example.com.evil.test")
        assert code == 550
        code, _ = client.rcpt("support@example.com")
        assert code == 250
    assert spooled == []


def test_oversized_message_gets_552(smtp_server) -> None:
    _app, port, spooled = smtp_server
    big = make_mail(body="x" * 300_000)
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
        with pytest.raises(smtplib.SMTPResponseException) as info:
            client.sendmail("c@customer.test", ["support@example.com"], big)
    assert info.value.smtp_code == 552
    assert spooled == []


def test_long_lines_are_accepted(smtp_server) -> None:
    _app, port, spooled = smtp_server
    raw = make_mail().replace(b"my printer", b"my " + b"y" * 5000 + b" printer")
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
        client.sendmail("c@customer.test", ["support@example.com"], raw)
    assert len(spooled) == 1


def test_locked_database_answers_451_and_nothing_is_lost(app_factory, tmp_path) -> None:
    port = free_port()
    app = app_factory(
        smtp_in={"port": port},
        database={"url": f"sqlite:///{tmp_path / 'var' / 'ticketd.db'}", "busy_timeout_ms": 200},
    )
    controller = IntakeController(app)
    controller.start()
    lock = sqlite3.connect(tmp_path / "var" / "ticketd.db", isolation_level=None)
    try:
        lock.execute("BEGIN EXCLUSIVE")
        with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
            with pytest.raises(smtplib.SMTPResponseException) as info:
                client.sendmail("c@customer.test", ["support@example.com"], make_mail())
            assert info.value.smtp_code == 451
            lock.execute("ROLLBACK")
            # The client retries, as a real MTA would, and now it is accepted.
            assert client.sendmail("c@customer.test", ["support@example.com"], make_mail()) == {}
    finally:
        lock.close()
        controller.stop()
    assert SpoolEntry.select().count() == 1


def test_concurrent_clients(smtp_server) -> None:
    app, port, spooled = smtp_server
    errors: list[BaseException] = []

    def send(n: int) -> None:
        try:
            with smtplib.SMTP("127.0.0.1", port, timeout=20) as client:
                for i in range(10):
                    client.sendmail(
                        "c@customer.test",
                        ["support@example.com"],
                        make_mail(subject=f"client {n} message {i}"),
                    )
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=send, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(spooled) == 40
    make_worker(app).run_once()
    assert Ticket.select().count() == 40


def test_app_requires_support_addresses(app_factory) -> None:
    from maild.errors import ConfigError

    with pytest.raises(ConfigError, match="support_addresses"):
        app_factory(instance={"support_addresses": []})


def test_app_fixture_type(sqlite_app: App) -> None:
    assert sqlite_app.config.prefix == "ACME"


# -- SMTP envelope edge cases over a real socket, on SQLite and PostgreSQL.
# A reverse path longer than the spool's column (320 characters) was accepted at MAIL FROM; on
# PostgreSQL the spool insert then failed and DATA answered 451 on every attempt, so the sending MTA
# retried for days before bouncing (on SQLite the same mail was accepted). It now gets a permanent
# 553 at MAIL FROM on both backends, and the session goes on normally.


def test_overlong_sender_is_refused_permanently_and_the_session_goes_on(smtp_server) -> None:
    _app, port, spooled = smtp_server
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
        client.ehlo()
        code, _ = client.mail("a" * 400 + "@customer.test")
        assert 500 <= code < 600
        client.rset()
        refused = client.sendmail("carol@customer.test", ["support@example.com"], make_mail())
    assert refused == {}
    assert len(spooled) == 1


def test_null_sender_rset_and_mixed_recipients(smtp_server) -> None:
    _app, port, spooled = smtp_server
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
        client.ehlo()
        assert client.mail("")[0] == 250
        assert client.rcpt("victim@elsewhere.test")[0] == 550
        assert client.rcpt("support@example.com")[0] == 250
        assert client.data(make_mail())[0] == 250
        client.rset()
        assert client.mail("dan@customer.test")[0] == 250
        assert client.rcpt("help@example.org")[0] == 250
        assert client.data(make_mail())[0] == 250
    first, second = (SpoolEntry.get_by_id(i) for i in spooled)
    assert first.mail_from == "<>" and first.rcpt_tos == '["support@example.com"]'
    assert second.mail_from == "dan@customer.test" and second.rcpt_tos == '["help@example.org"]'


def test_concurrent_sessions_get_250_only_after_the_commit_that_holds_their_message(
    app_factory, tmp_path
) -> None:
    port = free_port()
    app = app_factory(
        smtp_in={"port": port},
        database={"url": f"sqlite:///{tmp_path / 'var' / 'ticketd.db'}", "busy_timeout_ms": 20000},
    )
    controller = IntakeController(app)
    controller.start()
    lock = sqlite3.connect(tmp_path / "var" / "ticketd.db", isolation_level=None)
    answered: list[int] = []
    guard = threading.Lock()

    def send(n: int) -> None:
        with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
            client.sendmail(
                "c@customer.test", ["support@example.com"], make_mail(message_id=f"<g{n}@c.test>")
            )
            with guard:
                answered.append(n)

    try:
        lock.execute("BEGIN EXCLUSIVE")  # the ticket writer holds the write lock
        threads = [threading.Thread(target=send, args=(n,)) for n in range(8)]
        for t in threads:
            t.start()
        time.sleep(1.5)
        assert answered == []  # nothing is committed, so nobody has 250
        lock.execute("ROLLBACK")
        for t in threads:
            t.join()
    finally:
        lock.close()
        controller.stop()
    assert sorted(answered) == list(range(8))
    assert SpoolEntry.select().count() == 8
