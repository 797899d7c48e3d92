"""What an agent attaches to a reply reaches the customer; a note's attachments stay inside."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from maild.app import App
from tests.agentkit import agents_app, deliver, fresh, gmail_reply, last_outbox, mails, new_ticket


@pytest.fixture
def app(app_factory: Callable[..., App], any_db_url: str) -> App:
    """SQLite and PostgreSQL, with the agents and rules of tests.agentkit."""
    return agents_app(app_factory, any_db_url)


def test_agent_attachments_reach_the_customer(app: App) -> None:
    ticket = new_ticket(app)
    since = last_outbox()
    pdf = b"%PDF-1.4 refund confirmation"
    deliver(
        app,
        gmail_reply(
            app,
            ticket,
            "Hi Carol,\n\nthe confirmation is attached.",
            attachments=[("refund.pdf", "application/pdf", pdf)],
        ),
    )
    ((kind, _rcpt, answer),) = mails(ticket, since)
    assert kind == "agent"
    (part,) = answer.iter_attachments()
    assert (part.get_filename(), part.get_content_type(), part.get_content()) == (
        "refund.pdf",
        "application/pdf",
        pdf,
    )
    assert "the confirmation is attached" in answer.get_body(("plain",)).get_content()


def test_a_notes_attachments_are_not_sent(app: App) -> None:
    ticket = new_ticket(app)
    since = last_outbox()
    deliver(
        app,
        gmail_reply(
            app,
            ticket,
            "#note\nthe customer's contract",
            attachments=[("c.pdf", "application/pdf", b"x")],
        ),
    )
    assert [k for k, _, _ in mails(ticket, since) if k == "agent"] == []
    assert fresh(ticket).status == "new"


def test_an_answer_that_cannot_be_sent_is_reported_to_the_agent(app: App) -> None:
    from maild.store.models import Contact

    ticket = new_ticket(app)
    Contact.update(email="carol@bad address.test").where(  # no longer a deliverable address
        Contact.id == ticket.requester_id
    ).execute()
    since = last_outbox()
    deliver(app, gmail_reply(app, ticket, "Hi Carol,\n\nhere is your answer."))
    ((kind, rcpt, warning),) = mails(ticket, since)
    assert (kind, rcpt) == ("auto", ["alice@example.com"])
    text = warning.get_body(("plain",)).get_content()
    assert "could not be sent" in text and "no valid recipient" in text
    assert fresh(ticket).first_response_at is None  # nobody was answered
