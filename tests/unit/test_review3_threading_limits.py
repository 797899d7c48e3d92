"""Review 3: one message cannot make the worker run millions of lookups under the write lock.

Threading runs inside the worker's write transaction (on SQLite the database write lock, which
SMTP intake needs to spool). Every In-Reply-To id, subject tag and bounce reference was looked up
in the database, one query each, with no bound: a 3 MB message with 200,000 ids in In-Reply-To
held the lock for about 14 seconds (SMTP intake answers 451 after 5), a 25 MB one for minutes.
"""

from __future__ import annotations

from maild.pipeline.addresses import Signer
from maild.pipeline.parse import parse_message
from maild.pipeline.thread import find_ticket

SIGNER = Signer("ACME", b"k" * 32)


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
