"""What features promise each other: merges keep answers on their channel and trust on both
numbers, locks keep concurrent changes, form/API/Slack messages are a person's, archives, spam and
erased people stay out of webhooks, Slack texts are escaped, roles count on both tickets."""

from __future__ import annotations

import json
import uuid

import pytest

from maild.app import App
from maild.store.models import Event, Message, Ticket, WebhookDelivery
from tests.mailgen import make_mail
from tests.servers.deskmail import agent_reply, deliver, last_outbox, outbox
from tests.servers.fixtures import WEBHOOK_SECRET
from tests.webhookkit import SECRET_ENV
from tests.webhookkit import deliver as deliver_hooks

PEOPLE = """\
agents:
  - {email: lena@example.com, name: Lena, teams: [billing], role: lead}
teams:
  billing: {assign: none}
"""
LENA = "Lena <lena@example.com>"


def _api_ticket(app: App, sender: str, subject: str) -> Ticket:
    from maild.web.api import store as api_store
    from maild.web.inbound import build_message
    from maild.worker import make_worker

    raw = build_message(
        from_email=sender,
        from_name="Erin",
        to="support@example.com",
        subject=subject,
        text="Code 7.",
        now=app.clock.now(),
        source="api",
        client="127.0.0.1",
        message_id=f"api.chat.{uuid.uuid4().hex}@example.com",
    )
    api_store(
        app.db,
        raw,
        channel="chat",
        external_id=uuid.uuid4().hex,
        mail_from=sender,
        rcpt="support@example.com",
    )
    make_worker(app).run_once()
    return Ticket.get(Ticket.subject == subject)


@pytest.fixture
def chat_app(app_factory, receiver, monkeypatch) -> App:
    monkeypatch.setenv(SECRET_ENV, WEBHOOK_SECRET)
    monkeypatch.setenv("TICKETD_TEST_CHAT_TOKEN", "chat-token-0123456789abcdef")
    channel = {
        "name": "chat",
        "token_env": "TICKETD_TEST_CHAT_TOKEN",
        "reply_url": receiver.url,
        "reply_secret_env": SECRET_ENV,
        "allow_private": True,
    }
    app = app_factory(http={"channels": [channel]})
    (app.config.rules_dir / "10-people.yaml").write_text(PEOPLE)
    return app


def test_after_merging_a_chat_ticket_into_a_mail_ticket_answers_still_reach_the_mail_customer(
    chat_app: App, receiver
) -> None:
    """origin() is the channel of the ticket's *oldest* message; after a merge the target
    holds the source's older messages, so answers to the mail customer go to the chat channel."""
    from maild.cli.ticket_admin import merge_ticket

    app = chat_app
    chat = _api_ticket(app, "erin@customer.example", "Chat: cannot pay")  # older
    deliver(
        app,
        make_mail(
            sender="carol@customer.test",
            subject="Invoice wrong",
            message_id=f"<{uuid.uuid4().hex}@customer.test>",
        ),
    )
    mail = Ticket.get(Ticket.subject == "Invoice wrong")
    merge_ticket(app, f"ACME-{chat.id}", f"ACME-{mail.id}")
    deliver_hooks(app)
    receiver.received.clear()
    since = last_outbox()
    entry = deliver(app, agent_reply(app, mail, "Carol, your invoice is fixed.", sender=LENA))
    deliver_hooks(app)
    print("spool result:", entry.result)
    to_carol = [m for _k, rcpt, m in outbox(mail, since) if "carol@customer.test" in rcpt]
    posted = [d for d in WebhookDelivery.select() if b"your invoice is fixed" in bytes(d.body)]
    assert to_carol, f"the mail customer got no answer ({entry.result})"
    assert not posted, f"Carol's answer was posted to {posted[0].target}"


def test_an_agent_answering_a_merged_tickets_notification_is_trusted(app_factory) -> None:
    """mail to the agent's signed address of a merged ticket threads to the target, but
    trust.check compares the address's ticket number with the target's: a forgery warning."""
    app = app_factory()
    (app.config.rules_dir / "10-people.yaml").write_text(PEOPLE)
    for subject in ("one", "two"):
        deliver(
            app,
            make_mail(
                sender="carol@customer.test",
                subject=subject,
                message_id=f"<{uuid.uuid4().hex}@customer.test>",
            ),
        )
    source, target = Ticket.get(Ticket.subject == "one"), Ticket.get(Ticket.subject == "two")
    deliver(app, agent_reply(app, source, f"#merge ACME-{target.id}", sender=LENA))
    assert Ticket.get_by_id(source.id).status == "closed"
    # Lena answers the notification she had about ACME-<source> (its signed agent address).
    deliver(app, agent_reply(app, source, "#priority high\nWe are on it.", sender=LENA))
    t = Ticket.get_by_id(target.id)
    forged = Event.select().where((Event.ticket == t) & (Event.action == "forgery_suspected"))
    kinds = [m.kind for m in Message.select().where(Message.ticket == t).order_by(Message.id)]
    assert t.priority == "high", (
        f"command ignored; message kinds {kinds}, warnings {forged.count()}"
    )


