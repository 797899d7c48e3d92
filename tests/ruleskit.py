"""Helpers for the rule-engine tests: a fixed clock, the shipped template names, agents and
teams, an inbound message built from keywords, and a rule set loaded from YAML in a temp dir."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from maild.pipeline.message import Address, AttachmentPart, InboundMessage
from maild.routing.engine import RuleSet
from maild.routing.loader import load_rules

NOW = dt.datetime(2026, 11, 25, 10, 0, tzinfo=dt.UTC)  # a Wednesday, 11:00 in Berlin
TEMPLATES = frozenset(
    {
        "ack",
        "agent_reply",
        "resolved",
        "notify_new",
        "notify_assigned",
        "notify_reply",
        "escalation",
        "survey",
    }
)
PEOPLE = """
agents:
  - {email: alice@example.com, name: Alice, teams: [billing]}
  - {email: bob@example.com, name: Bob, teams: [billing, tech]}
  - {email: carol@example.com, name: Carol, teams: [tech]}
teams:
  billing: {assign: round_robin}
  tech: {assign: least_open}
  sales: {assign: none}
business_hours:
  timezone: Europe/Berlin
  week: {mon-fri: "09:00-17:00", sat: ["10:00-12:00", "13:00-14:00"]}
  holidays: [2026-12-25]
"""


def make_msg(
    *,
    subject: str = "Hello",
    sender: str | None = "carol@customer.test",
    name: str = "",
    to: tuple[str, ...] = ("support@example.com",),
    cc: tuple[str, ...] = (),
    body: str = "Hi there",
    headers: tuple[tuple[str, str], ...] = (),
    attachments: tuple[AttachmentPart, ...] = (),
    rcpt_tos: tuple[str, ...] = (),
    envelope_from: str = "",
) -> InboundMessage:
    """An InboundMessage built directly, field by field."""
    return InboundMessage(
        raw=b"",
        message_id="m1@test",
        dedup_key="mid:m1@test",
        subject=subject,
        from_addr=Address(sender, name) if sender else None,
        reply_to=(),
        to=tuple(Address(a) for a in to),
        cc=tuple(Address(a) for a in cc),
        date=None,
        in_reply_to=(),
        references=(),
        text=body,
        html=None,
        attachments=attachments,
        headers=tuple((k.lower(), v) for k, v in headers),
        envelope_from=envelope_from,
        rcpt_tos=rcpt_tos,
    )


def ruleset(
    tmp_path: Path, rules: str, *, people: str = PEOPLE, name: str = "20-rules.yaml"
) -> RuleSet:
    """Write ``10-people.yaml`` and ``rules`` into a fresh folder and load it."""
    folder = tmp_path / "rules"
    folder.mkdir(exist_ok=True)
    (folder / "10-people.yaml").write_text(people)
    (folder / name).write_text(rules)
    return load_rules(folder, templates=TEMPLATES)
