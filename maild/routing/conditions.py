"""The condition language of rules and SLA policies: compiling YAML into condition values.

Fields: ``from`` (the From address, else the envelope sender), ``from_domain``, ``to`` and ``cc``
(the header addresses), ``recipients`` (envelope, To and Cc), ``subject``, ``body`` (the text
body), ``header: {Name: {...}}``, ``has_attachments`` and ``attachment: {type, name}`` (inline parts
such as signature logos are not attachments here), ``business_hours`` (true/false), and for replies
and SLA policies the ticket's ``status``, ``priority``, ``team``, ``assignee`` and ``tags``. A field
with several values (``to``, ``tags``, a repeated header) holds when any value holds.

Custom fields (``fields:`` in the rules files) are ``field.NAME``: the value stored on the ticket,
else the one the field's ``extract`` finds in this message.

Operators: ``equals``, ``contains``, ``starts_with``, ``ends_with`` (each with one string or a list,
true when any fits; case is ignored), ``matches`` (a regex, or a list; case is ignored unless the
pattern says ``(?-i)``), ``exists`` (true/false). Several operators on one field must all hold, and
so must several keys in one mapping; ``any``, ``all`` and ``not`` nest.

Regex policy: patterns are compiled with the ``regex`` package (searches can be interrupted, see
:mod:`maild.routing.match`), limited to MAX_PATTERN_CHARS and checked here, at load.

Testing a condition with its reason in words is :mod:`maild.routing.match`; the fast predicates
the engine runs over every rule are :mod:`maild.routing.predicates`.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any, Literal

import regex

from maild.routing.schema import (
    MESSAGE_FIELDS,
    OPERATORS,
    PREDICTION_TARGETS,
    PRIORITIES,
    STATUSES,
    TEXT_OPERATORS,
    TICKET_FIELDS,
    AllOf,
    AnyOf,
    AttachmentCond,
    BusinessHoursCond,
    Condition,
    ExistsTest,
    FieldCond,
    FieldDef,
    FieldTest,
    HasAttachments,
    Not,
    PredictionCond,
    RegexTest,
    ScoreCond,
    TextTest,
)

MAX_PATTERN_CHARS = 1_000
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
        custom_fields: Mapping[str, FieldDef] | None = None,
    ) -> None:
        self.custom_fields = custom_fields or {}
        self.report = report
        self.scope = scope
        self.has_business_hours = has_business_hours
        self.teams = teams

    def fields(self) -> tuple[str, ...]:
        message = (
            *MESSAGE_FIELDS,
            "spam_score",
            "sentiment",
            "prediction",
            "header",
            "has_attachments",
            "attachment",
        )
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
        if isinstance(name, str) and name.startswith("field."):
            return self._custom(name, value, node, path)
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
            elif name in (
                *MESSAGE_FIELDS,
                "sentiment",
                "prediction",
                "header",
                "attachment",
                "has_attachments",
            ):
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
        if name in ("spam_score", "sentiment"):
            return self._score(value, node, path, name)
        if name == "prediction":
            return self._prediction(value, node, path)
        if name == "attachment":
            return self._attachment(value, node, path)
        tests = self.tests(value, node, name, path, field=str(name))
        return FieldCond(str(name), tests) if tests is not None else None

    def _custom(self, name: str, value: Any, node: Any, path: str) -> Condition | None:
        """``field.NAME``: a custom field, as stored on the ticket or extracted from the mail."""
        field = name.split(".", 1)[1]
        defn = self.custom_fields.get(field)
        if defn is None:
            known = sorted(self.custom_fields)
            self.report(
                node,
                name,
                f"{path}: no field {field!r} is declared"
                + (suggest(field, known) if known else " (the rules files declare no fields)"),
            )
            return None
        tests = self.tests(value, node, name, path, field=name)
        if tests is None:
            return None
        for test in tests:
            if isinstance(test, TextTest) and test.op == "equals" and defn.type == "choice":
                choices = [v.lower() for v in defn.values]
                bad = [v for v in test.operands if v not in choices]
                if bad:
                    self.report(
                        node, name, f"{path}: {bad[0]!r} is not one of {', '.join(defn.values)}"
                    )
                    return None
        return FieldCond("field", tests, field)

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

    def _score(self, value: Any, node: Any, path: str, name: str) -> Condition | None:
        """``spam_score: {above: 5}``, ``{below: 1}``, both, or ``{exists: true|false}``; the
        same for ``sentiment`` (from -1 to 1)."""
        known = ("above", "below", "exists")
        if not isinstance(value, dict) or not value:
            self.report(node, name, f"{path}: expected {{above: 5}} or {{below: 0}}")
            return None
        found: dict[str, Any] = {}
        for key, operand in value.items():
            if key not in known:
                self.report(
                    value, key, f"{path}: unknown operator {key!r}" + suggest(str(key), known)
                )
                return None
            wants_bool = key == "exists"
            if wants_bool != isinstance(operand, bool) or not isinstance(operand, int | float):
                kind = "true or false" if wants_bool else "a number"
                self.report(value, key, f"{path}.{key}: expected {kind}, not {operand!r}")
                return None
            found[key] = operand
        return ScoreCond(
            above=float(found["above"]) if "above" in found else None,
            below=float(found["below"]) if "below" in found else None,
            exists=found.get("exists"),
            of=name,
        )

    def _prediction(self, value: Any, node: Any, path: str) -> Condition | None:
        """``prediction: {team: {confidence: 0.8, equals: [billing]}}`` (or ``priority``)."""
        example = "{team: {confidence: 0.8}}"
        if not isinstance(value, dict) or len(value) != 1:
            self.report(node, "prediction", f"{path}: expected one of team, priority: {example}")
            return None
        ((target, spec),) = value.items()
        if target not in PREDICTION_TARGETS:
            self.report(
                value,
                target,
                f"{path}: cannot predict {target!r}" + suggest(str(target), PREDICTION_TARGETS),
            )
            return None
        sub = f"{path}.{target}"
        if not isinstance(spec, dict) or not spec:
            self.report(value, target, f"{sub}: expected {{confidence: 0.8, equals: [...]}}")
            return None
        confidence, values = 0.0, ()
        for key, operand in spec.items():
            if key == "confidence":
                ok = isinstance(operand, int | float) and not isinstance(operand, bool)
                if not ok or not 0 <= operand <= 1:
                    self.report(spec, key, f"{sub}.confidence: expected 0 to 1, not {operand!r}")
                    return None
                confidence = float(operand)
            elif key == "equals":
                items = operand if isinstance(operand, list) else [operand]
                if not items or not all(isinstance(v, str) and v for v in items):
                    self.report(spec, key, f"{sub}.equals: expected a value or a list of them")
                    return None
                known = tuple(self.teams) if target == "team" else PRIORITIES
                bad = [v for v in items if v.lower() not in known]
                if bad and (target == "priority" or self.teams):
                    self.report(
                        spec, key, f"{sub}.equals: {bad[0]!r}" + suggest(bad[0], sorted(known))
                    )
                    return None
                values = tuple(v.lower() for v in items)
            else:
                self.report(
                    spec,
                    key,
                    f"{sub}: unknown key {key!r}" + suggest(str(key), ("confidence", "equals")),
                )
                return None
        return PredictionCond(str(target), confidence, values)

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
