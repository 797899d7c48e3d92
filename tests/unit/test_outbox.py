"""The outbox without the pipeline: backoff, the transports against a loopback relay, the sender."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections.abc import Callable
from pathlib import Path

import pytest

from maild.app import App
from maild.clock import FixedClock
from maild.config import RetryConfig, SmtpOutConfig
from maild.errors import NotFoundError
from maild.outbox.sender import Sender, backoff, retry
from maild.outbox.transports import (
    Delivered,
    FileTransport,
    PermanentFailure,
    SmtpTransport,
    TemporaryFailure,
    make_transport,
)
from maild.store.models import Contact, OutboxEntry, Ticket
from tests.servers.daemon import free_port
from tests.servers.relay import Relay

NOW = dt.datetime(2026, 11, 2, 9, 0)
RAW = b"From: support@example.com\r\nTo: carol@customer.test\r\nSubject: x\r\n\r\nhello\r\n"


# -- backoff -------------------------------------------------------------------------------------


def test_backoff_doubles_from_the_first_delay_up_to_the_cap() -> None:
    assert [backoff(n, 15, 3600) for n in range(1, 10)] == [
        15,
        30,
        60,
        120,
        240,
        480,
        960,
        1920,
        3600,
    ]
    assert backoff(0, 15, 3600) == 15
    assert backoff(10_000, 15, 3600) == 3600  # no overflow after many attempts


def test_default_first_retry_is_within_30_seconds() -> None:
    cfg = RetryConfig()
    assert backoff(1, cfg.first_seconds, cfg.max_seconds) <= 30


# -- transports ----------------------------------------------------------------------------------


def test_file_transport_writes_whole_files_once_per_name(tmp_path: Path) -> None:
    transport = FileTransport(tmp_path / "sent")
    result = transport.send("support@example.com", ["carol@customer.test"], RAW, "00000001-1")
    assert isinstance(result, Delivered) and result.deferred == ()
    transport.send("support@example.com", ["carol@customer.test"], RAW, "00000001-1")
    files = list((tmp_path / "sent").iterdir())
    assert [f.name for f in files] == ["00000001-1.eml"]  # no temporary files left behind
    data = files[0].read_bytes()
    assert data.startswith(b"X-Envelope-From: <support@example.com>\r\n")
    assert data.endswith(RAW)


def test_file_transport_failure_is_temporary(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("x")
    with pytest.raises(TemporaryFailure):
        FileTransport(blocker / "sent").send("a@b.test", ["c@d.test"], RAW, "1")


def smtp(port: int, **changes: object) -> SmtpTransport:
    config = SmtpOutConfig(transport="smtp", host="127.0.0.1", port=port, timeout_seconds=5)
    transport = make_transport(dataclasses.replace(config, **changes))
    assert isinstance(transport, SmtpTransport)
    return transport


def test_smtp_transport_delivers_and_reuses_its_connection(relay: Relay) -> None:
    transport = smtp(relay.port)
    for _ in range(3):
        result = transport.send("support@example.com", ["carol@customer.test"], RAW, "n")
        assert result.detail == f"accepted by 127.0.0.1:{relay.port}"
    client = transport.client
    assert client is not None
    transport.send("support@example.com", ["dan@customer.test"], RAW, "n")
    assert transport.client is client
    transport.close()
    assert transport.client is None
    got = relay.wait_for(4)
    assert got[0].mail_from == "support@example.com" and got[0].rcpt_tos == ("carol@customer.test",)
    assert got[0].raw.replace(b"\r\n", b"\n") == RAW.replace(b"\r\n", b"\n")


@pytest.mark.parametrize(
    ("code", "stage", "error"),
    [
        (451, "DATA", TemporaryFailure),
        (421, "DATA", TemporaryFailure),
        (452, "RCPT", TemporaryFailure),
        (550, "DATA", PermanentFailure),
        (554, "DATA", PermanentFailure),
        (550, "RCPT", PermanentFailure),
    ],
)
def test_smtp_answers_become_temporary_or_permanent(
    relay: Relay, code: int, stage: str, error: type[Exception]
) -> None:
    relay.fail_next(1, code, stage=stage)
    transport = smtp(relay.port)
    with pytest.raises(error, match=str(code)):
        transport.send("support@example.com", ["carol@customer.test"], RAW, "n")
    assert transport.client is None
    transport.send("support@example.com", ["carol@customer.test"], RAW, "n")  # fresh connection
    assert len(relay.wait_for(1)) == 1


def test_partly_refused_recipients(relay: Relay) -> None:
    relay.fail_next(1, 452, stage="RCPT")
    relay.fail_next(1, 550, stage="RCPT")
    result = smtp(relay.port).send(
        "support@example.com", ["a@x.test", "b@x.test", "c@x.test"], RAW, "n"
    )
    assert result.deferred == ("a@x.test",)
    assert "b@x.test: 550" in result.detail
    assert relay.wait_for(1)[0].rcpt_tos == ("c@x.test",)


def test_connection_refused_is_temporary() -> None:
    with pytest.raises(TemporaryFailure, match="ConnectionRefused"):
        smtp(free_port()).send("support@example.com", ["carol@customer.test"], RAW, "n")


def test_non_ascii_address_is_permanent(relay: Relay) -> None:
    with pytest.raises(PermanentFailure):
        smtp(relay.port).send("support@example.com", ["jdöe@mächine.example"], RAW, "n")


def test_missing_password_variable_is_not_swallowed(relay: Relay, monkeypatch) -> None:
    monkeypatch.delenv("TICKETD_TEST_NO_SUCH_VAR", raising=False)
    transport = smtp(relay.port, username="u", password_env="TICKETD_TEST_NO_SUCH_VAR")
    with pytest.raises(Exception, match="TICKETD_TEST_NO_SUCH_VAR"):
        transport.send("support@example.com", ["carol@customer.test"], RAW, "n")
    assert transport.client is None


# -- the sender ----------------------------------------------------------------------------------


class Scripted:
    """A transport that answers from a script: an exception to raise or a Delivered."""

    def __init__(self, *answers: Exception | Delivered) -> None:
        self.answers = list(answers)
        self.sent: list[list[str]] = []
        self.closed = 0

    def send(self, mail_from: str, rcpt_tos: list[str], raw: bytes, name: str) -> Delivered:
        self.sent.append(rcpt_tos)
        answer = self.answers.pop(0) if self.answers else Delivered("ok")
        if isinstance(answer, Exception):
            raise answer
        return answer

    def close(self) -> None:
        self.closed += 1


def queue(app: App, rcpts: tuple[str, ...] = ("carol@customer.test",)) -> OutboxEntry:
    contact = Contact.get_or_create(email="carol@customer.test")[0]
    ticket = Ticket.create(subject="x", requester=contact)
    return OutboxEntry.create(
        ticket=ticket,
        kind="auto",
        mail_from="support@example.com",
        rcpt_tos=json.dumps(list(rcpts)),
        raw=RAW,
        created_at=app.clock.now(),
        next_attempt_at=app.clock.now(),
    )


@pytest.fixture
def clocked(sqlite_app: App) -> App:
    sqlite_app.clock = FixedClock(NOW)
    return sqlite_app


def test_unexpected_error_is_deferred_not_stuck(clocked: App) -> None:
    entry = queue(clocked)
    transport = Scripted(RuntimeError("bug in a transport"))
    assert Sender(clocked, transport).run_once() == 1
    row = OutboxEntry.get_by_id(entry.id)
    assert row.status == "queued" and row.claimed_by is None
    assert row.last_error == "RuntimeError: bug in a transport"
    assert row.next_attempt_at == NOW + dt.timedelta(seconds=15)
    assert transport.closed >= 1


def test_gives_up_after_max_attempts(app_factory: Callable[..., App]) -> None:
    app = app_factory(smtp_out={"retry": {"first_seconds": 1, "max_attempts": 3}})
    app.clock = clock = FixedClock(NOW)
    queue(app)
    transport = Scripted(*(TemporaryFailure("451 later") for _ in range(5)))
    for _ in range(3):
        assert Sender(app, transport).run_once() == 1
        clock.advance(hours=1)
    row = OutboxEntry.get()
    assert row.status == "failed" and row.last_error == "gave up after 3 attempts: 451 later"
    assert Sender(app, transport).run_once() == 0


def test_deferred_recipients_are_queued_again(clocked: App) -> None:
    queue(clocked, ("a@x.test", "b@x.test"))
    transport = Scripted(Delivered("accepted except a@x.test: 452", ("a@x.test",)))
    Sender(clocked, transport).run_once()
    first, again = OutboxEntry.select().order_by(OutboxEntry.id)
    assert first.status == "sent" and first.sent_at == NOW
    assert again.status == "queued" and json.loads(again.rcpt_tos) == ["a@x.test"]
    assert again.next_attempt_at == NOW + dt.timedelta(seconds=15) and again.auto_to is None
    clocked.clock.advance(seconds=15)
    Sender(clocked, transport).run_once()
    assert transport.sent == [["a@x.test", "b@x.test"], ["a@x.test"]]
    assert OutboxEntry.get_by_id(again.id).status == "sent"


def test_a_claimed_row_is_not_taken_twice(clocked: App) -> None:
    queue(clocked)
    [first] = Sender(clocked, Scripted()).claim_batch()
    assert first.attempts == 1
    assert Sender(clocked, Scripted()).claim_batch() == []  # leased
    clocked.clock.advance(seconds=301)
    [again] = Sender(clocked, Scripted()).claim_batch()  # the lease expired: a dead sender's row
    assert again.attempts == 2


def test_retry_command_semantics(clocked: App) -> None:
    entry = queue(clocked)
    Sender(clocked, Scripted(PermanentFailure("550 no such user"))).run_once()
    assert OutboxEntry.get_by_id(entry.id).status == "failed"
    again = retry(clocked, entry.id)
    assert again.status == "queued" and again.attempts == 0 and again.next_attempt_at == NOW
    Sender(clocked, Scripted()).run_once()
    with pytest.raises(NotFoundError, match="already sent"):
        retry(clocked, entry.id)
    with pytest.raises(NotFoundError, match="does not exist"):
        retry(clocked, 12345)


def test_retry_keeps_a_live_claim(clocked: App) -> None:
    entry = queue(clocked)
    [claimed] = Sender(clocked, Scripted()).claim_batch()
    retry(clocked, entry.id)
    row = OutboxEntry.get_by_id(entry.id)
    assert row.claimed_by == claimed.claimed_by  # still being sent: not handed out twice
