"""Form and status-link tokens, and the rate-limit admission rule, as pure functions."""

from __future__ import annotations

import pytest

from maild.web.ratelimit import Limiter, admit
from maild.web.tokens import (
    TokenError,
    check_form_token,
    issue_form_token,
    issue_status_token,
    read_status_token,
)

SECRET = b"s" * 32
T0 = 1_800_000_000.0


def check(token: str, now: float) -> None:
    check_form_token(SECRET, token, now, min_seconds=3, max_seconds=3600)


def test_a_form_token_is_refused_within_three_seconds_and_accepted_after() -> None:
    token = issue_form_token(SECRET, T0)
    with pytest.raises(TokenError):
        check(token, T0 + 2.9)
    check(token, T0 + 3.1)


def test_a_form_token_expires() -> None:
    token = issue_form_token(SECRET, T0)
    with pytest.raises(TokenError):
        check(token, T0 + 3601)


@pytest.mark.parametrize("bad", ["", "x", "eyJ0IjoxfQ.AAAA"])
def test_garbage_and_foreign_form_tokens_are_refused(bad: str) -> None:
    with pytest.raises(TokenError):
        check(bad, T0)
    with pytest.raises(TokenError):
        check(issue_form_token(b"other secret", T0), T0 + 10)


def test_a_status_token_names_its_ticket_and_recipient_without_the_address() -> None:
    token = issue_status_token(SECRET, 42, "Carol@Customer.example", T0)
    assert "carol" not in token.lower()
    claim = read_status_token(SECRET, token, now=T0 + 86400, max_days=90)
    assert claim.ticket == 42
    assert claim.is_for(SECRET, "carol@customer.example")
    assert not claim.is_for(SECRET, "dan@customer.example")


def test_a_status_token_expires_after_link_days() -> None:
    token = issue_status_token(SECRET, 42, "carol@customer.example", T0)
    read_status_token(SECRET, token, now=T0 + 89 * 86400, max_days=90)
    with pytest.raises(TokenError):
        read_status_token(SECRET, token, now=T0 + 91 * 86400, max_days=90)


def test_a_status_token_cannot_be_used_as_a_form_token_or_tampered() -> None:
    token = issue_status_token(SECRET, 42, "carol@customer.example", T0)
    with pytest.raises(TokenError):
        check(token, T0 + 10)
    with pytest.raises(TokenError):
        read_status_token(
            SECRET, token[:-1] + ("A" if token[-1] != "A" else "B"), now=T0, max_days=90
        )
    with pytest.raises(TokenError):
        read_status_token(SECRET, issue_form_token(SECRET, T0), now=T0, max_days=90)


def test_a_request_refused_by_one_limit_uses_up_no_other() -> None:
    limiter = Limiter()
    per_ip = limiter.limit("ip", "2/hour")
    total = limiter.limit("all", "3/hour")
    assert admit((per_ip, "a"), (total, "all"))
    assert admit((per_ip, "a"), (total, "all"))
    assert not admit((per_ip, "a"), (total, "all"))  # a's limit: the total is not counted
    assert admit((per_ip, "b"), (total, "all"))
    assert not admit((per_ip, "c"), (total, "all"))  # the total is full for everyone
