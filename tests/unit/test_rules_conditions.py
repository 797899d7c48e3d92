"""Each condition field and operator, nesting, business hours, and the regex bound.

``make_msg`` and ``ruleset`` are shared with the other ``test_rules_*`` modules.
"""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path

import pytest

from maild.pipeline.message import AttachmentPart, InboundMessage
from maild.routing.engine import Decision
from maild.routing.match import MAX_TEXT_CHARS, MatchContext, check
from maild.routing.schema import TicketView
from tests.ruleskit import NOW, PEOPLE, make_msg, ruleset


def matches(
    tmp_path: Path,
    when: str,
    msg: InboundMessage,
    *,
    on: str = "new_ticket",
    ticket: TicketView | None = None,
    now: dt.datetime = NOW,
) -> Decision:
    rules = ruleset(
        tmp_path,
        f"rules:\n  - name: r\n    on: {on}\n    when: {when}\n    then: {{tags: [hit]}}\n",
    )
    return rules.evaluate(on, msg, ticket, now)


def hit(tmp_path: Path, when: str, msg: InboundMessage, **kw: object) -> bool:
    decision = matches(tmp_path, when, msg, **kw)  # type: ignore[arg-type]
    return decision.matched_rules == ("r",)


@pytest.mark.parametrize(
    ("when", "expected"),
    [
        ("{from: {equals: CAROL@customer.test}}", True),
        ("{from: {equals: [x@y.test, carol@customer.test]}}", True),
        ("{from: {equals: carol@customer}}", False),
        ("{from: {contains: [nobody, CUSTOMER]}}", True),
        ("{from: {starts_with: carol@}}", True),
        ("{from: {ends_with: .test}}", True),
        ("{from_domain: {equals: customer.test}}", True),
        ("{from_domain: {equals: [other.test]}}", False),
        ("{to: {equals: billing@example.com}}", True),
        ("{to: {equals: support@example.com}}", True),
        ("{cc: {contains: boss}}", True),
        ("{cc: {contains: billing}}", False),
        ("{recipients: {equals: hidden@example.com}}", True),
        ("{recipients: {equals: boss@customer.test}}", True),
        ("{subject: {contains: [refund, INVOICE]}}", True),
        ("{subject: {starts_with: 're:'}}", True),
        ("{subject: {starts_with: invoice}}", False),
        ("{subject: {equals: 're: invoice 42 overdue'}}", True),
        ("{subject: {matches: 'invoice \\d+'}}", True),
        ("{subject: {matches: '(?-i)INVOICE'}}", False),
        ("{subject: {matches: ['^nope', 'overdue$']}}", True),
        ("{body: {contains: 'error code'}}", True),
        ("{body: {matches: 'code \\d{3}\\b'}}", True),
        ("{header: {X-Mailer: {contains: outlook}}}", True),
        ("{header: {x-mailer: {starts_with: micro}}}", True),
        ("{header: {X-Priority: {exists: true}}}", False),
        ("{header: {X-Priority: {exists: false}}}", True),
        ("{header: {Received: {contains: second}}}", True),  # any of a repeated header
        ("{header: {X-Mailer: {contains: outlook}, Received: {contains: third}}}", False),
        ("{subject: {contains: invoice, matches: '42'}}", True),  # operators: all must hold
        ("{subject: {contains: invoice, matches: '43'}}", False),
    ],
)
def test_message_fields_and_operators(tmp_path: Path, when: str, expected: bool) -> None:
    msg = make_msg(
        subject="Re: Invoice 42 overdue",
        cc=("boss@customer.test",),
        to=("support@example.com", "billing@example.com"),
        rcpt_tos=("hidden@example.com",),
        body="We got error code 500 today.",
        headers=(
            ("X-Mailer", "Microsoft Outlook 16.0"),
            ("Received", "first hop"),
            ("Received", "second hop"),
        ),
    )
    assert hit(tmp_path, when, msg) is expected


def test_from_falls_back_to_the_envelope_sender(tmp_path: Path) -> None:
    msg = make_msg(sender=None, envelope_from="bounce@lists.test")
    assert hit(tmp_path, "{from_domain: {equals: lists.test}}", msg)
    assert not hit(tmp_path, "{from: {exists: true}}", make_msg(sender=None))


