"""Outgoing mail without a relay: header safety, subjects, templates and the loop policy."""

from __future__ import annotations

import datetime as dt
import email
from email import policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any, cast

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from maild.app import App
from maild.config import LoopConfig
from maild.notify.compose import (
    ComposeError,
    Outgoing,
    build_message,
    clean_subject,
    display_name,
    header_safe,
    message_ids,
    outgoing_subject,
    valid_address,
)
from maild.notify.loop import refusal, robot_address, suppress
from maild.notify.templates import MAX_OUTPUT_CHARS, Renderer, TemplateFailure
from maild.pipeline.message import Address
from maild.store.db import write_tx
from maild.store.models import Contact, OutboxEntry, Suppression, Ticket

NOW = dt.datetime(2026, 11, 2, 9, 0)
SUPPORT = ("support@example.com", "help@example.org")
TEMPLATES = Path(__file__).resolve().parents[2] / "templates"


# -- header_safe, display names, addresses, msg-ids ----------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("Printer\r\nBcc: evil@x.test", "Printer Bcc: evil@x.test"),
        ("a\nb\rc\td", "a b c d"),
        ("line\u2028sep\u2029para\x85nel\x0bvt\x0cff\x1cfs", "line sep para nel vt ff fs"),
        ("nul\x00del\x7fc1\x9b", "nul del c1"),
        ("lone \udc80 surrogate", "lone surrogate"),
        ("  many    spaces  ", "many spaces"),
    ],
)
def test_header_safe_leaves_one_clean_line(value: str, expected: str) -> None:
    assert header_safe(value) == expected
    assert len(header_safe(value).splitlines()) <= 1


def test_header_safe_limits_length() -> None:
    assert header_safe("x" * 5000) == "x" * 900
    assert header_safe("y" * 300, 200) == "y" * 200


def test_display_name_cannot_carry_an_encoded_word() -> None:
    assert "=?" not in display_name("=?utf-8?q?Bcc=3A_evil=40x=2Etest?=")
    assert "?=" not in display_name("=?utf-8?q?Bcc=3A_evil=40x=2Etest?=")
    assert display_name("Carol\r\nCustomer") == "Carol Customer"
    for tricky in ("?=?=?", "=?=?=", "q?=?utf-8?q?x?="):
        assert "=?" not in display_name(tricky) and "?=" not in display_name(tricky)


@pytest.mark.parametrize(
    "address",
    ["carol@customer.test", "c.o+tag@sub.customer-x.test", "o'neil@x.co", "root@localhost"],
)
def test_valid_addresses(address: str) -> None:
    assert valid_address(address)


@pytest.mark.parametrize(
    "address",
    [
        "carol@customer.test\n",
        "carol@customer.test\r\nRCPT TO:<evil@x.test>",
        "carol@customer.test>, <evil@x.test",
        "carol @customer.test",
        "carol@customer",
        "@customer.test",
        "carol@",
        "carol@customer.test.",
        "a..b@customer.test",
        "jdöe@mächine.example",
        '"quoted"@customer.test',
        "x" * 65 + "@customer.test",
    ],
)
def test_invalid_addresses(address: str) -> None:
    assert not valid_address(address)


def test_message_ids_keep_only_plain_ascii_ids() -> None:
    ids = ["ok@x", "with space@x", "a<b@x", "nl@x\n", "ü@x", "x" * 491, "CA+x=y@mail.gmail.com"]
    assert message_ids(ids) == ["ok@x", "CA+x=y@mail.gmail.com"]


@pytest.mark.parametrize(
    ("subject", "clean"),
    [
        ("Printer on fire", "Printer on fire"),
        ("Re: AW: RE[2]: Printer on fire", "Printer on fire"),
        ("Re: [ACME-5] Re: AW: Printer", "Printer"),
        ("[acme-5] Fwd: [ACME-7] SV: Printer", "Printer"),
        ("[OTHER-5] Printer", "[OTHER-5] Printer"),
        ("Printer [ACME-5] again", "Printer [ACME-5] again"),
        ("Re:", ""),
    ],
)
def test_subjects_lose_piled_up_prefixes_and_tags(subject: str, clean: str) -> None:
    assert clean_subject("ACME", subject) == clean
    assert outgoing_subject("ACME", 12, subject) == f"[ACME-12] {clean}".rstrip()


# -- build_message -------------------------------------------------------------------------------


