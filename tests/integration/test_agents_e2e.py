"""End to end over SMTP: a customer, an agent in their mail client, the real daemon and a relay.

``ticketd run`` runs as a subprocess on loopback, sending through the capturing relay
(tests/servers/relay.py); both people talk to it with smtplib, and every mail a person sends is a
reply to one they received, the way a mail client builds it (Reply-To, In-Reply-To, a quote).
"""

from __future__ import annotations

import json
import smtplib
import subprocess
import sys
import time
from collections.abc import Callable
from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path
from typing import Any

import pytest

from maild.pipeline.quotes import REPLY_MARKER
from tests.agentkit import PEOPLE, ROUTING
from tests.conftest import base_config
from tests.servers.daemon import DaemonProcess, free_port
from tests.servers.relay import Received, Relay

CAROL = "carol@customer.test"
ALICE = "alice@example.com"


class Desk:
    """The daemon, its relay and its config."""

    def __init__(self, tmp: Path, relay: Relay, start_daemon: Callable[..., DaemonProcess]) -> None:
        self.relay = relay
        self.port = free_port()
        data = base_config(
            tmp,
            f"sqlite:///{tmp / 'var' / 'ticketd.db'}",
            smtp_in={"host": "127.0.0.1", "port": self.port},
            smtp_out={
                "transport": "smtp",
                "host": "127.0.0.1",
                "port": self.relay.port,
                "timeout_seconds": 10,
            },
            agents={"authserv_id": "mx.example.com"},
        )
        self.config = tmp / "config.yaml"
        self.config.write_text(json.dumps(data))  # JSON is YAML
        (tmp / "rules" / "10-people.yaml").write_text(PEOPLE)
        (tmp / "rules" / "20-routing.yaml").write_text(ROUTING)
        (tmp / "var").mkdir(exist_ok=True)
        self.daemon = start_daemon(self.config, self.port)

    def send(self, mail_from: str, rcpt: str, msg: EmailMessage) -> None:
        with smtplib.SMTP("127.0.0.1", self.port, timeout=10) as smtp:
            smtp.send_message(msg, from_addr=mail_from, to_addrs=[rcpt])

    def find(self, want: Callable[[Received], bool], timeout: float = 20.0) -> Received:
        """The first mail the relay received that ``want``s, waiting on the relay's condition."""
        deadline = time.monotonic() + timeout
        count = 1
        while True:
            got = self.relay.wait_for(count, timeout=max(0.1, deadline - time.monotonic()))
            for mail in got:
                if want(mail):
                    return mail
            count = len(got) + 1

    def ticket(self, ref: str) -> dict[str, Any]:
        out = subprocess.run(
            [
                sys.executable,
                "-m",
                "maild.cli.main",
                "tickets",
                "show",
                ref,
                "--json",
                "--config",
                str(self.config),
            ],
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        )
        return json.loads(out.stdout)


@pytest.fixture
def desk(tmp_path: Path, relay: Relay, start_daemon: Callable[..., DaemonProcess]) -> Desk:
    """The daemon and its relay (both stopped by their fixtures)."""
    return Desk(tmp_path, relay, start_daemon)


def text_of(msg: EmailMessage) -> str:
    body = msg.get_body(("plain",))
    assert body is not None
    return body.get_content()


