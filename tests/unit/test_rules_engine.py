"""Each action, rule order and stop, overrides, tag accumulation, events and the trace."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from maild.routing.engine import Applied, AppliedAction, RuleSet
from maild.routing.loader import load_rules
from maild.routing.schema import TEAM, Notify, TicketView
from tests.ruleskit import NOW, TEMPLATES, make_msg, ruleset

SHIPPED = load_rules(Path(__file__).resolve().parents[2] / "rules", templates=TEMPLATES)


def evaluate(
    tmp_path: Path,
    rules: str,
    *,
    event: str = "new_ticket",
    ticket: TicketView | None = None,
    subject: str = "Invoice 42",
):
    return ruleset(tmp_path, rules).evaluate(event, make_msg(subject=subject), ticket, NOW)


def test_every_action(tmp_path: Path) -> None:
    decision = evaluate(
        tmp_path,
        """
rules:
  - name: all of them
    then:
      team: billing
      assignee: Alice
      priority: high
      status: pending
      tags: [billing, vip]
      reply: ack
      notify: [{template: notify_new, to: [team, assignee, boss@example.com, Bob]}]
      sla: gold
      spam: true
      forward: [archive@example.com]
sla:
  - {name: gold, first_response: 1h}
""",
    )
    r = "all of them"
    assert decision.team == Applied("billing", r)
    assert decision.assignee == Applied("alice@example.com", r)  # a name resolves to the email
    assert decision.priority == Applied("high", r)
    assert decision.status == Applied("pending", r)
    assert decision.sla == Applied("gold", r)
    assert decision.spam == Applied(True, r) and decision.is_spam
    assert decision.tags_add == (Applied("billing", r), Applied("vip", r))
    assert decision.replies == (Applied("ack", r),)
    notify = Notify("notify_new", ("team", "assignee", "boss@example.com", "bob@example.com"))
    assert decision.notifies == (Applied(notify, r),)
    assert decision.forwards == (Applied("archive@example.com", r),)
    actions = decision.applied()
    assert AppliedAction("team", "billing", r) in actions
    assert all(a.rule == r for a in actions)
    assert len(actions) == 11


def test_order_overrides_and_accumulation(tmp_path: Path) -> None:
    decision = evaluate(
        tmp_path,
        """
rules:
  - name: first
    then: {team: billing, priority: high, tags: [a, b], reply: ack, forward: x@example.com}
  - name: second
    then: {team: tech, tags: {add: [c], remove: [a]}, reply: ack, forward: y@example.com}
  - name: third
    then: {priority: low, tags: {add: [a]}, notify: {template: notify_new, to: team}}
""",
    )
    assert decision.team == Applied("tech", "second")  # later rule wins
    assert decision.priority == Applied("low", "third")
    assert decision.tags_add == (
        Applied("b", "first"),
        Applied("c", "second"),
        Applied("a", "third"),
    )  # removed, then added again
    assert decision.tags_remove == ()
    assert decision.replies == (Applied("ack", "first"),)  # identical entries kept once
    assert [f.value for f in decision.forwards] == ["x@example.com", "y@example.com"]
    assert decision.matched_rules == ("first", "second", "third")


def test_tag_removal_survives_when_last(tmp_path: Path) -> None:
    decision = evaluate(
        tmp_path,
        """
rules:
  - {name: add, then: {tags: [waiting]}}
  - {name: drop, then: {tags: {remove: [waiting, stale]}}}
""",
        event="new_ticket",
    )
    assert decision.tags_add == ()
    assert decision.tags_remove == (Applied("waiting", "drop"), Applied("stale", "drop"))


def test_stop_ends_the_evaluation(tmp_path: Path) -> None:
    decision = evaluate(
        tmp_path,
        """
rules:
  - {name: before, then: {tags: [one]}}
  - {name: no match, when: {subject: {contains: nope}}, then: {tags: [x]}, stop: true}
  - {name: stopper, when: {subject: {contains: invoice}}, then: {tags: [two]}, stop: true}
  - {name: after, then: {tags: [three]}}
""",
    )
    assert [a.value for a in decision.tags_add] == ["one", "two"]
    verdicts = [(t.rule, t.verdict) for t in decision.trace]
    assert verdicts == [
        ("before", "matched"),
        ("no match", "no_match"),
        ("stopper", "matched"),
        ("after", "not_reached"),
    ]
    assert decision.trace[2].stop
    assert decision.trace[3].reason == "stopped by 'stopper'"


def test_stop_without_actions(tmp_path: Path) -> None:
    decision = evaluate(
        tmp_path,
        """
rules:
  - {name: newsletters, when: {subject: {contains: invoice}}, stop: true}
  - {name: later, then: {reply: ack}}
""",
    )
    assert decision.applied() == ()
    assert decision.matched_rules == ("newsletters",)


def test_events_select_rules(tmp_path: Path) -> None:
    rules = ruleset(
        tmp_path,
        """
rules:
  - {name: new, then: {tags: [new]}}
  - {name: customer, on: customer_reply, then: {tags: [customer]}}
  - {name: agent, on: agent_reply, then: {tags: [agent]}}
  - {name: replies, on: [customer_reply, agent_reply], then: {tags: [reply]}}
  - {name: off, enabled: false, then: {tags: [off]}}
