"""Trust in an agent's From: the ticket's signed address, or our MTA's Authentication-Results."""

from __future__ import annotations

from maild.agents.trust import check
from maild.pipeline.addresses import Signer
from maild.pipeline.parse import parse_message
from tests.mailgen import make_mail

SIGNER = Signer("ACME", b"k" * 32)
SUPPORT = ["support@example.com"]
MX = "mx.example.com"


def agent_mail(to: str, ar: str | None = None) -> bytes:
    """Alice's mail as our MTA hands it on: its verdict above the Received line it adds."""
    raw = make_mail(sender="Alice <alice@example.com>", to=to, subject="[ACME-7] x")
    received = b"Received: from mail.example.com by mx.example.com (Postfix) id 4Q\r\n"
    top = f"Authentication-Results: {ar}\r\n".encode() if ar else b""
    return top + received + raw


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
    forged = make_mail(
        sender="Alice <alice@example.com>",
        to="support@example.com",
        subject="[ACME-7] x",
        headers={"Authentication-Results": f"{MX}; dmarc=pass header.from=example.com"},
    )
    # What our MTA prepends on arrival: its verdict, then its Received line, above the sender's.
    received = (
        f"Authentication-Results: {MX}; dkim=none; dmarc=none header.from=example.com\r\n"
        "Received: from evil.test (evil.test [192.0.2.1]) by mx.example.com\r\n"
    ).encode()
    assert not verdict(received + forged).trusted
    assert not verdict(forged).trusted  # no Received at all: no MTA wrote it
