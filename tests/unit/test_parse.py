"""Parsing never raises anything but ParseError, whatever the bytes (Hypothesis)."""

from __future__ import annotations

import contextlib

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from maild.pipeline.parse import ParseError, parse_message
from tests.mailgen import make_mail

HEADERS = st.sampled_from(
    [
        b"From: ",
        b"To: ",
        b"Subject: ",
        b"Content-Type: multipart/mixed; boundary=",
        b"Message-ID: ",
        b"Content-Transfer-Encoding: ",
        b"In-Reply-To: ",
        b"Content-Disposition: attachment; filename=",
        b"MIME-Version: 1.0",
        b"--",
        b"\r\n",
        b"\n",
        b"=?utf-8?b?",
        b"=?iso-8859-1?q?",
        b"?=",
    ]
)


@given(st.lists(st.one_of(HEADERS, st.binary(max_size=40)), max_size=40))
@settings(
    max_examples=400, derandomize=True, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
def test_parse_is_total(chunks: list[bytes]) -> None:
    raw = b"".join(chunks)
    try:
        msg = parse_message(raw)
    except ParseError:
        return
    assert isinstance(msg.subject, str) and "\n" not in msg.subject
    assert msg.dedup_key


@given(st.binary(max_size=2000))
@settings(max_examples=200, derandomize=True, deadline=None)
def test_mutated_real_message(noise: bytes) -> None:
    raw = make_mail(attachments=[("a.bin", "application/octet-stream", b"123")])
    cut = len(noise) % len(raw)
    with contextlib.suppress(ParseError):
        parse_message(raw[:cut] + noise + raw[cut:])


def test_fields() -> None:
    raw = make_mail(
        cc="Dan <dan@customer.test>",
        in_reply_to="<a@b>",
        references="<x@y> <a@b>",
        message_id="<m1@customer.test>",
    )
    msg = parse_message(raw, mail_from="carol@customer.test", rcpt_tos=["Support@Example.com"])
    assert msg.message_id == "m1@customer.test" and msg.dedup_key == "mid:m1@customer.test"
    assert msg.from_addr is not None and msg.from_addr.email == "carol@customer.test"
    assert [a.email for a in msg.cc] == ["dan@customer.test"]
    assert msg.in_reply_to == ("a@b",) and msg.references == ("x@y", "a@b")
    assert msg.recipients == ("support@example.com", "dan@customer.test")
    assert msg.date is not None and msg.date.tzinfo is None