def reply(to: Received, *, sender: str, text: str) -> tuple[str, EmailMessage]:
    """What a mail client sends when ``sender`` presses Reply on ``to`` and types ``text``."""
    original = to.message
    target = original["Reply-To"].addresses[0].addr_spec
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = target
    msg["Subject"] = "Re: " + str(original["Subject"])
    msg["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2].rstrip(">"))
    msg["In-Reply-To"] = original["Message-ID"]
    msg["References"] = f"{original.get('References', '')} {original['Message-ID']}".strip()
    quote = "\n".join(f"> {line}" for line in text_of(original).splitlines())
    msg.set_content(
        f"{text}\n\nOn Mon, Nov 2, 2026 at 10:30 AM {original['From']} wrote:\n{quote}\n"
    )
    return target, msg


def to(address: str, template_word: str = "") -> Callable[[Received], bool]:
    return lambda m: address in m.rcpt_tos and template_word in text_of(m.message)


def test_customer_agent_customer_over_smtp(desk: Desk) -> None:
    first = EmailMessage()
    first["From"] = f"Carol <{CAROL}>"
    first["To"] = "support@example.com"
    first["Subject"] = "Refund for invoice 7"
    first["Message-ID"] = "<first@customer.test>"
    first.set_content("Hello,\n\nI was charged twice for invoice 7.\n\nCarol")
    desk.send(CAROL, "support@example.com", first)

    ack = desk.find(to(CAROL, "We have received your message"))
    ref = str(ack.message["Subject"]).split("]")[0].lstrip("[")
    notice = desk.find(to(ALICE, "New ticket"))
    assert "I was charged twice" in text_of(notice.message)

    # Alice presses Reply in her client: commands on top, the answer, the quoted notification.
    target, answer = reply(
        notice,
        sender=f"Alice Agent <{ALICE}>",
        text="#status pending\n\nHi Carol,\n\nsorry about that, which card was charged?\n\nAlice",
    )
    assert "+" in target  # the ticket's signed address, from the notification's Reply-To
    desk.send(ALICE, target, answer)
    got = desk.find(lambda m: m.rcpt_tos == (CAROL,) and "which card" in text_of(m.message))
    text = text_of(got.message)
    assert "#status" not in text and "I was charged twice" not in text and "New ticket" not in text
    assert got.message["From"].addresses[0].display_name == "Alice Agent"
    assert got.message["In-Reply-To"] == "<first@customer.test>"
    ticket = desk.ticket(ref)
    assert ticket["status"] == "pending" and ticket["first_response_at"]

    # Carol answers the agent's mail; the ticket opens again and Alice hears of it.
    target, again = reply(got, sender=f"Carol <{CAROL}>", text="The Visa ending in 4242.")
    desk.send(CAROL, target, again)
    told = desk.find(to(ALICE, "The Visa ending in 4242"))
    assert "replied on" in text_of(told.message)
    assert REPLY_MARKER in text_of(told.message)
    ticket = desk.ticket(ref)
    assert ticket["status"] == "open"
    inbound = [
        (m["direction"], m["kind"], m["body"]) for m in ticket["messages"] if m["direction"] == "in"
    ]
    assert [k for _, k, _ in inbound] == ["customer", "agent", "customer"]
    assert inbound[1][2] == "Hi Carol,\n\nsorry about that, which card was charged?\n\nAlice"
    assert inbound[2][2] == "The Visa ending in 4242."
    # One notification to Alice for Carol's reply (the rule's), none doubled by the built-in one.
    queued = [e["detail"] for e in ticket["events"] if e["action"] == "mail_queued"]
    replies = [d for d in queued if d["template"] == "notify_reply"]
    assert [d["to"] for d in replies] == [[ALICE]]

    # Someone else sends as Alice, to the plain address: taken as customer mail, Alice is warned.
    forged = EmailMessage()
    forged["From"] = f"Alice Agent <{ALICE}>"
    forged["To"] = "support@example.com"
    forged["Subject"] = f"Re: [{ref}] Refund for invoice 7"
    forged["Authentication-Results"] = "mx.evil.test; dkim=pass header.d=example.com"
    forged.set_content("#status closed\n#assign bob\nNo refund, sorry.")
    desk.send(ALICE, "support@example.com", forged)
    warning = desk.find(to(ALICE, "could not be verified"))
    assert warning.message["Auto-Submitted"] == "auto-replied"
    ticket = desk.ticket(ref)
    assert (ticket["status"], ticket["assignee"]) == ("open", ALICE)
    sent = desk.relay.wait_for(0)
    assert not any("No refund" in text_of(m.message) for m in sent if CAROL in m.rcpt_tos)
