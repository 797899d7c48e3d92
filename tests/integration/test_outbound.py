"""Outbound mail end to end: acknowledgements through the outbox to a real SMTP relay on loopback.

The relay (tests/servers/relay.py) records what it receives and can answer 4xx/5xx or hold a
message in DATA. Time moves through ``app.clock`` (a FixedClock), never by sleeping; the daemon
tests wait on the relay's condition variable.
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import email
import io
import json
import smtplib
import sqlite3
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from email import policy
from email.message import EmailMessage
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from maild import spool
from maild.app import App
from maild.cli.main import main
from maild.clock import Clock, FixedClock
from maild.intake.smtp import IntakeController
from maild.outbox.sender import Sender
from maild.pipeline.addresses import LOOP_HEADER, Signer, loop_token
from maild.pipeline.classify import classify
from maild.store.db import bind
from maild.store.models import Event, Message, OutboxEntry, SpoolEntry, Suppression, Ticket
from maild.worker import make_worker
from tests.conftest import base_config, corpus_dir
from tests.mailgen import make_mail
from tests.servers.daemon import DaemonProcess, free_port
from tests.servers.relay import Received, Relay

START = dt.datetime(2026, 11, 2, 9, 0, 0)
CAROL = "carol@customer.test"


# -- fixtures and helpers ----------------------------------------------------------------------


@dataclass
class Outbound:
    """An App whose smtp_out points at ``relay``, its config file, and a fixed clock."""

    app: App
    relay: Relay
    config: Path
    clock: FixedClock

    def deliver(self, raw: bytes, **envelope: Any) -> SpoolEntry:
        """Spool ``raw`` as the pipe intake would, and process it."""
        entry_id = spool.enqueue(self.app.db, raw, source="pipe", **envelope)
        make_worker(self.app).run_once(ids=[entry_id])
        return SpoolEntry.get_by_id(entry_id)

    def send(self) -> int:
        """One pass of the outbox sender."""
        return Sender(self.app).run_once()

    def cli(self, *args: str) -> tuple[int, str]:
        """Run ``ticketd ARGS --config ...`` in-process; returns (status, stdout)."""
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            status = main([*args, "--config", str(self.config)])
        bind(self.app.db)  # the command bound the models to its own connection
        return status, out.getvalue() + err.getvalue()

    def events(self, action: str) -> list[dict[str, Any]]:
        return [json.loads(e.detail) for e in Event.select().where(Event.action == action)]

    def auto_rows(self) -> int:
        return OutboxEntry.select().where(OutboxEntry.kind == "auto").count()


def write_config(path: Path, data: dict[str, Any]) -> Path:
    with path.open("w") as fh:
        YAML().dump(json.loads(json.dumps(data)), fh)
    return path


@pytest.fixture
def make_outbound(
    app_factory: Callable[..., App], tmp_path: Path
) -> Iterator[Callable[..., Outbound]]:
    relays: list[Relay] = []

    def make(db_url: str | None = None, *, start_relay: bool = True, **overrides: Any) -> Outbound:
        relay = Relay()
        relays.append(relay)
        if start_relay:
            relay.start()
        smtp_out = {
            "transport": "smtp",
            "host": "127.0.0.1",
            "port": relay.port,
            "timeout_seconds": 10,
            **overrides.pop("smtp_out", {}),
        }
        url = db_url or f"sqlite:///{tmp_path / 'var' / 'ticketd.db'}"
        app = app_factory(url, smtp_out=smtp_out, **overrides)
        config = write_config(
            tmp_path / "config.yaml", base_config(tmp_path, url, smtp_out=smtp_out, **overrides)
        )
        clock = FixedClock(START)
        app.clock = clock
        return Outbound(app, relay, config, clock)

    yield make
    for relay in relays:
        relay.stop()


@pytest.fixture
def ob(make_outbound: Callable[..., Outbound]) -> Outbound:
    """SQLite, relay running."""
    return make_outbound()


@pytest.fixture
def ob_any(make_outbound: Callable[..., Outbound], any_db_url: str) -> Outbound:
    """SQLite and PostgreSQL, relay running."""
    return make_outbound(any_db_url)


def header_names(msg: EmailMessage) -> list[str]:
    return sorted(k.lower() for k in msg)


def addresses(msg: EmailMessage, name: str) -> list[str]:
    header = msg[name]
    return [a.addr_spec.lower() for a in header.addresses] if header is not None else []


ACK_HEADERS = sorted(
    [
        "from",
        "to",
        "reply-to",
        "subject",
        "date",
        "message-id",
        "in-reply-to",
        "references",
        "thread-topic",
        LOOP_HEADER.lower(),
        "auto-submitted",
        "x-auto-response-suppress",
        "precedence",
        "mime-version",
        "content-type",
    ]
)


def assert_only_carol(received: Received) -> None:
    """The injection checks: the envelope and every address header name Carol or us only."""
    msg = received.message
    assert received.rcpt_tos == (CAROL,)
    assert addresses(msg, "To") == [CAROL]
    assert msg["Cc"] is None and msg["Bcc"] is None
    assert set(header_names(msg)) <= set(ACK_HEADERS) | {"content-transfer-encoding"}
    for name in ("From", "Reply-To"):
        for addr in addresses(msg, name):
            assert addr.endswith(("@example.com", "@example.org")), (name, addr)
    assert b"\nBcc" not in received.raw.split(b"\r\n\r\n")[0]


# -- the acknowledgement -------------------------------------------------------------------------


@pytest.mark.parametrize("support", ["support@example.com", "help@example.org"])
def test_smtp_mail_gets_one_ack_threaded_under_it(
    make_outbound: Callable[..., Outbound], any_db_url: str, support: str
) -> None:
    port = free_port()
    ob = make_outbound(any_db_url, smtp_in={"host": "127.0.0.1", "port": port})
    controller = IntakeController(ob.app)
    controller.start()
    try:
        with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
            client.sendmail(
                CAROL,
                [support],
                make_mail(
                    subject="Re: AW: RE[2]: Printer on fire",
                    to=support,
                    message_id="<first@customer.test>",
                    references="<root@customer.test> <mid@customer.test>",
                ),
            )
    finally:
        controller.stop()
    assert make_worker(ob.app).run_once() == 1
    assert ob.send() == 1
    (ack,) = ob.relay.wait_for(1)
    ticket = Ticket.get()
    ref = f"ACME-{ticket.id}"
    msg = ack.message
    signer = Signer("ACME", ob.app.secret)
    assert ack.mail_from == support and ack.rcpt_tos == (CAROL,)
    assert header_names(msg) == ACK_HEADERS
    assert msg["In-Reply-To"] == "<first@customer.test>"
    assert msg["References"].split() == [
        "<root@customer.test>",
        "<mid@customer.test>",
        "<first@customer.test>",
    ]
    assert msg["Subject"] == f"[{ref}] Printer on fire"
    assert msg["Thread-Topic"] == "Printer on fire"
    assert addresses(msg, "From") == [support]
    assert msg["From"].addresses[0].display_name == "Test Support"
    assert addresses(msg, "To") == [CAROL]
    assert addresses(msg, "Reply-To") == [signer.reply_address(support, ticket.id).lower()]
    assert parsedate_to_datetime(msg["Date"]) == START.replace(tzinfo=dt.UTC)
    assert msg["Auto-Submitted"] == "auto-replied"
    assert msg["X-Auto-Response-Suppress"] == "All"
    assert msg[LOOP_HEADER] == loop_token(ob.app.secret)
    assert signer.ticket_from_message_id(ack.message_id) == ticket.id
    stored = Message.get((Message.direction == "out") & (Message.ticket == ticket))
    assert stored.message_id == ack.message_id
    assert "We have received your message" in msg.get_body(("plain",)).get_content()
    status, out = ob.cli("tickets", "show", ref, "--json")
    assert status == 0, out
    shown = json.loads(out)
    outgoing = [m for m in shown["messages"] if m["direction"] == "out"]
    assert [(m["kind"], m["to"], m["message_id"]) for m in outgoing] == [
        ("auto", [CAROL], ack.message_id)
    ]
    # A reply to the acknowledgement threads by its Message-ID, whatever the subject says now.
    entry = ob.deliver(
        make_mail(subject="new words", in_reply_to=f"<{ack.message_id}>", to=support)
    )
    assert entry.result.startswith(f"append {ref}"), entry.result
    ob.send()
    assert len(ob.relay.messages) == 1  # a reply gets no second acknowledgement


def test_html_alternative_is_autoescaped(ob: Outbound) -> None:
    ob.deliver(make_mail(subject="Broken <script>alert(1)</script> & more"))
    ob.send()
    (ack,) = ob.relay.wait_for(1)
    msg = ack.message
    assert msg.get_content_type() == "multipart/alternative"
    html = msg.get_body(("html",)).get_content()
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; more" in html
    assert "<script>" not in html
    text = msg.get_body(("plain",)).get_content()
    assert "Broken <script>alert(1)</script> & more" in text  # plain text is not HTML


def test_no_html_part_without_an_html_template(
    make_outbound: Callable[..., Outbound], tmp_path: Path
) -> None:
    templates = tmp_path / "my-templates"
    templates.mkdir()
    (templates / "ack.txt.j2").write_text("Thanks, {{ requester.email }}: {{ ticket.ref }}\n")
    ob = make_outbound(templates_dir=str(templates))
    ob.deliver(make_mail())
    ob.send()
    (ack,) = ob.relay.wait_for(1)
    assert ack.message.get_content_type() == "text/plain"
    assert ack.message.get_content().strip() == f"Thanks, {CAROL}: ACME-1"
    assert not ob.events("template_error")


@pytest.mark.parametrize(
    "source",
    [
        "{% if %}broken syntax",
        "Hello {{ no_such_variable }}",
        "{{ 'x' * 50000000 }}",
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "{% for i in range(100000) %}{% for j in range(100000) %}xx{% endfor %}{% endfor %}",
    ],
    ids=["syntax", "undefined", "huge", "escape", "loop"],
)
def test_broken_template_falls_back_to_the_shipped_default(
    make_outbound: Callable[..., Outbound], tmp_path: Path, source: str
) -> None:
    templates = tmp_path / "broken"
    templates.mkdir()
    (templates / "ack.txt.j2").write_text(source)
    ob = make_outbound(templates_dir=str(templates))
    entry = ob.deliver(make_mail())
    assert "ack queued" in entry.result
    ob.send()
    (ack,) = ob.relay.wait_for(1)
    assert "We have received your message" in ack.message.get_body(("plain",)).get_content()
    (event,) = ob.events("template_error")
    assert event["template"] == "ack" and event["error"].startswith("template 'ack'")
    assert len(ack.raw) < 100_000


def test_acknowledgements_can_be_switched_off(make_outbound: Callable[..., Outbound]) -> None:
    ob = make_outbound(notify={"acknowledge": False})
    entry = ob.deliver(make_mail())
    assert entry.result.startswith("new ACME-1 from"), entry.result
    assert ob.auto_rows() == 0


# -- delivery: 4xx, 5xx, relay down, retry -------------------------------------------------------


@pytest.mark.parametrize("stage", ["DATA", "RCPT"])
def test_4xx_is_retried_with_backoff_on_the_apps_clock(ob_any: Outbound, stage: str) -> None:
    ob = ob_any
    ob.deliver(make_mail())
    ob.relay.fail_next(3, 451, stage=stage)
    delays = []
    for _ in range(3):
        assert ob.send() == 1
        row = OutboxEntry.get()
        assert row.status == "queued" and "451" in row.last_error
        delays.append((row.next_attempt_at - ob.clock.now()).total_seconds())
        assert ob.send() == 0  # not due yet
        ob.clock.at = row.next_attempt_at
    assert delays[0] <= 30 and delays == [delays[0], 2 * delays[0], 4 * delays[0]]
    assert ob.send() == 1
    row = OutboxEntry.get()
    assert row.status == "sent" and row.attempts == 4 and row.sent_at == ob.clock.now()
    assert len(ob.relay.wait_for(1)) == 1


def test_5xx_fails_is_listed_and_not_retried_until_asked(ob_any: Outbound) -> None:
    ob = ob_any
    ob.deliver(make_mail())
    ob.relay.fail_next(1, 550, "5.1.1 <carol@customer.test>: Recipient address rejected")
    assert ob.send() == 1
    row = OutboxEntry.get()
    assert row.status == "failed" and row.last_error.startswith("550 5.1.1")
    status, out = ob.cli("outbox", "list")
    assert status == 0
    assert f"#{row.id}" in out and "failed" in out and "Recipient address rejected" in out
    ob.clock.advance(days=2)
    assert ob.send() == 0 and ob.relay.messages == []
    status, out = ob.cli("outbox", "retry", str(row.id))
    assert status == 0 and "queued again" in out
    row = OutboxEntry.get()
    assert row.status == "queued" and row.attempts == 0
    ob.clock.at = row.next_attempt_at  # the command ran on the real clock
    assert ob.send() == 1
    assert OutboxEntry.get().status == "sent"
    assert len(ob.relay.wait_for(1)) == 1
    status, out = ob.cli("outbox", "list")
    assert "nothing queued or failed" in out
    status, out = ob.cli("outbox", "retry", "999")
    assert status != 0 and "does not exist" in out


def test_relay_down_stays_queued_until_a_relay_appears(
    make_outbound: Callable[..., Outbound],
) -> None:
    ob = make_outbound(start_relay=False)
    ob.deliver(make_mail())
    for _ in range(3):
        ob.send()
        row = OutboxEntry.get()
        assert row.status == "queued" and "Connection" in row.last_error
        ob.clock.at = row.next_attempt_at
    ob.relay.start()  # the same port, now listening
    assert ob.send() == 1
    assert OutboxEntry.get().status == "sent"
    assert len(ob.relay.wait_for(1)) == 1


def test_partly_deferred_recipients_get_a_row_of_their_own(ob: Outbound) -> None:
    from maild.notify.compose import queue_mail
    from maild.notify.templates import Renderer
    from maild.pipeline.message import Address
    from maild.store.db import write_tx

    ob.deliver(make_mail())
    ob.send()
    ticket = Ticket.get()
    with write_tx(ob.app.db):
        queue_mail(
            ob.app,
            Renderer(ob.app.config.templates_dir),
            ticket,
            template="resolved",
            to=[Address(CAROL)],
            cc=[Address("dan@customer.test"), Address("bad address@x")],
            now=ob.clock.now(),
            kind="notify",
            automatic=True,
        )
    ob.relay.fail_next(1, 452, "4.2.2 Mailbox full", stage="RCPT")  # carol's RCPT
    assert ob.send() == 1
    first, again = OutboxEntry.select().where(OutboxEntry.kind == "notify").order_by(OutboxEntry.id)
    assert first.status == "sent" and json.loads(again.rcpt_tos) == [CAROL]
    assert again.status == "queued"
    ob.clock.at = again.next_attempt_at
    assert ob.send() == 1
    got = ob.relay.wait_for(3)
    assert [m.rcpt_tos for m in got[1:]] == [("dan@customer.test",), (CAROL,)]
    assert got[1].message_id == got[2].message_id
    (queued,) = [e for e in ob.events("mail_queued") if e["kind"] == "notify"]
    assert queued["skipped"] == ["bad address@x"]


# -- kill -9 during delivery ---------------------------------------------------------------------


def test_kill_9_during_delivery_delivers_everything_after_restart(
    make_outbound: Callable[..., Outbound], tmp_path: Path
) -> None:
    port = free_port()
    ob = make_outbound(
        smtp_in={"host": "127.0.0.1", "port": port},
        smtp_out={"poll_seconds": 0.05, "timeout_seconds": 30},
        worker={"poll_seconds": 0.1},
    )
    ob.app.clock = Clock()  # the daemon runs on the real clock: queue rows that are due for it
    for i in range(5):
        ob.deliver(make_mail(subject=f"case {i}", sender=f"c{i}@customer.test"))
    expected = {m.message_id for m in Message.select().where(Message.direction == "out")}
    assert len(expected) == 5
    ob.app.close()
    ob.relay.stall_next(1)
    daemon = DaemonProcess(ob.config, port, tmp_path / "daemon.log").start()
    try:
        assert ob.relay.stalled.wait(20), daemon.output()
        daemon.kill()  # the relay holds the first message in DATA: we die mid-delivery
        ob.relay.release()
        daemon.start()
        deadline_ok = _wait_ids(ob.relay, expected)
    finally:
        code = daemon.stop()
    assert deadline_ok, (ob.relay.message_ids(), daemon.output())
    assert code == 0, daemon.output()
    assert "released 5 outbox claims" in daemon.output()  # the batch claimed with the one in DATA
    db = sqlite3.connect(tmp_path / "var" / "ticketd.db")
    statuses = [r[0] for r in db.execute("SELECT status FROM outbox_entry")]
    db.close()
    assert statuses == ["sent"] * 5
    counts = {mid: ob.relay.message_ids().count(mid) for mid in expected}
    assert all(n >= 1 for n in counts.values()), counts
    assert sum(counts.values()) <= 6  # at most the one in flight twice


def _wait_ids(relay: Relay, expected: set[str], timeout: float = 30.0) -> bool:
    seen = 0
    while True:
        try:
            got = relay.wait_for(seen + 1, timeout=timeout)
        except TimeoutError:
            return False
        seen = len(got)
        if expected <= {m.message_id for m in got}:
            return True


# -- loop protection -----------------------------------------------------------------------------


def responder_rfc3834(ack: EmailMessage) -> bytes:
    return make_mail(
        subject=f"Automatic reply: {ack['Subject']}",
        sender=f"Carol <{CAROL}>",
        to=str(ack["Reply-To"]),
        in_reply_to=ack["Message-ID"],
        headers={"Auto-Submitted": "auto-replied"},
        body="I am out of the office until Monday.\n",
    )


def responder_naive(ack: EmailMessage) -> bytes:
    """No robot headers at all: looks like a person answering the acknowledgement."""
    return make_mail(
        subject=f"Re: {ack['Subject']}",
        sender=f"Carol <{CAROL}>",
        to=str(ack["From"]),
        in_reply_to=ack["Message-ID"],
        body="I am away.\n",
    )


def responder_forwarder(ack: EmailMessage) -> bytes:
    """Forwards our mail as new mail, keeping our headers (our loop header among them)."""
    return make_mail(
        subject="Fwd: your mail",
        sender=f"Carol <{CAROL}>",
        to=str(ack["From"]),
        headers={LOOP_HEADER: ack[LOOP_HEADER]},
        body="forwarded\n",
    )


@pytest.mark.parametrize(
    "responder",
    [responder_rfc3834, responder_naive, responder_forwarder],
    ids=["rfc3834", "naive", "forwarder-keeps-headers"],
)
def test_ping_pong_with_an_auto_responder_stops_after_one_exchange(
    ob: Outbound, responder: Callable[[EmailMessage], bytes]
) -> None:
    ob.deliver(make_mail())
    seen = 0
    for _round in range(12):
        ob.send()
        new = ob.relay.messages[seen:]
        if not new:
            break
        seen += len(new)
        for received in new:
            ob.deliver(responder(received.message), mail_from=CAROL)
        ob.clock.advance(minutes=1)
    assert len(ob.relay.messages) == 1
    assert SpoolEntry.select().where(SpoolEntry.status != "done").count() == 0
    assert Message.select().where(Message.direction == "in").count() == 2


def test_responder_that_hides_everything_is_stopped_by_the_rate_limit(ob: Outbound) -> None:
    """A responder that strips threading and robot headers looks like a new customer mail each
    time; the per-address rate limit is what ends it."""
    ob.deliver(make_mail())
    seen = 0
    for n in range(30):
        ob.send()
        new = ob.relay.messages[seen:]
        if not new:
            break
        seen += len(new)
        for _received in new:
            ob.deliver(make_mail(subject=f"I am away ({n})", body="away\n"))
        ob.clock.advance(seconds=30)
    assert len(ob.relay.messages) == ob.app.config.loop.auto_replies_per_hour == 10
    (event,) = ob.events("auto_reply_suppressed")
    assert event["reason"].startswith("rate limit")


def test_rate_limit_ten_per_address_per_hour(ob_any: Outbound) -> None:
    ob = ob_any
    for i in range(11):
        ob.deliver(make_mail(subject=f"question {i}"))
        ob.clock.advance(minutes=1)
    assert Ticket.select().count() == 11
    assert ob.auto_rows() == 10
    (event,) = ob.events("auto_reply_suppressed")
    assert event["to"] == CAROL and event["reason"].startswith("rate limit: 10")
    ob.clock.advance(hours=1)
    ob.deliver(make_mail(subject="an hour later"))
    assert ob.auto_rows() == 11
    ob.send()
    assert len(ob.relay.wait_for(11)) == 11


def dsn_for(ack: Received, *, action: str = "failed", status: str = "5.1.1") -> bytes:
    headers = ack.raw.split(b"\r\n\r\n")[0].decode()
    return (
        "From: Mail Delivery System <MAILER-DAEMON@mx.customer.test>\r\n"
        f"To: {ack.mail_from}\r\nSubject: Undelivered Mail Returned to Sender\r\n"
        "Message-ID: <dsn-1@mx.customer.test>\r\nAuto-Submitted: auto-replied\r\n"
        "MIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="B"\r\n\r\n'
        "--B\r\nContent-Type: text/plain\r\n\r\nYour message could not be delivered.\r\n"
        "--B\r\nContent-Type: message/delivery-status\r\n\r\n"
        "Reporting-MTA: dns; mx.customer.test\r\n\r\n"
        f"Final-Recipient: rfc822; {ack.rcpt_tos[0]}\r\nAction: {action}\r\n"
        f"Status: {status}\r\n\r\n"
        f"--B\r\nContent-Type: text/rfc822-headers\r\n\r\n{headers}\r\n\r\n--B--\r\n"
    ).encode()


def test_bounce_of_our_ack_is_recorded_and_suppresses_for_30_days(ob_any: Outbound) -> None:
    ob = ob_any
    ob.deliver(make_mail())
    ob.send()
    (ack,) = ob.relay.wait_for(1)
    ticket = Ticket.get()
    entry = ob.deliver(dsn_for(ack), mail_from="<>")
    assert entry.result.startswith(f"append ACME-{ticket.id} [bounce recorded]"), entry.result
    bounce = Event.get((Event.action == "bounce") & (Event.ticket == ticket))
    detail = json.loads(bounce.detail)
    assert detail["recipients"] == [CAROL] and detail["suppressed"] == [CAROL]
    assert detail["suppressed_days"] == 30
    assert Suppression.get().until == START + dt.timedelta(days=30)
    # New mail from Carol: a ticket, but no automatic mail while she is suppressed.
    ob.clock.advance(days=29)
    entry = ob.deliver(make_mail(subject="Another problem"))
    assert entry.result.startswith("new ACME-"), entry.result
    assert ob.auto_rows() == 1
    (event,) = ob.events("auto_reply_suppressed")
    assert event["reason"] == "suppressed after a bounce"
    ob.clock.advance(days=2)
    ob.deliver(make_mail(subject="A month later"))
    assert ob.auto_rows() == 2


def test_delay_warning_and_forged_bounce_suppress_nobody(ob: Outbound) -> None:
    ob.deliver(make_mail())
    ob.send()
    (ack,) = ob.relay.wait_for(1)
    ob.deliver(dsn_for(ack, action="delayed", status="4.4.7"), mail_from="<>")
    forged = Received(ack.mail_from, ("ceo@bigcorp.test",), ack.raw)
    dsn = dsn_for(forged).replace(b"dsn-1@", b"dsn-2@")
    ob.deliver(dsn, mail_from="<>")
    delayed, other = (
        json.loads(e.detail)
        for e in Event.select().where(Event.action == "bounce").order_by(Event.id)
    )
    assert delayed["delayed"] is True and delayed["suppressed"] == []
    assert other["recipients"] == ["ceo@bigcorp.test"] and other["suppressed"] == []
    assert Suppression.select().count() == 0


ROBOTS = {
    "mailer-daemon": (
        {"sender": "Mail Delivery System <MAILER-DAEMON@mx.customer.test>"},
        {},
    ),
    "postmaster": ({"sender": "postmaster@customer.test", "subject": "Hello"}, {}),
    "noreply": ({"sender": "Shop <noreply@shop.test>"}, {}),
    "no-reply": ({"sender": "no-reply@shop.test"}, {}),
    "donotreply": ({"sender": "DoNotReply@shop.test"}, {}),
    "null-envelope": ({}, {"mail_from": "<>"}),
    "our-support": ({"sender": "Support <support@example.com>"}, {}),
    "our-second-support-tagged": ({"sender": "help+billing@example.org"}, {}),
    "our-loop-header": ({}, {}),  # the header's value is the instance's token, set below
    "auto-submitted": ({"headers": {"Auto-Submitted": "auto-generated"}}, {}),
    "list": ({"headers": {"List-Id": "<users.lists.customer.test>"}}, {}),
    "bulk": ({"headers": {"Precedence": "bulk"}}, {}),
}


@pytest.mark.parametrize("case", sorted(ROBOTS))
def test_no_automatic_mail_to_robots_or_ourselves(ob: Outbound, case: str) -> None:
    mail, envelope = ROBOTS[case]
    if case == "our-loop-header":
        mail = {"headers": {LOOP_HEADER: loop_token(ob.app.secret)}}
    entry = ob.deliver(make_mail(**mail), **envelope)
    assert entry.status == "done", entry.last_error
    assert ob.auto_rows() == 0, entry.result
    ob.send()
    assert ob.relay.messages == []


# -- header injection ----------------------------------------------------------------------------

INJECTIONS = {
    "comma-in-name": ('"Evil, evil@x.test" <carol@customer.test>', "Printer"),
    "angle-in-name": ('"Evil <evil@x.test>" <carol@customer.test>', "Printer"),
    "encoded-name": ("=?utf-8?q?Bcc=3A_evil=40x=2Etest?= <carol@customer.test>", "Printer"),
    "encoded-crlf-name": (
        "=?utf-8?q?Carol=0D=0ABcc=3A_evil=40x=2Etest?= <carol@customer.test>",
        "Printer",
    ),
    "encoded-crlf-subject": (
        "carol@customer.test",
        "=?utf-8?q?Printer=0D=0ABcc=3A_evil=40x=2Etest=0D=0A=0D=0Abody?=",
    ),
    "line-separator-subject": (
        "carol@customer.test",
        "=?utf-8?q?Printer=E2=80=A8Bcc=3A_evil=40x=2Etest=C2=85Cc=3A_evil2=40x=2Etest?=",
    ),
    "long-encoded-name": (
        "=?utf-8?q?"
        + "=C3=BC" * 30
        + "=2C_=3Cevil=40x=2Etest=3E=2C_"
        + "a" * 60
        + "?= <carol@customer.test>",
        "=?utf-8?q?" + "=C3=A4" * 40 + "=0ATo=3A_evil=40x=2Etest?=",
    ),
}


@pytest.mark.parametrize("case", sorted(INJECTIONS))
def test_header_injection_adds_no_header_and_no_recipient(ob: Outbound, case: str) -> None:
    sender, subject = INJECTIONS[case]
    raw = make_mail(sender="x@placeholder.test", subject="placeholder").replace(
        b"From: x@placeholder.test", f"From: {sender}".encode()
    )
    raw = raw.replace(b"Subject: placeholder", f"Subject: {subject}".encode())
    entry = ob.deliver(raw)
    assert entry.status == "done" and "ack queued" in entry.result, entry.result
    ob.send()
    (ack,) = ob.relay.wait_for(1)
    assert_only_carol(ack)
    assert "evil" not in " ".join(k.lower() for k in ack.message)
    assert "\n" not in str(ack.message["Subject"]) and "\r" not in str(ack.message["Subject"])


def test_long_message_ids_stay_verbatim_in_threading_headers(ob: Outbound) -> None:
    long_id = "CAKf" + "x" * 90 + "+A=b@mail.gmail.com"
    root = f"{'r' * 200}@customer.test"
    raw = (
        f"From: Carol <{CAROL}>\r\nTo: support@example.com\r\nSubject: ids\r\n"
        f"Message-ID: <{long_id}>\r\nReferences: <{root}>\r\n\r\nhello\r\n"
    )
    ob.deliver(raw.encode())
    ob.send()
    (ack,) = ob.relay.wait_for(1)
    assert ack.message["In-Reply-To"] == f"<{long_id}>"
    assert f"<{long_id}>".encode() in ack.raw and b"=?utf-8?" not in ack.raw.split(b"\r\n\r\n")[0]
    assert ack.message["References"].split() == [f"<{root}>", f"<{long_id}>"]


# -- the shared corpus ---------------------------------------------------------------------------


def corpus_rows(category: str) -> list[dict[str, str]]:
    root = corpus_dir()
    with (root / "index.csv").open(newline="") as fh:
        return [
            r for r in csv.DictReader(fh) if r["category"] == category and r["kind"] == "message"
        ]


def verdict_of(entry: SpoolEntry) -> str | None:
    """The classifier's verdict as the worker logged it: "... from ADDR (KIND)"."""
    result = entry.result or ""
    return result.rsplit("(", 1)[1].rstrip(")") if result.endswith(")") else None


