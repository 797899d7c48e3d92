"""Signed webhooks against a real receiver on loopback that verifies with the reference library."""

from __future__ import annotations

import json
import time

import pytest

from maild.errors import ConfigError
from maild.store.models import WebhookDelivery, WebhookPending
from maild.webhooks.admin import retry, send_test
from maild.webhooks.targets import load_hooks
from tests.conftest import counted_statements
from tests.servers.fixtures import WEBHOOK_SECRET
from tests.servers.receiver import Receiver
from tests.webhookkit import SECRET_ENV, deliver, deliver_until_settled, hook, hook_app, mail_in


@pytest.fixture(autouse=True)
def _secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(SECRET_ENV, WEBHOOK_SECRET)


def test_a_new_ticket_is_posted_signed_with_the_documented_payload(
    app_factory, any_db_url, receiver
):
    app = hook_app(app_factory, any_db_url, hook(receiver.url))
    mail_in(app, subject="Printer on fire")
    assert deliver(app) == 1
    (got,) = receiver.wait_for(1)
    assert got.verified and got.webhook_id.startswith("msg_")
    body = got.payload
    assert body["version"] == 1 and body["event"] == "ticket.created"
    assert body["ticket"]["ref"] == "ACME-1" and body["ticket"]["subject"] == "Printer on fire"
    assert "messages" not in body["ticket"] and "events" not in body["ticket"]
    assert body["message"]["from"] == "carol@customer.test"
    assert "printer is on fire" in body["message"]["body"]
    assert WebhookPending.select().count() == 0


def test_a_wrong_secret_fails_the_reference_verification(app_factory, receiver, monkeypatch):
    monkeypatch.setenv(SECRET_ENV, "whsec_" + "QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFB")
    app = hook_app(app_factory, None, hook(receiver.url))
    mail_in(app)
    deliver(app)
    (got,) = receiver.wait_for_requests(1)
    assert not got.verified


def test_status_and_priority_changes_say_which_fields_changed(app_factory, receiver):
    app = hook_app(app_factory, None, hook(receiver.url, events=["ticket.updated"]))
    mail_in(app)
    from maild.sla import lifecycle
    from maild.store import tickets as store
    from maild.store.db import write_tx
    from maild.store.models import Ticket

    with write_tx(app.db):
        ticket = Ticket.get_by_id(1)
        lifecycle.set_status(
            app, None, ticket, "pending", actor="alice@example.com", at=app.clock.now()
        )
        store.set_field(ticket, "priority", "urgent", actor="alice@example.com", at=app.clock.now())
    deliver(app)
    got = receiver.wait_for(2)
    changes = [r.payload["changes"] for r in got]
    assert {"status": {"old": "new", "new": "pending"}} in changes
    assert {"priority": {"old": "normal", "new": "urgent"}} in changes
    assert all(r.payload["event"] == "ticket.updated" for r in got)


def test_a_hook_gets_only_the_events_it_lists(app_factory, receiver):
    app = hook_app(app_factory, None, hook(receiver.url, events=["message.created"]))
    mail_in(app, message_id="<first@customer.test>")
    mail_in(
        app,
        subject="Re: [ACME-1] Printer on fire",
        in_reply_to="<first@customer.test>",
        body="Still burning.",
    )
    deliver(app)
    got = receiver.wait_for(1)
    assert [r.payload["event"] for r in got] == ["message.created"]
    assert got[0].payload["message"]["body"].startswith("Still burning")


def test_a_receiver_answering_500_gets_it_again_with_the_same_webhook_id(app_factory, receiver):
    app = hook_app(app_factory, None, hook(receiver.url, max_attempts=5))
    receiver.answer("500")
    mail_in(app)
    deliver_until_settled(app)
    assert len(receiver.received) == 5  # five attempts with backoff, then failed
    row = WebhookDelivery.get()
    assert row.status == "failed" and row.last_status == 500
    assert "gave up after 5 attempts: 500" in row.last_error
    receiver.answer("ok")
    retry(app, row.id)
    deliver(app)
    ids = {r.webhook_id for r in receiver.received}
    assert ids == {row.webhook_id}
    assert WebhookDelivery.get().status == "sent"


