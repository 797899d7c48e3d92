"""The rules' data model: agents, teams, rules, conditions, actions, SLA policies, business hours.

Everything here is a frozen dataclass built by :mod:`maild.routing.loader` from the admin's YAML
after validation, so code that reads these values never re-checks them: a team named in an action
exists, an assignee is an agent's email, a regex compiled. Behaviour lives elsewhere: conditions are
evaluated by :mod:`maild.routing.conditions`, rules by :mod:`maild.routing.engine`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal
from zoneinfo import ZoneInfo

import regex

EVENTS = ("new_ticket", "customer_reply", "agent_reply")
STATUSES = ("new", "open", "pending", "resolved", "closed")
OPEN_STATUSES = ("new", "open", "pending")  # what least_open counts as a member's load
PRIORITIES = ("low", "normal", "high", "urgent")
STRATEGIES = ("round_robin", "least_open", "none")
ROLES = ("agent", "lead", "admin")  # each may do what the ones before it may
FIELD_TYPES = ("text", "number", "choice", "date", "bool")
BASE_STATUSES = ("new", "open", "pending", "resolved")  # what a custom status maps onto

TEAM = "team"  # as an assignee: "use the team's strategy"; as a notify target: every member
ASSIGNEE = "assignee"  # as a notify target: the ticket's assignee
PREDICTED = "predicted"  # as a team or priority action: the triage model's prediction
PREDICTION_TARGETS = ("team", "priority")

# Fields a condition can test. Message fields describe the mail being processed; ticket fields the
# ticket it belongs to, so they exist only for replies (and for SLA policies).
# The MTA's verdict (maild.pipeline.spam): spam_flag yes/no; spf, dkim, dmarc results.
SPAM_FIELDS = ("spam_flag", "spf", "dkim", "dmarc")
MESSAGE_FIELDS = ("from", "from_domain", "to", "cc", "recipients", "subject", "body", *SPAM_FIELDS)
TICKET_FIELDS = ("status", "priority", "team", "assignee", "tags")
TEXT_OPERATORS = ("equals", "contains", "starts_with", "ends_with")
OPERATORS = (*TEXT_OPERATORS, "matches", "exists")


@dataclass(frozen=True)
class Where:
    """Where something was written: the file and its 1-based line."""

    file: str
    line: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}"


# --- people -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Agent:
    """A person who answers tickets. ``email`` is lower-cased and is the agent's identity."""

    email: str
    name: str = ""
    teams: tuple[str, ...] = ()
    role: str = "agent"
    available: bool = True  # false: kept out of automatic assignment (holidays, leave)
    where: Where | None = field(default=None, compare=False)

    @property
    def label(self) -> str:
        return f"{self.name} <{self.email}>" if self.name else self.email


@dataclass(frozen=True)
class Team:
    """A group of agents; ``members`` are emails in the order the agents were declared."""

    name: str
    assign: str = "none"  # round_robin | least_open | none
    members: tuple[str, ...] = ()
    where: Where | None = field(default=None, compare=False)


# --- conditions ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class TextTest:
    """equals / contains / starts_with / ends_with: true when any operand fits (case ignored)."""

    op: str
    operands: tuple[str, ...]  # lower-cased


@dataclass(frozen=True)
class RegexTest:
    """matches: true when any pattern is found in the value (case ignored unless ``(?-i)``)."""

    patterns: tuple[regex.Pattern[str], ...]

    op = "matches"


@dataclass(frozen=True)
class ExistsTest:
    """exists: true when the field has a non-empty value (``exists: false`` for none)."""

    expected: bool

    op = "exists"


FieldTest = TextTest | RegexTest | ExistsTest


@dataclass(frozen=True)
class FieldCond:
    """A field with its tests, all of which must hold; ``header`` names the header to test."""

    field: str  # one of MESSAGE_FIELDS, TICKET_FIELDS, or "header"
    tests: tuple[FieldTest, ...]
    header: str | None = None  # lower-cased header name when field == "header"