def test_corpus_robots_get_no_automatic_mail(ob: Outbound) -> None:
    root = corpus_dir()
    robots = [r for r in corpus_rows("auto") if r["classification"] != "human"]
    assert len(robots) > 200
    paths = [str(root / r["path"]) for r in robots]
    for start in range(0, len(paths), 100):
        status, out = ob.cli("inject", *paths[start : start + 100])
        assert status == 0, out[-2000:]
    entries = list(SpoolEntry.select().order_by(SpoolEntry.id))
    assert len(entries) == len(robots)
    assert ob.auto_rows() == 0
    assert Message.select().where(Message.direction == "out").count() == 0
    ob.send()
    assert ob.relay.messages == []
    # How the classifier's verdicts compare with auto/expected_classification.csv.
    with (root / "auto" / "expected_classification.csv").open(newline="") as fh:
        expected = {r["path"]: r["classification"] for r in csv.DictReader(fh)}
    agree = 0
    for path, kind in expected.items():
        msg = email.message_from_bytes((root / path).read_bytes(), policy=policy.default)
        agree += classify(msg).kind == kind
    verdicts = [verdict_of(e) for e in entries]
    robot = sum(v not in (None, "human") for v in verdicts)
    unusable = sum(v is None for v in verdicts)
    print(
        f"\ncorpus auto/: {len(robots)} robot messages -> 0 automatic mails (100%); "
        f"stored as robot mail {robot}, quarantined as unusable (no sender) {unusable}, "
        f"as human {len(verdicts) - robot - unusable}; classifier agrees with "
        f"expected_classification.csv on {agree}/{len(expected)} ({agree / len(expected):.1%})"
    )