def outgoing(**changes: Any) -> Outgoing:
    values: dict[str, Any] = {
        "from_addr": Address("support@example.com", "Test Support"),
        "to": (Address("carol@customer.test", "Carol"),),
        "cc": (),
        "reply_to": Address("support+acme-1.0123456789abcdef@example.com", "Test Support"),
        "subject": "[ACME-1] Printer on fire",
        "thread_topic": "Printer on fire",
        "date": NOW,
        "message_id": "ACME-1.0123456789ab.0123456789abcdef@example.com",
        "in_reply_to": "first@customer.test",
        "references": ("root@customer.test", "first@customer.test"),
        "loop_token": "0123456789abcdef",
        "auto_submitted": "auto-replied",
        "text": "Hello\n",
        "html": None,
    }
    values.update(changes)
    return Outgoing(**values)


def parsed(raw: bytes) -> EmailMessage:
    return cast(EmailMessage, email.message_from_bytes(raw, policy=policy.default))


def addresses(msg: EmailMessage, name: str) -> list[str]:
    header = msg[name]
    return [a.addr_spec for a in header.addresses] if header is not None else []


HEADERS = {
    "from",
    "to",
    "reply-to",
    "subject",
    "date",
    "message-id",
    "in-reply-to",
    "references",
    "thread-topic",
    "x-ticketd-loop",
    "auto-submitted",
    "x-auto-response-suppress",
    "precedence",
    "mime-version",
    "content-type",
    "content-transfer-encoding",
}

TOKENS = [*"aZ09 ,;:<>@\"'()[]\\=?_.-\t\r\n\x00\x85\u2028üß中", "=?utf-8?q?", "?=", "Bcc: "]
NASTY = st.lists(st.sampled_from(TOKENS), max_size=60).map("".join)


@settings(max_examples=150, deadline=None, derandomize=True)
@given(name=NASTY, subject=NASTY, cc_name=NASTY)
def test_no_name_or_subject_adds_a_header_or_recipient(
    name: str, subject: str, cc_name: str
) -> None:
    out = outgoing(
        to=(Address("carol@customer.test", name),),
        cc=(Address("dan@customer.test", cc_name),),
        subject=header_safe(f"[ACME-1] {subject}"),
        thread_topic=header_safe(subject),
    )
    msg = parsed(build_message(out))
    names = {k.lower() for k in msg}
    assert names <= HEADERS | {"cc"} and "bcc" not in names
    assert len(list(msg)) == len(names)  # no header twice
    assert addresses(msg, "To") == ["carol@customer.test"]
    assert addresses(msg, "Cc") == ["dan@customer.test"]
    assert addresses(msg, "From") == ["support@example.com"]


def test_threading_headers_and_automatic_markers() -> None:
    msg = parsed(build_message(outgoing()))
    assert msg["In-Reply-To"] == "<first@customer.test>"
    assert msg["References"] == "<root@customer.test> <first@customer.test>"
    assert msg["Auto-Submitted"] == "auto-replied"
    assert msg["X-Auto-Response-Suppress"] == "All" and msg["Precedence"] == "bulk"
    assert msg["Date"] == "Mon, 02 Nov 2026 09:00:00 +0000"
    person = parsed(build_message(outgoing(auto_submitted=None, in_reply_to=None, references=())))
    assert {"auto-submitted", "precedence", "in-reply-to", "references"}.isdisjoint(
        k.lower() for k in person
    )


def test_long_message_ids_are_never_encoded() -> None:
    ids = tuple(f"{'x' * (60 + 40 * i)}{i}@mail.example.com" for i in range(20))
    raw = build_message(outgoing(in_reply_to=ids[-1], references=ids))
    head = raw.split(b"\r\n\r\n")[0]
    assert b"=?" not in head
    assert max(len(line) for line in head.split(b"\r\n")) <= 998
    msg = parsed(raw)
    assert msg["References"].split() == [f"<{i}>" for i in ids]


def test_invalid_recipient_is_refused() -> None:
    with pytest.raises(ComposeError):
        build_message(outgoing(to=(Address("evil@x.test>, <other@y.test"),)))


def test_html_alternative_and_unencodable_text() -> None:
    msg = parsed(build_message(outgoing(text="bad \udcff byte\n", html="<p>hi</p>")))
    assert msg.get_content_type() == "multipart/alternative"
    assert msg.get_body(("html",)).get_content().strip() == "<p>hi</p>"
    assert "bad ? byte" in msg.get_body(("plain",)).get_content()


# -- templates -----------------------------------------------------------------------------------


def context(**ticket: Any) -> dict[str, Any]:
    return {
        "ticket": {
            "ref": "ACME-1",
            "tag": "[ACME-1]",
            "subject": "Printer <b>on</b> fire",
            "status": "new",
            "priority": "normal",
            "team": "",
            "assignee": "",
            "tags": [],
            "created_at": "2026-11-02T09:00:00+00:00",
            **ticket,
        },
        "requester": {"email": "carol@customer.test", "name": "Carol"},
        "message": {"body": "Help", "from": "carol@customer.test", "from_name": "", "subject": ""},
        "agent": {"email": "", "name": ""},
        "instance": {"name": "Test Support", "support_address": "support@example.com"},
        "reply_marker": "##- Please type your reply above this line -##",
        "status_url": "",
    }


