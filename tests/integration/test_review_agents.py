"""Review: defects found in agents' mail (commands, spam tickets) and in surveys, with the worker."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from maild.app import App
from maild.store.models import Message, Ticket
from tests.integration.test_agents import (
    CAROL,
    MX,
    PEOPLE,
    ROUTING,
    actions,
    deliver,
    fresh,
    gmail_reply,
    last_outbox,
    mails,
    new_ticket,
    signed,
)
from tests.mailgen import make_mail


@pytest.fixture
def app(app_factory: Callable[..., App], any_db_url: str) -> App:
    made = app_factory(any_db_url, agents={"authserv_id": MX})
    (made.config.rules_dir / "10-people.yaml").write_text(PEOPLE)
    (made.config.rules_dir / "20-routing.yaml").write_text(ROUTING)
    return made


def test_an_overlong_command_line_does_not_send_the_note_below_it(app: App) -> None:
    """A #cc line over the length limit used to end the command block: the #note under it and
    the internal text went to the customer as the answer."""
    ticket = new_ticket(app)
    since = last_outbox()
    many = " ".join(f"+watcher{i}@partner.test" for i in range(60))
    deliver(
        app, gmail_reply(app, ticket, f"#cc {many}\n#note\nInternal: this customer is a fraud.")
    )
    sent = mails(ticket, since)
    assert not [rcpt for kind, rcpt, _ in sent if CAROL in rcpt]
    assert not [m for _, _, m in sent if "fraud" in m.get_content()]
    assert actions(ticket, "commands_rejected")
    assert fresh(ticket).first_response_at is None


def test_survey_rating_after_an_internal_notification_is_still_a_rating(app: App) -> None:
    """Resolving with #assign sends the new assignee a notification after the survey; the
    customer's "5" must still be a rating, not a reply that re-opens the ticket."""
    ticket = new_ticket(app)
    deliver(app, gmail_reply(app, ticket, "#status resolved\n#assign Bob\nRefund sent."))
    assert fresh(ticket).status == "resolved"
    assert [k for k, _, _ in mails(ticket) if k == "survey"]
    survey = Message.get((Message.ticket == ticket) & (Message.kind == "survey"))
    deliver(
        app,
        make_mail(
            subject=f"Re: [ACME-{ticket.id}] Refund for invoice 7",
            in_reply_to=f"<{survey.message_id}>",  # ratings count only through the survey
            body="5\n\nQuick and friendly.",
        ),
    )
    ticket = fresh(ticket)
    assert (ticket.status, ticket.satisfaction_rating) == ("resolved", 5)


def test_a_trusted_agent_mail_on_a_spam_ticket_is_not_silently_dropped(app: App) -> None:
    (app.config.rules_dir / "20-routing.yaml").write_text(
        ROUTING + "  - name: Spam\n    when: {subject: {contains: [casino]}}\n"
        "    then: {spam: true}\n"
    )
    ticket = new_ticket(app, subject="Refund for casino invoice")
    assert fresh(ticket).spam and fresh(ticket).status == "closed"
    since = last_outbox()
    deliver(app, gmail_reply(app, ticket, "#status open\nSorry, our filter caught your mail."))
    ticket = fresh(ticket)
    stored = (
        Message.select()
        .where(Message.ticket == ticket, Message.direction == "in")
        .order_by(Message.id)[-1]
    )
    sent = [kind for kind, _, _ in mails(ticket, since)]
    # Either applied (answer sent / status changed) or the agent is told; never nothing at all.
    assert ticket.status == "open" or sent, (stored.kind, sent)
    assert not (stored.kind == "agent" and "agent" not in sent)
    assert (ticket.status, ticket.spam) == ("open", False)
    # Re-opened, it is a ticket again: the customer's reply reaches the assignee.
    since = last_outbox()
    deliver(app, make_mail(subject=f"Re: [ACME-{ticket.id}] casino", body="Thanks, so my refund?"))
    assert [k for k, _, _ in mails(ticket, since) if k == "notify"]


def test_rating_a_closed_ticket_by_the_survey_link_starts_no_followup(app: App) -> None:
    ticket = new_ticket(app)
    deliver(app, gmail_reply(app, ticket, "#status resolved\nRefund sent."))
    deliver(app, gmail_reply(app, ticket, "#close\n#note\nclosing"))
    assert fresh(ticket).status == "closed"
    before = Ticket.select().count()
    link = signed(app, ticket)  # where the survey's mailto links write
    deliver(app, make_mail(to=link, subject=f"[ACME-{ticket.id}] Rating: 4", body="4\r\n\r\n"))
    assert Ticket.select().count() == before
    assert fresh(ticket).satisfaction_rating == 4


def test_ok_but_still_broken_reopens(app: App) -> None:
    ticket = new_ticket(app)
    deliver(app, gmail_reply(app, ticket, "#status resolved\nRefund sent."))
    deliver(
        app,
        make_mail(
            subject=f"Re: [ACME-{ticket.id}] Refund for invoice 7",
            body="Ok, but the refund has not arrived yet. Please check again.",
        ),
    )
    assert fresh(ticket).status == "open"
