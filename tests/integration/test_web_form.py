"""The web form against the daemon subprocess: real HTTP clients, then the real browser.

A submission becomes a ticket through the spool (source web) and gets the acknowledgement mail;
every bad input of issue 14 is refused with a clear answer and harms nothing else.
"""

from __future__ import annotations

import email
import email.policy
import json
import sqlite3
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.servers.web import WebDaemon, form_token, post_form, request

FAST = {"form_min_seconds": 0}


@pytest.fixture
def web(tmp_path: Path) -> Iterator[Callable[..., WebDaemon]]:
    daemons: list[WebDaemon] = []

    def start(**overrides: Any) -> WebDaemon:
        http = {**FAST, **overrides.pop("http", {})}
        daemon = WebDaemon(tmp_path, http=http, **overrides).start()
        daemons.append(daemon)
        return daemon

    yield start
    for daemon in daemons:
        daemon.stop()


def fields(daemon: WebDaemon, **values: str) -> dict[str, str]:
    base = {
        "name": "Carol Customer",
        "email": "carol@customer.example",
        "subject": "Printer on fire",
        "message": "Hello, my printer is on fire.",
        "token": form_token(daemon.get("/form").text),
    }
    return {**base, **values}


def wait_for(predicate: Callable[[], Any], timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise TimeoutError("condition not met")


def spool_rows(daemon: WebDaemon) -> list[tuple[int, str, bytes]]:
    with sqlite3.connect(daemon.tmp / "var" / "ticketd.db") as conn:
        return conn.execute("SELECT id, source, raw FROM spool_entry ORDER BY id").fetchall()


JSON = {"Accept": "application/json"}


def test_a_submission_becomes_a_ticket_with_the_acknowledgement_of_mail(web) -> None:
    daemon = web()
    answer = post_form(daemon.url("/form"), fields(daemon), [("log.txt", "text/plain", b"E42")])
    assert answer.status == 200 and "Thank you" in answer.text
    ticket = wait_for(lambda: daemon.tickets())[0]
    assert ticket["subject"] == "Printer on fire"
    assert ticket["requester"] == "carol@customer.example"
    shown = daemon.ticket(ticket["ref"])
    created = next(e for e in shown["events"] if e["action"] == "created")
    assert created["detail"]["via"] == "web"
    assert shown["messages"][0]["attachments"][0]["filename"] == "log.txt"
    sent = wait_for(lambda: list((daemon.tmp / "var" / "sent").glob("*.eml")))
    ack = email.message_from_bytes(sent[0].read_bytes(), policy=email.policy.default)
    assert ack["To"].addresses[0].addr_spec == "carol@customer.example"
    assert f"[{ticket['ref']}]" in ack["Subject"]


def test_json_clients_get_202_with_the_spool_id_after_the_commit(web) -> None:
    daemon = web()
    answer = post_form(daemon.url("/form"), fields(daemon), headers=JSON, multipart=False)
    assert answer.status == 202
    spool_id = answer.json()["spool_id"]
    assert [(row[0], row[1]) for row in spool_rows(daemon)] == [(spool_id, "web")]


def test_html_and_script_in_every_field_are_shown_escaped(web) -> None:
    daemon = web()
    evil = '<script>alert(1)</script>"><img src=x onerror=alert(2)>'
    answer = post_form(
        daemon.url("/form"),
        fields(daemon, name=evil, email=evil, subject=evil, message=evil),
    )
    assert answer.status == 400  # the address is not an address
    assert "<script>" not in answer.text and "<img" not in answer.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in answer.text
    assert spool_rows(daemon) == []


def test_cr_lf_in_name_or_subject_never_adds_a_header(web) -> None:
    daemon = web()
    answer = post_form(
        daemon.url("/form"),
        fields(
            daemon,
            name="Eve\r\nBcc: victim@else.example",
            subject="Hello\r\nX-Injected: yes\n\nbody",
        ),
        headers=JSON,
    )
    assert answer.status == 202
    ((_id, _source, raw),) = spool_rows(daemon)
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    assert parsed["Bcc"] is None and parsed["X-Injected"] is None
    assert parsed["Subject"] == "Hello X-Injected: yes body"
    assert [a.addr_spec for a in parsed["From"].addresses] == ["carol@customer.example"]
    ticket = wait_for(lambda: daemon.tickets())[0]
    sent = wait_for(lambda: list((daemon.tmp / "var" / "sent").glob("*.eml")))
    ack = email.message_from_bytes(sent[0].read_bytes(), policy=email.policy.default)
    assert ack["Bcc"] is None  # the name stays a quoted display name, never an address
    assert [a.addr_spec for a in ack["To"].addresses] == ["carol@customer.example"]
    assert ticket["requester"] == "carol@customer.example"


def test_the_honeypot_and_bad_tokens_are_refused_and_nothing_is_stored(web) -> None:
    daemon = web(http={"form_min_seconds": 3})
    fresh = fields(daemon)
    too_fast = post_form(daemon.url("/form"), fresh, headers=JSON)
    assert too_fast.status == 400 and "too quickly" in too_fast.json()["error"]
    tampered = post_form(daemon.url("/form"), {**fresh, "token": fresh["token"][:-3] + "abc"})
    assert tampered.status == 400 and "Traceback" not in tampered.text
    missing = post_form(daemon.url("/form"), {k: v for k, v in fresh.items() if k != "token"})
    assert missing.status == 400
    honey = post_form(daemon.url("/form"), {**fresh, "website": "http://spam.test"})
    assert honey.status == 400
    assert spool_rows(daemon) == []


def test_a_form_older_than_the_minimum_is_accepted(web) -> None:
    daemon = web(http={"form_min_seconds": 1})
    filled = fields(daemon)

    def send() -> bool:
        return post_form(daemon.url("/form"), filled, headers=JSON).status == 202

    assert not send()  # at once: refused
    wait_for(send, timeout=10)  # resent until the second has passed, as a person would
    assert len(spool_rows(daemon)) == 1


def test_oversize_bodies_and_attachments_are_413(web) -> None:
    daemon = web(http={"max_body_bytes": 20_000}, attachments={"max_count": 1, "max_bytes": 5000})
    big = post_form(
        daemon.url("/form"), fields(daemon), [("big.bin", "application/pdf", b"x" * 30_000)]
    )
    assert big.status == 413
    one_too_big = post_form(
        daemon.url("/form"), fields(daemon), [("a.pdf", "application/pdf", b"x" * 6000)]
    )
    assert one_too_big.status == 413 and "a.pdf" in one_too_big.text
    two = post_form(
        daemon.url("/form"),
        fields(daemon),
        [("a.txt", "text/plain", b"a"), ("b.txt", "text/plain", b"b")],
        headers=JSON,
    )
    assert two.status == 413 and set(two.json()) == {"error"}
    assert spool_rows(daemon) == []


def test_wrong_content_types_are_415(web) -> None:
    daemon = web()
    body = json.dumps(fields(daemon)).encode()
    for ctype in ("application/json", "text/plain", "application/xml"):
        answer = request(
            daemon.url("/form"), body, method="POST", headers={"Content-Type": ctype, **JSON}
        )
        assert answer.status == 415, ctype
        assert "error" in answer.json()
    assert spool_rows(daemon) == []


def test_a_flood_from_one_address_is_limited_and_others_still_get_through(web) -> None:
    daemon = web(http={"trusted_proxies": ["127.0.0.1"], "form_rate_per_ip": "3/hour"})

    def send(ip: str) -> int:
        headers = {"X-Forwarded-For": ip, **JSON}
        return post_form(daemon.url("/form"), fields(daemon), headers=headers).status

    flood = [send("198.51.100.66") for _ in range(6)]
    assert flood == [202, 202, 202, 429, 429, 429]
    assert [send(f"203.0.113.{n}") for n in range(1, 4)] == [202, 202, 202]
    assert len(spool_rows(daemon)) == 6


def test_the_global_limit_stops_everyone(web) -> None:
    daemon = web(http={"trusted_proxies": ["127.0.0.1"], "form_rate_total": "2/day"})
    statuses = [
        post_form(
            daemon.url("/form"),
            fields(daemon),
            headers={"X-Forwarded-For": f"203.0.113.{n}", **JSON},
        ).status
        for n in range(1, 5)
    ]
    assert statuses == [202, 202, 429, 429]


def test_while_the_database_is_locked_the_form_answers_503_and_loses_nothing(web) -> None:
    # A worker caught by the lock mid-message keeps its claim until the lease ends (it cannot
    # write the failure either): a short lease lets it take the row again soon.
    daemon = web(
        database={"busy_timeout_ms": 300}, worker={"poll_seconds": 0.2, "lease_seconds": 3}
    )
    accepted = []
    assert post_form(daemon.url("/form"), fields(daemon), headers=JSON).status == 202
    accepted.append(1)
    filled = fields(daemon, subject="During the lock")
    lock = sqlite3.connect(daemon.tmp / "var" / "ticketd.db", timeout=10, isolation_level=None)
    lock.execute("BEGIN EXCLUSIVE")
    try:
        assert daemon.get("/form").status == 200  # the page itself needs no database
        locked = post_form(daemon.url("/form"), filled, headers=JSON)
        assert locked.status == 503, locked.text
        assert int(locked.headers["Retry-After"]) > 0
        page = post_form(daemon.url("/form"), filled)
        assert page.status == 503 and "Traceback" not in page.text
    finally:
        lock.execute("ROLLBACK")
        lock.close()
    retry = post_form(daemon.url("/form"), filled, headers=JSON)
    assert retry.status == 202
    tickets = wait_for(lambda: len(daemon.tickets()) == 2 and daemon.tickets())
    assert sorted(t["subject"] for t in tickets) == ["During the lock", "Printer on fire"]
    assert "error answering" not in daemon.process.output()  # no request ended in a 500
