"""Who takes part in a ticket, what happens to a stranger's mail, and how names are shown."""

from __future__ import annotations

import pytest

from maild.pipeline.addresses import Signer
from maild.pipeline.participants import at_signed_address, shown_name, standing

SIGNER = Signer("ACME", b"k" * 32)
SUPPORT = ["support@example.com"]
CAROL = "carol@customer.test"


@pytest.mark.parametrize(
    ("sender", "why"),
    [
        (CAROL, "requester"),
        ("Carol@Customer.TEST", "requester"),  # a different case
        ("carol+work@customer.test", "requester"),  # a plus-address
        ("dan@customer.test", "watcher"),
        ("DAN+cc@customer.test", "watcher"),
        ("alice@example.com", "agent"),
    ],
)
def test_participants_by_address_case_and_plus_tag_ignored(sender: str, why: str) -> None:
    found = standing(
        sender, requester=CAROL, watchers=["dan@customer.test"], agents=["alice@example.com"]
    )
    assert found.participant and found.why == why


@pytest.mark.parametrize("mode", ["note", "new_ticket", "append"])
def test_anyone_else_gets_the_configured_mode(mode: str) -> None:
    found = standing("stranger@evil.test", requester=CAROL, watchers=[], mode=mode)
    assert not found.participant and found.handling == mode and found.why == "non-participant"
    # carol.evil@customer.test or a look-alike domain is no plus-address of Carol's
    for other in ("carolx@customer.test", "carol@customer.test.evil", "carol@ustomer.test"):
        assert not standing(other, requester=CAROL).participant


def test_a_removed_watcher_is_no_participant() -> None:
    assert standing(
        "dan@customer.test", requester=CAROL, watchers=["dan@customer.test"]
    ).participant
    assert not standing("dan@customer.test", requester=CAROL, watchers=[]).participant


def test_the_signed_reply_address_proves_a_participant() -> None:
    address = SIGNER.reply_address("support@example.com", 7)
    assert at_signed_address(["support@example.com", address], 7, SIGNER, SUPPORT)
    assert not at_signed_address([address], 8, SIGNER, SUPPORT)
    assert not at_signed_address(["support+ACME-7.0000000000@example.com"], 7, SIGNER, SUPPORT)
    found = standing("colleague@customer.test", requester=CAROL, signed=True)
    assert found.participant and found.why == "signed reply address"


def test_an_unknown_mode_is_an_error() -> None:
    with pytest.raises(ValueError, match="non_participants"):
        standing("x@evil.test", requester=CAROL, mode="drop")


@pytest.mark.parametrize(
    ("name", "shown"),
    [
        ("Bob Builder", "Bob Builder"),
        ("bob@example.com", "bob@example.com <attacker@evil.test>"),
        ("Bob (bob@example.com)", "Bob (bob@example.com) <attacker@evil.test>"),
        ("bob\uff20example.com", "bob\uff20example.com <attacker@evil.test>"),  # fullwidth @
        ("ALICE@EXAMPLE.COM", "ALICE@EXAMPLE.COM <attacker@evil.test>"),  # an agent's address
        ("", ""),
        (None, ""),
    ],
)
def test_names_that_could_pass_for_an_address_show_the_real_one(name, shown) -> None:
    assert shown_name(name, "attacker@evil.test", agents=["alice@example.com"]) == shown


def test_a_merged_tickets_number_counts_and_the_resolver_is_asked_only_about_others() -> None:
    from maild.pipeline.participants import counts_for

    asked: list[int] = []

    def resolve(n: int) -> int:
        asked.append(n)
        return 7 if n == 3 else n

    assert counts_for([7, None], 7, resolve) and asked == []  # its own number: no lookup
    assert counts_for([None, 3], 7, resolve) and asked == [3]  # ticket 3 was merged into 7
    assert not counts_for([4], 7, resolve)
    assert not counts_for([3], 7, None) and not counts_for([None], 7, resolve)
