"""Review 3: SMTP envelope edge cases over a real socket, on SQLite and PostgreSQL.

A reverse path longer than the spool's column (320 characters) was accepted at MAIL FROM; on
PostgreSQL the spool insert then failed and DATA answered 451 on every attempt, so the sending MTA
retried for days before bouncing (on SQLite the same mail was accepted). It now gets a permanent
553 at MAIL FROM on both backends, and the session goes on normally.
"""

from __future__ import annotations

import smtplib

from maild.store.models import SpoolEntry
from tests.mailgen import make_mail


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
