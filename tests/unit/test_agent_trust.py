"""Trust in an agent's From: the ticket's signed address, or our MTA's Authentication-Results."""

from __future__ import annotations

import pytest

from maild.agents.trust import check, our_results, parse_header, passing, strip_comments
from maild.pipeline.addresses import Signer
from maild.pipeline.parse import parse_message
from tests.mailgen import make_mail

SIGNER = Signer("ACME", b"k" * 32)
SUPPORT = ["support@example.com"]
MX = "mx.example.com"


def test_parse_header_reads_methods_properties_comments_and_quotes() -> None:
    value = (
        "mx.example.com 1; dkim=pass (2048-bit key; secure) header.d=Example.COM "
        'header.i=@example.com header.b="aB+c=";\n spf = pass smtp.mailfrom=alice@example.com;'
        " dmarc=pass (p=reject dis=none) header.from=example.com; arc=none"
    )
    authserv, results = parse_header(value)
    assert authserv == MX
    assert [(r.method, r.result) for r in results] == [
        ("dkim", "pass"),
        ("spf", "pass"),
        ("dmarc", "pass"),
        ("arc", "none"),
    ]
    assert results[0].prop("header.d") == "example.com"
    assert results[0].prop("header.b") == "aB+c="
    assert parse_header("mx.example.com; none") == (MX, ())
    assert parse_header("   ") is None
    assert strip_comments('a (b (c) d) "e (f)" g') == 'a   "e (f)" g'


def headers(*pairs: tuple[str, str]) -> tuple[tuple[str, str], ...]:
    return tuple((k.lower(), v) for k, v in pairs)


AR = "Authentication-Results"


def test_only_the_topmost_headers_of_our_authserv_id_count() -> None:
    ours = f"{MX}; dkim=pass header.d=example.com"
    forged = f"{MX}; dmarc=pass header.from=example.com"
    top = headers(
        (AR, "other.example.net; dmarc=pass header.from=example.com"),  # another id: ignored
        (AR, ours),
        (AR, f"{MX}; spf=pass smtp.mailfrom=example.com"),  # adjacent: counts
        ("Received", "from evil.test by mx.example.com"),
        (AR, forged),  # the sender's own: below a Received, ignored
    )
    found = our_results(top, "MX.example.com")
    assert [r.method for r in found] == ["dkim", "spf"]
    assert our_results(top, "nobody.example.com") == ()


@pytest.mark.parametrize(
    ("value", "domain", "expected"),
    [
        ("dmarc=pass header.from=example.com", "example.com", "dmarc=pass header.from=example.com"),
        ("dkim=pass header.d=example.com", "example.com", "dkim=pass header.d=example.com"),
        (
            "dkim=pass header.i=alice@example.com",
            "example.com",
            "dkim=pass header.i=alice@example.com",
        ),
        ("dkim=pass header.d=evil.test", "example.com", None),
        ("dkim=pass header.d=mail.example.com", "example.com", None),  # exact domain only
        ("dmarc=fail header.from=example.com", "example.com", None),
        ("dkim=neutral header.d=example.com", "example.com", None),
        ("dmarc=pass", "example.com", None),  # no header.from: for which domain?
        ("spf=pass smtp.mailfrom=example.com", "example.com", None),  # SPF alone is not enough
    ],
)
def test_passing(value: str, domain: str, expected: str | None) -> None:
    _, results = parse_header(f"{MX}; {value}")
    assert passing(results, domain) == expected


def agent_mail(to: str, ar: str | None = None) -> bytes:
    extra = {"Authentication-Results": ar} if ar else None
    return make_mail(sender="Alice <alice@example.com>", to=to, subject="[ACME-7] x", headers=extra)


def verdict(raw: bytes, *, authserv: str | None = MX, number: int = 7, rcpt: tuple[str, ...] = ()):
    msg = parse_message(raw, rcpt_tos=rcpt)
    return check(
        msg,
        agent_email="alice@example.com",
        number=number,
        signer=SIGNER,
        support=SUPPORT,
        authserv_id=authserv,
    )


def test_the_agents_own_signed_address_is_trusted() -> None:
    signed = SIGNER.agent_reply_address("support@example.com", 7, "alice@example.com")
    assert verdict(agent_mail(signed)).how == "signed reply address"
    assert verdict(agent_mail("support@example.com"), rcpt=(signed,)).trusted  # envelope only
    assert not verdict(agent_mail(signed), number=8).trusted  # another ticket's address


def test_the_tickets_address_that_customers_see_is_not_enough() -> None:
    """Every acknowledgement shows the ticket's address: a customer who forges Alice's From and
    writes to it must not become Alice. Nor may Bob's own address vouch for Alice."""
    assert not verdict(agent_mail(SIGNER.reply_address("support@example.com", 7))).trusted
    bobs = SIGNER.agent_reply_address("support@example.com", 7, "bob@example.com")
    assert not verdict(agent_mail(bobs)).trusted


def test_tampered_token_is_not_trusted() -> None:
    signed = SIGNER.agent_reply_address("support@example.com", 7, "alice@example.com")
    local, _, domain = signed.partition("@")
    tampered = local[:-1] + ("0" if local[-1] != "0" else "1") + "@" + domain
    result = verdict(agent_mail(tampered))
    assert not result.trusted and "signed reply address" in result.how
    assert not verdict(agent_mail(signed.replace("ACME-7", "ACME-8"))).trusted


def test_authentication_results_of_our_mta_are_trusted_others_are_not() -> None:
    good = f"{MX}; dkim=pass header.d=example.com"
    assert verdict(agent_mail("support@example.com", good)).trusted
    wrong_id = "mx.evil.test; dkim=pass header.d=example.com"
    result = verdict(agent_mail("support@example.com", wrong_id))
    assert not result.trusted and "mx.example.com" in result.how
    unconfigured = verdict(agent_mail("support@example.com", good), authserv=None)
    assert not unconfigured.trusted and "authserv_id is not configured" in unconfigured.how
    failed = verdict(agent_mail("support@example.com", f"{MX}; dkim=fail header.d=example.com"))
    assert not failed.trusted


def test_forged_header_below_our_own_does_not_count() -> None:
    raw = agent_mail("support@example.com", f"{MX}; dmarc=pass header.from=example.com")
    # What our MTA prepends on arrival: its verdict, then its Received line, above the sender's.
    received = (
        f"Authentication-Results: {MX}; dkim=none; dmarc=fail header.from=example.com\r\n"
        "Received: from evil.test (evil.test [192.0.2.1]) by mx.example.com\r\n"
    ).encode()
    assert not verdict(received + raw).trusted
    assert verdict(raw).trusted  # the same header at the top would count
