"""Hostile and broken input: each message is stored or refused with a clear error, and the next
message is processed as usual."""

from __future__ import annotations

import pytest

from maild import spool
from maild.app import App
from maild.store.models import Attachment, Message, SpoolEntry, Ticket
from maild.worker import make_worker
from tests.mailgen import make_mail

GOOD = make_mail(subject="the next one", message_id="<next@customer.test>")


def nested(depth: int) -> bytes:
    head = (
        b"From: deep@customer.test\r\nTo: support@example.com\r\nSubject: deep\r\n"
        b"Message-ID: <deep@customer.test>\r\nMIME-Version: 1.0\r\n"
    )
    body = b""
    for level in range(depth):
        body += f'Content-Type: multipart/mixed; boundary="b{level}"\r\n\r\n--b{level}\r\n'.encode()
    body += b"Content-Type: text/plain\r\n\r\nat the bottom\r\n"
    for level in reversed(range(depth)):
        body += f"--b{level}--\r\n".encode()
    return head + body


CASES = {
    "malformed_mime": (
        b"From: m@customer.test\r\nTo: support@example.com\r\nSubject: broken\r\n"
        b"Message-ID: <mm@customer.test>\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/mixed; boundary="never-closed"\r\n\r\n'
        b"--never-closed\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        b"!!!not base64!!!\r\n--never-closed\r\nContent-Type: multipart/alternative\r\n\r\n"
    ),
    "undeclared_8bit": (
        b"From: u@customer.test\r\nTo: support@example.com\r\nSubject: caf\xe9\r\n"
        b"Message-ID: <u8@customer.test>\r\n\r\nna\xefve caf\xe9 without a charset\r\n"
    ),
    "wrong_charset": (
        b"From: w@customer.test\r\nTo: support@example.com\r\nSubject: =?x-unknown?q?hi?=\r\n"
        b"Message-ID: <wc@customer.test>\r\nMIME-Version: 1.0\r\n"
        b"Content-Type: text/plain; charset=klingon-8\r\n\r\nbody \xff\xfe text\r\n"
    ),
    "eight_bit_headers": (
        "From: Jürgen Müller <juergen@customer.test>\r\nTo: support@example.com\r\n"
        "Subject: Grüße aus Köln – 日本語\r\nMessage-ID: <8h@customer.test>\r\n\r\nHallo\r\n"
    ).encode(),
    "no_from": (
        b"To: support@example.com\r\nSubject: who am I\r\nMessage-ID: <nf@customer.test>\r\n\r\n?\r\n"
    ),
    "huge_subject": make_mail(subject="S" * 5000, message_id="<hs@customer.test>"),
    "nested_100": nested(100),
    "null_bytes": b"From: n@customer.test\r\nTo: support@example.com\r\nSubject: nul\x00\r\n"
    b"Message-ID: <nul@customer.test>\r\n\r\nbody\x00with nul\r\n",
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_bad_input_is_stored_or_refused_and_the_next_message_flows(app: App, name: str) -> None:
    bad_id = spool.enqueue(app.db, CASES[name], source="pipe")
    good_id = spool.enqueue(app.db, GOOD, source="pipe")
    make_worker(app).run_once()
    bad = SpoolEntry.get_by_id(bad_id)
    if bad.status == "quarantined":
        assert bad.last_error.startswith("unparseable: "), bad.last_error
    else:
        assert bad.status == "done", bad.last_error
        assert bad.result.split()[0] in ("new", "append"), bad.result
    good = SpoolEntry.get_by_id(good_id)
    assert good.status == "done" and good.result.startswith("new"), good.result


def test_details_of_stored_bad_input(app: App) -> None:
    for name in ("eight_bit_headers", "huge_subject", "undeclared_8bit", "nested_100"):
        spool.enqueue(app.db, CASES[name], source="pipe")
    make_worker(app).run_once()
    subjects = {t.subject for t in Ticket.select()}
    assert "Grüße aus Köln – 日本語" in subjects
    assert "S" * 5000 in subjects
    assert "café" in subjects
    deep = Message.get(Message.message_id == "deep@customer.test")
    assert deep.ticket.requester.email == "deep@customer.test"
    jm = Ticket.get(Ticket.subject == "Grüße aus Köln – 日本語")
    assert jm.requester.name == "Jürgen Müller"


def test_no_sender_at_all_is_quarantined_with_a_clear_error(app: App) -> None:
    entry_id = spool.enqueue(app.db, CASES["no_from"], source="pipe")
    make_worker(app).run_once()
    entry = SpoolEntry.get_by_id(entry_id)
    assert entry.status == "quarantined"
    assert "no sender" in entry.last_error
    # With an envelope sender the same bytes make a ticket.
    entry_id = spool.enqueue(app.db, CASES["no_from"], source="smtp", mail_from="x@customer.test")
    make_worker(app).run_once()
    assert SpoolEntry.get_by_id(entry_id).result.startswith("new")


def test_empty_message_is_quarantined(app: App) -> None:
    entry_id = spool.enqueue(app.db, b"", source="pipe")
    make_worker(app).run_once()
    entry = SpoolEntry.get_by_id(entry_id)
    assert entry.status == "quarantined" and "empty message" in entry.last_error


def test_oversized_attachment_is_recorded_not_stored(app_factory) -> None:
    app = app_factory(attachments={"max_bytes": 1000})
    raw = make_mail(
        attachments=[
            ("big.bin", "application/octet-stream", b"x" * 5000),
            ("small.txt", "text/plain", b"ok"),
        ]
    )
    spool.enqueue(app.db, raw, source="pipe")
    make_worker(app).run_once()
    assert [a.filename for a in Attachment.select()] == ["small.txt"]
    ticket = Ticket.get()
    assert any(e.action == "attachments_refused" for e in ticket.events)
