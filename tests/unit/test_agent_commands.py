"""The command block at the top of an agent's reply: parsed, validated as a whole, stripped."""

from __future__ import annotations

import pytest

from maild.agents.commands import MAX_LINE, parse_commands, split_commands
from maild.routing.engine import RuleSet
from maild.routing.schema import Agent, Team

RULES = RuleSet(
    agents={
        "alice@example.com": Agent("alice@example.com", "Alice", ("billing",)),
        "bob@example.com": Agent("bob@example.com", "Bob Builder", ("billing", "tech")),
    },
    teams={
        "billing": Team("billing", "round_robin", ("alice@example.com", "bob@example.com")),
        "tech": Team("tech", "least_open", ("bob@example.com",)),
    },
)
SUPPORT = ("support@example.com",)


def parse(text: str):
    return parse_commands(text, rules=RULES, author="alice@example.com", support=SUPPORT)


def test_every_command_parsed_and_stripped_from_the_answer() -> None:
    c = parse(
        "#status pending\n#Priority: HIGH\n\n#assign bob builder\n#team Tech\n"
        "#tag +billing -urgent vip\n#cc +anna@partner.test -old@customer.test\n"
        "Hello Carol,\n\n#1 is fixed.\n#status closed stays text here\n"
    )
    assert c.errors == ()
    assert (c.status, c.priority, c.assign, c.team) == (
        "pending",
        "high",
        "bob@example.com",
        "tech",
    )
    assert (c.tags_add, c.tags_remove) == (("billing", "vip"), ("urgent",))
    assert (c.cc_add, c.cc_remove) == (("anna@partner.test",), ("old@customer.test",))
    assert not c.note and c.changes
    assert c.body == "Hello Carol,\n\n#1 is fixed.\n#status closed stays text here"
    assert c.lines[0] == "#status pending" and len(c.lines) == 6


@pytest.mark.parametrize(
    ("line", "field", "value"),
    [
        ("#assign me", "assign", "alice@example.com"),
        ("#assign BOB@example.com", "assign", "bob@example.com"),
        ("#assign Alice", "assign", "alice@example.com"),
        ("#close", "status", "closed"),
        ("#status Resolved", "status", "resolved"),
        ("#note", "note", True),
    ],
)
def test_single_commands(line: str, field: str, value: object) -> None:
    c = parse(f"{line}\nText")
    assert c.errors == () and getattr(c, field) == value and c.body == "Text"


def test_no_commands_leaves_the_text_alone() -> None:
    c = parse("  Hello,\n#status pending is not at the top\n")
    assert not c.any and c.body == "Hello,\n#status pending is not at the top"
    assert split_commands("") == ([], "")


def test_commands_only_and_non_breaking_spaces() -> None:
    c = parse("\xa0#status\xa0resolved\n\n")  # Outlook's HTML-to-text keeps &nbsp;
    assert c.status == "resolved" and c.body == "" and c.errors == ()


@pytest.mark.parametrize(
    ("text", "line", "reason"),
    [
        ("#stauts pending", 1, "unknown command #stauts"),
        ("#status done", 1, "unknown status 'done'"),
        ("#status new", 1, "unknown status 'new'"),
        ("#status", 1, "takes exactly one value"),
        ("#status open pending", 1, "takes exactly one value"),
        ("#priority p1", 1, "unknown priority"),
        ("#assign mallory@evil.test", 1, "is not an agent"),
        ("#team sales", 1, "no team 'sales'"),
        ("#tag", 1, "needs at least one value"),
        ("#tag +a,b", 1, "is not a tag"),
        ("#cc +not-an-address", 1, "is not an email address"),
        ("#cc +support@example.com", 1, "our own support addresses"),
        ("#note please", 1, "takes no value"),
        ("\n#status pending\n#close", 3, "already given above (pending)"),
        ("#priority low\n#priority high", 2, "already given"),
    ],
)
def test_invalid_commands_name_the_line_and_why(text: str, line: int, reason: str) -> None:
    c = parse(text + "\nAnswer for the customer")
    assert len(c.errors) == 1
    (error,) = c.errors
    assert error.line == line and reason in error.reason, error


def test_one_invalid_line_among_valid_ones_is_reported_alone() -> None:
    c = parse("#status pending\n#team nosuch\n#priority high\nHello")
    assert [(e.line, e.text) for e in c.errors] == [(2, "#team nosuch")]
    assert c.any


# -- command lines that used to fall through into the customer's answer.


def parse_without_support(text: str):
    return parse_commands(text, rules=RuleSet(), author="alice@example.com")


def test_a_zero_width_space_before_note_still_makes_a_note() -> None:
    for invisible in ("\u200b", "\ufeff", "\u2060"):
        commands = parse_without_support(f"{invisible}#note\nThe customer is a reseller.")
        assert commands.note and commands.body == "The customer is a reseller."


def test_an_overlong_command_line_is_an_error_not_the_reply() -> None:
    line = "#tag " + " ".join(f"+t{i}" for i in range(MAX_LINE // 3))
    commands = parse_without_support(f"{line}\n#note\nInternal only.")
    assert commands.errors and commands.errors[0].line == 1
    assert "longer than" in commands.errors[0].reason
    assert len(commands.errors[0].text) < 200
    assert commands.note  # the #note below it is still read
