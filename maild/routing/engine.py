"""Evaluating a rule set against one message: which rules match, and the merged decision.

Policy: rules run in file-name order, then in the order written; every matching rule acts, and one
with ``stop: true`` ends the evaluation after its own actions. For a single-valued field (team,
assignee, priority, status, sla, spam) a later rule overrides an earlier one; tags accumulate (a
later ``remove`` cancels an earlier ``add`` of the same tag and the other way round); replies,
notifications and forwards accumulate as lists, an identical entry kept once. When the decision
moves the ticket to a team (a new ticket, or a team other than the ticket's) and no rule names an
assignee, the team's assignment strategy applies, credited to the rule that set the team.

The engine only decides: it reads the message, a :class:`TicketView` and the time, and writes
nothing. Each merged action carries the name of the rule that set it, for the audit trail, and the
decision carries a trace of every rule: matched, not matched (with the deciding condition), skipped
or not reached.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import Any, Generic, TypeVar

from maild.pipeline.message import InboundMessage
from maild.routing.fields import extract_fields
from maild.routing.match import MAX_TEXT_CHARS, MatchContext, Predictor
from maild.routing.plan import LazyTrace, Plan, RuleTrace
from maild.routing.schema import (
    EVENTS,
    PREDICTED,
    PREDICTION_TARGETS,
    PRIORITIES,
    TEAM,
    Agent,
    BusinessHours,
    FieldDef,
    Notify,
    Rule,
    SlaPolicy,
    StatusDef,
    Team,
    TicketView,
)

log = logging.getLogger("ticketd.rules")

T = TypeVar("T")


@dataclass(frozen=True)
class Applied(Generic[T]):
    """An action's value and the rule that set it."""

    value: T
    rule: str


@dataclass(frozen=True)
class AppliedAction:
    """One merged action, as the worker applies it and the audit trail records it."""

    action: str  # team, assignee, priority, status, sla, spam, tag_add, tag_remove, reply, ...
    value: Any  # str, bool, or Notify for "notify"
    rule: str


