"""Agents' replies as real clients shape them: the commands are found, the customer sees the rest.

The talon replies of the corpus (tests/corpus/data/replies/talon/: Gmail, Outlook desktop, Hotmail/Outlook.com,
Apple Mail, Thunderbird, iPhone, Android, Windows Mail) get commands typed where the author's own
text begins, as an agent would. Our own shapes add what the corpus lacks: replies to one of our
notifications from Outlook on the web, Outlook desktop (plain text), Gmail and a phone.
"""

from __future__ import annotations

import email
from email import policy
from email.message import EmailMessage
from pathlib import Path

import pytest

from maild.agents.commands import parse_commands
from maild.pipeline.parse import parse_message
from maild.pipeline.quotes import REPLY_MARKER
from maild.pipeline.reply import reply_text
from maild.routing.engine import RuleSet
from maild.routing.schema import Agent
from tests.mailgen import make_mail

DATA = Path(__file__).resolve().parents[1] / "corpus" / "data" / "replies" / "talon"
RULES = RuleSet(agents={"alice@example.com": Agent("alice@example.com", "Alice")})
COMMANDS = ("#status pending", "#priority high")
SIGNED = "support+ACME-1.0123456789abcdef@example.com"


def squash(text: str) -> str:
    return "\n".join(" ".join(line.split()) for line in text.splitlines() if line.strip())


def read(raw: bytes):
    msg = parse_message(raw)
    return msg, parse_commands(reply_text(msg), rules=RULES, author="alice@example.com")


def with_commands(em: EmailMessage, first: str) -> EmailMessage:
    """``em`` with COMMANDS typed before ``first``, the author's first words, in every body."""
    for part in em.walk():
        if part.get_content_maintype() != "text":
            continue
        text = part.get_content()
        html = part.get_content_subtype() == "html"
        block = "<br>".join(COMMANDS) + "<br><br>" if html else "\n".join(COMMANDS) + "\n\n"
        assert first in text, part.get_content_type()
        part.set_content(text.replace(first, block + first, 1), subtype=part.get_content_subtype())
    del em["From"], em["To"]
    em["From"] = "Alice <alice@example.com>"
    em["To"] = SIGNED
    return em


@pytest.mark.parametrize(
    "name", ["gmail", "outlook", "apple_mail", "thunderbird", "iphone", "android"]
)
def test_corpus_replies(name: str) -> None:
    raw = (DATA / f"{name}.eml").read_bytes()
    original = reply_text(parse_message(raw))
    em = email.message_from_bytes(raw, policy=policy.default)
    _, commands = read(with_commands(em, "Hello").as_bytes())
    assert commands.errors == ()
    assert (commands.status, commands.priority) == ("pending", "high")
    assert commands.body == original == "Hello"


@pytest.mark.parametrize(
    "name", ["gmail", "ms_outlook_2010", "hotmail", "thunderbird", "windows_mail"]
)
def test_corpus_html_only_replies(name: str) -> None:
    em = EmailMessage()
    em["Subject"] = "Re: [ACME-1] Test"
    em.set_content((DATA / "html" / f"{name}.html").read_text(), subtype="html")
    msg, commands = read(with_commands(em, "Hi. I am fine.").as_bytes())
    assert not msg.has_plain
    assert (commands.status, commands.priority, commands.errors) == ("pending", "high", ())
    assert squash(commands.body) == "Hi. I am fine.\nThanks,\nAlex"


NOTIFICATION = f"""{REPLY_MARKER}

New ticket ACME-1 for billing: "Refund please"

  From:      Carol <carol@customer.test>
  Status:    new

Hello, I want my money back.

---
Reply to this mail to answer the customer."""


def quoted(text: str) -> str:
    return "\n".join(f"> {line}" if line else ">" for line in text.splitlines())


ANSWER = "Hi Carol,\n\nthe refund is on its way.\n\nAlice"

OWN_SHAPES = {
    "gmail-plain": (
        "#status pending\n#assign me\n\n" + ANSWER + "\n\n"
        f"On Mon, Nov 2, 2026 at 10:30 AM Test Support <{SIGNED}> wrote:\n\n" + quoted(NOTIFICATION)
    ),
    "phone": (
        "#status pending\n#assign me\n" + ANSWER + "\n\nSent from my iPhone\n\n"
        f"> On 2 Nov 2026, at 10:30, Test Support <{SIGNED}> wrote:\n>\n" + quoted(NOTIFICATION)
    ),
    "outlook-desktop-plain": (
        "#status pending\r\n#assign me\r\n\r\n" + ANSWER.replace("\n", "\r\n") + "\r\n\r\n"
        "-----Original Message-----\r\nFrom: Test Support <" + SIGNED + ">\r\n"
        "Sent: Monday, November 2, 2026 10:30 AM\r\nTo: Alice <alice@example.com>\r\n"
        "Subject: [ACME-1] Refund please\r\n\r\n" + NOTIFICATION.replace("\n", "\r\n")
    ),
    "bottom-post": (
        "On 02/11/2026 10:30, Test Support wrote:\n" + quoted(NOTIFICATION) + "\n\n"
        "#status pending\n#assign me\n" + ANSWER
    ),
}


@pytest.mark.parametrize("shape", sorted(OWN_SHAPES))
def test_own_plain_shapes_replying_to_a_notification(shape: str) -> None:
    raw = make_mail(
        sender="Alice <alice@example.com>",
        to=SIGNED,
        body=OWN_SHAPES[shape],
        subject="RE: [ACME-1] Refund please",
    )
    _, commands = read(raw)
    assert (commands.status, commands.assign, commands.errors) == (
        "pending",
        "alice@example.com",
        (),
    )
    assert commands.body == ANSWER


def test_outlook_on_the_web_html_reply_to_a_notification() -> None:
    notification_html = "".join(
        f"<div>{line or '<br>'}</div>" for line in NOTIFICATION.splitlines()
    )
    html = (
        '<html><head><meta http-equiv="Content-Type" content="text/html; charset=utf-8"></head>'
        '<body><div style="font-family: Aptos, Calibri, Helvetica, sans-serif; font-size: 12pt;">'
        "#status pending</div><div>#tag +refund</div><div><br></div>"
        "<div>Hi Carol,</div><div><br></div><div>the refund is on its way.</div><div><br></div>"
        '<div>Alice</div><div id="appendonsend"></div><hr style="display:inline-block;width:98%">'
        '<div id="divRplyFwdMsg" dir="ltr"><font face="Calibri, sans-serif"><b>From:</b> '
        f"Test Support &lt;{SIGNED}&gt;<br><b>Sent:</b> Monday, November 2, 2026 10:30<br>"
        "<b>To:</b> Alice &lt;alice@example.com&gt;<br><b>Subject:</b> [ACME-1] Refund please"
        f"</font><div>&nbsp;</div></div><div>{notification_html}</div></body></html>"
    )
    em = EmailMessage()
    em["From"] = "Alice <alice@example.com>"
    em["To"] = SIGNED
    em["Subject"] = "RE: [ACME-1] Refund please"
    em.set_content(html, subtype="html")
    _, commands = read(em.as_bytes())
    assert (commands.status, commands.tags_add, commands.errors) == ("pending", ("refund",), ())
    assert squash(commands.body) == squash(ANSWER)