def test_429_waits_for_retry_after(app_factory, receiver):
    app = hook_app(app_factory, None, hook(receiver.url))
    receiver.answer("429")
    mail_in(app)
    started = time.monotonic()
    deliver(app)  # one attempt; the next is not due before Retry-After (capped at max_retry)
    row = WebhookDelivery.get()
    assert row.status == "queued" and row.last_status == 429
    assert (row.next_attempt_at - app.clock.now()).total_seconds() > 0.1
    receiver.answer("ok")
    deliver_until_settled(app)
    assert time.monotonic() - started >= 0.15
    assert receiver.wait_for(1)[0].webhook_id == row.webhook_id


def test_a_client_error_fails_at_once_with_the_answer(app_factory, receiver):
    app = hook_app(app_factory, None, hook(receiver.url))
    receiver.answer("400")
    mail_in(app)
    deliver(app)
    row = WebhookDelivery.get()
    assert row.status == "failed" and row.attempts == 1 and "400" in row.last_error


def test_a_redirect_is_not_followed(app_factory, receiver):
    app = hook_app(app_factory, None, hook(receiver.url))
    receiver.answer("redirect")
    mail_in(app)
    deliver(app)
    row = WebhookDelivery.get()
    assert row.status == "failed" and "not followed" in row.last_error
    assert len(receiver.received) == 1


def test_a_hanging_receiver_is_cut_off_by_the_timeout(app_factory, receiver):
    app = hook_app(app_factory, None, hook(receiver.url, timeout_seconds=0.5, max_attempts=1))
    receiver.answer("hang")
    mail_in(app)
    started = time.monotonic()
    deliver(app)
    assert time.monotonic() - started < 5
    row = WebhookDelivery.get()
    assert row.status == "failed" and "timed out after 0.5s" in row.last_error


def test_a_name_resolving_to_loopback_is_refused_after_resolution(app_factory, receiver):
    import socket

    name = socket.gethostname()  # a name of this machine: it resolves to one of its addresses
    url = receiver.url.replace("127.0.0.1", name)
    app = hook_app(app_factory, None, hook(url, allow_private=False))
    mail_in(app)
    deliver(app)
    row = WebhookDelivery.get()
    assert row.status == "failed" and "refused" in row.last_error
    assert f"{name} resolves to" in row.last_error
    assert "loopback" in row.last_error or "private" in row.last_error
    assert receiver.received == []


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("http://127.0.0.1:9/hook", "loopback"),
        ("http://10.1.2.3/hook", "private"),
        ("http://169.254.169.254/latest/meta-data", "link-local"),
        ("http://[::1]/hook", "loopback"),
        ("http://localhost/hook", "loopback"),
        ("http://[::ffff:192.168.1.1]/x", "private"),
    ],
)
def test_a_literal_private_destination_is_a_config_error(app_factory, url, why):
    app = app_factory(webhooks=[hook(url, allow_private=False)])
    with pytest.raises(ConfigError, match=why):
        load_hooks(app.config)


def test_a_missing_secret_is_a_config_error_naming_the_key(app_factory, monkeypatch):
    monkeypatch.delenv(SECRET_ENV)
    app = app_factory(webhooks=[hook("https://crm.example.com/in")])
    with pytest.raises(
        ConfigError, match=rf"webhooks\[0\]\.secret_env: environment variable {SECRET_ENV}"
    ):
        load_hooks(app.config)


def test_a_secret_that_is_not_a_standard_webhooks_secret_is_refused(app_factory, monkeypatch):
    monkeypatch.setenv(SECRET_ENV, "hunter2")
    app = app_factory(webhooks=[hook("https://crm.example.com/in")])
    with pytest.raises(ConfigError, match="whsec_"):
        load_hooks(app.config)