def test_privacy_erase_removes_the_persons_webhook_deliveries(app_factory, monkeypatch) -> None:
    """webhook_delivery.body holds the ticket and message of the person; erase leaves them
    (and a queued one is still posted after the erase)."""
    from maild.ops.privacy import erase
    from maild.webhooks.sender import WebhookSender, load_targets

    monkeypatch.setenv(SECRET_ENV, WEBHOOK_SECRET)
    hook = {
        "name": "crm",
        "url": "http://127.0.0.1:9/",
        "secret_env": SECRET_ENV,
        "allow_private": True,
    }
    app = app_factory(webhooks=[hook])
    deliver(
        app,
        make_mail(
            sender="carol@customer.test", subject="My secret problem", body="my card number is 4111"
        ),
    )
    WebhookSender(app, load_targets(app.config)).fan_out.run_once()
    assert WebhookDelivery.select().count() >= 1
    erase(app, "carol@customer.test", actor="admin:test")
    left = [
        d.id
        for d in WebhookDelivery.select()
        if b"carol@customer.test" in bytes(d.body) or b"4111" in bytes(d.body)
    ]
    assert not left, f"deliveries {left} still carry the erased person's data"


def test_an_archive_import_sends_nothing_to_webhooks(app_factory, monkeypatch) -> None:
    """--archive promises "nothing is sent", but the worker's add_event leaves
    webhook_pending rows for every historical ticket and message (ticket.created /
    message.created go out), while close_imported's status events bypass add_event (receivers
    never hear the tickets were closed)."""
    from maild.ops.importer import Importer
    from maild.ops.sources import Item
    from maild.webhooks.sender import WebhookSender, load_targets

    monkeypatch.setenv(SECRET_ENV, WEBHOOK_SECRET)
    hook = {
        "name": "crm",
        "url": "http://127.0.0.1:9/",
        "secret_env": SECRET_ENV,
        "allow_private": True,
    }
    app = app_factory(webhooks=[hook])
    items = [
        Item(f"m{i}", make_mail(sender=f"c{i}@customer.test", subject=f"old {i}")) for i in range(3)
    ]
    Importer(app, archive=True).run(items, lambda it: it)
    WebhookSender(app, load_targets(app.config)).fan_out.run_once()
    events = sorted(d.event for d in WebhookDelivery.select())
    assert events == [], f"an archive import queued webhook deliveries: {events}"


def test_spam_is_not_announced_to_webhooks(app_factory, monkeypatch) -> None:
    """rules/20-routing.yaml: spam is "kept, but closed, and nobody is told"; the webhook
    events of the spam ticket (created, message, tag, status) all go out, e.g. to a chat hook."""
    from maild.webhooks.sender import WebhookSender, load_targets

    monkeypatch.setenv(SECRET_ENV, WEBHOOK_SECRET)
    hook = {"name": "chat", "url": "http://127.0.0.1:9/", "format": "slack", "allow_private": True}
    app = app_factory(webhooks=[hook])
    (app.config.rules_dir / "20-routing.yaml").write_text(
        "rules:\n  - name: Spam\n    when: {subject: {contains: viagra}}\n"
        "    then: {spam: true, tags: [spam]}\n    stop: true\n"
    )
    deliver(app, make_mail(sender="spammer@junk.test", subject="cheap viagra"))
    assert Ticket.get_by_id(1).spam
    WebhookSender(app, load_targets(app.config)).fan_out.run_once()
    posted = [(d.event, bytes(d.body)[:80]) for d in WebhookDelivery.select()]
    assert posted == [], f"the spam ticket was announced: {posted}"


