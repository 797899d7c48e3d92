"""Review 3: only a duplicate Message-ID counts as "duplicate (concurrent)".

The worker caught every IntegrityError of the store transaction and marked the spool row done as
a concurrent duplicate. A constraint violation of any other kind (in a hook, a rule, a future
table) therefore dropped the message silently: done, no ticket message, no retry, no quarantine.
Now the row is done as a duplicate only when the message's de-duplication key is in fact stored;
anything else is a failure that is retried, then quarantined.
"""

from __future__ import annotations

from peewee import IntegrityError

from maild import spool
from maild.app import App
from maild.store.models import Message, SpoolEntry
from maild.worker import Worker
from tests.mailgen import make_mail


def test_an_unrelated_integrity_error_is_retried_not_dropped(app: App) -> None:
    def hook(ctx) -> None:
        raise IntegrityError("NOT NULL constraint failed: something.else")

    entry_id = spool.enqueue(app.db, make_mail(), source="pipe")
    Worker(app, hooks=[hook]).run_once(ids=[entry_id])
    entry = SpoolEntry.get_by_id(entry_id)
    assert entry.status == "pending", entry.result
    assert "IntegrityError" in (entry.last_error or "")
    assert Message.select().count() == 0
    # The same message without the fault is stored normally.
    spool.retry(app.db, entry_id)
    Worker(app).run_once(ids=[entry_id])
    entry = SpoolEntry.get_by_id(entry_id)
    assert entry.status == "done" and entry.result.startswith("new ACME-"), entry.result


def test_a_concurrent_duplicate_is_still_recognised(app: App) -> None:
    raw = make_mail(message_id="<same@customer.test>")
    first = spool.enqueue(app.db, raw, source="pipe")
    Worker(app).run_once(ids=[first])
    second = spool.enqueue(app.db, raw, source="pipe")

    # The second worker's duplicate check runs before the first worker's commit.
    original = Message.get_or_none

    def not_yet(*args, **kwargs):
        return None

    Message.get_or_none = not_yet  # type: ignore[method-assign]
    try:
        Worker(app).run_once(ids=[second])
    finally:
        Message.get_or_none = original  # type: ignore[method-assign]
    entry = SpoolEntry.get_by_id(second)
    assert entry.status == "done" and entry.result == "duplicate (concurrent)", entry.result
    assert Message.select().where(Message.direction == "in").count() == 1
