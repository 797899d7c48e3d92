"""Review 3: two different messages whose long Message-IDs share a prefix are both stored.

A Message-ID over 490 characters was cut to its first 490 and de-duplicated on that: a sender
whose ids carry a long fixed part before the unique one (a signed token, a tracking blob) had every
message after the first dropped as a "duplicate", acknowledged by SMTP and never stored.
"""

from __future__ import annotations

from maild import spool
from maild.app import App
from maild.store.models import Message, SpoolEntry
from maild.worker import make_worker


def _raw(message_id: str, body: str) -> bytes:
    return (
        "From: Carol <carol@customer.test>\r\nTo: support@example.com\r\n"
        f"Subject: Question\r\nMessage-ID: <{message_id}>\r\n\r\n{body}\r\n"
    ).encode()


def _deliver(app: App, raw: bytes) -> SpoolEntry:
    entry_id = spool.enqueue(app.db, raw, source="pipe")
    make_worker(app).run_once(ids=[entry_id])
    return SpoolEntry.get_by_id(entry_id)


def test_long_message_ids_sharing_a_prefix_are_two_messages(app: App) -> None:
    common = "x" * 600
    first = _deliver(app, _raw(f"{common}.1@bulk.test", "first question"))
    second = _deliver(app, _raw(f"{common}.2@bulk.test", "second question"))
    assert first.status == "done" and second.status == "done", (first.result, second.result)
    assert "duplicate" not in second.result, second.result
    assert Message.select().where(Message.direction == "in").count() == 2


def test_the_same_long_message_id_is_still_a_duplicate(app: App) -> None:
    message_id = "y" * 1000 + "@bulk.test"
    _deliver(app, _raw(message_id, "once"))
    again = _deliver(app, _raw(message_id, "once"))
    assert again.status == "done" and "duplicate" in again.result, again.result
    assert Message.select().where(Message.direction == "in").count() == 1
