"""Review 3: a stranger's mail threaded into someone else's ticket cannot subscribe addresses.

Every To/Cc address of any customer mail that threaded into a ticket became a watcher, and
watchers get the agents' answers in Cc. Ticket numbers are sequential and the subject tag is all
it takes to thread, so an outsider writing "Re: [ACME-1]" with their own second address in Cc
received every later answer on a stranger's ticket. Now only the requester's and the existing
watchers' mail adds watchers (a new ticket's requester adds theirs as before).
"""

from __future__ import annotations

from maild import spool
from maild.app import App
from maild.store.models import Ticket, Watcher
from maild.worker import make_worker
from tests.mailgen import make_mail


def _deliver(app: App, raw: bytes) -> str:
    entry_id = spool.enqueue(app.db, raw, source="pipe")
    make_worker(app).run_once(ids=[entry_id])
    return spool.SpoolEntry.get_by_id(entry_id).result


def _watchers() -> list[str]:
    return sorted(w.email for w in Watcher.select())


def test_a_strangers_cc_does_not_become_a_watcher(app: App) -> None:
    _deliver(app, make_mail(cc="dan@customer.test"))
    ticket = Ticket.get()
    result = _deliver(
        app,
        make_mail(
            subject=f"Re: [ACME-{ticket.id}] Printer on fire",
            sender="Mallory <mallory@evil.test>",
            cc="mallory-inbox@evil.test",
            body="please keep me posted\n",
        ),
    )
    assert result.startswith(f"append ACME-{ticket.id}"), result
    assert _watchers() == ["dan@customer.test"]


def test_the_requester_and_watchers_still_add_watchers(app: App) -> None:
    _deliver(app, make_mail(cc="dan@customer.test"))
    ticket = Ticket.get()
    _deliver(
        app,
        make_mail(
            subject=f"Re: [ACME-{ticket.id}] x", cc="erin@customer.test", body="adding Erin\n"
        ),
    )
    _deliver(
        app,
        make_mail(
            subject=f"Re: [ACME-{ticket.id}] x",
            sender="dan@customer.test",
            cc="frank@customer.test",
            body="and Frank\n",
        ),
    )
    assert _watchers() == ["dan@customer.test", "erin@customer.test", "frank@customer.test"]