""",
    )
    ticket = TicketView()
    tags = {
        event: [a.value for a in rules.evaluate(event, make_msg(), ticket, NOW).tags_add]
        for event in ("new_ticket", "customer_reply", "agent_reply")
    }
    assert tags == {
        "new_ticket": ["new"],
        "customer_reply": ["customer", "reply"],
        "agent_reply": ["agent", "reply"],
    }
    trace = rules.evaluate("new_ticket", make_msg(), None, NOW).trace
    assert (trace[1].verdict, trace[1].reason) == ("skipped", "on customer_reply")
    assert (trace[4].verdict, trace[4].reason) == ("skipped", "disabled")
    with pytest.raises(ValueError, match="unknown event"):
        rules.evaluate("robot", make_msg(), None, NOW)


def test_team_without_assignee_uses_the_team_strategy(tmp_path: Path) -> None:
    decision = evaluate(tmp_path, "rules:\n  - {name: route, then: {team: billing}}\n")
    assert decision.assignee == Applied(TEAM, "route")
    # assign: none leaves the ticket in the queue
    decision = evaluate(tmp_path, "rules:\n  - {name: route, then: {team: sales}}\n")
    assert decision.assignee is None
    # an explicit assignee wins, whichever rule names it
    decision = evaluate(
        tmp_path,
        "rules:\n  - {name: who, then: {assignee: carol@example.com}}\n"
        "  - {name: route, then: {team: billing}}\n",
    )
    assert decision.assignee == Applied("carol@example.com", "who")


def test_reply_keeps_the_assignee_unless_the_team_changes(tmp_path: Path) -> None:
    rules = "rules:\n  - {name: route, on: customer_reply, then: {team: billing}}\n"
    same = TicketView(team="billing", assignee="alice@example.com")
    assert evaluate(tmp_path, rules, event="customer_reply", ticket=same).assignee is None
    other = TicketView(team="tech", assignee="carol@example.com")
    moved = evaluate(tmp_path, rules, event="customer_reply", ticket=other)
    assert moved.assignee == Applied(TEAM, "route")


def test_trace_and_json(tmp_path: Path) -> None:
    decision = evaluate(
        tmp_path,
        """
rules:
  - {name: billing, when: {subject: {contains: invoice}}, then: {team: billing, tags: [b]}}
  - {name: tech, when: {subject: {contains: crash}}, then: {team: tech}}
  - {name: notify, then: {notify: {template: notify_new, to: [team]}}}
""",
    )
    first = decision.trace[0]
    assert (first.verdict, first.reason) == ("matched", "subject contains 'invoice'")
    assert first.actions == ("team=billing", "tag+b")
    assert first.where.endswith("20-rules.yaml:3")
    assert decision.trace[1].verdict == "no_match"
    assert decision.trace[2].reason == "no conditions: always"
    data = json.loads(json.dumps(decision.to_dict()))
    assert data["event"] == "new_ticket"
    assert {"action": "team", "value": "billing", "rule": "billing"} in data["actions"]
    assert {
        "action": "notify",
        "value": {"template": "notify_new", "to": ["team"]},
        "rule": "notify",
    } in data["actions"]
    assert [t["verdict"] for t in data["trace"]] == ["matched", "no_match", "matched"]


def test_empty_ruleset_decides_nothing() -> None:
    decision = RuleSet().evaluate("new_ticket", make_msg(), None, NOW)
    assert decision.applied() == () and decision.trace == ()


def test_ruleset_lookups(tmp_path: Path) -> None:
    rules = ruleset(tmp_path, "rules: []\nsla:\n  - {name: gold, resolution: 2d}\n")
    assert rules.agent("ALICE").email == "alice@example.com"  # type: ignore[union-attr]
    assert rules.agent("bob@example.com").name == "Bob"  # type: ignore[union-attr]
    assert rules.agent("nobody") is None
    assert [a.email for a in rules.team_members("tech")] == ["bob@example.com", "carol@example.com"]
    assert rules.team_members("unknown") == ()
    assert rules.sla_policy("gold").resolution.days == 2  # type: ignore[union-attr]
    assert rules.sla_policy("none") is None
    assert rules.describe() == "2 files, 3 agents, 3 teams, 0 rules, 1 SLA policy"


@settings(max_examples=200, deadline=None, derandomize=True)
@given(
    subject=st.text(max_size=200),
    body=st.text(max_size=2000),
    sender=st.sampled_from(["a@b.test", "boss@bigcorp.test", "x@example.com", ""]),
    header=st.tuples(st.sampled_from(["X-Spam-Flag", "X-Mailer", "List-Id"]), st.text(max_size=50)),
    event=st.sampled_from(["new_ticket", "customer_reply", "agent_reply"]),
)
def test_shipped_rules_never_fail_on_any_message(
    subject: str, body: str, sender: str, header: tuple[str, str], event: str
) -> None:
    msg = make_msg(subject=subject, body=body, sender=sender or None, headers=(header,))
    ticket = None if event == "new_ticket" else TicketView(tags=("vip",), status="open")
    decision = SHIPPED.evaluate(event, msg, ticket, NOW)
    assert len(decision.trace) == len(SHIPPED.rules)
    assert all(isinstance(t.reason, str) and t.reason for t in decision.trace)
    json.dumps(decision.to_dict())