def test_tickets_set_does_not_undo_a_reply_that_committed_meanwhile(
    app_factory, pg_url, monkeypatch
) -> None:
    """`tickets set` (and `tickets merge`) read the ticket without the row lock the worker
    takes (store.locked_ticket) and then save() every column: a customer's reply that
    re-opened the ticket in between is undone (status back to pending)."""
    import threading

    from maild.cli import ticket_admin
    from maild.sla import lifecycle
    from maild.store.db import write_tx
    from tests.conftest import _truncate_pg

    _truncate_pg(pg_url)
    app = app_factory(pg_url)
    mid = f"<{uuid.uuid4().hex}@customer.test>"
    deliver(app, make_mail(sender="carol@customer.test", subject="Printer", message_id=mid))
    with write_tx(app.db):
        lifecycle.set_status(
            app, None, Ticket.get_by_id(1), "pending", actor="x", at=app.clock.now()
        )
    original = lifecycle.apply_change
    fired: list[threading.Thread] = []

    def racing(*args, **kw):
        if not fired:  # the customer's reply comes in while the CLI's transaction is open

            def reply() -> None:
                app.db.connect(reuse_if_open=True)
                deliver(
                    app,
                    make_mail(
                        sender="carol@customer.test",
                        subject="Re: [ACME-1] Printer",
                        in_reply_to=mid,
                        body="still broken",
                    ),
                )
                app.db.close()

            t = threading.Thread(target=reply)
            fired.append(t)
            t.start()
            t.join(2)  # it waits for the CLI's row lock (or, without one, overwrites first)
        return original(*args, **kw)

    monkeypatch.setattr(lifecycle, "apply_change", racing)
    ticket_admin.set_fields(
        app, "ACME-1", status=None, priority="high", team=None, assign=None, fields=[], tags=[]
    )
    fired[0].join(30)
    assert not fired[0].is_alive()
    app.db.close()
    app.db.connect()
    t = Ticket.get_by_id(1)
    reopened = Event.select().where((Event.ticket == t) & (Event.action == "status")).count()
    assert t.priority == "high"
    assert t.status == "open", f"the reply's re-open was overwritten ({reopened} status events)"


@pytest.mark.parametrize("source", ["web", "api", "slack"])
def test_a_message_we_built_from_a_form_api_or_slack_is_never_dropped_as_an_autoreply(
    app_factory, source
) -> None:
    """messages built by our own HTTP intake carry no robot headers, but the classifier's
    subject patterns still apply: a web form / API / Slack message whose subject (for Slack the
    first line of the text) reads "Out of Office ..." is "ignored: autoreply that concerns no
    ticket" after the client was told it was received; "Auto: ..." becomes a robot ticket with
    no rules, SLA, notifications or acknowledgement."""
    from maild import spool
    from maild.store.models import SpoolEntry
    from maild.web.inbound import build_message
    from maild.worker import make_worker

    app = app_factory()
    ids = []
    for subject in ("Automatic reply: was sent twice, order 7", "Auto: my car insurance"):
        raw = build_message(
            from_email="carol@customer.test",
            from_name="Carol",
            to="support@example.com",
            subject=subject,
            text="Please help.",
            now=app.clock.now(),
            source=source,
            client="192.0.2.1",
        )
        ids.append(
            spool.enqueue(
                app.db,
                raw,
                source=source,
                mail_from="carol@customer.test",
                rcpt_tos=["support@example.com"],
            )
        )
    make_worker(app).run_once(ids=ids)
    results = [SpoolEntry.get_by_id(i).result for i in ids]
    assert all(r.startswith("new ") and "(human)" in r for r in results), results


def test_slack_format_escapes_customer_text(app_factory) -> None:
    """Slack mrkdwn needs &, < and > escaped; a customer's subject/body goes in raw, so
    "<!channel>" pings the whole channel and "<https://evil|text>" is a disguised link."""
    from maild.webhooks.sender import WebhookSender, load_targets

    hook = {"name": "chat", "url": "http://127.0.0.1:9/", "format": "slack", "allow_private": True}
    app = app_factory(webhooks=[hook])
    deliver(
        app,
        make_mail(
            sender="carol@customer.test",
            subject="<!channel> <https://evil.test/login|Reset your password>",
        ),
    )
    WebhookSender(app, load_targets(app.config)).fan_out.run_once()
    text = json.loads(bytes(WebhookDelivery.get().body))["text"]
    assert "<!channel>" not in text and "<https://evil.test" not in text, text


def test_a_lead_cannot_merge_into_another_teams_ticket(app_factory) -> None:
    """roles.py: a lead acts "on tickets of its teams"; #merge is checked against the
    source's team only, so a billing lead merges a ticket (one they opened from any address)
    into a tech ticket: its requester becomes a watcher there and gets every answer to the
    tech customer in Cc."""
    app = app_factory()
    (app.config.rules_dir / "10-people.yaml").write_text(
        PEOPLE.replace(
            "teams:\n  billing: {assign: none}",
            "teams:\n  billing: {assign: none}\n  tech: {assign: none}",
        )
    )
    for sender, subject in (("victim@customer.test", "tech secret"), ("mallory@evil.test", "mine")):
        deliver(
            app,
            make_mail(sender=sender, subject=subject, message_id=f"<{uuid.uuid4().hex}@x.test>"),
        )
    victim, mine = Ticket.get(Ticket.subject == "tech secret"), Ticket.get(Ticket.subject == "mine")
    Ticket.update(team="tech").where(Ticket.id == victim.id).execute()
    Ticket.update(team="billing").where(Ticket.id == mine.id).execute()
    deliver(app, agent_reply(app, mine, f"#merge ACME-{victim.id}", sender=LENA))
    watchers = [w.email for w in Ticket.get_by_id(victim.id).watchers]
    assert "mallory@evil.test" not in watchers, f"merged into team tech's ticket: {watchers}"
