"""Loading the admin's rules folder into a validated :class:`RuleSet`, or every reason it is wrong.

Every ``*.yaml``/``*.yml`` file in the folder is read in file-name order (hidden files are
ignored), keeping line numbers. Each file may hold the
top-level keys ``agents``, ``teams``, ``rules``, ``business_hours`` (in one file only) and ``sla``;
names defined in one file may be used in any other. Nothing is half-loaded: all errors of all files
are collected and raised together as :class:`RulesError`, each as ``file:line: rule 'NAME': what is
wrong``.

Each file is read by :mod:`maild.yamlfile` (size limit, no anchors, aliases or tags,
bounded nesting, duplicate keys and tabs in plain words). References are checked: teams, agents,
SLA policies and, when a set of available template names is given, templates.

Rules are read here; agents and teams by :mod:`maild.routing.people_parsing`; custom fields and
statuses by :mod:`maild.routing.field_parsing`; actions by
:mod:`maild.routing.action_parsing`; conditions by :mod:`maild.routing.conditions`; business
hours and SLA policies by :mod:`maild.routing.policies`.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from maild.errors import ConfigError
from maild.routing.action_parsing import ACTION_KEYS, ActionParsing
from maild.routing.conditions import ConditionCompiler, Report, Scope, suggest
from maild.routing.engine import RuleSet
from maild.routing.field_parsing import FieldParsing
from maild.routing.people_parsing import PeopleParsing
from maild.routing.policies import PolicyParsing, line_of
from maild.routing.schema import (
    EVENTS,
    Actions,
    Agent,
    BusinessHours,
    Condition,
    FieldDef,
    Rule,
    StatusDef,
    Team,
    Where,
)
from maild.yamlfile import YamlProblem, read_yaml_file

TOP_KEYS = ("agents", "teams", "fields", "statuses", "rules", "business_hours", "sla")
RULE_KEYS = ("name", "on", "when", "then", "stop", "enabled")


class RulesError(ConfigError):
    """The rules folder is wrong; ``errors`` lists every problem, one ``file:line: ...`` each."""

    def __init__(self, errors: Sequence[str]) -> None:
        self.errors = list(errors)
        count = len(self.errors)
        super().__init__(
            f"{count} error{'s' if count != 1 else ''} in the rules:\n  " + "\n  ".join(self.errors)
        )


def rule_files(rules_dir: Path) -> list[Path]:
    """The rules files, in the order they load. Raises RulesError when the folder is missing."""
    if not rules_dir.is_dir():
        raise RulesError([f"{rules_dir}: the rules folder does not exist"])
    files = [
        p
        for p in rules_dir.iterdir()
        if p.suffix in (".yaml", ".yml") and not p.name.startswith(".") and p.is_file()
    ]
    return sorted(files, key=lambda p: p.name)


def available_templates(templates_dir: Path | None) -> frozenset[str] | None:
    """Template names a rule may use: ``NAME`` of the admin's ``NAME.txt.j2`` (or any
    ``NAME.*.j2``) and of the shipped defaults; partials (``_name``) are not templates."""
    if templates_dir is None:
        return None
    package = Path(__file__).resolve().parent.parent
    names: set[str] = set()
    for folder in (templates_dir, package / "notify" / "defaults", package / "defaults"):
        if folder.is_dir():
            names.update(
                p.name.split(".", 1)[0] for p in folder.glob("*.j2") if not p.name.startswith("_")
            )
    return frozenset(names)


def load_rules(rules_dir: Path, *, templates: Collection[str] | None = None) -> RuleSet:
    """Load and validate the whole folder; ``templates=None`` skips the template check."""
    return load_files(rule_files(rules_dir), templates=templates)


def load_files(files: Sequence[Path], *, templates: Collection[str] | None = None) -> RuleSet:
    loader = _Loader(templates)
    for path in files:
        loader.read(path)
    return loader.build(tuple(files))


@dataclass
class _Section:
    """One top-level key of one file."""

    file: str
    parent: Any
    key: str
    value: Any


@dataclass
class _Loader(PeopleParsing, FieldParsing, ActionParsing, PolicyParsing):
    templates: Collection[str] | None
    errors: list[tuple[str, int, str]] = field(default_factory=list)  # (file, line, text)
    sections: list[_Section] = field(default_factory=list)
    agents: dict[str, Agent] = field(default_factory=dict)
    teams: dict[str, Team] = field(default_factory=dict)
    fields: dict[str, FieldDef] = field(default_factory=dict)
    statuses: dict[str, StatusDef] = field(default_factory=dict)
    sla_names: set[str] = field(default_factory=set)
    business_hours: BusinessHours | None = None

    # --- reading ----------------------------------------------------------------------------------

    def error(self, file: str, line: int, message: str, label: str | None = None) -> None:
        where = f"{file}:{line}" if line else file
        text = f"{where}: {label}: {message}" if label else f"{where}: {message}"
        self.errors.append((file, line, text))

    def reporter(self, file: str, label: str | None) -> Report:
        return lambda node, key, message: self.error(file, line_of(node, key), message, label)

    def read(self, path: Path) -> None:
        file = str(path)
        data = self._parse(path, file)
        if data is None:
            return
        if not isinstance(data, dict):
            self.error(
                file,
                line_of(data),
                "the top level must be a mapping with some of: " + ", ".join(TOP_KEYS),
            )
            return
        for key, value in data.items():
            if key not in TOP_KEYS:
                self.error(
                    file,
                    line_of(data, key),
                    f"unknown top-level key {key!r}" + suggest(key, TOP_KEYS),
                )
            else:
                self.sections.append(_Section(file, data, key, value))

    def _parse(self, path: Path, file: str) -> Any:
        try:
            return read_yaml_file(path)
        except YamlProblem as exc:
            self.error(file, exc.line, exc.message)
            return None

    # --- building ---------------------------------------------------------------------------------

    def of(self, key: str) -> Iterable[_Section]:
        return (s for s in self.sections if s.key == key)

    def build(self, files: tuple[Path, ...]) -> RuleSet:
        for section in self.of("teams"):
            self._teams(section)
        for section in self.of("agents"):
            for i, item in self._items(section, "an agent"):
                self._agent(section.file, section.value, i, item)
        self._members()
        for section in self.of("fields"):
            for i, item in self._items(section, "a field"):
                self._field_def(section.file, section.value, i, item)
        for section in self.of("statuses"):
            for i, item in self._items(section, "a status"):
                self._status_def(section.file, section.value, i, item)
        for section in self.of("business_hours"):
            self._business_hours(section.file, section.parent, section.value)
        policies = []
        for section in self.of("sla"):
            for i, item in self._items(section, "an SLA policy"):
                policy = self._sla_policy(section.file, section.value, i, item)
                if policy is not None:
                    policies.append(policy)
        rules = []
        names: dict[str, str] = {}
        for section in self.of("rules"):
            for i, item in self._items(section, "a rule"):
                rule = self._rule(section.file, section.value, i, item, names)
                if rule is not None:
                    rules.append(rule)
        if self.errors:
            # In file order, then line order: the order an admin reads the files in.
            order = {str(path): i for i, path in enumerate(files)}
            ranked = sorted(self.errors, key=lambda e: (order.get(e[0], -1), e[1]))
            raise RulesError([text for _file, _line, text in ranked])
        return RuleSet(
            rules=tuple(rules),
            agents=dict(self.agents),
            teams=dict(self.teams),
            sla_policies=tuple(policies),
            business_hours=self.business_hours,
            files=files,
            fields=dict(self.fields),
            statuses=dict(self.statuses),
        )

    def _items(self, section: _Section, what: str) -> Iterable[tuple[int, Any]]:
        if section.value is None:
            return []
        if not isinstance(section.value, list):
            self.error(
                section.file,
                line_of(section.parent, section.key),
                f"{section.key}: expected a list, each item {what}",
            )
            return []
        return enumerate(section.value)

    def _keys(self, node: Any, known: Sequence[str], report: Report, path: str) -> bool:
        """Report keys of ``node`` that are not in ``known``; True when all are known."""
        ok = True
        for key in node:
            if key not in known:
                report(node, key, f"{path}unknown key {key!r}" + suggest(key, known))
                ok = False
        return ok

    # --- rules ----------------------------------------------------------------------------------

    def _rule(self, file: str, seq: Any, i: int, node: Any, names: dict[str, str]) -> Rule | None:
        report = self.reporter(file, f"rules[{i}]")
        if not isinstance(node, dict):
            report(seq, i, "expected {name: ..., when: {...}, then: {...}}")
            return None
        name = node.get("name")
        if not isinstance(name, str) or not name.strip():
            report(
                node,
                "name" if "name" in node else None,
                "name: required (it names the rule in traces and the audit trail)",
            )
            return None
        report = self.reporter(file, f"rule {name!r}")
        where = Where(file, line_of(seq, i))
        if name in names:
            report(node, "name", f"name: another rule has this name (at {names[name]})")
            return None
        names[name] = str(where)
        ok = self._keys(node, RULE_KEYS, report, "")
        events = node.get("on", "new_ticket")
        events = [events] if isinstance(events, str) else events
        if not isinstance(events, list) or not events or any(e not in EVENTS for e in events):
            report(
                node,
                "on",
                f"on: {node.get('on')!r}: expected one or a list of " + ", ".join(EVENTS),
            )
            return None
        flags = {}
        for key, default in (("stop", False), ("enabled", True)):
            flags[key] = node.get(key, default)
            if not isinstance(flags[key], bool):
                report(node, key, f"{key}: expected true or false, not {flags[key]!r}")
                ok = False
        when = self._when(node, report, "message" if "new_ticket" in events else "reply")
        ok = ok and (when is not None or "when" not in node)
        then = Actions()
        if "then" in node:
            got = self._actions(node["then"], node, "then", report, "then.", ACTION_KEYS)
            ok = ok and got is not None
            then = got or then
        elif not flags["stop"]:
            report(node, None, "a rule needs then: (its actions), or stop: true")
            ok = False
        if not ok:
            return None
        return Rule(
            name,
            tuple(dict.fromkeys(events)),
            when,
            then,
            bool(flags["stop"]),
            bool(flags["enabled"]),
            where,
        )

    def _when(self, node: Any, report: Report, scope: Scope) -> Condition | None:
        if "when" not in node:
            return None
        compiler = ConditionCompiler(
            report,
            scope=scope,
            teams=self.teams,
            has_business_hours=self.business_hours is not None,
            custom_fields=self.fields,
        )
        return compiler.compile(node["when"], node, "when", "when")
