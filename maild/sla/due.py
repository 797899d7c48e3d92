"""A ticket's SLA policy and due times, and the pauses that stop its clocks.

Policy choice: a policy named on the ticket by a rule's ``sla:`` action (or by an agent) stays;
otherwise the first policy, in file order, whose ``when`` holds on the ticket's fields. A policy
without ``when`` holds for every ticket, except one that some rule names with ``sla:``: that one is
only ever given by the rule (the shipped ``vip``), so a later catch-all (``standard``) is the
default. The automatic choice is stored in ``ticket.sla_policy`` with actor ``sla`` and is made
again after every change; a name set by anyone else is kept.

Clocks: both targets count business time (the rule set's ``business_hours`` unless the policy says
``business_hours: false``) from the ticket's creation. They stand still while the ticket is
pending, resolved or closed: each such stretch is an :class:`~maild.store.models.SlaPause` row,
and a due time is the instant the target is reached with every pause left out. While a ticket is
pending its due times read "if it resumed now"; once a target is met (first response given,
ticket resolved) its due time is frozen, so reports can compare the two.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from maild.clock import iso
from maild.pipeline.message import InboundMessage
from maild.routing.engine import RuleSet
from maild.routing.match import MatchContext, check
from maild.routing.schema import EscalationStep, SlaPolicy, TicketView
from maild.sla.hours import Calendar, Span, due_at
from maild.store import tickets as store
from maild.store.models import Event, SlaPause, Ticket

SLA_ACTOR = "sla"  # the actor of automatic policy choices and due-time changes
ACTIVE = ("new", "open")  # statuses in which the clocks run
PAUSED = ("pending", "resolved", "closed")

_NO_MESSAGE = InboundMessage(
    raw=b"",
    message_id=None,
    dedup_key="",
    subject="",
    from_addr=None,
    reply_to=(),
    to=(),
    cc=(),
    date=None,
    in_reply_to=(),
    references=(),
    text="",
    html=None,
    attachments=(),
    headers=(),
)


# --- choosing the policy ------------------------------------------------------------------------


def named_by_rules(rules: RuleSet) -> frozenset[str]:
    """Policies some rule gives with ``sla:``."""
    return frozenset(rule.then.sla for rule in rules.rules if rule.then.sla)


def matching_policy(rules: RuleSet, view: TicketView, now: dt.datetime) -> SlaPolicy | None:
    """The first policy whose ``when`` holds for a ticket like ``view`` at ``now``."""
    named = named_by_rules(rules)
    ctx = MatchContext(_NO_MESSAGE, view, now, rules.business_hours)
    for policy in rules.sla_policies:
        if policy.when is None:
            if policy.name not in named:
                return policy
        elif check(policy.when, ctx).matched:
            return policy
    return None


def named_policy(ticket: Ticket) -> str | None:
    """The policy name set on the ticket by a rule or a person (not chosen automatically)."""
    if not ticket.sla_policy:
        return None
    last = (
        Event.select(Event.actor)
        .where((Event.ticket == ticket) & (Event.action == "sla_policy"))
        .order_by(Event.id.desc())
        .first()
    )
    return None if last is not None and last.actor == SLA_ACTOR else ticket.sla_policy


def choose_policy(rules: RuleSet, ticket: Ticket, now: dt.datetime) -> SlaPolicy | None:
    """The policy that applies to ``ticket`` now (see the module's docstring)."""
    name = named_policy(ticket)
    found = rules.sla_policy(name) if name else None
    return found or matching_policy(rules, TicketView.from_ticket(ticket), now)


def calendar_for(rules: RuleSet, policy: SlaPolicy) -> Calendar:
    """The hours ``policy`` counts in."""
    return Calendar(rules.business_hours if policy.business_hours else None)


# --- pauses -------------------------------------------------------------------------------------


def pauses_of(ticket: Ticket, now: dt.datetime) -> list[Span]:
    """The ticket's pauses as spans; one still lasting ends at ``now``."""
    rows = SlaPause.select().where(SlaPause.ticket == ticket).order_by(SlaPause.started_at)
    return [(row.started_at, row.ended_at or max(now, row.started_at)) for row in rows]


def open_pause(ticket: Ticket) -> SlaPause | None:
    return (
        SlaPause.select()
        .where((SlaPause.ticket == ticket) & SlaPause.ended_at.is_null())
        .order_by(SlaPause.id.desc())
        .first()
    )


def sync_pause(ticket: Ticket, at: dt.datetime) -> bool:
    """Make the pause rows agree with the status: stop or restart the clocks at ``at``.

    Called on every status change, and by the worker hook for changes made without
    :func:`maild.sla.lifecycle.set_status` (rules). True when a row was opened or closed.
    """
    current = open_pause(ticket)
    wanted = ticket.status in PAUSED
    if current is not None and (not wanted or current.status != ticket.status):
        SlaPause.update(ended_at=max(at, current.started_at)).where(
            (SlaPause.ticket == ticket) & SlaPause.ended_at.is_null()
        ).execute()
    if wanted and (current is None or current.status != ticket.status):
        SlaPause.create(ticket=ticket, status=ticket.status, started_at=at)
        return True
    return current is not None and not wanted


# --- due times ----------------------------------------------------------------------------------


def target_of(policy: SlaPolicy, name: str) -> dt.timedelta | None:
    return policy.first_response if name == "first_response" else policy.resolution


def step_due(
    rules: RuleSet, policy: SlaPolicy, step: EscalationStep, ticket: Ticket, pauses: list[Span]
) -> dt.datetime | None:
    """When ``step`` is due on ``ticket``: its share of the target, pauses left out."""
    target = target_of(policy, step.target)
    if target is None:
        return None
    return due_at(calendar_for(rules, policy), ticket.created_at, target * step.fraction, pauses)


def recompute(ticket: Ticket, rules: RuleSet | None, now: dt.datetime) -> bool:
    """Choose the policy again and store the due times; True when anything changed.

    A resolved or closed ticket keeps what it has. Each change is recorded (actor ``sla``).
    """
    if rules is None or ticket.status in ("resolved", "closed") or ticket.spam:
        return False
    policy = choose_policy(rules, ticket, now)
    chosen = policy.name if policy else None
    changed = False
    if chosen != ticket.sla_policy:
        name = named_policy(ticket)
        if name is None or rules.sla_policy(name) is None:
            gone: dict[str, Any] = {"reason": f"policy {name!r} no longer exists"} if name else {}
            changed = store.set_field(ticket, "sla_policy", chosen, actor=SLA_ACTOR, at=now, **gone)
    first_due = resolution_due = None
    if policy is not None:
        pauses = pauses_of(ticket, now)
        calendar = calendar_for(rules, policy)
        if policy.first_response is not None:
            first_due = due_at(calendar, ticket.created_at, policy.first_response, pauses)
        if policy.resolution is not None:
            resolution_due = due_at(calendar, ticket.created_at, policy.resolution, pauses)
    if ticket.first_response_at is not None:
        first_due = ticket.first_response_due  # met: frozen as it was when answered
    if (first_due, resolution_due) == (ticket.first_response_due, ticket.resolution_due):
        return changed
    ticket.first_response_due, ticket.resolution_due = first_due, resolution_due
    ticket.save()
    store.add_event(
        ticket,
        "sla_due",
        actor=SLA_ACTOR,
        at=now,
        policy=policy.name if policy else None,
        first_response_due=iso(first_due),
        resolution_due=iso(resolution_due),
        paused=ticket.status in PAUSED,
    )
    return True


def step_key(policy: SlaPolicy, index: int) -> str:
    """A stable name for the step at ``index``: its label, numbered when the label repeats."""
    label = policy.escalate[index].label
    same = sum(1 for step in policy.escalate[:index] if step.label == label)
    return label if same == 0 else f"{label} #{same + 1}"