def test_a_receiver_down_for_a_while_gets_every_event_in_order(app_factory, receiver):
    app = hook_app(app_factory, None, hook(receiver.url, max_attempts=100))
    receiver.answer("down")
    mail_in(app, message_id="<first@customer.test>")
    for n in range(4):
        mail_in(
            app,
            subject="Re: [ACME-1] Printer on fire",
            message_id=f"<r{n}@customer.test>",
            body=f"Update {n}",
        )
    mail_in(app, subject="Another ticket", message_id="<second@customer.test>")
    for _ in range(3):
        deliver(app)
    assert receiver.received == []
    receiver.answer("ok")
    deliver_until_settled(app)
    got = receiver.wait_for(6)
    first = [r.payload for r in got if r.payload["ticket"]["ref"] == "ACME-1"]
    assert [p["event"] for p in first] == ["ticket.created", *["message.created"] * 4]
    assert [p["message"]["body"].strip() for p in first[1:]] == [f"Update {n}" for n in range(4)]


def test_internal_notes_go_only_to_hooks_that_ask(app_factory, receiver):
    from maild.store import tickets as store
    from maild.store.db import write_tx
    from maild.store.models import Message, Ticket

    app = hook_app(
        app_factory,
        None,
        hook(receiver.url, name="public", events=["message.created"]),
        hook(receiver.url, name="notes", events=["message.created"], include_notes=True),
    )
    mail_in(app)
    with write_tx(app.db):
        ticket = Ticket.get_by_id(1)
        note = Message.create(
            ticket=ticket,
            direction="in",
            kind="note",
            message_id="n1@x",
            dedup_key="n1",
            from_addr="alice@example.com",
            body="internal: refund approved",
        )
        store.add_event(
            ticket, "agent_note", actor="alice@example.com", at=app.clock.now(), message=note
        )
    deliver(app)
    got = receiver.wait_for(1)
    assert len(got) == 1 and got[0].payload["message"]["body"] == "internal: refund approved"
    assert WebhookDelivery.select().where(WebhookDelivery.target == "hook:public").count() == 0


def test_slack_format_posts_text_and_blocks_from_the_template(app_factory, receiver):
    app = hook_app(app_factory, None, hook(receiver.url, format="slack", events=["ticket.created"]))
    mail_in(app, subject="VPN is down")
    deliver(app)
    (got,) = receiver.wait_for(1)
    assert "*New ticket ACME-1*: VPN is down" in got.payload["text"]
    assert got.payload["blocks"][0]["text"]["type"] == "mrkdwn"


def test_webhooks_test_sends_a_signed_test_event(app_factory, receiver):
    app = hook_app(app_factory, None, hook(receiver.url))
    outcome, webhook_id = send_test(app, "crm")
    assert outcome.ok
    (got,) = receiver.wait_for(1)
    assert got.webhook_id == webhook_id and got.payload["event"] == "webhook.test"


def test_without_hooks_pending_events_are_dropped_and_nothing_is_queued(app_factory):
    app = app_factory()
    mail_in(app)
    assert WebhookPending.select().count() >= 1
    deliver(app)
    assert WebhookPending.select().count() == 0 and WebhookDelivery.select().count() == 0


def test_the_list_shows_deliveries_as_json(app_factory, receiver):
    from maild.webhooks.admin import rows

    app = hook_app(app_factory, None, hook(receiver.url))
    receiver.answer("400")
    mail_in(app)
    deliver(app)
    (row,) = rows(app, everything=False)
    assert (
        row["status"] == "failed" and row["event"] == "ticket.created" and row["ticket"] == "ACME-1"
    )
    json.dumps(row)


def test_receiver_fixture_is_a_real_server(receiver: Receiver):
    assert receiver.url.startswith("http://127.0.0.1:")