@dataclass(frozen=True)
class AttachmentCond:
    """True when one attachment satisfies every test on its content type and file name."""

    type_tests: tuple[FieldTest, ...] = ()
    name_tests: tuple[FieldTest, ...] = ()


@dataclass(frozen=True)
class HasAttachments:
    expected: bool


@dataclass(frozen=True)
class BusinessHoursCond:
    """True when the time of evaluation is (``expected``) or is not inside business hours."""

    expected: bool


@dataclass(frozen=True)
class ScoreCond:
    """``spam_score: {above: 5, below: 10}``: the MTA's spam score in that range (exclusive);
    ``exists: false``: the MTA gave no score. ``of`` is ``sentiment`` for the message's sentiment
    score (``sentiment: {below: -0.5}``, :mod:`maild.pipeline.sentiment`)."""

    above: float | None = None
    below: float | None = None
    exists: bool | None = None
    of: str = "spam_score"  # spam_score | sentiment


@dataclass(frozen=True)
class PredictionCond:
    """``prediction: {team: {confidence: 0.8, equals: [billing]}}``: the triage model
    (:mod:`maild.triage`) predicts ``target`` (team or priority) with at least ``confidence``,
    and, with ``values``, one of them."""

    target: str  # team | priority
    confidence: float = 0.0
    values: tuple[str, ...] = ()


@dataclass(frozen=True)
class AllOf:
    items: tuple[Condition, ...]


@dataclass(frozen=True)
class AnyOf:
    items: tuple[Condition, ...]


@dataclass(frozen=True)
class Not:
    item: Condition


Condition = (
    FieldCond
    | AttachmentCond
    | HasAttachments
    | BusinessHoursCond
    | ScoreCond
    | PredictionCond
    | AllOf
    | AnyOf
    | Not
)


# --- actions ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Notify:
    """Mail ``template`` to ``to``: addresses, TEAM (every member) and/or ASSIGNEE."""

    template: str
    to: tuple[str, ...]


@dataclass(frozen=True)
class Actions:
    """What a rule's ``then`` asks for. None or empty means "not mentioned"."""

    team: str | None = None
    assignee: str | None = None  # an agent's email, or TEAM for the team's strategy
    priority: str | None = None
    status: str | None = None
    sla: str | None = None
    spam: bool | None = None
    tags_add: tuple[str, ...] = ()
    tags_remove: tuple[str, ...] = ()
    reply: str | None = None  # a template name
    notify: tuple[Notify, ...] = ()
    forward: tuple[str, ...] = ()
    set_fields: tuple[tuple[str, str], ...] = ()  # (custom field, value), validated

    def describe(self) -> tuple[str, ...]:
        """One short line per action, in a fixed order, for traces and ``rules explain``."""
        out: list[str] = []
        for name in ("team", "assignee", "priority", "status", "sla"):
            value = getattr(self, name)
            if value is not None:
                out.append(f"{name}={value}")
        if self.spam is not None:
            out.append(f"spam={'true' if self.spam else 'false'}")
        out.extend(f"tag+{tag}" for tag in self.tags_add)
        out.extend(f"tag-{tag}" for tag in self.tags_remove)
        if self.reply is not None:
            out.append(f"reply={self.reply}")
        out.extend(f"notify={n.template}->{','.join(n.to)}" for n in self.notify)
        out.extend(f"forward={address}" for address in self.forward)
        out.extend(f"field.{name}={value}" for name, value in self.set_fields)
        return tuple(out)


# --- rules --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Rule:
    name: str
    events: tuple[str, ...] = ("new_ticket",)
    when: Condition | None = None  # None: always
    then: Actions = field(default_factory=Actions)
    stop: bool = False
    enabled: bool = True
    where: Where | None = field(default=None, compare=False)


# --- custom fields and statuses ------------------------------------------------------------------


