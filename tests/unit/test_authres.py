"""Reading our border MTA's Authentication-Results (RFC 8601) in the shapes real MTAs write.

Postfix with the OpenDKIM and OpenDMARC milters writes one header per milter; rspamd writes one
header with every method. Only headers with our authserv-id above the first Received count.
"""

from __future__ import annotations

import pytest

from maild.pipeline.authres import dmarc_fails, our_results, parse_header, vouches_for
from maild.pipeline.parse import parse_message

MX = "mx.example.com"
OPENDKIM = (
    f"Authentication-Results: {MX};\r\n"
    "\tdkim=pass (2048-bit key; unprotected) header.d=example.com\r\n"
    "\theader.i=@example.com header.a=rsa-sha256 header.s=mail header.b=AbCdEfGh;\r\n"
    "\tdkim-atps=neutral\r\n"
)
OPENDMARC = (
    f"Authentication-Results: {MX}; dmarc=pass (p=reject dis=none) header.from=example.com\r\n"
)
RSPAMD = (
    f"Authentication-Results: {MX};\r\n"
    "\tdkim=pass header.d=example.com header.s=dkim header.b=Xy3Zab12;\r\n"
    f"\tspf=pass ({MX}: domain of alice@example.com designates 192.0.2.10 as permitted sender)"
    " smtp.mailfrom=alice@example.com;\r\n"
    "\tdmarc=pass (policy=reject) header.from=example.com\r\n"
)
RSPAMD_FAIL = (
    f"Authentication-Results: {MX};\r\n"
    '\tdkim=fail ("headers rsa verify failed") header.d=example.com header.s=dkim header.b=Xy3;\r\n'
    "\tspf=fail smtp.mailfrom=alice@example.com;\r\n"
    '\tdmarc=fail reason="No valid SPF, No valid DKIM" header.from=example.com (policy=reject)\r\n'
)
RECEIVED = (
    "Received: from mail.example.com (mail.example.com [192.0.2.10])\r\n"
    "\tby mx.example.com (Postfix) with ESMTPS id 4Q1ab2CdEf\r\n"
    "\tfor <support@example.com>; Thu,  3 Dec 2026 12:00:00 +0000 (UTC)\r\n"
)
SENDERS_RECEIVED = "Received: from laptop (unknown [198.51.100.7]) by mail.example.com\r\n"
BODY = (
    "From: Alice <alice@example.com>\r\nTo: support@example.com\r\nSubject: x\r\n"
    "Message-ID: <a1@example.com>\r\nDate: Thu, 03 Dec 2026 11:59:00 +0000\r\n\r\nHi\r\n"
)


def results(*header_lines: str):
    msg = parse_message("".join([*header_lines, BODY]).encode())
    return our_results(msg.headers, MX)


def test_postfix_with_opendkim_and_opendmarc_is_read() -> None:
    found = results(
        OPENDMARC, OPENDKIM, "DKIM-Filter: OpenDKIM Filter v2.11.0 mx 4Q1\r\n", RECEIVED
    )
    assert [(r.method, r.result) for r in found] == [
        ("dmarc", "pass"),
        ("dkim", "pass"),
        ("dkim-atps", "neutral"),
    ]
    assert vouches_for(found, "example.com") == "dmarc=pass header.from=example.com"
    assert vouches_for(results(OPENDKIM, RECEIVED), "example.com") == (
        "dkim=pass header.d=example.com"
    )


def test_rspamd_header_is_read_pass_and_fail() -> None:
    assert vouches_for(results(RSPAMD, RECEIVED), "example.com") is not None
    failed = results(RSPAMD_FAIL, RECEIVED)
    assert [(r.method, r.result) for r in failed] == [
        ("dkim", "fail"),
        ("spf", "fail"),
        ("dmarc", "fail"),
    ]
    assert vouches_for(failed, "example.com") is None
    assert dmarc_fails(failed, "example.com") and not dmarc_fails(failed, "other.test")


def test_header_below_received_is_ignored() -> None:
    assert results(RECEIVED, OPENDMARC, SENDERS_RECEIVED) == ()
    assert results(RECEIVED, SENDERS_RECEIVED, RSPAMD) == ()


def test_without_any_received_header_nothing_counts() -> None:
    """Such a mail came straight from its sender, who wrote every header."""
    assert results(OPENDMARC) == ()


def test_another_authserv_id_is_ignored() -> None:
    other = OPENDMARC.replace(MX, "mx.evil.test")
    assert results(other, RECEIVED) == ()


def test_a_second_header_with_our_id_added_by_the_sender_does_not_win() -> None:
    """The sender's own header with our id sits under our Received; and if one ever stood beside
    ours, our MTA's dmarc=fail for the domain still wins over its pass."""
    forged = OPENDMARC
    real_fail = RSPAMD_FAIL
    assert (
        vouches_for(results(real_fail, RECEIVED, forged, SENDERS_RECEIVED), "example.com") is None
    )
    assert vouches_for(results(forged, real_fail, RECEIVED), "example.com") is None
    assert vouches_for(results(real_fail, forged, RECEIVED), "example.com") is None


@pytest.mark.parametrize(
    ("value", "domain", "expected"),
    [
        ("dkim=pass header.i=@example.com", "example.com", None),  # header.i alone
        ("dkim=pass header.d=evil.test header.i=@example.com", "example.com", None),
        ("dkim=pass header.d=example.com", "mail.example.com", "dkim=pass header.d=example.com"),
        ("dkim=pass header.d=Example.COM", "example.com", "dkim=pass header.d=example.com"),
        ("dkim=pass header.d=mail.example.com", "example.com", None),  # a child is not the parent
        ("dkim=pass header.d=com", "example.com", None),  # one label is no parent
        ("dkim=pass header.d=xample.com", "example.com", None),  # look-alike: suffix, no dot
        ("dkim=pass header.d=example.com.evil.test", "example.com", None),
        ("dkim=pass header.d=examp1e.com", "example.com", None),
        ("dmarc=pass header.from=example.com", "mail.example.com", None),  # DMARC: exact
        ("dmarc=pass", "example.com", None),  # for which domain?
        ("spf=pass smtp.mailfrom=alice@example.com", "example.com", None),  # SPF alone
        ("dkim=neutral header.d=example.com", "example.com", None),
    ],
)
def test_which_results_vouch_for_a_domain(value: str, domain: str, expected: str | None) -> None:
    parsed = parse_header(f"{MX}; {value}")
    assert parsed is not None
    assert vouches_for(parsed[1], domain) == expected


def test_unreadable_header_is_skipped() -> None:
    parse_header("mx.example.com; dkim=")  # must not raise
    garbage = "Authentication-Results: ;;; ===\r\n"
    assert results(garbage, OPENDMARC, RECEIVED)[0].method == "dmarc"
