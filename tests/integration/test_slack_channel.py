"""Slack as a channel both ways, against the daemon: the Events API in (signed as Slack signs),
status changes back into the thread through slack-sdk at a local fake Slack API."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from slack_sdk.signature import SignatureVerifier

from maild.pipeline.addresses import Signer
from tests.mailgen import make_mail
from tests.servers.daemon import wait_until
from tests.servers.receiver import Receiver
from tests.servers.web import Answer, WebDaemon, request

PEOPLE = "agents:\n  - {email: alice@example.com, name: Alice Agent}\n"
SIGNING = "8f742231b10e8888abcd99yyyzzz85a5"
BOT = "xoxb-test-token"


@pytest.fixture
def slack(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, receiver: Receiver
) -> Iterator[WebDaemon]:
    monkeypatch.setenv("TICKETD_TEST_SLACK_SIGNING", SIGNING)
    monkeypatch.setenv("TICKETD_TEST_SLACK_BOT", BOT)
    channel = {
        "name": "slack",
        "kind": "slack",
        "signing_secret_env": "TICKETD_TEST_SLACK_SIGNING",
        "bot_token_env": "TICKETD_TEST_SLACK_BOT",
        "api_url": receiver.slack_api,
    }
    (tmp_path / "rules").mkdir(exist_ok=True)
    (tmp_path / "rules" / "10-people.yaml").write_text(PEOPLE)
    daemon = WebDaemon(
        tmp_path, http={"channels": [channel]}, webhook_delivery={"poll_seconds": 0.2}
    ).start()
    yield daemon
    daemon.stop()


def send(daemon: WebDaemon, body: dict[str, Any], *, secret: str = SIGNING, age: int = 0) -> Answer:
    raw = json.dumps(body).encode()
    stamp = str(int(time.time()) - age)
    signature = SignatureVerifier(secret).generate_signature(timestamp=stamp, body=raw)
    headers = {
        "Content-Type": "application/json",
        "X-Slack-Request-Timestamp": stamp,
        "X-Slack-Signature": signature or "",
    }
    return request(daemon.url("/api/v1/slack/slack/events"), raw, method="POST", headers=headers)


def dm(
    event_id: str, ts: str, text: str, *, thread_ts: str | None = None, kind: str = "message"
) -> dict:
    event: dict[str, Any] = {
        "type": kind,
        "user": "U024BE7LH",
        "text": text,
        "ts": ts,
        "channel": "D024BE91L",
        "event_ts": ts,
    }
    if kind == "message":
        event["channel_type"] = "im"
    if thread_ts:
        event["thread_ts"] = thread_ts
    return {
        "token": "x",
        "team_id": "T061EG9R6",
        "api_app_id": "A0MDYCDME",
        "event": event,
        "type": "event_callback",
        "event_id": event_id,
        "event_time": int(time.time()),
    }


def spooled(daemon: WebDaemon) -> int:
    with sqlite3.connect(daemon.tmp / "var" / "ticketd.db") as db:
        return db.execute("SELECT count(*) FROM spool_entry").fetchone()[0]


def test_url_verification_is_answered_with_the_challenge(slack):
    answer = send(
        slack,
        {
            "token": "x",
            "challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P",
            "type": "url_verification",
        },
    )
    assert answer.status == 200
    assert answer.json() == {"challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"}


@pytest.mark.parametrize(("secret", "age"), [("wrong-secret-0000", 0), (SIGNING, 6 * 60)])
def test_a_wrong_signature_or_a_stale_timestamp_is_401_and_stores_nothing(slack, secret, age):
    answer = send(slack, dm("Ev0000000001", "1700000000.000100", "help"), secret=secret, age=age)
    assert answer.status == 401 and "error" in answer.json()
    assert spooled(slack) == 0


def test_a_direct_message_opens_a_ticket_once_and_thread_replies_append(slack, receiver):
    first = dm("Ev0000000002", "1700000000.000100", "I need a password reset")
    assert send(slack, first).status == 200
    again = send(slack, first)  # Slack retries: stored once
    assert again.json()["duplicate"] is True
    reply = dm(
        "Ev0000000003", "1700000001.000200", "It is for the VPN", thread_ts="1700000000.000100"
    )
    assert send(slack, reply).status == 200
    mention = dm("Ev0000000004", "1700000002.000300", "<@U0LAN0Z89> printer?", kind="app_mention")
    assert send(slack, mention).status == 200
    tickets = wait_until(lambda: len(slack.tickets()) == 2 and slack.tickets())
    assert sorted(t["subject"] for t in tickets) == ["I need a password reset", "printer?"]
    shown = wait_until(lambda: (t := slack.ticket("ACME-1")) and len(t["messages"]) == 2 and t)
    assert [m["body"].strip() for m in shown["messages"]] == [
        "I need a password reset",
        "It is for the VPN",
    ]
    assert spooled(slack) == 3
    # Alice answers by mail at her signed address, with a command: both go back to the thread.
    secret = (slack.tmp / "var" / "secret").read_bytes().strip()
    to = Signer("ACME", secret).agent_reply_address("support@example.com", 1, "alice@example.com")
    raw = make_mail(
        sender="Alice Agent <alice@example.com>",
        to=to,
        subject="Re: [ACME-1] I need a password reset",
        body="#status pending\nThe reset link is on its way.\n",
    )
    out = subprocess.run(
        [sys.executable, "-m", "maild.cli.main", "inject", "--config", str(slack.config)],
        input=raw,
        capture_output=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    posts = receiver.wait_for_slack(2)
    assert {p["channel"] for p in posts} == {"D024BE91L"}
    assert {p["thread_ts"] for p in posts} == {"1700000000.000100"}
    texts = [p["text"].strip() for p in posts]
    assert "The reset link is on its way." in texts and "Status: pending" in texts
    # The answer went to Slack, not by mail to the requester's placeholder address.
    with sqlite3.connect(slack.tmp / "var" / "ticketd.db") as db:
        rcpts = [r[0] for r in db.execute("SELECT rcpt_tos FROM outbox_entry")]
    assert not any("slack.invalid" in r for r in rcpts)


def test_a_bots_own_message_is_ignored(slack):
    event = dm("Ev0000000005", "1700000000.000500", "Status: pending")
    event["event"]["bot_id"] = "B0123"
    answer = send(slack, event)
    assert answer.status == 200 and answer.json().get("ignored") is True
    assert spooled(slack) == 0
