"""Requester status pages against the daemon subprocess: links in mail, what the page shows and
hides, replies and status changes through it, lost links, and every kind of bad token."""

from __future__ import annotations

import json
import smtplib
import time
import urllib.parse
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from maild.app import App
from maild.config import load_config
from maild.store.custom_fields import set_substatus
from maild.store.models import Message, Ticket, database_proxy
from maild.web.tokens import issue_status_token
from tests.mailgen import make_mail
from tests.servers.web import WebDaemon, request, sent_mails, status_link

CAROL = "carol@customer.example"
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


def wait_for(predicate: Callable[[], Any], timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise TimeoutError("condition not met")


@pytest.fixture
def web(tmp_path: Path) -> Iterator[Callable[..., WebDaemon]]:
    daemons: list[WebDaemon] = []

    def start(**overrides: Any) -> WebDaemon:
        daemon = WebDaemon(tmp_path, **overrides).start()
        daemons.append(daemon)
        return daemon

    yield start
    for daemon in daemons:
        daemon.stop()


def mail_in(daemon: WebDaemon, **kwargs: Any) -> None:
    kwargs.setdefault("sender", f"Carol Customer <{CAROL}>")
    with smtplib.SMTP("127.0.0.1", daemon.smtp_port, timeout=10) as client:
        sender = kwargs["sender"].rpartition("<")[2].rstrip(">")
        client.sendmail(sender, ["support@example.com"], make_mail(**kwargs))


def first_link(daemon: WebDaemon, count: int = 1) -> str:
    mails = wait_for(lambda: len(sent_mails(daemon)) >= count and sent_mails(daemon))
    link = status_link(mails[count - 1])
    assert link, "the mail carries no status link"
    return link


def local(daemon: WebDaemon, link: str) -> str:
    parts = urllib.parse.urlsplit(link)
    return daemon.url(f"{parts.path}?{parts.query}")


def post(daemon: WebDaemon, link: str, **fields: str) -> Any:
    parts = urllib.parse.urlsplit(link)
    token = urllib.parse.parse_qs(parts.query)["k"][0]
    body = urllib.parse.urlencode({"k": token, **fields}).encode()
    return request(daemon.url(parts.path), body, method="POST", headers=FORM)


def test_the_acknowledgement_links_to_a_page_with_the_public_thread_only(web) -> None:
    daemon = web()
    mail_in(daemon, subject="Printer <b>on</b> fire", cc="Bob <bob@other.example>")
    link = first_link(daemon)
    assert link.startswith(f"http://127.0.0.1:{daemon.http_port}/t/ACME-1?k=")
    ref = "ACME-1"
    # An agent's public answer, an internal note and mail only agents got (written to the store
    # as the agent pipeline would, from this test process).
    app = App.open(load_config(daemon.config))
    try:
        ticket = Ticket.get_by_id(1)
        for n, (kind, direction, body) in enumerate(
            [
                ("agent", "in", "Please unplug it. <script>alert(1)</script>"),
                ("note", "in", "INTERNAL: customer is difficult"),
                ("notify", "out", "AGENT-ONLY notification"),
            ]
        ):
            Message.create(
                ticket=ticket,
                direction=direction,
                kind=kind,
                message_id=f"x{n}@example.com",
                dedup_key=f"x{n}@example.com",
                from_addr="alice@example.com",
                from_name="Alice Agent",
                body=body,
            )
    finally:
        app.close()
        database_proxy.initialize(None)
    page = request(local(daemon, link))
    assert page.status == 200
    text = page.text
    assert "Printer &lt;b&gt;on&lt;/b&gt; fire" in text and "<b>on</b>" not in text
    assert 'id="status">new<' in text and 'id="priority">normal<' in text
    assert "my printer is on fire" in text and "Please unplug it." in text
    assert "&lt;script&gt;" in text and "<script" not in text
    assert "Alice Agent" in text and "You" in text
    for hidden in ("INTERNAL", "AGENT-ONLY", "thank you for writing"):
        assert hidden not in text, hidden
    for address in (CAROL, "bob@other.example", "alice@example.com", "support@example.com"):
        assert address not in text, address
    assert ref in text


def test_the_page_shows_a_custom_status_by_its_label(web) -> None:
    daemon = web()
    mail_in(daemon, subject="Scanner stuck")
    link = first_link(daemon)
    app = App.open(load_config(daemon.config))  # as #status waiting_vendor leaves the ticket
    try:
        Ticket.update(status="pending").where(Ticket.id == 1).execute()
        set_substatus(Ticket.get_by_id(1), "waiting_vendor", "Waiting on vendor")
    finally:
        app.close()
        database_proxy.initialize(None)
    text = request(local(daemon, link)).text
    assert 'id="status">Waiting on vendor<' in text and "waiting_vendor" not in text
    # The mail with a fresh link says it the same way.
    request(daemon.url("/t/lookup"), f"email={CAROL}".encode(), method="POST", headers=FORM)
    fresh = wait_for(lambda: len(sent_mails(daemon)) >= 2 and sent_mails(daemon)[1])
    assert "which is Waiting on vendor." in fresh.get_body(("plain",)).get_content()


def test_each_recipient_gets_their_own_link_and_only_participants_get_one(web) -> None:
    daemon = web()
    mail_in(daemon)
    link = first_link(daemon)
    page = request(local(daemon, link))
    assert page.status == 200
    # The lookup mails Bob nothing (not a participant) and Carol a new link of her own.
    request(daemon.url("/t/lookup"), b"email=bob%40other.example", method="POST", headers=FORM)
    request(daemon.url("/t/lookup"), f"email={CAROL}".encode(), method="POST", headers=FORM)
    mails = wait_for(lambda: len(sent_mails(daemon)) >= 2 and sent_mails(daemon))
    assert [m["To"].addresses[0].addr_spec for m in mails] == [CAROL, CAROL]
    fresh = status_link(mails[1])
    assert fresh and fresh != link
    assert request(local(daemon, fresh)).status == 200


def test_a_reply_from_the_page_is_stored_as_the_requesters_message(web) -> None:
    daemon = web()
    mail_in(daemon)
    link = first_link(daemon)
    answer = post(daemon, link, action="reply", text="It is still <em>smoking</em>.")
    assert answer.status == 303
    assert answer.headers["Location"].endswith("&done=reply")
    shown = wait_for(
        lambda: len(daemon.ticket("ACME-1")["messages"]) >= 3 and daemon.ticket("ACME-1")
    )
    reply = [m for m in shown["messages"] if m["direction"] == "in"][-1]
    assert (reply["from"], reply["kind"]) == (CAROL, "customer")
    assert reply["body"].startswith("It is still <em>smoking</em>.")
    assert len(daemon.tickets()) == 1
    page = request(local(daemon, link))
    assert "It is still &lt;em&gt;smoking&lt;/em&gt;." in page.text


def test_mark_solved_and_reopen_change_the_status_as_the_requester(web) -> None:
    daemon = web()
    mail_in(daemon)
    link = first_link(daemon)
    assert post(daemon, link, action="solve").status == 303
    assert daemon.ticket("ACME-1")["status"] == "resolved"
    # The survey that resolving sends carries a link too.
    survey = wait_for(
        lambda: [
            m for m in sent_mails(daemon) if "How did we do" in m.get_body(("plain",)).get_content()
        ]
    )
    assert status_link(survey[0])
    page = request(local(daemon, link))
    assert 'id="reopen"' in page.text and 'id="solve"' not in page.text
    assert post(daemon, link, action="reopen").status == 303
    shown = daemon.ticket("ACME-1")
    assert shown["status"] == "open"
    actors = [e["actor"] for e in shown["events"] if e["action"] == "status"]
    assert actors[-2:] == [CAROL, CAROL]
    again = post(daemon, link, action="reopen")
    assert again.headers["Location"].endswith("&done=unchanged")


def test_tampered_expired_revoked_and_other_ticket_tokens_get_the_same_403(web) -> None:
    daemon = web()
    mail_in(daemon, subject="First secret subject")
    mail_in(daemon, subject="Second secret subject", sender="Dan <dan@customer.example>")
    link_one = first_link(daemon, 1)
    wait_for(lambda: len(sent_mails(daemon)) >= 2)
    token = urllib.parse.parse_qs(urllib.parse.urlsplit(link_one).query)["k"][0]
    secret = (daemon.tmp / "var" / "secret").read_bytes().strip()
    old = issue_status_token(secret, 1, CAROL, time.time() - 91 * 86400)
    forged_secret = issue_status_token(b"not the secret", 1, CAROL, time.time())
    bad = {
        "tampered": f"/t/ACME-1?k={token[:-2]}xx",
        "other ticket": f"/t/ACME-2?k={token}",
        "expired": f"/t/ACME-1?k={old}",
        "wrong secret": f"/t/ACME-1?k={forged_secret}",
        "no token": "/t/ACME-1",
        "garbage ref": f"/t/..%2f..?k={token}",
        "unknown ticket": f"/t/ACME-99?k={token}",
    }
    pages = {name: daemon.get(path) for name, path in bad.items()}
    for name, page in pages.items():
        assert page.status in (403, 404), name
        for secret_text in ("secret subject", "ACME-1", CAROL, "dan@"):
            assert secret_text not in page.text, (name, secret_text)
    bodies = {page.text for page in pages.values() if page.status == 403}
    assert len(bodies) == 1  # all say the same
    assert request(local(daemon, link_one)).status == 200
    out = daemon.ticketd("links", "revoke", "ACME-1")
    assert out.returncode == 0, out.stderr
    revoked = request(local(daemon, link_one))
    assert revoked.status == 403 and revoked.text in bodies
    assert post(daemon, link_one, action="solve").status == 403
    assert daemon.ticket("ACME-1")["status"] == "new"
    # Fresh links after the revocation work.
    request(daemon.url("/t/lookup"), f"email={CAROL}".encode(), method="POST", headers=FORM)
    fresh = wait_for(lambda: len(sent_mails(daemon)) >= 3 and sent_mails(daemon))[2]
    assert request(local(daemon, status_link(fresh) or "")).status == 200


def test_revoking_an_unknown_ticket_is_a_clear_error(web) -> None:
    daemon = web()
    out = daemon.ticketd("links", "revoke", "ACME-77")
    assert out.returncode != 0 and "ACME-77" in out.stderr and "Traceback" not in out.stderr
    bad = daemon.ticketd("links", "revoke", "nonsense")
    assert bad.returncode == 64


def test_lookup_answers_the_same_for_every_address_and_is_rate_limited(web) -> None:
    daemon = web(http={"lookup_rate": "3/hour"})
    mail_in(daemon)
    first_link(daemon)
    answers = [
        request(daemon.url("/t/lookup"), body, method="POST", headers=FORM)
        for body in (
            f"email={CAROL}".encode(),
            b"email=nobody%40else.example",
            b"email=%3Cscript%3E",
        )
    ]
    assert [a.status for a in answers] == [200, 200, 200]
    assert len({a.text for a in answers}) == 1
    limited = request(
        daemon.url("/t/lookup"), f"email={CAROL}".encode(), method="POST", headers=FORM
    )
    assert limited.status == 429
    assert len(wait_for(lambda: len(sent_mails(daemon)) >= 2 and sent_mails(daemon))) == 2


def test_status_posts_with_other_content_types_are_415(web) -> None:
    daemon = web()
    mail_in(daemon)
    link = first_link(daemon)
    parts = urllib.parse.urlsplit(link)
    body = json.dumps({"action": "solve"}).encode()
    answer = request(
        daemon.url(f"{parts.path}?{parts.query}"),
        body,
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    assert answer.status == 415
    assert daemon.ticket("ACME-1")["status"] == "new"


def test_mail_carries_no_link_while_http_is_off(tmp_path: Path) -> None:
    daemon = WebDaemon(tmp_path, http={"enabled": False})
    daemon.process.start()
    try:
        mail_in(daemon)
        mail = wait_for(lambda: sent_mails(daemon))[0]
        assert status_link(mail) is None
        assert "/t/" not in mail.get_body(("plain",)).get_content()
    finally:
        daemon.stop()
