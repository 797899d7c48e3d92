"""Review: command lines that used to fall through into the customer's answer."""

from __future__ import annotations

from maild.agents.commands import MAX_LINE, parse_commands
from maild.routing.engine import RuleSet


def parse(text: str):
    return parse_commands(text, rules=RuleSet(), author="alice@example.com")


def test_a_zero_width_space_before_note_still_makes_a_note() -> None:
    for invisible in ("\u200b", "\ufeff", "\u2060"):
        commands = parse(f"{invisible}#note\nThe customer is a reseller.")
        assert commands.note and commands.body == "The customer is a reseller."


def test_an_overlong_command_line_is_an_error_not_the_reply() -> None:
    line = "#tag " + " ".join(f"+t{i}" for i in range(MAX_LINE // 3))
    commands = parse(f"{line}\n#note\nInternal only.")
    assert commands.errors and commands.errors[0].line == 1
    assert "longer than" in commands.errors[0].reason
    assert len(commands.errors[0].text) < 200
    assert commands.note  # the #note below it is still read
