"""Satisfaction ratings count only from the requester, and only through the survey itself.

Through the real worker with the SLA hook, on SQLite and PostgreSQL: a stranger's "Rating: 1",
the requester's forged subject tag to the plain address, the requester answering the survey
(counted), and a second rating (replaces the first, both audited).
"""

from __future__ import annotations

import datetime as dt

from maild.app import App
from maild.pipeline.addresses import Signer
from maild.sla import lifecycle
from maild.store.db import write_tx
from maild.store.models import Message, Ticket
from tests.mailgen import make_mail
from tests.slakit import deliver, events, fresh, write_rules

T0 = dt.datetime(2026, 11, 2, 9, 0)
H = dt.timedelta(hours=1)


def resolved_ticket(app: App):
    holder = write_rules(app)
    result = deliver(app, holder, make_mail(subject="Printer on fire"), T0).result
    ticket = Ticket.get_by_id(int(result.split()[1].split("-")[1]))
    with write_tx(app.db):
        lifecycle.set_status(
            app, holder.rules, ticket, "resolved", actor="bob@example.com", at=T0 + H
        )
    survey = Message.get((Message.ticket == ticket) & (Message.kind == "survey"))
    return holder, fresh(ticket), f"<{survey.message_id}>"


def signed(app: App, ticket: Ticket) -> str:
    return Signer("ACME", app.secret).reply_address("support@example.com", ticket.id)


def test_a_strangers_rating_never_counts(app: App) -> None:
    holder, ticket, survey_id = resolved_ticket(app)
    ref = f"ACME-{ticket.id}"
    for raw in (
        make_mail(sender="stranger@evil.test", subject=f"[{ref}] Rating: 1", body="1\nAwful.\n"),
        make_mail(
            sender="stranger@evil.test",
            subject=f"Re: [{ref}] How did we do?",
            in_reply_to=survey_id,
            body="1\n",
        ),
    ):
        deliver(app, holder, raw, T0 + 2 * H)
    after = fresh(ticket)
    assert (after.satisfaction_rating, after.status) == (None, "resolved")
    assert events(ticket, "satisfaction") == []


def test_the_requesters_forged_subject_tag_to_the_plain_address_is_no_rating(app: App) -> None:
    holder, ticket, _ = resolved_ticket(app)
    raw = make_mail(subject=f"[ACME-{ticket.id}] Rating: 1", body="1\n")
    deliver(app, holder, raw, T0 + 2 * H)
    after = fresh(ticket)
    assert after.satisfaction_rating is None and events(ticket, "satisfaction") == []
    assert after.status == "open"  # an ordinary reply of the requester


def test_the_requester_answering_the_survey_counts_and_a_second_rating_replaces_it(
    app: App,
) -> None:
    holder, ticket, survey_id = resolved_ticket(app)
    answer = make_mail(
        subject=f"Re: [ACME-{ticket.id}] How did we do?",
        in_reply_to=survey_id,
        body="2\n\nSlow.\n",
    )
    deliver(app, holder, answer, T0 + 2 * H)
    assert (fresh(ticket).satisfaction_rating, fresh(ticket).status) == (2, "resolved")

    address = signed(app, ticket)
    click = make_mail(
        sender="Carol <Carol+phone@customer.test>",  # her address, another form
        to=address,
        subject=f"[ACME-{ticket.id}] Rating: 4",
        body="4\r\n\r\nOn second thought, fine.\r\n",
    )
    deliver(app, holder, click, T0 + 3 * H)
    after = fresh(ticket)
    assert (after.satisfaction_rating, after.satisfaction_comment) == (
        4,
        "On second thought, fine.",
    )
    audit = events(ticket, "satisfaction")
    assert [(e["rating"], e.get("replaced")) for e in audit] == [(2, None), (4, 2)]
    assert after.status == "resolved"
