"""Reading ``fields:`` and ``statuses:``: the admin's own ticket fields and sub-statuses.

A mixin of the loader, read after the people and before the rules (rules test and set fields).

    fields:
      - {name: order, type: number, extract: {from: subject, pattern: 'order #?(?P<value>[0-9]{3,8})'}}
      - {name: product, type: choice, values: [printer, scanner], required_on_form: true}
    statuses:
      - {name: waiting_vendor, base: pending, label: "Waiting on vendor"}

A field name is letters, digits and ``_`` (it appears as ``field.NAME`` in conditions and as
``#set NAME=value``); an extract pattern is compiled like a rule's ``matches`` (same engine, same
length limit; searched with the same timeouts). A status maps onto one of the base states
``new``, ``open``, ``pending``, ``resolved`` and may not reuse a base state's name.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import regex

from maild.routing.conditions import MAX_PATTERN_CHARS, REGEX_FLAGS, Report, suggest
from maild.routing.policies import line_of
from maild.routing.schema import (
    BASE_STATUSES,
    FIELD_TYPES,
    STATUSES,
    Extract,
    FieldDef,
    StatusDef,
    Where,
)

FIELD_KEYS = ("name", "type", "values", "label", "required_on_form", "on_form", "extract")
STATUS_KEYS = ("name", "base", "label")
SOURCES = ("subject", "text", "header:NAME")
_NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
_HEADER = re.compile(r"^header:([A-Za-z0-9][A-Za-z0-9_-]*)$")


class FieldParsing:
    """The loader's part that reads custom fields and statuses."""

    fields: dict[str, FieldDef]
    statuses: dict[str, StatusDef]

    if TYPE_CHECKING:  # provided by the loader

        def reporter(self, file: str, label: str | None) -> Report: ...

        def _keys(self, node: Any, known: Any, report: Report, path: str) -> bool: ...

    def _field_def(self, file: str, seq: Any, i: int, node: Any) -> None:
        report = self.reporter(file, f"fields[{i}]")
        if not isinstance(node, dict):
            report(seq, i, "expected {name: ..., type: text|number|choice|date|bool}")
            return
        name = node.get("name")
        if not isinstance(name, str) or not _NAME.match(name):
            report(node, "name" if "name" in node else None, "name: lower-case letters, digits, _")
            return
        report = self.reporter(file, f"field {name!r}")
        ok = self._keys(node, FIELD_KEYS, report, "")
        if name in self.fields:
            report(node, "name", f"defined twice (first at {self.fields[name].where})")
            return
        kind = node.get("type", "text")
        if kind not in FIELD_TYPES:
            report(
                node,
                "type",
                f"type: {kind!r} is not a field type" + suggest(str(kind), FIELD_TYPES),
            )
            return
        values: tuple[str, ...] = ()
        if kind == "choice":
            raw = node.get("values")
            if (
                not isinstance(raw, list)
                or not raw
                or not all(isinstance(v, str) and v for v in raw)
            ):
                report(node, "values" if "values" in node else None, "values: a list of choices")
                return
            values = tuple(dict.fromkeys(raw))
        elif "values" in node:
            report(node, "values", "values: only a choice field has values")
            ok = False
        flags = {}
        for key in ("required_on_form", "on_form"):
            flags[key] = node.get(key, False)
            if not isinstance(flags[key], bool):
                report(node, key, f"{key}: expected true or false")
                ok = False
        label = node.get("label", name)
        if not isinstance(label, str):
            report(node, "label", "label: expected text")
            ok = False
        extract = self._extract(node.get("extract"), node, report) if "extract" in node else None
        if not ok or ("extract" in node and extract is None):
            return
        self.fields[name] = FieldDef(
            name,
            str(kind),
            values,
            str(label),
            bool(flags["required_on_form"]),
            bool(flags["on_form"] or flags["required_on_form"]),
            extract,
            Where(file, line_of(seq, i)),
        )

    def _extract(self, spec: Any, node: Any, report: Report) -> Extract | None:
        if not isinstance(spec, dict) or "pattern" not in spec:
            report(
                node,
                "extract",
                "extract: expected {from: subject|text|header:NAME, pattern: REGEX}",
            )
            return None
        if not self._keys(spec, ("from", "pattern"), report, "extract."):
            return None
        source = spec.get("from", "text")
        header = None
        if isinstance(source, str) and _HEADER.match(source):
            header = source.split(":", 1)[1].lower()
            source = "header"
        elif source not in ("subject", "text"):
            report(spec, "from", f"extract.from: {source!r}: expected one of " + ", ".join(SOURCES))
            return None
        pattern = spec["pattern"]
        if not isinstance(pattern, str) or not pattern or len(pattern) > MAX_PATTERN_CHARS:
            report(
                spec,
                "pattern",
                f"extract.pattern: a regex of at most {MAX_PATTERN_CHARS} characters",
            )
            return None
        try:
            compiled = regex.compile(pattern, REGEX_FLAGS)
        except (regex.error, ValueError, OverflowError, RecursionError) as exc:
            report(spec, "pattern", f"extract.pattern: invalid regex {pattern!r}: {exc}")
            return None
        return Extract(str(source), compiled, header)

    def _status_def(self, file: str, seq: Any, i: int, node: Any) -> None:
        report = self.reporter(file, f"statuses[{i}]")
        if not isinstance(node, dict):
            report(seq, i, "expected {name: ..., base: new|open|pending|resolved, label: ...}")
            return
        name = node.get("name")
        if not isinstance(name, str) or not _NAME.match(name):
            report(node, "name" if "name" in node else None, "name: lower-case letters, digits, _")
            return
        report = self.reporter(file, f"status {name!r}")
        if not self._keys(node, STATUS_KEYS, report, ""):
            return
        if name in STATUSES:
            report(node, "name", f"{name!r} is a base status; a custom status needs its own name")
            return
        if name in self.statuses:
            report(node, "name", f"defined twice (first at {self.statuses[name].where})")
            return
        base = node.get("base")
        if base not in BASE_STATUSES:
            report(
                node,
                "base" if "base" in node else None,
                f"base: {base!r} is not one of " + ", ".join(BASE_STATUSES),
            )
            return
        label = node.get("label", name.replace("_", " ").capitalize())
        if not isinstance(label, str) or not label.strip() or len(label) > 100:
            report(node, "label", "label: text of at most 100 characters")
            return
        self.statuses[name] = StatusDef(
            name, str(base), label.strip(), Where(file, line_of(seq, i))
        )