@dataclass(frozen=True)
class Decision:
    """The merged outcome of one evaluation. None/empty: no rule asked for it."""

    event: str
    team: Applied[str] | None = None
    assignee: Applied[str] | None = None  # an agent's email, or TEAM: use the team's strategy
    priority: Applied[str] | None = None
    status: Applied[str] | None = None
    sla: Applied[str] | None = None
    spam: Applied[bool] | None = None
    tags_add: tuple[Applied[str], ...] = ()
    tags_remove: tuple[Applied[str], ...] = ()
    replies: tuple[Applied[str], ...] = ()  # template names
    notifies: tuple[Applied[Notify], ...] = ()
    forwards: tuple[Applied[str], ...] = ()  # addresses
    fields: tuple[Applied[tuple[str, str]], ...] = ()  # custom fields the rules set: (name, value)
    extracted: tuple[tuple[str, str], ...] = ()  # custom field values found in the message
    trace: Sequence[RuleTrace] = ()  # a LazyTrace from evaluate: built when read
    regex_timeouts: tuple[str, ...] = ()  # patterns whose search ran out of time

    @property
    def matched_rules(self) -> tuple[str, ...]:
        if isinstance(self.trace, LazyTrace):
            return self.trace.matched_names
        return tuple(t.rule for t in self.trace if t.verdict == "matched")

    @property
    def is_spam(self) -> bool:
        return self.spam is not None and self.spam.value

    def applied(self) -> tuple[AppliedAction, ...]:
        """Every merged action with its rule, in a fixed order: one audit event each."""
        out: list[AppliedAction] = []
        for name in ("team", "assignee", "priority", "status", "sla", "spam"):
            one: Applied[Any] | None = getattr(self, name)
            if one is not None:
                out.append(AppliedAction(name, one.value, one.rule))
        out += [AppliedAction("tag_add", a.value, a.rule) for a in self.tags_add]
        out += [AppliedAction("tag_remove", a.value, a.rule) for a in self.tags_remove]
        out += [AppliedAction("reply", a.value, a.rule) for a in self.replies]
        out += [AppliedAction("notify", a.value, a.rule) for a in self.notifies]
        out += [AppliedAction("forward", a.value, a.rule) for a in self.forwards]
        out += [AppliedAction("field", a.value, a.rule) for a in self.fields]
        return tuple(out)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready data: the actions with their rules, and the trace."""
        actions = []
        for act in self.applied():
            value = act.value
            if isinstance(value, Notify):
                value = {"template": value.template, "to": list(value.to)}
            actions.append({"action": act.action, "value": value, "rule": act.rule})
        return {
            "event": self.event,
            "actions": actions,
            "trace": [t.to_dict() for t in self.trace],
            "regex_timeouts": list(self.regex_timeouts),
        }


class _Merger:
    """Folds the actions of matching rules into one decision, remembering who set what."""

    def __init__(self) -> None:
        self.single: dict[str, Applied[Any]] = {}
        self.tags: dict[str, tuple[bool, str]] = {}  # tag -> (added?, rule)
        self.replies: dict[str, Applied[str]] = {}
        self.notifies: dict[Notify, Applied[Notify]] = {}
        self.forwards: dict[str, Applied[str]] = {}
        self.fields: dict[str, Applied[tuple[str, str]]] = {}

    def add(self, rule: Rule) -> None:
        then = rule.then
        for name in ("team", "assignee", "priority", "status", "sla", "spam"):
            value = getattr(then, name)
            if value is not None:
                self.single[name] = Applied(value, rule.name)
        for tag in then.tags_add:
            self.tags.pop(tag, None)  # re-insert: the order follows the last change
            self.tags[tag] = (True, rule.name)
        for tag in then.tags_remove:
            self.tags.pop(tag, None)
            self.tags[tag] = (False, rule.name)
        if then.reply is not None:
            self.replies.setdefault(then.reply, Applied(then.reply, rule.name))
        for notify in then.notify:
            self.notifies.setdefault(notify, Applied(notify, rule.name))
        for address in then.forward:
            self.forwards.setdefault(address, Applied(address, rule.name))
        for name, value in then.set_fields:
            self.fields[name] = Applied((name, value), rule.name)

    def decision(self, event: str, trace: LazyTrace, timeouts: list[str]) -> Decision:
        s = self.single
        return Decision(
            event=event,
            team=s.get("team"),
            assignee=s.get("assignee"),
            priority=s.get("priority"),
            status=s.get("status"),
            sla=s.get("sla"),
            spam=s.get("spam"),
            tags_add=tuple(Applied(t, r) for t, (add, r) in self.tags.items() if add),
            tags_remove=tuple(Applied(t, r) for t, (add, r) in self.tags.items() if not add),
            replies=tuple(self.replies.values()),
            notifies=tuple(self.notifies.values()),
            forwards=tuple(self.forwards.values()),
            fields=tuple(self.fields.values()),
            trace=trace,
            regex_timeouts=tuple(timeouts),
        )


@dataclass(frozen=True, eq=False)
class RuleSet:
    """A validated, immutable set of rules with the agents, teams and SLA policies they name."""

    rules: tuple[Rule, ...] = ()
    agents: Mapping[str, Agent] = field(default_factory=dict)  # by lower-cased email
    teams: Mapping[str, Team] = field(default_factory=dict)
    sla_policies: tuple[SlaPolicy, ...] = ()
    business_hours: BusinessHours | None = None
    files: tuple[Path, ...] = ()
    fields: Mapping[str, FieldDef] = field(default_factory=dict)  # custom fields, by name
    statuses: Mapping[str, StatusDef] = field(default_factory=dict)  # custom statuses, by name

    @cached_property
    def _plans(self) -> dict[str, Plan]:
        """For each event, the rules with their compiled conditions and literal gates."""
        return {event: Plan(self.rules, event) for event in EVENTS}

    def evaluate(
        self,
        event: str,
        msg: InboundMessage,
        ticket: TicketView | None,
        now: dt.datetime,
        *,
        authserv_id: str = "",
        given: Mapping[str, str] | None = None,
        triage: Predictor | None = None,
    ) -> Decision:
        """Run the rules for ``event`` over ``msg`` (and the ticket, for replies) at ``now``.

        ``given``: custom field values the customer gave with the message (the web form); the
        rules see them like values extracted from the mail, and they win over extraction.
        ``triage``: the model's predictor (:class:`maild.triage.predict.TriageHolder`) for the
        ``prediction`` condition and the ``predicted`` team and priority."""
        if event not in EVENTS:
            raise ValueError(f"unknown event {event!r} (known: {', '.join(EVENTS)})")
        ctx = MatchContext(
            msg, ticket, now, self.business_hours, authserv_id=authserv_id, triage=triage
        )
        found: dict[str, str] = {}
        if self._extracting:
            found = extract_fields(self._extracting, msg, ctx.search, MAX_TEXT_CHARS)
            ctx.extracted = found
        if given:
            found = {k: v for k, v in found.items() if k not in given}
            ctx.extracted = {**found, **given}
        plan = self._plans[event]
        run = plan.run(ctx)
        merger = _Merger()
        for position in run.matched:
            merger.add(plan.steps[position].rule)
        self._predicted(merger, ctx)
        self._team_strategy(merger, ticket)
        if ctx.timeouts:
            log.warning(
                "rules: %d regex search(es) timed out and counted as no match: %s",
                len(ctx.timeouts),
                ", ".join(sorted(set(ctx.timeouts))[:5]),
            )
        explain = _Explainer(
            msg,
            ticket,
            now,
            self.business_hours,
            extracted=ctx.extracted,
            authserv_id=authserv_id,
            triage=triage,
        )
        decision = merger.decision(event, LazyTrace(plan, run, explain.context), ctx.timeouts)
        if not found:
            return decision
        return replace(decision, extracted=tuple(sorted(found.items())))

    @cached_property
    def _extracting(self) -> tuple[FieldDef, ...]:
        return tuple(f for f in self.fields.values() if f.extract is not None)

    def _predicted(self, merger: _Merger, ctx: MatchContext) -> None:
        """``team: predicted`` and ``priority: predicted`` take the model's value; without a
        model, or with a team the rules do not know, the action is left out."""
        for name in PREDICTION_TARGETS:
            applied = merger.single.get(name)
            if applied is None or applied.value != PREDICTED:
                continue
            prediction = ctx.prediction() or {}
            value = prediction.get(name, (None, 0.0))[0]
            known = self.teams if name == "team" else PRIORITIES
            if value is not None and value in known:
                merger.single[name] = Applied(value, applied.rule)
            else:
                del merger.single[name]

    def _team_strategy(self, merger: _Merger, ticket: TicketView | None) -> None:
        """A ticket moving to a team, with no assignee named, is assigned by the team's strategy."""
        team = merger.single.get("team")
        if team is None or "assignee" in merger.single:
            return
        if ticket is not None and ticket.team == team.value:
            return
        strategy = self.teams[team.value].assign if team.value in self.teams else "none"
        if strategy != "none":
            merger.single["assignee"] = Applied(TEAM, team.rule)

    def agent(self, who: str) -> Agent | None:
        """The agent with this email, or else this name (case ignored)."""
        who = who.strip().lower()
        found = self.agents.get(who)
        if found is not None:
            return found
        named = [a for a in self.agents.values() if a.name.lower() == who]
        return named[0] if len(named) == 1 else None

    def team_members(self, team: str, *, available_only: bool = False) -> tuple[Agent, ...]:
        members = self.teams[team].members if team in self.teams else ()
        agents = tuple(self.agents[m] for m in members if m in self.agents)
        return tuple(a for a in agents if a.available) if available_only else agents

    def sla_policy(self, name: str | None) -> SlaPolicy | None:
        for policy in self.sla_policies:
            if policy.name == name:
                return policy
        return None

    def summary(self) -> dict[str, int]:
        return {
            "files": len(self.files),
            "agents": len(self.agents),
            "teams": len(self.teams),
            "rules": len(self.rules),
            "sla_policies": len(self.sla_policies),
        }

    def describe(self) -> str:
        """``3 files, 4 agents, 2 teams, 7 rules, 2 SLA policies``."""
        s = self.summary()
        return (
            f"{s['files']} file{_s(s['files'])}, {s['agents']} agent{_s(s['agents'])}, "
            f"{s['teams']} team{_s(s['teams'])}, {s['rules']} rule{_s(s['rules'])}, "
            f"{s['sla_policies']} SLA polic{'y' if s['sla_policies'] == 1 else 'ies'}"
        )


class _Explainer:
    """A decision's inputs, and the context its reasons are worked out in, made when first asked."""

    __slots__ = ("_args", "_ctx", "_kwargs")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._args = args
        self._kwargs = kwargs
        self._ctx: MatchContext | None = None

    def context(self) -> MatchContext:
        if self._ctx is None:
            self._ctx = MatchContext(*self._args, **self._kwargs)
        return self._ctx


def _s(n: int) -> str:
    return "" if n == 1 else "s"
