"""Review 3: ``ticketd inject`` exits 0 once the message is spooled, even if processing then fails.

Without ``--spool-only`` inject processes what it spooled. When that step failed in a way the
worker does not catch (the daemon holding the SQLite write lock beyond ``busy_timeout``: "database
is locked" while claiming), the exception escaped: a traceback and exit status 1. An MTA pipe
transport bounces on status 1, so the customer was told their mail failed although it was
spooled and the daemon makes a ticket of it.
"""

from __future__ import annotations

import io

from peewee import OperationalError

from maild.app import App
from maild.intake.pipe import EX_OK, inject
from maild.store.models import SpoolEntry
from maild.worker import Worker
from tests.mailgen import make_mail


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
