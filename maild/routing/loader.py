"""Loading the admin's rules folder into a validated :class:`RuleSet`, or every reason it is wrong.

Every ``*.yaml``/``*.yml`` file in the folder is read in file-name order (hidden files are
ignored) with ruamel.yaml's round-trip loader, which keeps line numbers. Each file may hold the
top-level keys ``agents``, ``teams``, ``rules``, ``business_hours`` (in one file only) and ``sla``;
names defined in one file may be used in any other. Nothing is half-loaded: all errors of all files
are collected and raised together as :class:`RulesError`, each as ``file:line: rule 'NAME': what is
wrong``.

Safety policy for a file the daemon reads while running: at most MAX_FILE_BYTES; anchors, aliases
and explicit tags are refused (aliases are how "billion laughs" documents expand, and rules never
need them); nesting deeper than MAX_YAML_DEPTH is refused before anything is built; duplicate keys
and tabs in indentation are reported in plain words. References are checked: teams, agents, SLA
policies and, when a set of available template names is given, templates.

Agents, teams and rules are read here; conditions by :mod:`maild.routing.conditions`; business
hours and SLA policies by :mod:`maild.routing.policies`.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.composer import Composer
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.events import AliasEvent

from maild.config import ADDRESS_RE
from maild.errors import ConfigError
from maild.routing.conditions import ConditionCompiler, Report, Scope, suggest
from maild.routing.engine import RuleSet
from maild.routing.policies import NAME_RE, PolicyParsing, line_of
from maild.routing.schema import (
    ASSIGNEE,
    EVENTS,
    PRIORITIES,
    ROLES,
    STATUSES,
    STRATEGIES,
    TEAM,
    Actions,
    Agent,
    BusinessHours,
    Condition,
    Notify,
    Rule,
    Team,
    Where,
)

MAX_FILE_BYTES = 1024 * 1024
MAX_YAML_DEPTH = 40
TOP_KEYS = ("agents", "teams", "rules", "business_hours", "sla")
RULE_KEYS = ("name", "on", "when", "then", "stop", "enabled")
AGENT_KEYS = ("email", "name", "teams", "role", "available")
TEAM_KEYS = ("assign",)
ACTION_KEYS = (
    "team",
    "assignee",
    "priority",
    "status",
    "tags",
    "reply",
    "notify",
    "sla",
    "spam",
    "forward",
)

_DUPLICATE = re.compile(r'found duplicate key "(.*?)"')


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


class _Refused(MarkedYAMLError):
    """A construct rules files may not use; ``problem`` says which, in plain words."""


class _StrictComposer(Composer):
    """ruamel's composer, refusing anchors, aliases, tags and deep nesting as nodes arrive.

    The check runs before a node is built, so an alias-expansion document is refused at its first
    anchor without any expansion, and nesting is refused before the composer's recursion gets deep.
    """

    depth_seen = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        event = self.parser.peek_event()
        if isinstance(event, AliasEvent) or getattr(event, "anchor", None):
            raise _Refused(
                None,
                None,
                "YAML anchors and aliases (&name, *name) are not allowed "
                "in rules files: write the value out",
                event.start_mark,
            )
        if getattr(event, "tag", None):
            raise _Refused(
                None,
                None,
                f"YAML tags ({event.tag}) are not allowed in rules files",
                event.start_mark,
            )
        self.depth_seen += 1
        try:
            if self.depth_seen > MAX_YAML_DEPTH:
                raise _Refused(
                    None, None, f"nested deeper than {MAX_YAML_DEPTH} levels", event.start_mark
                )
            return super().compose_node(parent, index)
        finally:
            self.depth_seen -= 1


@dataclass
class _Section:
    """One top-level key of one file."""

    file: str
    parent: Any
    key: str
    value: Any


@dataclass
class _Loader(PolicyParsing):
    templates: Collection[str] | None
    errors: list[tuple[str, int, str]] = field(default_factory=list)  # (file, line, text)
    sections: list[_Section] = field(default_factory=list)
    agents: dict[str, Agent] = field(default_factory=dict)
    teams: dict[str, Team] = field(default_factory=dict)
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
            if path.stat().st_size > MAX_FILE_BYTES:
                self.error(file, 0, f"larger than {MAX_FILE_BYTES} bytes; split it up")
                return None
            raw = path.read_bytes()
        except OSError as exc:
            self.error(file, 0, f"cannot read: {exc.strerror or exc}")
            return None
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            self.error(file, raw[: exc.start].count(b"\n") + 1, "not UTF-8 text")
            return None
        yaml = YAML(typ="rt")
        yaml.allow_duplicate_keys = False
        yaml.Composer = _StrictComposer
        try:
            return yaml.load(text)
        except _Refused as exc:
            mark = exc.problem_mark
            self.error(file, mark.line + 1 if mark is not None else 0, str(exc.problem))
        except MarkedYAMLError as exc:
            self.error(file, *_yaml_problem(exc, text.splitlines()))
        except RecursionError:  # pragma: no cover - the composer's depth limit comes first
            self.error(file, 0, "invalid YAML: nested too deeply")
        except YAMLError as exc:
            self.error(file, 0, f"invalid YAML: {exc}")
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

    # --- people ---------------------------------------------------------------------------------

    def _teams(self, section: _Section) -> None:
        node = section.value
        if not isinstance(node, dict):
            self.error(
                section.file,
                line_of(section.parent, "teams"),
                "teams: expected a mapping of team name to {assign: ...}",
            )
            return
        for name, spec in node.items():
            report = self.reporter(section.file, f"team {name!r}")
            if not isinstance(name, str) or not NAME_RE.match(name):
                report(node, name, "a team name is letters, digits, '.', '_' or '-'")
                continue
            if name in self.teams:
                report(node, name, f"defined twice (first at {self.teams[name].where})")
                continue
            spec = {} if spec is None else spec
            if not isinstance(spec, dict):
                report(node, name, "expected {assign: round_robin | least_open | none}")
                continue
            self._keys(spec, TEAM_KEYS, report, "")
            assign = spec.get("assign", "none")
            if assign not in STRATEGIES:
                report(
                    spec,
                    "assign",
                    f"assign: {assign!r} is not a strategy" + suggest(str(assign), STRATEGIES),
                )
                assign = "none"
            self.teams[name] = Team(name, assign, (), Where(section.file, line_of(node, name)))

    def _agent(self, file: str, seq: Any, i: int, node: Any) -> None:
        label = f"agents[{i}]"
        report = self.reporter(file, label)
        if not isinstance(node, dict):
            report(seq, i, "expected {email: ..., name: ..., teams: [...]}")
            return
        self._keys(node, AGENT_KEYS, report, "")
        email = node.get("email")
        if not isinstance(email, str) or not ADDRESS_RE.match(email):
            report(
                node,
                "email" if "email" in node else None,
                f"email: {email!r} is not an address" if email else "email: required",
            )
            return
        email = email.lower()
        label = f"agent {email}"
        report = self.reporter(file, label)
        if email in self.agents:
            report(node, "email", f"defined twice (first at {self.agents[email].where})")
            return
        name = node.get("name", "")
        if not isinstance(name, str):
            report(node, "name", "name: expected text")
            name = ""
        teams = node.get("teams", [])
        if isinstance(teams, str):
            teams = [teams]
        if not isinstance(teams, list):
            report(node, "teams", "teams: expected a list of team names")
            teams = []
        for team in teams:
            if team not in self.teams:
                report(
                    node,
                    "teams",
                    f"teams: unknown team {team!r}" + suggest(str(team), sorted(self.teams)),
                )
        role = node.get("role", "agent")
        if role not in ROLES:
            report(node, "role", f"role: {role!r}" + suggest(str(role), ROLES))
        available = node.get("available", True)
        if not isinstance(available, bool):
            report(node, "available", "available: expected true or false")
            available = True
        self.agents[email] = Agent(
            email,
            name,
            tuple(t for t in teams if t in self.teams),
            str(role),
            available,
            Where(file, line_of(seq, i)),
        )

    def _members(self) -> None:
        for name, team in list(self.teams.items()):
            members = tuple(a.email for a in self.agents.values() if name in a.teams)
            self.teams[name] = Team(name, team.assign, members, team.where)

    def _agent_ref(self, value: Any) -> str | None:
        """An agent's email from its email or its (unique) name."""
        if not isinstance(value, str):
            return None
        key = value.strip().lower()
        if key in self.agents:
            return key
        named = [a.email for a in self.agents.values() if a.name.lower() == key]
        return named[0] if len(named) == 1 else None

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
        )
        return compiler.compile(node["when"], node, "when", "when")

    def _actions(
        self, node: Any, parent: Any, key: str, report: Report, path: str, allowed: Sequence[str]
    ) -> Actions | None:
        if not isinstance(node, dict) or not node:
            report(parent, key, f"{key}: expected a mapping of actions, e.g. {{team: billing}}")
            return None
        ok = self._keys(node, allowed, report, path)
        values: dict[str, Any] = {}
        for name, value in node.items():
            if name not in allowed:
                continue
            got = self._action(name, value, node, report, f"{path}{name}")
            if got is None:
                ok = False
            else:
                values.update(got)
        return Actions(**values) if ok else None

    def _action(
        self, name: str, value: Any, node: Any, report: Report, path: str
    ) -> dict[str, Any] | None:
        """One action as Actions keyword arguments, or None after reporting what is wrong."""
        if name == "tags":
            return self._tags(value, node, report, path)
        if name == "notify":
            return self._notify(value, node, report, path)
        if name == "reply":
            return {"reply": value} if self._template(value, node, name, report, path) else None
        got, problem = self._simple_action(name, value)
        if problem is not None:
            report(node, name, f"{path}: {problem}")
            return None
        return got

    def _simple_action(self, name: str, value: Any) -> tuple[dict[str, Any], str | None]:
        """(keyword arguments, None) or ({}, the problem) for a single-valued action."""
        if name == "team":
            if value not in self.teams:
                return {}, f"unknown team {value!r}" + suggest(str(value), sorted(self.teams))
            return {"team": value}, None
        if name == "assignee":
            email = TEAM if value == TEAM else self._agent_ref(value)
            if email is None:
                return {}, f"{value!r} is not an agent's email or name, nor 'team'"
            return {"assignee": email}, None
        if name in ("priority", "status"):
            known = PRIORITIES if name == "priority" else STATUSES
            if value not in known:
                return {}, f"{value!r}" + suggest(str(value), known)
            return {name: value}, None
        if name == "sla":
            if value not in self.sla_names:
                names = sorted(self.sla_names)
                return {}, f"unknown SLA policy {value!r}" + suggest(str(value), names)
            return {"sla": value}, None
        if name == "spam":
            if not isinstance(value, bool):
                return {}, "expected true or false"
            return {"spam": value}, None
        addresses = value if isinstance(value, list) else [value]  # forward
        if not addresses or not all(isinstance(a, str) and ADDRESS_RE.match(a) for a in addresses):
            return {}, f"{value!r}: expected an address or a list of addresses"
        return {"forward": tuple(a.lower() for a in addresses)}, None

    def _tags(self, value: Any, node: Any, report: Report, path: str) -> dict[str, Any] | None:
        add: Any = value
        remove: Any = []
        if isinstance(value, dict):
            self._keys(value, ("add", "remove"), report, f"{path}.")
            add, remove = value.get("add", []), value.get("remove", [])
        out = {}
        for key, tags in (("tags_add", add), ("tags_remove", remove)):
            tags = [tags] if isinstance(tags, str) else tags
            if not isinstance(tags, list) or not all(_is_tag(t) for t in tags):
                report(
                    node,
                    "tags",
                    f"{path}: expected tag names (no spaces, commas, at most "
                    "100 characters), a list, or {add: [...], remove: [...]}",
                )
                return None
            out[key] = tuple(dict.fromkeys(tags))
        if not out["tags_add"] and not out["tags_remove"]:
            report(node, "tags", f"{path}: no tags given")
            return None
        return out

    def _notify(self, value: Any, node: Any, report: Report, path: str) -> dict[str, Any] | None:
        items = value if isinstance(value, list) else [value]
        out = []
        for i, item in enumerate(items):
            sub = f"{path}[{i}]" if isinstance(value, list) else path
            if not isinstance(item, dict) or "template" not in item or "to" not in item:
                report(
                    node,
                    "notify",
                    f"{sub}: expected {{template: NAME, to: [team, assignee, or addresses]}}}}",
                )
                return None
            ok = self._keys(item, ("template", "to"), report, f"{sub}.")
            ok = (
                self._template(item["template"], item, "template", report, f"{sub}.template") and ok
            )
            targets = self._targets(item["to"], item, "to", report, f"{sub}.")
            if not ok or targets is None:
                return None
            out.append(Notify(str(item["template"]), targets))
        return {"notify": tuple(out)}

    def _targets(
        self, value: Any, node: Any, key: str, report: Report, path: str
    ) -> tuple[str, ...] | None:
        """Notification targets: TEAM, ASSIGNEE, an agent (email or name) or an address."""
        items = value if isinstance(value, list) else [value]
        out = []
        for item in items:
            agent = self._agent_ref(item)
            if item in (TEAM, ASSIGNEE):
                out.append(str(item))
            elif agent is not None:
                out.append(agent)
            elif isinstance(item, str) and ADDRESS_RE.match(item):
                out.append(item.lower())
            else:
                report(
                    node,
                    key,
                    f"{path}{key}: {item!r} is not team, assignee, an agent or an address",
                )
                return None
        return tuple(dict.fromkeys(out))

    def _template(self, value: Any, node: Any, key: str, report: Report, path: str) -> bool:
        """Check a template name; ``path`` is the full key path for the message."""
        if not isinstance(value, str) or not NAME_RE.match(value):
            report(node, key, f"{path}: expected a template name such as ack")
            return False
        if self.templates is not None and value not in self.templates:
            known = sorted(self.templates)
            report(
                node,
                key,
                f"{path}: no template {value!r} (templates/{value}.txt.j2)" + suggest(value, known),
            )
            return False
        return True


def _yaml_problem(exc: MarkedYAMLError, lines: list[str]) -> tuple[int, str]:
    mark = exc.problem_mark or exc.context_mark
    line = mark.line + 1 if mark is not None else 0
    problem = str(exc.problem or exc)
    duplicate = _DUPLICATE.search(problem)
    if duplicate:
        return line, f"duplicate key {duplicate.group(1)!r}: a key may appear once in a mapping"
    text = lines[line - 1] if 0 < line <= len(lines) else ""
    if "\t" in problem or "\t" in text[: len(text) - len(text.lstrip())]:
        return line, "a tab in the indentation: YAML indents with spaces only"
    return line, f"invalid YAML: {problem}"


def _is_tag(tag: Any) -> bool:
    return isinstance(tag, str) and 0 < len(tag) <= 100 and not re.search(r"[\s,]", tag)
