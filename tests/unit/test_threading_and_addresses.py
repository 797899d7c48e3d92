"""Subject tags, reply prefixes, signed addresses and Message-IDs, attachment names."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from maild.pipeline.addresses import Signer, base_address, is_support_address
from maild.pipeline.parse import parse_message
from maild.pipeline.thread import find_ticket, strip_reply_prefixes, tag_numbers
from maild.store.attachments import blob_path, sanitize_filename

SIGNER = Signer("ACME", b"k" * 32)


@pytest.mark.parametrize(
    ("subject", "numbers"),
    [
        ("[ACME-1042] Printer", [1042]),
        ("Re: RE: AW: [ACME-7] x", [7]),
        ("Fwd: question [acme-12] about", [12]),
        ("[ ACME-3 ] spaced", [3]),
        ("[OTHER-5] foreign", []),
        ("ACME-5 without brackets", []),
        ("[ACME-] empty", []),
        ("[XACME-5] longer prefix", []),
    ],
)
def test_tag_numbers(subject: str, numbers: list[int]) -> None:
    assert tag_numbers(subject, "ACME") == numbers


@pytest.mark.parametrize(
    ("subject", "clean"),
    [
        ("Re: Re: RE[2]: AW: SV: Fwd: Hello", "Hello"),
        ("WG: Antw: Hallo", "Hallo"),
        ("回复: 你好", "你好"),
        ("Regarding: Re", "Regarding: Re"),
        ("Reorder stock", "Reorder stock"),
    ],
)
def test_strip_reply_prefixes(subject: str, clean: str) -> None:
    assert strip_reply_prefixes(subject) == clean


def test_signed_reply_address_round_trip_and_tampering() -> None:
    address = SIGNER.reply_address("support@example.com", 42)
    assert address.startswith("support+ACME-42.")
    support = ["support@example.com"]
    assert SIGNER.ticket_from_address(address, support) == 42
    assert SIGNER.ticket_from_address(address.upper(), support) == 42  # MTAs may change case
    assert SIGNER.ticket_from_address(address.replace("-42.", "-43."), support) is None
    assert SIGNER.ticket_from_address(address, ["other@example.com"]) is None
    other = Signer("ACME", b"z" * 32)
    assert other.ticket_from_address(address, support) is None


def test_signed_message_ids() -> None:
    mid = SIGNER.message_id(7, "example.com")
    assert SIGNER.ticket_from_message_id(mid) == 7
    assert SIGNER.ticket_from_message_id(mid.replace("ACME-7.", "ACME-8.")) is None
    assert SIGNER.ticket_from_message_id("random@customer.test") is None
    assert SIGNER.message_id(7, "example.com") != mid


@given(st.text(max_size=60))
@settings(max_examples=200, derandomize=True, deadline=None)
def test_forged_addresses_never_verify(local: str) -> None:
    address = f"support+ACME-1.{local}@example.com"
    if SIGNER.ticket_from_address(address, ["support@example.com"]) is not None:
        assert address.lower() == SIGNER.reply_address("support@example.com", 1).lower()


def test_support_address_forms() -> None:
    support = ["support@example.com"]
    assert is_support_address("Support+billing@EXAMPLE.com", support)
    assert not is_support_address("support@example.com.evil.test", support)
    assert base_address("A+b+c@X.org") == "a@x.org"


@pytest.mark.parametrize(
    ("name", "safe"),
    [
        ("../../etc/passwd", "passwd"),
        ("/etc/shadow", "shadow"),
        ("..\\..\\boot.ini", "boot.ini"),
        ("C:\\Windows\\evil.exe", "evil.exe"),
        ("...hidden", "hidden"),
        ("a\x00b\nc.txt", "a_b_c.txt"),
        ("", "attachment-1.pdf"),
        ("..", "attachment-1.pdf"),
    ],
)
def test_sanitize_filename(name: str, safe: str) -> None:
    assert sanitize_filename(name, content_type="application/pdf") == safe


@given(st.text(max_size=400))
@settings(max_examples=300, derandomize=True, deadline=None)
def test_sanitized_names_are_never_paths(name: str) -> None:
    safe = sanitize_filename(name)
    assert "/" not in safe and "\\" not in safe and "\x00" not in safe
    assert not safe.startswith(".") and safe not in ("", ".", "..")
    assert len(safe.encode("utf-8")) <= 200


def test_blob_path_accepts_only_digests(tmp_path) -> None:
    with pytest.raises(ValueError):
        blob_path(tmp_path, "../../etc/passwd")
    assert blob_path(tmp_path, "a" * 64) == tmp_path / "aa" / ("a" * 64)


# -- one message cannot make the worker run millions of lookups under the write lock.
# Threading runs inside the worker's write transaction (on SQLite the database write lock, which
# SMTP intake needs to spool). Every In-Reply-To id, subject tag and bounce reference was looked up
# in the database, one query each, with no bound: a 3 MB message with 200,000 ids in In-Reply-To
# held the lock for about 14 seconds (SMTP intake answers 451 after 5), a 25 MB one for minutes.


def _raw(headers: str) -> bytes:
    return (
        "From: a@customer.test\r\nTo: support@example.com\r\n"
        f"Message-ID: <m1@customer.test>\r\n{headers}\r\n\r\nbody\r\n"
    ).encode()


def _count_lookups(msg, extra=()) -> tuple[int, int]:
    looked_up: list[str] = []
    checked: list[int] = []

    def exists(number: int) -> bool:
        checked.append(number)
        return False

    def ticket_of_message_id(message_id: str) -> int | None:
        looked_up.append(message_id)
        return None

    assert (
        find_ticket(
            msg,
            signer=SIGNER,
            support=["support@example.com"],
            exists=exists,
            ticket_of_message_id=ticket_of_message_id,
            extra_message_ids=extra,
        )
        is None
    )
    return len(looked_up), len(checked)


def test_a_huge_in_reply_to_is_looked_up_a_bounded_number_of_times() -> None:
    ids = " ".join(f"<{i}@x.test>" for i in range(20_000))
    msg = parse_message(_raw(f"Subject: hi\r\nIn-Reply-To: {ids}"))
    lookups, _ = _count_lookups(msg)
    assert lookups <= 100


def test_a_subject_full_of_tags_is_checked_a_bounded_number_of_times() -> None:
    tags = " ".join(f"[ACME-{i}]" for i in range(1, 20_000))
    msg = parse_message(_raw(f"Subject: {tags}"))
    _, checked = _count_lookups(msg)
    assert checked <= 100


def test_many_bounce_references_are_looked_up_a_bounded_number_of_times() -> None:
    msg = parse_message(_raw("Subject: hi"))
    extra = [f"{i}@x.test" for i in range(20_000)]
    lookups, _ = _count_lookups(msg, extra)
    assert lookups <= 100


def test_the_first_in_reply_to_id_still_threads() -> None:
    ids = " ".join(f"<{i}@x.test>" for i in range(20_000))
    msg = parse_message(_raw(f"Subject: hi\r\nIn-Reply-To: <ours@example.com> {ids}"))
    match = find_ticket(
        msg,
        signer=SIGNER,
        support=["support@example.com"],
        exists=lambda n: n == 7,
        ticket_of_message_id=lambda m: 7 if m == "ours@example.com" else None,
    )
    assert match is not None and match.number == 7