@pytest.mark.parametrize("name", ["ack", "agent_reply", "resolved"])
def test_shipped_templates_render_with_the_documented_variables(name: str) -> None:
    rendered = Renderer(TEMPLATES).render(name, context())
    assert rendered.error is None
    assert "##- Please type your reply above this line -##" in rendered.text
    assert "Test Support" in rendered.text


def test_every_documented_variable_exists() -> None:
    readme = (TEMPLATES / "README.md").read_text()
    documented = {line.split("`")[1] for line in readme.splitlines() if line.startswith("| `")}
    ctx = context()
    for name in documented:
        for variable in name.split("`, `") if ", " in name else [name]:
            head, _, tail = variable.partition(".")
            if head in ctx and tail:
                assert tail in ctx[head], variable


def test_html_is_autoescaped_and_text_is_not() -> None:
    rendered = Renderer(TEMPLATES).render("ack", context())
    assert rendered.html is not None
    assert "Printer &lt;b&gt;on&lt;/b&gt; fire" in rendered.html
    assert "Printer <b>on</b> fire" in rendered.text


def custom(tmp_path: Path, source: str, name: str = "ack.txt.j2") -> Renderer:
    (tmp_path / name).write_text(source)
    return Renderer(tmp_path)


@pytest.mark.parametrize(
    ("source", "error"),
    [
        ("{{ ''.__class__.__mro__ }}", "SecurityError"),
        ("{{ ''.__class__.__mro__[1].__subclasses__() }}", "SecurityError"),
        ("{{ cycler.__init__.__globals__.os }}", "SecurityError"),
        ("{{ ticket.__class__ }}", "SecurityError"),
        ("{{ self._TemplateReference__context }}", "SecurityError"),
        ("{{ 'x' * 50000000 }}", "SecurityError"),
        ("{{ [1] * 2000000 }}", "SecurityError"),
        ("{{ 2 ** 100000000 }}", "SecurityError"),
        ("{{ 'x'|center(1000000000) }}", "SecurityError"),
        ("{{ 'x'.ljust(1000000000) }}", "SecurityError"),
        ("{{ '{:>999999999}'.format(1) }}", "SecurityError"),
        ("{{ '%999999999s' % 1 }}", "SecurityError"),
        ("{{ '%999999999s'|format(1) }}", "SecurityError"),
        (
            "{% for i in range(100000) %}{% for j in range(100000) %}x{% endfor %}{% endfor %}",
            "TemplateFailure",
        ),
        ("{{ ('x' * 1000000) ~ ('x' * 1000000) }}", "TemplateFailure"),
        ("{{ no_such_variable }}", "UndefinedError"),
        ("{{ ticket.no_such_key }}", "UndefinedError"),
        ("{% if %}", "TemplateSyntaxError"),
        ("{{ 1 / 0 }}", "ZeroDivisionError"),
        ("{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}", "RecursionError"),
        ("{% include 'nope.j2' %}", "TemplateNotFound"),
    ],
)
def test_a_failing_template_falls_back_to_the_default(
    tmp_path: Path, source: str, error: str
) -> None:
    rendered = custom(tmp_path, source).render("ack", context())
    assert rendered.error is not None and f": {error}:" in rendered.error
    assert "We have received your message" in rendered.text
    assert len(rendered.text) < MAX_OUTPUT_CHARS


def test_template_file_size_is_capped(tmp_path: Path) -> None:
    rendered = custom(tmp_path, "x" * 300_000).render("ack", context())
    assert rendered.error is not None and "larger than" in rendered.error


def test_custom_template_without_html_sends_no_shipped_html(tmp_path: Path) -> None:
    rendered = custom(tmp_path, "Hi {{ requester.name }}").render("ack", context())
    assert rendered == type(rendered)("Hi Carol", None, None)
    (tmp_path / "ack.html.j2").write_text("<p>{{ ticket.subject }}</p>")
    rendered = Renderer(tmp_path).render("ack", context())
    assert rendered.html == "<p>Printer &lt;b&gt;on&lt;/b&gt; fire</p>"


def test_partials_come_from_the_admins_folder_first(tmp_path: Path) -> None:
    (tmp_path / "_signature.txt.j2").write_text("-- custom signature")
    rendered = Renderer(tmp_path).render("ack", context())
    assert rendered.error is None and "-- custom signature" in rendered.text