@pytest.mark.parametrize(
    ("when", "expected"),
    [
        ("{has_attachments: true}", True),
        ("{has_attachments: false}", False),
        ("{attachment: {type: {starts_with: application/pdf}}}", True),
        ("{attachment: {name: {ends_with: .PDF}}}", True),
        ("{attachment: {name: {matches: '^invoice-\\d+'}, type: {contains: pdf}}}", True),
        # both tests must hold for the same attachment
        ("{attachment: {name: {ends_with: .pdf}, type: {starts_with: image/}}}", False),
        # inline parts (a signature logo) are not attachments
        ("{attachment: {name: {equals: logo.png}}}", False),
    ],
)
def test_attachments(tmp_path: Path, when: str, expected: bool) -> None:
    msg = make_msg(
        attachments=(
            AttachmentPart("invoice-42.pdf", "application/pdf", b"%PDF"),
            AttachmentPart("logo.png", "image/png", b"png", inline=True, content_id="logo"),
        )
    )
    assert hit(tmp_path, when, msg) is expected


def test_has_attachments_ignores_inline_parts(tmp_path: Path) -> None:
    logo = AttachmentPart("logo.png", "image/png", b"png", inline=True)
    assert hit(tmp_path, "{has_attachments: false}", make_msg(attachments=(logo,)))
    assert not hit(tmp_path, "{attachment: {type: {exists: true}}}", make_msg())


@pytest.mark.parametrize(
    ("when", "expected"),
    [
        ("{any: [{subject: {contains: nope}}, {from_domain: {equals: customer.test}}]}", True),
        ("{any: [{subject: {contains: nope}}, {from_domain: {equals: x.test}}]}", False),
        ("{all: [{subject: {contains: hello}}, {from_domain: {equals: customer.test}}]}", True),
        ("{all: [{subject: {contains: hello}}, {from_domain: {equals: x.test}}]}", False),
        ("{not: {subject: {contains: hello}}}", False),
        ("{not: {any: [{subject: {contains: nope}}, {body: {contains: nope}}]}}", True),
        ("[{subject: {contains: hello}}, {body: {contains: there}}]", True),  # a list is all
        ("{subject: {contains: hello}, body: {contains: nope}}", False),  # keys are all
        (
            "{any: [{all: [{subject: {contains: hello}}, {not: {body: {contains: hi}}}]},"
            " {cc: {exists: true}}]}",
            False,
        ),
    ],
)
def test_any_all_not(tmp_path: Path, when: str, expected: bool) -> None:
    assert hit(tmp_path, when, make_msg(subject="Hello", body="Hi there")) is expected


@pytest.mark.parametrize(
    ("now", "inside"),
    [
        (dt.datetime(2026, 11, 25, 8, 0, tzinfo=dt.UTC), True),  # Wed 09:00 Berlin
        (dt.datetime(2026, 11, 25, 7, 59, tzinfo=dt.UTC), False),  # Wed 08:59
        (dt.datetime(2026, 11, 25, 15, 59, tzinfo=dt.UTC), True),  # Wed 16:59
        (dt.datetime(2026, 11, 25, 16, 0, tzinfo=dt.UTC), False),  # Wed 17:00
        (dt.datetime(2026, 11, 28, 10, 30), True),  # Sat 11:30, naive means UTC
        (dt.datetime(2026, 11, 28, 11, 30, tzinfo=dt.UTC), False),  # Sat 12:30: the gap
        (dt.datetime(2026, 11, 29, 10, 0, tzinfo=dt.UTC), False),  # Sunday
        (dt.datetime(2026, 12, 25, 10, 0, tzinfo=dt.UTC), False),  # a holiday (a Friday)
        (dt.datetime(2026, 7, 1, 7, 30, tzinfo=dt.UTC), True),  # summer time: 09:30 CEST
        (dt.datetime(2026, 7, 1, 15, 30, tzinfo=dt.UTC), False),  # 17:30 CEST
    ],
)
def test_business_hours(tmp_path: Path, now: dt.datetime, inside: bool) -> None:
    assert hit(tmp_path, "{business_hours: true}", make_msg(), now=now) is inside
    assert hit(tmp_path, "{business_hours: false}", make_msg(), now=now) is not inside


