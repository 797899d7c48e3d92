"""Compiled predicates, regex literals and gates agree with the explaining check, always."""

from __future__ import annotations

import datetime as dt

import pytest
import regex
from hypothesis import given, settings
from hypothesis import strategies as st

from maild.pipeline.message import Address, InboundMessage
from maild.routing.conditions import REGEX_FLAGS
from maild.routing.engine import RuleSet
from maild.routing.gates import gate
from maild.routing.match import MatchContext, check
from maild.routing.predicates import fold, predicate, required_literal
from maild.routing.schema import (
    Actions,
    AllOf,
    AnyOf,
    Condition,
    ExistsTest,
    FieldCond,
    Not,
    RegexTest,
    Rule,
    TextTest,
)

NOW = dt.datetime(2026, 11, 25, 10, 0, tzinfo=dt.UTC)
WORDS = ["order", "ord", "parcel", "Ab", "cd", "abc", "x-y", "ıd", "ſt", "ID", "st", ""]
FIELDS = ["subject", "body", "from", "from_domain", "to", "header"]


def message(subject: str, body: str, sender: str, to: list[str], mailer: str) -> InboundMessage:
    return InboundMessage(
        raw=b"",
        message_id="m@test",
        dedup_key="mid:m@test",
        subject=subject,
        from_addr=Address(sender),
        reply_to=(),
        to=tuple(Address(a) for a in to),
        cc=(),
        date=None,
        in_reply_to=(),
        references=(),
        text=body,
        html=None,
        attachments=(),
        headers=(("x-mailer", mailer),),
    )


texts = st.lists(st.sampled_from(WORDS), max_size=5).map(" ".join)
addresses = st.sampled_from(["a@order.test", "abc@x-y.test", "ID@st.test"])
messages = st.builds(message, texts, texts, addresses, st.lists(addresses, max_size=2), texts)
operands = st.lists(st.sampled_from([w.lower() for w in WORDS if w]), min_size=1, max_size=3)
patterns = st.sampled_from([r"ord(er)?", r"abc", r"(?-i)ID", r"x-y\b", r"ıd", r"st$", r"[a-c]{3}"])
tests = st.one_of(
    st.builds(
        TextTest,
        st.sampled_from(["equals", "contains", "starts_with", "ends_with"]),
        operands.map(tuple),
    ),
    st.builds(
        RegexTest,
        st.lists(patterns, min_size=1, max_size=2).map(
            lambda ps: tuple(regex.compile(p, REGEX_FLAGS) for p in ps)
        ),
    ),
    st.builds(ExistsTest, st.booleans()),
)
leaves = st.builds(
    lambda field, ts: FieldCond(field, tuple(ts), "x-mailer" if field == "header" else None),
    st.sampled_from(FIELDS),
    st.lists(tests, min_size=1, max_size=2),
)
conditions: st.SearchStrategy[Condition] = st.recursive(
    leaves,
    lambda inner: st.one_of(
        st.builds(AllOf, st.lists(inner, min_size=1, max_size=3).map(tuple)),
        st.builds(AnyOf, st.lists(inner, min_size=1, max_size=3).map(tuple)),
        st.builds(Not, inner),
    ),
    max_leaves=6,
)


@settings(max_examples=600, deadline=None, derandomize=True)
@given(conditions, messages)
def test_a_compiled_predicate_answers_what_the_explaining_check_answers(
    cond: Condition, msg: InboundMessage
) -> None:
    assert (
        predicate(cond)(MatchContext(msg, None, NOW))
        == check(cond, MatchContext(msg, None, NOW)).matched
    )


@settings(max_examples=300, deadline=None, derandomize=True)
@given(
    st.lists(conditions, min_size=1, max_size=12), st.lists(st.booleans(), max_size=12), messages
)
def test_gates_never_hide_a_matching_rule(
    conds: list[Condition], stops: list[bool], msg: InboundMessage
) -> None:
    rules = tuple(
        Rule(f"r{i}", ("new_ticket",), c, Actions(tags_add=(f"t{i}",)), i < len(stops) and stops[i])
        for i, c in enumerate(conds)
    )
    decision = RuleSet(rules=rules).evaluate("new_ticket", msg, None, NOW)
    expected = []
    for rule in rules:
        if check(rule.when, MatchContext(msg, None, NOW)).matched:
            expected.append(rule.name)
            if rule.stop:
                break
    assert decision.matched_rules == tuple(expected)
    assert [t.rule for t in decision.trace if t.verdict == "matched"] == expected
    for step in decision.trace:  # every reason can be worked out, and agrees with the verdict
        assert step.reason


@pytest.mark.parametrize(
    ("pattern", "literal"),
    [
        (r"order (no\.?|number) \d{6}", "order "),
        (r"ticket-5-\d+ (failed|stuck)", "ticket-5-"),
        (r"(?x) in voice", "invoice"),
        (r"a|bcdef", None),
        (r"ab", None),
        (r"\mword", None),  # regex-only syntax: no literal, the search always runs
        (r"(?i:abc)def", "def"),
        (r"Invoice\s+No", "invoice"),
    ],
)
def test_the_literal_a_pattern_needs(pattern: str, literal: str | None) -> None:
    assert required_literal(pattern) == literal


def test_folding_keeps_every_ascii_letter_a_case_insensitive_regex_finds() -> None:
    for c in map(chr, range(32, 127)):
        pattern = regex.compile(regex.escape(c), REGEX_FLAGS)
        for code in range(0x250):  # Latin letters; the full range is checked by the same rule
            t = chr(code)
            if pattern.fullmatch(t):
                assert c.lower() in fold(t), (c, t)
    for t in map(chr, (0x131, 0x17F, 0x212A)):  # dotless i, long s, Kelvin sign
        assert fold(t) in ("i", "s", "k")


def test_a_gate_comes_from_equals_or_long_enough_operands() -> None:
    subject = FieldCond("subject", (TextTest("contains", ("invoice", "ab")),))
    domain = FieldCond("from_domain", (TextTest("equals", ("corp.test",)),))
    assert gate(subject) is None  # "ab" is shorter than a trigram
    assert gate(domain) == frozenset({(("from_domain", None), True, "corp.test")})
    assert gate(AllOf((subject, domain))) == gate(domain)
    assert gate(AnyOf((subject, domain))) is None
    assert gate(Not(domain)) is None


def test_a_long_field_runs_its_gated_rules_instead_of_counting_trigrams() -> None:
    body = FieldCond("body", (TextTest("contains", ("needle",)),))
    long_body = "hay " * 5000 + "needle"
    msg = message("s", long_body, "a@b.test", [], "")
    rules = RuleSet(rules=(Rule("r", ("new_ticket",), body, Actions(tags_add=("t",))),))
    assert rules.evaluate("new_ticket", msg, None, NOW).matched_rules == ("r",)