def test_unknown_template_raises(tmp_path: Path) -> None:
    with pytest.raises(TemplateFailure):
        Renderer(tmp_path).render("no_such_template", context())
    assert {"ack", "agent_reply", "resolved"} <= Renderer(tmp_path).names()


# -- the loop policy -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "address",
    [
        "",
        "<>",
        "MAILER-DAEMON@mx.customer.test",
        "mailer_daemon@x.test",
        "postmaster@customer.test",
        "noreply@shop.test",
        "no-reply@shop.test",
        "no_reply+x@shop.test",
        "DoNotReply@shop.test",
        "do-not-reply@shop.test",
        "gmail-noreply@google.com",
        "bounce-12345@lists.test",
        "bounces+x=y@lists.test",
        "users-owner@lists.test",
        "owner-users@lists.test",
        "users-request@lists.test",
        "notifications@github.test",
        "root@localhost",
        "not an address",
        "carol@customer.test\r\nBcc: x@y.test",
    ],
)
def test_robot_addresses(address: str) -> None:
    assert robot_address(address) is not None


@pytest.mark.parametrize(
    "address",
    ["carol@customer.test", "Noreen@customer.test", "bounce.house@fun.test", "replyto@x.test"],
)
def test_people(address: str) -> None:
    assert robot_address(address) is None


def test_extra_robot_senders_from_config() -> None:
    assert robot_address("alerts@monitor.test", [r"^alerts@"]) is not None
    assert robot_address("alice@monitor.test", [r"^alerts@"]) is None


def make_ticket(app: App) -> Ticket:
    contact = Contact.create(email="carol@customer.test")
    return Ticket.create(subject="x", requester=contact, support_address=SUPPORT[0])


def test_refusal_support_addresses_suppression_and_rate_limit(sqlite_app: App) -> None:
    config = LoopConfig(auto_replies_per_hour=3)

    def why(address: str = "carol@customer.test", now: dt.datetime = NOW) -> str | None:
        return refusal(address, support=SUPPORT, config=config, now=now)

    assert why() is None
    assert why("Support@Example.com") == "one of our own support addresses"
    assert why("help+billing@example.org") == "one of our own support addresses"
    ticket = make_ticket(sqlite_app)
    for minutes in (0, 20, 40):
        OutboxEntry.create(
            ticket=ticket,
            kind="auto",
            auto_to="carol@customer.test",
            mail_from=SUPPORT[0],
            rcpt_tos='["carol@customer.test"]',
            raw=b"x",
            created_at=NOW + dt.timedelta(minutes=minutes),
        )
    at = NOW + dt.timedelta(minutes=50)
    assert why(now=at) == "rate limit: 3 automatic mails in the last hour"
    assert why("CAROL@customer.test", now=at) is not None
    assert why(now=NOW + dt.timedelta(minutes=61)) is None  # the first one left the window
    with write_tx(sqlite_app.db):
        suppress(["Carol@Customer.test", "carol@customer.test"], days=30, now=NOW, reason="t")
    assert Suppression.select().count() == 1
    assert why(now=NOW + dt.timedelta(days=29, hours=23)) == "suppressed after a bounce"
    assert why(now=NOW + dt.timedelta(days=30, minutes=1)) is None
    with write_tx(sqlite_app.db):
        suppress(["carol@customer.test"], days=60, now=NOW, reason="again")
    assert Suppression.get().until == NOW + dt.timedelta(days=60)


def test_attachments_go_along_with_safe_names_and_the_html_alternative() -> None:
    from maild.notify.compose import OutAttachment

    raw = build_message(
        outgoing(
            html="<p>Hello</p>",
            attachments=(
                OutAttachment("invoice.pdf", "application/pdf", b"%PDF-1.4 fake"),
                OutAttachment("../../etc/passwd\r\nBcc: x@evil.test", "text/plain", b"root:x:0:0"),
                OutAttachment("", "multipart/mixed", b"\x00\x01"),
            ),
        )
    )
    msg = parsed(raw)
    assert msg.get_content_type() == "multipart/mixed"
    assert msg.get_body(("html",)).get_content().strip() == "<p>Hello</p>"
    parts = list(msg.iter_attachments())
    assert [p.get_filename() for p in parts] == [
        "invoice.pdf",
        "passwd_Bcc_ x@evil.test",
        "attachment-3.bin",
    ]
    assert [p.get_content_type() for p in parts] == [
        "application/pdf",
        "text/plain",
        "application/octet-stream",
    ]
    assert parts[0].get_content() == b"%PDF-1.4 fake"
    assert msg["Bcc"] is None
