"""Typed field values, extraction, roles and mentions: the pure functions behind the mail."""

from __future__ import annotations

import pytest
import regex

from maild.agents import mentions, roles
from maild.pipeline.message import InboundMessage
from maild.routing.conditions import REGEX_FLAGS
from maild.routing.fields import coerce, extract_fields, form_fields, form_values, undeclared
from maild.routing.schema import Agent, Extract, FieldDef

NUMBER = FieldDef("order", "number")
CHOICE = FieldDef("product", "choice", ("Printer", "scanner"))


@pytest.mark.parametrize(
    ("defn", "raw", "stored"),
    [
        (NUMBER, "0042", "42"),
        (NUMBER, "+4.50", "4.5"),
        (NUMBER, 17, "17"),
        (CHOICE, "printer", "Printer"),
        (FieldDef("due", "date"), "2026-12-01", "2026-12-01"),
        (FieldDef("vip", "bool"), "Yes", "true"),
        (FieldDef("vip", "bool"), False, "false"),
        (FieldDef("note", "text"), "  a b  ", "a b"),
    ],
)
def test_values_are_stored_in_one_form_per_type(defn: FieldDef, raw: object, stored: str) -> None:
    assert coerce(defn, raw) == (stored, None)


@pytest.mark.parametrize(
    ("defn", "raw", "words"),
    [
        (NUMBER, "12a", "is not a number"),
        (NUMBER, "", "a value is needed"),
        (CHOICE, "toaster", "is not one of Printer, scanner"),
        (FieldDef("due", "date"), "12/01/2026", "is not a date"),
        (FieldDef("vip", "bool"), "maybe", "is not true or false"),
        (FieldDef("note", "text"), "two\nlines", "one line"),
    ],
)
def test_bad_values_say_why(defn: FieldDef, raw: str, words: str) -> None:
    value, problem = coerce(defn, raw)
    assert value is None and problem is not None and words in problem


def msg(subject: str, text: str = "") -> InboundMessage:
    return InboundMessage(
        raw=b"", message_id=None, dedup_key="k", subject=subject, from_addr=None, reply_to=(),
        to=(), cc=(), date=None, in_reply_to=(), references=(), text=text, html=None,
        attachments=(), headers=(("x-order", "A-77"),),
    )  # fmt: skip


def test_extraction_takes_the_value_group_or_the_match_and_skips_bad_values() -> None:
    def search(pattern: regex.Pattern[str], text: str) -> regex.Match[str] | None:
        return pattern.search(text, timeout=0.1)

    fields = [
        FieldDef(
            "order",
            "number",
            extract=Extract("subject", regex.compile(r"order #?(?P<value>\w+)", REGEX_FLAGS)),
        ),
        FieldDef(
            "ref",
            "text",
            extract=Extract("header", regex.compile(r"[A-Z]-\d+", REGEX_FLAGS), "x-order"),
        ),
        FieldDef(
            "sku",
            "number",
            extract=Extract("text", regex.compile(r"sku (?P<value>\S+)", REGEX_FLAGS)),
        ),
    ]
    found = extract_fields(fields, msg("Order #4471 late", "sku abc"), search, 1000)
    assert found == {"order": "4471", "ref": "A-77"}  # "abc" is no number: not taken
    assert undeclared([("order", "1"), ("old", "x")], {"order": NUMBER}) == ["old"]


AGENT = Agent("a@x.test", "Ann", ("billing",), "agent")
LEAD = Agent("l@x.test", "Lee", ("billing",), "lead")


def test_every_command_declares_the_role_it_needs() -> None:
    assert roles.need_of("merge").role == "lead"
    assert roles.need_of("note").scope == "any"
    assert roles.need_of("some_new_command") == roles.DEFAULT
    assert (
        roles.refusal(AGENT, "priority", team="billing", assignee=None, assigns_other=False) is None
    )
    assert roles.refusal(AGENT, "priority", team=None, assignee=None, assigns_other=False) is None
    refused = roles.refusal(AGENT, "merge", team="billing", assignee=None, assigns_other=False)
    assert (
        refused is not None
        and refused.needs == "lead"
        and "#merge needs role lead" in refused.reason
    )
    assert roles.refusal(LEAD, "merge", team="billing", assignee=None, assigns_other=False) is None
    other = roles.refusal(LEAD, "merge", team="tech", assignee=None, assigns_other=False)
    assert other is not None and other.needs == "admin"
    assert roles.refusal(AGENT, "note", team="tech", assignee=None, assigns_other=False) is None
    assert (
        roles.refusals(AGENT, [("assign", "me"), ("assign", "Ann")], team="billing", assignee=None)
        == []
    )
    ((arg, why),) = roles.refusals(AGENT, [("assign", "Lee")], team="billing", assignee=None)
    assert arg == "Lee" and why.needs == "lead"


def test_mentions_are_words_starting_with_at_not_addresses_in_text() -> None:
    text = "@ann please, cc @lee@x.test.\nmail bob@x.test\n> @quoted no"
    assert mentions.find(text) == [(1, "ann"), (1, "lee@x.test")]
    agents = {AGENT.email: AGENT, LEAD.email: LEAD}
    found = mentions.resolve("@Ann and @l and @lee@x.test", agents, author="z@x.test")
    assert found.agents == ("a@x.test", "l@x.test")  # by name, local part and address; once
    bad = mentions.resolve("@carol@customer.test @zed", agents, author="a@x.test")
    assert [e[1] for e in bad.errors] == ["@carol@customer.test", "@zed"]
    assert mentions.resolve("@ann", agents, author="a@x.test").agents == ()  # oneself


def test_the_web_form_lists_its_fields_and_checks_what_was_posted() -> None:
    fields = {
        "product": FieldDef("product", "choice", ("printer", "scanner"), "Product", True, True),
        "order": FieldDef("order", "number", label="Order", on_form=True),
        "internal": FieldDef("internal", "text"),
    }
    assert form_fields(fields) == [
        {"name": "product", "label": "Product", "type": "choice", "values": ["printer", "scanner"], "required": True},
        {"name": "order", "label": "Order", "type": "number", "values": [], "required": False},
    ]  # fmt: skip
    assert form_values(fields, {"product": "Printer", "order": "7", "internal": "x"}) == (
        {"product": "printer", "order": "7"},
        {},
    )
    values, errors = form_values(fields, {"order": "seven"})
    assert values == {} and errors == {
        "product": "Product is required",
        "order": "Order: 'seven' is not a number",  # by its label, as the form shows it
    }
