"""Reading a rule's ``then:`` (and an escalation step's): the actions, checked against the rules.

A mixin of the loader: it reads teams, agents, SLA policy names and template names from the
loader's state, and reports each problem with its file and line through the loader's reporter.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence
from typing import TYPE_CHECKING, Any

from maild.config import ADDRESS_RE
from maild.routing.conditions import Report, suggest
from maild.routing.fields import coerce
from maild.routing.policies import NAME_RE
from maild.routing.schema import (
    ASSIGNEE,
    PREDICTED,
    PRIORITIES,
    STATUSES,
    TEAM,
    Actions,
    Agent,
    FieldDef,
    Notify,
    Team,
)

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
    "set",
)


class ActionParsing:
    """The loader's part that reads actions."""

    templates: Collection[str] | None
    agents: dict[str, Agent]
    teams: dict[str, Team]
    sla_names: set[str]
    fields: dict[str, FieldDef]

    if TYPE_CHECKING:  # provided by the loader

        def _keys(self, node: Any, known: Sequence[str], report: Report, path: str) -> bool: ...

        def _agent_ref(self, value: Any) -> str | None: ...

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
        if name == "set":
            return self._set_fields(value, node, report, path)
        if name == "reply":
            return {"reply": value} if self._template(value, node, name, report, path) else None
        got, problem = self._simple_action(name, value)
        if problem is not None:
            report(node, name, f"{path}: {problem}")
            return None
        return got

    def _simple_action(self, name: str, value: Any) -> tuple[dict[str, Any], str | None]:
        """(keyword arguments, None) or ({}, the problem) for a single-valued action."""
        if name in ("team", "priority") and value == PREDICTED:
            return {name: PREDICTED}, None  # the triage model's value, when a rule matches
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

    def _set_fields(
        self, value: Any, node: Any, report: Report, path: str
    ) -> dict[str, Any] | None:
        """``set: {product: printer, order: 4471}``: custom fields, each value checked by type."""
        if not isinstance(value, dict) or not value:
            report(node, "set", f"{path}: expected {{field: value, ...}}")
            return None
        out = []
        for name, raw in value.items():
            defn = self.fields.get(name) if isinstance(name, str) else None
            if defn is None:
                known = sorted(self.fields)
                report(
                    value,
                    name,
                    f"{path}: no field {name!r} is declared (fields: {', '.join(known) or 'none'})",
                )
                return None
            stored, problem = coerce(defn, raw)
            if problem is not None or stored is None:
                report(value, name, f"{path}: {problem}")
                return None
            out.append((defn.name, stored))
        return {"set_fields": tuple(out)}

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


def _is_tag(tag: Any) -> bool:
    return isinstance(tag, str) and 0 < len(tag) <= 100 and not re.search(r"[\s,]", tag)
