"""Macros: canned answers in ``templates/macros/NAME.j2`` that may also change the ticket.

A macro file is a Jinja2 template (the same sandbox and variables as every template, see
templates/README.md), optionally headed by YAML front matter between two ``---`` lines::

    ---
    status: pending            # a base status or a custom status of the rules files
    priority: high
    team: billing
    tags: [+billing, -new]     # a bare tag adds
    ---
    Hello {{ requester.name }}, ...

``#macro NAME`` renders it for the ticket. The text goes to the customer as the agent's answer
(after anything the agent wrote above it); the front matter's changes apply as if the agent had
given the commands, except that an explicit command in the same mail wins. Everything is checked
before anything changes: an unknown macro, front matter that is not a mapping of known keys, a
value the commands would refuse, or a template that fails to render is a ``command_error`` and
nothing is sent or changed.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from maild.agents.commands import Commands
from maild.routing.engine import RuleSet

KEYS = ("status", "priority", "team", "tags")
MAX_MACRO_BYTES = 64 * 1024


class MacroError(Exception):
    """A macro that cannot be used; the message says why (for ``command_error``)."""


@dataclass(frozen=True)
class Macro:
    name: str
    settings: dict[str, Any]
    source: str  # the template text after the front matter


def macro_dir(templates_dir: Path) -> Path:
    return templates_dir / "macros"


def names(templates_dir: Path) -> list[str]:
    folder = macro_dir(templates_dir)
    return sorted(p.stem for p in folder.glob("*.j2")) if folder.is_dir() else []


def load(templates_dir: Path, name: str) -> Macro:
    """Read ``macros/NAME.j2`` and its front matter; MacroError when missing or malformed."""
    path = macro_dir(templates_dir) / f"{name}.j2"
    if not path.is_file():
        known = ", ".join(names(templates_dir)) or "none are installed"
        raise MacroError(f"no macro {name!r} (macros: {known})")
    raw = path.read_bytes()
    if len(raw) > MAX_MACRO_BYTES:
        raise MacroError(f"macro {name!r} is larger than {MAX_MACRO_BYTES} bytes")
    text = raw.decode("utf-8", errors="replace").replace("\r\n", "\n")
    settings: dict[str, Any] = {}
    if text.startswith("---\n"):
        head, sep, body = text[4:].partition("\n---\n")
        if not sep:
            raise MacroError(f"macros/{name}.j2: front matter opened with --- is never closed")
        settings = _front_matter(name, head)
        text = body
    return Macro(name, settings, text)


def _front_matter(name: str, head: str) -> dict[str, Any]:
    from ruamel.yaml import YAML
    from ruamel.yaml.error import YAMLError

    try:
        data = YAML(typ="safe", pure=True).load(head)
    except YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 2}" if mark is not None else ""
        raise MacroError(f"macros/{name}.j2{line}: front matter is not YAML") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise MacroError(f"macros/{name}.j2: front matter must be a mapping of {', '.join(KEYS)}")
    unknown = [str(k) for k in data if k not in KEYS]
    if unknown:
        raise MacroError(
            f"macros/{name}.j2: unknown front matter key {unknown[0]!r} (known: {', '.join(KEYS)})"
        )
    return dict(data)


def changes(macro: Macro, rules: RuleSet, author: str) -> Commands:
    """The front matter as the commands it stands for, validated like an agent's own."""
    from maild.agents.commands import parse_commands

    lines: list[str] = []
    s = macro.settings
    for key in ("status", "priority", "team"):
        if key in s:
            if not isinstance(s[key], str | int) or isinstance(s[key], bool):
                raise MacroError(f"macros/{macro.name}.j2: {key} must be a single value")
            lines.append(f"#{key} {s[key]}")
    if "tags" in s:
        tags = s["tags"] if isinstance(s["tags"], list) else [s["tags"]]
        if not tags or not all(isinstance(t, str) and t.strip() for t in tags):
            raise MacroError(f"macros/{macro.name}.j2: tags must be a list like [+billing, -new]")
        lines.append("#tag " + " ".join(tags))
    parsed = parse_commands("\n".join(lines), rules=rules, author=author)
    if parsed.errors:
        error = parsed.errors[0]
        raise MacroError(f"macros/{macro.name}.j2 sets {error.text!r}: {error.reason}")
    return parsed


def merged(commands: Commands, macro: Commands, text: str) -> Commands:
    """``commands`` with the macro's changes (an explicit command wins) and its text added."""
    body = f"{commands.body.rstrip()}\n\n{text.strip()}" if commands.body.strip() else text.strip()
    return dataclasses.replace(
        commands,
        status=commands.status or macro.status,
        substatus=commands.substatus if commands.status else macro.substatus,
        priority=commands.priority or macro.priority,
        team=commands.team or macro.team,
        tags_add=(
            *commands.tags_add,
            *(t for t in macro.tags_add if t not in commands.tags_remove),
        ),
        tags_remove=(
            *commands.tags_remove,
            *(t for t in macro.tags_remove if t not in commands.tags_add),
        ),
        body=body,
    )
