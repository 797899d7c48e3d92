"""Parsing #merge, #link, #unlink, #snooze and #macro: pure, before anything changes."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from maild.agents.commands import parse_commands, snooze_time, ticket_number
from maild.cli.ticket_table import age, widths
from maild.routing.engine import RuleSet

NOW = dt.datetime(2026, 12, 1, 9, 0)


def parse(text: str):
    return parse_commands(text, rules=RuleSet(), author="a@example.com", prefix="ACME", now=NOW)


def test_references_are_ours_only() -> None:
    assert [ticket_number(r, "ACME") for r in ("ACME-12", "acme-12", "[ACME-12]", "12")] == [12] * 4
    assert ticket_number("OTHER-12", "ACME") is None
    assert ticket_number("ACME-x", "ACME") is None


def test_relation_commands_are_parsed_and_leave_the_answer() -> None:
    c = parse("#merge ACME-12\n#link ACME-7\n#unlink ACME-8\n#macro need_info\n\nHello")
    assert (c.merge_into, c.link, c.unlink, c.macro, c.body) == (
        12,
        (7,),
        (8,),
        "need_info",
        "Hello",
    )
    assert c.errors == () and c.changes


def test_snooze_makes_pending_until_then() -> None:
    c = parse("#snooze 3d")
    assert (c.status, c.snooze_until) == ("pending", NOW + dt.timedelta(days=3))
    assert parse("#snooze 90m").snooze_until == NOW + dt.timedelta(minutes=90)


def test_a_snooze_date_is_local_time_of_the_zone() -> None:
    until, problem = snooze_time("2026-12-10 09:00", NOW, ZoneInfo("Europe/Berlin"))
    assert problem is None and until == dt.datetime(2026, 12, 10, 8, 0)


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("#snooze 2026-11-30 09:00", "is in the past"),
        ("#snooze 0d", "is in the past"),
        ("#snooze 53w", "more than 365 days ahead"),
        ("#snooze tomorrowish", "is not a time"),
        ("#snooze", "#snooze needs a time"),
        ("#status open\n#snooze 3d", "cannot go with #status open"),
        ("#merge", "#merge takes one ticket reference"),
        ("#merge ACME-1 ACME-2", "#merge takes one ticket reference"),
        ("#merge OTHER-3", "is not a ticket reference like ACME-12"),
        ("#merge ACME-3\n#merge ACME-4", "#merge was already given above"),
        ("#macro ../../etc/passwd", "#macro takes one macro name"),
        ("#macro a\n#macro b", "#macro was already given above"),
    ],
)
def test_bad_relation_commands(line: str, reason: str) -> None:
    errors = parse(line).errors
    assert errors and reason in errors[-1].reason, errors


def test_table_widths_fit_and_keep_a_subject() -> None:
    row = {
        "ref": "ACME-100000",
        "status": "pending",
        "priority": "urgent",
        "team": "billing-and-payments",
        "assignee": "somebody.long@example.com",
        "requester": "a.very.long.customer.name@customer.test",
        "age": "12d",
    }
    for total in (50, 80, 120, 200):
        cols, subject = widths([row], total)
        assert subject >= 10
        if total >= 80:
            assert sum(cols) + len(cols) + subject <= total
    assert age("2026-12-01T08:00:00+00:00", dt.datetime(2026, 12, 1, 9, 30, tzinfo=dt.UTC)) == "1h"


def test_a_table_for_a_pipe_cuts_nothing() -> None:
    row = {
        "ref": "ACME-7",
        "status": "new",
        "priority": "normal",
        "team": "billing-and-payments-europe",
        "assignee": "-",
        "requester": "a.very.long.customer.name@customer.test",
        "age": "1m",
        "subject": "s" * 300,
    }
    cols, subject = widths([row], None)
    assert subject == 300
    assert cols[3] == len(row["team"]) and cols[5] == len(row["requester"])
