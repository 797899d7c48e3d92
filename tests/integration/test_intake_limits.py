"""Limits on what one mail can do: watchers per ticket, and a sender the spool cannot keep."""

from __future__ import annotations

import io

from maild import spool
from maild.app import App
from maild.intake.pipe import EX_DATAERR, inject
from maild.store.models import SpoolEntry, Ticket, Watcher
from maild.store.tickets import MAX_WATCHERS
from maild.worker import make_worker
from tests.mailgen import make_mail


def test_a_mail_copying_a_whole_company_adds_at_most_the_cap(app: App) -> None:
    cc = ", ".join(f"person{i}@customer.test" for i in range(MAX_WATCHERS + 30))
    entry = spool.enqueue(app.db, make_mail(cc=cc), source="pipe")
    make_worker(app).run_once(ids=[entry])
    ticket = Ticket.get()
    assert Watcher.select().where(Watcher.ticket == ticket).count() == MAX_WATCHERS


def test_inject_refuses_a_sender_the_spool_cannot_keep(app: App) -> None:
    out, err = io.StringIO(), io.StringIO()
    status = inject(
        app, [], stdin=io.BytesIO(make_mail()), mail_from="a" * 320 + "@x.test", out=out, err=err
    )
    assert status == EX_DATAERR and "--from is longer than 320" in err.getvalue()
    assert SpoolEntry.select().count() == 0
