"""``POST /api/v1/messages`` against the daemon subprocess: channels, duplicates, errors in JSON."""

from __future__ import annotations

import base64
import json
import sqlite3
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.servers.web import Answer, WebDaemon, request

TOKEN = "chat-token-0123456789abcdef"
OTHER = "bot-token-fedcba9876543210"


@pytest.fixture
def api(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., WebDaemon]]:
    monkeypatch.setenv("TICKETD_TEST_CHAT_TOKEN", TOKEN)
    (tmp_path / "bot.token").write_text(OTHER + "\n")
    daemons: list[WebDaemon] = []

    def start(db_url: str | None = None, **http: Any) -> WebDaemon:
        channels = [
            {"name": "chat", "token_env": "TICKETD_TEST_CHAT_TOKEN"},
            {"name": "bot", "token_file": str(tmp_path / "bot.token")},
        ]
        daemon = WebDaemon(tmp_path, db_url, http={"channels": channels, **http}).start()
        daemons.append(daemon)
        return daemon

    yield start
    for daemon in daemons:
        daemon.stop()


def post(
    daemon: WebDaemon, body: Any, *, token: str | None = TOKEN, ctype: str = "application/json"
) -> Answer:
    headers = {"Content-Type": ctype}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    return request(daemon.url("/api/v1/messages"), data, method="POST", headers=headers)


def payload(external_id: str = "m-1", **extra: Any) -> dict[str, Any]:
    return {
        "external_id": external_id,
        "from": {"email": "erin@customer.example", "name": "Erin"},
        "subject": "Chat: cannot pay",
        "text": "The checkout fails with code 7.",
        **extra,
    }


