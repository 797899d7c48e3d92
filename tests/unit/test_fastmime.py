"""Plain outgoing mail written directly means the same, header by header and part by part, as the
stdlib's; anything outside the whitelist goes the stdlib way, where the re-parse check guards it."""

from __future__ import annotations

import dataclasses
import datetime as dt
from email import policy
from email.parser import BytesParser

import pytest

from maild.notify.compose import Outgoing, _build, build_message
from maild.notify.fastmime import build_plain
from maild.pipeline.message import Address

PLAIN = Outgoing(
    from_addr=Address("support@example.com", "Test Support"),
    to=(Address("carol@customer.test", "Carol Customer"), Address("dan@customer.test")),
    cc=(Address("erin@customer.test", "Erin"),),
    reply_to=Address("support+acme-1.x1y2@example.com", "Test Support"),
    subject="[ACME-1] Re: " + " ".join(f"word{i}" for i in range(30)),
    thread_topic="Printer on fire",
    date=dt.datetime(2026, 1, 2, 3, 4, 5),
    message_id="acme-1.abc@example.com",
    in_reply_to="orig@customer.test",
    references=tuple(f"ref{i}.{'x' * 60}@customer.test" for i in range(20)),
    loop_token="t0k3n",
    auto_submitted="auto-replied",
    text="Hello Carol,\n\nwe got your message. Grüße\n",
    html="<p>Hello Carol,</p>\n",
    attachments=(),
)


def parsed(raw: bytes):
    return BytesParser(policy=policy.default).parsebytes(raw)


@pytest.mark.parametrize("html", ["<p>Hello Carol,</p>\n", None])
def test_plain_mail_written_directly_means_what_the_stdlib_writes(html) -> None:
    out = dataclasses.replace(PLAIN, html=html)
    fast = build_plain(out, out.text, out.html)
    assert fast is not None
    a, b = parsed(fast), parsed(_build(out, with_names=True))
    names = [k for k in b if k.lower() != "content-type"]
    assert sorted(k for k in a if k.lower() != "content-type") == sorted(names)
    for name in names:
        assert str(a[name]) == str(b[name]), name
    assert a.get_content_type() == b.get_content_type()
    for kind in ("plain", "html"):
        pa, pb = a.get_body((kind,)), b.get_body((kind,))
        assert (pa and pa.get_content()) == (pb and pb.get_content())
    head = fast.split(b"\r\n\r\n")[0].decode()
    assert all(len(line) <= 998 for line in head.split("\r\n"))
    subject = head[head.index("Subject:") : head.index("\r\nDate:")].split("\r\n")
    assert len(subject) > 1 and all(len(line) <= 78 for line in subject)  # folded
    assert build_message(out) != _build(out, with_names=True)  # the direct path is the one taken


@pytest.mark.parametrize(
    "change",
    [
        {"subject": "Hi\r\nBcc: victim@evil.test"},
        {"subject": "=?utf-8?q?forged?="},
        {"subject": "Grüße"},
        {"to": (Address("carol@customer.test", "Carol\r\nBcc: x@evil.test"),)},
        {"to": (Address("carol@customer.test", 'Carol "The Boss", Inc.'),)},
        {"from_addr": Address("support@example.com", "Ünïcode Support")},
        {"in_reply_to": "a>\r\nBcc: x@evil.test"},
        {"loop_token": "tok\nBcc: x@evil.test"},
        {"text": "x" * 1200},
        {"attachments": (object(),)},
    ],
)
def test_anything_outside_the_whitelist_goes_the_stdlib_way(change) -> None:
    out = dataclasses.replace(PLAIN, **change)
    assert build_plain(out, out.text, out.html) is None
