"""The condition language of rules and SLA policies: compiling YAML into conditions; testing them.

Fields: ``from`` (the From address, else the envelope sender), ``from_domain``, ``to`` and ``cc``
(the header addresses), ``recipients`` (envelope, To and Cc), ``subject``, ``body`` (the text
body), ``header: {Name: {...}}``, ``has_attachments`` and ``attachment: {type, name}`` (inline parts
such as signature logos are not attachments here), ``business_hours`` (true/false), and for replies
and SLA policies the ticket's ``status``, ``priority``, ``team``, ``assignee`` and ``tags``. A field
with several values (``to``, ``tags``, a repeated header) holds when any value holds.

Operators: ``equals``, ``contains``, ``starts_with``, ``ends_with`` (each with one string or a list,
true when any fits; case is ignored), ``matches`` (a regex, or a list; case is ignored unless the
pattern says ``(?-i)``), ``exists`` (true/false). Several operators on one field must all hold, and
so must several keys in one mapping; ``any``, ``all`` and ``not`` nest.

Regex policy: a pattern cannot hang the worker. Python's ``re`` cannot be interrupted, so patterns
are compiled with the ``regex`` package and every search runs with ``timeout=`` (REGEX_TIMEOUT
seconds), which really stops the matcher; one evaluation has a total regex budget (REGEX_BUDGET) so
many slow patterns cannot add up either; and every text a condition sees is cut to MAX_TEXT_CHARS,
which bounds the work of the other operators too. A search that times out counts as "no match", is
named in the trace and logged. Patterns are limited to MAX_PATTERN_CHARS and checked at load.
"""

from __future__ import annotations

import datetime as dt
import difflib
import logging
import time
from collections.abc import Callable, Collection, Sequence
from functools import partial
from typing import Any, Literal

import regex

from maild.pipeline.message import InboundMessage
from maild.routing.schema import (
    MESSAGE_FIELDS,
    OPERATORS,
    PRIORITIES,
    STATUSES,
    TEXT_OPERATORS,
    TICKET_FIELDS,
    AllOf,
    AnyOf,
    AttachmentCond,
    BusinessHours,
    BusinessHoursCond,
    Condition,
    ExistsTest,
    FieldCond,
    FieldTest,
    HasAttachments,
    Not,
    RegexTest,
    TextTest,
    TicketView,
)

log = logging.getLogger("ticketd.rules")

MAX_TEXT_CHARS = 100_000  # the part of a body or header any operator looks at
MAX_PATTERN_CHARS = 1_000
REGEX_TIMEOUT = 0.1  # seconds for one search
REGEX_BUDGET = 1.0  # seconds for all searches of one evaluation
MAX_DEPTH = 16  # nesting of any/all/not
REGEX_FLAGS = regex.IGNORECASE | regex.VERSION0

Scope = Literal["message", "reply", "ticket"]
Report = Callable[[Any, Any, str], None]  # (containing node, key or index, message)

_HEADER_NAME = regex.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")


# --- compiling ------------------------------------------------------------------------------------