@dataclass(frozen=True)
class Extract:
    """Where a field's value is found in mail: the group ``value`` of ``pattern`` (or the match)."""

    source: str  # subject | text | header
    pattern: regex.Pattern[str]
    header: str | None = None  # lower-cased, for source "header"


@dataclass(frozen=True)
class FieldDef:
    """A ticket field an admin declared in the rules files."""

    name: str
    type: str  # one of FIELD_TYPES
    values: tuple[str, ...] = ()  # the choices, for type "choice"
    label: str = ""
    required_on_form: bool = False
    on_form: bool = False  # shown on the web form (true when required_on_form)
    extract: Extract | None = None
    where: Where | None = field(default=None, compare=False)


@dataclass(frozen=True)
class StatusDef:
    """A custom status: a name agents use, the base state it counts as, the label customers see."""

    name: str
    base: str  # one of BASE_STATUSES
    label: str
    where: Where | None = field(default=None, compare=False)


# --- time ---------------------------------------------------------------------------------------

Interval = tuple[int, int]  # minutes after midnight: [start, end), end may be 1440


@dataclass(frozen=True)
class BusinessHours:
    """Opening hours in a time zone: per weekday (Monday first) a list of intervals, and holidays.

    ``always`` is the 24/7 form: every moment is inside business hours.
    """

    timezone: str = "UTC"
    week: tuple[tuple[Interval, ...], ...] = ((),) * 7
    holidays: frozenset[dt.date] = frozenset()
    always: bool = False
    where: Where | None = field(default=None, compare=False)

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


@dataclass(frozen=True)
class EscalationStep:
    """Fire at ``fraction`` of ``target`` (1.0 with ``breach`` at the breach itself)."""

    target: Literal["first_response", "resolution"]
    fraction: float
    breach: bool = False
    notify: tuple[str, ...] = ()  # addresses, agents' emails, TEAM, ASSIGNEE
    template: str = "escalation"
    then: Actions = field(default_factory=Actions)  # only team, assignee, priority
    where: Where | None = field(default=None, compare=False)

    @property
    def label(self) -> str:
        at = "breach" if self.breach else f"{self.fraction * 100:g}%"
        return f"{at} {self.target}"


@dataclass(frozen=True)
class SlaPolicy:
    """Targets and escalations; chosen by ``when`` on the ticket, or by a rule's ``sla`` action."""

    name: str
    when: Condition | None = None
    first_response: dt.timedelta | None = None
    resolution: dt.timedelta | None = None
    business_hours: bool = True  # false: count 24/7 even when a business_hours block exists
    escalate: tuple[EscalationStep, ...] = ()
    where: Where | None = field(default=None, compare=False)


# --- the ticket, as rules see it ------------------------------------------------------------------


@dataclass(frozen=True)
class TicketView:
    """The ticket fields that reply rules and SLA policies may test; plain values, no ORM."""

    status: str = "new"
    priority: str = "normal"
    team: str | None = None
    assignee: str | None = None
    tags: tuple[str, ...] = ()
    fields: tuple[tuple[str, str], ...] = ()  # custom fields: (name, value), sorted by name

    def field(self, name: str) -> str | None:
        return next((value for key, value in self.fields if key == name), None)

    @classmethod
    def of(
        cls,
        *,
        status: str,
        priority: str,
        team: str | None,
        assignee: str | None,
        tags: Iterable[str] = (),
        fields: Iterable[tuple[str, str]] = (),
    ) -> TicketView:
        return cls(
            status, priority, team, assignee, tuple(sorted(set(tags))), tuple(sorted(fields))
        )

    @classmethod
    def from_ticket(cls, ticket: Any) -> TicketView:
        """From a :class:`maild.store.models.Ticket` (reads its tag and field rows: two queries)."""
        return cls.of(
            status=ticket.status,
            priority=ticket.priority,
            team=ticket.team,
            assignee=ticket.assignee,
            tags=(row.tag for row in ticket.tag_rows),
            fields=((row.name, row.value) for row in ticket.field_rows),
        )
