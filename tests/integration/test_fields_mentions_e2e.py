"""Over SMTP with the real daemon: a field extracted from a customer's mail, an agent's #set and
@mention from their mail client, the mention reaching only the colleague."""

from __future__ import annotations

import json
import smtplib
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import base_config
from tests.servers.daemon import DaemonProcess, free_port
from tests.servers.relay import Received, Relay

CAROL = "carol@customer.test"
PEOPLE = """\
agents:
  - {email: alice@example.com, name: Alice, teams: [billing]}
  - {email: lena@example.com, name: Lena, teams: [billing], role: lead}
teams:
  billing: {assign: none}
fields:
  - {name: order, type: number, extract: {from: subject, pattern: 'order #?(?P<value>[0-9]{3,8})'}}
  - {name: product, type: choice, values: [printer, scanner]}
"""
ROUTING = """\
rules:
  - name: Acknowledge
    then: {reply: ack}
  - name: Orders
    when: {field.order: {exists: true}}
    then: {team: billing, notify: {template: notify_new, to: [alice@example.com]}}
"""


class Desk:
    def __init__(self, tmp: Path) -> None:
        self.relay = Relay().start()
        self.port = free_port()
        data = base_config(
            tmp,
            f"sqlite:///{tmp / 'var' / 'ticketd.db'}",
            smtp_in={"host": "127.0.0.1", "port": self.port},
            smtp_out={"transport": "smtp", "host": "127.0.0.1", "port": self.relay.port},
        )
        self.config = tmp / "config.yaml"
        self.config.write_text(json.dumps(data))
        (tmp / "rules" / "10-people.yaml").write_text(PEOPLE)
        (tmp / "rules" / "20-routing.yaml").write_text(ROUTING)
        (tmp / "var").mkdir(exist_ok=True)
        self.daemon = DaemonProcess(self.config, self.port, tmp / "daemon.log").start()

    def send(self, mail_from: str, rcpt: str, msg: EmailMessage) -> None:
        with smtplib.SMTP("127.0.0.1", self.port, timeout=10) as smtp:
            smtp.send_message(msg, from_addr=mail_from, to_addrs=[rcpt])

    def find(self, want: Callable[[Received], bool], timeout: float = 30.0) -> Received:
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
            [sys.executable, "-m", "maild.cli.main", "tickets", "show", ref, "--json",
             "--config", str(self.config)],
            capture_output=True, text=True, check=True, timeout=60,
        )  # fmt: skip
        return json.loads(out.stdout)


@pytest.fixture
def desk(tmp_path: Path) -> Iterator[Desk]:
    running = Desk(tmp_path)
    yield running
    running.daemon.stop()
    running.relay.stop()


def text_of(msg: EmailMessage) -> str:
    body = msg.get_body(("plain",))
    assert body is not None
    return body.get_content()


def to(address: str, words: str = "") -> Callable[[Received], bool]:
    return lambda m: address in m.rcpt_tos and words in text_of(m.message)


def test_field_set_and_mention_over_smtp(desk: Desk) -> None:
    first = EmailMessage()
    first["From"] = f"Carol <{CAROL}>"
    first["To"] = "support@example.com"
    first["Subject"] = "Order #4471 arrived broken"
    first["Message-ID"] = "<o1@customer.test>"
    first.set_content("The printer in order 4471 is broken.\n\nCarol")
    desk.send(CAROL, "support@example.com", first)
    note = desk.find(to("alice@example.com")).message
    ref = str(note["Subject"]).split("[", 1)[1].split("]", 1)[0]
    assert desk.ticket(ref)["fields"] == {"order": "4471"}

    target = note["Reply-To"].addresses[0].addr_spec
    answer = EmailMessage()
    answer["From"] = "Alice <alice@example.com>"
    answer["To"] = target
    answer["Subject"] = "Re: " + str(note["Subject"])
    answer["Message-ID"] = make_msgid(domain="example.com")
    answer["In-Reply-To"] = note["Message-ID"]
    quote = "\n".join(f"> {line}" for line in text_of(note).splitlines())
    answer.set_content(
        f"#set product=printer\n#note\n@Lena could you check the warranty?\n\n"
        f"On Mon, Nov 2, 2026 at 10:30 AM {note['From']} wrote:\n{quote}\n"
    )
    desk.send("alice@example.com", target, answer)
    mention = desk.find(to("lena@example.com", "mentioned you")).message
    assert "could you check the warranty?" in text_of(mention)
    assert mention["Reply-To"].addresses[0].addr_spec.lower().startswith(f"support+{ref.lower()}.")
    data = desk.ticket(ref)
    assert data["fields"] == {"order": "4471", "product": "printer"}
    assert "lena@example.com" in data["watchers"]
    to_carol = [m for m in desk.relay.wait_for(1, timeout=1) if CAROL in m.rcpt_tos]
    assert to_carol and all("warranty" not in text_of(m.message) for m in to_carol)