def suggest(word: str, known: Sequence[str]) -> str:
    """``" (known: a, b); did you mean 'x'?"`` for an unknown key or operator."""
    close = difflib.get_close_matches(str(word), known, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return f" (known: {', '.join(known)}){hint}"


class ConditionCompiler:
    """Turns a ``when`` node into a :data:`Condition`, reporting every problem it finds.

    ``scope`` says which fields exist: ``message`` (new-ticket rules), ``reply`` (message and ticket
    fields) or ``ticket`` (SLA policies). A node with errors compiles to None; its siblings are
    still checked so that one run reports everything.
    """

    def __init__(
        self,
        report: Report,
        *,
        scope: Scope,
        has_business_hours: bool,
        teams: Collection[str] = (),
    ) -> None:
        self.report = report
        self.scope = scope
        self.has_business_hours = has_business_hours
        self.teams = teams

    def fields(self) -> tuple[str, ...]:
        message = (*MESSAGE_FIELDS, "header", "has_attachments", "attachment")
        if self.scope == "message":
            return (*message, "business_hours")
        if self.scope == "reply":
            return (*message, "business_hours", *TICKET_FIELDS)
        return (*TICKET_FIELDS, "business_hours")

    def compile(
        self, node: Any, parent: Any, key: Any, path: str, depth: int = 0
    ) -> Condition | None:
        if depth > MAX_DEPTH:
            self.report(parent, key, f"{path}: conditions nest deeper than {MAX_DEPTH} levels")
            return None
        if isinstance(node, list):
            return self._group(AllOf, node, parent, key, path, depth)
        if not isinstance(node, dict) or not node:
            self.report(
                parent,
                key,
                f"{path}: expected a mapping of conditions, "
                f"e.g. {{subject: {{contains: [invoice]}}}}",
            )
            return None
        items: list[Condition | None] = []
        for name, value in node.items():
            sub = f"{path}.{name}"
            if name in ("any", "all"):
                if not isinstance(value, list):
                    self.report(node, name, f"{sub}: expected a list of conditions")
                    items.append(None)
                    continue
                group = AnyOf if name == "any" else AllOf
                items.append(self._group(group, value, node, name, sub, depth))
            elif name == "not":
                inner = self.compile(value, node, name, sub, depth + 1)
                items.append(Not(inner) if inner is not None else None)
            else:
                items.append(self._field(name, value, node, sub))
        if any(item is None for item in items):
            return None
        done = [item for item in items if item is not None]
        return done[0] if len(done) == 1 else AllOf(tuple(done))

    def _group(
        self,
        kind: type[AllOf] | type[AnyOf],
        node: list[Any],
        parent: Any,
        key: Any,
        path: str,
        depth: int,
    ) -> Condition | None:
        if not node:
            self.report(parent, key, f"{path}: an empty list of conditions")
            return None
        items = [self.compile(v, node, i, f"{path}[{i}]", depth + 1) for i, v in enumerate(node)]
        if any(item is None for item in items):
            return None
        return kind(tuple(item for item in items if item is not None))

    def _field(self, name: Any, value: Any, node: Any, path: str) -> Condition | None:
        fields = self.fields()
        if name not in fields:
            where = {
                "message": "in new_ticket rules",
                "reply": "in rules",
                "ticket": "in SLA policies",
            }[self.scope]
            if name in TICKET_FIELDS and self.scope == "message":
                self.report(
                    node,
                    name,
                    f"{path}: the ticket's {name} can only be tested by rules "
                    "on customer_reply or agent_reply",
                )
            elif name in (*MESSAGE_FIELDS, "header", "attachment", "has_attachments"):
                self.report(node, name, f"{path}: message fields cannot be tested {where}")
            else:
                self.report(
                    node,
                    name,
                    f"{path}: unknown condition {name!r}"
                    + suggest(name, ("any", "all", "not", *fields)),
                )
            return None
        if name in ("has_attachments", "business_hours"):
            if not isinstance(value, bool):
                self.report(node, name, f"{path}: expected true or false, not {value!r}")
                return None
            if name == "business_hours":
                if not self.has_business_hours:
                    self.report(
                        node, name, f"{path}: no business_hours block is defined in the rules files"
                    )
                    return None
                return BusinessHoursCond(value)
            return HasAttachments(value)
        if name == "header":
            return self._headers(value, node, path)
        if name == "attachment":
            return self._attachment(value, node, path)
        tests = self.tests(value, node, name, path, field=str(name))
        return FieldCond(str(name), tests) if tests is not None else None

    def _headers(self, value: Any, node: Any, path: str) -> Condition | None:
        if not isinstance(value, dict) or not value:
            self.report(node, "header", f"{path}: expected {{Header-Name: {{operator: value}}}}")
            return None
        items: list[Condition | None] = []
        for header, tests_node in value.items():
            if not isinstance(header, str) or not _HEADER_NAME.match(header):
                self.report(value, header, f"{path}: {header!r} is not a header name")
                items.append(None)
                continue
            tests = self.tests(tests_node, value, header, f"{path}.{header}", field="header")
            items.append(FieldCond("header", tests, header.lower()) if tests is not None else None)
        if any(item is None for item in items):
            return None
        done = [item for item in items if item is not None]
        return done[0] if len(done) == 1 else AllOf(tuple(done))

    def _attachment(self, value: Any, node: Any, path: str) -> Condition | None:
        if not isinstance(value, dict) or not value:
            self.report(node, "attachment", f"{path}: expected {{type: {{...}}, name: {{...}}}}")
            return None
        found: dict[str, tuple[FieldTest, ...] | None] = {}
        for key, tests_node in value.items():
            if key not in ("type", "name"):
                self.report(
                    value,
                    key,
                    f"{path}: unknown attachment field {key!r}" + suggest(key, ("type", "name")),
                )
                found[str(key)] = None
                continue
            found[key] = self.tests(
                tests_node, value, key, f"{path}.{key}", field=f"attachment {key}"
            )
        if any(tests is None for tests in found.values()):
            return None
        return AttachmentCond(found.get("type") or (), found.get("name") or ())

    def tests(
        self, node: Any, parent: Any, key: Any, path: str, *, field: str
    ) -> tuple[FieldTest, ...] | None:
        """The operators of one field: ``{contains: [...], matches: ...}``."""
        if not isinstance(node, dict) or not node:
            self.report(parent, key, f"{path}: expected operators, e.g. {{contains: [word]}}")
            return None
        tests: list[FieldTest | None] = []
        for op, operand in node.items():
            sub = f"{path}.{op}"
            if op not in OPERATORS:
                self.report(node, op, f"{sub}: unknown operator {op!r}" + suggest(op, OPERATORS))
                tests.append(None)
            elif op == "exists":
                if not isinstance(operand, bool):
                    self.report(node, op, f"{sub}: expected true or false, not {operand!r}")
                    tests.append(None)
                else:
                    tests.append(ExistsTest(operand))
            elif op == "matches":
                tests.append(self._regex(operand, node, op, sub))
            else:
                tests.append(self._text(op, operand, node, sub, field))
        if any(test is None for test in tests):
            return None
        return tuple(test for test in tests if test is not None)

    def _strings(self, operand: Any, node: Any, op: Any, path: str) -> list[str] | None:
        values = operand if isinstance(operand, list) else [operand]
        out: list[str] = []
        for value in values:
            if isinstance(value, bool) or not isinstance(value, str | int | float) or value == "":
                self.report(
                    node,
                    op,
                    f"{path}: expected a non-empty string or a list of them, not {value!r}",
                )
                return None
            out.append(str(value))
        if not out:
            self.report(node, op, f"{path}: an empty list")
            return None
        return out

    def _text(self, op: str, operand: Any, node: Any, path: str, field: str) -> TextTest | None:
        values = self._strings(operand, node, op, path)
        if values is None:
            return None
        known: Sequence[str] = {"status": STATUSES, "priority": PRIORITIES}.get(field, ())
        if field == "team":
            known = sorted(self.teams)
        if op == "equals" and known:
            for value in values:
                if value.lower() not in known:
                    self.report(
                        node,
                        op,
                        f"{path}: {value!r} is not a {field}" + suggest(value.lower(), known),
                    )
                    return None
        if op not in TEXT_OPERATORS:  # pragma: no cover - callers pass only text operators
            raise ValueError(op)
        return TextTest(op, tuple(value.lower() for value in values))

    def _regex(self, operand: Any, node: Any, op: str, path: str) -> RegexTest | None:
        values = self._strings(operand, node, op, path)
        if values is None:
            return None
        patterns = []
        for value in values:
            if len(value) > MAX_PATTERN_CHARS:
                self.report(
                    node, op, f"{path}: the pattern is longer than {MAX_PATTERN_CHARS} characters"
                )
                return None
            try:
                patterns.append(regex.compile(value, REGEX_FLAGS))
            except (regex.error, ValueError, OverflowError, RecursionError) as exc:
                self.report(node, op, f"{path}: invalid regex {value!r}: {exc}")
                return None
        return RegexTest(tuple(patterns))


# --- testing ------------------------------------------------------------------------------------


class Outcome:
    """Whether a condition held, and the part of it that decided, in words.

    The words are rendered only when asked for (``reason``), so evaluating a thousand rules does
    not format a thousand explanations nobody reads; the values they quote are immutable.
    """

    __slots__ = ("_why", "matched")

    def __init__(self, matched: bool, why: str | Callable[[], str]) -> None:
        self.matched = matched
        self._why = why

    @property
    def reason(self) -> str:
        if not isinstance(self._why, str):
            self._why = self._why()
        return self._why

    def __repr__(self) -> str:
        return f"Outcome({self.matched}, {self.reason!r})"


_CLOSE = Outcome(True, ")")


class MatchContext:
    """One evaluation's inputs, with field values computed once, and the regex budget."""

    def __init__(
        self,
        msg: InboundMessage,
        ticket: TicketView | None,
        now: dt.datetime,
        business_hours: BusinessHours | None = None,
        *,
        regex_timeout: float = REGEX_TIMEOUT,
        regex_budget: float = REGEX_BUDGET,
    ) -> None:
        self.msg = msg
        self.ticket = ticket
        self.now = now
        self.business_hours = business_hours
        self.regex_timeout = regex_timeout
        self.regex_left = regex_budget
        self.timeouts: list[str] = []
        self._values: dict[tuple[str, str | None], tuple[str, ...]] = {}
        self._lowered: dict[tuple[str, str | None], tuple[str, ...]] = {}
        self._open: bool | None = None

    def values(self, field: str, header: str | None = None) -> tuple[str, ...]:
        key = (field, header)
        found = self._values.get(key)
        if found is None:
            found = tuple(v[:MAX_TEXT_CHARS] for v in self._compute(field, header) if v is not None)
            self._values[key] = found
        return found

    def lowered(self, field: str, header: str | None = None) -> tuple[str, ...]:
        key = (field, header)
        found = self._lowered.get(key)
        if found is None:
            found = tuple(v.lower() for v in self.values(field, header))
            self._lowered[key] = found
        return found

    def _compute(self, field: str, header: str | None) -> Sequence[str | None]:
        msg, ticket = self.msg, self.ticket
        if field in ("from", "from_domain"):
            sender = (msg.from_addr.email if msg.from_addr else msg.envelope_from).lower()
            if not sender:
                return ()
            return (sender,) if field == "from" else (sender.rpartition("@")[2],)
        if field == "to":
            return [a.email.lower() for a in msg.to]
        if field == "cc":
            return [a.email.lower() for a in msg.cc]
        if field == "recipients":
            return msg.recipients
        if field == "subject":
            return (msg.subject,)
        if field == "body":
            return (msg.text,)
        if field == "header":
            return msg.header_all(header or "")
        if ticket is None:
            return ()
        if field == "tags":
            return ticket.tags
        return (getattr(ticket, field),)

    def search(
        self, pattern: regex.Pattern[str], text: str
    ) -> regex.Match[str] | Literal[False] | None:
        """The match, None when there is none, False when the search ran out of time."""
        if self.regex_left <= 0:
            self.timeouts.append(pattern.pattern)
            return False
        started = time.perf_counter()
        try:
            return pattern.search(
                text, timeout=min(self.regex_timeout, self.regex_left), concurrent=True
            )
        except TimeoutError:
            self.timeouts.append(pattern.pattern)
            return False
        finally:
            self.regex_left -= time.perf_counter() - started

    def in_business_hours(self) -> bool:
        if self._open is None:
            bh = self.business_hours
            self._open = bh is None or in_business_hours(bh, self.now)
        return self._open


def in_business_hours(bh: BusinessHours, now: dt.datetime) -> bool:
    """Whether ``now`` (naive means UTC) falls inside the opening hours, holidays excluded."""
    if bh.always:
        return True
    if now.tzinfo is None:
        now = now.replace(tzinfo=dt.UTC)
    local = now.astimezone(bh.zone)
    if local.date() in bh.holidays:
        return False
    minute = local.hour * 60 + local.minute
    return any(start <= minute < end for start, end in bh.week[local.weekday()])


def shown(values: Sequence[str], limit: int = 60) -> str:
    """A short rendering of a field's values for a trace."""
    if not values:
        return "nothing"
    parts = []
    for value in values[:3]:
        one = " ".join(value.split())
        parts.append(repr(one if len(one) <= limit else one[: limit - 1] + "…"))
    more = f" (+{len(values) - 3} more)" if len(values) > 3 else ""
    return ", ".join(parts) + more


def _operands(test: TextTest | RegexTest) -> str:
    if isinstance(test, RegexTest):
        return ", ".join(f"/{p.pattern}/" for p in test.patterns)
    items = test.operands
    return repr(items[0]) if len(items) == 1 else "[" + ", ".join(map(repr, items)) + "]"


def _text_hit(op: str, lowered: tuple[str, ...], operands: tuple[str, ...]) -> str | None:
    """The first operand that fits one of the values, or None."""
    for value in lowered:
        if op == "equals":
            if value in operands:
                return value
            continue
        for operand in operands:
            if op == "contains":
                if operand in value:
                    return operand
            elif value.startswith(operand) if op == "starts_with" else value.endswith(operand):
                return operand
    return None


def _missed(label: str, test: TextTest | RegexTest, values: tuple[str, ...]) -> str:
    return f"{label} {test.op} {_operands(test)}: no ({label}: {shown(values)})"


def _field_test(
    test: FieldTest,
    label: str,
    values: tuple[str, ...],
    lowered: tuple[str, ...],
    ctx: MatchContext,
) -> Outcome:
    if isinstance(test, TextTest):
        operand = _text_hit(test.op, lowered, test.operands)
        if operand is not None:
            return Outcome(True, partial("{} {} {!r}".format, label, test.op, operand))
        return Outcome(False, partial(_missed, label, test, values))
    if isinstance(test, ExistsTest):
        present = any(values)
        if present == test.expected:
            return Outcome(True, f"{label} {'is present' if present else 'is absent'}")
        return Outcome(False, f"{label} exists {str(test.expected).lower()}: no")
    timed_out = []
    for value in values:
        for pattern in test.patterns:
            found = ctx.search(pattern, value)
            if found is False:
                timed_out.append(pattern.pattern)
            elif found is not None:
                text = found.group()
                return Outcome(
                    True,
                    partial(
                        "{} matches /{}/ (found {})".format, label, pattern.pattern, shown([text])
                    ),
                )
    if timed_out:
        return Outcome(
            False, f"{label} matches /{timed_out[0]}/: the search timed out and counts as no match"
        )
    return Outcome(False, partial(_missed, label, test, values))


def _field(cond: FieldCond, ctx: MatchContext) -> Outcome:
    label = f"header {cond.header}" if cond.header is not None else cond.field
    values = ctx.values(cond.field, cond.header)
    lowered = ctx.lowered(cond.field, cond.header)
    if len(cond.tests) == 1:
        return _field_test(cond.tests[0], label, values, lowered, ctx)
    held = []
    for test in cond.tests:
        outcome = _field_test(test, label, values, lowered, ctx)
        if not outcome.matched:
            return outcome
        held.append(outcome)
    return Outcome(True, partial(_joined, " and ", "", held))


def _joined(sep: str, prefix: str, outcomes: list[Outcome]) -> str:
    return prefix + sep.join(o.reason for o in outcomes)


def _attachment(cond: AttachmentCond, ctx: MatchContext) -> Outcome:
    parts = [a for a in ctx.msg.attachments if not a.inline]
    for part in parts:
        ctype, name = part.content_type.lower(), part.filename
        checks = [(t, "attachment type", ctype) for t in cond.type_tests]
        checks += [(t, "attachment name", name) for t in cond.name_tests]
        if all(_field_test(t, label, (v,), (v.lower(),), ctx).matched for t, label, v in checks):
            return Outcome(True, f"attachment {name!r} ({ctype})")
    if not parts:
        return Outcome(False, "attachment: the message has no attachments")
    listed = shown([f"{a.filename} ({a.content_type})" for a in parts])
    return Outcome(False, f"attachment: none of {listed} fits")


def check(cond: Condition, ctx: MatchContext) -> Outcome:
    """Test ``cond``; the outcome's reason names the condition that decided."""
    if isinstance(cond, FieldCond):
        return _field(cond, ctx)
    if isinstance(cond, AllOf):
        held = []
        for item in cond.items:
            outcome = check(item, ctx)
            if not outcome.matched:
                return outcome
            held.append(outcome)
        return Outcome(True, partial(_joined, " and ", "", held))
    if isinstance(cond, AnyOf):
        missed = []
        for item in cond.items:
            outcome = check(item, ctx)
            if outcome.matched:
                return outcome
            missed.append(outcome)
        return Outcome(False, partial(_joined, "; ", "none of: ", missed))
    if isinstance(cond, Not):
        outcome = check(cond.item, ctx)
        return Outcome(not outcome.matched, partial(_joined, "", "not (", [outcome, _CLOSE]))
    if isinstance(cond, HasAttachments):
        count = sum(1 for a in ctx.msg.attachments if not a.inline)
        said = f"{count} attachment{'s' if count != 1 else ''}"
        return Outcome(
            (count > 0) == cond.expected, f"has_attachments {str(cond.expected).lower()} ({said})"
        )
    if isinstance(cond, AttachmentCond):
        return _attachment(cond, ctx)
    if isinstance(cond, BusinessHoursCond):
        inside = ctx.in_business_hours()
        said = "inside" if inside else "outside"
        return Outcome(
            inside == cond.expected,
            f"business_hours {str(cond.expected).lower()} ({said} business hours)",
        )
    raise TypeError(f"not a condition: {cond!r}")  # pragma: no cover
