"""Pure rules of the webhooks: which addresses are refused, what an answer means, which event an
audit event is."""

from __future__ import annotations

import ipaddress

import pytest

from maild.webhooks.events import describe
from maild.webhooks.guard import refused_address, refused_ip
from maild.webhooks.sender import judge, retry_after


@pytest.mark.parametrize(
    ("ip", "why"),
    [
        ("127.0.0.1", "loopback"),
        ("::1", "loopback"),
        ("10.0.0.5", "private"),
        ("172.16.3.4", "private"),
        ("192.168.1.1", "private"),
        ("fd00::1", "private"),
        ("169.254.169.254", "link-local"),
        ("fe80::1", "link-local"),
        ("100.64.0.1", "shared"),
        ("0.0.0.0", "reserved"),
        ("224.0.0.1", "reserved"),
        ("::ffff:127.0.0.1", "loopback"),
        ("2002:c0a8:0101::1", "wrapping 192.168.1.1"),  # 6to4 of a private address
        ("2002:7f00:0001::1", "wrapping 127.0.0.1"),
    ],
)
def test_private_loopback_and_link_local_addresses_are_refused(ip: str, why: str) -> None:
    reason = refused_ip(ipaddress.ip_address(ip))
    assert reason is not None and why in reason


@pytest.mark.parametrize(
    "ip", ["93.184.215.14", "2606:4700::6810:84e5", "8.8.8.8", "2002:0808:0808::1"]
)
def test_public_addresses_pass(ip: str) -> None:
    assert refused_ip(ipaddress.ip_address(ip)) is None


def test_names_are_left_to_the_resolver_but_localhost_is_refused_at_once() -> None:
    assert refused_address("crm.example.com") is None
    assert refused_address("localhost") == "a loopback address"
    assert refused_address("api.localhost") == "a loopback address"
    assert refused_address("[::1]") == "a loopback address"


@pytest.mark.parametrize(
    ("status", "ok", "retry"),
    [
        (200, True, False),
        (204, True, False),
        (302, False, False),
        (400, False, False),
        (401, False, False),
        (404, False, False),
        (408, False, True),
        (429, False, True),
        (500, False, True),
        (503, False, True),
    ],
)
def test_what_an_answer_means(status: int, ok: bool, retry: bool) -> None:
    outcome = judge(status, "Reason", "body", {})
    assert (outcome.ok, outcome.retry, outcome.status) == (ok, retry, status)


def test_429_carries_its_retry_after_and_a_redirect_names_where_it_pointed() -> None:
    assert judge(429, "Too Many", "", {"Retry-After": "120"}).retry_after == 120.0
    assert "not followed" in judge(301, "Moved", "", {"Location": "http://10.0.0.1/"}).detail


def test_retry_after_reads_seconds_and_http_dates() -> None:
    assert retry_after("7") == 7.0
    assert retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # in the past: at once
    assert retry_after("soon") is None and retry_after(None) is None


def test_audit_events_become_webhook_events() -> None:
    assert describe("created", {}, None).name == "ticket.created"
    assert describe("message", {}, "customer").name == "message.created"
    assert describe("message", {}, "robot") is None
    assert describe("answered", {}, "agent").answer
    assert describe("agent_note", {}, "note").note
    status = describe("status", {"old": "open", "new": "pending"}, None)
    assert status.extra == {"changes": {"status": {"old": "open", "new": "pending"}}}
    assert status.status == "pending"
    tags = describe("tag_added", {"tag": "vip"}, None)
    assert tags.extra == {"changes": {"tags": {"added": ["vip"]}}}
    assert describe("escalation", {"breach": True}, None).name == "sla.breached"
    assert describe("escalation", {"breach": False}, None).name == "sla.warning"
    assert describe("satisfaction", {"rating": 5}, None).extra["satisfaction"]["rating"] == 5
    assert describe("mail_queued", {}, None) is None