def wait_for(predicate: Callable[[], Any], timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise TimeoutError("condition not met")


def spool_sources(daemon: WebDaemon) -> list[str]:
    with sqlite3.connect(daemon.tmp / "var" / "ticketd.db") as conn:
        return [row[0] for row in conn.execute("SELECT source FROM spool_entry ORDER BY id")]


def test_a_message_is_202_with_its_spool_id_and_becomes_a_ticket(api) -> None:
    daemon = api()
    attachment = {
        "filename": "trace.txt",
        "content_type": "text/plain",
        "data": base64.b64encode(b"code 7").decode(),
    }
    answer = post(daemon, payload(attachments=[attachment]))
    assert answer.status == 202 and set(answer.json()) == {"spool_id"}
    ticket = wait_for(lambda: daemon.tickets())[0]
    assert (ticket["subject"], ticket["requester"]) == ("Chat: cannot pay", "erin@customer.example")
    shown = daemon.ticket(ticket["ref"])
    assert next(e for e in shown["events"] if e["action"] == "created")["detail"]["via"] == "api"
    assert shown["messages"][0]["attachments"][0]["filename"] == "trace.txt"


def test_the_same_external_id_of_a_channel_is_a_duplicate_stored_once(api, any_db_url) -> None:
    daemon = api(any_db_url)
    first = post(daemon, payload("dup-1"))
    assert first.status == 202
    again = post(daemon, payload("dup-1", text="a retry with other text"))
    assert (again.status, again.json()) == (200, {"duplicate": True})
    other_channel = post(daemon, payload("dup-1"), token=OTHER)
    assert other_channel.status == 202  # ids are per channel
    listed = daemon.ticketd("spool", "list", "--all", "--json")
    assert [row["source"] for row in json.loads(listed.stdout)] == ["api", "api"]
    wait_for(lambda: len(daemon.tickets()) == 2)


def test_a_ticket_reference_appends_to_that_ticket(api) -> None:
    daemon = api()
    assert post(daemon, payload("t-1")).status == 202
    ref = wait_for(lambda: daemon.tickets())[0]["ref"]
    assert post(daemon, payload("t-2", ticket=ref, text="More details: code 8.")).status == 202
    shown = wait_for(lambda: len(daemon.ticket(ref)["messages"]) >= 3 and daemon.ticket(ref))
    bodies = [m["body"] for m in shown["messages"] if m["direction"] == "in"]
    assert bodies[-1].startswith("More details: code 8.")
    assert len(daemon.tickets()) == 1
    unknown = post(daemon, payload("t-3", ticket="ACME-999"))
    assert unknown.status == 400 and "ticket" in unknown.json()["error"]


@pytest.mark.parametrize("token", [None, "wrong-token-0000000000", TOKEN[:-1], f"{TOKEN} extra"])
def test_a_missing_or_wrong_token_is_401(api, token: str | None) -> None:
    daemon = api()
    answer = post(daemon, payload(), token=token)
    assert answer.status == 401 and set(answer.json()) == {"error"}
    assert answer.headers["WWW-Authenticate"].startswith("Bearer")
    assert spool_sources(daemon) == []


def test_basic_auth_is_not_a_bearer_token(api) -> None:
    daemon = api()
    basic = base64.b64encode(f"chat:{TOKEN}".encode()).decode()
    answer = request(
        daemon.url("/api/v1/messages"),
        json.dumps(payload()).encode(),
        method="POST",
        headers={"Content-Type": "application/json", "Authorization": f"Basic {basic}"},
    )
    assert answer.status == 401


@pytest.mark.parametrize(
    ("body", "words"),
    [
        (b"{not json", "JSON"),
        (b"[1, 2]", "object"),
        ({"external_id": "x", "text": "hi"}, "from"),
        (payload(**{"from": {"email": "not an address"}}), ""),
        (payload(external_id=""), "external_id"),
        (payload(text=""), "text"),
        (payload(attachments=[{"filename": "a", "data": "%%%"}]), "base64"),
        (payload(attachments="nope"), "attachments"),
    ],
)
def test_bad_json_or_fields_are_400_with_a_json_error(api, body: Any, words: str) -> None:
    daemon = api()
    answer = post(daemon, body)
    assert answer.status == 400, answer.text
    error = answer.json()["error"]
    assert words in error and "Traceback" not in error
    assert spool_sources(daemon) == []


def test_other_content_types_are_415(api) -> None:
    daemon = api()
    for ctype in ("application/x-www-form-urlencoded", "text/plain", "multipart/form-data"):
        answer = post(daemon, payload(), ctype=ctype)
        assert answer.status == 415 and "error" in answer.json()


def test_oversize_bodies_and_attachments_are_413(api, tmp_path: Path) -> None:
    daemon = api(max_body_bytes=50_000)
    big = payload(text="x" * 60_000)
    assert post(daemon, big).status == 413
    huge_attachment = {"filename": "a.bin", "data": base64.b64encode(b"x" * 30_000).decode()}
    answer = post(daemon, payload(attachments=[huge_attachment] * 1))
    assert answer.status == 202  # below both caps
    assert spool_sources(daemon) == ["api"]


def test_attachment_limits_of_mail_apply(api, tmp_path: Path) -> None:
    config = WebDaemon(
        tmp_path,
        http={
            "channels": [{"name": "chat", "token_env": "TICKETD_TEST_CHAT_TOKEN"}],
        },
        attachments={"max_count": 1, "max_bytes": 100},
    )
    config.start()
    try:
        one = {"filename": "a.txt", "data": base64.b64encode(b"a" * 101).decode()}
        answer = post(config, payload(attachments=[one]))
        assert answer.status == 413 and "a.txt" in answer.json()["error"]
        small = {"filename": "b.txt", "data": base64.b64encode(b"b").decode()}
        assert post(config, payload(attachments=[small, small])).status == 413
    finally:
        config.stop()


def test_a_flood_on_one_channel_is_429_and_other_channels_get_through(api) -> None:
    daemon = api(api_rate_per_channel="3/minute")
    statuses = [post(daemon, payload(f"f-{n}")).status for n in range(5)]
    assert statuses == [202, 202, 202, 429, 429]
    assert post(daemon, payload("f-0"), token=OTHER).status == 202


def test_cr_lf_in_name_or_subject_never_adds_a_header(api) -> None:
    import email
    import email.policy

    daemon = api()
    body = payload(
        subject="Hi\r\nBcc: victim@else.example",
        **{"from": {"email": "erin@customer.example", "name": "E\r\nX-Evil: 1"}},
    )
    assert post(daemon, body).status == 202
    with sqlite3.connect(daemon.tmp / "var" / "ticketd.db") as conn:
        (raw,) = conn.execute("SELECT raw FROM spool_entry").fetchone()
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    assert parsed["Bcc"] is None and parsed["X-Evil"] is None


def test_while_the_database_is_locked_the_api_answers_503_and_a_retry_is_stored(api) -> None:
    daemon = api()
    lock = sqlite3.connect(daemon.tmp / "var" / "ticketd.db", timeout=10, isolation_level=None)
    lock.execute("BEGIN EXCLUSIVE")
    try:
        locked = post(daemon, payload("lock-1"))
    finally:
        lock.execute("ROLLBACK")
        lock.close()
    assert locked.status == 503 and int(locked.headers["Retry-After"]) > 0
    assert set(locked.json()) == {"error"}
    assert post(daemon, payload("lock-1")).status == 202
    assert spool_sources(daemon) == ["api"]


def test_a_channel_without_its_token_is_a_config_error(tmp_path: Path) -> None:
    daemon = WebDaemon(
        tmp_path, http={"channels": [{"name": "chat", "token_env": "TICKETD_NOT_SET_X"}]}
    )
    out = daemon.ticketd("run")
    assert out.returncode == 78
    assert "http.channels[0]" in out.stderr and "Traceback" not in out.stderr