# Why a sender gets no acknowledgement although a person wrote the message.
ROBOT_LOOKING = ("robot sender address", "not a plain address", "one of our own support")


def test_corpus_each_new_human_message_gets_one_ack(make_outbound: Callable[..., Outbound]) -> None:
    root = corpus_dir()
    # The per-address rate limit has its own test; here it would only hide a missing ack.
    ob = make_outbound(loop={"auto_replies_per_hour": 100_000})
    inbound = corpus_rows("inbound")
    ids = [
        spool.enqueue(ob.app.db, (root / r["path"]).read_bytes(), source="pipe") for r in inbound
    ]
    make_worker(ob.app).run_once()
    acked, excluded, missing = 0, [], []
    counts: Counter[str] = Counter()
    for row, entry_id in zip(inbound, ids, strict=True):
        entry = SpoolEntry.get_by_id(entry_id)
        verdict = verdict_of(entry)
        word = (entry.result or entry.status).split()[0]
        counts[f"{word} {verdict or ''}".strip()] += 1
        if word != "new" or verdict != "human":
            continue
        ticket = Ticket.get_by_id(int(entry.result.split()[1].rpartition("-")[2]))
        acks = OutboxEntry.select().where(
            (OutboxEntry.ticket == ticket) & (OutboxEntry.kind == "auto")
        )
        why = [
            json.loads(e.detail)["reason"]
            for e in Event.select().where(
                (Event.ticket == ticket) & (Event.action == "auto_reply_suppressed")
            )
        ]
        if acks.count() == 1 and not why:
            acked += 1
        elif acks.count() == 0 and why and why[0].startswith(ROBOT_LOOKING):
            excluded.append(f"{row['path']}: {ticket.requester.email}: {why[0]}")
        else:
            missing.append(f"{row['path']}: {acks.count()} acks, {why}")
    assert not missing, "\n".join(missing)
    human_new = acked + len(excluded)
    assert acked > 200
    print(
        f"\ncorpus inbound/: {len(inbound)} messages: {dict(sorted(counts.items()))}\n"
        f"new human messages {human_new}: acknowledged exactly once {acked} "
        f"({acked / human_new:.1%}), robot-looking or unusable senders {len(excluded)} "
        f"({len(excluded) / human_new:.1%}), of the others acknowledged: 100%"
    )
    print("  excluded:\n    " + "\n    ".join(excluded))
    ob.send()
    assert len(ob.relay.wait_for(acked)) == acked


def test_a_bounce_without_our_message_id_suppresses_nobody(ob: Outbound) -> None:
    """Anyone can send a 'bounce' naming the customer with the ticket's tag in its subject."""
    ob.deliver(make_mail())
    ob.send()
    (ack,) = ob.relay.wait_for(1)
    ticket = Ticket.get()
    forged = dsn_for(ack).split(b"--B\r\nContent-Type: text/rfc822-headers")[0] + b"--B--\r\n"
    forged = forged.replace(
        b"Subject: Undelivered Mail Returned to Sender",
        f"Subject: Undelivered: [ACME-{ticket.id}] Printer on fire".encode(),
    ).replace(b"dsn-1@", b"dsn-forged@")
    entry = ob.deliver(forged, mail_from="<>")
    assert entry.result.startswith(f"append ACME-{ticket.id}"), entry.result
    detail = json.loads(Event.get(Event.action == "bounce").detail)
    assert detail["recipients"] == [CAROL] and detail["suppressed"] == []
    assert "unverified" in detail
    assert Suppression.select().count() == 0