def test_business_hours_24_7(tmp_path: Path) -> None:
    people = PEOPLE.split("business_hours:")[0] + "business_hours: 24/7\n"
    rules = ruleset(
        tmp_path,
        "rules:\n  - {name: r, when: {business_hours: true}, then: {tags: [x]}}\n",
        people=people,
    )
    sunday_night = dt.datetime(2026, 11, 29, 23, 0, tzinfo=dt.UTC)
    assert rules.evaluate("new_ticket", make_msg(), None, sunday_night).matched_rules == ("r",)


@pytest.mark.parametrize(
    ("when", "expected"),
    [
        ("{status: {equals: pending}}", True),
        ("{status: {equals: [new, open]}}", False),
        ("{priority: {equals: high}}", True),
        ("{team: {equals: billing}}", True),
        ("{assignee: {equals: alice@example.com}}", True),
        ("{tags: {equals: vip}}", True),
        ("{tags: {contains: [nothing, VI]}}", True),
        ("{not: {tags: {equals: spam}}}", True),
        ("{tags: {exists: false}}", False),
    ],
)
def test_ticket_fields_on_replies(tmp_path: Path, when: str, expected: bool) -> None:
    ticket = TicketView.of(
        status="pending",
        priority="high",
        team="billing",
        assignee="alice@example.com",
        tags=["vip", "billing"],
    )
    assert hit(tmp_path, when, make_msg(), on="customer_reply", ticket=ticket) is expected


def test_trace_names_the_deciding_condition(tmp_path: Path) -> None:
    decision = matches(
        tmp_path,
        "{any: [{subject: {contains: nope}}, {from_domain: {equals: customer.test}}]}",
        make_msg(),
    )
    assert decision.trace[0].reason == "from_domain equals 'customer.test'"
    decision = matches(
        tmp_path,
        "{all: [{subject: {contains: hello}}, {body: {contains: [refund, invoice]}}]}",
        make_msg(),
    )
    assert decision.trace[0].verdict == "no_match"
    assert decision.trace[0].reason == (
        "body contains ['refund', 'invoice']: no (body: 'Hi there')"
    )


# --- the regex bound ------------------------------------------------------------------------------


def test_catastrophic_regex_returns_promptly(tmp_path: Path) -> None:
    # (a|aa)+$ against a run of a's that ends badly backtracks exponentially; Python's re
    # would spin for longer than the universe lasts. The search is stopped by its timeout.
    rules = ruleset(
        tmp_path,
        "rules:\n"
        "  - {name: evil, when: {body: {matches: '(a|aa)+$'}}, "
        "then: {tags: [evil]}}\n"
        "  - {name: next, then: {tags: [next]}}\n",
    )
    msg = make_msg(body="a" * 5000 + "!")
    started = time.perf_counter()
    decision = rules.evaluate("new_ticket", msg, None, NOW)
    elapsed = time.perf_counter() - started
    assert elapsed < 2.0
    assert decision.matched_rules == ("next",)  # a timed-out search is no match; rules go on
    assert decision.regex_timeouts == ("(a|aa)+$",)
    assert "timed out" in decision.trace[0].reason


def test_regex_budget_bounds_one_evaluation(tmp_path: Path) -> None:
    rules = "rules:\n" + "".join(
        f"  - {{name: evil{i}, when: {{body: {{matches: '(a|aa)+$'}}}}, then: {{tags: [e]}}}}\n"
        for i in range(40)
    )
    loaded = ruleset(tmp_path, rules)
    started = time.perf_counter()
    decision = loaded.evaluate("new_ticket", make_msg(body="a" * 5000 + "!"), None, NOW)
    # 40 searches of 0.1 s each would take 4 s; the evaluation's budget is 1 s.
    assert time.perf_counter() - started < 2.0
    assert len(decision.regex_timeouts) == 40
    assert decision.matched_rules == ()


def test_text_is_capped_before_any_operator_sees_it(tmp_path: Path) -> None:
    body = "x" * MAX_TEXT_CHARS + "needle"
    assert not hit(tmp_path, "{body: {contains: needle}}", make_msg(body=body))
    assert hit(tmp_path, "{body: {contains: needle}}", make_msg(body="needle" + body))


def test_match_context_computes_each_field_once() -> None:
    ctx = MatchContext(make_msg(subject="Hi"), None, NOW)
    assert ctx.values("subject") is ctx.values("subject")
    assert ctx.lowered("subject") == ("hi",)


def test_check_rejects_non_conditions() -> None:
    with pytest.raises(TypeError):
        check("subject", MatchContext(make_msg(), None, NOW))  # type: ignore[arg-type]
