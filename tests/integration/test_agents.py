"""Agents working by mail, through the real worker on SQLite and PostgreSQL (``any_db_url``).

Replies to a ticket's signed address from an agent run their commands and answer the customer;
notes, invalid commands, notifications, watchers, forgeries and two agents answering at once.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable

import pytest

from maild import spool
from maild.app import App
from maild.stage import Outcome, Stored
from maild.store.db import connection, is_sqlite
from maild.store.models import Message, SpoolEntry, Ticket, Watcher
from maild.worker import make_worker
from tests.agentkit import (
    ALICE,
    ALICE_ADDR,
    CAROL,
    MX,
    ROUTING,
    actions,
    agents_app,
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
    """SQLite and PostgreSQL, with the agents and rules of tests.agentkit."""
    return agents_app(app_factory, any_db_url)


# -- replies -------------------------------------------------------------------------------------


def test_agent_reply_answers_the_customer_and_runs_its_commands(app: App) -> None:
    ticket = new_ticket(app, cc="Dan <dan@customer.test>", message_id="<c1@customer.test>")
    assert ticket.assignee == "alice@example.com"  # round robin in billing
    since = last_outbox()
    deliver(
        app,
        gmail_reply(
            app,
            ticket,
            "#status pending\n#priority high\n#tag +refund\n\n"
            "Hi Carol,\n\nthe refund is on its way.\n\nAlice",
        ),
    )
    ticket = fresh(ticket)
    assert (ticket.status, ticket.priority) == ("pending", "high")
    assert [t.tag for t in ticket.tag_rows] == ["refund"]
    assert ticket.first_response_at is not None
    stored = (
        Message.select()
        .where(Message.ticket == ticket, Message.direction == "in")
        .order_by(Message.id)[-1]
    )
    assert (stored.kind, stored.from_addr) == ("agent", "alice@example.com")
    assert stored.body == "Hi Carol,\n\nthe refund is on its way.\n\nAlice"
    assert actions(ticket, "answered")[0].actor == "alice@example.com"
    assert json.loads(actions(ticket, "rules")[-1].detail)["event"] == "agent_reply"
    ((kind, rcpt, answer),) = mails(ticket, since)
    assert kind == "agent" and rcpt == [CAROL, "dan@customer.test"]  # the customer's CC copied
    assert answer["From"].addresses[0].display_name == "Alice Agent"
    assert answer["From"].addresses[0].addr_spec == "support@example.com"
    assert answer["In-Reply-To"] == "<c1@customer.test>"  # threaded under the customer's mail
    assert answer["Auto-Submitted"] is None
    text = answer.get_content()
    assert "the refund is on its way" in text
    assert "#status" not in text and "#priority" not in text and "printer is on fire" not in text


def test_explicit_status_beats_the_rule_and_a_new_ticket_becomes_open(app: App) -> None:
    ticket = new_ticket(app, subject="Crash on start")  # tech: nobody assigned
    deliver(
        app,
        gmail_reply(
            app, ticket, "#status resolved\nFixed in 2.1.", sender="Dave <dave@example.com>"
        ),
    )
    ticket = fresh(ticket)
    assert ticket.status == "resolved" and ticket.resolved_at is not None
    # Without a #status the rule's "pending" stands; with a rule that does not fire, new -> open.
    other = new_ticket(app, subject="Crash again")
    (app.config.rules_dir / "20-routing.yaml").write_text(ROUTING.split("  - name: Answered")[0])
    deliver(app, gmail_reply(app, other, "Looking into it.", sender="Dave <dave@example.com>"))
    assert fresh(other).status == "open"


def test_close_command(app: App) -> None:
    ticket = new_ticket(app)
    deliver(app, gmail_reply(app, ticket, "#close\nDone, closing."))
    ticket = fresh(ticket)
    assert ticket.status == "closed" and ticket.closed_at is not None
    assert json.loads(actions(ticket, "status")[-1].detail)["reason"] == "#close"


def test_note_is_stored_and_sent_to_nobody(app: App) -> None:
    ticket = new_ticket(app)
    since = last_outbox()
    deliver(
        app, gmail_reply(app, ticket, "#note\n#priority urgent\nCustomer is a reseller, check.")
    )
    ticket = fresh(ticket)
    note = Message.get(Message.ticket == ticket, Message.kind == "note")
    assert note.body == "Customer is a reseller, check."
    assert ticket.priority == "urgent"
    assert ticket.status == "new" and ticket.first_response_at is None  # not an answer
    assert mails(ticket, since) == []
    assert not [
        e for e in actions(ticket, "rules") if json.loads(e.detail)["event"] != "new_ticket"
    ]


def test_an_invalid_command_changes_nothing_and_tells_the_agent(app: App) -> None:
    ticket = new_ticket(app)
    since = last_outbox()
    deliver(app, gmail_reply(app, ticket, "#status pending\n#asign bob\nHello Carol"))
    ticket = fresh(ticket)
    assert (ticket.status, ticket.assignee, ticket.first_response_at) == (
        "new",
        "alice@example.com",
        None,
    )
    assert Message.get(Message.ticket == ticket, Message.kind == "note").body.startswith("#status")
    ((kind, rcpt, warning),) = mails(ticket, since)
    assert (kind, rcpt) == ("auto", ["alice@example.com"])
    text = warning.get_content()
    assert "line 2: #asign bob" in text and "unknown command #asign" in text
    assert (
        warning["Reply-To"].addresses[0].addr_spec.lower()
        == signed(app, ticket, ALICE_ADDR).lower()
    )
    assert json.loads(actions(ticket, "commands_rejected")[0].detail)["errors"][0]["line"] == 2
    assert not actions(ticket, "template_error")


def test_an_empty_reply_sends_the_customer_nothing(app: App) -> None:
    ticket = new_ticket(app)
    since = last_outbox()
    deliver(app, gmail_reply(app, ticket, ""))
    assert mails(ticket, since) == [] and fresh(ticket).status == "new"


def test_watchers_are_edited_with_cc_and_copied(app: App) -> None:
    ticket = new_ticket(app, cc="dan@customer.test, eve@customer.test")
    since = last_outbox()
    deliver(app, gmail_reply(app, ticket, "#cc +fay@partner.test -eve@customer.test\nHello all"))
    assert sorted(w.email for w in Watcher.select().where(Watcher.ticket == ticket)) == [
        "dan@customer.test",
        "fay@partner.test",
    ]
    ((_, rcpt, answer),) = mails(ticket, since)
    assert rcpt == [CAROL, "dan@customer.test", "fay@partner.test"]
    assert [a.addr_spec for a in answer["Cc"].addresses] == [
        "dan@customer.test",
        "fay@partner.test",
    ]


# -- notifications ---------------------------------------------------------------------------------


def notified(ticket: Ticket, since: int) -> list[tuple[str, list[str]]]:
    return [(m["Subject"], rcpt) for kind, rcpt, m in mails(ticket, since) if kind == "notify"]


def test_assignment_by_command_notifies_the_new_assignee_not_oneself(app: App) -> None:
    ticket = new_ticket(app)
    since = last_outbox()
    deliver(app, gmail_reply(app, ticket, "#assign Bob\n#note\nBob knows refunds."))
    ((_, rcpt, mail),) = [m for m in mails(ticket, since) if m[0] == "notify"]
    assert rcpt == ["bob@example.com"]
    text = mail.get_content()
    assert "assigned to you" in text and "by alice@example.com" in text
    assert "my printer is on fire" in text  # the customer's message
    assert not actions(ticket, "template_error")
    assert (
        mail["Reply-To"].addresses[0].addr_spec.lower()
        == signed(app, ticket, "bob@example.com").lower()
    )
    since = last_outbox()
    deliver(
        app, gmail_reply(app, ticket, "#assign me\n#note\nmine now", sender="Bob <bob@example.com>")
    )
    deliver(
        app,
        gmail_reply(
            app,
            ticket,
            "#assign alice@example.com\n#note\nback to you",
            sender="Bob <bob@example.com>",
        ),
    )
    assert notified(ticket, since) == [
        (f"[ACME-{ticket.id}] Refund for invoice 7", ["alice@example.com"])
    ]


def test_assignment_by_rule_notifies_unless_a_rule_notified_already(app: App) -> None:
    (app.config.rules_dir / "20-routing.yaml").write_text(
        ROUTING + "  - name: Refunds to Bob\n    when: {subject: {contains: [refund]}}\n"
        "    then: {assignee: bob@example.com}\n"
        "  - name: Crashes to Dave\n    when: {subject: {contains: [crash]}}\n"
        "    then: {assignee: dave@example.com}\n"
    )
    billing = new_ticket(app)  # notify_new to the team already reached Bob
    # One mail per agent, each with the agent's own signed Reply-To.
    assert [rcpt for _, rcpt in notified(billing, 0)] == [
        ["alice@example.com"],
        ["bob@example.com"],
    ]
    tech = new_ticket(app, subject="Crash on start")
    assert [rcpt for _, rcpt in notified(tech, 0)] == [["dave@example.com"]]


def test_customer_reply_notifies_the_assignee_once_or_the_team(app: App) -> None:
    ticket = new_ticket(app)
    deliver(app, gmail_reply(app, ticket, "#status pending\nPlease send the invoice number."))
    since = last_outbox()
    deliver(app, make_mail(subject=f"Re: [ACME-{ticket.id}] Refund", body="It is 42."))
    assert fresh(ticket).status == "open"  # the customer's reply re-opened it
    assert [rcpt for _, rcpt in notified(ticket, since)] == [
        ["alice@example.com"]
    ]  # rule, not twice
    # Unassigned: the team hears of it (the rule's notify to the assignee resolves to nobody).
    ticket.assignee = None
    ticket.save()
    since = last_outbox()
    deliver(app, make_mail(subject=f"Re: [ACME-{ticket.id}] Refund", body="Hello?"))
    assert [rcpt for _, rcpt in notified(ticket, since)] == [
        ["alice@example.com"],
        ["bob@example.com"],
    ]


# -- trust -------------------------------------------------------------------------------------------


def test_forged_agent_mail_is_a_customer_reply_and_warns_the_agent(app: App) -> None:
    ticket = new_ticket(app)
    since = last_outbox()
    deliver(
        app,
        gmail_reply(
            app, ticket, "#status closed\n#assign Bob\nNever mind.", to="support@example.com"
        ),
    )
    ticket = fresh(ticket)
    assert (ticket.status, ticket.assignee) == ("new", "alice@example.com")  # no command ran
    stored = Message.get(Message.ticket == ticket, Message.from_addr == "alice@example.com")
    assert stored.kind == "customer" and stored.body.startswith("#status closed")
    assert not [m for k, _, m in mails(ticket, since) if k == "agent"]
    ((_, rcpt, warning),) = [m for m in mails(ticket, since) if m[0] == "auto"]
    assert rcpt == ["alice@example.com"]
    assert "could not be verified" in warning.get_content()
    detail = json.loads(actions(ticket, "forgery_suspected")[0].detail)
    assert detail["claimed"] == "alice@example.com" and "signed reply address" in detail["reason"]
    assert not actions(ticket, "template_error")


@pytest.mark.parametrize(
    ("header", "trusted"),
    [
        (f"{MX}; dkim=pass header.d=example.com header.i=@example.com", True),
        (f"{MX}; dmarc=pass header.from=example.com", True),
        ("mx.evil.test; dkim=pass header.d=example.com; dmarc=pass header.from=example.com", False),
        (f"{MX}; dkim=pass header.d=evil.test", False),
        (f"{MX}; dmarc=fail header.from=example.com", False),
    ],
)
def test_authentication_results_to_the_plain_address(app: App, header: str, trusted: bool) -> None:
    ticket = new_ticket(app)
    raw = gmail_reply(app, ticket, "#priority urgent\nOn it.", to="support@example.com")
    received = b"Received: from mail.example.com by mx.example.com (Postfix) id 4Q1\r\n"
    deliver(app, f"Authentication-Results: {header}\r\n".encode() + received + raw)
    assert (fresh(ticket).priority == "urgent") is trusted
    assert bool(actions(ticket, "forgery_suspected")) is not trusted


def test_tampered_signed_address_is_not_trusted(app: App) -> None:
    ticket = new_ticket(app)
    address = signed(app, ticket)
    local, _, domain = address.partition("@")
    tampered = f"{local[:-4]}{'0000' if local[-4:] != '0000' else '1111'}@{domain}"
    deliver(
        app, gmail_reply(app, ticket, "#priority urgent\nOn it.", to=tampered), rcpt=(tampered,)
    )
    assert fresh(ticket).priority == "normal"
    assert actions(ticket, "forgery_suspected")


def test_agent_writing_to_the_plain_address_opens_a_ticket_as_a_customer(app: App) -> None:
    deliver(
        app, make_mail(sender=ALICE, subject="Printer on floor 3", body="#status closed\nBroken.")
    )
    ticket = Ticket.get(Ticket.subject == "Printer on floor 3")
    assert ticket.requester.email == "alice@example.com" and ticket.status == "new"
    assert [k for k, _, _ in mails(ticket)] == ["auto"]  # the acknowledgement, no warning
    # Her replies on her own ticket are the requester's.
    deliver(
        app,
        make_mail(
            sender=ALICE,
            to=signed(app, ticket),
            subject=f"Re: [ACME-{ticket.id}] x",
            body="#status closed\nStill broken.",
        ),
    )
    assert Message.select().where(Message.ticket == ticket, Message.kind == "customer").count() == 2
    assert not actions(ticket, "forgery_suspected")


# -- two agents at once ----------------------------------------------------------------------------


def _waiting_on_a_lock(app: App) -> bool:
    """Whether some other PostgreSQL session of this database waits on a lock."""
    import psycopg

    with psycopg.connect(app.config.database.url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND wait_event_type = 'Lock'"
        ).fetchone()
    return bool(row and row[0])


def test_two_agents_answering_at_once_lose_nothing(app: App) -> None:
    ticket = new_ticket(app)
    first = spool.enqueue(
        app.db, gmail_reply(app, ticket, "#priority high\n#tag +one\nFrom Alice."), source="pipe"
    )
    second = spool.enqueue(
        app.db,
        gmail_reply(
            app, ticket, "#status pending\n#tag +two\nFrom Bob.", sender="Bob <bob@example.com>"
        ),
        source="pipe",
    )
    a_inside, b_started, b_in_stages = threading.Event(), threading.Event(), threading.Event()
    errors: list[BaseException] = []

    def hold(stored: Stored) -> Outcome:
        # A stays inside its transaction until B is blocked by it (PostgreSQL: waits on the
        # ticket's row lock; SQLite: has started) or, were the lock missing, B got this far too.
        a_inside.set()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not b_in_stages.is_set():
            if b_started.is_set() and (is_sqlite(app.db) or _waiting_on_a_lock(app)):
                break
            time.sleep(0.01)
        return Outcome()

    def arrive(stored: Stored) -> Outcome:
        b_in_stages.set()
        return Outcome()

    def run(
        entry_id: int, extra: Callable[[Stored], Outcome], before: threading.Event | None
    ) -> None:
        try:
            worker = make_worker(app)
            worker.stages = (*worker.stages, extra)
            if before is not None:
                before.wait(10)
                b_started.set()
            with connection(app.db):
                worker.run_once(ids=[entry_id])
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    a = threading.Thread(target=run, args=(first, hold, None))
    b = threading.Thread(target=run, args=(second, arrive, a_inside))
    a.start()
    b.start()
    a.join(30)
    b.join(30)
    assert not errors, errors
    for entry_id in (first, second):
        assert SpoolEntry.get_by_id(entry_id).status == "done"
    ticket = fresh(ticket)
    assert (ticket.priority, ticket.status) == ("high", "pending")
    assert sorted(t.tag for t in ticket.tag_rows) == ["one", "two"]
    answers = [rcpt for kind, rcpt, _ in mails(ticket) if kind == "agent"]
    assert answers == [[CAROL], [CAROL]]
    assert sorted(a.actor for a in actions(ticket, "answered")) == [
        "alice@example.com",
        "bob@example.com",
    ]


# -- defects found in agents' mail (commands, spam tickets) and in surveys, with the worker.


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