def test_answers_on_an_api_channel_ticket_are_posted_to_its_reply_url_not_mailed(
    app_factory, receiver, monkeypatch
):
    from maild.agents.reply import answer
    from maild.notify.templates import Renderer
    from maild.pipeline.message import Address
    from maild.store import tickets as store
    from maild.store.db import write_tx
    from maild.store.models import Message, OutboxEntry, Ticket
    from maild.web.api import store as api_store
    from maild.web.inbound import build_message
    from maild.worker import make_worker

    monkeypatch.setenv("TICKETD_TEST_CHAT_TOKEN", "chat-token-0123456789abcdef")
    channel = {
        "name": "chat",
        "token_env": "TICKETD_TEST_CHAT_TOKEN",
        "reply_url": receiver.url,
        "reply_secret_env": SECRET_ENV,
        "allow_private": True,
    }
    app = app_factory(http={"channels": [channel]})
    raw = build_message(
        from_email="erin@customer.example",
        from_name="Erin",
        to="support@example.com",
        subject="Chat: cannot pay",
        text="Code 7.",
        now=app.clock.now(),
        source="api",
        client="127.0.0.1",
        message_id="api.chat.abc@example.com",
    )
    api_store(
        app.db,
        raw,
        channel="chat",
        external_id="m-1",
        mail_from="erin@customer.example",
        rcpt="support@example.com",
    )
    make_worker(app).run_once()
    before = OutboxEntry.select().count()
    with write_tx(app.db):
        ticket = Ticket.get_by_id(1)
        reply = Message.create(
            ticket=ticket,
            direction="in",
            kind="agent",
            message_id="a1@x",
            dedup_key="a1",
            from_addr="alice@example.com",
            body="Please retry now.",
        )
        sent = answer(
            app,
            Renderer(app.config.templates_dir),
            ticket,
            reply,
            Address("alice@example.com", "Alice"),
        )
        assert sent.ok
        store.add_event(
            ticket, "answered", actor="alice@example.com", at=app.clock.now(), message=reply
        )
    assert sent.words == ("answer goes back to channel chat",)
    assert OutboxEntry.select().count() == before  # not mailed
    deliver(app)
    (got,) = receiver.wait_for(1)
    assert got.verified and got.payload["event"] == "message.created"
    assert got.payload["message"]["body"] == "Please retry now."
    assert got.payload["ticket"]["requester"] == "erin@customer.example"


def test_a_fan_out_batch_takes_the_same_number_of_queries_whatever_its_length(
    app_factory, any_db_url, receiver
):
    from maild.webhooks.queue import FanOut
    from maild.webhooks.sender import load_targets

    app = hook_app(app_factory, any_db_url, hook(receiver.url, events=["ticket.created"]))
    hooks = [t for k, t in load_targets(app.config).items() if k.startswith("hook:")]
    sizes = []
    for n in (3, 30):
        for i in range(n):
            mail_in(app, subject=f"Batch {n}.{i}", message_id=f"<b{n}.{i}@customer.test>")
        with counted_statements() as counted:
            assert FanOut(app, hooks, {}).run_once() == n
        sizes.append(len(counted))
    assert sizes[0] == sizes[1], (sizes, "\n".join(q[:150] for q in counted))
    assert WebhookDelivery.select().count() == 33
    assert WebhookPending.select().count() == 0


def test_an_event_that_cannot_be_fanned_out_holds_up_no_other(app_factory, receiver, caplog):
    from maild.store.models import Event

    app = hook_app(app_factory, None, hook(receiver.url, events=["ticket.created"]))
    mail_in(app, subject="Broken", message_id="<broken@customer.test>")
    mail_in(app, subject="Fine", message_id="<fine@customer.test>")
    first = Event.select().where(Event.action == "created").order_by(Event.id).first()
    Event.update(detail="{not json").where(Event.id == first.id).execute()
    assert deliver(app) == 1
    (got,) = receiver.wait_for(1)
    assert got.payload["ticket"]["subject"] == "Fine"
    assert WebhookPending.select().count() == 0
    assert f"webhook event #{first.id} (created) could not be fanned out" in caplog.text
